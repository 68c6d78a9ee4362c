"""Names of the designs and of their estimators, importable without numerical libraries.

The spec validates against these names before any heavy module is imported; each design
module registers its implementations under exactly these names (a test checks they agree).
"""

from __future__ import annotations

AVAILABLE_DESIGNS: tuple[str, ...] = (
    "ab_test",
    "synthetic_control",
    "did",
    "observational",
    "uplift",
    "clv",
)
PLANNED_DESIGNS: tuple[str, ...] = ("survival",)

ESTIMATORS: dict[str, tuple[str, ...]] = {
    "ab_test": ("difference_in_means", "cuped", "lin", "relative_lift"),
    "synthetic_control": ("synthetic_did", "synthetic_control", "did_sc_baseline"),
    "did": ("callaway_santanna", "event_study", "twfe", "did_2x2"),
    "observational": (
        "naive_difference",
        "regression",
        "ipw",
        "aipw",
        "linear_dml",
        "dr_learner",
        "causal_forest",
    ),
    # Uplift learners: one Result each (its held-out Qini coefficient); the spec lists them
    # under design.learners, not estimators.
    "uplift": ("s_learner", "t_learner", "x_learner", "dr_learner", "causal_forest"),
    # Customer lifetime value: one Result, the mean CLV per customer (by group when given).
    "clv": ("bg_nbd_gamma_gamma",),
}
DEFAULT_ESTIMATORS: dict[str, tuple[str, ...]] = {
    "ab_test": ("difference_in_means", "cuped", "lin", "relative_lift"),
    "synthetic_control": ("synthetic_did", "synthetic_control", "did_sc_baseline"),
    "did": ("callaway_santanna", "event_study", "twfe", "did_2x2"),
    # causal_forest is added when the spec names effect modifiers (it estimates CATEs).
    "observational": ("naive_difference", "regression", "ipw", "aipw", "linear_dml", "dr_learner"),
    "uplift": ("s_learner", "t_learner", "x_learner", "dr_learner", "causal_forest"),
    "clv": ("bg_nbd_gamma_gamma",),
}
NEEDS_COVARIATES: frozenset[str] = frozenset({"cuped", "lin"})
RELATIVE_ESTIMATORS: frozenset[str] = frozenset({"relative_lift"})

# Nuisance learners by name (causal.designs.learners builds them; kept here so the spec can
# check a name without importing scikit-learn).
OUTCOME_LEARNERS: tuple[str, ...] = ("linear", "lasso", "gradient_boosting", "random_forest")
PROPENSITY_LEARNERS: tuple[str, ...] = ("logistic", "logistic_cv", "lasso", "gradient_boosting")
UPLIFT_LEARNERS: tuple[str, ...] = ESTIMATORS["uplift"]
