"""The A/B, synthetic-control and difference-in-differences design blocks of a spec (the
observational, uplift and clv blocks have their own modules)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ABTestDesign(_Model):
    """A randomised pilot: units were split at random between service and no service."""

    kind: Literal["ab_test"]
    planned_treated_share: float | None = Field(
        0.5,
        gt=0,
        lt=1,
        description="Share the randomisation meant to treat; null when unknown (SRM is n/a).",
    )
    srm_alpha: float = Field(
        0.001, gt=0, lt=1, description="p-value below which the sample-ratio check fails."
    )
    balance_threshold: float = Field(
        0.1, gt=0, description="|standardised mean difference| above which balance warns."
    )


class Predictor(_Model):
    """A predictor of the synthetic control: a column's mean over a window of pre-periods."""

    column: str = Field(pattern=_IDENTIFIER, description="Column of the panel (outcome or other).")
    start: int | float | date | None = Field(None, description="First period (default: first).")
    end: int | float | date | None = Field(None, description="Last period (default: last pre).")


class SyntheticControlDesign(_Model):
    """One or a few units treated from a common start; the other units are the donor pool."""

    kind: Literal["synthetic_control"]
    time: str = Field(pattern=_IDENTIFIER, description="Period column (orderable).")
    treated_units: list[str | int] = Field(min_length=1, description="Values of the unit column.")
    treatment_start: int | float | date = Field(description="First treated period.")
    exclude_donors: list[str | int] = Field(default_factory=list)
    outcome_only: bool = Field(
        True, description="Fit on pre-period outcomes (the paper's SC); false: ADH predictors."
    )
    predictors: list[Predictor] = Field(
        default_factory=list, description="ADH predictors, used when outcome_only is false."
    )
    placebo_replications: int = Field(200, ge=20, description="Draws for the placebo SE.")
    placebo_in_time: list[int | float | date] | None = Field(
        None, description="Fake start periods for placebo-in-time (default: up to three)."
    )

    @model_validator(mode="after")
    def _predictors_need_adh(self) -> SyntheticControlDesign:
        if self.outcome_only and self.predictors:
            raise ValueError("predictors are used only with outcome_only: false")
        if not self.outcome_only and not self.predictors:
            raise ValueError("outcome_only: false needs predictors (ADH synthetic control)")
        return self


class DidDesign(_Model):
    """Difference-in-differences on a unit × period panel; adoption may be staggered."""

    kind: Literal["did"]
    time: str = Field(pattern=_IDENTIFIER, description="Period column (numbers or dates).")
    first_treated: str | None = Field(
        None,
        pattern=_IDENTIFIER,
        description="Column with each unit's first treated period (0 or null: never treated); "
        "alternatively give the top-level 0/1 'treatment' column per unit-period.",
    )
    cluster: str | None = Field(
        None, pattern=_IDENTIFIER, description="Cluster column for standard errors (default: unit)."
    )
    control_group: Literal["never_treated", "not_yet_treated"] = "never_treated"
    base_period: Literal["varying", "universal"] = Field(
        "varying", description="Callaway–Sant'Anna pre-period comparisons (as R `did`)."
    )
    method: Literal["dr", "ipw", "reg"] = Field(
        "dr", description="Callaway–Sant'Anna with covariates: doubly robust, IPW or regression."
    )
    anticipation: int = Field(0, ge=0, description="Periods of anticipation before treatment.")
    event_window: tuple[int, int] = Field(
        (-4, 8), description="Event study leads and lags [lead, lag]; end points are binned."
    )
    bootstrap_replications: int = Field(
        999, ge=0, description="Multiplier-bootstrap draws for uniform bands (0: none)."
    )

    @model_validator(mode="after")
    def _window(self) -> DidDesign:
        lead, lag = self.event_window
        if lead > -2 or lag < 0:
            raise ValueError("event_window: needs lead ≤ -2 and lag ≥ 0, e.g. [-4, 8]")
        return self
