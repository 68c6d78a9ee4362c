"""Two-period panel DiD estimators for one ATT(g,t) cell, ported from R ``DRDID`` 1.2.

Each estimator takes the cell's sample (treated cohort plus comparison units, no weights):
the outcome change ``dy`` between the base period and period t, the treated indicator ``d``
and the design matrix ``x`` (intercept first), and returns the ATT and its influence
function on that sample, exactly as ``DRDID::drdid_panel`` (doubly robust, Sant'Anna & Zhao
2020), ``DRDID::std_ipw_did_panel`` (normalised inverse-probability weighting) and
``DRDID::reg_did_panel`` (outcome regression) do — including the estimation effect of the
logit propensity score and of the OLS outcome model. As in DRDID, fitted propensity scores are
capped at 1 − 1e-6 and comparison units with a score ≥ 0.995 get weight zero.

Failures the caller must report against the cell (overlap, a singular design) raise
:class:`CellFailure`; :mod:`causal.designs.did_cs` turns them into a ``DesignError``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit

PS_CAP = 1 - 1e-6  # DRDID: pmin(ps.fit, 1 - 1e-6)
TRIM_LEVEL = 0.995  # DRDID: comparison units with ps >= trim.level get zero weight
OVERLAP_LIMIT = 0.999  # R did: overlap_check_fail, max fitted score >= 0.999
EPS = np.finfo(float).eps


class CellFailure(Exception):
    """A 2x2 cell cannot be estimated; ``kind`` is ``"overlap"`` or ``"singular"``."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


def _rcond(a: np.ndarray) -> float:
    """Reciprocal 1-norm condition number (what R's ``rcond`` estimates)."""
    try:
        return 1.0 / np.linalg.cond(a, 1)
    except np.linalg.LinAlgError:
        return 0.0


def logit_fit(x: np.ndarray, d: np.ndarray, *, max_iter: int = 100) -> np.ndarray:
    """Fitted probabilities of a logit of ``d`` on ``x`` (no added intercept), by IRLS.

    Starts like R's ``glm`` (``mustart = (d + 0.5) / 2``) and takes Newton steps until the
    coefficients move by less than 1e-10 (relative), after which the quadratic convergence of
    Newton's method leaves the fit exact to machine precision. Raises :class:`CellFailure` on a
    singular design or on separation.

    Examples
    --------
    >>> x = np.column_stack([np.ones(6), [0, 1, 2, 3, 4, 5.]])
    >>> logit_fit(x, np.array([0, 0, 1, 0, 1, 1.])).round(3)
    array([0.046, 0.139, 0.353, 0.647, 0.861, 0.954])
    """
    mu = (d + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    beta = None
    for _ in range(max_iter):
        w = mu * (1 - mu)
        xtw = x.T * w
        info = xtw @ x
        if _rcond(info) < EPS:
            if np.max(mu) >= OVERLAP_LIMIT:  # separation: the scores run off to 1
                raise CellFailure("overlap", "the propensity score reaches 1 for some units")
            raise CellFailure("singular", "the propensity-score design is singular")
        new = np.linalg.solve(info, xtw @ (eta + (d - mu) / w))
        eta = x @ new
        mu = expit(eta)
        if beta is not None and np.max(np.abs(new - beta)) <= 1e-10 * (1 + np.max(np.abs(new))):
            return mu  # Newton converges quadratically: this step left ~1e-20 to go
        beta = new
    if np.max(mu) >= OVERLAP_LIMIT:
        raise CellFailure("overlap", "the propensity score reaches 1 for some units")
    warnings.warn(f"propensity-score logit did not converge in {max_iter} iterations", stacklevel=3)
    return mu


def _pscore(x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Capped scores, DRDID's trimming indicator and the inverse-information matrix × n."""
    ps = logit_fit(x, d)
    if np.max(ps) >= OVERLAP_LIMIT:
        raise CellFailure(
            "overlap", f"the largest estimated propensity score is {np.max(ps):.4f} (>= 0.999)"
        )
    if np.all(ps[d == 0] >= TRIM_LEVEL):
        raise CellFailure("overlap", "every comparison unit has a propensity score >= 0.995")
    ps = np.minimum(ps, PS_CAP)
    keep = np.ones(len(d), dtype=bool)
    control = d == 0
    keep[control] = ps[control] < TRIM_LEVEL
    info = x.T @ ((ps * (1 - ps))[:, None] * x)
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        raise CellFailure("singular", "the propensity-score information is singular") from None
    inv_chol = np.linalg.solve(chol, np.eye(len(info)))
    return ps, keep, (inv_chol.T @ inv_chol) * len(d)


def _ols_controls(
    x: np.ndarray, d: np.ndarray, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS of dy on x among comparison units: fitted values, residual weight, (X'X/n)^-1."""
    control = d == 0
    xc = x[control]
    xtx = xc.T @ xc
    if _rcond(xtx) < EPS:
        raise CellFailure("singular", "the covariate matrix of the comparison units is singular")
    beta = np.linalg.solve(xtx, xc.T @ dy[control])
    fitted = x @ beta
    xpx_inv = np.linalg.inv(xtx / len(d))
    return fitted, (1 - d) * (dy - fitted), xpx_inv


def dr_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Locally efficient doubly robust DiD (``DRDID::drdid_panel``): ATT and influence function.

    Examples
    --------
    >>> dy, d, x = np.array([1., 2, 3, 2, 4, 6]), np.array([0, 0, 0, 1, 1, 1.]), np.ones((6, 1))
    >>> att, inf = dr_panel(dy, d, x)
    >>> float(att), inf.round(2).tolist()
    (2.0, [2.0, 0.0, -2.0, -4.0, 0.0, 4.0])
    """
    ps, keep, hess = _pscore(x, d)
    fitted, ols_res, xpx_inv = _ols_controls(x, d, dy)
    resid = dy - fitted
    w_treat = keep * d
    w_cont = keep * ps * (1 - d) / (1 - ps)
    mean_wt, mean_wc = w_treat.mean(), w_cont.mean()
    att_treat, att_cont = w_treat * resid, w_cont * resid
    eta_treat, eta_cont = att_treat.mean() / mean_wt, att_cont.mean() / mean_wc
    m1 = (w_treat[:, None] * x).mean(axis=0)
    m2 = ((w_cont * (resid - eta_cont))[:, None] * x).mean(axis=0)
    m3 = (w_cont[:, None] * x).mean(axis=0)
    inf_treat = (att_treat - w_treat * eta_treat - ols_res * (x @ (xpx_inv @ m1))) / mean_wt
    inf_cont = (
        att_cont - w_cont * eta_cont + (d - ps) * (x @ (hess @ m2)) - ols_res * (x @ (xpx_inv @ m3))
    ) / mean_wc
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def ipw_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Normalised (Hájek) IPW DiD (``DRDID::std_ipw_did_panel``): ATT and influence function.

    Examples
    --------
    >>> dy, d, x = np.array([1., 2, 3, 2, 4, 6]), np.array([0, 0, 0, 1, 1, 1.]), np.ones((6, 1))
    >>> float(ipw_panel(dy, d, x)[0])
    2.0
    """
    ps, keep, hess = _pscore(x, d)
    w_treat = keep * d
    w_cont = keep * ps * (1 - d) / (1 - ps)
    mean_wt, mean_wc = w_treat.mean(), w_cont.mean()
    eta_treat = (w_treat * dy).mean() / mean_wt
    eta_cont = (w_cont * dy).mean() / mean_wc
    m2 = ((w_cont * (dy - eta_cont))[:, None] * x).mean(axis=0)
    inf_treat = w_treat * (dy - eta_treat) / mean_wt
    inf_cont = (w_cont * (dy - eta_cont) + (d - ps) * (x @ (hess @ m2))) / mean_wc
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def reg_panel(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD (``DRDID::reg_did_panel``): ATT and influence function.

    Examples
    --------
    >>> dy, d, x = np.array([1., 2, 3, 2, 4, 6]), np.array([0, 0, 0, 1, 1, 1.]), np.ones((6, 1))
    >>> float(reg_panel(dy, d, x)[0])
    2.0
    """
    fitted, ols_res, xpx_inv = _ols_controls(x, d, dy)
    mean_d = d.mean()
    eta_treat = (d * dy).mean() / mean_d
    eta_cont = (d * fitted).mean() / mean_d
    m1 = (d[:, None] * x).mean(axis=0)
    inf_treat = d * (dy - eta_treat) / mean_d
    inf_cont = (d * (fitted - eta_cont) + ols_res * (x @ (xpx_inv @ m1))) / mean_d
    return float(eta_treat - eta_cont), inf_treat - inf_cont


ESTIMATORS = {"dr": dr_panel, "ipw": ipw_panel, "reg": reg_panel}
