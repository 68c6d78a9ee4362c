"""The surrogate index (Athey, Chetty, Imbens & Kang 2019): a long-term effect from short ones.

A pilot's long-term outcome (12-month revenue) is not observed yet, but its short-term signals
(the *surrogates*: first-quarter purchases, satisfaction scores...) are. A historical sample
holds both. The index is the prediction of the long outcome from the surrogates and covariates,
E[Y | S, X], learned on the historical sample; the long-term effect is the difference in mean
index between the pilot's arms. It is unbiased when (1) *surrogacy*: the treatment moves Y only
through S (given X), and (2) *comparability*: E[Y | S, X] is the same in the historical sample
and in the pilot.

Which historical rows: the index is fitted on the **untreated** historical rows only
(customers outside any past experiment plus the control arms of past experiments); treated
arms of past experiments are left out. Comparability concerns the relationship between S and Y
in the absence of a treatment that bypasses S, which is what untreated customers show (the
paper's "observational sample"). A treated arm follows the same relationship only if
surrogacy held for *its* treatment; including it would let any direct effect of a past
treatment leak into the index, and would make the validation on past experiments (which asks
exactly whether surrogacy held for them) partly circular.

Uncertainty: the standard error is the standard deviation of a bootstrap over both samples
(historical rows resampled within strata and the index refitted; pilot customers resampled
within arm), so it includes the index's estimation error; the interval is normal with that SE.
The past-experiment validation is bootstrapped jointly in the same replications.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from causal.checks import CheckResult
from causal.designs.surrogate_validation import (
    SurrogateData,
    SurrogateValidation,
    check_rows,
    check_settings,
    overlap_check,
    prepare,
    validate_past_experiments,
    validation_groups,
)
from causal.inference import welch_difference
from causal.progress import progress
from causal.results import Result, _json_safe

__all__ = ["SurrogateIndexResult", "surrogate_index"]

ESTIMATOR = "surrogate_index"
MIN_R2 = 0.1  # out-of-fold R² below this: the fit check warns


@dataclass(frozen=True)
class SurrogateIndexResult:
    """The surrogate-index estimate with its parts.

    Attributes
    ----------
    long_term : Result
        Estimator ``surrogate_index``, estimand ATE on the long outcome: difference in mean
        index between the arms, bootstrap SE, normal interval. Diagnostics: the index fit, the
        surrogates' overlap with the historical range, and the surrogacy validation.
    short_term : tuple of Result
        Welch difference in means of each surrogate in the experiment, in surrogate order.
    contributions : tuple of mappings or None
        Linear index only: per surrogate ``coefficient`` (long outcome per unit of the
        surrogate, others held fixed; predictive, not causal) times ``short_term_effect`` =
        ``contribution``, with bootstrap SEs, plus a ``covariate imbalance`` row (chance
        differences of the covariates between arms); the contributions sum to the estimate.
    contributions_note : str
        Why ``contributions`` is None, else an empty string.
    validation : SurrogateValidation
        Past experiments' predicted vs actual long-term effects and the check.
    index_fit : mapping
        Learner, rows fitted, out-of-fold R² and RMSE, and coefficients (linear index).
    """

    long_term: Result
    short_term: tuple[Result, ...]
    contributions: tuple[Mapping[str, Any], ...] | None
    contributions_note: str
    validation: SurrogateValidation
    index_fit: Mapping[str, Any] = field(default_factory=dict)
    # Each experiment unit's predicted long-term outcome (the index), in the experiment's row
    # order: the horizons' joint covariance needs it. Not part of to_dict().
    index: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "short_term", tuple(self.short_term))
        object.__setattr__(self, "index_fit", MappingProxyType(dict(self.index_fit)))
        if self.contributions is not None:
            rows = tuple(MappingProxyType(dict(r)) for r in self.contributions)
            object.__setattr__(self, "contributions", rows)

    def tidy(self) -> pd.DataFrame:
        """The long-term estimate and the short-term ones, one row each."""
        return pd.concat([r.tidy() for r in (self.long_term, *self.short_term)], ignore_index=True)

    def plot_data(self) -> dict[str, pd.DataFrame]:
        """Tidy frames: ``estimates``, ``validation`` and (linear index) ``contributions``."""
        frames = {"estimates": self.tidy(), "validation": pd.DataFrame(self.validation.table)}
        if self.contributions is not None:
            frames["contributions"] = pd.DataFrame(self.contributions)
        return frames

    def summary(self) -> str:
        """Text summary (returned, never printed)."""
        lines = [self.long_term.summary(), "short-term effects:"]
        lines += ["  " + r.summary().splitlines()[0] for r in self.short_term]
        if self.contributions is not None:
            lines.append("contributions to the long-term effect:")
            lines += [
                f"  {c['term']}: {c['contribution']:,.4g} (SE {c['contribution_se']:,.4g})"
                for c in self.contributions
            ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.summary()) + "</pre>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain Python values, NaN as None, no fitted model objects."""
        return _json_safe(
            {
                "long_term": self.long_term.to_dict(),
                "short_term": [r.to_dict() for r in self.short_term],
                "contributions": None
                if self.contributions is None
                else [dict(c) for c in self.contributions],
                "contributions_note": self.contributions_note,
                "validation": self.validation.to_dict(),
                "index_fit": dict(self.index_fit),
            }
        )


def surrogate_index(
    historical: pd.DataFrame,
    experiment: pd.DataFrame,
    *,
    surrogates: Sequence[str],
    long_outcome: str,
    treatment: str = "treated",
    covariates: Sequence[str] = (),
    experiment_id: str | None = "experiment_id",
    learner: str = "linear",
    folds: int = 5,
    bootstrap_replications: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> SurrogateIndexResult:
    """Long-term treatment effect from short-term surrogates and a historical sample.

    Parameters
    ----------
    historical : pandas.DataFrame
        One row per historical unit: the surrogates, the covariates and ``long_outcome``;
        optionally ``treatment`` (0/1; rows with 1 are left out of the index) and
        ``experiment_id`` (past randomised experiments, null outside them).
    experiment : pandas.DataFrame
        One row per unit of the new experiment: ``treatment`` (0/1), surrogates, covariates.
    surrogates : sequence of str
        Short-term outcomes observed in both samples (numeric).
    long_outcome : str
        The long-term outcome, observed in the historical sample only.
    treatment : str, default "treated"
        0/1 treatment column of the experiment (and of the historical data, if present).
    covariates : sequence of str, default ()
        Pre-treatment covariates; non-numeric ones become indicator columns.
    experiment_id : str or None, default "experiment_id"
        Column naming past experiments in ``historical``; None (or absent) skips validation.
    learner : str, default "linear"
        Index model, a name of :data:`causal.designs.learners.OUTCOME_LEARNERS`.
    folds : int, default 5
        Cross-fitting folds for the index's out-of-fold R².
    bootstrap_replications : int, default 200
        Bootstrap replications (at least 20). Each refits the index (and one more per past
        experiment): cheap for ``linear`` (solved in numpy), slow for the tree learners.
    alpha : float, default 0.05
        1 - confidence level.
    seed : int, default 0
        Seed of the folds, the learner and the bootstrap.

    Returns
    -------
    SurrogateIndexResult

    Raises
    ------
    SpecError
        Bad settings (no surrogates, unknown learner, folds < 2, ...).
    DataError
        A column is missing, has missing values, a non-0/1 treatment, or too few rows.
    DesignError
        An experiment arm has fewer than 2 units.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> hist = pd.DataFrame({"s": rng.normal(size=500)})
    >>> hist["y"] = 3 * hist["s"] + rng.normal(size=500)
    >>> exp = pd.DataFrame({"treated": np.repeat([0, 1], 200), "s": rng.normal(size=400)})
    >>> exp.loc[exp.treated == 1, "s"] += 1.0
    >>> res = surrogate_index(hist, exp, surrogates=["s"], long_outcome="y",
    ...                       bootstrap_replications=50)
    >>> round(res.long_term.estimate / res.short_term[0].estimate, 1)  # the slope
    3.0
    """
    check_settings(learner, folds, bootstrap_replications, alpha)
    data = prepare(
        historical, experiment, surrogates, long_outcome, treatment, covariates, experiment_id
    )
    check_rows(data, folds)
    from causal.designs.obs_propensity import single_threaded

    # Many small fits and products: threads cost more than they save (see single_threaded).
    with single_threaded():
        return _estimate(
            data, surrogates, covariates, long_outcome, learner, folds, bootstrap_replications,
            alpha, seed,
        )  # fmt: skip


def _estimate(data, surrogates, covariates, long_outcome, learner, folds, reps, alpha, seed):
    fit = data.fit
    X_fit, y_fit = data.hist_X[fit], data.hist_y[fit]
    exp_d = data.exp_d
    n1, n0 = int(exp_d.sum()), int((1 - exp_d).sum())

    # --- Point estimates (the learner from the registry).
    model = _fit_learner(learner, seed, X_fit, y_fit)
    index = model.predict(data.exp_X)
    estimate = float(index[exp_d == 1].mean() - index[exp_d == 0].mean())
    oof = _out_of_fold(learner, seed, X_fit, y_fit, folds)
    groups = validation_groups(data)
    loo = {}
    for k, _ in groups:
        keep = fit & (data.hist_group != k)
        loo[k] = _fit_learner(learner, seed, data.hist_X[keep], data.hist_y[keep])

    # --- Bootstrap over both samples, jointly with the validation.
    boot = _bootstrap(data, learner, seed, reps, groups)
    se = float(np.std(boot["estimate"], ddof=1))

    short = []
    for j, name in enumerate(surrogates):
        w = welch_difference(data.exp_X[:, j], exp_d)
        short.append(
            Result.from_estimate(
                "difference_in_means",
                "ATE",
                name,
                w.difference,
                w.std_error,
                n_units=n0 + n1,
                n_treated=n1,
                alpha=alpha,
                df=w.df,
                details={"treated_mean": w.treated_mean, "control_mean": w.control_mean},
            )
        )

    linear = learner == "linear"
    coef = np.append(model.intercept_, model.coef_) if linear else None
    contributions, note = None, ""
    if linear:
        contributions = _contributions(data, coef, estimate, boot)
    else:
        note = (
            f"contributions need a linear index (learner='linear'); the {learner!r} index has "
            "no coefficients to split the effect by surrogate"
        )

    validation = validate_past_experiments(data, groups, loo, boot, alpha, long_outcome)
    r2 = 1 - np.sum((y_fit - oof) ** 2) / np.sum((y_fit - y_fit.mean()) ** 2)
    index_fit = {
        "learner": learner,
        "folds": folds,
        "fit_sample": "untreated historical rows (outside past experiments, or in a control arm)",
        "n_rows": int(fit.sum()),
        "oof_r2": float(r2),
        "oof_rmse": float(np.sqrt(np.mean((y_fit - oof) ** 2))),
        "outcome_mean": float(y_fit.mean()),
        "features": list(data.names),
        **dict(data.notes),
    }
    if linear:
        index_fit["coefficients"] = dict(
            zip(("intercept", *data.names), coef.tolist(), strict=True)
        )
    checks = (_fit_check(index_fit, long_outcome), overlap_check(data), validation.check)
    details = {
        "treated_mean": float(index[exp_d == 1].mean()),
        "control_mean": float(index[exp_d == 0].mean()),
        "surrogates": list(surrogates),
        "covariates": list(covariates),
        "learner": learner,
        "n_historical_fit": int(fit.sum()),
        "oof_r2": float(r2),
        "bootstrap_replications": reps,
        "interval": "normal, bootstrap SE (historical rows and experiment arms resampled)",
    }
    long_term = Result.from_estimate(
        ESTIMATOR, "ATE", long_outcome, estimate, se,
        n_units=n0 + n1, n_treated=n1, alpha=alpha, details=details,
    )  # fmt: skip
    long_term = replace(long_term, diagnostics=checks)
    return SurrogateIndexResult(
        long_term, tuple(short), contributions, note, validation, index_fit, index=index
    )


# --- Fitting ------------------------------------------------------------------------------


def _fit_learner(learner: str, seed: int, X: np.ndarray, y: np.ndarray):
    from causal.designs.learners import outcome_learner

    model = outcome_learner(learner, seed=seed)
    model.fit(X, y)
    return model


def _out_of_fold(learner: str, seed: int, X: np.ndarray, y: np.ndarray, folds: int) -> np.ndarray:
    from sklearn.model_selection import KFold

    oof = np.empty(len(y))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        oof[test] = _fit_learner(learner, seed, X[train], y[train]).predict(X[test])
    return oof


def _strata(data: SurrogateData) -> list[np.ndarray]:
    """Historical rows resampled together: untreated rows outside experiments, and each past
    experiment's arms (treated rows outside experiments are used for nothing)."""
    out = [np.flatnonzero((data.hist_group == 0) & (data.hist_d == 0))]
    for k in range(1, len(data.groups) + 1):
        for arm in (0, 1):
            out.append(np.flatnonzero((data.hist_group == k) & (data.hist_d == arm)))
    return [s for s in out if s.size]


def _counts(rng: np.random.Generator, strata: list[np.ndarray], n: int) -> np.ndarray:
    counts = np.zeros(n, dtype=np.int64)
    for idx in strata:
        counts[idx] = np.bincount(rng.integers(0, idx.size, idx.size), minlength=idx.size)
    return counts


def _arm_diff(values: np.ndarray, counts: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Count-weighted mean of ``values`` (rows, or rows x columns) in arm 1 minus arm 0."""
    w1, w0 = counts * (d == 1), counts * (d == 0)
    return (w1 @ values) / w1.sum() - (w0 @ values) / w0.sum()


def _bootstrap(
    data: SurrogateData, learner: str, seed: int, reps: int, groups
) -> dict[str, np.ndarray]:
    """Joint bootstrap draws: the index effect, the feature differences times coefficients
    (linear), and per past experiment the index and actual long-term effects.

    The linear index is refitted by solving the count-weighted normal equations in numpy
    rather than by scikit-learn: one Gram matrix per replication serves the main fit and every
    leave-one-experiment-out fit (subtract that experiment's part), where scikit-learn would
    copy the resampled rows and refactor the design 1 + K times per replication.
    """
    rng = np.random.default_rng([seed, 20190])  # its own stream, apart from folds/learners
    strata = _strata(data)
    exp_strata = [np.flatnonzero(data.exp_d == arm) for arm in (0, 1)]
    n_h, n_e, k = len(data.hist_y), len(data.exp_d), len(groups)
    linear = learner == "linear"
    out = {
        "estimate": np.empty(reps),
        "terms": np.empty((reps, len(data.names))),  # coefficient x feature difference
        "coef": np.empty((reps, len(data.names))),
        "surrogate": np.empty((reps, k)),
        "actual": np.empty((reps, k)),
    }
    if linear:
        fit_rows = np.flatnonzero(data.fit)
        X1 = np.column_stack([np.ones(fit_rows.size), data.hist_X[fit_rows]])
        scale = np.sqrt(np.mean(X1**2, axis=0))
        scale[scale == 0] = 1.0
        X1s, y_fit = X1 / scale, data.hist_y[fit_rows]
        buffer = np.empty_like(X1s)  # reused: a fresh n x p temporary per draw costs more
        members = [np.flatnonzero(data.hist_group[fit_rows] == g) for g, _ in groups]
        member_X = [X1s[m] for m in members]
        member_y = [y_fit[m] for m in members]
    # Each past experiment's rows, arms, features and outcome, sliced once.
    past = []
    for g, _ in groups:
        rows = np.flatnonzero(data.hist_group == g)
        past.append((rows, data.hist_d[rows], data.hist_X[rows], data.hist_y[rows]))
    for b in progress(range(reps), desc="surrogate index bootstrap", total=reps):
        ch = _counts(rng, strata, n_h)
        ce = _counts(rng, exp_strata, n_e)
        dx = _arm_diff(data.exp_X, ce, data.exp_d)
        if linear:
            w = ch[fit_rows].astype(float)
            weighted = np.multiply(X1s, w[:, None], out=buffer)
            gram = weighted.T @ X1s
            cross = weighted.T @ y_fit
            beta = _solve(gram, cross) / scale
            out["coef"][b] = beta[1:]
            out["terms"][b] = beta[1:] * dx
            out["estimate"][b] = out["terms"][b].sum()
        else:
            model = _fit_learner(learner, seed, *_rows(data, ch * data.fit))
            out["estimate"][b] = _arm_diff(model.predict(data.exp_X), ce, data.exp_d)
        for i, (g, _) in enumerate(groups):
            rows, d, X_g, y_g = past[i]
            c_g = ch[rows]
            if linear:  # leave experiment g out: subtract its (control) rows' part
                part = weighted[members[i]]
                beta_k = _solve(gram - part.T @ member_X[i], cross - part.T @ member_y[i])
                s = _arm_diff(X_g, c_g, d) @ (beta_k[1:] / scale[1:])
            else:
                keep = ch * (data.fit & (data.hist_group != g))
                model = _fit_learner(learner, seed, *_rows(data, keep))
                s = _arm_diff(model.predict(X_g), c_g, d)
            out["surrogate"][b, i] = s
            out["actual"][b, i] = _arm_diff(y_g, c_g, d)
    return out


def _solve(gram: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Least squares from the normal equations; the minimum-norm solution when a resample
    leaves a column constant (e.g. a rare category drawn zero times)."""
    try:
        return np.linalg.solve(gram, cross)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, cross, rcond=None)[0]


def _rows(data: SurrogateData, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.repeat(np.arange(len(counts)), counts)
    return data.hist_X[idx], data.hist_y[idx]


# --- Parts of the result ------------------------------------------------------------------


def _contributions(
    data: SurrogateData, coef: np.ndarray, estimate: float, boot
) -> tuple[dict, ...]:
    ones = np.ones(len(data.exp_d), dtype=np.int64)
    dx = _arm_diff(data.exp_X, ones, data.exp_d)
    terms = coef[1:] * dx
    s = data.n_surrogates
    rows = []
    for j in range(s):
        rows.append(
            {
                "term": data.names[j],
                "coefficient": float(coef[1 + j]),
                "coefficient_se": float(np.std(boot["coef"][:, j], ddof=1)),
                "short_term_effect": float(dx[j]),
                "contribution": float(terms[j]),
                "contribution_se": float(np.std(boot["terms"][:, j], ddof=1)),
                "share": float(terms[j] / estimate) if estimate else math.nan,
            }
        )
    imbalance = float(terms[s:].sum())
    rows.append(
        {
            "term": "covariate imbalance",
            "coefficient": math.nan,
            "coefficient_se": math.nan,
            "short_term_effect": math.nan,
            "contribution": imbalance,
            "contribution_se": float(np.std(boot["terms"][:, s:].sum(axis=1), ddof=1)),
            "share": imbalance / estimate if estimate else math.nan,
        }
    )
    return tuple(rows)


def _fit_check(fit: Mapping[str, Any], outcome: str) -> CheckResult:
    r2 = fit["oof_r2"]
    text = (
        f"out-of-fold R² {r2:.3f} ({fit['folds']} folds, {fit['learner']}) predicting {outcome} "
        f"from the surrogates and covariates on {fit['n_rows']:,} untreated historical rows"
    )
    if r2 >= MIN_R2:
        return CheckResult("surrogate_index_fit", "pass", text)
    return CheckResult(
        "surrogate_index_fit",
        "warn",
        f"{text}: the surrogates explain little of the long-term outcome, so most of it "
        "(and any effect on it) runs through something they do not measure",
    )
