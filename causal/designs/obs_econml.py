"""Adapter over econml: double machine learning for a binary treatment.

The only module that imports econml, lazily (the import takes ~5 s), and econml objects never
leave it: callers get an :class:`~causal.designs.obs_types.EffectEstimate` with JSON-safe
``details``, and optionally the per-unit CATEs as a numpy array. econml imports dowhy itself,
so the import goes through :func:`causal.designs.obs_dowhy.import_dowhy`, which undoes the
display hooks dowhy's import installs.

Roles of the columns. econml separates ``X`` (features the effect may vary with) from ``W``
(controls used only by the nuisance models); both enter every nuisance model. So the effect
modifiers go in ``X`` and the confounders that are not also modifiers in ``W``. Without
modifiers ``X`` is ``None``: LinearDML and the DR learner then fit a constant effect.

How each method turns into an average effect (ATE, ATT or ATC):

- ``linear_dml`` (``LinearDML``): the mean of its CATE, linear in the modifiers, over the
  target units; the interval combines econml's ``population_summary`` standard error of that
  mean (which treats the units' modifiers as fixed) with the spread of the CATEs over the
  units (``var / n``), so it targets the population average. It assumes the effect is linear
  in the modifiers — constant without them, and then ATE = ATT = ATC; if the effect varies
  with unmodelled confounders, its constant is a variance-weighted average, not the ATE.
- ``dr_learner`` (``LinearDRLearner``): the doubly robust (AIPW) scores built from econml's
  own cross-fitted pseudo-outcomes ``Y0*`` and ``Y1*``. ATE = mean(Y1* - Y0*); ATT =
  sum(Y - Y0*) / n_treated, which is algebraically the orthogonal ATT score of Chernozhukov et
  al. (2018) (treated: Y - mu0; controls: -e/(1-e) (Y - mu0)); ATC = sum(Y1* - Y) / n_control.
  Standard errors from the scores' influence functions. Valid whatever the modifiers, and
  equal to econml's ``ate_inference`` for the ATE without modifiers (a test checks this).
- ``causal_forest`` (``CausalForestDML``): econml's doubly robust averages of its
  out-of-bag CATEs (``ate__inference``; ``att__inference(T=1)`` for the ATT and ``T=0`` for the
  ATC). Caveat: econml's ATT averages the *ATE* scores over the treated, which is unbiased
  only when the forest's CATE is; it is not doubly robust for the ATT.

Learners come from :mod:`causal.designs.learners`, wrapped so that econml fits each one
inside every cross-fitting fold as given (with its own internal tuning). Unwrapped, econml
swaps a ``LogisticRegressionCV``/``LassoCV`` for a plain model tuned once on the whole
sample — and that conversion fails with scikit-learn 1.9's ``LogisticRegressionCV``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np

from causal.designs.obs_types import EffectEstimate
from causal.errors import DataError, DesignError, SpecError

METHODS = ("linear_dml", "dr_learner", "causal_forest")
ESTIMANDS = ("ATE", "ATT", "ATC")
LEVELS_MAX = 8  # a modifier with at most this many distinct values is binned by level
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def fit_double_ml(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    *,
    method: str,
    estimand: str,
    effect_modifiers: np.ndarray | None = None,
    modifier_names: Sequence[str] = (),
    modifier_groups: Mapping[str, np.ndarray] | None = None,
    outcome_learner: str,
    propensity_learner: str,
    folds: int = 5,
    seed: int,
    alpha: float = 0.05,
    min_propensity: float = 0.01,
) -> EffectEstimate:
    """Average effect of ``d`` on ``y`` by econml's double ML, adjusting for ``X``.

    Parameters
    ----------
    y, d : arrays of shape (n,)
        Outcome and 0/1 treatment.
    X : array of shape (n, p)
        The adjustment set (confounders), numeric.
    method : {"linear_dml", "dr_learner", "causal_forest"}
    estimand : {"ATE", "ATT", "ATC"}
    effect_modifiers : array of shape (n, q), optional
        Columns the effect may vary with (econml's ``X``); ``causal_forest`` needs them.
    modifier_names : names of the modifier columns, for the CATE summary.
    modifier_groups : optional original modifier columns by name (e.g. a text column that
        became several indicators); the CATE summary bins by these instead of by the columns.
    outcome_learner, propensity_learner : learner names (:mod:`causal.designs.learners`).
    folds : cross-fitting folds; seed : seeds folds and learners; alpha : 1 - interval level.
    min_propensity : the DR learner clips propensities to [min, 1 - min] (the design's
        default bounds) so a few near-certain units cannot dominate the scores.

    Returns
    -------
    EffectEstimate
        ``details`` holds the econml class, learners, folds, how the average was formed and,
        with modifiers, a ``cate`` summary (quantiles and mean CATE by modifier bins).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 1)); d = (rng.random(400) < 0.5).astype(int)
    >>> y = 2 * d + x[:, 0] + rng.normal(size=400)
    >>> est = fit_double_ml(y, d, x, method="dr_learner", estimand="ATE",
    ...                     outcome_learner="linear", propensity_learner="logistic", seed=1)
    >>> abs(est.estimate - 2) < 3 * est.std_error, est.details["econml_class"]
    (True, 'LinearDRLearner')
    """
    estimate, _ = fit_double_ml_cate(
        y,
        d,
        X,
        method=method,
        estimand=estimand,
        effect_modifiers=effect_modifiers,
        modifier_names=modifier_names,
        modifier_groups=modifier_groups,
        outcome_learner=outcome_learner,
        propensity_learner=propensity_learner,
        folds=folds,
        seed=seed,
        alpha=alpha,
        min_propensity=min_propensity,
    )
    return estimate


def fit_double_ml_cate(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    *,
    method: str,
    estimand: str,
    effect_modifiers: np.ndarray | None = None,
    modifier_names: Sequence[str] = (),
    modifier_groups: Mapping[str, np.ndarray] | None = None,
    outcome_learner: str,
    propensity_learner: str,
    folds: int = 5,
    seed: int,
    alpha: float = 0.05,
    min_propensity: float = 0.01,
) -> tuple[EffectEstimate, np.ndarray | None]:
    """:func:`fit_double_ml`, also returning the per-unit CATEs (``None`` without modifiers).

    The CATEs are kept out of ``details`` (one number per unit is too big for a report).
    """
    y, d, X, M, names = _check(
        y, d, X, method, estimand, effect_modifiers, modifier_names, folds, alpha
    )
    W = _controls(X, M)
    from causal.designs.learners import outcome_learner as make_outcome
    from causal.designs.learners import propensity_learner as make_propensity

    model_y = fixed_regressor(make_outcome(outcome_learner, seed=seed))
    model_t = fixed_classifier(make_propensity(propensity_learner, seed=seed))
    with econml_quiet(), econml_threads():
        if method == "linear_dml":
            fit = _linear_dml(y, d, M, W, model_y, model_t, folds, seed, estimand)
        elif method == "dr_learner":
            fit = _dr_learner(y, d, M, W, model_y, model_t, folds, seed, estimand, min_propensity)
        else:
            fit = _causal_forest(y, d, M, W, model_y, model_t, folds, seed, estimand)
        fitted, point, se, how = fit
        cate = fitted.effect(M).reshape(-1) if M is not None else None
        groups = (
            modifier_groups or {n: M[:, j] for j, n in enumerate(names)} if M is not None else {}
        )
        summary = _cate_summary(fitted, M, groups, cate, alpha) if M is not None else None
    details: dict[str, Any] = {
        "econml_class": type(fitted).__name__,
        "outcome_learner": outcome_learner,
        "propensity_learner": propensity_learner,
        "folds": int(folds),
        "seed": int(seed),
        "effect_modifiers": list(names),
        "controls_in_W": int(0 if W is None or X.shape[1] == 0 else W.shape[1]),
        "average": how,
    }
    if summary is not None:
        details["cate"] = summary
    estimate = EffectEstimate(
        estimator=method,
        estimand=estimand,  # type: ignore[arg-type]
        estimate=float(point),
        std_error=float(se),
        n_units=len(y),
        n_treated=int(d.sum()),
        details=details,
    )
    return estimate, cate


# --- input checks --------------------------------------------------------------------------------


def _check(y, d, X, method, estimand, M, names, folds, alpha):
    if method not in METHODS:
        raise SpecError(f"unknown double ML method {method!r}; known: {', '.join(METHODS)}")
    if estimand not in ESTIMANDS:
        raise SpecError(f"unknown estimand {estimand!r}; known: {', '.join(ESTIMANDS)}")
    if not 0 < alpha < 1:
        raise SpecError(f"alpha must be in (0, 1), got {alpha}")
    y = np.asarray(y, dtype=float).reshape(-1)
    d = np.asarray(d).reshape(-1)
    X = np.asarray(X, dtype=float).reshape(len(y), -1) if X is not None else np.empty((len(y), 0))
    if len(d) != len(y) or len(X) != len(y):
        raise DataError(f"y, d and X must have the same rows ({len(y)}, {len(d)}, {len(X)})")
    if not set(np.unique(d)) <= {0, 1}:
        raise DataError("the treatment must be coded 0/1")
    d = d.astype(int)
    n1, n0 = int(d.sum()), int(len(d) - d.sum())
    if min(n1, n0) < folds:
        raise DesignError(
            f"{method} needs at least {folds} treated and {folds} control units for {folds}-fold "
            f"cross-fitting; the data have {n1} treated and {n0} controls"
        )
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise DataError("y and X must be finite (no missing values)")
    if M is not None:
        M = np.asarray(M, dtype=float).reshape(len(y), -1)
        names = list(names) or [f"modifier_{j}" for j in range(M.shape[1])]
        if len(names) != M.shape[1]:
            raise DataError(f"{M.shape[1]} effect-modifier columns but {len(names)} names")
        if M.shape[1] == 0:
            M, names = None, []
    else:
        names = []
    if method == "causal_forest" and M is None:
        raise DesignError(
            "causal_forest estimates how the effect varies and needs effect_modifiers "
            "(design.effect_modifiers); without them use dr_learner or linear_dml"
        )
    return y, d, X, M, names


def _controls(X: np.ndarray, M: np.ndarray | None) -> np.ndarray | None:
    """Confounders that are not already modifiers (econml feeds X and W to every nuisance)."""
    keep = [
        j
        for j in range(X.shape[1])
        if M is None or not any(np.array_equal(X[:, j], M[:, k]) for k in range(M.shape[1]))
    ]
    if keep:
        return X[:, keep]
    # econml's DR learner needs some nuisance input; a constant column adds nothing.
    return None if M is not None else np.ones((len(X), 1))


# --- the three methods ---------------------------------------------------------------------------


def _linear_dml(y, d, M, W, model_y, model_t, folds, seed, estimand):
    from econml.dml import LinearDML

    est = LinearDML(
        model_y=model_y, model_t=model_t, discrete_treatment=True, cv=folds, random_state=seed
    )
    est.fit(y, d, X=M, W=W)
    if M is None:
        summary = est.effect_inference(None).population_summary()
        how = "constant effect of LinearDML (no effect modifiers): ATE = ATT = ATC"
        return est, _first(summary.mean_point), _first(summary.stderr_mean), how
    rows = _target_rows(d, estimand)
    summary = est.effect_inference(M[rows]).population_summary()
    cate = est.effect(M[rows]).reshape(-1)
    model_se = _first(summary.stderr_mean)
    # The mean over the target units estimates a population mean: add the units' spread.
    se = float(np.sqrt(model_se**2 + cate.var(ddof=1) / len(cate)))
    how = (
        f"mean of LinearDML's CATE (linear in the effect modifiers) over the {_units(estimand)}; "
        "SE = sqrt(econml population_summary SE^2 + var(CATE) / n)"
    )
    return est, float(cate.mean()), se, how


def _dr_learner(y, d, M, W, model_y, model_t, folds, seed, estimand, min_propensity):
    from econml.dr import LinearDRLearner

    est = LinearDRLearner(
        model_propensity=model_t,
        model_regression=model_y,
        cv=folds,
        random_state=seed,
        min_propensity=min_propensity,
    )
    est.fit(y, d, X=M, W=W, cache_values=True)
    cached = getattr(est, "_cached_values", None)
    if cached is None:  # pragma: no cover - guards against an econml API change
        raise DesignError("econml did not keep the DR learner's cross-fitted values")
    pseudo = np.asarray(cached.nuisances[0]).reshape(len(y), -1)  # columns: Y0*, Y1*
    point, se = dr_average(y, d, pseudo[:, 0], pseudo[:, 1], estimand=estimand)
    how = (
        f"doubly robust (AIPW) {estimand} from econml's cross-fitted pseudo-outcomes, "
        f"propensities clipped to [{min_propensity}, {1 - min_propensity}]"
    )
    return est, point, se, how


def dr_average(
    y: np.ndarray, d: np.ndarray, y0: np.ndarray, y1: np.ndarray, *, estimand: str
) -> tuple[float, float]:
    """Point and standard error of the ATE, ATT or ATC from DR pseudo-outcomes.

    ``y0``/``y1`` are econml's ``mu_k + 1[d=k](y - mu_k)/P(d=k)``. For the ATT,
    ``y - y0`` equals ``y - mu0`` for the treated and ``-e/(1-e) (y - mu0)`` for controls, so
    ``sum(y - y0) / n_treated`` is the orthogonal ATT estimator.

    Examples
    --------
    >>> y = np.array([3.0, 1.0]); d = np.array([1, 0])
    >>> dr_average(y, d, y0=np.array([1.0, 1.0]), y1=np.array([3.0, 3.0]), estimand="ATT")[0]
    2.0
    """
    n = len(y)
    if estimand == "ATE":
        score = y1 - y0
        return float(score.mean()), float(score.std(ddof=1) / np.sqrt(n))
    treated = d if estimand == "ATT" else 1 - d
    share = treated.mean()
    contrast = y - y0 if estimand == "ATT" else y1 - y
    point = contrast.sum() / treated.sum()
    influence = (contrast - treated * point) / share
    return float(point), float(influence.std(ddof=1) / np.sqrt(n))


def _causal_forest(y, d, M, W, model_y, model_t, folds, seed, estimand):
    from econml.dml import CausalForestDML

    # One job: joblib's parallel trees are summed in completion order, so n_jobs=-1 gave
    # estimates that differed in the last digits between runs of the same spec.
    est = CausalForestDML(
        model_y=model_y,
        model_t=model_t,
        discrete_treatment=True,
        cv=folds,
        random_state=seed,
        n_jobs=1,
    )
    est.fit(y, d, X=M, W=W)
    if estimand == "ATE":
        inference = est.ate__inference()
    else:
        inference = est.att__inference(T=1 if estimand == "ATT" else 0)
    point, se = _first(inference.point_estimate), _first(inference.stderr)
    how = (
        f"econml's doubly robust average of out-of-bag forest CATEs over the {_units(estimand)}"
        + ("" if estimand == "ATE" else " (ATE scores averaged over that group)")
    )
    return est, point, se, how


def _first(value: Any) -> float:
    return float(np.ravel(value)[0])


def _target_rows(d: np.ndarray, estimand: str) -> np.ndarray:
    if estimand == "ATE":
        return np.ones(len(d), dtype=bool)
    return d == 1 if estimand == "ATT" else d == 0


def _units(estimand: str) -> str:
    return {"ATE": "all units", "ATT": "treated units", "ATC": "control units"}[estimand]


# --- CATE summary --------------------------------------------------------------------------------


def _cate_summary(fitted, M, groups, cate, alpha) -> dict[str, Any]:
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha / 2))
    bins = []
    for name, values in groups.items():
        for label, rows in _bins(np.asarray(values)):
            summary = fitted.effect_inference(M[rows]).population_summary(alpha=alpha)
            mean, se = _first(summary.mean_point), _first(summary.stderr_mean)
            bins.append(
                {
                    "modifier": name,
                    "bin": label,
                    "n": int(rows.sum()),
                    "mean_cate": mean,
                    "std_error": se,
                    "conf_low": mean - z * se,
                    "conf_high": mean + z * se,
                }
            )
    return {
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(cate, q)) for q in _QUANTILES},
        "mean": float(cate.mean()),
        "sd": float(cate.std(ddof=1)) if len(cate) > 1 else 0.0,
        "bins": bins,
        "bin_rule": (
            f"levels for modifiers with at most {LEVELS_MAX} distinct values, quartiles "
            "otherwise; interval from econml's population_summary (conditional on the units' "
            "modifiers; conservative for the forest)"
        ),
    }


def _bins(values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if values.dtype.kind not in "biuf":  # text levels
        text = values.astype(str)
        return [(v, text == v) for v in np.unique(text)]
    levels = np.unique(values)
    if len(levels) <= LEVELS_MAX:
        return [(_num(v), values == v) for v in levels]
    edges = np.unique(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]))
    out = []
    for i, (lo, hi) in enumerate(pairwise(edges)):
        last = i == len(edges) - 2
        rows = (values >= lo) & ((values <= hi) if last else (values < hi))
        out.append((f"[{_num(lo)}, {_num(hi)}{']' if last else ')'}", rows))
    return [(label, rows) for label, rows in out if rows.any()]


def _num(v: float) -> str:
    return f"{float(v):.4g}"


# --- learners ------------------------------------------------------------------------------------


def fixed_regressor(model: Any) -> Any:
    return _wrappers()[0](model)


def fixed_classifier(model: Any) -> Any:
    return _wrappers()[1](model)


@cache
def _wrappers() -> tuple[type, type]:
    """Learner wrappers econml fits as given (built once; scikit-learn is imported lazily)."""
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

    class FixedRegressor(RegressorMixin, BaseEstimator):
        """Fit the wrapped learner as is (econml would otherwise re-tune ``*CV`` models)."""

        def __init__(self, estimator: Any = None) -> None:
            self.estimator = estimator

        def fit(self, X, y):
            self.estimator_ = clone(self.estimator, safe=False).fit(X, y)
            return self

        def predict(self, X):
            return self.estimator_.predict(X)

    class FixedClassifier(ClassifierMixin, BaseEstimator):
        """Fit the wrapped classifier as is; probabilities come from its ``predict_proba``."""

        def __init__(self, estimator: Any = None) -> None:
            self.estimator = estimator

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            self.estimator_ = clone(self.estimator, safe=False).fit(X, y)
            return self

        def predict_proba(self, X):
            return self.estimator_.predict_proba(X)

        def predict(self, X):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    return FixedRegressor, FixedClassifier


def econml_threads() -> AbstractContextManager:
    """One OpenMP/BLAS thread while econml cross-fits.

    The folds are fitted one after another on small samples, where threads buy little; and on a
    shared machine OpenMP's spinning threads stall when another process holds a core: one
    IHDP draw (747 rows, histogram gradient boosting) took 325 s instead of 3 s.
    """
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(limits=1)


class econml_quiet(warnings.catch_warnings):
    """Import econml cleanly and hide its and scikit-learn's advisory warnings while fitting."""

    def __enter__(self):
        from causal.designs.obs_dowhy import import_dowhy

        import_dowhy()  # econml imports dowhy, whose import changes sys.displayhook
        out = super().__enter__()
        for module in ("econml", "sklearn", "statsmodels"):
            warnings.filterwarnings("ignore", module=module)
        return out
