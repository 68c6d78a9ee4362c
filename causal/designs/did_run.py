"""The DiD design from spec to results: panels, the four estimators, checks, value inputs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from causal.checks import CheckResult, guarded
from causal.data.dataset import fingerprint, query_table
from causal.designs import did_twfe
from causal.designs.did_panel import (
    DidPanel,
    build_did_panel,
    check_controls,
    json_plain,
    json_records,
)
from causal.errors import DesignError
from causal.progress import progress
from causal.results import Result
from causal.spec import Spec

PRIMARY_PREFERENCE = ("callaway_santanna", "event_study", "did_2x2", "twfe")
# Share of TWFE's weight on negatively weighted cells above which the report warns even when
# TWFE and Callaway–Sant'Anna happen to agree on this data.
NEGATIVE_WEIGHT_ALARM = 0.05


def build_panels(spec: Spec, table: pd.DataFrame) -> tuple[dict[str, DidPanel], list[CheckResult]]:
    """One validated panel per outcome; warnings raised while building become checks."""
    design = spec.design
    panels = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for outcome in spec.outcomes:
            panels[outcome.column] = build_did_panel(
                table,
                unit=spec.unit,
                time=design.time,
                outcome=outcome.column,
                treatment=spec.treatment,
                first_treated=design.first_treated,
                cluster=design.cluster,
                covariates=spec.covariates,
            )
        check_controls(next(iter(panels.values())), design.control_group)
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    checks = [CheckResult("panel_warnings", "warn", note) for note in notes]
    return panels, checks


def run_did(spec: Spec, table: pd.DataFrame | None = None) -> dict:
    """Everything the DiD report needs, as parts of ``ExperimentResults``."""
    table = table if table is not None else query_table(spec)
    panels, checks = build_panels(spec, table)
    primary_outcome = spec.value.outcome if spec.value else spec.outcomes[0].column
    jobs = [(o.column, name) for o in spec.outcomes for name in spec.estimator_names]
    results: list[Result] = []
    for column, name in progress(jobs, desc="DiD estimators", total=len(jobs)):
        panel = panels[column]
        result = ESTIMATORS[name](panel, spec)
        if column == primary_outcome and name in ("callaway_santanna", "event_study"):
            result = result.with_details(cohort_means=_cohort_means(panel))
        results.append(result)
    panel = panels[primary_outcome]
    primary = _primary(spec, results, primary_outcome)
    by_name = {r.estimator: r for r in results if r.outcome == primary_outcome}
    checks += [
        guarded("pre_trends", _pretrend_check, by_name, spec.alpha),
        guarded("twfe_vs_callaway_santanna", _twfe_check, by_name, panel),
        _cohort_check(panel),
        _balance_check(panel),
    ]
    ordered = table.sort_values([spec.unit, spec.design.time], kind="mergesort")
    return {
        "results": results,
        "checks": checks,
        "primary": primary,
        "population_default": int(panel.treated_indicator().sum()),
        "fingerprint": fingerprint(ordered.reset_index(drop=True)),
        "n_rows": len(table),
    }


# --- estimators -> Result ------------------------------------------------------------------------


def _regression_result(name, estimand, panel, estimate, se, df, alpha, details) -> Result:
    return Result.from_estimate(
        name,
        estimand,
        panel.outcome,
        estimate,
        se,
        n_units=panel.n_units,
        n_treated=(panel.cohort_pos >= 0).sum(),
        alpha=alpha,
        df=df,
        details=details,
    )


def _fit_twfe(panel: DidPanel, spec: Spec) -> Result:
    fit = did_twfe.twfe(panel)
    details = {
        "coefficients": _coef_table(fit),
        "absorbed_covariates": list(fit.dropped),
        "n_clusters": fit.n_clusters,
        "cluster": panel.cluster,
        "df": fit.df_t,
    }
    if panel.balanced and panel.covariates.shape[1] == 0:
        weights = did_twfe.twfe_cell_weights(panel)
        details["cell_weights"] = json_records(weights)
        details["negative_weight_cells"] = int((weights["weight"] < 0).sum())
        details["negative_weight_total"] = float(weights["weight"].clip(upper=0).sum())
    se = fit.std_error[0]
    return _regression_result(
        "twfe", "ATT (TWFE-weighted)", panel, fit.coef[0], se, fit.df_t, spec.alpha, details
    )


def _fit_event_study(panel: DidPanel, spec: Spec) -> Result:
    lead, lag = spec.design.event_window
    es = did_twfe.event_study(panel, lead=lead, lag=lag)
    estimate, se = es.post_average()
    details = {
        "path": json_records(es.table(alpha=spec.alpha)),
        "pretrend": {
            "f": es.pretrend_f,
            "df": list(es.pretrend_df),
            "p_value": es.pretrend_p,
            "leads": [e for e in es.event_times if e < 0],
        },
        "window": [lead, lag],
        "reference": list(es.reference),
        "headline": "mean of the event-time coefficients from 0 to the last (binned) lag",
        "n_clusters": es.fit.n_clusters,
    }
    return _regression_result(
        "event_study",
        "ATT (mean over event time)",
        panel,
        estimate,
        se,
        es.fit.df_t,
        spec.alpha,
        details,
    )


def _fit_did_2x2(panel: DidPanel, spec: Spec) -> Result:
    fit, info = did_twfe.did_2x2(panel)
    details = {**info, "n_clusters": fit.n_clusters}
    return _regression_result(
        "did_2x2",
        "ATT (2×2)",
        panel,
        fit.coef[0],
        fit.std_error[0],
        fit.df_t,
        spec.alpha,
        details,
    )


def _fit_callaway_santanna(panel: DidPanel, spec: Spec) -> Result:
    from causal.designs.did_cs_run import fit_callaway_santanna

    return fit_callaway_santanna(panel, spec)


ESTIMATORS: dict[str, Callable[[DidPanel, Spec], Result]] = {
    "callaway_santanna": _fit_callaway_santanna,
    "event_study": _fit_event_study,
    "twfe": _fit_twfe,
    "did_2x2": _fit_did_2x2,
}


# --- checks --------------------------------------------------------------------------------------


def _pretrend_check(by_name: dict[str, Result], alpha: float) -> CheckResult:
    """Callaway–Sant'Anna's Wald pre-test when it ran (its pre-period cells compare clean
    groups); otherwise the TWFE event study's joint test of the leads, whose coefficients can
    be contaminated by other periods' effects when effects differ across cohorts."""
    cs, es = by_name.get("callaway_santanna"), by_name.get("event_study")
    parts, p_values = [], []
    if cs is not None and math.isfinite(cs.details["pretest"]["p_value"]):
        pre = cs.details["pretest"]
        parts.append(
            f"Callaway–Sant'Anna pre-test of the {pre['df']} pre-period ATT(g, t): "
            f"χ²({pre['df']}) = {pre['w']:.2f}, p = {pre['p_value']:.3g}"
        )
        p_values.append(pre["p_value"])
    if es is not None and es.details["pretrend"]["leads"]:
        pre = es.details["pretrend"]
        q, df = pre["df"]
        parts.append(
            f"TWFE event-study leads: F({q}, {df}) = {pre['f']:.2f}, p = {pre['p_value']:.3g}"
        )
        if not p_values:
            p_values.append(pre["p_value"])
    if not parts:
        return CheckResult("pre_trends", "n/a", "no pre-period estimates to test")
    text = "; ".join(parts)
    if p_values[0] < alpha:
        return CheckResult(
            "pre_trends",
            "warn",
            text + ". Treated and comparison units trended apart before "
            "treatment, so parallel trends is doubtful",
        )
    return CheckResult("pre_trends", "pass", text + ". No evidence against parallel pre-trends")


def _twfe_check(by_name: dict[str, Result], panel: DidPanel) -> CheckResult:
    twfe, cs = by_name.get("twfe"), by_name.get("callaway_santanna")
    if twfe is None or cs is None:
        return CheckResult("twfe_vs_callaway_santanna", "n/a", "needs both twfe and CS to run")
    gap = twfe.estimate - cs.estimate
    scale = math.hypot(twfe.std_error, cs.std_error)
    negative = twfe.details.get("negative_weight_cells", 0)
    total = twfe.details.get("negative_weight_total", 0.0)
    text = (
        f"TWFE {twfe.estimate:,.4g} vs Callaway–Sant'Anna {cs.estimate:,.4g} "
        f"(difference {gap:,.3g}, {abs(gap) / scale:.1f} combined SEs)"
    )
    if negative:
        text += (
            f"; TWFE puts negative weight on {negative} treated cohort-period cells ({total:.1%})"
        )
    cohorts = len(np.unique(panel.cohort_pos[panel.cohort_pos >= 0]))
    if cohorts > 1 and (abs(gap) > 2 * scale or total < -NEGATIVE_WEIGHT_ALARM):
        return CheckResult(
            "twfe_vs_callaway_santanna",
            "warn",
            text + ". Adoption is staggered and TWFE "
            "compares later with earlier adopters: trust Callaway–Sant'Anna.",
        )
    return CheckResult("twfe_vs_callaway_santanna", "pass", text)


def _cohort_check(panel: DidPanel) -> CheckResult:
    pos = panel.cohort_pos
    cohorts, counts = np.unique(pos, return_counts=True)
    rows = [
        {"cohort": "never treated" if c < 0 else str(panel.times[c]), "units": int(n)}
        for c, n in zip(cohorts, counts, strict=True)
    ]
    text = (
        f"{int((pos >= 0).sum())} treated units in {int((cohorts >= 0).sum())} cohort(s), "
        f"{int((pos < 0).sum())} never treated"
    )
    small = [r["cohort"] for r in rows if r["units"] == 1 and r["cohort"] != "never treated"]
    if small:
        return CheckResult("cohorts", "warn", text + f"; single-unit cohort(s): {small}", rows)
    return CheckResult("cohorts", "pass", text, rows)


def _balance_check(panel: DidPanel) -> CheckResult:
    if panel.balanced:
        return CheckResult(
            "balanced_panel", "pass", f"{panel.n_units} units × {panel.n_periods} periods"
        )
    missing = panel.n_units * panel.n_periods - len(panel.y)
    return CheckResult(
        "balanced_panel",
        "warn",
        f"{missing} unit-periods are missing; regressions use all "
        "rows, Callaway–Sant'Anna keeps units observed in every period",
    )


# --- helpers -------------------------------------------------------------------------------------


def _primary(spec: Spec, results: list[Result], outcome: str) -> dict[str, str]:
    if spec.primary is not None:
        return {"outcome": spec.primary.outcome, "estimator": spec.primary.estimator}
    ran = {r.estimator for r in results if r.outcome == outcome}
    name = next((n for n in PRIMARY_PREFERENCE if n in ran), None)
    if name is None:
        raise DesignError(f"no DiD estimator ran on the primary outcome {outcome!r}")
    return {"outcome": outcome, "estimator": name}


def _cohort_means(panel: DidPanel) -> list[dict]:
    """Raw outcome means per cohort and period, for the trends plot."""
    cohorts, index = np.unique(panel.cohort_pos, return_inverse=True)
    cell = index[panel.unit_code] * panel.n_periods + panel.time_code
    size = len(cohorts) * panel.n_periods
    sums = np.bincount(cell, panel.y, size)
    counts = np.bincount(cell, minlength=size)
    rows = []
    for k, c in enumerate(cohorts):
        for t in range(panel.n_periods):
            n = counts[k * panel.n_periods + t]
            rows.append(
                {
                    "cohort": "never treated" if c < 0 else json_plain(panel.times[c]),
                    "time": json_plain(panel.times[t]),
                    "mean": float(sums[k * panel.n_periods + t] / n) if n else math.nan,
                    "n": int(n),
                }
            )
    return rows


def _coef_table(fit) -> list[dict]:
    return [
        {"term": n, "estimate": float(b), "std_error": float(s)}
        for n, b, s in zip(fit.names, fit.coef, fit.std_error, strict=True)
    ]
