"""The ``long_term`` block of an A/B spec: horizons, surrogate index, NPS, and the value of the
service over time (short-term money, predicted long-term money, payback).

Called by the pipeline after the A/B estimators; returns a JSON-safe block for results.json and
the checks it adds (the surrogacy validation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from causal.checks import CheckResult
from causal.data.dataset import Dataset, require_columns
from causal.errors import DataError
from causal.spec import Spec
from causal.spec_long_term import Horizons, LongTerm, SurrogateIndex

ASSUMPTIONS = {
    "short_term": "Randomised pilot: the difference between the arms over the months observed "
    "is caused by the service; nothing after that is counted.",
    "surrogate": "Surrogacy: the service changes {horizon:g}-month revenue only through the "
    "short-term signals ({signals}), as it did for historical customers; this cannot be "
    "proven, only checked on past experiments.",
}


def run_long_term(
    spec: Spec, data: Dataset, value: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[CheckResult]]:
    """Estimate everything the spec's ``long_term`` block asks for.

    Returns
    -------
    (block, checks)
        ``block`` has ``horizons``, ``surrogate``, ``nps`` and ``service_value`` (each only
        when asked for); ``checks`` the surrogacy validation.
    """
    settings: LongTerm = spec.long_term
    table = data.table
    treated = table[data.treatment].to_numpy()
    block: dict[str, Any] = {"annual_discount_rate": settings.annual_discount_rate}
    checks: list[CheckResult] = []
    fx = surrogate = None
    if settings.horizons is not None:
        fx = _horizons(settings.horizons, table, treated, spec)
        block["horizons"] = fx.to_dict() | {"label": settings.horizons.label}
    if settings.surrogate is not None:
        surrogate = _surrogate(settings.surrogate, spec, table, data.treatment)
        block["surrogate"] = surrogate.to_dict() | {
            "horizon": settings.surrogate.horizon,
            "label": settings.surrogate.label,
        }
        checks.extend(surrogate.long_term.diagnostics)
    if settings.nps:
        block["nps"] = [_nps(item.column, table, treated, spec, surrogate) for item in settings.nps]
    if settings.csat:
        block["csat"] = [
            _csat(item.column, item.satisfied_from, table, treated, spec, surrogate)
            for item in settings.csat
        ]
    clv = None
    if settings.clv is not None and spec.value is not None and spec.value.gross_margin:
        from causal.designs.long_term_clv import lifetime_value_difference

        clv = lifetime_value_difference(spec, table, data.treatment, margin=spec.value.gross_margin)
        block["clv"] = clv
        if not clv["identified"]:
            checks.append(CheckResult("lifetime_value_fit", "warn", clv["reason"]))
            clv = None
    money = _service_value(spec, settings, table, treated, value, fx, surrogate, clv)
    if money is not None:
        block["service_value"] = money
    return block, checks


def _horizons(settings: Horizons, table: pd.DataFrame, treated: np.ndarray, spec: Spec):
    from causal.designs.horizons import horizon_effects

    columns = list(settings.columns.values())
    require_columns(
        table,
        [*columns, *([settings.followup] if settings.followup else [])],
        field="long_term.horizons",
    )
    values = np.column_stack([_numeric(table, c, "long_term.horizons") for c in columns])
    followup = None
    if settings.followup is not None:
        followup = _numeric(table, settings.followup, "long_term.horizons.followup")
    return horizon_effects(
        values,
        treated,
        horizons=list(settings.columns),
        followup=followup,
        cumulative=settings.cumulative,
        conf_level=1 - spec.alpha,
        seed=spec.seed,
        outcome=settings.label or columns[-1],
        columns=columns,
        time_unit=settings.time_unit,
    )


def _surrogate(settings: SurrogateIndex, spec: Spec, table: pd.DataFrame, treatment: str):
    from causal.data.dataset import run_query
    from causal.designs.surrogate import surrogate_index

    historical = run_query(spec, settings.source_sql, what="long_term.surrogate.historical")
    return surrogate_index(
        historical,
        table,
        surrogates=list(settings.surrogates),
        long_outcome=settings.long_outcome,
        treatment=treatment,
        covariates=list(settings.covariates),
        learner=settings.learner,
        folds=settings.folds,
        bootstrap_replications=settings.bootstrap_replications,
        alpha=spec.alpha,
        seed=spec.seed,
        experiment_id=settings.experiment_id,
    )


def _nps(column: str, table: pd.DataFrame, treated: np.ndarray, spec: Spec, surrogate) -> dict:
    from causal.designs.nps import nps_difference

    require_columns(table, [column], field="long_term.nps")
    record = nps_difference(
        _numeric(table, column, "long_term.nps"), treated, column=column, alpha=spec.alpha
    ).to_dict()
    record["worth_in_revenue"] = _worth(column, surrogate, spec.alpha)
    return record


def _csat(column, satisfied_from, table, treated, spec: Spec, surrogate) -> dict:
    from causal.designs.nps import satisfied_share_difference

    require_columns(table, [column], field="long_term.csat")
    record = satisfied_share_difference(
        _numeric(table, column, "long_term.csat"),
        treated,
        satisfied_from=satisfied_from,
        column=column,
        alpha=spec.alpha,
    )
    record["worth_in_revenue"] = _worth(column, surrogate, spec.alpha)
    return record


def _worth(column: str, surrogate, alpha: float) -> dict | None:
    """What the change in one surrogate is worth in long-term revenue (linear index only)."""
    if surrogate is None or surrogate.contributions is None:
        return None
    row = next((c for c in surrogate.contributions if c["term"] == column), None)
    return (
        None if row is None else _with_interval(row["contribution"], row["contribution_se"], alpha)
    )


def _with_interval(estimate: float, std_error: float, alpha: float) -> dict[str, float]:
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2))
    return {
        "estimate": float(estimate),
        "std_error": float(std_error),
        "conf_low": float(estimate - z * std_error),
        "conf_high": float(estimate + z * std_error),
    }


def _service_value(spec, settings, table, treated, value, fx, surrogate, clv) -> dict | None:
    """Money lines side by side and the payback period; None without a gross margin."""
    from causal.value_long_term import discount_weights, money_line, payback_period

    if value is None or spec.value is None or spec.value.gross_margin is None:
        return None
    margin = spec.value.gross_margin
    population = int(value["population"])
    conf = 1 - spec.alpha
    lines = []
    times, curve, cov = [], np.zeros(0), np.zeros((0, 0))
    if fx is not None:
        complete = _last_complete(fx, len(treated))
        total, total_se = fx.running_totals()
        lines.append(
            money_line(
                "short_term",
                f"Pilot, first {fx.horizons[complete]:g} {fx.time_unit}s",
                float(total[complete]),
                float(total_se[complete]),
                margin=margin,
                population=population,
                assumption=ASSUMPTIONS["short_term"],
                conf_level=conf,
            )
        )
        times, curve, cov = _cumulative_curve(fx)
    if surrogate is not None:
        long = surrogate.long_term
        lines.append(
            money_line(
                "long_term",
                f"Predicted, {settings.surrogate.horizon:g} months (surrogate index)",
                long.estimate,
                long.std_error,
                margin=margin,
                population=population,
                assumption=ASSUMPTIONS["surrogate"].format(
                    horizon=settings.surrogate.horizon,
                    signals=", ".join(settings.surrogate.surrogates),
                ),
                conf_level=conf,
            )
        )
        followup = None
        if fx is not None and settings.horizons.followup is not None:
            followup = table[settings.horizons.followup].to_numpy(dtype=float)
        times, curve, cov = _with_long_point(
            times,
            curve,
            cov,
            settings.surrogate.horizon,
            surrogate,
            table,
            treated,
            fx,
            followup,
        )
    if clv is not None:
        from causal.designs.long_term_clv import ASSUMPTION
        from causal.value_long_term import MoneyLine

        lines.append(
            MoneyLine(
                "lifetime_value",
                f"Lifetime value, next {clv['horizon_months']} months (BG/NBD + Gamma–Gamma "
                "by arm)",
                clv["estimate"],
                clv["std_error"],
                clv["conf_low"],
                clv["conf_high"],
                population,
                ASSUMPTION,
            )
        )
    if not lines:
        return None
    if not times:
        return _money_block(value, margin, population, lines, None, conf)
    weights = discount_weights(times, annual_rate=settings.annual_discount_rate)
    profit = margin * weights @ curve
    profit_cov = margin**2 * weights @ cov @ weights.T
    cost = spec.intervention.cost_per_treated_unit
    payback = payback_period(
        times, profit, profit_cov, cost_per_customer=cost, conf_level=conf, seed=spec.seed
    )
    return _money_block(value, margin, population, lines, payback if cost > 0 else None, conf)


def _money_block(value, margin, population, lines, payback, conf) -> dict[str, Any]:
    return {
        "currency": value["currency"],
        "gross_margin": margin,
        "population": population,
        "population_label": value.get("population_label", "Rolled out to {n} units"),
        "lines": [line.to_dict() for line in lines],
        "payback": payback.to_dict() if payback is not None else None,
        "conf_level": conf,
    }


def _last_complete(fx, n_units: int) -> int:
    """Index of the longest horizon at which every unit is followed (else the first)."""
    complete = [j for j in range(len(fx.horizons)) if fx.n_treated[j] + fx.n_control[j] == n_units]
    return complete[-1] if complete else 0


def _cumulative_curve(fx) -> tuple[list[float], np.ndarray, np.ndarray]:
    total, _ = fx.running_totals()
    k = len(total)
    lower = np.tril(np.ones((k, k))) if not fx.cumulative else np.eye(k)
    return list(fx.horizons), total, lower @ fx.covariance @ lower.T


def _with_long_point(times, curve, cov, horizon, surrogate, table, treated, fx, followup):
    """Append the surrogate's long-horizon effect to the curve. Its covariance with the pilot's
    horizons comes from the experiment side only (the index model is fitted on other people):
    the stacked influence functions of the horizon columns and the per-unit index. Its own
    variance is the bootstrap's, which adds the index model's estimation error."""
    from causal.designs.horizons import horizon_effects

    long = surrogate.long_term
    if times and horizon <= times[-1]:
        return times, curve, cov  # the pilot already covers that long
    k = len(times)
    joint = np.zeros((k + 1, k + 1))
    if fx is not None:
        values = np.column_stack([table[c].to_numpy(dtype=float) for c in fx.columns])
        if followup is not None:  # as the horizon estimator saw them
            values = np.where(followup[:, None] >= np.asarray(fx.horizons) - 1e-9, values, np.nan)
        stacked = np.column_stack([values, surrogate.index])
        both = horizon_effects(stacked, treated, horizons=[*fx.horizons, horizon], band_draws=1)
        to_totals = np.eye(k + 1)
        if not fx.cumulative:
            to_totals[:k, :k] = np.tril(np.ones((k, k)))
        joint = to_totals @ both.covariance @ to_totals.T
    joint[k, k] = long.std_error**2
    return [*times, horizon], np.append(curve, long.estimate), joint


def _numeric(table: pd.DataFrame, column: str, field: str) -> np.ndarray:
    try:
        return pd.to_numeric(table[column], errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        raise DataError(
            f"{field}: column {column!r} must be numeric (got {table[column].dtype}); "
            "cast it in data.query"
        ) from None
