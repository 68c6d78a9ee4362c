"""The A/B estimators and checks from the engine's sufficient statistics (:class:`ABSummary`).

Each function returns exactly what its namesake in :mod:`causal.designs.abtest` returns on the
rows of the same table (tests: to 1e-9), so results.json does not depend on where the sums
were taken. The algebra works on moments shifted by the column means (see
:mod:`causal.designs.ab_sums_sql`).
"""

from __future__ import annotations

import math

import numpy as np

from causal.checks import CheckResult
from causal.designs import abtest
from causal.designs.ab_sums_sql import ABSummary
from causal.designs.abtest import balance_result, missing_check, segment_family
from causal.errors import DesignError
from causal.inference import interval, ratio_delta
from causal.inference.basic import WelchDifference, welch_from_moments
from causal.results import Result

__all__ = ["balance_check", "estimate", "missing_check", "segment_effects"]


def difference_in_means(summary: ABSummary, outcome: str, *, alpha: float = 0.05) -> Result:
    """Welch's difference in means from per-arm counts and sums.

    Examples
    --------
    >>> import pandas as pd
    >>> from causal.data.engine import DuckDBEngine
    >>> from causal.designs.ab_sums_sql import summarize
    >>> engine = DuckDBEngine()
    >>> engine.register_frame("t", pd.DataFrame({"id": range(6), "d": [0, 0, 0, 1, 1, 1],
    ...                                          "y": [1.0, 2, 3, 2, 4, 6]}))
    >>> s = summarize(engine, "t", unit="id", treatment="d", outcomes={"y": "continuous"})
    >>> difference_in_means(s, "y").estimate
    2.0
    """
    w = _welch(summary, outcome)
    ci = interval(w.difference, w.std_error, alpha=alpha, df=w.df)
    details = {
        "treated_mean": w.treated_mean,
        "control_mean": w.control_mean,
        "df": w.df,
        "variance": "Welch (unequal variances), Satterthwaite df",
        "n_missing_outcome": summary.missing[outcome],
    }
    return _result("difference_in_means", "ATE", outcome, ci, summary, alpha, details)


def cuped(summary: ABSummary, outcome: str, *, alpha: float = 0.05) -> Result:
    """CUPED from the pooled and per-arm centred moments (see :func:`abtest.cuped`)."""
    _need_covariates(summary)
    m0, m1 = summary.moments[outcome][0], summary.moments[outcome][1]
    p = len(summary.design_columns)
    pooled = _centred(m0 + m1)
    theta = np.linalg.lstsq(pooled[:p, :p], pooled[:p, p], rcond=None)[0]
    mean_x = (m0 + m1)[0, 1 : p + 1] / (m0 + m1)[0, 0]
    raw = _welch(summary, outcome)
    means, squares = [], []
    for m in (m0, m1):
        c = _centred(m)
        arm_x = m[0, 1 : p + 1] / m[0, 0]
        means.append(_arm_mean(summary, outcome, m) - float((arm_x - mean_x) @ theta))
        squares.append(_adjusted_squares(c, theta, p))
    w = _welch_or_error((int(m0[0, 0]), int(m1[0, 0])), means, squares)
    ci = interval(w.difference, w.std_error, alpha=alpha, df=w.df)
    reduction = 1.0 - _adjusted_squares(pooled, theta, p) / pooled[p, p]
    details = {
        "treated_mean": raw.treated_mean,
        "control_mean": raw.control_mean,
        "theta": dict(zip(summary.design_columns, map(float, theta), strict=True)),
        "variance_reduction": float(reduction),
        "df": w.df,
        "variance": "Welch on the CUPED-adjusted outcome (theta treated as known)",
        "n_missing_outcome": summary.missing[outcome],
    }
    return _result("cuped", "ATE", outcome, ci, summary, alpha, details)


def lin(summary: ABSummary, outcome: str, *, alpha: float = 0.05) -> Result:
    """Lin (2013) with HC2: two per-arm regressions on covariates centred at the pooled mean.

    The engine returned each arm's coefficients, bread and HC2 meat in shifted coordinates;
    moving the centre to the pooled mean is the linear map w = (1, x̄) on the intercept.
    """
    _need_covariates(summary)
    m0, m1 = summary.moments[outcome][0], summary.moments[outcome][1]
    p = len(summary.design_columns)
    n = int(m0[0, 0] + m1[0, 0])
    if n <= 2 * (p + 1):
        raise DesignError(f"lin on {outcome!r}: {n} units cannot fit {2 * (p + 1)} terms")
    w = np.concatenate([[1.0], (m0 + m1)[0, 1 : p + 1] / n])
    intercepts, variances = [], []
    for a in (0, 1):
        fit = summary.meat[outcome][a]
        cov = fit["bread"] @ fit["meat"] @ fit["bread"]
        intercepts.append(float(w @ fit["beta"]))
        variances.append(max(float(w @ cov @ w), 0.0))  # a perfect fit rounds to -1e-30
    ci = interval(
        intercepts[1] - intercepts[0], math.sqrt(sum(variances)), alpha=alpha, df=n - 2 * (p + 1)
    )
    raw = _welch(summary, outcome)
    details = {
        "treated_mean": raw.treated_mean,
        "control_mean": raw.control_mean,
        "df": n - 2 * (p + 1),
        "variance": "HC2 (Lin 2013), residual df",
        "covariates": list(summary.design_columns),
        "n_missing_outcome": summary.missing[outcome],
    }
    return _result("lin", "ATE", outcome, ci, summary, alpha, details)


def relative_lift(summary: ABSummary, outcome: str, *, alpha: float = 0.05) -> Result:
    """Treated mean / control mean − 1 with the delta-method SE."""
    w = _welch(summary, outcome)
    if w.control_mean == 0:
        raise DesignError(f"relative_lift on {outcome!r}: the control mean is 0, lift is undefined")
    lift, se = ratio_delta(w.treated_mean, w.control_mean, w.treated_var_mean, w.control_var_mean)
    details = {
        "treated_mean": w.treated_mean,
        "control_mean": w.control_mean,
        "variance": "delta method, independent arms, normal interval",
        "n_missing_outcome": summary.missing[outcome],
    }
    ci = interval(lift, se, alpha=alpha)
    return _result(
        "relative_lift", "relative lift (ATE / control mean)", outcome, ci, summary, alpha, details
    )


ESTIMATORS = {
    "difference_in_means": difference_in_means,
    "cuped": cuped,
    "lin": lin,
    "relative_lift": relative_lift,
}


def estimate(name: str, summary: ABSummary, outcome: str, *, alpha: float = 0.05) -> Result:
    """Run the estimator registered under ``name`` on the summary (names as in abtest).

    Examples
    --------
    >>> estimate("bogus", None, "y")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    causal.errors.DesignError: unknown A/B estimator 'bogus'; known: difference_in_means, ...
    """
    return abtest.estimate(name, summary, outcome, alpha=alpha, estimators=ESTIMATORS)


def balance_check(summary: ABSummary, *, threshold: float = 0.1) -> CheckResult:
    """Standardised mean differences from per-arm covariate sums (non-missing values)."""
    if not summary.covariates:
        return CheckResult("covariate_balance", "n/a", "no covariates in the spec")
    rows = []
    for column in summary.covariates:
        stats = {b["arm"]: b for b in summary.balance if b["covariate"] == column}
        shift = summary.shifts[column]
        mean = {a: shift + s["sum"] / s["n"] for a, s in stats.items()}
        var = {a: (s["squares"] - s["sum"] ** 2 / s["n"]) / (s["n"] - 1) for a, s in stats.items()}
        pooled = math.sqrt((var[1] + var[0]) / 2)
        smd = (mean[1] - mean[0]) / pooled if pooled > 0 else 0.0
        rows.append(
            {
                "covariate": column,
                "treated_mean": float(mean[1]),
                "control_mean": float(mean[0]),
                "smd": float(smd),
            }
        )
    return balance_result(rows, threshold=threshold)


def segment_effects(summary: ABSummary, outcome: str, *, alpha: float = 0.05) -> tuple[Result, ...]:
    """Difference in means within each segment level, Holm-adjusted (as abtest)."""
    stats = summary.segment_stats
    if stats is None:
        return ()
    i = summary.outcomes.index(outcome)
    shift = summary.shifts[outcome]
    found = []
    for column in summary.segments:
        mine = stats[stats["segment"] == column]
        for level in sorted(mine["level"].unique().tolist(), key=str):
            arms = mine[mine["level"] == level].set_index("arm")
            if any(int(arms["rows_"].get(a, 0)) < 2 for a in (0, 1)):
                continue
            n = (int(arms.loc[0, f"n_{i}"]), int(arms.loc[1, f"n_{i}"]))
            sums = [float(arms.loc[a, f"s_{i}"]) for a in (0, 1)]
            squares = [float(arms.loc[a, f"ss_{i}"]) for a in (0, 1)]
            means = [shift + s / k if k else math.nan for s, k in zip(sums, n, strict=True)]
            ss = [q - s * s / k if k else 0.0 for q, s, k in zip(squares, sums, n, strict=True)]
            w = _welch_or_error(n, means, ss)
            ci = interval(w.difference, w.std_error, alpha=alpha, df=w.df)
            details = {
                "treated_mean": w.treated_mean,
                "control_mean": w.control_mean,
                "df": w.df,
                "variance": "Welch (unequal variances), Satterthwaite df",
                "n_missing_outcome": int(arms["rows_"].sum()) - sum(n),
            }
            result = Result(
                "difference_in_means", "ATE", outcome, float(ci.estimate), float(ci.std_error),
                float(ci.conf_low), float(ci.conf_high), float(ci.p_value), sum(n), n[1], (),
                details, 1 - alpha,
            )  # fmt: skip
            found.append((column, level, result))
    return segment_family(found, summary.segments, outcome)


# --- internals ------------------------------------------------------------------------------


def _centred(m: np.ndarray) -> np.ndarray:
    """Centred cross-products of (z, y) from the moment matrix whose row 0 holds the sums."""
    sums = m[0, 1:]
    return m[1:, 1:] - np.outer(sums, sums) / m[0, 0]


def _adjusted_squares(c: np.ndarray, theta: np.ndarray, p: int) -> float:
    return float(c[p, p] - 2 * theta @ c[:p, p] + theta @ c[:p, :p] @ theta)


def _arm_mean(summary: ABSummary, outcome: str, m: np.ndarray) -> float:
    return summary.shifts[outcome] + m[0, -1] / m[0, 0]


def _welch(summary: ABSummary, outcome: str) -> WelchDifference:
    ms = summary.moments[outcome]
    n = (int(ms[0][0, 0]), int(ms[1][0, 0]))
    means = [_arm_mean(summary, outcome, ms[a]) if n[a] else math.nan for a in (0, 1)]
    squares = [float(_centred(ms[a])[-1, -1]) if n[a] else 0.0 for a in (0, 1)]
    return _welch_or_error(n, means, squares)


def _welch_or_error(n, means, squares) -> WelchDifference:
    try:
        return welch_from_moments(tuple(n), tuple(means), tuple(squares))
    except ValueError as exc:
        raise DesignError(str(exc)) from None


def _need_covariates(summary: ABSummary) -> None:
    if not summary.covariates:
        raise DesignError("this estimator needs pre-period covariates; list them in 'covariates'")


def _result(name, estimand, outcome, ci, summary: ABSummary, alpha, details) -> Result:
    ms = summary.moments[outcome]
    n0, n1 = int(ms[0][0, 0]), int(ms[1][0, 0])
    return Result(
        name, estimand, outcome, float(ci.estimate), float(ci.std_error), float(ci.conf_low),
        float(ci.conf_high), float(ci.p_value), n0 + n1, n1, (), details, 1 - alpha,
    )  # fmt: skip
