"""The A/B pipeline where the engine does the sums: no unit-level row reaches the driver.

The analysis table is built and kept in the engine (Spark caches it in the executors); a fixed
number of aggregate queries return per-arm and per-segment sufficient statistics; every
estimator, check, segment effect, power row and value line is computed from those. The numbers
equal the row path's (tests: to 1e-9), so results.json does not depend on the engine.
"""

from __future__ import annotations

from causal.data.engine import open_engine
from causal.errors import DataError
from causal.results import ExperimentResults
from causal.spec import Spec

ANALYSIS_VIEW = "causal_analysis"


def analyse_pushed_down(spec: Spec) -> ExperimentResults:
    """:func:`causal.pipeline.analyse` for an A/B spec, from the engine's aggregates.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> res = analyse_pushed_down(load_spec("experiments/lalonde_nsw_experiment.yaml"))
    >>> round(res.find(outcome="re78", estimator="difference_in_means").estimate, 2)
    1794.34
    """
    from causal.designs import ab_sums
    from causal.pipeline import (
        _estimate_all,
        _experiment_block,
        _primary,
        _provenance,
        _timed,
        _value,
        ab_checks,
        power_rows,
    )

    timings: dict[str, float] = {}
    with _timed(timings, "load_data"):
        summary = summarize_spec(spec)
    alpha = spec.alpha
    with _timed(timings, "checks"):
        checks = ab_checks(spec, summary, ab_sums)
    with _timed(timings, "estimators"):
        results = _estimate_all(spec, summary, checks, estimate=ab_sums.estimate)
    primary = _primary(spec, results)
    with _timed(timings, "segments"):
        segments = ab_sums.segment_effects(summary, primary["outcome"], alpha=alpha)
    power = power_rows(results, primary, alpha=alpha)
    value = _value(spec, results, primary) if spec.value is not None else None
    return ExperimentResults(
        experiment=_experiment_block(spec),
        results=tuple(results),
        primary=primary,
        checks=tuple(checks),
        segments=segments,
        power=power,
        value=value,
        provenance=_provenance(
            spec, summary.fingerprint, summary.n_units, timings, computed="aggregates"
        ),
    )


def summarize_spec(spec: Spec):
    """The spec's analysis table, validated and summarised in its engine (an ``ABSummary``
    with ``n_units``, ``n_treated``, ``missing`` and ``fingerprint``, like a Dataset)."""
    from causal.designs.ab_sums_sql import summarize

    engine = open_engine(spec)
    try:
        for name, source in spec.data.sources.items():
            engine.register(name, source, base_dir=spec.base_dir, seed=spec.seed)
        sql = spec.data.query or f"SELECT * FROM {engine.quote(next(iter(spec.data.sources)))}"
        # Several passes read the table: build it once, in the engine.
        try:
            engine.create_view(ANALYSIS_VIEW, sql, materialize=True)
        except DataError as exc:
            raise DataError(f"data.query: {exc}") from None
        return summarize(
            engine,
            ANALYSIS_VIEW,
            unit=spec.unit,
            treatment=spec.treatment,
            outcomes={o.column: o.kind for o in spec.outcomes},
            covariates=tuple(spec.covariates),
            segments=tuple(spec.segments),
        )
    finally:
        engine.close()
