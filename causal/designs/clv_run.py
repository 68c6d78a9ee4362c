"""The ``clv`` design end to end: transaction log → BG/NBD and Gamma–Gamma → lifetime value.

The analysis table is the transaction log (the spec's ``unit`` is the customer column, its one
outcome the spend of each transaction). The headline is the mean discounted CLV per customer
over the horizon, or, with ``design.group``, the difference in mean CLV between the two groups,
each fitted with its own models: the lifetime value of whatever separates them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from causal.checks import CheckResult
from causal.data.dataset import fingerprint, query_table
from causal.errors import DataError
from causal.results import Result
from causal.spec import Spec

ESTIMATOR = "bg_nbd_gamma_gamma"
PERIOD_CODE = {"week": "W", "day": "D"}
HOLDOUT_TOLERANCE = 0.10  # aggregate forecast within 10% of the actual hold-out repeat purchases


def monthly_rate(annual_rate: float) -> float:
    """Monthly discount rate equivalent to an annual one.

    Examples
    --------
    >>> round(monthly_rate(0.1268250301), 6)
    0.01
    """
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def run_clv(spec: Spec) -> dict[str, Any]:
    """Fit the models, value the customers, and return the runner's dict for the pipeline.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> run = run_clv(load_spec("experiments/cdnow_clv.yaml"))
    >>> fit = run["results"][0].details["bgnbd"]["params"]
    >>> round(fit["r"], 3), round(fit["alpha"], 3), round(fit["a"], 3), round(fit["b"], 3)
    (0.243, 4.414, 0.793, 2.426)
    """
    from causal.designs.clv import (
        clv_difference,
        fit_bgnbd,
        fit_gamma_gamma,
        mean_clv,
        summarise_transactions,
    )

    design = spec.design
    log = query_table(spec)
    spend = spec.outcomes[0].column
    summary = summarise_transactions(
        log,
        customer=spec.unit,
        date=design.date_column,
        amount=spend,
        calibration_end=design.calibration_end,
        observation_end=design.observation_end,
        period=PERIOD_CODE[design.period],
    )
    options = {
        "horizon_months": design.horizon_months,
        "discount_rate": monthly_rate(design.annual_discount_rate),
        "margin": design.gross_margin,
        "conf_level": 1 - spec.alpha,
        "n_draws": design.bootstrap_replications,
        "seed": spec.seed,
    }
    bgnbd, gamma = fit_bgnbd(summary), fit_gamma_gamma(summary)
    checks = [_convergence(bgnbd, gamma), *gamma.diagnostics, _holdout(bgnbd, summary)]
    details: dict[str, Any] = {
        "bgnbd": bgnbd.to_dict(),
        "gamma_gamma": gamma.to_dict(),
        "customers": _customer_profile(bgnbd, gamma, summary, options),
        "settings": {
            "calibration_end": str(design.calibration_end),
            "observation_end": str(design.observation_end) if design.observation_end else None,
            "period": design.period,
            "annual_discount_rate": design.annual_discount_rate,
            "monthly_discount_rate": options["discount_rate"],
            "gross_margin": design.gross_margin,
        },
    }
    overall = mean_clv(bgnbd, gamma, summary, **options)
    details["clv"] = overall.to_dict()
    if design.group is None:
        result = _result(spec, overall, summary, estimand=f"mean {design.horizon_months}-month CLV")
    else:
        groups = _group_of_customer(log, spec.unit, design.group, summary)
        diff = clv_difference(summary.subset(groups == 1), summary.subset(groups == 0), **options)
        details["difference"] = diff.to_dict()
        result = _result(
            spec,
            diff,
            summary,
            estimand=f"difference in mean {design.horizon_months}-month CLV "
            f"({design.group} = 1 minus 0)",
            n_treated=int((groups == 1).sum()),
        )
    result = result.with_details(**details)
    return {
        "results": [result],
        "primary": {"outcome": spend, "estimator": ESTIMATOR},
        "checks": checks,
        "fingerprint": fingerprint(log),
        "n_rows": len(log),
        "population_default": len(summary),
    }


def _result(spec: Spec, est, summary, *, estimand: str, n_treated: int = 0) -> Result:
    from scipy import stats

    z = est.estimate / est.std_error if est.std_error > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan
    return Result(
        estimator=ESTIMATOR,
        estimand=estimand,
        outcome=spec.outcomes[0].column,
        estimate=float(est.estimate),
        std_error=float(est.std_error),
        conf_low=float(est.conf_low),
        conf_high=float(est.conf_high),
        p_value=p,
        n_units=len(summary),
        n_treated=n_treated,
        conf_level=1 - spec.alpha,
    )


def _group_of_customer(log: pd.DataFrame, unit: str, group: str, summary) -> np.ndarray:
    if group not in log.columns:
        raise DataError(
            f"design.group: column {group!r} is not in the transaction log; add it to data.query"
        )
    per_customer = log.groupby(unit)[group].agg(["min", "max"])
    mixed = per_customer["min"] != per_customer["max"]
    if mixed.any():
        raise DataError(
            f"design.group: {int(mixed.sum())} customers have both values of {group!r} "
            f"(e.g. {per_customer.index[mixed][0]!r}); the group must be fixed per customer"
        )
    values = per_customer["min"].reindex(summary.customer).to_numpy()
    if not np.isin(values, [0, 1]).all():
        raise DataError(f"design.group: {group!r} must be 0 or 1 for every customer")
    return values.astype(np.int64)


def _convergence(bgnbd, gamma) -> CheckResult:
    ok = bgnbd.converged and gamma.converged
    detail = (
        "both likelihoods reached a maximum with a finite, positive-definite Hessian"
        if ok
        else "the optimiser stopped before a maximum; the parameters and intervals are unreliable"
    )
    return CheckResult("clv_convergence", "pass" if ok else "fail", detail)


def _holdout(bgnbd, summary) -> CheckResult:
    if summary.frequency_holdout is None:
        return CheckResult(
            "clv_holdout_forecast", "n/a", "no design.observation_end, so no hold-out period"
        )
    expected = float(
        bgnbd.conditional_expected_purchases(
            summary.duration_holdout, summary.frequency, summary.recency, summary.T
        ).sum()
    )
    actual = float(np.sum(summary.frequency_holdout))
    gap = expected / actual - 1 if actual > 0 else math.inf
    status = "pass" if abs(gap) <= HOLDOUT_TOLERANCE else "warn"
    return CheckResult(
        "clv_holdout_forecast",
        status,
        f"the model expected {expected:,.0f} repeat purchases in the hold-out period and "
        f"{actual:,.0f} happened ({gap:+.1%}; warns beyond ±{HOLDOUT_TOLERANCE:.0%})",
    )


def _customer_profile(bgnbd, gamma, summary, options) -> dict[str, Any]:
    """Distribution of CLV and P(alive) over customers, for the report."""
    from causal.designs.clv import customer_lifetime_value

    clv = customer_lifetime_value(
        bgnbd,
        gamma,
        summary,
        horizon_months=options["horizon_months"],
        discount_rate=options["discount_rate"],
        margin=options["margin"],
    )
    alive = bgnbd.probability_alive(summary.frequency, summary.recency, summary.T)
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    frame = pd.DataFrame(
        {"frequency": np.minimum(summary.frequency, 7), "alive": alive, "clv": clv}
    )
    aggregations = {
        "customers": ("clv", "size"),
        "mean_alive": ("alive", "mean"),
        "mean_clv": ("clv", "mean"),
    }
    if summary.frequency_holdout is not None:  # FHL (2005) Figure 4: conditional expectations
        frame["expected_holdout"] = bgnbd.conditional_expected_purchases(
            summary.duration_holdout, summary.frequency, summary.recency, summary.T
        )
        frame["actual_holdout"] = np.asarray(summary.frequency_holdout, dtype=float)
        aggregations["expected_holdout"] = ("expected_holdout", "mean")
        aggregations["actual_holdout"] = ("actual_holdout", "mean")
    by_frequency = frame.groupby("frequency").agg(**aggregations).reset_index()
    return {
        "n_customers": len(summary),
        "n_repeat_customers": int((summary.frequency > 0).sum()),
        "clv_quantiles": {str(q): float(np.quantile(clv, q)) for q in quantiles},
        "clv_top_decile_share": float(np.sort(clv)[-max(len(clv) // 10, 1) :].sum() / clv.sum()),
        "mean_probability_alive": float(alive.mean()),
        "by_frequency": by_frequency.to_dict(orient="records"),
    }
