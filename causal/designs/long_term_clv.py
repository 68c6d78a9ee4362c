"""The lifetime-value line of an A/B spec's ``long_term`` block: BG/NBD and Gamma–Gamma fitted
on each arm's transactions, the difference in expected discounted margin per customer over the
next months (the models and their intervals are :mod:`causal.designs.clv`'s)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from causal.errors import DataError

ASSUMPTION = (
    "Lifetime value: each arm keeps buying and dropping out at the rates BG/NBD and Gamma–Gamma "
    "fit on the months observed; an effect that starts later than that is not seen."
)


def lifetime_value_difference(spec, data_table: pd.DataFrame, treatment: str, *, margin: float):
    """Fit each arm and return the ``clv_difference`` record (JSON-safe) and its line inputs.

    Raises
    ------
    DataError
        A transaction's customer is not in the analysis table, or an arm has no transactions.
    """
    from causal.data.dataset import require_columns, run_query
    from causal.designs.clv import clv_difference, summarise_transactions
    from causal.designs.clv_run import PERIOD_CODE, monthly_rate

    settings = spec.long_term.clv
    log = run_query(spec, settings.source_sql, what="long_term.clv.transactions")
    require_columns(
        log,
        [settings.customer, settings.date_column, settings.amount],
        field="long_term.clv",
        where="transactions query",
    )
    summary = summarise_transactions(
        log,
        customer=settings.customer,
        date=settings.date_column,
        amount=settings.amount,
        calibration_end=settings.calibration_end,
        period=PERIOD_CODE[settings.period],
    )
    arm = pd.Series(data_table[treatment].to_numpy(), index=data_table[spec.unit].to_numpy())
    arms = arm.reindex(summary.customer)
    if arms.isna().any():
        missing = summary.customer[arms.isna().to_numpy()]
        raise DataError(
            f"long_term.clv: {len(missing)} customers of the transactions are not in the "
            f"analysis table (e.g. {missing[0]!r}); the query must keep to the pilot's units"
        )
    arms = arms.to_numpy().astype(np.int64)
    unidentified = _unidentified(summary, arms)
    if unidentified:
        return {"identified": False, "reason": unidentified, "n_customers": len(summary),
                "horizon_months": settings.horizon_months}  # fmt: skip
    diff = clv_difference(
        summary.subset(arms == 1),
        summary.subset(arms == 0),
        horizon_months=settings.horizon_months,
        discount_rate=monthly_rate(spec.long_term.annual_discount_rate),
        margin=margin,
        n_draws=settings.bootstrap_replications,
        conf_level=1 - spec.alpha,
        seed=spec.seed,
    )
    record: dict[str, Any] = {"identified": True, **diff.to_dict()}
    record["n_customers"] = len(summary)
    record["horizon_months"] = settings.horizon_months
    return record


def _unidentified(summary, arms: np.ndarray) -> str:
    """Why the models cannot be fitted on some arm ('' when both arms' fits converge): a
    likelihood that keeps rising towards a boundary (e.g. no drop-out visible in a short
    pilot) has no interval, so no lifetime value is reported rather than a wrong one."""
    from causal.designs.clv import fit_bgnbd, fit_gamma_gamma

    for label, arm in (("treated", 1), ("control", 0)):
        part = summary.subset(arms == arm)
        for name, fit in (("BG/NBD", fit_bgnbd), ("Gamma–Gamma", fit_gamma_gamma)):
            model = fit(part)
            if not model.converged:
                params = ", ".join(f"{k} = {v:.3g}" for k, v in model.params.items())
                return (
                    f"the {name} fit on the {label} arm's transactions does not converge "
                    f"({params}): the months observed do not identify its parameters (for "
                    "BG/NBD typically no drop-out visible yet), so the lifetime value is not "
                    "estimated"
                )
    return ""
