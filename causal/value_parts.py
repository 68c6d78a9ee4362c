"""The parts of a service's value that are not revenue: retained customers' margin (from a
time-to-event outcome) and the total of gross profit, cost saved and retention, whose interval
needs the covariance of estimates from the same customers.

The total's interval is a bootstrap over units, stratified by arm (the arms' sizes fixed, as
randomised): in each replicate the difference in means of each unit's gross profit minus cost,
plus margin × the difference in (discounted) restricted mean survival time from the replicate's
Kaplan–Meier curves. Percentile interval; the standard error is the draws' standard deviation.
"""

from __future__ import annotations

import math

import numpy as np

from causal.data.dataset import Dataset
from causal.errors import DesignError
from causal.progress import progress
from causal.results import Result
from causal.spec import Spec


def retention_result(spec: Spec, results: list[Result]) -> tuple[Result, dict]:
    """Money per treated customer from the extra retained time, as a Result, and its record."""
    from dataclasses import replace

    from causal.designs.survival_value import retained_time_value

    settings = spec.value.retention
    rmst = next(
        (r for r in results if r.outcome == settings.outcome and r.estimator == "rmst_difference"),
        None,
    )
    if rmst is None:
        raise DesignError(f"value.retention: no RMST estimate of {settings.outcome!r}")
    value = retained_time_value(
        rmst,
        margin_per_period=settings.margin_per_period,
        annual_discount_rate=settings.annual_discount_rate,
        periods_per_year=settings.periods_per_year,
    )
    result = Result.from_estimate(
        "retained_margin",
        "ATE",
        settings.outcome,
        value.per_customer,
        value.std_error,
        n_units=rmst.n_units,
        n_treated=rmst.n_treated,
        alpha=spec.alpha,
    )
    return replace(result, conf_low=value.conf_low, conf_high=value.conf_high), value.to_dict()


def bootstrap_total(spec: Spec, data: Dataset, *, estimator: str) -> tuple[Result, dict]:
    """Gross profit + cost saved + retained margin per treated customer, with the bootstrap
    interval described in the module docstring.

    Examples
    --------
    >>> from causal.data.dataset import load_dataset
    >>> from causal.spec import load_spec
    >>> spec = load_spec("experiments/remote_support_costs_churn.yaml")
    >>> total, info = bootstrap_total(spec, load_dataset(spec), estimator="lin")
    >>> total.conf_low < total.estimate < total.conf_high, info["replications"]
    (True, 500)
    """
    from causal.designs.survival_value import discount_rate_per_period, event_table, rmst_from_table

    settings, table = spec.value, data.table
    arm = table[data.treatment].to_numpy().astype(np.int64)
    profit = _per_unit_profit(spec, table)
    retention = settings.retention
    outcome = spec.outcome(retention.outcome)
    duration = table[outcome.column].to_numpy(dtype=float)
    event = table[outcome.event].to_numpy().astype(np.int64)
    rate = discount_rate_per_period(retention.annual_discount_rate, retention.periods_per_year)
    margin = retention.margin_per_period

    X = _covariates(data) if estimator in ("lin", "cuped") else None

    def total(rows: np.ndarray) -> float:
        a = arm[rows]
        value = _effect(estimator, profit[rows], a, None if X is None else X[rows])
        for sign, group in ((1.0, 1), (-1.0, 0)):
            mine = rows[a == group]
            km = event_table(duration[mine], event[mine])
            rmst, _, _ = rmst_from_table(
                km["time"], km["at_risk"], km["events"], horizon=outcome.rmst_horizon, rate=rate
            )
            value += sign * margin * rmst
        return float(value)

    everyone = np.arange(len(arm))
    estimate = total(everyone)
    rng = np.random.default_rng(spec.seed)
    groups = [np.flatnonzero(arm == g) for g in (0, 1)]
    reps = retention.bootstrap_replications
    draws = np.empty(reps)
    for b in progress(range(reps), desc="value bootstrap", total=reps):
        rows = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        draws[b] = total(rows)
    low, high = np.quantile(draws, [spec.alpha / 2, 1 - spec.alpha / 2])
    se = float(np.std(draws, ddof=1))
    z = estimate / se if se > 0 else math.nan
    from scipy import stats

    result = Result(
        "bootstrap_total",
        "ATE",
        "gross_profit_cost_saved_retention",
        estimate,
        se,
        float(low),
        float(high),
        float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan,
        len(arm),
        int(arm.sum()),
        conf_level=1 - spec.alpha,
    )
    info = {
        "replications": reps,
        "seed": spec.seed,
        "method": f"bootstrap over units within arm: {estimator} on gross profit minus cost "
        "plus margin x difference in discounted RMST, re-estimated per replicate; percentile "
        "interval",
    }
    return result, info


def _effect(estimator: str, y: np.ndarray, d: np.ndarray, X: np.ndarray | None) -> float:
    """Point estimate only (the bootstrap needs no per-replicate SE): the same algebra as
    :mod:`causal.designs.abtest`'s estimators, which a test checks on the full sample."""
    if estimator == "difference_in_means" or X is None:
        return float(y[d == 1].mean() - y[d == 0].mean())
    Xc = X - X.mean(axis=0)
    if estimator == "cuped":
        theta, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), Xc]), y, rcond=None)
        adjusted = y - Xc @ theta[1:]
        return float(adjusted[d == 1].mean() - adjusted[d == 0].mean())
    design = np.column_stack([np.ones(len(y)), d, Xc, Xc * d[:, None]])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(coef[1])


def _covariates(data: Dataset) -> np.ndarray:
    return data.table[list(data.covariates)].to_numpy(dtype=float)


def _per_unit_profit(spec: Spec, table) -> np.ndarray:
    settings = spec.value
    if settings.profit_outcome is not None:
        profit = table[settings.profit_outcome].to_numpy(dtype=float)
    else:
        profit = settings.gross_margin * table[settings.outcome].to_numpy(dtype=float)
    if settings.cost_outcome is not None:
        profit = profit - table[settings.cost_outcome].to_numpy(dtype=float)
    return profit
