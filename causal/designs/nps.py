"""Net Promoter Score by arm and its difference, with exact multinomial standard errors.

NPS is the share of promoters (answers 9–10) minus the share of detractors (0–6), in points
(× 100). Per arm the three answer classes are multinomial, so

    Var(p̂_P − p̂_D) = [p_P + p_D − (p_P − p_D)²] / n,

and the arms are independent. The plug-in variance (divided by n, not n − 1) is the variance
of the nonparametric bootstrap of the same data, which a test checks to two decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from causal.errors import DataError

PROMOTER_MIN = 9
DETRACTOR_MAX = 6


@dataclass(frozen=True)
class NpsArm:
    """NPS of one arm: shares of promoters and detractors, NPS in points and its SE."""

    n: int
    promoters: float
    detractors: float
    nps: float
    std_error: float


@dataclass(frozen=True)
class NpsDifference:
    """NPS of each arm and the treated − control difference (points) with its interval."""

    column: str
    treated: NpsArm
    control: NpsArm
    difference: float
    std_error: float
    conf_low: float
    conf_high: float
    p_value: float
    n_missing: int

    def to_dict(self) -> dict:
        """JSON-safe record."""
        return {
            "column": self.column,
            "treated": vars(self.treated),
            "control": vars(self.control),
            "difference": self.difference,
            "std_error": self.std_error,
            "conf_low": self.conf_low,
            "conf_high": self.conf_high,
            "p_value": self.p_value,
            "n_missing": self.n_missing,
            "method": "multinomial (delta) standard error per arm, arms independent; "
            "promoters 9–10, detractors 0–6",
        }


def nps_arm(scores: np.ndarray) -> NpsArm:
    """NPS of one group of 0–10 answers.

    Examples
    --------
    >>> arm = nps_arm(np.array([10, 9, 8, 7, 3]))  # 2 promoters, 1 detractor of 5
    >>> arm.nps, round(arm.std_error, 2)
    (20.0, 33.47)
    """
    s = np.asarray(scores, dtype=float)
    n = len(s)
    if n == 0:
        raise DataError("NPS: an arm has no answers")
    p = float(np.mean(s >= PROMOTER_MIN))
    d = float(np.mean(s <= DETRACTOR_MAX))
    var = (p + d - (p - d) ** 2) / n
    return NpsArm(n, p, d, 100.0 * (p - d), 100.0 * math.sqrt(max(var, 0.0)))


def nps_difference(
    scores: np.ndarray, treated: np.ndarray, *, column: str = "nps", alpha: float = 0.05
) -> NpsDifference:
    """Difference in NPS between the treated and control arm, in points.

    Missing answers (NaN) are left out and counted; answers must be whole numbers 0–10.

    Examples
    --------
    >>> s = np.array([10, 9, 3, 8, 10, 2, 1, 7, 9, 10])
    >>> d = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    >>> res = nps_difference(s, d)
    >>> res.treated.nps, res.control.nps, res.difference
    (40.0, 0.0, 40.0)
    """
    s = np.asarray(scores, dtype=float)
    t = np.asarray(treated, dtype=np.int64)
    answered = ~np.isnan(s)
    bad = answered & ((s < 0) | (s > 10) | (s != np.round(s)))
    if bad.any():
        raise DataError(
            f"{column}: {int(bad.sum())} answers are not whole numbers from 0 to 10 "
            f"(e.g. {s[bad][0]:g}); NPS needs the raw 'would you recommend' score"
        )
    one = nps_arm(s[answered & (t == 1)])
    zero = nps_arm(s[answered & (t == 0)])
    diff = one.nps - zero.nps
    se = math.hypot(one.std_error, zero.std_error)
    crit = float(stats.norm.ppf(1 - alpha / 2))
    p = float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else math.nan
    return NpsDifference(
        column, one, zero, diff, se, diff - crit * se, diff + crit * se, p, int((~answered).sum())
    )


def bootstrap_nps_se(
    scores: np.ndarray, treated: np.ndarray, *, replications: int = 200_000, seed: int = 0
) -> float:
    """Bootstrap SE of the NPS difference (units resampled within arm), drawn as multinomial
    class counts, which is the same distribution as resampling rows and far cheaper.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s, d = rng.integers(0, 11, 2000), rng.integers(0, 2, 2000)
    >>> abs(bootstrap_nps_se(s, d) - nps_difference(s, d).std_error) < 0.05
    True
    """
    s = np.asarray(scores, dtype=float)
    t = np.asarray(treated, dtype=np.int64)
    rng = np.random.default_rng(seed)
    nps = np.zeros(replications)
    for arm, sign in ((1, 1.0), (0, -1.0)):
        x = s[(t == arm) & ~np.isnan(s)]
        probs = [np.mean(x >= PROMOTER_MIN), np.mean(x <= DETRACTOR_MAX)]
        probs.append(max(1.0 - sum(probs), 0.0))
        counts = rng.multinomial(len(x), probs, size=replications)
        nps += sign * 100.0 * (counts[:, 0] - counts[:, 1]) / len(x)
    return float(nps.std())


def satisfied_share_difference(
    scores: np.ndarray,
    treated: np.ndarray,
    *,
    satisfied_from: float,
    column: str = "csat",
    alpha: float = 0.05,
) -> dict:
    """Difference in the share of satisfied answers (``>= satisfied_from``) between the arms,
    in percentage points, with the unpooled (Wald) standard error of two proportions.

    Examples
    --------
    >>> s = np.array([5, 4, 2, 5, 3, 1, 4, 2])
    >>> d = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    >>> r = satisfied_share_difference(s, d, satisfied_from=4)
    >>> r["treated_share"], r["control_share"], r["difference"]
    (0.75, 0.25, 50.0)
    """
    s = np.asarray(scores, dtype=float)
    t = np.asarray(treated, dtype=np.int64)
    answered = ~np.isnan(s)
    shares, variances, counts = [], [], []
    for arm in (1, 0):
        x = s[answered & (t == arm)]
        if len(x) == 0:
            raise DataError(f"{column}: an arm has no answers")
        p = float(np.mean(x >= satisfied_from))
        shares.append(p)
        variances.append(p * (1 - p) / len(x))
        counts.append(len(x))
    diff = 100.0 * (shares[0] - shares[1])
    se = 100.0 * math.sqrt(sum(variances))
    crit = float(stats.norm.ppf(1 - alpha / 2))
    return {
        "column": column,
        "satisfied_from": satisfied_from,
        "treated_share": shares[0],
        "control_share": shares[1],
        "n_treated": counts[0],
        "n_control": counts[1],
        "difference": diff,
        "std_error": se,
        "conf_low": diff - crit * se,
        "conf_high": diff + crit * se,
        "p_value": float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else math.nan,
        "n_missing": int((~answered).sum()),
        "method": "difference of two proportions, unpooled standard error (percentage points)",
    }
