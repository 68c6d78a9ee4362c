"""HTML pieces of the DiD report, built from ``results.json`` (escaped, no estimation)."""

from __future__ import annotations

import math
from html import escape

from causal.report_html import METHODS, _table
from causal.results import ExperimentResults, Result

METHODS.update(
    {
        "callaway_santanna": (
            "Callaway–Sant'Anna",
            "An effect for every adoption cohort g and period t, ATT(g, t), each from a clean "
            "comparison with never-treated (or not-yet-treated) units, then averaged: over "
            "treated unit-periods (headline), by cohort, by period since adoption and by "
            "calendar period. Doubly robust with covariates. Analytic standard errors from "
            "influence functions; uniform bands from a multiplier bootstrap.",
            "Parallel trends between each cohort and its comparison units; no anticipation "
            "beyond the spec's setting; treatment stays on once started.",
            "Callaway & Sant'Anna (2021), J. Econometrics 225(2); R package did.",
        ),
        "event_study": (
            "TWFE event study",
            "Regression with unit and period fixed effects and one dummy per period since "
            "adoption (end points binned, the period before adoption as reference); the "
            "headline is the mean of the post-adoption coefficients. CR1 standard errors "
            "clustered as the spec says (fixest's convention).",
            "Parallel trends and, under staggered adoption, the same effect path for every "
            "cohort (otherwise coefficients mix cohorts: Sun & Abraham 2021).",
            "e.g. Freyaldenhoven et al. (2021); fixest.",
        ),
        "twfe": (
            "Two-way fixed effects",
            "Regression of the outcome on a 'treated now' dummy with unit and period fixed "
            "effects; CR1 standard errors.",
            "Parallel trends and an effect that is the same for every cohort and period; "
            "with staggered adoption and changing effects it can be far off (see the weights).",
            "Goodman-Bacon (2021); de Chaisemartin & D'Haultfœuille (2020), AER 110(9).",
        ),
        "did_2x2": (
            "2×2 DiD",
            "Ever-treated minus never-treated units, mean after the last adoption minus mean "
            "before the first; CR1 standard errors.",
            "Parallel trends between the two groups.",
            "e.g. Angrist & Pischke (2009), ch. 5.",
        ),
    }
)


def aggregations_html(res: ExperimentResults) -> str:
    """The four Callaway–Sant'Anna summaries with SEs and intervals."""
    cs = _find(res, "callaway_santanna")
    if cs is None:
        return "<p>Callaway–Sant'Anna was not run.</p>"
    rows = [
        [
            "Simple (per treated unit-period)",
            *_numbers(cs.estimate, cs.std_error, cs.conf_low, cs.conf_high),
        ]
    ]
    labels = {
        "group": "By cohort, averaged",
        "dynamic": "By event time, averaged",
        "calendar": "By calendar period, averaged",
    }
    for kind, label in labels.items():
        agg = cs.details.get(kind)
        if agg:
            rows.append(
                [
                    label,
                    *_numbers(agg["estimate"], agg["std_error"], agg["conf_low"], agg["conf_high"]),
                ]
            )
    return _table(["Aggregation", "ATT", "SE", "CI low", "CI high"], rows)


def dynamic_html(res: ExperimentResults) -> str:
    """Callaway–Sant'Anna effect by event time with pointwise intervals and uniform bands."""
    cs = _find(res, "callaway_santanna")
    agg = (cs.details.get("dynamic") or {}) if cs is not None else {}
    table = agg.get("table") or []
    rows = [
        [
            r["level"],
            *_numbers(r["estimate"], r["std_error"], r["conf_low"], r["conf_high"]),
            _band(r),
        ]
        for r in table
    ]
    crit = agg.get("critical_value", math.nan)
    note = (
        f"<p class='small'>Uniform band: critical value {crit:.2f} from the multiplier "
        "bootstrap, so all periods are covered together at the stated level.</p>"
        if crit is not None and math.isfinite(crit)
        else ""
    )
    return _table(["Event time", "ATT", "SE", "CI low", "CI high", "Uniform band"], rows) + note


def cumulative_html(res: ExperimentResults) -> str:
    """Running total of the effect since treatment (a per-period outcome added up), with
    pointwise intervals and a simultaneous band from the joint influence functions."""
    cs = _find(res, "callaway_santanna")
    rows_in = (cs.details.get("cumulative") or []) if cs is not None else []
    if not rows_in:
        return ""
    rows = [
        [
            r["event_time"],
            *_numbers(r["estimate"], r["std_error"], r["conf_low"], r["conf_high"]),
            f"{r['band_low']:,.4g} to {r['band_high']:,.4g}",
        ]
        for r in rows_in
    ]
    note = (
        "<p class='small'>Effect added up from the first treated period to each event time: "
        "what the service brought per unit so far. Standard errors from the joint influence "
        "functions of the event-time effects; the band covers every event time at once "
        "(sup-t). Later event times rest on the cohorts observed that long.</p>"
    )
    header = ["Periods since treatment", "Cumulative ATT", "SE", "CI low", "CI high", "Band"]
    return "<p><strong>Cumulative effect</strong></p>" + _table(header, rows) + note


def att_gt_html(res: ExperimentResults) -> str:
    """Cohort × period table of ATT(g, t) (standard error below); post-adoption cells bold."""
    cs = _find(res, "callaway_santanna")
    cells = cs.details.get("att_gt", []) if cs is not None else []
    if not cells:
        return "<p>No cohort × period effects.</p>"
    times = list(dict.fromkeys(c["time"] for c in cells))
    groups = list(dict.fromkeys(c["group"] for c in cells))
    by_key = {(c["group"], c["time"]): c for c in cells}
    rows = []
    for g in groups:
        row = [escape(str(g))]
        for t in times:
            c = by_key.get((g, t))
            if c is None or not math.isfinite(c["att"]):
                row.append("")
                continue
            text = f"{_short(c['att'])}<br><span class='small'>({_short(c['std_error'])})</span>"
            row.append(f"<strong>{text}</strong>" if c["post"] else text)
        rows.append(row)
    return _table(["First treated", *map(str, times)], rows, raw=True)


def pretrend_html(res: ExperimentResults) -> str:
    es = _find(res, "event_study")
    if es is None:
        return "<p>The event study was not run.</p>"
    pre = es.details["pretrend"]
    q, df = pre["df"]
    return (
        f"<p>Joint test that all {q} lead coefficients are zero: F({q}, {df}) = "
        f"{pre['f']:.2f}, p = {pre['p_value']:.3g}. A small p-value means treated and "
        "comparison units were already drifting apart before treatment.</p>"
    )


def _find(res: ExperimentResults, estimator: str) -> Result | None:
    return res.get(outcome=res.primary["outcome"], estimator=estimator)


def _short(value: float) -> str:
    """Three significant digits without exponents: 1,234 not 1.23e+03."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _numbers(*values: float) -> list[str]:
    return [f"{v:,.4g}" if v is not None and math.isfinite(v) else "–" for v in values]


def _band(row: dict) -> str:
    low, high = row.get("band_low"), row.get("band_high")
    if low is None or not math.isfinite(low):
        return "–"
    return f"{low:,.4g} to {high:,.4g}"
