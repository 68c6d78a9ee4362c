"""Time-to-event outcomes of an A/B spec: RMST difference, churn at named horizons and the Cox
hazard ratio with the spec's covariates (:mod:`causal.designs.survival`, lifelines underneath).

A duration censored at the end of follow-up is not a smaller outcome, so the A/B estimators
(differences in means) are never run on it.
"""

from __future__ import annotations

from dataclasses import replace

from causal.checks import CheckResult
from causal.data.dataset import Dataset
from causal.errors import DataError, DesignError
from causal.results import Result
from causal.spec import Outcome, Spec


def survival_results(
    spec: Spec, data: Dataset, outcome: Outcome, checks: list[CheckResult]
) -> list[Result]:
    """RMST difference (the headline), churn at each horizon and the Cox hazard ratio.

    Examples
    --------
    >>> from causal.data.dataset import load_dataset
    >>> from causal.spec import load_spec
    >>> spec = load_spec("experiments/rossi_financial_aid.yaml")
    >>> results = survival_results(spec, load_dataset(spec), spec.outcomes[0], [])
    >>> [r.estimator for r in results]
    ['rmst_difference', 'churn_at_26', 'churn_at_52', 'cox_ph']
    """
    from causal.designs.survival import churn_difference, cox_hazard_ratio, rmst_difference

    table = data.table
    if outcome.event not in table.columns:
        raise DataError(
            f"outcomes.{outcome.column}.event: column {outcome.event!r} is not in the analysis "
            "table; add the 0/1 event column to data.query"
        )
    duration, event = table[outcome.column], table[outcome.event]
    arm = table[data.treatment]
    rmst = rmst_difference(duration, event, arm, horizon=outcome.rmst_horizon, alpha=spec.alpha)
    results = [replace(rmst, outcome=outcome.column)]
    if outcome.churn_horizons:
        churn = churn_difference(
            duration, event, arm, horizons=list(outcome.churn_horizons), alpha=spec.alpha
        )
        for r in churn:
            name = f"churn_at_{r.details['horizon']:g}"
            results.append(replace(r, estimator=name, outcome=outcome.column))
    try:
        cox = cox_hazard_ratio(
            table,
            duration=outcome.column,
            event=outcome.event,
            treatment=data.treatment,
            covariates=list(data.covariates),
            alpha=spec.alpha,
        )
    except DesignError as exc:  # one estimator failing must not hide the others
        checks.append(CheckResult(f"estimator cox_ph on {outcome.column}", "n/a", str(exc)))
    else:
        results.append(replace(cox, estimator="cox_ph", outcome=outcome.column))
        checks.extend(cox.diagnostics)
    return results
