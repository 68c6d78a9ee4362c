"""The small value every observational estimator returns before it becomes a Result."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Estimand = Literal["ATE", "ATT", "ATC"]


@dataclass(frozen=True)
class EffectEstimate:
    """One estimate of an average effect with its standard error.

    ``df`` is the Student-t degrees of freedom for the interval (``inf``: normal). ``details``
    holds JSON-safe extras (numbers, strings, lists of dicts) that the report may show.

    Examples
    --------
    >>> EffectEstimate("ipw", "ATT", 1.5, 0.5, n_units=100, n_treated=40).estimate
    1.5
    """

    estimator: str
    estimand: Estimand
    estimate: float
    std_error: float
    n_units: int
    n_treated: int
    df: float = math.inf
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))
