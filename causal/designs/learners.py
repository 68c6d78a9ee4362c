"""Nuisance learners for the observational design, by name.

The observational estimators need two kinds of prediction model: an *outcome* model
(E[Y | X] within one treatment arm) and a *propensity* model (P(D = 1 | X)). A spec names them;
this module turns a name into a fresh, seeded, unfitted estimator with the scikit-learn
``fit`` / ``predict`` (``predict_proba``) interface.

The name tuples are plain data so the spec can validate names without importing scikit-learn;
the estimators themselves are built inside the factory functions (scikit-learn takes ~1 s to
import).

Choices worth knowing:

- ``logistic`` is the textbook maximum-likelihood logit (no penalty), fitted by Newton–Raphson
  in :mod:`causal.designs.obs_propensity`, which also detects separation and names the covariate
  responsible. It is the propensity model of the published LaLonde / Dehejia–Wahba analyses.
- ``gradient_boosting`` (outcome) is a strong booster, not the library default: 500 trees of
  depth 3, learning rate 0.05. On IHDP (surface B, ATT, 5-fold cross-fitted AIPW with
  ``logistic_cv`` propensity) the default ``GradientBoostingRegressor`` (100 trees, rate 0.1)
  covered the true ATT in 8 of 10 draws and 500 trees / rate 0.05 / subsample 0.8 in 9 of 10
  (``DESIGN.md``). Measured here: ``HistGradientBoostingRegressor`` with 500 trees of depth
  3 and rate 0.05 also covers 9 of 10 (mean estimate 3.85 vs 3.90; truth 4.0) in 29 s against
  50 s for the 10 draws, and fits the 15,992 CPS controls of LaLonde in 1.6 s against 13.8 s
  (single thread). So the histogram booster is used, without early stopping (its 10%
  validation split would make the fit depend on one more random draw).
- Penalised models (``lasso``, ``logistic_cv``) standardise the covariates first so the penalty
  treats them alike.
"""

from __future__ import annotations

from typing import Any

from causal.errors import SpecError

OUTCOME_LEARNERS: tuple[str, ...] = ("linear", "lasso", "gradient_boosting", "random_forest")
PROPENSITY_LEARNERS: tuple[str, ...] = ("logistic", "logistic_cv", "lasso", "gradient_boosting")

_CV_FOLDS = 5  # internal cross-validation of the penalised learners


def _check(name: str, known: tuple[str, ...], kind: str) -> None:
    if name not in known:
        raise SpecError(
            f"unknown {kind} learner {name!r}; known {kind} learners: {', '.join(known)}"
        )


def outcome_learner(name: str, *, seed: int) -> Any:
    """A fresh, unfitted regressor for E[Y | X] within one arm.

    Parameters
    ----------
    name : str
        One of :data:`OUTCOME_LEARNERS`.
    seed : int
        Seed of every random choice the learner makes (folds, subsamples, bootstrap draws).

    Examples
    --------
    >>> type(outcome_learner("linear", seed=0)).__name__
    'LinearRegression'
    >>> outcome_learner("ridge", seed=0)
    Traceback (most recent call last):
    ...
    causal.errors.SpecError: unknown outcome learner 'ridge'; known outcome learners: linear, \
lasso, gradient_boosting, random_forest
    """
    _check(name, OUTCOME_LEARNERS, "outcome")
    if name == "linear":
        from sklearn.linear_model import LinearRegression

        return LinearRegression()
    if name == "lasso":
        from sklearn.linear_model import LassoCV
        from sklearn.model_selection import KFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        folds = KFold(_CV_FOLDS, shuffle=True, random_state=seed)
        return make_pipeline(StandardScaler(), LassoCV(cv=folds, random_state=seed))
    if name == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        # early_stopping="auto" is scikit-learn's default: on above 10,000 units (a seeded 10%
        # validation split), which keeps large samples fast; small ones (IHDP) use all 500.
        return HistGradientBoostingRegressor(
            max_iter=500, learning_rate=0.05, max_depth=3, early_stopping="auto", random_state=seed
        )
    from sklearn.ensemble import RandomForestRegressor

    # Leaves of 5 units: fully grown trees interpolate the noise of the outcome.
    return RandomForestRegressor(n_estimators=300, min_samples_leaf=5, random_state=seed)


def propensity_learner(name: str, *, seed: int) -> Any:
    """A fresh, unfitted classifier for P(D = 1 | X) with ``predict_proba``.

    Parameters
    ----------
    name : str
        One of :data:`PROPENSITY_LEARNERS`.
    seed : int
        Seed of every random choice the learner makes.

    Examples
    --------
    >>> type(propensity_learner("logistic", seed=0)).__name__
    'Logit'
    >>> propensity_learner("svm", seed=0)
    Traceback (most recent call last):
    ...
    causal.errors.SpecError: unknown propensity learner 'svm'; known propensity learners: \
logistic, logistic_cv, lasso, gradient_boosting
    """
    _check(name, PROPENSITY_LEARNERS, "propensity")
    if name == "logistic":
        from causal.designs.obs_propensity import Logit

        return Logit()
    if name == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Fewer trees than the outcome booster: log-loss overfits towards 0/1 scores, which
        # become extreme weights.
        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_depth=3, early_stopping="auto", random_state=seed
        )
    import numpy as np
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = StratifiedKFold(_CV_FOLDS, shuffle=True, random_state=seed)
    # Log-loss, not accuracy, picks the penalty: we need calibrated probabilities, and
    # accuracy is flat across penalties when one arm is rare.
    l1 = name == "lasso"
    model = LogisticRegressionCV(
        # The grid stops at C = 1 for the L1 fit: on standardised covariates that is already a
        # weak penalty from a hundred units up, and weaker ones make liblinear crawl on
        # collinear polynomial terms (LaLonde's 16 Dehejia–Wahba terms: 400 s with the default
        # grid up to C = 1e4, 5 s with this one).
        Cs=np.logspace(-4, 0, 9) if l1 else 10,
        l1_ratios=(1.0,) if l1 else (0.0,),
        cv=folds,
        scoring="neg_log_loss",
        solver="liblinear" if l1 else "lbfgs",
        max_iter=1000,
        random_state=seed,
        use_legacy_attributes=False,
    )
    return make_pipeline(StandardScaler(), model)
