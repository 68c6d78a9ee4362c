"""One direction, no back and forth: spec → dataset → checks → estimators → value → results."""

from __future__ import annotations

import platform
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata

from causal.checks import CheckResult, guarded
from causal.data.dataset import Dataset, load_dataset
from causal.errors import DesignError
from causal.results import ExperimentResults, Result
from causal.spec import Spec

PRIMARY_PREFERENCE = ("lin", "cuped", "difference_in_means")
PROVENANCE_PACKAGES = (
    "causal",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "duckdb",
    "pydantic",
    "papermill",
    "nbconvert",
    "matplotlib",
)


def analyse(spec: Spec, data: Dataset | None = None) -> ExperimentResults:
    """Run every check and estimator the spec asks for.

    Parameters
    ----------
    spec
        A loaded spec.
    data
        The validated analysis table; loaded from the spec's sources when omitted.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> res = analyse(load_spec("experiments/lalonde_nsw_experiment.yaml"))
    >>> dim = res.find(outcome="re78", estimator="difference_in_means")
    >>> round(dim.estimate, 2)
    1794.34
    """
    if spec.design.kind == "synthetic_control":
        from causal.designs.synth_run import run_synth

        return _analyse_panel(spec, run_synth, "Over the pilot's {n} treated unit-periods")
    if spec.design.kind == "did":
        from causal.designs.did_run import run_did

        return _analyse_panel(spec, run_did, "Over the {n} treated unit-periods in the data")
    if spec.design.kind == "observational":
        from causal.designs.obs_run import run_observational

        who = {"ATE": "units", "ATT": "treated units", "ATC": "untreated units"}
        label = f"Over the {{n}} {who[spec.design.estimand]} in the data"
        return _analyse_panel(spec, run_observational, label)
    if spec.design.kind == "uplift":
        from causal.designs.uplift_run import run_uplift

        return _analyse_panel(spec, run_uplift, "Targeting {n} customers")
    if spec.design.kind == "clv":
        from causal.designs.clv_run import run_clv

        return _analyse_panel(spec, run_clv, "Over {n} customers")
    if data is None and spec.engine.kind == "spark" and pushdown_reason(spec) is None:
        from causal.pipeline_pushdown import analyse_pushed_down

        return analyse_pushed_down(spec)
    timings: dict[str, float] = {}
    with _timed(timings, "load_data"):
        data = data if data is not None else load_dataset(spec)
    from causal.designs import abtest

    alpha = spec.alpha
    with _timed(timings, "checks"):
        checks = ab_checks(spec, data, abtest)
    with _timed(timings, "estimators"):
        results = _estimate_all(spec, data, checks)
    primary = _primary(spec, results)
    with _timed(timings, "segments"):
        survival = spec.outcome(primary["outcome"]).kind == "time_to_event"
        segments = () if survival else abtest.segment_effects(data, primary["outcome"], alpha=alpha)
    power = power_rows(results, primary, alpha=alpha)
    value = _value(spec, results, primary, data=data) if spec.value is not None else None
    long_term = None
    if spec.long_term is not None:
        from causal.designs.long_term_run import run_long_term

        with _timed(timings, "long_term"):
            long_term, extra_checks = run_long_term(spec, data, value)
        checks.extend(extra_checks)
    return ExperimentResults(
        experiment=_experiment_block(spec),
        results=tuple(results),
        primary=primary,
        checks=tuple(checks),
        segments=segments,
        power=power,
        value=value,
        provenance=_provenance(spec, data.fingerprint, data.n_units, timings),
        long_term=long_term,
    )


def ab_checks(spec: Spec, data, checks_from) -> list[CheckResult]:
    """Sample ratio, covariate balance and missing values, from a Dataset with
    :mod:`causal.designs.abtest` or from the engine's summary with
    :mod:`causal.designs.ab_sums` (``checks_from``)."""
    return [
        _sample_ratio(spec, data.n_treated, data.n_units),
        guarded(
            "covariate_balance",
            checks_from.balance_check,
            data,
            threshold=spec.design.balance_threshold,
        ),
        guarded("missing_values", checks_from.missing_check, data),
    ]


def power_rows(results: list[Result], primary: dict[str, str], *, alpha: float) -> tuple:
    """Minimum detectable effects of the plain and the primary estimator."""
    from causal.designs.abtest import power_row

    keep = {"difference_in_means", primary["estimator"]}
    return tuple(power_row(r, alpha=alpha) for r in results if r.estimator in keep)


def pushdown_reason(spec: Spec) -> str | None:
    """Why this A/B spec needs unit-level rows on the driver, or None when the engine's
    aggregates suffice (every estimator, check, segment and the money from sums by arm).

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> pushdown_reason(load_spec("experiments/extended_warranty_pilot.yaml")) is None
    True
    """
    if spec.long_term is not None:
        return "long_term (surrogate index, horizons) refits on unit-level rows"
    if any(o.kind == "time_to_event" for o in spec.outcomes):
        return "time-to-event outcomes (Kaplan-Meier, Cox) need unit-level rows"
    if spec.value is not None and spec.value.cost_outcome is not None:
        return "value.cost_outcome combines outcomes per unit"
    if spec.value is not None and spec.value.retention is not None:
        return "value.retention bootstraps over units"
    return None


def _analyse_panel(spec: Spec, run_design, population_label: str) -> ExperimentResults:
    """Designs whose runner does checks and estimators (panel, observational, uplift, clv)."""
    timings: dict[str, float] = {}
    with _timed(timings, "estimators_and_inference"):
        run = run_design(spec)
    value = run.get("value")
    if spec.value is not None:
        value = _value(
            spec,
            run["results"],
            run["primary"],
            population_default=run["population_default"],
            population_label=population_label,
        )
    artifacts = run.get("artifacts", {})
    experiment = _experiment_block(spec)
    if artifacts:
        experiment["artifacts"] = sorted(artifacts)
    return ExperimentResults(
        experiment=experiment,
        results=tuple(run["results"]),
        primary=run["primary"],
        checks=tuple(run["checks"]),
        value=value,
        provenance=_provenance(spec, run["fingerprint"], run["n_rows"], timings),
        artifacts=artifacts,
    )


def _sample_ratio(spec: Spec, n_treated: int, n_units: int) -> CheckResult:
    from causal.designs.abtest import sample_ratio_check

    planned = spec.design.planned_treated_share
    if planned is None:
        return CheckResult(
            "sample_ratio",
            "n/a",
            "no planned split in the spec "
            "(design.planned_treated_share), so the arm sizes cannot be tested",
        )
    return guarded(
        "sample_ratio",
        sample_ratio_check,
        n_treated,
        n_units - n_treated,
        planned_share=planned,
        alpha=spec.design.srm_alpha,
    )


def _estimate_all(spec: Spec, data, checks: list[CheckResult], *, estimate=None) -> list[Result]:
    """Every estimator on every outcome; ``data`` is a Dataset, or the engine's summary with
    ``estimate`` from :mod:`causal.designs.ab_moments`."""
    if estimate is None:
        from causal.designs.abtest import estimate

    results = []
    for outcome in spec.outcomes:
        if outcome.kind == "time_to_event":
            from causal.designs.survival_run import survival_results

            results.extend(survival_results(spec, data, outcome, checks))
            continue
        for name in spec.estimator_names:
            try:
                results.append(estimate(name, data, outcome.column, alpha=spec.alpha))
            except DesignError as exc:  # one estimator failing must not hide the others
                checks.append(CheckResult(f"estimator {name} on {outcome.column}", "n/a", str(exc)))
    if not results:
        raise DesignError("no estimator could run on this data; see the reasons above")
    return results


def _primary(spec: Spec, results: list[Result]) -> dict[str, str]:
    if spec.primary is not None:
        return {"outcome": spec.primary.outcome, "estimator": spec.primary.estimator}
    outcome = spec.value.outcome if spec.value else spec.outcomes[0].column
    if spec.outcome(outcome).kind == "time_to_event":
        return {"outcome": outcome, "estimator": "rmst_difference"}
    ran = {r.estimator for r in results if r.outcome == outcome}
    estimator = next((n for n in PRIMARY_PREFERENCE if n in ran), None)
    if estimator is None:
        raise DesignError(f"no absolute-effect estimator ran on the primary outcome {outcome!r}")
    return {"outcome": outcome, "estimator": estimator}


def _value(
    spec: Spec,
    results: list[Result],
    primary: dict[str, str],
    *,
    population_default: int | None = None,
    population_label: str = "Rolled out to {n} units",
    data: Dataset | None = None,
) -> dict:
    from causal.value import value_block

    settings = spec.value
    estimator = primary["estimator"]
    by_key = {(r.outcome, r.estimator): r for r in results}
    revenue = by_key.get((settings.outcome, estimator))
    if revenue is None:
        raise DesignError(
            f"value: no {estimator} estimate of {settings.outcome!r} to turn into money"
        )
    profit = None
    if settings.profit_outcome is not None:
        profit = by_key.get((settings.profit_outcome, estimator))
        if profit is None:
            raise DesignError(f"value: no {estimator} estimate of {settings.profit_outcome!r}")
    saving = combined = None
    if settings.cost_outcome is not None:
        saving = by_key.get((settings.cost_outcome, estimator))
        if saving is None or data is None:
            raise DesignError(f"value: no {estimator} estimate of {settings.cost_outcome!r}")
        combined = _combined_value(spec, data, estimator)
    retention = total = None
    extra = {}
    if settings.retention is not None:
        from causal.value_parts import bootstrap_total, retention_result

        if data is None:
            raise DesignError("value.retention needs the unit-level data")
        retention, extra["retention"] = retention_result(spec, results)
        total, extra["total"] = bootstrap_total(spec, data, estimator=estimator)
    block = value_block(
        revenue,
        profit=profit,
        cost_saving=saving,
        combined=combined,
        retention=retention,
        total=total,
        gross_margin=settings.gross_margin,
        population=settings.population or population_default,
        cost_per_treated_unit=spec.intervention.cost_per_treated_unit,
        fixed_cost=spec.intervention.fixed_cost,
        currency=settings.currency,
        population_label=population_label
        if settings.population is None
        else "Rolled out to {n} units",
    )
    return block | extra


def _combined_value(spec: Spec, data: Dataset, estimator: str) -> Result:
    """The estimator on each unit's gross profit minus its cost outcome: one estimate whose
    interval carries the covariance between the revenue and the cost effects."""
    from dataclasses import replace

    from causal.designs.abtest import estimate

    settings = spec.value
    table = data.table
    if settings.profit_outcome is not None:
        profit = table[settings.profit_outcome]
    else:
        profit = settings.gross_margin * table[settings.outcome]
    column = "gross_profit_minus_cost"
    frame = table.assign(**{column: profit - table[settings.cost_outcome]})
    combined = replace(data, table=frame, outcomes=(*data.outcomes, column))
    return estimate(estimator, combined, column, alpha=spec.alpha)


def _experiment_block(spec: Spec) -> dict:
    return {
        "name": spec.name,
        "title": spec.title,
        "question": spec.question,
        "design": spec.design.kind,
        "design_settings": spec.design.model_dump(mode="json"),
        "intervention": spec.intervention.model_dump(mode="json"),
        "unit": spec.unit,
        "treatment": spec.treatment,
        "outcomes": [o.model_dump(mode="json") for o in spec.outcomes],
        "covariates": list(spec.covariates),
        "segments": list(spec.segments),
        "alpha": spec.alpha,
        "spec_path": str(spec.path) if spec.path else None,
        "spec_hash": spec.spec_hash(),
    }


def _provenance(
    spec: Spec,
    data_fingerprint: str,
    n_rows: int,
    timings: dict[str, float],
    *,
    computed: str = "rows",
) -> dict:
    versions = {}
    packages = PROVENANCE_PACKAGES + (("pyspark",) if spec.engine.kind == "spark" else ())
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "data_fingerprint": data_fingerprint,
        "n_rows": n_rows,
        "seed": spec.seed,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "engine": {
            "kind": spec.engine.kind,
            "master": spec.engine.master,
            # rows: the table came to Python; aggregates: only sums the engine computed did
            "computed_from": computed,
        },
    }


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    start = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - start
