"""The ``long_term`` block of a spec and the ``clv`` design: what a service is worth over time.

Three tools, each optional, answer "what did the service bring beyond the pilot's window":

- ``horizons``: the same outcome measured at several times since treatment (cumulative revenue
  at 1, 2, 3 months…), estimated jointly so increments, running totals and the payback month
  have correct intervals;
- ``surrogate``: a surrogate index (Athey, Chetty, Imbens & Kang 2019) learned on historical
  customers whose long-term outcome is known, applied to the pilot's short-term signals;
- ``nps``: Net Promoter Score (promoters − detractors) from 0–10 answers, by arm.

The ``clv`` design fits BG/NBD and Gamma–Gamma to a transaction log (customer lifetime value).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from causal.designs.registry import OUTCOME_LEARNERS

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
Column = Annotated[str, Field(pattern=_IDENTIFIER)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Horizons(_Model):
    """One outcome at several times since treatment: one column of the analysis table each."""

    columns: dict[float, Column] = Field(
        min_length=1,
        description="Horizon (time since treatment, in time_unit) → column, e.g. {1: rev_1m}.",
    )
    followup: Column | None = Field(
        None,
        description="Column with each unit's time observed since treatment; a unit enters "
        "horizon h only if followup ≥ h (recommended: without it, a missing value is read as "
        "'not followed that far').",
    )
    cumulative: bool = Field(
        True, description="Columns are running totals (true) or per-period values (false)."
    )
    time_unit: Literal["day", "week", "month"] = "month"
    label: str | None = Field(None, description="Name of the outcome for the report.")

    @field_validator("columns")
    @classmethod
    def _positive(cls, value: dict[float, str]) -> dict[float, str]:
        if any(h <= 0 for h in value):
            raise ValueError("horizons must be positive times since treatment")
        if len(set(value.values())) != len(value):
            raise ValueError("each horizon needs its own column")
        return dict(sorted(value.items()))


class SurrogateIndex(_Model):
    """Predict the long-term effect from short-term signals (Athey et al. 2019)."""

    historical: str = Field(
        description="SQL over the spec's sources (or a source name) giving one row per "
        "historical customer with the surrogates, covariates and the long-term outcome."
    )
    surrogates: list[Column] = Field(min_length=1, description="Short-term signals.")
    covariates: list[Column] = Field(
        default_factory=list, description="Pre-treatment columns in both tables."
    )
    long_outcome: Column = Field(description="Long-term outcome column of the historical data.")
    horizon: float = Field(gt=0, description="Time the long-term outcome covers (time_unit).")
    learner: str = Field("linear", description=f"One of {', '.join(OUTCOME_LEARNERS)}.")
    folds: int = Field(5, ge=2, le=20)
    bootstrap_replications: int = Field(200, ge=50, le=10_000)
    experiment_id: Column | None = Field(
        None, description="Historical column naming past experiments, for the validation."
    )
    label: str | None = None

    @field_validator("learner")
    @classmethod
    def _known_learner(cls, value: str) -> str:
        if value not in OUTCOME_LEARNERS:
            raise ValueError(f"unknown learner {value!r}; known: {', '.join(OUTCOME_LEARNERS)}")
        return value

    @property
    def source_sql(self) -> str:
        return query_of(self.historical)


class Nps(_Model):
    """A 0–10 'would you recommend' answer: NPS = % promoters (9–10) − % detractors (0–6)."""

    column: Column
    label: str | None = None


class Csat(_Model):
    """A satisfaction answer on a scale: the effect on the share of satisfied customers
    (answers of at least ``satisfied_from``, the 'top-box' share)."""

    column: Column
    satisfied_from: float = Field(4, description="Lowest answer counted as satisfied (1–5: 4).")
    label: str | None = None


class LifetimeValue(_Model):
    """BG/NBD and Gamma–Gamma fitted on each arm's transactions (the clv design's models):
    the difference in expected lifetime value over the next ``horizon_months``."""

    transactions: str = Field(
        description="SQL over the spec's sources (or a source name): one row per transaction "
        "of the pilot's customers; include a row at assignment (amount 0) so every customer's "
        "life starts when the service was offered."
    )
    customer: Column = Field(description="Customer column (the spec's unit values).")
    date_column: Column
    amount: Column
    calibration_end: date = Field(description="Last day of the transactions used.")
    horizon_months: int = Field(12, ge=1, le=120)
    period: Literal["week", "day"] = "week"
    bootstrap_replications: int = Field(500, ge=50, le=20_000)

    @property
    def source_sql(self) -> str:
        return query_of(self.transactions)


class LongTerm(_Model):
    """Long-term value of the service (A/B design)."""

    horizons: Horizons | None = None
    surrogate: SurrogateIndex | None = None
    nps: list[Nps] = Field(default_factory=list)
    csat: list[Csat] = Field(default_factory=list)
    clv: LifetimeValue | None = None
    annual_discount_rate: float = Field(
        0.0, ge=0, lt=1, description="Discount rate for payback and lifetime value, per year."
    )

    @model_validator(mode="after")
    def _something(self) -> LongTerm:
        parts = (self.horizons, self.surrogate, self.clv)
        if all(p is None for p in parts) and not (self.nps or self.csat):
            raise ValueError("give at least one of horizons, surrogate, clv, nps or csat")
        return self


class ClvDesign(_Model):
    """Customer lifetime value from a transaction log: BG/NBD and Gamma–Gamma.

    The analysis table is the log itself (one row per transaction): the spec's ``unit`` is the
    customer column and its first outcome the spend of each transaction.
    """

    kind: Literal["clv"]
    date_column: Column = Field(description="Transaction date column of the log.")
    calibration_end: date = Field(description="Last day of the calibration period.")
    observation_end: date | None = Field(
        None, description="Last day of the hold-out period (to check the forecast)."
    )
    horizon_months: int = Field(12, ge=1, le=120, description="Lifetime value over this long.")
    annual_discount_rate: float = Field(
        0.1, ge=0, lt=1, description="Discount rate per year, in [0, 1)."
    )
    gross_margin: float = Field(1.0, gt=0, le=1, description="Margin on spend (1: revenue).")
    group: Column | None = Field(
        None, description="0/1 column splitting customers (e.g. offered the service or not)."
    )
    bootstrap_replications: int = Field(500, ge=50, le=20_000)
    period: Literal["week", "day"] = "week"

    @model_validator(mode="after")
    def _ordered(self) -> ClvDesign:
        if self.observation_end is not None and self.observation_end <= self.calibration_end:
            raise ValueError("observation_end must come after calibration_end")
        return self


def query_of(text: str) -> str:
    """A spec field that takes SQL or the name of one source: the name becomes its SELECT.

    Examples
    --------
    >>> query_of(" orders "), query_of("SELECT 1")
    ('SELECT * FROM "orders"', 'SELECT 1')
    """
    import re

    text = text.strip()
    return f'SELECT * FROM "{text}"' if re.fullmatch(_IDENTIFIER, text) else text
