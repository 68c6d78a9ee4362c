"""The ``tracking`` block of an A/B spec: how ``causal track`` looks at a running pilot.

The analysis table gives the units (with their assignment time); ``events`` gives the outcome
events (unit, time, metric name, value). At every look only the units assigned by then and the
events observed by then count.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
Column = Annotated[str, Field(pattern=_IDENTIFIER)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrackedMetric(_Model):
    """One metric built from the events named ``name``.

    ``summary`` says how: ``sum`` (each unit's total of the event values so far, zero without
    events: revenue, cost, complaints) gets a confidence sequence; ``mean`` (the mean answer
    by arm: CSAT, first-contact resolution) and ``nps`` (promoters − detractors among the
    answers) are trends by arm.
    """

    name: str = Field(min_length=1, description="Value of the events' metric column.")
    role: Literal["primary", "guardrail", "kpi"] = "kpi"
    kind: Literal["revenue", "cost", "count", "answer"] = "revenue"
    summary: Literal["sum", "mean", "nps"] = "sum"
    direction: Literal["increase", "decrease"] | None = Field(
        None, description="Which way is good (default: decrease for cost and guardrails)."
    )
    label: str | None = None

    @property
    def good_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "decrease" if self.kind == "cost" or self.role == "guardrail" else "increase"

    @model_validator(mode="after")
    def _consistent(self) -> TrackedMetric:
        if self.kind == "cost" and self.direction == "increase":
            raise ValueError(
                f"metric {self.name!r}: a cost is good when it goes down; direction 'increase' "
                "contradicts kind 'cost'"
            )
        if self.role in ("primary", "guardrail") and self.summary != "sum":
            raise ValueError(
                f"metric {self.name!r}: a {self.role} metric needs summary 'sum' (a per-unit "
                "total with a confidence sequence)"
            )
        return self


class Tracking(_Model):
    """Looks at a running pilot with anytime-valid confidence sequences."""

    assigned_at: Column = Field(description="Assignment (exposure) time column of the units.")
    events: str = Field(description="SQL over the sources (or a source name): outcome events.")
    event_unit: Column
    event_time: Column
    metric_column: Column = "metric"
    value_column: Column = "value"
    metrics: list[TrackedMetric] = Field(min_length=1)
    planned_units: int = Field(gt=0, description="Planned pilot size (both arms).")
    schedule: Literal["daily", "weekly"] = "daily"
    first_look: date | None = Field(None, description="First look (default: first assignment).")
    covariate: Column | None = Field(
        None, description="Pre-period covariate of the units for CUPED-adjusted sequences."
    )

    @model_validator(mode="after")
    def _one_primary(self) -> Tracking:
        primaries = [m for m in self.metrics if m.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(
                f"tracking.metrics: name exactly one primary metric, got {len(primaries)}"
            )
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("tracking.metrics: each metric name may appear once")
        return self

    @property
    def primary(self) -> TrackedMetric:
        return next(m for m in self.metrics if m.role == "primary")

    @property
    def source_sql(self) -> str:
        from causal.spec_long_term import query_of

        return query_of(self.events)
