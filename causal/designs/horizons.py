"""Effects over horizons: one outcome measured at several times since treatment, estimated
jointly so that contrasts between horizons (increments, cumulative sums, payback) have correct
intervals.

A randomised pilot measures, say, cumulative revenue 1, 2, 3 and 4 months after each customer
was assigned. Customers assigned late in the pilot are not yet observed to the longest horizons.
They are left out of those horizons (the estimand at horizon ``h`` is the effect among the
customers followed for at least ``h`` periods), never counted as zero: a customer enters horizon
``h`` only if the follow-up column says ``followup >= h``, and a missing value for a customer
who *was* followed that long is an error, because it would otherwise hide a broken join.

The estimator at each horizon is the difference in means. The joint covariance comes from the
per-unit influence functions of the arm means, stacked over horizons: for arm ``a`` and horizons
``h, k`` it is ``sum_i (y_ih - m_ah)(y_ik - m_ak) / (n_ah n_ak)`` over the units of the arm
observed at both, times ``m / (m - 1)`` with ``m`` those units, so the diagonal equals Welch's
variance exactly. A test checks the whole matrix against statsmodels' cluster-robust covariance
of the stacked regression. The simultaneous band uses the sup-t critical value of the
estimated correlation (Montiel Olea & Plagborg-Møller 2019), drawn with a fixed seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import stats

from causal.errors import DataError

SUP_T_DRAWS = 200_000  # Monte Carlo error of the 95% sup-t quantile is about 0.003


@dataclass(frozen=True)
class HorizonEffects:
    """Joint estimates of one outcome's effect at several horizons.

    Attributes
    ----------
    horizons : tuple of float
        Time since treatment of each estimate, in ``time_unit``.
    estimate, std_error : numpy.ndarray
        Difference in means at each horizon and its (Welch) standard error.
    covariance : numpy.ndarray
        Joint covariance of the estimates (horizons × horizons).
    n_treated, n_control : numpy.ndarray
        Units observed at each horizon, by arm.
    critical_value : float
        Sup-t critical value of the simultaneous band at ``conf_level``.
    cumulative : bool
        Whether the columns are cumulative (then increments are the per-period effects) or
        per-period (then cumulative sums are the running totals).
    """

    outcome: str
    horizons: tuple[float, ...]
    estimate: np.ndarray
    std_error: np.ndarray
    covariance: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    critical_value: float
    conf_level: float
    cumulative: bool
    time_unit: str = "month"
    columns: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def contrast(self, weights: Sequence[float]) -> tuple[float, float]:
        """A linear combination of the horizon effects and its standard error.

        Examples
        --------
        >>> fx = _example()
        >>> est, se = fx.contrast([-1, 1])  # effect at 2 months minus effect at 1 month
        >>> round(est, 3), se > 0
        (1.0, True)
        """
        w = np.asarray(weights, dtype=float)
        if w.shape != self.estimate.shape:
            raise ValueError(f"need {len(self.estimate)} weights, got {w.shape}")
        return float(w @ self.estimate), float(math.sqrt(max(w @ self.covariance @ w, 0.0)))

    def running_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative effect at each horizon and its SE: the estimates themselves when the
        columns are cumulative, else the running sums of the per-period effects."""
        if self.cumulative:
            return self.estimate.copy(), self.std_error.copy()
        lower = np.tril(np.ones((len(self.estimate),) * 2))
        return lower @ self.estimate, _contrast_se(lower, self.covariance)

    def increments(self) -> tuple[np.ndarray, np.ndarray]:
        """Effect added between consecutive horizons (the first is the effect at the first)."""
        k = len(self.estimate)
        diff = np.eye(k) - np.eye(k, k=-1)
        if not self.cumulative:
            return self.estimate.copy(), self.std_error.copy()
        return diff @ self.estimate, _contrast_se(diff, self.covariance)

    def table(self) -> list[dict[str, float]]:
        """One JSON-safe row per horizon: estimate, pointwise CI, simultaneous band, running
        total with its CI, increment with its CI, units per arm."""
        z = float(stats.norm.ppf(0.5 + self.conf_level / 2))
        total, total_se = self.running_totals()
        inc, inc_se = self.increments()
        rows = []
        for j, h in enumerate(self.horizons):
            est, se = float(self.estimate[j]), float(self.std_error[j])
            rows.append(
                {
                    "horizon": float(h),
                    "column": self.columns[j] if self.columns else "",
                    "estimate": est,
                    "std_error": se,
                    "conf_low": est - z * se,
                    "conf_high": est + z * se,
                    "band_low": est - self.critical_value * se,
                    "band_high": est + self.critical_value * se,
                    "total": float(total[j]),
                    "total_std_error": float(total_se[j]),
                    "total_conf_low": float(total[j] - z * total_se[j]),
                    "total_conf_high": float(total[j] + z * total_se[j]),
                    "increment": float(inc[j]),
                    "increment_std_error": float(inc_se[j]),
                    "n_treated": int(self.n_treated[j]),
                    "n_control": int(self.n_control[j]),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record for results.json."""
        return {
            "outcome": self.outcome,
            "time_unit": self.time_unit,
            "cumulative": self.cumulative,
            "conf_level": self.conf_level,
            "critical_value": self.critical_value,
            "band": "simultaneous (sup-t over the horizons)",
            "estimator": "difference in means per horizon; joint covariance from the stacked "
            "influence functions (units followed to a horizon only)",
            "covariance": self.covariance.tolist(),
            "table": self.table(),
            **dict(self.details),
        }


def horizon_effects(
    outcomes: np.ndarray,
    treated: np.ndarray,
    *,
    horizons: Sequence[float],
    followup: np.ndarray | None = None,
    cumulative: bool = True,
    conf_level: float = 0.95,
    seed: int = 0,
    outcome: str = "outcome",
    columns: Sequence[str] = (),
    time_unit: str = "month",
    band_draws: int = SUP_T_DRAWS,
) -> HorizonEffects:
    """Difference in means at each horizon with their joint covariance and a sup-t band.

    Parameters
    ----------
    outcomes : array (n units × k horizons)
        The outcome at each horizon; NaN where a unit is not observed that far.
    treated : array of 0/1 (n)
        The randomised arm.
    horizons : sequence of float
        Time since treatment of each column, increasing.
    followup : array (n), optional
        Time each unit has been followed. A unit enters horizon ``h`` only if
        ``followup >= h``; its value there must then be present. Without it, a missing value
        means "not followed that far".
    cumulative : bool, default True
        Whether the columns are running totals (cumulative revenue) or per-period values.
    conf_level : float, default 0.95
    seed : int, default 0
        Seed of the Monte Carlo draws of the sup-t critical value.
    band_draws : int
        Number of those draws.

    Returns
    -------
    HorizonEffects

    Raises
    ------
    DataError
        If horizons are not increasing, a horizon lies beyond the longest follow-up, a value
        is missing for a unit followed to that horizon, or an arm has fewer than 2 units at a
        horizon.

    Examples
    --------
    >>> fx = _example()
    >>> [round(float(e), 2) for e in fx.estimate]
    [1.0, 2.0]
    >>> bool(fx.critical_value > 1.96)
    True
    """
    y = np.asarray(outcomes, dtype=float)
    d = np.asarray(treated, dtype=np.int64)
    h = np.asarray(horizons, dtype=float)
    if y.ndim != 2 or y.shape != (len(d), len(h)):
        raise ValueError(f"outcomes must be units × horizons {(len(d), len(h))}, got {y.shape}")
    if len(h) == 0 or np.any(np.diff(h) <= 0):
        raise DataError(f"horizons must be listed in increasing order, got {h.tolist()}")
    observed = _observed(y, h, followup, columns)
    est, var_arm, n1, n0 = np.zeros(len(h)), np.zeros((len(h),) * 2), [], []
    for arm, sign in ((1, 1.0), (0, -1.0)):
        mask = observed & (d == arm)[:, None]
        counts = mask.sum(axis=0)
        _check_counts(counts, h, arm, time_unit)
        means = np.where(mask, y, 0.0).sum(axis=0) / counts
        resid = np.where(mask, y - means, 0.0) / counts  # influence of each unit on the mean
        both = mask.T.astype(float) @ mask.astype(float)  # units observed at both horizons
        var_arm += (resid.T @ resid) * both / np.maximum(both - 1, 1)
        est += sign * means
        (n1 if arm == 1 else n0).append(counts)
    se = np.sqrt(np.diag(var_arm))
    crit = sup_t_critical_value(var_arm, conf_level=conf_level, seed=seed, draws=band_draws)
    return HorizonEffects(
        outcome=outcome,
        horizons=tuple(float(x) for x in h),
        estimate=est,
        std_error=se,
        covariance=var_arm,
        n_treated=n1[0],
        n_control=n0[0],
        critical_value=crit,
        conf_level=conf_level,
        cumulative=cumulative,
        time_unit=time_unit,
        columns=tuple(columns),
    )


def sup_t_critical_value(
    covariance: np.ndarray, *, conf_level: float = 0.95, seed: int = 0, draws: int = SUP_T_DRAWS
) -> float:
    """Quantile of ``max_j |Z_j| / sd_j`` for ``Z ~ N(0, covariance)``: the multiplier that
    turns pointwise standard errors into a simultaneous band.

    Examples
    --------
    >>> round(sup_t_critical_value(np.eye(1)), 2)  # one horizon: the pointwise 1.96
    1.96
    >>> round(sup_t_critical_value(np.eye(3)), 2)  # three independent ones: Šidák's 2.39
    2.39
    """
    cov = np.asarray(covariance, dtype=float)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    # eigh, not cholesky: horizons that overlap heavily give a near-singular correlation.
    vals, vecs = np.linalg.eigh(corr)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(seed)
    sup = np.empty(draws)
    chunk = 50_000
    for lo in range(0, draws, chunk):
        z = rng.standard_normal((min(chunk, draws - lo), len(sd))) @ root.T
        sup[lo : lo + len(z)] = np.abs(z).max(axis=1)
    return float(np.quantile(sup, conf_level))


def _contrast_se(weights: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Standard error of each row of ``weights @ estimates``."""
    return np.sqrt(np.einsum("ij,jk,ik->i", weights, covariance, weights))


def _observed(
    y: np.ndarray, h: np.ndarray, followup: np.ndarray | None, columns: Sequence[str]
) -> np.ndarray:
    present = ~np.isnan(y)
    if followup is None:
        return present
    f = np.asarray(followup, dtype=float)
    if np.isnan(f).any():
        raise DataError(
            f"follow-up column: {int(np.isnan(f).sum())} units have no follow-up time; every "
            "unit needs the time it has been observed since treatment"
        )
    longest = float(f.max())
    if h[-1] > longest + 1e-9:
        raise DataError(
            f"horizons: {h[-1]:g} is beyond the longest follow-up ({longest:g}); no unit has "
            "been observed that long: drop the horizon or wait for the data"
        )
    followed = f[:, None] >= h[None, :] - 1e-9
    gaps = followed & ~present
    if gaps.any():
        j = int(np.argmax(gaps.any(axis=0)))
        name = columns[j] if columns else f"horizon {h[j]:g}"
        raise DataError(
            f"{name}: {int(gaps[:, j].sum())} units followed for {h[j]:g} or longer have no "
            "value; fill the outcome for every unit observed that long (a missing join?)"
        )
    return followed


def _check_counts(counts: np.ndarray, h: np.ndarray, arm: int, unit: str) -> None:
    short = np.flatnonzero(counts < 2)
    if short.size:
        j = int(short[0])
        label = "treated" if arm else "control"
        raise DataError(
            f"horizons: only {int(counts[j])} {label} units are followed for {h[j]:g} {unit}s; "
            "each arm needs at least 2 at every horizon: drop the horizon"
        )


def _example() -> HorizonEffects:
    rng = np.random.default_rng(0)
    d = np.repeat([0, 1], 200)
    base = rng.normal(size=400)
    y = np.column_stack([base + d, base + rng.normal(size=400) + 2 * d])
    y = y - y[d == 1].mean(axis=0) + [1.0, 2.0]
    y[d == 0] -= y[d == 0].mean(axis=0)
    return horizon_effects(y, d, horizons=[1, 2])
