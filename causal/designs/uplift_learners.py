"""Uplift learners through econml: S-, T-, X-learner, DR-learner and causal forest.

The only module that builds econml's conditional-effect estimators for the uplift design, and
econml objects never leave it: callers get a :class:`FittedUplift` whose ``predict`` returns
the predicted uplift (CATE) as a numpy array.

Choices worth knowing:

- Every learner's outcome models come from the same small registry as the observational
  design (:mod:`causal.designs.learners`), wrapped so econml fits them as given.
- In a randomised pilot the propensity is known: the spec's planned treated share. It is
  passed as a constant classifier, not estimated, so the X-learner's weighting, the DR
  pseudo-outcomes and the forest's residuals use the design's own probability. Without a
  planned share the propensity is estimated by the spec's propensity learner.
- The DR-learner's final model is the base learner too (econml's default is linear, which
  cannot follow segment-shaped heterogeneity), and its propensities are clipped to
  [0.01, 0.99].
- The causal forest runs on one job: joblib's parallel trees are summed in completion order,
  and the same spec must give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from causal.designs.registry import UPLIFT_LEARNERS
from causal.errors import SpecError

MIN_PROPENSITY = 0.01


@dataclass(frozen=True)
class FittedUplift:
    """A fitted uplift learner; ``predict(X)`` gives the predicted uplift per row."""

    name: str
    econml_class: str
    model: Any

    def predict(self, X: np.ndarray) -> np.ndarray:
        from causal.designs.obs_econml import econml_quiet, econml_threads

        with econml_quiet(), econml_threads():
            return np.asarray(self.model.effect(X), dtype=float).reshape(-1)


def fit_uplift(
    name: str,
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    *,
    base_learner: str,
    treated_share: float | None,
    propensity_learner: str = "logistic",
    folds: int = 3,
    seed: int,
) -> FittedUplift:
    """Fit the uplift learner ``name`` on outcome ``y``, 0/1 treatment ``d`` and features ``X``.

    Parameters
    ----------
    name : str
        One of ``s_learner``, ``t_learner``, ``x_learner``, ``dr_learner``, ``causal_forest``.
    y, d : arrays of shape (n,)
        Outcome and 0/1 treatment.
    X : array of shape (n, p)
        Numeric features.
    base_learner : str
        Outcome learner name (:data:`causal.designs.learners.OUTCOME_LEARNERS`).
    treated_share : float or None
        Known probability of treatment (randomised pilot), or None to estimate it.
    propensity_learner : str
        Used only when ``treated_share`` is None.
    folds : int
        Cross-fitting folds of the DR-learner and the causal forest.
    seed : int
        Seeds every learner and fold split.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2_000, 2)); d = (rng.random(2_000) < 0.5).astype(int)
    >>> y = X[:, 0] + d * (X[:, 1] > 0) + rng.normal(scale=0.1, size=2_000)
    >>> fit = fit_uplift("t_learner", y, d, X, base_learner="linear", treated_share=0.5, seed=0)
    >>> tau = fit.predict(np.array([[0.0, 1.0], [0.0, -1.0]]))
    >>> bool(tau[0] > tau[1])
    True
    """
    from causal.designs.learners import outcome_learner
    from causal.designs.obs_econml import econml_quiet, econml_threads, fixed_regressor

    if name not in UPLIFT_LEARNERS:
        raise SpecError(f"unknown uplift learner {name!r}; known: {', '.join(UPLIFT_LEARNERS)}")

    def outcome() -> Any:
        return fixed_regressor(outcome_learner(base_learner, seed=seed))

    propensity = _propensity_model(treated_share, propensity_learner, seed)
    with econml_quiet(), econml_threads():
        model = _BUILDERS[name](outcome, propensity, folds, seed)
        model.fit(np.asarray(y, dtype=float), np.asarray(d, dtype=int), X=np.asarray(X, float))
    return FittedUplift(name, type(model).__name__, model)


def _propensity_model(treated_share: float | None, learner: str, seed: int) -> Any:
    from causal.designs.learners import propensity_learner
    from causal.designs.obs_econml import fixed_classifier

    if treated_share is None:
        return fixed_classifier(propensity_learner(learner, seed=seed))
    return _known_propensity_class()(share=treated_share)


def _s_learner(outcome, propensity, folds, seed):
    from econml.metalearners import SLearner

    return SLearner(overall_model=outcome())


def _t_learner(outcome, propensity, folds, seed):
    from econml.metalearners import TLearner

    return TLearner(models=outcome())


def _x_learner(outcome, propensity, folds, seed):
    from econml.metalearners import XLearner

    return XLearner(models=outcome(), cate_models=outcome(), propensity_model=propensity)


def _dr_learner(outcome, propensity, folds, seed):
    from econml.dr import DRLearner

    return DRLearner(
        model_propensity=propensity,
        model_regression=outcome(),
        model_final=outcome(),
        cv=folds,
        min_propensity=MIN_PROPENSITY,
        random_state=seed,
    )


def _causal_forest(outcome, propensity, folds, seed):
    from econml.dml import CausalForestDML

    return CausalForestDML(
        model_y=outcome(),
        model_t=propensity,
        discrete_treatment=True,
        cv=folds,
        n_estimators=100,
        min_samples_leaf=20,
        random_state=seed,
        n_jobs=1,
    )


_BUILDERS = {
    "s_learner": _s_learner,
    "t_learner": _t_learner,
    "x_learner": _x_learner,
    "dr_learner": _dr_learner,
    "causal_forest": _causal_forest,
}


@cache
def _known_propensity_class() -> type:
    """A classifier that returns the design's treated share (built once; sklearn is lazy)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class KnownPropensity(ClassifierMixin, BaseEstimator):
        """P(treated) = ``share`` for every unit: the randomisation's own probability."""

        def __init__(self, share: float = 0.5) -> None:
            self.share = share

        def fit(self, X, y, **_: Any):
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, X):
            n = np.shape(X)[0]
            return np.column_stack([np.full(n, 1 - self.share), np.full(n, self.share)])

        def predict(self, X):
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    return KnownPropensity
