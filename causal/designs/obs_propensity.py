"""Propensity scores for the observational design: the logit, separation, overlap, bounds.

The textbook logit is written here rather than taken from scikit-learn or statsmodels because
the estimators need three things those do not give together: the exact maximum-likelihood fit
(no hidden penalty), its score and information for the stacked M-estimation variance of IPW
(:mod:`causal.designs.obs_estimators`), and a clear error naming the covariate when the fit
cannot exist because of separation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import expit

from causal.errors import DesignError

Rule = Literal["clip", "trim"]
_ALIAS_TOL = 1e-9  # |R_jj| / ||column j|| below this: the column is a combination of earlier ones


def column_names(names: Sequence[str] | None, p: int) -> tuple[str, ...]:
    """Names for the ``p`` columns of X: the caller's, or ``x0, x1, …``."""
    if names is None:
        return tuple(f"x{j}" for j in range(p))
    if len(names) != p:
        raise ValueError(f"{len(names)} names for {p} covariate columns")
    return tuple(str(n) for n in names)


def independent_columns(Z: np.ndarray) -> np.ndarray:
    """Indices of the columns of ``Z`` not aliased with earlier columns (left to right).

    An unpivoted QR keeps the order, so a later column is dropped in favour of an earlier
    one (as R's ``lm`` does): the treatment and main effects come before interactions.

    Examples
    --------
    >>> independent_columns(np.array([[1., 1, 2], [1, 2, 4], [1, 3, 6]])).tolist()
    [0, 1]
    """
    if Z.shape[1] == 0:
        return np.arange(0)
    r = np.linalg.qr(Z, mode="r")
    norms = np.linalg.norm(Z, axis=0)
    diag = np.abs(np.diag(r))
    return np.flatnonzero(diag > _ALIAS_TOL * np.where(norms > 0, norms, 1.0))


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def check_separation(d: np.ndarray, X: np.ndarray, names: Sequence[str]) -> None:
    """Raise :class:`DesignError` when one covariate alone separates treated from untreated.

    A covariate separates (completely or quasi-completely) when every treated value is at or
    above every untreated value, or the reverse: the logit coefficient then runs to infinity,
    and whatever the model, the units beyond the other arm's range have no comparison.

    Examples
    --------
    >>> X = np.array([[0.], [0], [1], [0], [2]])
    >>> check_separation(np.array([0, 0, 1, 1, 1]), X, ["visits"])
    Traceback (most recent call last):
    ...
    causal.errors.DesignError: covariate 'visits' separates treated from untreated (all units \
with visits > 0 are treated), so the arms do not overlap on it; drop it or coarsen it
    """
    treated, control = X[d == 1], X[d == 0]
    for j, name in enumerate(names):
        t_lo, t_hi = treated[:, j].min(), treated[:, j].max()
        c_lo, c_hi = control[:, j].min(), control[:, j].max()
        if t_lo == t_hi == c_lo == c_hi:
            continue  # constant: carries no information, dropped by the caller
        if t_lo >= c_hi:
            side = (
                f"all units with {name} > {_fmt(c_hi)} are treated"
                if t_hi > c_hi
                else f"all units with {name} < {_fmt(t_lo)} are untreated"
            )
        elif c_lo >= t_hi:
            side = (
                f"all units with {name} > {_fmt(t_hi)} are untreated"
                if c_hi > t_hi
                else f"all units with {name} < {_fmt(c_lo)} are treated"
            )
        else:
            continue
        raise DesignError(
            f"covariate {name!r} separates treated from untreated ({side}), so the arms do not "
            "overlap on it; drop it or coarsen it"
        )


def _separating_direction(Z: np.ndarray, d: np.ndarray) -> np.ndarray | None:
    """A direction b with (2d − 1)·Z b ≥ 0 for all units and > 0 for some, if one exists.

    Linear programme of Konis (2007): maximise Σ s_i z_i'b subject to s_i z_i'b ≥ 0 and
    |b_j| ≤ 1. The data overlap (the logit MLE exists) exactly when the optimum is 0.
    """
    from scipy.optimize import linprog

    sz = (2.0 * d - 1.0)[:, None] * Z
    res = linprog(
        -sz.sum(axis=0),
        A_ub=-sz,
        b_ub=np.zeros(len(d)),
        bounds=[(-1.0, 1.0)] * Z.shape[1],
        method="highs",
    )
    if res.status != 0 or -res.fun <= 1e-6 * len(d):
        return None
    return np.asarray(res.x)


def _loglik(eta: np.ndarray, d: np.ndarray) -> float:
    """Bernoulli log-likelihood of a logit with linear index ``eta`` (overflow-safe)."""
    return float(np.sum(d * eta - np.logaddexp(0.0, eta)))


def _minimal_separating_set(Z: np.ndarray, d: np.ndarray, direction: np.ndarray) -> list[int]:
    """Covariates (columns of Z after the intercept) a separating direction cannot do without.

    Greedy: fix each used coefficient at zero in turn and keep it at zero if the data are
    still separated. One small linear programme per covariate, run only on failure.
    """
    used = [j for j in range(1, Z.shape[1]) if abs(direction[j]) > 1e-9]
    needed = list(used)
    for j in used:
        trial = [k for k in needed if k != j]
        if _separating_direction(Z[:, [0, *trial]], d) is not None:
            needed = trial
    return [j - 1 for j in needed]


class Logit:
    """Maximum-likelihood logit of ``d`` on X with an intercept, by Newton–Raphson.

    Columns are centred and scaled before fitting (the fitted probabilities do not change,
    the information matrix is far better conditioned); columns constant or collinear in the
    fitting sample are dropped. Raises :class:`DesignError` on separation, naming the
    covariates.

    Examples
    --------
    >>> X = np.array([[0.], [1], [2], [3], [4], [5]])
    >>> Logit().fit(X, np.array([0, 0, 1, 0, 1, 1])).predict_proba(X)[:, 1].round(3)
    array([0.046, 0.139, 0.353, 0.647, 0.861, 0.954])
    """

    def __init__(self, *, names: Sequence[str] | None = None, max_iter: int = 60):
        self.names = names
        self.max_iter = max_iter

    # The two methods scikit-learn's ``clone`` needs (peers such as econml clone learners).
    def get_params(self, deep: bool = True) -> dict[str, object]:
        return {"names": self.names, "max_iter": self.max_iter}

    def set_params(self, **params: object) -> Logit:
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def design(self, X: np.ndarray) -> np.ndarray:
        """The fitted design [1, standardised kept columns] for new rows of X."""
        Xs = (X[:, self.kept_] - self.center_) / self.scale_
        return np.column_stack([np.ones(len(X)), Xs])

    def fit(self, X: np.ndarray, d: np.ndarray) -> Logit:
        X = np.asarray(X, dtype=float)
        d = np.asarray(d, dtype=float)
        names = column_names(self.names, X.shape[1])
        sd = X.std(axis=0)
        varying = np.flatnonzero(sd > 0)
        check_separation(d, X[:, varying], [names[j] for j in varying])
        self.center_, self.scale_ = X[:, varying].mean(axis=0), sd[varying]
        self.kept_ = varying
        Z = self.design(X)
        keep = independent_columns(Z)
        self.kept_ = varying[keep[1:] - 1]  # column 0 is the intercept, always kept
        self.center_, self.scale_ = self.center_[keep[1:] - 1], self.scale_[keep[1:] - 1]
        self.names_ = tuple(names[j] for j in self.kept_)
        Z = Z[:, keep]
        self.coef_ = self._newton(Z, d)
        self.classes_ = np.array([0, 1])
        return self

    def _newton(self, Z: np.ndarray, d: np.ndarray) -> np.ndarray:
        # Start like R's glm (mustart = (d + 0.5) / 2, one weighted least-squares step);
        # plain Newton from a constant start overshoots to infinity on LaLonde's CPS sample.
        mu = (d + 0.5) / 2
        eta = np.log(mu / (1 - mu))
        w = mu * (1 - mu)
        beta = np.linalg.lstsq(Z * np.sqrt(w)[:, None], np.sqrt(w) * eta, rcond=None)[0]
        loglik = _loglik(Z @ beta, d)
        for _ in range(self.max_iter):
            mu = expit(Z @ beta)
            w = mu * (1 - mu)
            info = (Z * w[:, None]).T @ Z
            try:
                step = np.linalg.solve(info, Z.T @ (d - mu))
            except np.linalg.LinAlgError:
                break
            # Step halving (as glm.fit does) keeps every step an ascent step.
            for _ in range(30):
                new_loglik = _loglik(Z @ (beta + step), d)
                if new_loglik >= loglik - 1e-12 * abs(loglik):
                    break
                step = step / 2
            beta, loglik = beta + step, new_loglik
            if np.max(np.abs(step)) <= 1e-10 * (1 + np.max(np.abs(beta))):
                return beta  # Newton converges quadratically: the next step would be ~1e-20
        self._raise_separation(Z, d)
        raise DesignError(
            f"the propensity logit did not converge in {self.max_iter} Newton steps; "
            "check the covariates for near-collinearity or extreme values"
        )

    def _raise_separation(self, Z: np.ndarray, d: np.ndarray) -> None:
        direction = _separating_direction(Z, d)
        if direction is None:
            return
        involved = [self.names_[j] for j in _minimal_separating_set(Z, d, direction)]
        if len(involved) == 1:
            raise DesignError(
                f"covariate {involved[0]!r} separates treated from untreated (it predicts "
                "treatment perfectly for some units), so the arms do not overlap on it; drop it "
                "or coarsen it"
            )
        listed = ", ".join(repr(n) for n in involved)
        raise DesignError(
            f"covariates {listed} together separate treated from untreated (a linear "
            "combination of them predicts treatment perfectly), so the arms do not overlap; "
            "drop or coarsen them"
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = expit(self.design(np.asarray(X, dtype=float)) @ self.coef_)
        return np.column_stack([1 - p, p])


@dataclass(frozen=True)
class Bounded:
    """Propensities after the bounds rule: used scores, kept units and counts."""

    scores: np.ndarray  # the propensities used for weighting (clipped under "clip")
    keep: np.ndarray  # bool per unit; False only under "trim"
    moved: np.ndarray  # bool per unit: clipped (or trimmed) by the rule
    n_clipped_low: int
    n_clipped_high: int
    sides: str  # which bounds apply for this estimand: "both", "upper" or "lower"

    def summary(self, bounds: tuple[float, float], rule: Rule) -> dict[str, object]:
        return {
            "bounds": list(bounds),
            "rule": rule,
            "bounds_apply_to": self.sides,
            "n_below_lower": self.n_clipped_low,
            "n_above_upper": self.n_clipped_high,
            "n_trimmed": int((~self.keep).sum()),
        }


def ess(w: np.ndarray) -> float:
    """Kish's effective sample size (Σw)² / Σw² of non-negative weights.

    Examples
    --------
    >>> ess(np.array([1.0, 1.0, 2.0]))
    2.6666666666666665
    """
    total = float(np.sum(w**2))
    return float(np.sum(w)) ** 2 / total if total > 0 else 0.0


SIDES = {"ATE": "both", "ATT": "upper", "ATC": "lower"}


def apply_bounds(
    e: np.ndarray, *, estimand: str, bounds: tuple[float, float], rule: Rule
) -> Bounded:
    """Apply the rule for extreme propensities, on the side(s) where weights explode.

    The weights are 1/e and 1/(1 − e) for the ATE, e/(1 − e) for the controls under the ATT
    and (1 − e)/e for the treated under the ATC. So the lower bound only matters for the ATE
    and ATC, the upper one only for the ATE and ATT: raising a tiny control propensity to the
    lower bound under the ATT would give a unit that resembles no treated unit a real weight
    (on LaLonde's CPS controls, clipping at 0.01 on both sides moves the IPW ATT from $1,763
    to −$2,904). ``clip`` moves scores to the bounds; ``trim`` drops the units outside them
    (the estimand then refers to the units kept).

    Examples
    --------
    >>> b = apply_bounds(np.array([0.001, 0.5, 0.999]), estimand="ATT", bounds=(0.01, 0.99),
    ...                  rule="clip")
    >>> b.scores.tolist(), b.n_clipped_high
    ([0.001, 0.5, 0.99], 1)
    """
    lo, hi = bounds
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"bounds must satisfy 0 <= lower < upper <= 1, got {bounds}")
    sides = SIDES[estimand]
    low = (e < lo) if sides in ("both", "lower") else np.zeros(len(e), dtype=bool)
    high = (e > hi) if sides in ("both", "upper") else np.zeros(len(e), dtype=bool)
    moved = low | high
    if rule == "clip":
        scores = np.where(low, lo, np.where(high, hi, e))
        keep = np.ones(len(e), dtype=bool)
    elif rule == "trim":
        scores, keep = e, ~moved
    else:
        raise ValueError(f"rule must be 'clip' or 'trim', got {rule!r}")
    return Bounded(scores, keep, moved, int(low.sum()), int(high.sum()), sides)


def check_overlap(e: np.ndarray, d: np.ndarray) -> None:
    """Raise :class:`DesignError` when the fitted propensities show no overlap at all.

    Examples
    --------
    >>> check_overlap(np.array([0.1, 0.2, 0.7, 0.9]), np.array([0, 0, 1, 1]))
    Traceback (most recent call last):
    ...
    causal.errors.DesignError: no overlap: every treated unit's propensity (>= 0.7) is above \
every untreated unit's (<= 0.2); the arms have no comparable units
    """
    certain = int(np.sum((e <= 0) | (e >= 1)))
    if certain:
        raise DesignError(
            f"no overlap: the fitted propensity is exactly 0 or 1 for {certain} units; "
            "the covariates predict treatment perfectly for them"
        )
    t_lo, t_hi = e[d == 1].min(), e[d == 1].max()
    c_lo, c_hi = e[d == 0].min(), e[d == 0].max()
    if t_lo > c_hi:
        raise DesignError(
            f"no overlap: every treated unit's propensity (>= {t_lo:.3g}) is above every "
            f"untreated unit's (<= {c_hi:.3g}); the arms have no comparable units"
        )
    if c_lo > t_hi:
        raise DesignError(
            f"no overlap: every untreated unit's propensity (>= {c_lo:.3g}) is above every "
            f"treated unit's (<= {t_hi:.3g}); the arms have no comparable units"
        )


def fit_predict(
    d: np.ndarray,
    X: np.ndarray,
    *,
    names: Sequence[str],
    learner: str,
    folds: int | None,
    seed: int,
) -> tuple[np.ndarray, object | None]:
    """Propensities in-sample (``folds=None``; returns the fitted model too) or cross-fitted."""
    from causal.designs.learners import propensity_learner

    def fitted(rows: np.ndarray) -> object:
        model = propensity_learner(learner, seed=seed)
        if isinstance(model, Logit):
            model.names = names
        return model.fit(X[rows], d[rows])  # type: ignore[attr-defined]

    with single_threaded():
        if folds is None:
            model = fitted(np.arange(len(d)))
            return model.predict_proba(X)[:, 1], model  # type: ignore[attr-defined]
        e = np.empty(len(d))
        for k, (train, test) in enumerate(stratified_folds(d, folds=folds, seed=seed), 1):
            try:
                model = fitted(train)
            except DesignError as exc:
                raise DesignError(
                    f"cross-fitting fold {k} of {folds} ({len(train)} units): {exc}; a penalised "
                    "propensity learner (logistic_cv) or fewer folds avoids this"
                ) from None
            e[test] = model.predict_proba(X[test])[:, 1]  # type: ignore[attr-defined]
    return e, None


def single_threaded() -> Any:
    """Context limiting BLAS / OpenMP to one thread for the many small nuisance fits.

    Thread start-up and oversubscription cost more than they save on fits of this size:
    ``LogisticRegressionCV`` on IHDP (747 × 25) took 2.3 s threaded and 0.26 s on one
    thread on a loaded two-core machine; the histogram booster on LaLonde's CPS controls
    63 s against 1.6 s.
    """
    # threadpoolctl limits only the libraries already loaded: load scikit-learn's OpenMP
    # runtime (and its own BLAS) first, or a learner imported inside the block runs threaded.
    import sklearn.utils._openmp_helpers  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def stratified_folds(
    d: np.ndarray, *, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified K-fold splits (train, test) over units, as index arrays."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    smallest = int(min(d.sum(), len(d) - d.sum()))
    if smallest < folds:
        raise DesignError(
            f"cross-fitting with {folds} folds needs at least {folds} units in each arm; "
            f"the smaller arm has {smallest}"
        )
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(d), 1)), d))


def check_treatment(d: np.ndarray) -> np.ndarray:
    """``d`` as 0/1 integers; :class:`DesignError` unless both arms have units.

    Examples
    --------
    >>> check_treatment(np.array([1, 1, 1]))
    Traceback (most recent call last):
    ...
    causal.errors.DesignError: the treatment is constant (all 3 units treated); an effect \
needs treated and untreated units
    """
    d = np.asarray(d)
    if d.ndim != 1 or not np.all((d == 0) | (d == 1)):
        raise DesignError("the treatment must be a 0/1 indicator per unit")
    n1 = int(d.sum())
    if n1 in (0, len(d)):
        state = "treated" if n1 else "untreated"
        raise DesignError(
            f"the treatment is constant (all {len(d)} units {state}); an effect needs treated "
            "and untreated units"
        )
    return d.astype(np.int64)


def varying_columns(
    X: np.ndarray, names: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    """X without its constant columns, their names, and the names of the columns dropped."""
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    all_names = column_names(names, X.shape[1])
    if not np.all(np.isfinite(X)):
        bad = [n for n, ok in zip(all_names, np.isfinite(X).all(axis=0), strict=True) if not ok]
        raise DesignError(f"covariates {bad} have missing or infinite values; impute or drop")
    varying = np.ptp(X, axis=0) > 0 if X.shape[0] else np.zeros(X.shape[1], dtype=bool)
    dropped = [n for n, v in zip(all_names, varying, strict=True) if not v]
    kept = tuple(n for n, v in zip(all_names, varying, strict=True) if v)
    return X[:, varying], kept, dropped


def propensity_scores(
    d: np.ndarray,
    X: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    learner: str = "logistic",
    folds: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Fitted propensity scores P(D = 1 | X), in-sample or cross-fitted.

    Parameters
    ----------
    d : array of 0/1
        Treatment per unit.
    X : (n, p) array
        The adjustment set (constant columns are ignored).
    names : sequence of str, optional
        Column names of X, for error messages.
    learner : str
        A name from :data:`causal.designs.learners.PROPENSITY_LEARNERS`.
    folds : int, optional
        Cross-fit: each unit's score comes from a model fitted on the other folds (stratified
        K-fold, seeded). ``None`` fits once on all units.
    seed : int
        Seed of the folds and of the learner.

    Raises
    ------
    DesignError
        Constant treatment; a covariate that separates the arms; no overlap at all.

    Examples
    --------
    >>> X = np.array([[0.], [1], [2], [3], [4], [5]])
    >>> propensity_scores(np.array([0, 0, 1, 0, 1, 1]), X).round(3)
    array([0.046, 0.139, 0.353, 0.647, 0.861, 0.954])
    """
    d = check_treatment(d)
    X, kept, _ = varying_columns(X, names)
    check_separation(d, X, kept)
    e, _ = fit_predict(d, X, names=kept, learner=learner, folds=folds, seed=seed)
    check_overlap(e, d)
    return e
