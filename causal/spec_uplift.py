"""The ``uplift`` design block of a spec: who should be offered the service, and what it pays."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from causal.designs.registry import OUTCOME_LEARNERS, PROPENSITY_LEARNERS, UPLIFT_LEARNERS

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
Column = Annotated[str, Field(pattern=_IDENTIFIER)]


class Money(BaseModel):
    """How one unit of the outcome and one contact are priced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value_per_unit: float = Field(
        gt=0,
        description="Money per unit of the outcome (e.g. gross profit of one conversion, or "
        "the margin on one unit of revenue).",
    )
    cost_per_contact: float = Field(ge=0, description="Cost of treating one customer.")
    currency: str = Field("EUR", min_length=1, max_length=5)


class UpliftDesign(BaseModel):
    """Conditional effects learned on a pilot, evaluated on held-out customers, priced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["uplift"]
    features: list[Column] = Field(
        min_length=1, description="Pre-treatment columns the uplift may depend on."
    )
    categorical: list[Column] = Field(
        default_factory=list,
        description="Features encoded as one indicator per level (text columns must be listed).",
    )
    learners: list[str] = Field(
        default_factory=lambda: list(UPLIFT_LEARNERS),
        min_length=1,
        description="Uplift learners to compare on the held-out customers.",
    )
    policy_learner: str = Field(
        "dr_learner",
        description="The learner whose scores drive the targeting policy, named before the "
        "evaluation ('best' picks the highest held-out Qini, which flatters it a little).",
    )
    base_learner: str = Field(
        "gradient_boosting", description="Outcome model inside every learner (a learner name)."
    )
    propensity_learner: str = Field(
        "logistic", description="Propensity model when the treatment was not randomised."
    )
    planned_treated_share: float | None = Field(
        0.5,
        gt=0,
        lt=1,
        description="Randomised pilot: the share meant to be treated (known propensity). null: "
        "treatment was chosen, so the propensity is estimated from the features.",
    )
    evaluation: Literal["holdout", "cross_fit"] = Field(
        "holdout",
        description="holdout: learners fit on one part and are judged on the held-out rest; "
        "cross_fit: every customer is scored by models fitted on the other folds.",
    )
    holdout_share: float = Field(0.3, ge=0.1, le=0.5, description="Share held out (holdout).")
    folds: int = Field(
        3, ge=2, le=10, description="Folds (cross_fit), and cross-fitting inside learners."
    )
    bins: int = Field(10, ge=2, le=50, description="Bins of the uplift table (10: deciles).")
    bootstrap_replications: int = Field(
        500, ge=50, le=20_000, description="Bootstrap draws for the Qini and AUUC intervals."
    )
    budget_share: float | None = Field(
        None, description="At most this share of customers may be treated (0 to 1)."
    )
    budget_count: int | None = Field(
        None, description="At most this many customers may be treated."
    )
    money: Money | None = Field(
        None, description="Value per unit of outcome and cost per contact (policy in money)."
    )

    @field_validator("learners")
    @classmethod
    def _known_learners(cls, names: list[str]) -> list[str]:
        for name in names:
            _known(name, UPLIFT_LEARNERS, "uplift learner")
        if len(set(names)) != len(names):
            raise ValueError("each learner may be listed once")
        return names

    @field_validator("base_learner")
    @classmethod
    def _known_base(cls, name: str) -> str:
        return _known(name, OUTCOME_LEARNERS, "base learner")

    @field_validator("propensity_learner")
    @classmethod
    def _known_propensity(cls, name: str) -> str:
        return _known(name, PROPENSITY_LEARNERS, "propensity learner")

    @field_validator("budget_share")
    @classmethod
    def _share(cls, share: float | None) -> float | None:
        if share is not None and not 0 < share <= 1:
            raise ValueError(
                f"expected a share of customers above 0 and at most 1 (0.3 = 30%), got {share!r}"
            )
        return share

    @field_validator("budget_count")
    @classmethod
    def _count(cls, count: int | None) -> int | None:
        if count is not None and count < 1:
            raise ValueError(f"expected at least 1 customer, got {count!r}")
        return count

    @model_validator(mode="after")
    def _consistent(self) -> UpliftDesign:
        if self.policy_learner != "best" and self.policy_learner not in self.learners:
            raise ValueError(
                f"policy_learner {self.policy_learner!r} is not among the learners "
                f"{self.learners}; add it or use 'best'"
            )
        stray = [c for c in self.categorical if c not in self.features]
        if stray:
            raise ValueError(f"categorical: {stray} are not features; list them under features")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features: each column may appear once")
        if self.budget_share is not None and self.budget_count is not None:
            raise ValueError("give budget_share or budget_count, not both")
        return self

    @property
    def budget(self) -> str | None:
        """The budget in words, or None."""
        if self.budget_share is not None:
            return f"at most {self.budget_share:.0%} of customers"
        if self.budget_count is not None:
            return f"at most {self.budget_count:,} customers"
        return None


def _known(name: str, known: tuple[str, ...], what: str) -> str:
    if name not in known:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return name
