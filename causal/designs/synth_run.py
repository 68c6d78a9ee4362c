"""The synthetic-control design from spec to results: panel, estimators, placebos, checks, value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from causal.checks import CheckResult, guarded
from causal.data.dataset import fingerprint, query_table
from causal.designs import synth
from causal.errors import DesignError
from causal.progress import progress
from causal.results import Result
from causal.spec import Spec

PRIMARY_PREFERENCE = ("synthetic_did", "synthetic_control", "did_sc_baseline")


def build_panels(spec: Spec, table: pd.DataFrame) -> dict[str, synth.Panel]:
    """One validated panel per outcome of a synthetic-control spec."""
    design = spec.design
    return {
        outcome.column: synth.build_panel(
            table,
            unit=spec.unit,
            time=design.time,
            outcome=outcome.column,
            treated_units=design.treated_units,
            start=design.treatment_start,
            exclude=design.exclude_donors,
        )
        for outcome in spec.outcomes
    }


def run_synth(spec: Spec, table: pd.DataFrame | None = None) -> dict:
    """Everything the synthetic-control report needs, as parts of ``ExperimentResults``.

    Returns a dict with ``results``, ``checks``, ``primary``, ``value_inputs`` (the primary
    Result on the value outcome and the population it scales to) and ``data`` (fingerprint, rows).
    """
    design = spec.design
    table = table if table is not None else query_table(spec)
    checks: list[CheckResult] = []
    results: list[Result] = []
    primary_outcome = spec.value.outcome if spec.value else spec.outcomes[0].column
    panels = build_panels(spec, table)  # every panel validated before any long fit
    jobs = [(o.column, name) for o in spec.outcomes for name in spec.estimator_names]
    for column, name in progress(jobs, desc="estimators and placebos", total=len(jobs)):
        result = _fit(name, panels[column], spec, table, column)
        if column == primary_outcome:
            result = _with_placebos(result, name, panels[column], spec)
        results.append(result)
    panel = panels[primary_outcome]
    primary = _primary(spec, results, primary_outcome)
    head = next(
        r for r in results if r.outcome == primary_outcome and r.estimator == primary["estimator"]
    )
    checks.append(guarded("convex_hull", synth.convex_hull_check, panel))
    checks.append(_pre_fit_check(head, panel))
    checks.append(_placebo_time_check(head))
    checks.append(_treated_count_check(panel))
    ordered = table.sort_values([spec.unit, design.time], kind="mergesort").reset_index(drop=True)
    n_post = len(panel.times) - panel.t0
    return {
        "results": results,
        "checks": checks,
        "primary": primary,
        "population_default": len(panel.treated_units) * n_post,
        "fingerprint": fingerprint(ordered),
        "n_rows": len(table),
    }


def _fit(name: str, panel: synth.Panel, spec: Spec, table: pd.DataFrame, outcome: str) -> Result:
    design = spec.design
    kwargs = {"alpha": spec.alpha, "replications": design.placebo_replications, "seed": spec.seed}
    if name == "synthetic_control" and not design.outcome_only:
        from causal.designs.synth_adh_run import fit_adh_estimator

        result = fit_adh_estimator(panel, table, spec, outcome=outcome, **kwargs)
    else:
        result = synth.fit_estimator(name, panel, outcome=outcome, **kwargs)
    return result


def _with_placebos(result: Result, name: str, panel: synth.Panel, spec: Spec) -> Result:
    if name == "synthetic_control" and not spec.design.outcome_only:
        return result  # the ADH placebos are computed in synth_adh_run
    space = synth.placebo_in_space(name, panel)
    in_time = synth.placebo_in_time(name, panel, starts=spec.design.placebo_in_time)
    return result.with_details(
        placebo_space={
            "rank": space.rank,
            "n": len(space.ratio),
            "p_value": space.p_value,
            "ratios": {u: _finite(r) for u, r in zip(space.units, space.ratio, strict=True)},
            "gaps": {u: g.tolist() for u, g in zip(space.units[:-1], space.gaps[:-1], strict=True)},
        },
        placebo_in_time=in_time.to_dict(orient="records"),
    )


def _primary(spec: Spec, results: list[Result], outcome: str) -> dict[str, str]:
    if spec.primary is not None:
        return {"outcome": spec.primary.outcome, "estimator": spec.primary.estimator}
    ran = {r.estimator for r in results if r.outcome == outcome}
    estimator = next((n for n in PRIMARY_PREFERENCE if n in ran), None)
    if estimator is None:
        raise DesignError(f"no estimator ran on the primary outcome {outcome!r}")
    return {"outcome": outcome, "estimator": estimator}


def _pre_fit_check(result: Result, panel: synth.Panel) -> CheckResult:
    rmspe = result.details.get("pre_rmspe", math.nan)
    treated_pre = panel.Y[panel.n0 :, : panel.t0].mean(axis=0)
    scale = float(np.std(treated_pre, ddof=1)) if panel.t0 > 1 else math.nan
    detail = (
        f"pre-period RMSPE of {result.estimator}: {rmspe:.4g} "
        f"({rmspe / scale:.0%} of the treated unit's pre-period sd)"
    )
    if not math.isfinite(scale) or scale == 0:
        return CheckResult("pre_period_fit", "n/a", "the treated pre-period path is flat")
    status = "pass" if rmspe <= 0.5 * scale else "warn"
    if status == "warn":
        detail += "; the synthetic unit does not track the treated one before the start"
    return CheckResult("pre_period_fit", status, detail)


def _placebo_time_check(result: Result) -> CheckResult:
    rows = result.details.get("placebo_in_time") or []
    if not rows:
        return CheckResult("placebo_in_time", "n/a", "too few pre-periods for a fake start")
    worst = max(rows, key=lambda r: abs(r["estimate"]))
    bound = 1.96 * result.std_error if math.isfinite(result.std_error) else math.inf
    detail = (
        f"{len(rows)} fake start(s) in the pre-period; largest placebo effect "
        f"{worst['estimate']:.4g} at {worst['fake_start']} (SE of the real estimate "
        f"{result.std_error:.4g})"
    )
    status = "pass" if abs(worst["estimate"]) <= bound else "warn"
    return CheckResult("placebo_in_time", status, detail, tuple(rows))


def _treated_count_check(panel: synth.Panel) -> CheckResult:
    n1 = len(panel.treated_units)
    if panel.n0 <= n1:
        return CheckResult(
            "placebo_standard_error",
            "fail",
            f"{panel.n0} donors for {n1} treated units: the placebo SE needs "
            "more donors than treated units",
        )
    return CheckResult(
        "placebo_standard_error",
        "pass",
        f"{panel.n0} donors, {n1} treated unit(s), {panel.t0} pre-periods, "
        f"{len(panel.times) - panel.t0} post-periods",
    )


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
