"""Cross-field rules of a spec that concern one design or one value option (called from
``Spec``'s validator; each raises ValueError, which the loader turns into a located SpecError)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from causal.spec import Spec


def _check_uplift(spec: Spec) -> None:
    """Top-level fields the uplift design replaces by its own."""
    if spec.covariates or spec.segments:
        raise ValueError(
            "covariates and segments are not used by the uplift design; list the columns the "
            "uplift may depend on under design.features"
        )
    if spec.estimators is not None:
        raise ValueError("estimators: the uplift design compares design.learners instead")
    if spec.value is not None:
        raise ValueError(
            "value: the uplift design prices its policy with design.money "
            "(value_per_unit, cost_per_contact, currency)"
        )
    if len(spec.outcomes) != 1:
        raise ValueError(
            "outcomes: the uplift design models one outcome (the one the policy should raise); "
            f"got {len(spec.outcomes)}"
        )
    for column in (spec.unit, spec.treatment, spec.outcomes[0].column):
        if column in spec.design.features:
            raise ValueError(f"design.features: {column!r} is the unit, treatment or outcome")


def _check_retention(spec: Spec) -> None:
    column = spec.value.retention.outcome
    match = [o for o in spec.outcomes if o.column == column]
    if not match or match[0].kind != "time_to_event":
        raise ValueError(
            f"value.retention.outcome: {column!r} must be one of the outcomes, of kind "
            "time_to_event"
        )
    if spec.design.kind != "ab_test":
        raise ValueError("value.retention: retained time is counted for the ab_test design only")


def _check_cost_outcome(spec: Spec) -> None:
    column = spec.value.cost_outcome
    match = [o for o in spec.outcomes if o.column == column]
    if match and match[0].kind != "cost":
        raise ValueError(
            f"value.cost_outcome: {column!r} is an outcome of kind {match[0].kind!r}; "
            "declare it kind: cost (money spent per unit)"
        )
    if spec.design.kind != "ab_test":
        raise ValueError("value.cost_outcome: costs saved are counted for the ab_test design only")


def _check_clv(spec: Spec) -> None:
    """The clv design reads a transaction log: unit = customer, first outcome = spend."""
    if spec.covariates or spec.segments or spec.estimators is not None or spec.value is not None:
        raise ValueError(
            "covariates, segments, estimators and value are not used by the clv design; "
            "its settings (margin, horizon, discount rate) are under design"
        )
    if len(spec.outcomes) != 1:
        raise ValueError("outcomes: the clv design takes one outcome, the spend per transaction")
