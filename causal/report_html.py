"""HTML fragments for the report notebooks (headline, checks, tables, methods, footer).

Every value shown comes from the results object; numbers are escaped text, and the headline
number also carries its exact value in ``data-value`` so tests can check the page against
results.json.
"""

from __future__ import annotations

import math
import re
from html import escape
from typing import Any

from causal.narrative import effect_sentence, money, percent, value_sentence
from causal.results import ExperimentResults, Result
from causal.value import line

STYLE = """<style>
.causal h1{font-size:1.6em;margin:.2em 0}.causal .question{color:#444;font-style:italic}
.causal .big{font-size:1.35em;margin:.4em 0}.causal table{border-collapse:collapse;margin:.5em 0}
.causal .scroll table td,.causal .scroll table th{padding:.25em .6em;border-bottom:1px solid #ddd;
text-align:left;
vertical-align:top}.causal .scroll table td.num{text-align:right;white-space:nowrap}
.causal .scroll{overflow-x:auto;max-width:100%}
.causal .badge{display:inline-block;padding:.05em .5em;border-radius:.6em;font-size:.85em;
color:#fff;font-weight:600}.causal .pass{background:#2e7d32}.causal .warn{background:#b26a00}
.causal .fail{background:#b03a2e}.causal .na{background:#777}
.causal .small{color:#555;font-size:.9em}
@media (max-width:480px){.causal td,.causal th{padding:.2em .3em;font-size:.85em}}
</style>"""

METHODS = {
    "difference_in_means": (
        "Difference in means",
        "Treated mean minus control mean; Welch's unequal-variance "
        "standard error with Satterthwaite degrees of freedom.",
        "Random assignment; units do not affect each other (SUTVA).",
        "Welch (1947), Biometrika 34(1-2).",
    ),
    "cuped": (
        "CUPED",
        "The outcome minus its pooled linear projection on pre-period covariates, then "
        "a difference in means; narrows the interval when covariates predict the outcome.",
        "Random assignment; covariates measured before treatment.",
        "Deng, Xu, Kohavi & Walker (2013), WSDM.",
    ),
    "lin": (
        "Regression adjustment (Lin)",
        "OLS of the outcome on treatment, centred covariates and "
        "their interactions with treatment; HC2 standard errors. Never less precise than the "
        "difference in means asymptotically.",
        "Random assignment; covariates measured before treatment.",
        "Lin (2013), Annals of Applied Statistics 7(1).",
    ),
    "relative_lift": (
        "Relative lift",
        "Treated mean over control mean minus one; delta-method standard error "
        "with independent arms.",
        "As difference in means; control mean away from zero.",
        "Delta method, e.g. Casella & Berger (2002), §5.5.4.",
    ),
}


METHODS.update(
    {
        "synthetic_did": (
            "Synthetic difference-in-differences",
            "Unit weights make the donors' pre-period path "
            "parallel to the treated one, time weights pick the pre-periods that resemble the "
            "post-period, and a weighted DiD compares them; ridge-regularised weights as in R "
            "synthdid. Standard error from placebo refits (donors play the treated unit).",
            "No unmeasured shock specific to the treated unit at the start; the weighted donors' "
            "trend stands in for the treated unit's.",
            "Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), AER 111(12).",
        ),
        "synthetic_control": (
            "Synthetic control",
            "A convex combination of donors that reproduces the treated unit "
            "before the start; the post-period gap is the effect. Outcome-only fit as in the "
            "paper's Table 1, or Abadie–Diamond–Hainmueller predictor weights.",
            "The treated unit lies in the donors' convex hull; no donor is affected by the "
            "treatment.",
            "Abadie, Diamond & Hainmueller (2010), JASA 105(490).",
        ),
        "did_sc_baseline": (
            "Difference-in-differences",
            "Treated minus donor average, after minus before, with "
            "equal weights: the baseline that synthetic methods improve on.",
            "Parallel trends between the treated unit and the donors' average.",
            "e.g. Angrist & Pischke (2009), ch. 5.",
        ),
    }
)


# The uplift design's learners. Keyed "uplift/<learner>": the observational design (in
# report_html_obs) has its own dr_learner and causal_forest entries, and methods_html looks the
# design-specific key up first, so neither report shows the other's description.
METHODS.update(
    {
        "uplift/s_learner": (
            "S-learner (econml SLearner)",
            "One outcome model with the treatment as an extra "
            "feature; the predicted uplift is its prediction treated minus untreated. Simple, but "
            "a flexible model may all but ignore the treatment and shrink uplift towards zero.",
            "Random assignment (or no unmeasured confounding given the features); customers do "
            "not affect each other.",
            "Künzel, Sekhon, Bickel & Yu (2019), PNAS 116(10); econml.",
        ),
        "uplift/t_learner": (
            "T-learner (econml TLearner)",
            "Separate outcome models for treated and untreated "
            "customers; the predicted uplift is the difference of their predictions. Noise in "
            "either model becomes noise in the uplift.",
            "As the S-learner; enough customers in each arm to fit its model.",
            "Künzel, Sekhon, Bickel & Yu (2019), PNAS 116(10); econml.",
        ),
        "uplift/x_learner": (
            "X-learner (econml XLearner)",
            "T-learner outcome models, then each arm's imputed "
            "individual effects (observed outcome minus the other arm's prediction) are modelled "
            "and blended by the propensity; suited to unequal arms.",
            "As the S-learner; the propensity is the planned share in a randomised pilot.",
            "Künzel, Sekhon, Bickel & Yu (2019), PNAS 116(10); econml.",
        ),
        "uplift/dr_learner": (
            "DR-learner (econml DRLearner)",
            "Cross-fitted outcome models per arm and the "
            "propensity give each customer a doubly robust (AIPW) pseudo-outcome, and the spec's "
            "base learner regresses it on the features: the predicted uplift.",
            "Random assignment or no unmeasured confounding; propensities away from 0 and 1 "
            "(clipped at 0.01 and 0.99).",
            "Kennedy (2023), EJS 17(2); econml.",
        ),
        "uplift/causal_forest": (
            "Causal forest (econml CausalForestDML)",
            "Outcome and treatment residualised with "
            "cross-fitted models, then a generalised random forest (100 trees, at least 20 "
            "customers per leaf) splits where the effect differs; its leaf estimates are the "
            "predicted uplift.",
            "As the DR-learner; enough customers per leaf.",
            "Athey, Tibshirani & Wager (2019), AoS 47(2); econml.",
        ),
    }
)


def weights_html(res: ExperimentResults, *, top: int = 12) -> str:
    """Donor weights of each estimator of the primary outcome, largest first."""
    outcome = res.primary["outcome"]
    blocks = []
    for r in res.results:
        weights = r.details.get("unit_weights") if r.outcome == outcome else None
        if not weights or r.estimator == "did_sc_baseline":
            continue
        ordered = sorted(weights.items(), key=lambda kv: -kv[1])
        rows = [[unit, f"{w:.3f}"] for unit, w in ordered[:top]]
        if len(ordered) > top:
            rest = sum(w for _, w in ordered[top:])
            rows.append([f"{len(ordered) - top} more donors", f"{rest:.3f}"])
        blocks.append(
            f"<h4>{escape(METHODS.get(r.estimator, (r.estimator,))[0])}: "
            f"{len(ordered)} donors with weight</h4>" + _table(["Donor", "Weight"], rows)
        )
    return "".join(blocks) or "<p>No donor weights.</p>"


def placebo_html(res: ExperimentResults) -> str:
    """Placebo-in-space rank and p-value and placebo-in-time estimates per estimator."""
    outcome = res.primary["outcome"]
    rows = []
    for r in res.results:
        space = r.details.get("placebo_space") if r.outcome == outcome else None
        if space is None:
            continue
        in_time = ", ".join(
            f"{row['fake_start']}: {row['estimate']:,.3g}"
            for row in r.details.get("placebo_in_time", [])
        )
        rows.append(
            [
                r.estimator,
                f"{space['rank']} of {space['n']}",
                f"{space['p_value']:.3f}",
                f"{r.details.get('pre_rmspe', math.nan):,.4g}",
                in_time or "–",
            ]
        )
    return _table(
        [
            "Estimator",
            "Rank of post/pre RMSPE ratio",
            "Permutation p",
            "Pre-period RMSPE",
            "Placebo-in-time estimates",
        ],
        rows,
    )


def headline_html(res: ExperimentResults) -> str:
    """Title, question, the headline number with its interval and plain sentences.

    An uplift report's headline Result is a Qini coefficient (how well the learner ranks), not
    an effect, so its headline is the targeting policy's value instead (see
    :func:`causal.report_html_uplift.headline_html`).
    """
    exp = res.experiment
    if exp.get("design") == "uplift":
        from causal.report_html_uplift import headline_html as uplift_headline

        return uplift_headline(res)
    head = res.headline()
    if exp.get("design") == "clv":
        return _clv_headline(res, head)
    currency = res.value["currency"] if res.value else None
    parts = [
        STYLE,
        '<div class="causal">',
        f"<h1>{escape(exp['title'])}</h1>",
        f'<p class="question">{escape(exp["question"])}</p>',
    ]
    if res.value is not None:
        net = line(res.value, "net_value")
        level = f"{res.value['conf_level']:.0%}"
        parts.append(
            f'<p class="big">Net value: <strong><span id="headline-net-value" '
            f'data-value="{net["estimate"]!r}">{escape(money(net["estimate"], currency))}</span>'
            f"</strong> ({level} CI {escape(money(net['conf_low'], currency))} to "
            f"{escape(money(net['conf_high'], currency))})</p>"
        )
        parts.append(f"<p>{escape(value_sentence(res))}</p>")
    else:
        parts.append(
            f'<p class="big">Effect on {escape(head.outcome)}: <strong><span id="headline-effect" '
            f'data-value="{head.estimate!r}">{head.estimate:,.2f}</span></strong> '
            f"({head.conf_level:.0%} CI {head.conf_low:,.2f} to {head.conf_high:,.2f})</p>"
        )
    revenue_currency = (
        currency if res.value and head.outcome == res.value.get("revenue_outcome") else None
    )
    parts.append(
        f"<p>{escape(effect_sentence(head, currency=revenue_currency))} "
        f'<span class="small">({escape(head.estimator)}, p = {_p(head.p_value)})</span></p>'
    )
    parts.append(f"<p>Design checks: {badge(res.worst_status)}</p></div>")
    return "\n".join(parts)


def _clv_headline(res: ExperimentResults, head: Result) -> str:
    """A lifetime-value run's headline is money per customer, not an effect on an outcome."""
    exp = res.experiment
    return "\n".join(
        [
            STYLE,
            '<div class="causal">',
            f"<h1>{escape(exp['title'])}</h1>",
            f'<p class="question">{escape(exp["question"])}</p>',
            f'<p class="big">{escape(head.estimand[0].upper() + head.estimand[1:])}: <strong>'
            f'<span id="headline-effect" data-value="{head.estimate!r}">{head.estimate:,.2f}'
            f"</span></strong> ({head.conf_level:.0%} CI {head.conf_low:,.2f} to "
            f"{head.conf_high:,.2f}), over {head.n_units:,} customers</p>",
            f"<p>Model checks: {badge(res.worst_status)}</p></div>",
        ]
    )


def badge(status: str) -> str:
    css = {"pass": "pass", "warn": "warn", "fail": "fail"}.get(status, "na")
    return f'<span class="badge {css}">{escape(status)}</span>'


def checks_html(res: ExperimentResults) -> str:
    rows = [[badge(c.status), escape(c.name), escape(c.detail)] for c in res.checks]
    return _table(["Status", "Check", "What it found"], rows, raw=True)


def estimates_html(res: ExperimentResults) -> str:
    rows = []
    for r in res.results:
        rows.append(
            [
                r.outcome,
                r.estimator,
                _num(r, r.estimate),
                _num(r, r.std_error),
                f"{_num(r, r.conf_low)} to {_num(r, r.conf_high)}",
                _p(r.p_value),
                f"{r.n_units:,}",
                f"{r.n_treated:,}",
            ]
        )
    return _table(
        ["Outcome", "Estimator", "Estimate", "SE", f"{_level(res)} CI", "p", "n", "treated"], rows
    )


def value_html(res: ExperimentResults) -> str:
    value = res.value
    cur = value["currency"]
    rows = []
    for item in value["lines"]:
        fmt = (
            (lambda x: percent(x))
            if item["name"] == "roi"
            else (lambda x, name=item["name"]: money(x, cur, precise=name.endswith("per_unit")))
        )
        ci = (
            "known"
            if item["std_error"] == 0
            else f"{fmt(item['conf_low'])} to {fmt(item['conf_high'])}"
        )
        rows.append([item["label"], fmt(item["estimate"]), ci])
    # Designs that price a policy rather than an effect (uplift) have no ROI, break-even or
    # revenue outcome: those rows and words are left out.
    if "probability_roi_positive" in value:
        rows.append(["Probability that ROI > 0", percent(value["probability_roi_positive"]), ""])
    if "break_even_profit_per_unit" in value:
        rows.append(
            [
                "Break-even gross profit per unit",
                money(value["break_even_profit_per_unit"], cur, precise=True),
                "",
            ]
        )
    source = (
        f" on {escape(value['revenue_outcome'])}; gross profit from "
        f"{escape(value['profit_source'])}"
        if "revenue_outcome" in value
        else ""
    )
    note = (
        f'<p class="small">Estimator: {escape(value["estimator"])}{source}; '
        f"population {value['population']:,}. Intervals: {escape(value['method'])}.</p>"
    )
    return _table(["Quantity", "Estimate", f"{value['conf_level']:.0%} CI"], rows) + note


def segments_html(res: ExperimentResults) -> str:
    rows = [
        [
            f"{r.details['segment']} = {r.details['level']}",
            f"{r.n_units:,}",
            f"{r.estimate:,.2f}",
            f"{r.conf_low:,.2f} to {r.conf_high:,.2f}",
            _p(r.p_value),
            _p(r.details["p_value_holm"]),
        ]
        for r in res.segments
    ]
    text = _table(["Segment", "n", "Effect", f"{_level(res)} CI", "p", "Holm p"], rows)
    tests = {
        (r.details["segment"], r.details["heterogeneity_q"], r.details["heterogeneity_p"])
        for r in res.segments
    }
    for column, q, p in sorted(tests, key=str):
        if q is not None and math.isfinite(q):
            text += (
                f'<p class="small">Do effects differ across {escape(column)}? Cochran\'s Q = '
                f"{q:.2f}, p = {_p(p)}.</p>"
            )
    return text


def power_html(res: ExperimentResults) -> str:
    rows = [
        [
            p["outcome"],
            p["estimator"],
            f"{p['std_error']:,.4g}",
            f"{p['mde']:,.4g}",
            percent(p["mde_relative"]),
        ]
        for p in res.power
    ]
    return _table(["Outcome", "Estimator", "SE", "MDE (80% power)", "MDE / control mean"], rows)


def methods_html(res: ExperimentResults) -> str:
    used = dict.fromkeys(r.estimator for r in res.results)
    design = res.experiment.get("design", "")
    items = []
    for name in used:
        key = "churn_at" if name.startswith("churn_at_") else name  # one entry, any horizon
        title, what, assumptions, ref = METHODS.get(
            f"{design}/{name}", METHODS.get(key, (name, "", "", ""))
        )
        items.append(
            f"<li><strong>{escape(title)}</strong> (<code>{escape(name)}</code>): "
            f"{escape(what)} <em>Assumes:</em> {escape(assumptions)} "
            f"<span class='small'>{escape(ref)}</span></li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def footer_html(res: ExperimentResults) -> str:
    prov = res.provenance
    exp = res.experiment
    packages = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items() if v)
    command = f"causal run {exp.get('spec_path') or exp['name'] + '.yaml'}"
    rows = [
        ["Command", command],
        ["Spec hash", exp["spec_hash"][:16]],
        ["Data fingerprint", prov.get("data_fingerprint", "")[:16]],
        ["Rows", f"{prov.get('n_rows', 0):,}"],
        ["Seed", str(prov.get("seed"))],
        ["Created", prov.get("created_at", "")],
        ["Python", prov.get("python", "")],
        ["Packages", packages],
    ]
    return _table(["Reproduce", ""], rows)


def _table(header: list[str], rows: list[list[Any]], *, raw: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c, raw) for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="causal"><div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></div>"
    )


def _cell(content: Any, raw: bool) -> str:
    text = str(content)
    numeric = bool(_NUMERIC.match(text))
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{text if raw else escape(text)}</td>"


_NUMERIC = re.compile(r"^[-<]?[€$£¥]?-?[\d.,]+(%|[kMB])?( to -?[€$£¥]?-?[\d.,]+(%|[kMB])?)?$")


def _num(r: Result, x: float) -> str:
    if r.estimator == "relative_lift":
        return percent(x, 2)
    return f"{x:,.4g}" if math.isfinite(x) else "n/a"


def _p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _level(res: ExperimentResults) -> str:
    return f"{1 - res.experiment.get('alpha', 0.05):.0%}"
