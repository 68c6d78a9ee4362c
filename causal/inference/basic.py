"""Small, exact building blocks used by the designs (each tested against statsmodels)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval and p-value against zero."""

    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    p_value: float
    df: float = math.inf


def interval(
    estimate: float, std_error: float, *, alpha: float = 0.05, df: float = math.inf
) -> Interval:
    """Wald interval and two-sided p-value; Student-t with ``df`` when finite, else normal.

    Examples
    --------
    >>> round(interval(1.96, 1.0).p_value, 3)
    0.05
    """
    if not (std_error > 0 and math.isfinite(std_error)):
        return Interval(estimate, std_error, math.nan, math.nan, math.nan, df)
    dist = stats.t(df) if math.isfinite(df) else stats.norm()
    crit = float(dist.ppf(1 - alpha / 2))
    p = float(2 * dist.sf(abs(estimate / std_error)))
    return Interval(
        estimate, std_error, estimate - crit * std_error, estimate + crit * std_error, p, df
    )


@dataclass(frozen=True)
class WelchDifference:
    difference: float
    std_error: float
    df: float
    treated_mean: float
    control_mean: float
    treated_var_mean: float  # variance of the treated mean, s1²/n1
    control_var_mean: float


def welch_difference(y: np.ndarray, treated: np.ndarray) -> WelchDifference:
    """Difference in means with the unequal-variance (Welch) SE and Satterthwaite df.

    ``treated`` is 0/1 per unit. Arm counts, means and centred sums of squares come from
    ``np.bincount`` (two passes, no cancellation) rather than boolean-mask copies of ``y``:
    half the time on a million units, and the same per-arm statistics an SQL engine can return.

    Examples
    --------
    >>> d = welch_difference(np.array([2.0, 4.0, 6.0, 1.0, 2.0, 3.0]), np.array([1, 1, 1, 0, 0, 0]))
    >>> round(d.difference, 3), round(d.std_error, 3)
    (2.0, 1.291)
    """
    arm = np.asarray(treated, dtype=np.int64)
    n0, n1 = np.bincount(arm, minlength=2)[:2].tolist()
    if n1 < 2 or n0 < 2:
        raise ValueError(f"each arm needs at least 2 units (treated {n1}, control {n0})")
    means = np.bincount(arm, weights=y, minlength=2)[:2] / np.array([n0, n1])
    squares = np.bincount(arm, weights=(y - means[arm]) ** 2, minlength=2)[:2]
    return welch_from_moments(
        (n0, n1), (float(means[0]), float(means[1])), (float(squares[0]), float(squares[1]))
    )


def welch_from_moments(
    n: tuple[int, int], mean: tuple[float, float], squares: tuple[float, float]
) -> WelchDifference:
    """Welch's difference from per-arm counts, means and centred sums of squares (control
    first): what an engine's aggregates give without the rows.

    Examples
    --------
    >>> round(welch_from_moments((3, 3), (2.0, 4.0), (2.0, 8.0)).std_error, 3)
    1.291
    """
    (n0, n1), (m0, m1) = n, mean
    if n1 < 2 or n0 < 2:
        raise ValueError(f"each arm needs at least 2 units (treated {n1}, control {n0})")
    v1 = squares[1] / (n1 - 1) / n1
    v0 = squares[0] / (n0 - 1) / n0
    se = math.sqrt(v1 + v0)
    denom = v1**2 / (n1 - 1) + v0**2 / (n0 - 1)
    df = (v1 + v0) ** 2 / denom if denom > 0 else math.inf
    return WelchDifference(m1 - m0, se, df, m1, m0, v1, v0)


def ratio_delta(
    num: float, den: float, var_num: float, var_den: float, cov: float = 0.0
) -> tuple[float, float]:
    """``num/den - 1`` and its delta-method SE.

    Examples
    --------
    >>> lift, se = ratio_delta(110.0, 100.0, 4.0, 4.0)
    >>> round(lift, 3), round(se, 4)
    (0.1, 0.0297)
    """
    ratio = num / den
    grad = np.array([1 / den, -num / den**2])
    cov_m = np.array([[var_num, cov], [cov, var_den]])
    return ratio - 1.0, float(math.sqrt(grad @ cov_m @ grad))


@dataclass(frozen=True)
class RobustOLS:
    params: np.ndarray
    cov: np.ndarray
    df_resid: float
    names: tuple[str, ...]


def ols_robust(
    y: np.ndarray,
    X: np.ndarray,
    *,
    names: tuple[str, ...],
    cov_type: Literal["HC1", "HC2", "HC3"] = "HC2",
) -> RobustOLS:
    """OLS with a heteroskedasticity-robust (sandwich) covariance.

    Written out rather than delegated to statsmodels: its pseudo-inverse (an SVD of the n × k
    design) made Lin's estimator 1.3× slower than needed on a million units (bench/). Here the
    k × k normal equations are solved once and the leverages come from one pass over X.
    Columns are scaled to unit length first: raw designs with squared earnings (LaLonde,
    condition number 2e10) otherwise lost about 7 digits in the inverse. Agreement with
    statsmodels is tested to 1e-8.

    HC1 scales the squared residuals by n / (n - k), HC2 divides them by 1 - h, HC3 by
    (1 - h)², where h are the leverages (MacKinnon & White 1985).

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0, 0, 1, 1]])
    >>> fit = ols_robust(np.array([1.0, 2.0, 3.0, 5.0]), X, names=("const", "d"))
    >>> round(float(fit.params[1]), 10)
    2.5
    """
    n, k = X.shape
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    scale = np.where(norms > 0, norms, 1.0)
    Xs = X / scale
    bread_s = np.linalg.inv(Xs.T @ Xs)
    bread = bread_s / np.outer(scale, scale)
    params = (bread_s @ (Xs.T @ y)) / scale
    resid = y - X @ params
    if cov_type == "HC1":
        weights = resid**2 * n / (n - k)
    else:
        leverage = np.einsum("ij,ij->i", X @ bread, X)
        power = 1 if cov_type == "HC2" else 2
        weights = resid**2 / (1 - leverage) ** power
    meat = (X * weights[:, None]).T @ X
    return RobustOLS(params, bread @ meat @ bread, float(n - k), names)
