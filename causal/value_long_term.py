"""The value of a service over time: short-term money, the predicted long-term effect and the
lifetime-value effect side by side, and the payback period, each with an interval.

Every line is per treated customer and for the roll-out population, with the assumption it
rests on in one sentence, because the three answers differ mostly in what they assume.

Payback is the time at which the cumulative incremental gross profit per treated customer,
discounted, first reaches the cost per treated customer. The curve is known at a few points
(the pilot's horizons and, when present, the surrogate index's long horizon), joined by
straight lines from zero at time zero. The interval comes from the simultaneous (sup-t) band
of that curve: the earliest payback is where the band's upper edge reaches the cost, the
latest where its lower edge does. Because the band covers the whole curve with 95%
probability, the true payback lies between them with at least that probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MoneyLine:
    """One money quantity per treated customer and in total, with its interval."""

    name: str
    label: str
    per_customer: float
    std_error: float
    conf_low: float
    conf_high: float
    population: int
    assumption: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record with the totals for the population."""
        return {
            **self.__dict__,
            "total": self.per_customer * self.population,
            "total_conf_low": self.conf_low * self.population,
            "total_conf_high": self.conf_high * self.population,
        }


def money_line(
    name: str,
    label: str,
    effect: float,
    std_error: float,
    *,
    margin: float,
    population: int,
    assumption: str,
    conf_level: float = 0.95,
) -> MoneyLine:
    """Gross profit per treated customer from a revenue effect: ``margin × effect``.

    Examples
    --------
    >>> m = money_line("short", "3 months", 10.0, 2.0, margin=0.3, population=1000,
    ...                assumption="randomised pilot")
    >>> round(m.per_customer, 2), round(m.to_dict()["total"], 1)
    (3.0, 3000.0)
    """
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    est, se = margin * effect, margin * std_error
    return MoneyLine(name, label, est, se, est - z * se, est + z * se, population, assumption)


def discount_weights(times: Sequence[float], *, annual_rate: float, per_year: float = 12.0):
    """Matrix turning cumulative values at ``times`` into discounted cumulative values.

    Each increment between consecutive times is discounted at its end time:
    ``sum_k (C_k - C_{k-1}) / (1 + r)^(t_k / per_year)``.

    Examples
    --------
    >>> w = discount_weights([12, 24], annual_rate=0.1)
    >>> [round(float(x), 4) for x in w @ np.array([110.0, 231.0])]
    [100.0, 200.0]
    """
    t = np.asarray(times, dtype=float)
    factor = (1.0 + annual_rate) ** (-t / per_year)
    k = len(t)
    diff = np.eye(k) - np.eye(k, k=-1)
    return np.tril(np.ones((k, k))) @ np.diag(factor) @ diff


@dataclass(frozen=True)
class Payback:
    """Months until cumulative incremental profit per treated customer reaches its cost."""

    months: float  # inf when not reached within the last time known
    earliest: float
    latest: float
    cost_per_customer: float
    last_time: float
    critical_value: float
    curve: tuple[dict[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record (``inf`` becomes None: not reached within ``last_time``)."""
        return {
            "months": _finite(self.months),
            "earliest": _finite(self.earliest),
            "latest": _finite(self.latest),
            "cost_per_customer": self.cost_per_customer,
            "last_time": self.last_time,
            "critical_value": self.critical_value,
            "curve": list(self.curve),
            "method": "first time the discounted cumulative gross profit per treated customer "
            "(straight lines between the known points, zero at time zero) reaches the cost; "
            "interval from the sup-t simultaneous band of the curve",
        }


def payback_period(
    times: Sequence[float],
    profit: np.ndarray,
    covariance: np.ndarray,
    *,
    cost_per_customer: float,
    conf_level: float = 0.95,
    seed: int = 0,
) -> Payback:
    """Payback time with an interval from a cumulative profit curve and its joint covariance.

    Parameters
    ----------
    times : sequence of float
        Times (months) at which the cumulative profit per treated customer is known.
    profit : array
        Cumulative (discounted) incremental gross profit per treated customer at ``times``.
    covariance : array
        Joint covariance of ``profit``.
    cost_per_customer : float
        Cost of serving one treated customer.

    Examples
    --------
    >>> p = payback_period([3, 12], np.array([5.0, 40.0]), np.diag([1.0, 16.0]),
    ...                    cost_per_customer=20.0)
    >>> round(p.months, 2), p.earliest < p.months < p.latest
    (6.86, True)
    """
    from causal.designs.horizons import sup_t_critical_value

    t = np.asarray(times, dtype=float)
    est = np.asarray(profit, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    crit = sup_t_critical_value(cov, conf_level=conf_level, seed=seed) if np.all(se > 0) else 1.96
    upper, lower = est + crit * se, est - crit * se
    curve = tuple(
        {
            "time": float(t[j]),
            "estimate": float(est[j]),
            "band_low": float(lower[j]),
            "band_high": float(upper[j]),
        }
        for j in range(len(t))
    )
    return Payback(
        months=_crossing(t, est, cost_per_customer),
        earliest=_crossing(t, upper, cost_per_customer),
        latest=_crossing(t, lower, cost_per_customer),
        cost_per_customer=cost_per_customer,
        last_time=float(t[-1]),
        critical_value=crit,
        curve=curve,
    )


def _crossing(t: np.ndarray, y: np.ndarray, level: float) -> float:
    """First time the piecewise-linear curve through (0, 0) and (t, y) reaches ``level``."""
    if level <= 0:
        return 0.0
    times = np.concatenate([[0.0], t])
    values = np.concatenate([[0.0], y])
    for j in range(1, len(times)):
        if values[j] >= level:
            a, b = values[j - 1], values[j]
            return float(times[j - 1] + (level - a) / (b - a) * (times[j] - times[j - 1]))
    return math.inf


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
