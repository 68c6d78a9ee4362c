"""The ``observational`` design block of a spec: treatment was chosen, not randomised."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from causal.designs.registry import OUTCOME_LEARNERS, PROPENSITY_LEARNERS

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
Column = Annotated[str, Field(pattern=_IDENTIFIER)]
Refuter = Literal["placebo_treatment", "random_common_cause", "data_subset"]


class ObservationalDesign(BaseModel):
    """Customers chose the service; confounders are adjusted for under an explicit graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["observational"]
    estimand: Literal["ATE", "ATT", "ATC"] = Field(
        "ATE", description="Average effect over everyone (ATE), the treated (ATT) or the rest."
    )
    confounders: list[Column] = Field(
        default_factory=list,
        description="Pre-treatment columns that drive both treatment and outcome. Without a "
        "graph they are the adjustment set; with a graph, dowhy finds the set.",
    )
    effect_modifiers: list[Column] = Field(
        default_factory=list, description="Columns the effect may vary with (CATE by bins)."
    )
    graph: str | list[tuple[str, str]] | None = Field(
        None,
        description="Causal graph: a list of [cause, effect] edges or a DOT digraph. Nodes that "
        "are not columns must be listed under 'unobserved'.",
    )
    unobserved: list[Column] = Field(
        default_factory=list, description="Graph nodes that are not measured (e.g. U)."
    )
    outcome_learner: str = Field(
        "gradient_boosting", description="Outcome model of AIPW and double ML (a learner name)."
    )
    propensity_learner: str = Field(
        "logistic", description="Propensity model of AIPW and double ML (a learner name)."
    )
    folds: int = Field(5, ge=2, le=20, description="Cross-fitting folds (seeded by the spec).")
    propensity_bounds: tuple[float, float] = Field(
        (0.01, 0.99), description="Propensities outside are clipped or trimmed (see rule)."
    )
    propensity_rule: Literal["clip", "trim"] = Field(
        "clip",
        description="clip: weights use the bound; trim: units outside are dropped (the "
        "estimand then refers to the trimmed population).",
    )
    overlap_bounds: tuple[float, float] = Field(
        (0.05, 0.95), description="The overlap check reports the share of units outside."
    )
    balance_threshold: float = Field(0.1, gt=0, description="|SMD| above which balance warns.")
    refuters: list[Refuter] = Field(
        default_factory=lambda: ["placebo_treatment", "random_common_cause", "data_subset"],
        description="dowhy refuters to run on the regression estimate ([] for none).",
    )
    refuter_simulations: int = Field(
        20, ge=1, le=1000, description="Simulations per refuter (caps the report's run time)."
    )
    sensitivity_benchmarks: list[Column] = Field(
        default_factory=list,
        description="Confounders used as Cinelli–Hazlett benchmarks (default: the strongest "
        "three).",
    )

    @field_validator("outcome_learner")
    @classmethod
    def _known_outcome_learner(cls, name: str) -> str:
        return _known(name, OUTCOME_LEARNERS, "outcome learner")

    @field_validator("propensity_learner")
    @classmethod
    def _known_propensity_learner(cls, name: str) -> str:
        return _known(name, PROPENSITY_LEARNERS, "propensity learner")

    @model_validator(mode="after")
    def _consistent(self) -> ObservationalDesign:
        if not self.confounders and self.graph is None:
            raise ValueError(
                "list the confounders (design.confounders) or give a causal graph "
                "(design.graph); without either nothing is adjusted for"
            )
        for name, (low, high) in (
            ("propensity_bounds", self.propensity_bounds),
            ("overlap_bounds", self.overlap_bounds),
        ):
            if not 0 <= low < 0.5 < high <= 1:
                raise ValueError(f"{name}: expected [low, high] with 0 <= low < 0.5 < high <= 1")
        if self.unobserved and self.graph is None:
            raise ValueError("unobserved nodes only make sense in a graph (design.graph)")
        return self


def _known(name: str, known: tuple[str, ...], what: str) -> str:
    if name not in known:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return name
