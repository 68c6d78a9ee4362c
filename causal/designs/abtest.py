"""A/B pilot analysis: estimators, design checks, segment effects and power.

Estimators (registry names as in results.json):

- ``difference_in_means`` — treated minus control mean, Welch SE and Satterthwaite df.
- ``cuped`` — Deng, Xu, Kohavi & Walker (2013): subtract the pooled regression of the outcome on
  pre-period covariates, then difference in means (Welch SE on the adjusted outcome).
- ``lin`` — Lin (2013) regression adjustment: OLS of the outcome on treatment, centred
  covariates and their interactions; HC2 SE, residual df. The coefficient on treatment is the ATE.
- ``relative_lift`` — treated mean / control mean − 1 with a delta-method SE.

Missing outcomes are dropped per outcome (counted in ``details``); missing covariate values are
filled with the covariate mean plus a missing-indicator column, which keeps adjustment unbiased
under randomisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from causal.checks import CheckResult
from causal.data.dataset import Dataset
from causal.errors import DesignError
from causal.inference import interval, ols_robust, ratio_delta, welch_difference
from causal.results import Result

Estimator = Callable[..., Result]


def difference_in_means(data: Dataset, outcome: str, *, alpha: float = 0.05) -> Result:
    """Difference in means with Welch's unequal-variance SE.

    Examples
    --------
    >>> from causal.data.dataset import validate_table
    >>> t = pd.DataFrame({"id": range(6), "d": [0, 0, 0, 1, 1, 1], "y": [1., 2, 3, 2, 4, 6]})
    >>> ds = validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"})
    >>> difference_in_means(ds, "y").estimate
    2.0
    """
    y, d, _ = _arrays(data, outcome)
    w = _welch(y, d)
    ci = interval(w.difference, w.std_error, alpha=alpha, df=w.df)
    return _result(
        "difference_in_means",
        "ATE",
        outcome,
        ci,
        y,
        d,
        alpha,
        {
            "treated_mean": w.treated_mean,
            "control_mean": w.control_mean,
            "df": w.df,
            "variance": "Welch (unequal variances), Satterthwaite df",
            "n_missing_outcome": _n_missing(data, outcome),
        },
    )


def cuped(data: Dataset, outcome: str, *, alpha: float = 0.05) -> Result:
    """CUPED: difference in means of the outcome minus its pooled projection on covariates.

    Examples
    --------
    >>> from causal.data.dataset import validate_table
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400); d = np.tile([0, 1], 200); y = x + d + rng.normal(size=400)
    >>> t = pd.DataFrame({"id": range(400), "d": d, "x": x, "y": y})
    >>> ds = validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"},
    ...                     covariates=("x",))
    >>> cuped(ds, "y").std_error < difference_in_means(ds, "y").std_error
    True
    """
    y, d, X = _arrays(data, outcome, need_covariates=True)
    Xc = X - X.mean(axis=0)
    theta, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), Xc]), y, rcond=None)
    adjusted = y - Xc @ theta[1:]
    w = _welch(adjusted, d)
    ci = interval(w.difference, w.std_error, alpha=alpha, df=w.df)
    reduction = 1.0 - float(np.var(adjusted, ddof=1) / np.var(y, ddof=1))
    return _result(
        "cuped",
        "ATE",
        outcome,
        ci,
        y,
        d,
        alpha,
        {
            "treated_mean": float(y[d == 1].mean()),
            "control_mean": float(y[d == 0].mean()),
            "theta": dict(zip(_covariate_matrix(data)[1], map(float, theta[1:]), strict=True)),
            "variance_reduction": reduction,
            "df": w.df,
            "variance": "Welch on the CUPED-adjusted outcome (theta treated as known)",
            "n_missing_outcome": _n_missing(data, outcome),
        },
    )


def lin(data: Dataset, outcome: str, *, alpha: float = 0.05) -> Result:
    """Lin (2013) interacted regression adjustment with HC2 standard errors.

    Examples
    --------
    >>> from causal.data.dataset import validate_table
    >>> t = pd.DataFrame({"id": range(8), "d": [0, 1] * 4, "x": [1., 1, 2, 2, 3, 3, 4, 4],
    ...                   "y": [1., 3, 2, 4, 3, 5, 4, 6]})
    >>> ds = validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"},
    ...                     covariates=("x",))
    >>> round(lin(ds, "y").estimate, 6)
    2.0
    """
    y, d, X = _arrays(data, outcome, need_covariates=True)
    Xc = X - X.mean(axis=0)
    design = np.column_stack([np.ones(len(y)), d, Xc, Xc * d[:, None]])
    k = Xc.shape[1]
    if len(y) <= design.shape[1]:
        raise DesignError(f"lin on {outcome!r}: {len(y)} units cannot fit {design.shape[1]} terms")
    fit = ols_robust(
        y, design, names=("const", "treated", *[f"x{i}" for i in range(2 * k)]), cov_type="HC2"
    )
    ci = interval(float(fit.params[1]), math.sqrt(fit.cov[1, 1]), alpha=alpha, df=fit.df_resid)
    return _result(
        "lin",
        "ATE",
        outcome,
        ci,
        y,
        d,
        alpha,
        {
            "treated_mean": float(y[d == 1].mean()),
            "control_mean": float(y[d == 0].mean()),
            "df": fit.df_resid,
            "variance": "HC2 (Lin 2013), residual df",
            "covariates": _covariate_matrix(data)[1],
            "n_missing_outcome": _n_missing(data, outcome),
        },
    )


def relative_lift(data: Dataset, outcome: str, *, alpha: float = 0.05) -> Result:
    """Relative lift, treated mean / control mean − 1, with a delta-method SE.

    Examples
    --------
    >>> from causal.data.dataset import validate_table
    >>> t = pd.DataFrame({"id": range(6), "d": [0, 0, 0, 1, 1, 1], "y": [1., 2, 3, 2, 4, 6]})
    >>> ds = validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"})
    >>> relative_lift(ds, "y").estimate
    1.0
    """
    y, d, _ = _arrays(data, outcome)
    w = _welch(y, d)
    if w.control_mean == 0:
        raise DesignError(f"relative_lift on {outcome!r}: the control mean is 0, lift is undefined")
    lift, se = ratio_delta(w.treated_mean, w.control_mean, w.treated_var_mean, w.control_var_mean)
    ci = interval(lift, se, alpha=alpha)
    return _result(
        "relative_lift",
        "relative lift (ATE / control mean)",
        outcome,
        ci,
        y,
        d,
        alpha,
        {
            "treated_mean": w.treated_mean,
            "control_mean": w.control_mean,
            "variance": "delta method, independent arms, normal interval",
            "n_missing_outcome": _n_missing(data, outcome),
        },
    )


ESTIMATORS: dict[str, Estimator] = {
    "difference_in_means": difference_in_means,
    "cuped": cuped,
    "lin": lin,
    "relative_lift": relative_lift,
}


def estimate(
    name: str,
    data: Dataset,
    outcome: str,
    *,
    alpha: float = 0.05,
    estimators: dict[str, Estimator] | None = None,
) -> Result:
    """Run the A/B estimator registered under ``name`` (in ``estimators``: this module's, or
    :mod:`causal.designs.ab_sums`' for the engine's summary).

    Examples
    --------
    >>> estimate("bogus", None, "y")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    causal.errors.DesignError: unknown A/B estimator 'bogus'; known: difference_in_means, ...
    """
    registry = ESTIMATORS if estimators is None else estimators
    if name not in registry:
        raise DesignError(f"unknown A/B estimator {name!r}; known: {', '.join(registry)}")
    return registry[name](data, outcome, alpha=alpha)


# --- checks -------------------------------------------------------------------------------


def sample_ratio_check(
    n_treated: int, n_control: int, *, planned_share: float = 0.5, alpha: float = 0.001
) -> CheckResult:
    """Sample-ratio mismatch: chi-square test of the arm sizes against the planned split.

    Examples
    --------
    >>> sample_ratio_check(10_400, 9_600).status
    'fail'
    >>> sample_ratio_check(10_030, 9_970).status
    'pass'
    """
    n = n_treated + n_control
    expected = [n * planned_share, n * (1 - planned_share)]
    chi2, p = stats.chisquare([n_treated, n_control], f_exp=expected)
    share = n_treated / n
    table = (
        {"arm": "treated", "observed": n_treated, "expected": expected[0]},
        {"arm": "control", "observed": n_control, "expected": expected[1]},
    )
    detail = (
        f"{share:.1%} treated vs {planned_share:.1%} planned "
        f"(chi² = {chi2:.2f}, p = {p:.2g}, fail below {alpha:g})"
    )
    if p < alpha:
        detail += "; assignment or logging is broken: find out why before trusting any estimate"
        return CheckResult("sample_ratio", "fail", detail, table)
    return CheckResult("sample_ratio", "pass", detail, table)


def balance_check(data: Dataset, *, threshold: float = 0.1) -> CheckResult:
    """Standardised mean differences of the covariates between arms.

    A randomised pilot is balanced in expectation; a large SMD flags chance imbalance (which
    regression adjustment corrects) or a broken randomisation.
    """
    if not data.covariates:
        return CheckResult("covariate_balance", "n/a", "no covariates in the spec")
    d = data.table[data.treatment].to_numpy()
    rows = []
    for column in data.covariates:
        x = data.table[column].to_numpy(dtype=float)
        x1, x0 = x[(d == 1) & ~np.isnan(x)], x[(d == 0) & ~np.isnan(x)]
        pooled = math.sqrt((np.var(x1, ddof=1) + np.var(x0, ddof=1)) / 2)
        smd = (x1.mean() - x0.mean()) / pooled if pooled > 0 else 0.0
        rows.append(
            {
                "covariate": column,
                "treated_mean": float(x1.mean()),
                "control_mean": float(x0.mean()),
                "smd": float(smd),
            }
        )
    return balance_result(rows, threshold=threshold)


def balance_result(rows: list[dict], *, threshold: float) -> CheckResult:
    """The balance check's verdict on its per-covariate rows (also used by the engine path)."""
    worst_row = max(rows, key=lambda r: abs(r["smd"]))
    detail = (
        f"largest |SMD| {abs(worst_row['smd']):.3f} ({worst_row['covariate']}); "
        f"warn above {threshold:g}"
    )
    status = "warn" if abs(worst_row["smd"]) > threshold else "pass"
    return CheckResult("covariate_balance", status, detail, tuple(rows))


def missing_check(data: Dataset) -> CheckResult:
    """Counts of missing values in outcomes, covariates and segments."""
    rows = tuple(
        {"column": c, "missing": n, "share": n / data.n_units} for c, n in data.missing.items()
    )
    bad = [r for r in rows if r["missing"]]
    if not bad:
        return CheckResult("missing_values", "pass", "no missing values", rows)
    worst_row = max(bad, key=lambda r: r["missing"])
    detail = (
        f"{len(bad)} column(s) with missing values, most in {worst_row['column']!r} "
        f"({worst_row['missing']}, {worst_row['share']:.1%}); outcomes are dropped per "
        f"outcome, covariates mean-filled with an indicator"
    )
    return CheckResult("missing_values", "warn", detail, rows)


# --- segments and power ---------------------------------------------------------------------


def segment_effects(data: Dataset, outcome: str, *, alpha: float = 0.05) -> tuple[Result, ...]:
    """Difference in means within each level of each segment column, Holm-adjusted.

    The family for the Holm correction is every (segment column, level) pair of this outcome.
    ``details`` carries ``p_value_holm`` and Cochran's Q test that the segment effects are equal.
    """
    found: list[tuple[str, object, Result]] = []
    for column in data.segments:
        levels = data.table[column].dropna()
        for level in sorted(pd.unique(levels), key=str):
            part = data.table[data.table[column] == level]
            sub = Dataset(part, data.unit, data.treatment, data.outcomes, data.covariates)
            counts = part[data.treatment].value_counts()
            if counts.get(0, 0) < 2 or counts.get(1, 0) < 2:
                continue
            found.append((column, level, difference_in_means(sub, outcome, alpha=alpha)))
    return segment_family(found, data.segments, outcome)


def segment_family(
    found: list[tuple[str, object, Result]], segments: tuple[str, ...], outcome: str
) -> tuple[Result, ...]:
    """Per-level differences in means → CATE results with Holm p-values and Cochran's Q (the
    family is every (segment column, level) pair of this outcome). Shared by the row path and
    the engine-aggregate path (:mod:`causal.designs.ab_moments`)."""
    from statsmodels.stats.multitest import multipletests

    if not found:
        return ()
    holm = multipletests([r.p_value for *_, r in found], method="holm")[1]
    q_tests = {c: _cochran_q([r for col, _, r in found if col == c]) for c in segments}
    out = []
    for (column, level, r), p_holm in zip(found, holm, strict=True):
        q, p_q = q_tests[column]
        details = {
            **r.details,
            "segment": column,
            "level": str(level),
            "p_value_holm": float(p_holm),
            "heterogeneity_q": q,
            "heterogeneity_p": p_q,
        }
        out.append(
            Result(
                r.estimator,
                "CATE",
                outcome,
                r.estimate,
                r.std_error,
                r.conf_low,
                r.conf_high,
                r.p_value,
                r.n_units,
                r.n_treated,
                (),
                details,
                r.conf_level,
            )
        )
    return tuple(out)


def power_row(result: Result, *, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Minimum detectable effect at ``power`` for the SE this estimator achieved.

    Examples
    --------
    >>> r = Result("difference_in_means", "ATE", "y", 1.0, 1.0, -1, 3, 0.3, 100, 50,
    ...            details={"control_mean": 10.0})
    >>> round(power_row(r)["mde"], 3)
    2.802
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    mde = float(z * result.std_error)
    control = result.details.get("control_mean")
    rel = mde / abs(control) if control else math.nan
    return {
        "outcome": result.outcome,
        "estimator": result.estimator,
        "alpha": alpha,
        "power": power,
        "std_error": result.std_error,
        "mde": mde,
        "mde_relative": rel,
    }


# --- internals ------------------------------------------------------------------------------


def _arrays(data: Dataset, outcome: str, *, need_covariates: bool = False):
    if need_covariates and not data.covariates:
        raise DesignError("this estimator needs pre-period covariates; list them in 'covariates'")
    table = data.table
    y = table[outcome].to_numpy(dtype=float)
    d = table[data.treatment].to_numpy(dtype=np.int64)
    X = _covariate_matrix(data)[0] if need_covariates else None
    keep = ~np.isnan(y)
    if not keep.all():  # drop units whose outcome is missing; copy only then
        y, d = y[keep], d[keep]
        X = X[keep] if X is not None else None
    return y, d, X


def _covariate_matrix(data: Dataset) -> tuple[np.ndarray, list[str]]:
    """Covariates, mean-filled with a missing indicator, constant columns dropped."""
    columns, names = [], []
    for column in data.covariates:
        x = data.table[column].to_numpy(dtype=float)
        miss = np.isnan(x)
        if miss.any():
            x = np.where(miss, np.nanmean(x), x)
            columns.append(miss.astype(float))
            names.append(f"{column}_missing")
        columns.append(x)
        names.append(column)
    X = np.column_stack(columns)
    varying = X.std(axis=0) > 0  # constant columns add nothing and break the algebra
    return X[:, varying], [n for n, v in zip(names, varying, strict=True) if v]


def _welch(y: np.ndarray, d: np.ndarray):
    try:
        return welch_difference(y, d)
    except ValueError as exc:
        raise DesignError(str(exc)) from None


def _n_missing(data: Dataset, outcome: str) -> int:
    return int(data.table[outcome].isna().sum())


def _result(
    name: str, estimand: str, outcome: str, ci, y, d, alpha: float, details: dict
) -> Result:
    return Result(
        name,
        estimand,
        outcome,
        float(ci.estimate),
        float(ci.std_error),
        float(ci.conf_low),
        float(ci.conf_high),
        float(ci.p_value),
        len(y),
        int(d.sum()),
        (),
        details,
        1 - alpha,
    )


def _cochran_q(results: list[Result]) -> tuple[float, float]:
    if len(results) < 2:
        return math.nan, math.nan
    est = np.array([r.estimate for r in results])
    w = 1 / np.array([r.std_error for r in results]) ** 2
    pooled = float((w * est).sum() / w.sum())
    q = float((w * (est - pooled) ** 2).sum())
    return q, float(stats.chi2.sf(q, len(results) - 1))
