"""Anytime-valid monitoring of a running A/B pilot: asymptotic confidence sequences.

A fixed-horizon 95% interval looked at every day of a 30-day pilot excludes zero at some look
in about a quarter of A/A pilots. A *confidence sequence* (CS) covers the true effect at every
look simultaneously with probability ≥ 1 − α, so a pilot may be watched daily and stopped as
soon as the CS leaves zero.

The method is the asymptotic CS of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences", Annals of Statistics
52(6), 2024 (arXiv:2103.06476), the method behind GrowthBook's sequential testing. For the mean
θ of i.i.d. terms with variance σ², after n terms with sample mean θ̂ₙ and variance σ̂ₙ²,

    θ̂ₙ ± σ̂ₙ · sqrt( 2 (n ρ² + 1) / (n² ρ²) · log( sqrt(n ρ² + 1) / α ) )       (CS)

is a two-sided (1 − α) asymptotic CS: the Robbins normal-mixture boundary with the estimated
variance plugged in (the authors' R package drconfseq: `std_conjmix_margin`). Written with the
variance inside, sqrt(2 (n σ̂² r² + 1) / (n² r²) · log(sqrt(n σ̂² r² + 1) / α)), it is the same
boundary with r² = ρ²/σ̂²: tuning ρ on the standardised scale puts the tightest point at t*
whatever the variance. ρ > 0 is free; the width at a chosen n = t* is smallest for

    ρ² = ( −W₋₁(−α² e^(α² − 1)) − 1 ) / t*                                          (ρ)

with W₋₁ the lower branch of Lambert's W (drconfseq's `best_rho2_exact`). GrowthBook uses the
first-order expansion of W₋₁, ρ² = (−2 log α + log(1 − 2 log α)) / t*: ρ²·t* = 7.94 instead of
8.21 at α = 0.05, a width 0.003% larger at t* (tested). The always-valid p-value is
min(1, sqrt(nρ² + 1) · exp(−ρ² n θ̂² / (2 SE² (nρ² + 1)))), below α exactly when the CS excludes
0 (tested). Equation numbers, arXiv:2103.06476v7 as cited in GrowthBook's gbstats code and its
ports: (CS) is eq. (9), the closed-form ρ eq. (161), the p-value eq. (155) (the Annals version
may number them differently). We take t* = the planned sample size of the pilot (both arms),
so the CS is tightest where the fixed-horizon test would have been read.

For an A/B difference in means the "i.i.d. terms" are the units of both arms together
(n = n₀ + n₁): the difference is a mean of influence terms whose per-unit variance is
σ² = s₁²/p₁ + s₀²/p₀ with pₐ = nₐ/n the arm shares, i.e. σ² = n · SE² with the Welch
SE² = s₁²/n₁ + s₀²/n₀ — the same reduction GrowthBook makes (s2 = SE² · n). CUPED subtracts
θ(x − x̄) with θ from the pooled (both arms) covariance of the outcome and the pre-period
covariate, as :func:`causal.designs.abtest.cuped` does; θ is re-estimated at each look.

Everything here takes per-arm sufficient statistics (count, Σy, Σy², Σx, Σx², Σxy), so the
numbers can come from SQL aggregates (:mod:`causal.designs.track_stats`) and every function is
vectorised over looks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import special, stats

from causal.checks import CheckResult
from causal.errors import DesignError

if TYPE_CHECKING:
    import pandas as pd

    from causal.results import Result

Direction = Literal["increase", "decrease"]

#: Columns of one look's per-arm sufficient statistics (arm 0 = control, 1 = treated).
OUTCOME_COLUMNS = ("n_0", "n_1", "sum_y_0", "sum_y_1", "sum_y2_0", "sum_y2_1")
COVARIATE_COLUMNS = ("sum_x_0", "sum_x_1", "sum_x2_0", "sum_x2_1", "sum_xy_0", "sum_xy_1")

POSITIVE = "positive effect, can stop"
NEGATIVE = "negative effect, stop"
NO_EFFECT = "planned size reached, no detectable effect"
KEEP_RUNNING = "keep running"


def optimal_rho2(planned_n: float, *, alpha: float = 0.05) -> float:
    """The mixture parameter ρ² that makes the CS narrowest at ``planned_n`` units, eq. (ρ).

    Examples
    --------
    >>> round(optimal_rho2(1.0), 4)  # ρ²·t* at alpha = 0.05
    8.2092
    """
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must be between 0 and 1, got {alpha}")
    if not planned_n > 0:
        raise DesignError(f"planned_n must be a positive number of units, got {planned_n}")
    w = special.lambertw(-(alpha**2) * math.exp(alpha**2 - 1), k=-1).real
    return float((-w - 1) / planned_n)


def cs_margin(n: Any, *, alpha: float = 0.05, planned_n: float) -> np.ndarray:
    """Half-width of the CS for a mean of ``n`` unit-variance terms (multiply by σ̂), eq. (CS).

    Examples
    --------
    >>> m = cs_margin([2_500, 10_000, 40_000], planned_n=10_000)
    >>> bool(m[0] > m[1] > m[2]), round(float(m[1] * 100), 3)  # vs 1.96 for a fixed CI
    (True, 3.035)
    """
    n = np.asarray(n, dtype=float)
    rho2 = optimal_rho2(planned_n, alpha=alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = n * rho2 + 1
        out = np.sqrt(2 * v / (n**2 * rho2) * np.log(np.sqrt(v) / alpha))
    return np.where(n > 0, out, np.inf)


def asymptotic_cs(
    estimate: Any,
    variance_per_unit: Any,
    n: Any,
    *,
    alpha: float = 0.05,
    planned_n: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided (1 − α) asymptotic confidence sequence for a mean of ``n`` i.i.d. terms.

    Parameters
    ----------
    estimate
        The running mean at each look.
    variance_per_unit
        The estimated variance σ̂² of one term (not of the mean) at each look.
    n
        Number of terms at each look.
    alpha
        The CS covers the truth at all looks at once with probability ≥ 1 − alpha.
    planned_n
        Number of terms at which the CS should be narrowest (the planned size).

    Examples
    --------
    >>> low, high = asymptotic_cs(0.1, 4.0, 10_000, planned_n=10_000)
    >>> round(float(low), 4), round(float(high), 4)  # the fixed 95% CI is 0.1 ± 0.0392
    (0.0393, 0.1607)
    """
    half = np.sqrt(np.asarray(variance_per_unit, dtype=float)) * cs_margin(
        n, alpha=alpha, planned_n=planned_n
    )
    est = np.asarray(estimate, dtype=float)
    return est - half, est + half


def anytime_p_value(
    estimate: Any, std_error: Any, n: Any, *, alpha: float = 0.05, planned_n: float
) -> np.ndarray:
    """Always-valid two-sided p-value against 0; below ``alpha`` exactly when the CS excludes 0.

    ``alpha`` only fixes ρ (with ``planned_n``), as the CS does.

    Examples
    --------
    >>> [round(float(anytime_p_value(0.1, se, 10_000, planned_n=10_000)), 3) for se in (0.04, 0.03)]
    [0.187, 0.021]
    """
    n = np.asarray(n, dtype=float)
    rho2 = optimal_rho2(planned_n, alpha=alpha)
    v = n * rho2 + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = (np.asarray(estimate, dtype=float) / np.asarray(std_error, dtype=float)) ** 2
        log_e = rho2 * n * z2 / (2 * v) - 0.5 * np.log(v)  # log e-value, in logs: no overflow
    return np.where(np.isnan(log_e), np.nan, np.minimum(1.0, np.exp(-log_e)))


@dataclass(frozen=True)
class LookEstimate:
    """A difference in means at one or more looks: estimate, fixed CI and confidence sequence.

    Fields are floats for one look, arrays (one entry per look) when the statistics were.
    ``conf_low``/``conf_high`` are the fixed-horizon normal interval (valid at one pre-planned
    look only); ``cs_low``/``cs_high`` the anytime-valid CS; ``p_value_anytime`` its p-value.
    """

    estimator: str
    estimate: Any
    std_error: Any
    conf_low: Any
    conf_high: Any
    cs_low: Any
    cs_high: Any
    p_value: Any
    p_value_anytime: Any
    n_control: Any
    n_treated: Any
    control_mean: Any
    treated_mean: Any
    variance_per_unit: Any
    theta: Any
    alpha: float
    planned_n: float

    @property
    def n_units(self) -> Any:
        return self.n_control + self.n_treated

    def to_frame(self) -> pd.DataFrame:
        """One row per look (tidy, for plots and the tracking history)."""
        import pandas as pd

        columns = {f.name: np.atleast_1d(getattr(self, f.name)) for f in fields(self)}
        n_looks = max(len(v) for v in columns.values())
        frame = pd.DataFrame({k: np.broadcast_to(v, n_looks) for k, v in columns.items()})
        frame.insert(0, "look", np.arange(n_looks))
        return frame

    def to_result(self, outcome: str, *, look: int = -1) -> Result:
        """The Result of one look, with the CS as its interval and the anytime p-value.

        A monitored pilot must report the interval that stays valid under peeking, so
        ``conf_low``/``conf_high`` of the Result are the CS; the fixed CI is in ``details``.
        """
        from causal.results import Result

        row = self.to_frame().iloc[look]
        return Result(
            f"sequential_{self.estimator}",
            "ATE",
            outcome,
            float(row["estimate"]),
            float(row["std_error"]),
            float(row["cs_low"]),
            float(row["cs_high"]),
            float(row["p_value_anytime"]),
            int(row["n_control"] + row["n_treated"]),
            int(row["n_treated"]),
            details={
                "treated_mean": float(row["treated_mean"]),
                "control_mean": float(row["control_mean"]),
                "fixed_conf_low": float(row["conf_low"]),
                "fixed_conf_high": float(row["conf_high"]),
                "fixed_p_value": float(row["p_value"]),
                "planned_n": self.planned_n,
                "theta": None if math.isnan(row["theta"]) else float(row["theta"]),
                "interval": "asymptotic confidence sequence (Waudby-Smith et al. 2024)",
            },
            conf_level=1 - self.alpha,
        )


def difference_at_look(
    stats_: Mapping[str, Any] | pd.DataFrame,
    *,
    alpha: float = 0.05,
    planned_n: float,
    cuped: bool = False,
) -> LookEstimate:
    """Treated minus control mean, with its fixed CI and confidence sequence, from arm sums.

    Parameters
    ----------
    stats_
        Per-arm sufficient statistics, scalars or one entry per look: ``n_a``, ``sum_y_a``,
        ``sum_y2_a`` for arms a = 0 (control), 1 (treated), and for CUPED also ``sum_x_a``,
        ``sum_x2_a``, ``sum_xy_a`` (x = the pre-period covariate). A DataFrame from
        :func:`causal.designs.track_stats.look_statistics` works as is.
    alpha
        1 − alpha is the level of both the fixed CI and the CS.
    planned_n
        Planned number of units (both arms): where the CS is narrowest, and when to stop.
    cuped
        Adjust by the covariate: y − θ(x − x̄), θ from the pooled covariance at this look.

    Looks where an arm has fewer than 2 units give NaN.

    Examples
    --------
    >>> s = {"n_0": 100, "n_1": 100, "sum_y_0": 1000.0, "sum_y_1": 1100.0,
    ...      "sum_y2_0": 10_396.0, "sum_y2_1": 12_496.0}
    >>> look = difference_at_look(s, planned_n=200)
    >>> look.estimate, round(look.std_error, 3), round(look.cs_low, 3), round(look.conf_low, 3)
    (1.0, 0.283, 0.142, 0.446)
    """
    g = {k: np.asarray(stats_[k], dtype=float) for k in OUTCOME_COLUMNS}
    n0, n1 = g["n_0"], g["n_1"]
    with np.errstate(divide="ignore", invalid="ignore"):
        m0, m1 = g["sum_y_0"] / n0, g["sum_y_1"] / n1
        v0 = _var(g["sum_y2_0"], g["sum_y_0"], n0)
        v1 = _var(g["sum_y2_1"], g["sum_y_1"], n1)
        estimate = m1 - m0
        theta = np.full(np.shape(estimate), np.nan)
        if cuped:
            missing = [k for k in COVARIATE_COLUMNS if k not in stats_]
            if missing:
                raise DesignError(
                    f"cuped needs the covariate sums {', '.join(missing)}; "
                    "give look_statistics a covariate column"
                )
            c = {k: np.asarray(stats_[k], dtype=float) for k in COVARIATE_COLUMNS}
            n = n0 + n1
            sx, sy = c["sum_x_0"] + c["sum_x_1"], g["sum_y_0"] + g["sum_y_1"]
            sxx = c["sum_x2_0"] + c["sum_x2_1"]
            var_x = sxx - sx**2 / n
            if not np.any(var_x > 0):
                raise DesignError("cuped: the covariate does not vary; drop cuped")
            # a look where x does not vary yet (a handful of units) is left unadjusted
            theta = np.where(var_x > 0, (c["sum_xy_0"] + c["sum_xy_1"] - sx * sy / n) / var_x, 0.0)
            x0, x1 = c["sum_x_0"] / n0, c["sum_x_1"] / n1
            estimate = estimate - theta * (x1 - x0)
            # variance of y − θx within each arm: s_y² − 2θ s_xy + θ² s_x²
            cov0 = (c["sum_xy_0"] - n0 * x0 * m0) / (n0 - 1)
            cov1 = (c["sum_xy_1"] - n1 * x1 * m1) / (n1 - 1)
            v0 = np.maximum(
                v0 - 2 * theta * cov0 + theta**2 * _var(c["sum_x2_0"], c["sum_x_0"], n0), 0
            )
            v1 = np.maximum(
                v1 - 2 * theta * cov1 + theta**2 * _var(c["sum_x2_1"], c["sum_x_1"], n1), 0
            )
        se = np.sqrt(v0 / n0 + v1 / n1)
        n_units = n0 + n1
        variance_per_unit = se**2 * n_units  # = s1²/p1 + s0²/p0
        too_small = (n0 < 2) | (n1 < 2)
        estimate, se = np.where(too_small, np.nan, estimate), np.where(too_small, np.nan, se)
    z = stats.norm.ppf(1 - alpha / 2)
    cs_low, cs_high = asymptotic_cs(
        estimate, variance_per_unit, n_units, alpha=alpha, planned_n=planned_n
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        p_fixed = 2 * stats.norm.sf(np.abs(estimate / se))
    values = {
        "estimate": estimate,
        "std_error": se,
        "conf_low": estimate - z * se,
        "conf_high": estimate + z * se,
        "cs_low": cs_low,
        "cs_high": cs_high,
        "p_value": p_fixed,
        "p_value_anytime": anytime_p_value(estimate, se, n_units, alpha=alpha, planned_n=planned_n),
        "n_control": n0.astype(np.int64),
        "n_treated": n1.astype(np.int64),
        "control_mean": m0,
        "treated_mean": m1,
        "variance_per_unit": variance_per_unit,
        "theta": theta,
    }
    scalar = np.ndim(n0) == 0
    out = {k: (v.item() if scalar else np.asarray(v)) for k, v in values.items()}
    name = "cuped" if cuped else "difference_in_means"
    return LookEstimate(name, **out, alpha=alpha, planned_n=float(planned_n))


def decision(
    look: LookEstimate, *, planned_n: float | None = None, direction: Direction = "increase"
) -> Any:
    """What to do at a look: stop for a positive or negative effect, stop at the planned size,
    or keep running.

    ``direction`` says which way is good: "increase" for a goal metric (revenue), "decrease"
    for a guardrail where an increase is bad (complaints, cost). ``planned_n`` defaults to the
    look's own. Returns a string per look (an array of strings for several looks).

    Examples
    --------
    >>> s = {"n_0": 100, "n_1": 100, "sum_y_0": 1000.0, "sum_y_1": 1100.0,
    ...      "sum_y2_0": 10_396.0, "sum_y2_1": 12_496.0}
    >>> decision(difference_at_look(s, planned_n=1_000))
    'positive effect, can stop'
    >>> decision(difference_at_look(s, planned_n=1_000), direction="decrease")
    'negative effect, stop'
    """
    if direction not in ("increase", "decrease"):
        raise DesignError(f"direction must be 'increase' or 'decrease', got {direction!r}")
    planned = look.planned_n if planned_n is None else planned_n
    above = np.asarray(look.cs_low) > 0
    below = np.asarray(look.cs_high) < 0
    good, bad = (above, below) if direction == "increase" else (below, above)
    full = np.asarray(look.n_units) >= planned
    out = np.select([good, bad, full], [POSITIVE, NEGATIVE, NO_EFFECT], KEEP_RUNNING)
    return str(out) if out.ndim == 0 else out


def sample_ratio_at_look(
    stats_: Mapping[str, Any], *, planned_share: float = 0.5, alpha: float = 0.001
) -> CheckResult:
    """Sample-ratio mismatch of one look's arm counts (chi-square against the planned split).

    Repeating this test every day inflates its false alarms too; the strict default
    ``alpha = 0.001`` keeps 30 daily looks under about 3% (Bonferroni), which is what a
    check that should stop a pilot needs. ``n_a`` may be the last entry of per-look arrays.

    Examples
    --------
    >>> sample_ratio_at_look({"n_0": [480, 9_600], "n_1": [520, 10_400]}).status
    'fail'
    """
    from causal.designs.abtest import sample_ratio_check

    n0 = int(np.atleast_1d(stats_["n_0"])[-1])
    n1 = int(np.atleast_1d(stats_["n_1"])[-1])
    if n0 + n1 == 0:
        return CheckResult("sample_ratio", "n/a", "no units assigned yet")
    return sample_ratio_check(n1, n0, planned_share=planned_share, alpha=alpha)


def _var(sum_sq: np.ndarray, total: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sample variance (ddof 1) from Σy² and Σy; clipped at 0 against rounding."""
    return np.maximum(sum_sq - total**2 / n, 0) / (n - 1)
