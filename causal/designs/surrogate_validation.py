"""Validation for the surrogate index: of its inputs, and of surrogacy on past experiments.

Inputs: :func:`prepare` checks the two tables (columns present, numeric surrogates without
missing values, a 0/1 treatment with both arms) and turns them into arrays, raising
:class:`~causal.errors.DataError` / :class:`~causal.errors.SpecError` with the column and
what to do.

Surrogacy (the treatment moves the long-term outcome only through the surrogates) cannot be
proven from the new experiment: its long-term outcome is not observed yet. What can be checked
is whether it held for *past* experiments whose long-term outcome is known (Athey, Chetty,
Imbens & Kang 2019, section 6): refit the index without experiment k, predict experiment k's
long-term effect from its surrogates, and compare with the effect actually measured on the long
outcome. Agreement supports, but cannot prove, surrogacy for a new treatment, which may act
through channels the past ones did not. The numbers (point estimates and the joint bootstrap
draws) come from :mod:`causal.designs.surrogate`; this module turns them into the table, the
pooled share of the long-term effect the surrogates explain, and the check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from causal.checks import CheckResult
from causal.errors import DataError, DesignError, SpecError
from causal.inference import welch_difference

CHECK_NAME = "surrogacy_validation"
MIN_REPLICATIONS = 20
MAX_OUTSIDE = 0.01  # share of experiment units with a surrogate outside the historical range

__all__ = [
    "CHECK_NAME",
    "SurrogateData",
    "SurrogateValidation",
    "check_rows",
    "check_settings",
    "not_applicable",
    "overlap_check",
    "prepare",
    "summarise_validation",
    "validate_past_experiments",
    "validation_groups",
]


@dataclass(frozen=True)
class SurrogateValidation:
    """How well the surrogate index predicted past experiments' long-term effects.

    Attributes
    ----------
    table : tuple of mappings
        One row per past experiment: ``experiment``, ``n_units``, ``n_treated``,
        ``surrogate_estimate`` and ``surrogate_se`` (the index refitted without that
        experiment), ``actual`` and ``actual_se`` (difference in mean long outcome, Welch SE),
        ``difference`` (actual - surrogate estimate), ``difference_se`` (joint bootstrap, so the
        correlation of the two estimates on the same customers is accounted for) and ``z``.
    share_explained : mapping
        Sum of the surrogate estimates over the sum of the actual effects: ``estimate``,
        ``std_error`` (bootstrap), ``conf_low`` / ``conf_high`` (bootstrap percentile interval at
        the estimator's level), ``p_value`` (against a share of 1) and ``stable`` (False when the
        past experiments' total effect is not distinguishable from zero, making the ratio
        meaningless). NaN entries when there are no past experiments.
    chi2, df, p_value : float
        Joint test that every difference is zero: sum of squared z (the experiments are
        independent samples), chi-squared with ``df`` = number of experiments.
    check : CheckResult
        ``surrogacy validation``: ``pass`` when neither the joint test nor the share rejects
        agreement (each at alpha / 2, Bonferroni), ``warn`` otherwise, ``n/a`` without past
        experiments.
    """

    table: tuple[Mapping[str, Any], ...]
    share_explained: Mapping[str, Any]
    chi2: float
    df: int
    p_value: float
    check: CheckResult

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", tuple(MappingProxyType(dict(r)) for r in self.table))
        object.__setattr__(self, "share_explained", MappingProxyType(dict(self.share_explained)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": [dict(r) for r in self.table],
            "share_explained": dict(self.share_explained),
            "chi2": self.chi2,
            "df": self.df,
            "p_value": self.p_value,
            "check": self.check.to_dict(),
        }


def not_applicable(reason: str) -> SurrogateValidation:
    """The validation when it cannot run (no past experiments, no arms): ``n/a`` with why.

    Examples
    --------
    >>> not_applicable("no column 'experiment_id'").check.status
    'n/a'
    """
    nan = math.nan
    detail = (
        f"{reason}: surrogacy cannot be checked on past experiments, so the long-term "
        "estimate rests on the untested assumption that the treatment moves the long-term "
        "outcome only through the surrogates"
    )
    share = {"estimate": nan, "std_error": nan, "conf_low": nan, "conf_high": nan}
    share |= {"p_value": nan, "stable": False}
    return SurrogateValidation((), share, nan, 0, nan, CheckResult(CHECK_NAME, "n/a", detail))


def summarise_validation(
    names: Sequence[str],
    *,
    surrogate: np.ndarray,
    actual: np.ndarray,
    actual_se: np.ndarray,
    n_units: Sequence[int],
    n_treated: Sequence[int],
    boot_surrogate: np.ndarray,
    boot_actual: np.ndarray,
    alpha: float,
    outcome: str,
) -> SurrogateValidation:
    """Table, pooled share and check from the point estimates and the bootstrap draws.

    ``boot_surrogate`` and ``boot_actual`` are (replications x experiments), drawn jointly
    (the same resampled customers give both numbers of an experiment).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s, a = np.array([10.0, 20.0]), np.array([11.0, 19.0])
    >>> bs = s + rng.normal(0, 1, (200, 2)); ba = a + rng.normal(0, 2, (200, 2))
    >>> v = summarise_validation(["e1", "e2"], surrogate=s, actual=a, actual_se=np.full(2, 2.0),
    ...     n_units=[100, 100], n_treated=[50, 50], boot_surrogate=bs, boot_actual=ba,
    ...     alpha=0.05, outcome="y")
    >>> v.check.status, round(v.share_explained["estimate"], 3)
    ('pass', 1.0)
    """
    from scipy import stats

    diff = actual - surrogate
    diff_se = np.std(boot_actual - boot_surrogate, axis=0, ddof=1)
    surrogate_se = np.std(boot_surrogate, axis=0, ddof=1)
    z = np.where(diff_se > 0, diff / np.where(diff_se > 0, diff_se, 1.0), np.nan)
    table = [
        {
            "experiment": name,
            "n_units": int(n_units[i]),
            "n_treated": int(n_treated[i]),
            "surrogate_estimate": float(surrogate[i]),
            "surrogate_se": float(surrogate_se[i]),
            "actual": float(actual[i]),
            "actual_se": float(actual_se[i]),
            "difference": float(diff[i]),
            "difference_se": float(diff_se[i]),
            "z": float(z[i]),
        }
        for i, name in enumerate(names)
    ]
    k = len(names)
    chi2 = float(np.nansum(z**2))
    p_chi2 = float(stats.chi2.sf(chi2, k))

    total_actual = boot_actual.sum(axis=1)
    ratio_draws = boot_surrogate.sum(axis=1) / total_actual
    # The ratio means something only when the past experiments' total effect is clearly not
    # zero; otherwise its draws straddle a pole.
    stable = bool(abs(actual.sum()) > 2 * np.std(total_actual, ddof=1))
    share = float(surrogate.sum() / actual.sum()) if actual.sum() != 0 else math.nan
    low, high = np.quantile(ratio_draws, [alpha / 2, 1 - alpha / 2])
    p_share = float(min(1.0, 2 * min(np.mean(ratio_draws <= 1), np.mean(ratio_draws >= 1))))
    share_block = {
        "estimate": share,
        "std_error": float(np.std(ratio_draws, ddof=1)),
        "conf_low": float(low),
        "conf_high": float(high),
        "p_value": p_share,
        "stable": stable,
    }
    worst_p = min(p_chi2, p_share) if stable else p_chi2
    agree = worst_p >= alpha / 2
    share_text = (
        f"the surrogates explain {share:.0%} ({1 - alpha:.0%} CI {low:.0%} to {high:.0%}, "
        f"p = {p_share:.2g} against 100%) of their total long-term effect"
        if stable
        else "their total long-term effect is too close to zero for a share explained"
    )
    evidence = (
        f"{k} past experiment{'s' if k != 1 else ''} on {outcome}: chi2 = {chi2:.2f} on {k} df "
        f"(p = {p_chi2:.2g}); {share_text}"
    )
    if agree:
        detail = (
            f"the surrogate index predicted the long-term effects of {evidence}. This supports "
            "surrogacy for the new treatment, but surrogacy cannot be proven by any test: the "
            "new treatment may move the long-term outcome through channels the past "
            "experiments did not"
        )
    else:
        detail = (
            f"the past experiments' actual long-term effects disagree with the surrogate "
            f"index's predictions ({evidence}): part of their effect bypassed the surrogates, so "
            "the new treatment's surrogate-index estimate may be biased too (too low when the "
            "share is under 100%). Add surrogates that carry the effect, or wait for the "
            "long-term outcome (surrogacy cannot be proven by any test, and here the past "
            "experiments argue against it)"
        )
    check = CheckResult(CHECK_NAME, "pass" if agree else "warn", detail, tuple(table))
    return SurrogateValidation(table, share_block, chi2, k, p_chi2, check)


# --- Inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurrogateData:
    """Validated arrays. Historical rows: features, outcome, arm, group (0 = outside any past
    experiment, k = experiment ``groups[k - 1]``)."""

    names: tuple[str, ...]
    n_surrogates: int
    hist_X: np.ndarray
    hist_y: np.ndarray
    hist_d: np.ndarray
    hist_group: np.ndarray
    groups: tuple[str, ...]
    exp_X: np.ndarray
    exp_d: np.ndarray
    notes: Mapping[str, Any]

    @property
    def fit(self) -> np.ndarray:
        return self.hist_d == 0


def check_settings(learner: str, folds: int, replications: int, alpha: float) -> None:
    """SpecError unless the learner is known, folds >= 2, replications >= 20, 0 < alpha < 0.5."""
    from causal.designs.learners import OUTCOME_LEARNERS

    if learner not in OUTCOME_LEARNERS:
        raise SpecError(
            f"unknown outcome learner {learner!r}; known outcome learners: "
            f"{', '.join(OUTCOME_LEARNERS)}"
        )
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
        raise SpecError(f"folds must be a whole number >= 2, got {folds!r}")
    if (
        isinstance(replications, bool)
        or not isinstance(replications, int | np.integer)
        or replications < MIN_REPLICATIONS
    ):
        raise SpecError(
            f"bootstrap_replications must be a whole number >= {MIN_REPLICATIONS}, "
            f"got {replications!r}"
        )
    if not (isinstance(alpha, float | int) and 0 < alpha < 0.5):
        raise SpecError(f"alpha must be a number in (0, 0.5), got {alpha!r}")


def _names(value: Any, field_name: str, *, allow_empty: bool) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(f"{field_name} must be a list of column names, got {value!r}")
    names = tuple(value)
    if not names and not allow_empty:
        raise SpecError(f"{field_name} is empty; name at least one short-term outcome column")
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise SpecError(f"{field_name} must hold column names (strings), got {bad[0]!r}")
    if len(set(names)) < len(names):
        raise SpecError(f"{field_name} names a column twice: {list(names)}")
    return names


def prepare(
    historical: pd.DataFrame,
    experiment: pd.DataFrame,
    surrogates: Sequence[str],
    long_outcome: str,
    treatment: str,
    covariates: Sequence[str],
    exp_id: str | None,
) -> SurrogateData:
    """Check both tables and return their arrays (features: surrogates, then covariates with
    non-numeric ones as indicators). Historical rows without the long outcome are dropped and
    counted in ``notes``."""
    for frame, what in ((historical, "historical"), (experiment, "experiment")):
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"the {what} data must be a pandas DataFrame, got {type(frame)}")
    surrogates = _names(surrogates, "surrogates", allow_empty=False)
    covariates = _names(covariates, "covariates", allow_empty=True)
    both = set(surrogates) & set(covariates)
    if both or long_outcome in surrogates or long_outcome in covariates:
        clash = sorted(both) or [long_outcome]
        raise SpecError(f"column {clash[0]!r} is listed in two roles; give each column one role")
    for role, cols in (("surrogate", surrogates), ("covariate", covariates)):
        for col in cols:
            for frame, what in ((historical, "historical"), (experiment, "experiment")):
                if col not in frame.columns:
                    raise DataError(
                        f"{role} {col!r} is not a column of the {what} data (columns: "
                        f"{', '.join(map(str, frame.columns))}); add it or drop it from "
                        f"{role}s"
                    )
    if long_outcome not in historical.columns:
        raise DataError(
            f"long outcome {long_outcome!r} is not a column of the historical data; the index "
            "is learned from historical units whose long-term outcome is known"
        )
    if treatment not in experiment.columns:
        raise DataError(f"treatment column {treatment!r} is not a column of the experiment data")

    y = _numeric(historical[long_outcome], f"long outcome {long_outcome!r}", "historical")
    keep = ~np.isnan(y)
    if not keep.any():
        raise DataError(
            f"long outcome {long_outcome!r} is missing in every historical row; the index needs "
            "historical units whose long-term outcome is known"
        )
    hist = historical.loc[keep]
    exp_d = _arm(experiment[treatment], treatment, "experiment")
    for arm, label in ((1, "treated"), (0, "control")):
        if int((exp_d == arm).sum()) < 2:
            raise DesignError(
                f"the experiment's {label} arm has {int((exp_d == arm).sum())} units "
                f"(column {treatment!r}); the surrogate index needs at least 2 in each arm"
            )
    if treatment in hist.columns:
        hist_d = _arm(hist[treatment], treatment, "historical")
    else:
        hist_d = np.zeros(len(hist), dtype=np.int64)

    hist_cols, exp_cols, names = [], [], []
    for col in surrogates:
        hist_cols.append(_column(hist[col], f"surrogate {col!r}", "historical"))
        exp_cols.append(_column(experiment[col], f"surrogate {col!r}", "experiment"))
        names.append(col)
    for col in covariates:
        h, e, n = _encode(hist[col], experiment[col], col, hist_d == 0)
        hist_cols += h
        exp_cols += e
        names += n

    group = np.zeros(len(hist), dtype=np.int64)
    groups: tuple[str, ...] = ()
    notes: dict[str, Any] = {
        "n_dropped_missing_outcome": int((~keep).sum()),
        "validation_column": exp_id,
    }
    if exp_id is not None and exp_id in hist.columns:
        ids = hist[exp_id]
        present = ids.notna().to_numpy()
        groups = tuple(sorted({str(v) for v in ids[present]}))
        lookup = {g: i + 1 for i, g in enumerate(groups)}
        group[present] = [lookup[str(v)] for v in ids[present]]
    notes["n_treated_outside_experiments"] = int(((hist_d == 1) & (group == 0)).sum())
    return SurrogateData(
        names=tuple(names),
        n_surrogates=len(surrogates),
        hist_X=np.column_stack(hist_cols) if hist_cols else np.empty((len(hist), 0)),
        hist_y=y[keep],
        hist_d=hist_d,
        hist_group=group,
        groups=groups,
        exp_X=np.column_stack(exp_cols),
        exp_d=exp_d,
        notes=notes,
    )


def _numeric(values: pd.Series, what: str, where: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(float)
    if not pd.api.types.is_numeric_dtype(values):
        raise DataError(
            f"{what} in the {where} data must be numeric, got dtype {values.dtype}; "
            "convert it (or, for a covariate, it becomes indicator columns automatically)"
        )
    return values.to_numpy(dtype=float, na_value=np.nan)


def _column(values: pd.Series, what: str, where: str) -> np.ndarray:
    return _no_missing(_numeric(values, what, where), what, where)


def _no_missing(values: np.ndarray, what: str, where: str) -> np.ndarray:
    missing = int(np.isnan(values).sum())
    if missing:
        raise DataError(
            f"{what} has {missing} missing value{'s' if missing > 1 else ''} in the {where} "
            f"data (of {len(values)} rows); impute them or drop those rows before estimating"
        )
    return values


def _arm(values: pd.Series, name: str, where: str) -> np.ndarray:
    if values.isna().any():
        raise DataError(
            f"treatment column {name!r} has {int(values.isna().sum())} missing values in the "
            f"{where} data; every unit needs 0 (control) or 1 (treated)"
        )
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy().astype(np.int64)
    found = set(pd.unique(values).tolist())
    if not found <= {0, 1}:
        raise DataError(
            f"treatment column {name!r} in the {where} data must be 0/1, found values "
            f"{sorted(map(str, found))[:5]}; recode it"
        )
    return values.to_numpy().astype(np.int64)


def _encode(hist: pd.Series, exp: pd.Series, name: str, fit: np.ndarray):
    """Numeric covariates as they are; others as indicators of every level but the first."""
    if pd.api.types.is_numeric_dtype(hist) or pd.api.types.is_bool_dtype(hist):
        what = f"covariate {name!r}"
        return [_column(hist, what, "historical")], [_column(exp, what, "experiment")], [name]
    for values, where in ((hist, "historical"), (exp, "experiment")):
        _no_missing(np.where(values.isna(), np.nan, 0.0), f"covariate {name!r}", where)
    levels = sorted(map(str, pd.unique(hist[fit] if fit.any() else hist)))
    unseen = sorted(set(map(str, pd.unique(exp))) - set(levels))
    if unseen:
        raise DataError(
            f"covariate {name!r} takes values in the experiment that the historical data never "
            f"show ({', '.join(unseen[:5])}); the index cannot predict for them"
        )
    h, e = hist.astype(str).to_numpy(), exp.astype(str).to_numpy()
    cols = [(f"{name}={lv}", (h == lv).astype(float), (e == lv).astype(float)) for lv in levels[1:]]
    return [c[1] for c in cols], [c[2] for c in cols], [c[0] for c in cols]


def check_rows(data: SurrogateData, folds: int) -> None:
    """DataError when the untreated historical rows are too few for the folds and terms."""
    n_fit = int(data.fit.sum())
    p = len(data.names) + 1
    need = max(2 * folds, math.ceil((p + 2) * folds / (folds - 1)))
    if n_fit < need:
        raise DataError(
            f"the historical data have {n_fit} untreated rows with the long outcome; the index "
            f"needs at least {need} for {folds} folds and {p} terms (surrogates, covariate "
            "columns and an intercept); add historical rows, or lower folds"
        )


def validation_groups(data: SurrogateData) -> list[tuple[int, str]]:
    """Past experiments with at least 2 units per arm, as (group number, name)."""
    out = []
    for k, name in enumerate(data.groups, start=1):
        d = data.hist_d[data.hist_group == k]
        if min(int(d.sum()), int((1 - d).sum())) >= 2:
            out.append((k, name))
    return out


# --- Past experiments and overlap ----------------------------------------------------------


def validate_past_experiments(
    data: SurrogateData, groups, loo, boot, alpha: float, outcome: str
) -> SurrogateValidation:
    """Each past experiment's index estimate (``loo``: index refitted without it) against its
    actual effect on the long outcome, with the joint bootstrap draws ``boot``."""
    if data.notes["validation_column"] is None:
        return not_applicable("validation skipped (experiment_id=None)")
    if not data.groups:
        col = data.notes["validation_column"]
        return not_applicable(f"no past experiments in the historical data (column {col!r})")
    if not groups:
        return not_applicable(
            "no past experiment has at least 2 units in each arm with the long outcome"
        )
    surrogate, actual, actual_se, n_units, n_treated = [], [], [], [], []
    for g, _ in groups:
        rows = np.flatnonzero(data.hist_group == g)
        d = data.hist_d[rows]
        index = loo[g].predict(data.hist_X[rows])
        surrogate.append(index[d == 1].mean() - index[d == 0].mean())
        w = welch_difference(data.hist_y[rows], d)
        actual.append(w.difference)
        actual_se.append(w.std_error)
        n_units.append(rows.size)
        n_treated.append(int(d.sum()))
    return summarise_validation(
        [name for _, name in groups],
        surrogate=np.array(surrogate),
        actual=np.array(actual),
        actual_se=np.array(actual_se),
        n_units=n_units,
        n_treated=n_treated,
        boot_surrogate=boot["surrogate"],
        boot_actual=boot["actual"],
        alpha=alpha,
        outcome=outcome,
    )


def overlap_check(data: SurrogateData) -> CheckResult:
    """Pilot units whose surrogates lie outside the historical range: the index extrapolates."""
    fit_X = data.hist_X[data.fit]
    rows = []
    for j in range(data.n_surrogates):
        lo, hi = fit_X[:, j].min(), fit_X[:, j].max()
        v = data.exp_X[:, j]
        outside = float(np.mean((v < lo) | (v > hi)))
        rows.append(
            {"surrogate": data.names[j], "historical_min": float(lo), "historical_max": float(hi)}
            | {"share_outside": outside}
        )
    worst = max(rows, key=lambda r: r["share_outside"])
    share = worst["share_outside"]
    if share <= MAX_OUTSIDE:
        detail = (
            f"at most {share:.1%} of experiment units have a surrogate outside the range the "
            "index was fitted on"
        )
        return CheckResult("surrogate_overlap", "pass", detail, tuple(rows))
    detail = (
        f"{share:.1%} of experiment units have {worst['surrogate']!r} outside the historical "
        f"range [{worst['historical_min']:g}, {worst['historical_max']:g}]: the index "
        "extrapolates for them"
    )
    return CheckResult("surrogate_overlap", "warn", detail, tuple(rows))
