"""Estimators for selection on observables: difference in means, regression, IPW, AIPW.

Every estimator takes numpy arrays — the outcome ``y`` (float), the treatment ``d`` (0/1) and
the adjustment set ``X`` (n × p, possibly p = 0) with its column ``names`` — and keyword-only
options, and returns an :class:`~causal.designs.obs_types.EffectEstimate` whose ``details`` are
JSON-safe. ``estimand`` is the population the average effect refers to: all units (ATE), the
treated (ATT) or the untreated (ATC).

Standard errors:

- ``naive_difference``: Welch, Satterthwaite df.
- ``regression_adjustment``: HC1 sandwich (White's with the n / (n − k) factor, Stata's
  ``robust``), t with n − k df; the interacted version adds the sampling variance of the
  centring means through their influence function (see the function).
- ``ipw``: stacked M-estimation (the Hájek equations plus the logit score) when the propensity
  is the in-sample logit; otherwise the influence function with the propensity taken as known.
- ``aipw``: the influence function of the cross-fitted doubly robust score (which is
  Neyman-orthogonal, so the nuisance fits add no first-order variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from causal.designs.obs_propensity import (
    Bounded,
    Logit,
    Rule,
    apply_bounds,
    check_overlap,
    check_separation,
    check_treatment,
    ess,
    fit_predict,
    independent_columns,
    propensity_scores,
    single_threaded,
    stratified_folds,
    varying_columns,
)
from causal.designs.obs_types import EffectEstimate, Estimand
from causal.errors import DesignError
from causal.inference.basic import welch_difference

__all__ = [
    "aipw",
    "balancing_weights",
    "ipw",
    "naive_difference",
    "propensity_scores",
    "regression_adjustment",
]

ESTIMANDS = ("ATE", "ATT", "ATC")


def _prepare(
    y: np.ndarray, d: np.ndarray, X: np.ndarray | None, names: Sequence[str] | None, estimand: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], list[str]]:
    """Checked arrays: y, d (0/1 int), X without constant columns, their names, dropped names."""
    if estimand not in ESTIMANDS:
        raise ValueError(f"estimand must be one of {ESTIMANDS}, got {estimand!r}")
    y = np.asarray(y, dtype=float)
    d = check_treatment(d)
    if X is None:
        X = np.empty((len(y), 0))
    if not (len(y) == len(d) == len(X)):
        raise ValueError(f"y, d and X have {len(y)}, {len(d)} and {len(X)} rows")
    if not np.all(np.isfinite(y)):
        raise DesignError(f"the outcome has {int((~np.isfinite(y)).sum())} missing values")
    X, kept, dropped = varying_columns(X, names)
    return y, d, X, kept, dropped


def _target(d: np.ndarray, estimand: str) -> np.ndarray:
    """Membership of the target population S: everyone, the treated or the untreated."""
    if estimand == "ATE":
        return np.ones(len(d))
    return d.astype(float) if estimand == "ATT" else 1.0 - d


def _weights_summary(w1: np.ndarray, w0: np.ndarray, d: np.ndarray) -> dict[str, float]:
    return {
        "ess_treated": ess(w1[d == 1]),
        "ess_control": ess(w0[d == 0]),
        "max_weight_share_treated": float(w1.max() / w1.sum()),
        "max_weight_share_control": float(w0.max() / w0.sum()),
    }


def _se(influence: np.ndarray) -> float:
    """Standard error of a mean-zero influence function: √(Σ ψ²) / n."""
    return float(np.sqrt(np.sum(influence**2)) / len(influence))


def _finish(
    name: str, estimand: str, estimate: float, se: float, d: np.ndarray, df: float, details: dict
) -> EffectEstimate:
    n1 = int(d.sum())
    return EffectEstimate(name, estimand, float(estimate), float(se), len(d), n1, df, details)  # type: ignore[arg-type]


def naive_difference(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    *,
    estimand: Estimand = "ATE",
) -> EffectEstimate:
    """Treated mean minus untreated mean, Welch SE (ignores X: the unadjusted baseline).

    Examples
    --------
    >>> r = naive_difference(np.array([2.0, 4, 6, 1, 2, 3]), np.array([1, 1, 1, 0, 0, 0]))
    >>> r.estimate, round(r.std_error, 3)
    (2.0, 1.291)
    """
    y, d, _, _, _ = _prepare(y, d, X, names, estimand)
    w = welch_difference(y, d)
    details = {
        "treated_mean": w.treated_mean,
        "control_mean": w.control_mean,
        "variance": "Welch (unequal variances), Satterthwaite df",
        "learners": {},
        "note": "no adjustment: equals every estimand only if treatment is as good as random",
    }
    return _finish("naive_difference", estimand, w.difference, w.std_error, d, w.df, details)


def _ols_influence(y: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS coefficients, the HC0 influence function of the coefficient in column 1, n − k.

    Solved by QR on unit-norm columns, not the normal equations: LaLonde's raw Dehejia–Wahba
    design (ages cubed, squared earnings) has condition number 2e10, which the normal
    equations square, losing seven digits of the estimate. The influence of unit i on the
    coefficients is n R⁻¹ q_i e_i, so Σ IF²/n² is White's HC0 variance.
    """
    from scipy.linalg import solve_triangular

    n, k = design.shape
    scale = np.linalg.norm(design, axis=0)
    q, r = np.linalg.qr(design / scale)
    params = solve_triangular(r, q.T @ y) / scale
    resid = y - design @ params
    row = solve_triangular(r, np.eye(k)[:, 1], trans="T")  # row 1 of R⁻¹, via R' z = e_1
    return params, n * (q @ row) * resid / scale[1], n - k


def regression_adjustment(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray | None,
    names: Sequence[str] | None = None,
    *,
    estimand: Estimand = "ATE",
    interacted: bool = True,
) -> EffectEstimate:
    """Linear regression adjustment; with ``interacted`` the Lin / Imbens–Wooldridge estimator.

    ``interacted=True`` fits y ~ d + (X − x̄_S) + d·(X − x̄_S), with x̄_S the covariate means of
    the target population S (all units, the treated or the untreated), so the coefficient of
    d is the average over S of the difference of the two arms' regression lines. Its SE adds
    the sampling variance of x̄_S: the influence function of the d coefficient (x̄_S held
    fixed) plus s_i (x_i − x̄_S)'(β₁ − β₀) / P(S), squared and summed, times the HC1 factor
    n / (n − k). Without the second term it is statsmodels' HC1 SE (``se_fixed_means`` in
    details).

    ``interacted=False`` fits y ~ d + X (the backdoor linear regression of dowhy): the d
    coefficient is a variance-weighted average of effects, equal to the ATE, ATT and ATC
    only when the effect is the same for everyone; ``estimand`` is recorded, not targeted.

    Collinear columns are dropped (later ones first, interactions after main effects) and
    listed in details.

    Examples
    --------
    >>> X = np.array([[1.0], [2], [3], [4], [1], [2], [3], [4]])
    >>> d = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> y = np.array([1.0, 2, 3, 4, 3, 5, 7, 9])
    >>> round(regression_adjustment(y, d, X, ["x"], estimand="ATE").estimate, 10)
    3.5
    """
    y, d, X, names, dropped = _prepare(y, d, X, names, estimand)
    n = len(y)
    s = _target(d, estimand)
    if interacted:
        centre = X[s == 1].mean(axis=0)
        Xc = X - centre
        design = np.column_stack([np.ones(n), d, Xc, Xc * d[:, None]])
        labels = ["const", "d", *names, *(f"d*{c}" for c in names)]
    else:
        design = np.column_stack([np.ones(n), d, X])
        labels = ["const", "d", *names]
    keep = independent_columns(design)
    if 1 not in keep:
        raise DesignError("the treatment is a linear combination of the covariates")
    collinear = [labels[j] for j in range(len(labels)) if j not in set(keep.tolist())]
    design, labels = design[:, keep], [labels[j] for j in keep]
    k = design.shape[1]
    if n <= k:
        raise DesignError(f"{n} units cannot fit a regression with {k} terms")
    params, if_coef, resid_df = _ols_influence(y, design)
    hc1 = n / resid_df  # HC1: n / (n - k) times the HC0 (White) sandwich
    estimate = float(params[1])
    se_fixed = math.sqrt(np.sum(if_coef**2) / n**2 * hc1)
    se = se_fixed
    if interacted and X.shape[1]:
        # Add the influence of the centring means x̄_S: s_i (x_i − x̄_S)'(β₁ − β₀) / P(S).
        delta = np.zeros(X.shape[1])  # β₁ − β₀: the interaction coefficients (0 if dropped)
        for j, c in enumerate(names):
            if f"d*{c}" in labels:
                delta[j] = params[labels.index(f"d*{c}")]
        if_centre = s * (Xc @ delta) / s.mean()
        se = math.sqrt(np.sum((if_coef + if_centre) ** 2) / n**2 * hc1)
    details = {
        "variance": "HC1 sandwich, t with n - k df"
        + ("; plus the variance of the centring means" if interacted else ""),
        "se_fixed_means": se_fixed,
        "interacted": interacted,
        "n_terms": k,
        "dropped_constant": dropped,
        "dropped_collinear": collinear,
        "learners": {"outcome": "linear (OLS)"},
    }
    name = "regression_adjustment" if interacted else "regression_additive"
    return _finish(name, estimand, estimate, se, d, float(resid_df), details)


def _tilt(e: np.ndarray, estimand: str) -> np.ndarray:
    """Density ratio of the target population: 1 (ATE), e (ATT), 1 − e (ATC)."""
    if estimand == "ATE":
        return np.ones(len(e))
    return e if estimand == "ATT" else 1.0 - e


def _arm_weights(d: np.ndarray, b: Bounded, estimand: str) -> tuple[np.ndarray, np.ndarray]:
    """Hájek weights of the treated (w1) and untreated (w0) towards the target population."""
    e, keep = b.scores, b.keep
    tilt = _tilt(e, estimand)
    return keep * d * tilt / e, keep * (1 - d) * tilt / (1 - e)


def balancing_weights(
    ps: np.ndarray,
    d: np.ndarray,
    *,
    estimand: Estimand = "ATE",
    bounds: tuple[float, float] = (0.01, 0.99),
    rule: Rule = "clip",
) -> np.ndarray:
    """Per-unit IPW weights towards ``estimand`` after the bounds rule (trimmed units: 0).

    The weights :func:`ipw` uses (before normalising within each arm), for balance checks.

    Examples
    --------
    >>> balancing_weights(np.array([0.2, 0.5, 0.5, 0.8]), np.array([0, 0, 1, 1]),
    ...                   estimand="ATT").tolist()
    [0.25, 1.0, 1.0, 1.0]
    """
    d = check_treatment(d)
    b = apply_bounds(np.asarray(ps, dtype=float), estimand=estimand, bounds=bounds, rule=rule)
    w1, w0 = _arm_weights(d, b, estimand)
    return w1 + w0


def _dlog_weights(e: np.ndarray, estimand: str) -> tuple[np.ndarray, np.ndarray]:
    """d log w / dη of the treated and untreated weights, for the logit index η (e = expit η)."""
    one, zero = np.ones_like(e), np.zeros_like(e)
    return {"ATE": (e - 1, e), "ATT": (zero, one), "ATC": (-one, zero)}[estimand]


def _logit_correction(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    model: Logit,
    b: Bounded,
    w: tuple[np.ndarray, np.ndarray],
    mu: tuple[float, float],
    estimand: str,
) -> np.ndarray:
    """The propensity-estimation part of the stacked M-estimator's influence function.

    The estimating equations are the logit score (d − e(Zγ))Z and, per arm a, the Hájek
    equation w_a(γ)(y − μ_a) = 0. The Jacobian is block-triangular, so the influence function
    of μ_a is [w_a(y − μ_a) + E(∂g_a/∂γ') IF_γ] / E(w_a) with IF_γ = H⁻¹ Z_i (d_i − e_i). Clipped
    units have a fixed score, so their weights do not move with γ; trimming is taken as given.
    """
    Z = model.design(X)
    e = model.predict_proba(X)[:, 1]
    hessian = (Z * (e * (1 - e))[:, None]).T @ Z / len(y)
    if_gamma = np.linalg.solve(hessian, (Z * (d - e)[:, None]).T).T  # n × q
    free = ~b.moved
    out = np.zeros(len(y))
    dlogs = _dlog_weights(b.scores, estimand)
    for sign, w_a, mu_a, dlog in zip((1, -1), w, mu, dlogs, strict=True):
        grad = ((y - mu_a) * w_a * dlog * free) @ Z / len(y)  # E ∂g_a/∂γ'
        out += sign * (if_gamma @ grad) / w_a.mean()
    return out


def ipw(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    estimand: Estimand = "ATE",
    learner: str = "logistic",
    folds: int | None = None,
    bounds: tuple[float, float] = (0.01, 0.99),
    rule: Rule = "clip",
    seed: int = 0,
) -> EffectEstimate:
    """Inverse-probability weighting with normalised (Hájek) weights.

    Weights: treated 1/e and untreated 1/(1 − e) for the ATE; 1 and e/(1 − e) for the ATT;
    (1 − e)/e and 1 for the ATC; each arm's weights sum to one. Extreme propensities follow
    ``rule`` within ``bounds`` on the side where the weights explode (see
    :func:`causal.designs.obs_propensity.apply_bounds`).

    The SE accounts for estimating the propensity (stacked M-estimation, sandwich variance)
    when ``learner="logistic"`` and ``folds=None``; otherwise the propensity is taken as known
    in the influence function, and details say so.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> d = (rng.random(400) < 1 / (1 + np.exp(-x))).astype(int)
    >>> y = 2.0 * d + x + rng.normal(size=400)
    >>> r = ipw(y, d, x[:, None], ["x"], estimand="ATT")
    >>> round(r.estimate, 2), round(r.std_error, 2)
    (2.21, 0.11)
    """
    y, d, X, names, dropped = _prepare(y, d, X, names, estimand)
    check_separation(d, X, names)
    e, model = fit_predict(d, X, names=names, learner=learner, folds=folds, seed=seed)
    check_overlap(e, d)
    b = apply_bounds(e, estimand=estimand, bounds=bounds, rule=rule)
    w1, w0 = _arm_weights(d, b, estimand)
    if w1.sum() <= 0 or w0.sum() <= 0:
        raise DesignError(f"after the {rule} rule at {bounds}, an arm has no units left")
    mu1, mu0 = float(w1 @ y / w1.sum()), float(w0 @ y / w0.sum())
    influence = w1 * (y - mu1) / w1.mean() - w0 * (y - mu0) / w0.mean()
    if isinstance(model, Logit):
        influence = influence + _logit_correction(y, d, X, model, b, (w1, w0), (mu1, mu0), estimand)
        variance = "stacked M-estimation (Hajek equations + logit score), sandwich"
    else:
        variance = "influence function with the propensity taken as known (no first-stage term)"
    details = {
        "variance": variance,
        "treated_mean": mu1,
        "control_mean": mu0,
        "propensity_bounds": b.summary(bounds, rule),
        "weights": _weights_summary(w1, w0, d),
        "mean_propensity": float(e.mean()),
        "folds": folds,
        "dropped_constant": dropped,
        "learners": {"propensity": learner},
        "n_used": int(b.keep.sum()),
    }
    return _finish("ipw", estimand, mu1 - mu0, _se(influence), d, math.inf, details)


def _cross_fit(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    names: Sequence[str],
    arms: tuple[int, ...],
    learners: dict[str, str],
    *,
    folds: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold propensities and per-arm outcome predictions μ0, μ1 (zeros if not needed)."""
    from causal.designs.learners import outcome_learner

    propensity, outcome = learners["propensity"], learners["outcome"]
    e, _ = fit_predict(d, X, names=names, learner=propensity, folds=folds, seed=seed)
    mu = np.zeros((2, len(y)))
    Xfit = X if X.shape[1] else np.zeros((len(y), 1))  # learners need a column
    with single_threaded():
        for train, test in stratified_folds(d, folds=folds, seed=seed):
            for arm in arms:
                rows = train[d[train] == arm]
                model = outcome_learner(outcome, seed=seed).fit(Xfit[rows], y[rows])
                mu[arm, test] = model.predict(Xfit[test])
    return e, mu[0], mu[1]


def aipw(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    estimand: Estimand = "ATE",
    outcome_learner: str = "linear",
    propensity_learner: str = "logistic",
    folds: int = 5,
    bounds: tuple[float, float] = (0.01, 0.99),
    rule: Rule = "clip",
    seed: int = 0,
) -> EffectEstimate:
    """Augmented IPW (doubly robust) with cross-fitted nuisances and an influence-function SE.

    With target tilt t(e) = 1, e, 1 − e for the ATE, ATT, ATC and arm weights
    w₁ = d t/e, w₀ = (1 − d) t/(1 − e), the estimate is

        Σ t(μ₁ − μ₀)/Σ t + Σ w₁(y − μ₁)/Σ w₁ − Σ w₀(y − μ₀)/Σ w₀,

    the outcome-model contrast plus weighted residual corrections, with the weights
    normalised (Hájek) as in Sant'Anna & Zhao (2020). For the ATT the sample tilt is d itself,
    so it reduces to the mean over the treated of y − μ₀ minus the e/(1 − e)-weighted mean of
    the untreated residuals y − μ₀: only μ₀ and e are needed (and only those are fitted).
    Nuisances come from ``folds``-fold stratified cross-fitting (seeded); the SE is that of
    the influence function, √(Σ ψ²)/n, normal interval.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> d = (rng.random(400) < 1 / (1 + np.exp(-x))).astype(int)
    >>> y = 2.0 * d + x + rng.normal(size=400)
    >>> r = aipw(y, d, x[:, None], ["x"], estimand="ATE")
    >>> round(r.estimate, 2), round(r.std_error, 2)
    (2.13, 0.1)
    """
    y, d, X, names, dropped = _prepare(y, d, X, names, estimand)
    check_separation(d, X, names)
    arms = {"ATE": (0, 1), "ATT": (0,), "ATC": (1,)}[estimand]
    learners = {"outcome": outcome_learner, "propensity": propensity_learner}
    e, mu0, mu1 = _cross_fit(y, d, X, names, arms, learners, folds=folds, seed=seed)
    check_overlap(e, d)
    b = apply_bounds(e, estimand=estimand, bounds=bounds, rule=rule)
    w1, w0 = _arm_weights(d, b, estimand)
    if w1.sum() <= 0 or w0.sum() <= 0:
        raise DesignError(f"after the {rule} rule at {bounds}, an arm has no units left")
    # Sample tilt: the target population's indicator (exact for ATT / ATC), else 1.
    t = b.keep * {"ATE": np.ones(len(d)), "ATT": d, "ATC": 1.0 - d}[estimand]
    contrast = mu1 - mu0
    parts = [
        (t, contrast),  # the outcome-model contrast over S
        (w1, y - mu1),  # treated residuals, weighted to S
        (w0, y - mu0),  # untreated residuals, weighted to S
    ]
    means = [float(w @ v / w.sum()) for w, v in parts]
    estimate = means[0] + means[1] - means[2]
    influence = sum(
        sign * w * (v - m) / w.mean()
        for sign, (w, v), m in zip((1, 1, -1), parts, means, strict=True)
    )
    details = {
        "variance": "influence function of the cross-fitted doubly robust score",
        "folds": folds,
        "seed": seed,
        "learners": learners,
        "mean_propensity": float(e.mean()),
        "propensity_bounds": b.summary(bounds, rule),
        "weights": _weights_summary(w1, w0, d),
        "dropped_constant": dropped,
        "n_used": int(b.keep.sum()),
    }
    return _finish("aipw", estimand, estimate, _se(influence), d, math.inf, details)
