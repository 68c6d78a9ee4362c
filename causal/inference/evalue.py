"""E-values: how strong an unmeasured confounder would have to be, on the risk-ratio scale.

VanderWeele & Ding (2017), "Sensitivity analysis in observational research: introducing the
E-value", Annals of Internal Medicine 167(4): 268–274.
"""

from __future__ import annotations

import dataclasses
import math

from scipy import stats

from causal.errors import DesignError
from causal.inference.sensitivity import _check_alpha, _Record


@dataclasses.dataclass(frozen=True)
class EValue(_Record):
    """E-values of a risk ratio and of its confidence limit closest to the null."""

    rr: float
    lo: float | None
    hi: float | None
    e_value: float
    e_value_ci: float | None  # 1 when the interval includes 1; None when the limit is missing


def e_value(rr: float, *, lo: float | None = None, hi: float | None = None) -> EValue:
    """VanderWeele & Ding (2017): E = RR + √(RR(RR − 1)) for RR ≥ 1, applied to 1/RR below 1.

    The minimum risk ratio an unmeasured confounder would need with both treatment and outcome
    to explain the association away. For the interval, the limit closer to 1 (``lo`` when
    RR ≥ 1, ``hi`` when RR < 1) is used; an interval containing 1 gives 1.

    Examples
    --------
    >>> e = e_value(3.9, lo=1.8, hi=8.7)
    >>> round(e.e_value, 2), round(e.e_value_ci, 2)
    (7.26, 3.0)
    """
    for name, v in (("rr", rr), ("lo", lo), ("hi", hi)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise DesignError(
                f"{name} must be a positive, finite risk ratio, got {v}; "
                "for a difference in means use risk_ratio_from_difference first"
            )
    if (lo is not None and lo > rr) or (hi is not None and hi < rr):
        raise DesignError(f"the interval ({lo}, {hi}) must contain the estimate {rr}")
    limit = lo if rr >= 1 else hi
    if limit is None:
        ci = None
    else:
        crosses_null = limit <= 1 if rr >= 1 else limit >= 1
        ci = 1.0 if crosses_null else _e(limit)
    return EValue(float(rr), lo, hi, _e(rr), ci)


def _e(rr: float) -> float:
    r = rr if rr >= 1 else 1 / rr
    return r + math.sqrt(r * (r - 1))


@dataclasses.dataclass(frozen=True)
class RiskRatio(_Record):
    """A risk ratio with its (1 − α) interval from a normal approximation on the log scale."""

    rr: float
    lo: float
    hi: float
    log_se: float
    method: str


def risk_ratio_from_means(
    mean_treated: float,
    mean_control: float,
    *,
    n_treated: int,
    n_control: int,
    alpha: float = 0.05,
) -> RiskRatio:
    """Risk ratio p1/p0 of a binary outcome; delta-method SE of log RR,
    √((1 − p1)/(n1·p1) + (1 − p0)/(n0·p0)) (Katz et al. 1978).

    Examples
    --------
    >>> r = risk_ratio_from_means(0.3, 0.2, n_treated=500, n_control=500)
    >>> round(r.rr, 2), round(r.lo, 3), round(r.hi, 3)
    (1.5, 1.203, 1.87)
    """
    _check_alpha(alpha)
    for p, m in ((mean_treated, n_treated), (mean_control, n_control)):
        if not (0 < p <= 1 and m >= 1):
            raise DesignError(
                f"need each arm's event share in (0, 1] and n ≥ 1, got {p} of "
                f"{m}; with no events in an arm the log risk ratio is undefined"
            )
    se = math.sqrt(
        (1 - mean_treated) / (n_treated * mean_treated)
        + (1 - mean_control) / (n_control * mean_control)
    )
    return _rr(math.log(mean_treated / mean_control), se, alpha, "delta method, log scale")


def risk_ratio_from_difference(
    effect: float, *, sd: float, se: float | None = None, alpha: float = 0.05
) -> RiskRatio:
    """Approximate risk ratio of a continuous outcome, RR ≈ exp(0.91·d) with d = effect / sd
    (VanderWeele & Ding 2017, via Chinn 2000): the RR for the outcome dichotomised at any cut.

    ``sd`` is the outcome's standard deviation; the SE is transformed the same way
    (log-RR SE = 0.91·se/sd). R ``EValue::evalues.OLS`` uses 1.78 (0.91 × 1.96, rounded) as the
    interval multiplier; here it is 0.91·z(1 − α/2), so limits can differ in the third digit.
    Without ``se`` the limits are NaN.

    Examples
    --------
    >>> r = risk_ratio_from_difference(0.5, sd=1.0)
    >>> round(r.rr, 4)
    1.5762
    """
    _check_alpha(alpha)
    if not (sd > 0 and math.isfinite(sd)):
        raise DesignError(f"sd must be the outcome's positive standard deviation, got {sd}")
    log_se = math.nan if se is None else 0.91 * se / sd
    return _rr(0.91 * effect / sd, log_se, alpha, "exp(0.91 d), VanderWeele-Ding")


def _rr(log_rr: float, log_se: float, alpha: float, method: str) -> RiskRatio:
    z = float(stats.norm.isf(alpha / 2))
    lo, hi = (math.exp(log_rr + s * z * log_se) for s in (-1, 1))
    return RiskRatio(math.exp(log_rr), lo, hi, log_se, method)
