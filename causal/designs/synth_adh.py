"""Synthetic control with nested predictor weights (Abadie, Diamond & Hainmueller 2010).

The donor weights ``w`` solve the inner problem ``min_w (X1 - X0 w)' diag(v) (X1 - X0 w)`` on
the simplex; the predictor weights ``v`` solve the outer problem: the pre-period outcome MSPE
of the synthetic unit ``mean((Z1 - Z0 w(v))²)``. The objective mirrors R ``Synth`` and
``pysyncon`` 1.7 (``Synth.fit``): predictor rows divided by their sd (ddof 1) across treated and
donors, ``v`` normalised to sum 1, the outer loss over the rows of ``Z`` (the pre-periods).

Why it is fast (bench/bench_synth.py):

- The inner problem is the point of the donors' convex hull nearest the treated unit in the
  ``v`` metric. Wolfe's (1976) minimum-norm-point algorithm solves it exactly in a handful of
  steps, each a (k, J) matrix-vector product and a least squares on at most k + 1 columns; the
  solution has at most k + 1 donors. Each call starts from the previous call's support.
- On a fixed support ``w(v)`` is smooth, so the outer gradient comes from one adjoint solve of
  a KKT system of at most k + 2 rows, and the outer problem runs BFGS on ``log v`` instead of
  Nelder–Mead on function values. The outer loss has several local minima (and kinks where
  the support changes), so BFGS runs from k + 4 starts: equal, the regression start of
  ``Synth``, one per predictor with 90% of the weight, and two seeded random ones.

When the treated unit lies inside the donors' convex hull in predictor space, every ``v`` gives
a zero predictor gap and the inner problem has a set of solutions ``{w: X0 w = X1}``; ``v`` is
then not identified and the weights a QP solver returns depend on its starting point. We take
the member of that set with the smallest pre-period MSPE, the choice the outer problem would
make (so our outer loss is at most that of any other exact solution), and report ``v = 1/k``.
California in Proposition 99 with lagged-outcome predictors is such a case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize

_LAMBDA_TOL = 1e-12  # affine weights at or below this leave the support (Wolfe's Z2)
_GAP_TOL = 1e-12  # relative optimality gap that ends Wolfe's major cycle (Wolfe's Z1)
_HULL_TOL = 1e-14  # squared distance / scale under which the treated unit is inside the hull
_LOG_V_FLOOR = -18.0  # log v lower bound: v ratios down to 1.5e-8, zero for practical purposes
_RANDOM_STARTS = 2  # seeded Dirichlet starts for the outer problem, besides equal and regression


@dataclass(frozen=True)
class AdhFit:
    """A fitted synthetic control.

    ``pre_mspe`` is the outer loss, ``mean((Z1 - Z0 @ weights)²)``; ``predictor_gap`` is in the
    predictors' original units.
    """

    weights: np.ndarray
    v: np.ndarray
    pre_mspe: float
    predictor_gap: np.ndarray


@dataclass(frozen=True)
class PlaceboSpace:
    """Placebo-in-space inference (Abadie, Diamond & Hainmueller 2010, section 3.2).

    ``gaps`` is (N, T), unit minus its synthetic control; ``ratio`` is post / pre RMSPE; ``rank``
    counts the units whose ratio is at least the treated unit's (1 = largest) and
    ``p_value = rank / N``.
    """

    gaps: np.ndarray
    pre_rmspe: np.ndarray
    post_rmspe: np.ndarray
    ratio: np.ndarray
    rank: int
    p_value: float


def _affine_min(PS: np.ndarray) -> np.ndarray:
    """Weights (sum 1) of the point of the affine hull of PS's columns nearest the origin."""
    if PS.shape[1] == 1:
        return np.ones(1)
    # Shift to the first column so the sum-to-one constraint disappears. The normal equations
    # are 3× faster than lstsq at these sizes; lstsq (SVD) takes over when they are singular.
    E = PS[:, 1:] - PS[:, :1]
    try:
        mu = np.linalg.solve(E.T @ E, -E.T @ PS[:, 0])
    except np.linalg.LinAlgError:
        mu = np.linalg.lstsq(E, -PS[:, 0], rcond=None)[0]
    return np.concatenate(([1.0 - mu.sum()], mu))


def _min_norm_point(
    P: np.ndarray, start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Wolfe's algorithm: the point of conv(P's columns) nearest the origin.

    Returns the support (column indices) and its convex weights. ``start`` is a support to
    warm-start from (the previous solution when ``v`` has moved a little).
    """
    sq = np.einsum("ij,ij->j", P, P)
    scale = max(float(sq.max()), 1e-300)
    if start is None or len(start) == 0:
        support = [int(np.argmin(sq))]
        lam = np.ones(1)
    else:
        # Any strictly positive combination of the old support is a valid point to resume
        # Wolfe's minor cycle from; the cycle then moves to its affine minimiser.
        support = [int(j) for j in start]
        lam = np.full(len(support), 1.0 / len(support))
        support, lam = _minor_cycle(P, support, lam)
    x = P[:, support] @ lam
    for _ in range(10 * (P.shape[0] + P.shape[1]) + 100):
        g = x @ P
        j = int(np.argmin(g))
        if x @ x - g[j] <= _GAP_TOL * scale or j in support:
            break
        support.append(j)
        lam = np.append(lam, 0.0)
        support, lam = _minor_cycle(P, support, lam)
        if j not in support:  # rounding rejected the new point: no further progress possible
            break
        x = P[:, support] @ lam
    return np.asarray(support, dtype=np.intp), lam


def _minor_cycle(
    P: np.ndarray, support: list[int], lam: np.ndarray
) -> tuple[list[int], np.ndarray]:
    """Move from ``lam`` toward the affine minimiser, dropping points that reach zero."""
    while True:
        alpha = _affine_min(P[:, support])
        if (alpha > _LAMBDA_TOL).all():
            return support, alpha
        step = lam - alpha
        blocked = (alpha <= _LAMBDA_TOL) & (step > 0)
        theta = min(1.0, float(np.min(lam[blocked] / step[blocked]))) if blocked.any() else 1.0
        lam = lam - theta * step
        keep = lam > _LAMBDA_TOL
        if keep.all():  # rounding: force out the point that blocked the step
            keep[int(np.argmin(np.where(blocked, lam, np.inf)))] = False
        support = [s for s, kept in zip(support, keep, strict=True) if kept]
        lam = lam[keep] / lam[keep].sum()


def _scatter(J: int, support: np.ndarray, lam: np.ndarray) -> np.ndarray:
    w = np.zeros(J)
    w[support] = np.clip(lam, 0.0, None)
    return w / w.sum()


def solve_w(X1: np.ndarray, X0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Donor weights: ``min_w (X1 - X0 w)' diag(v) (X1 - X0 w)`` s.t. ``w >= 0, sum w = 1``.

    ``X1`` is (k,), ``X0`` (k, J), ``v`` (k,) non-negative. Exact (Wolfe's minimum-norm-point
    algorithm): at most k + 1 donors get positive weight. When ``X1`` is a convex combination of
    donors the minimum is zero and may be attained by many ``w``; this returns one of them.

    Examples
    --------
    >>> X0 = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    >>> solve_w(np.array([1.0, 0.5]), X0, np.array([0.5, 0.5])).round(6).tolist()
    [0.25, 0.5, 0.25]
    """
    X0 = np.asarray(X0, dtype=float)
    root_v = np.sqrt(np.asarray(v, dtype=float))
    support, lam = _min_norm_point(root_v[:, None] * (X0 - np.asarray(X1, dtype=float)[:, None]))
    return _scatter(X0.shape[1], support, lam)


class _Nested:
    """Outer loss and its gradient in ``log v``, warm-starting each inner solve."""

    def __init__(self, D: np.ndarray, Z1: np.ndarray, Z0: np.ndarray) -> None:
        self.D, self.Z1, self.Z0 = D, Z1, Z0  # D = X0 - X1 (standardised), (k, J)
        self.support: np.ndarray | None = None
        # The best point evaluated, kept whole: re-solving at its v could, at v ratios near
        # the floor, land on a different point within the inner tolerance.
        self.best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None

    def inner(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        support, lam = _min_norm_point(np.sqrt(v)[:, None] * self.D, self.support)
        self.support = support
        return support, lam

    def __call__(self, log_v: np.ndarray) -> tuple[float, np.ndarray]:
        # Below the floor v is held at the floor, with zero gradient: tinier ratios only make
        # the inner problem ill-conditioned without changing w noticeably.
        shifted = log_v - log_v.max()
        floored = shifted < _LOG_V_FLOOR
        v = np.exp(np.where(floored, _LOG_V_FLOOR, shifted))
        v /= v.sum()
        support, lam = self.inner(v)
        ZS = self.Z0[:, support]
        resid = self.Z1 - ZS @ lam
        T0 = len(self.Z1)
        loss = float(resid @ resid) / T0
        if self.best is None or loss < self.best[0]:
            self.best = (loss, v, support, lam)
        # Adjoint of the inner KKT system on the current support:
        # [DS' V DS, 1; 1', 0] [dw; dmu] = -[DS' e_i r_i; 0] for each predictor i, r = DS w.
        DS = self.D[:, support]
        r = DS @ lam
        s = len(support)
        K = np.zeros((s + 1, s + 1))
        K[:s, :s] = DS.T @ (v[:, None] * DS)
        K[:s, s] = K[s, :s] = 1.0
        rhs = np.concatenate((-2.0 * ZS.T @ resid / T0, [0.0]))
        try:
            adj = np.linalg.solve(K, rhs)[:s]
        except np.linalg.LinAlgError:  # a v at the floor can make the support degenerate
            adj = np.linalg.lstsq(K, rhs, rcond=None)[0][:s]
        grad_v = -(DS @ adj) * r
        grad = v * (grad_v - v @ grad_v)  # chain rule through v = softmax(log v)
        grad[floored] = 0.0
        return loss, grad


def _standardise(X1: np.ndarray, X0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = np.column_stack([X0, X1]).std(axis=1, ddof=1)  # pandas' default, as pysyncon
    sd = np.where(sd > 0, sd, 1.0)  # a constant predictor carries no information; keep it
    return X1 / sd, X0 / sd[:, None]


def _regression_v(
    X1: np.ndarray, X0: np.ndarray, Z1: np.ndarray, Z0: np.ndarray
) -> np.ndarray | None:
    """``Synth``'s regression start: squared coefficients of the outcomes on the predictors."""
    X = np.column_stack([np.ones(X0.shape[1] + 1), np.column_stack([X0, X1]).T])
    Z = np.column_stack([Z0, Z1]).T
    beta, _, rank, _ = np.linalg.lstsq(X, Z, rcond=None)
    if rank < X.shape[1]:
        return None  # collinear predictors: pysyncon raises here; we just skip this start
    v = np.einsum("ij,ij->i", beta[1:], beta[1:])
    return v / v.sum() if v.sum() > 0 else None


def _hull_fit(
    X1: np.ndarray, X0: np.ndarray, Z1: np.ndarray, Z0: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """``min mean((Z1 - Z0 w)²)`` over the simplex subject to ``X0 w = X1``.

    A primal active-set method (Lawson & Hanson's, with the equality constraints in the KKT
    system), started from ``w``, a feasible point: the inner solution, which matches ``X1``.
    """
    J = X0.shape[1]
    A = (Z0 - Z1[:, None]) / np.sqrt(len(Z1))  # A w = Z0 w - Z1 on the simplex
    C = np.vstack([X0 - X1[:, None], np.ones(J)])
    m = C.shape[0]
    d = np.zeros(m)
    d[-1] = 1.0
    w = w.copy()
    free = w > 0
    tol = 1e-12 * max(float(np.einsum("ij,ij->j", A, A).max()), 1e-300)
    for _ in range(10 * J + 100):
        F = np.flatnonzero(free)
        AF, CF = A[:, F], C[:, F]
        s = len(F)
        KKT = np.block([[AF.T @ AF, CF.T], [CF, np.zeros((m, m))]])
        sol = np.linalg.lstsq(KKT, np.concatenate((np.zeros(s), d)), rcond=None)[0]
        u, nu = sol[:s], sol[s:]
        if u.min() < 0:
            # Step toward u until a weight reaches zero; it leaves the free set.
            step = w[F] - u
            blocked = (u < 0) & (step > 0)
            theta = min(1.0, float(np.min(w[F][blocked] / step[blocked])))
            if theta <= 0.0:  # rounding turned the weight just freed negative: converged
                break
            w[F] -= theta * step
            w[F[w[F] <= 1e-15]] = 0.0
            free = w > 0
            continue
        w[F] = u
        # Multipliers of w >= 0 for the fixed weights; all >= 0 means optimal.
        mu = A.T @ (A @ w) + C.T @ nu
        mu[free] = np.inf
        j = int(np.argmin(mu))
        if mu[j] >= -tol:
            break
        free[j] = True
    return w / w.sum()


def fit_adh(
    X1: np.ndarray,
    X0: np.ndarray,
    Z1: np.ndarray,
    Z0: np.ndarray,
    *,
    v_method: Literal["nested", "equal"] = "nested",
    standardize: bool = True,
    seed: int = 0,
) -> AdhFit:
    """Synthetic control weights with predictor weights ``v`` chosen by the nested problem.

    ``X1`` (k,) treated predictors, ``X0`` (k, J) donor predictors, ``Z1`` (T0,) treated
    pre-period outcomes, ``Z0`` (T0, J) donors' pre-period outcomes. ``"nested"`` chooses ``v``
    to minimise the pre-period outcome MSPE of the synthetic unit built with
    ``solve_w(X1, X0, v)`` (the outer problem of R ``Synth`` / ``pysyncon``), by BFGS on
    ``log v`` from k + 4 starts (two ``seed``-ed random), keeping the best point evaluated;
    ``"equal"`` uses ``v = 1/k``. ``standardize`` divides each predictor row by its sd across
    treated and donors first, as R ``Synth`` and ``pysyncon`` do.

    If ``X1`` is inside the donors' convex hull (zero predictor gap for every ``v``), the
    weights are those with the smallest pre-period MSPE among all that match ``X1`` exactly,
    and ``v`` is reported as ``1/k`` (it is not identified); see the module docstring.

    Examples
    --------
    >>> X0 = np.array([[1.0, 2.0, 3.0, 5.0], [2.0, 1.0, 4.0, 4.0]])
    >>> Z0 = np.array([[1.0, 2.0, 3.0, 5.0], [1.5, 2.5, 3.5, 4.0], [2.0, 2.0, 3.0, 6.0]])
    >>> fit = fit_adh(np.array([6.0, 5.0]), X0, np.array([5.5, 4.6, 6.5]), Z0)
    >>> fit.weights.round(4).tolist(), round(fit.pre_mspe, 4), round(float(fit.v.sum()), 12)
    ([0.0, 0.0, 0.0, 1.0], 0.2867, 1.0)
    """
    X1, X0 = np.asarray(X1, dtype=float), np.asarray(X0, dtype=float)
    Z1, Z0 = np.asarray(Z1, dtype=float), np.asarray(Z0, dtype=float)
    k, J = X0.shape
    if X1.shape != (k,) or Z0.shape != (len(Z1), J):
        raise ValueError(f"shapes X1 {X1.shape}, X0 {X0.shape}, Z1 {Z1.shape}, Z0 {Z0.shape}")
    if v_method not in ("nested", "equal"):
        raise ValueError(f"v_method must be 'nested' or 'equal', not {v_method!r}")
    X1s, X0s = _standardise(X1, X0) if standardize else (X1, X0)
    D = X0s - X1s[:, None]
    equal = np.full(k, 1.0 / k)

    def result(w: np.ndarray, v: np.ndarray) -> AdhFit:
        gap = Z1 - Z0 @ w
        return AdhFit(w, v, float(gap @ gap) / len(Z1), X1 - X0 @ w)

    support, lam = _min_norm_point(np.sqrt(equal)[:, None] * D)
    x = np.sqrt(equal)[:, None] * D[:, support] @ lam
    if x @ x <= _HULL_TOL * max(float(np.einsum("ij,ij->", D, D)) / J, 1e-300):
        return result(_hull_fit(X1s, X0s, Z1, Z0, _scatter(J, support, lam)), equal)
    if v_method == "equal" or k == 1:
        return result(_scatter(J, support, lam), equal)

    objective = _Nested(D, Z1, Z0)
    starts = [equal]
    regression = _regression_v(X1s, X0s, Z1, Z0)
    if regression is not None:
        starts.append(regression)
    # Optima often sit near a face of the v simplex (one predictor dominating, the others only
    # breaking ties), so each predictor also gets a start where it carries 90% of the weight.
    for i in range(k):
        corner = np.full(k, 0.1 / (k - 1))
        corner[i] = 0.9
        starts.append(corner)
    rng = np.random.default_rng(seed)
    starts.extend(rng.dirichlet(np.ones(k), size=_RANDOM_STARTS))
    for start in starts:
        log_start = np.log(np.maximum(start / start.max(), np.exp(_LOG_V_FLOOR)))
        minimize(
            objective, log_start, jac=True, method="BFGS", options={"maxiter": 500, "gtol": 1e-6}
        )
    assert objective.best is not None  # every start evaluates at least once
    _, v, support, lam = objective.best
    return result(_scatter(J, support, lam), v)


def placebo_in_space(
    Y: np.ndarray,
    X: np.ndarray,
    treated: int,
    T0: int,
    *,
    v_method: Literal["nested", "equal"] = "nested",
    seed: int = 0,
) -> PlaceboSpace:
    """Refit with each unit in turn as the treated one; rank the real unit by post/pre RMSPE.

    ``Y`` (N, T) outcomes of all units (treated row included), ``X`` (k, N) predictors,
    ``treated`` the row of the real treated unit, ``T0`` the number of pre-periods (the outer
    loss uses those). The real treated unit uses all others as donors; each placebo unit uses
    all others except the real treated unit, whose post-period outcomes carry the effect (as in
    Abadie, Diamond & Hainmueller 2010 and ``pysyncon.PlaceboTest``). Ties in the ratio count
    against the treated unit; a perfect pre-period fit gives an infinite ratio.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> Y = rng.normal(size=(6, 8)).cumsum(axis=1)
    >>> Y[0, 5:] += 10.0
    >>> out = placebo_in_space(Y, Y[:, :5].T, 0, 5, v_method="equal")
    >>> out.rank, round(out.p_value, 3)
    (1, 0.167)
    """
    Y, X = np.asarray(Y, dtype=float), np.asarray(X, dtype=float)
    N, T = Y.shape
    if X.shape[1] != N or not 0 <= treated < N or not 0 < T0 < T:
        raise ValueError(f"shapes Y {Y.shape}, X {X.shape}, treated {treated}, T0 {T0}")
    gaps = np.empty((N, T))
    for unit in range(N):
        donors = [j for j in range(N) if j != unit and (unit == treated or j != treated)]
        fit = fit_adh(
            X[:, unit], X[:, donors], Y[unit, :T0], Y[donors, :T0].T, v_method=v_method, seed=seed
        )
        gaps[unit] = Y[unit] - fit.weights @ Y[donors]
    pre = np.sqrt(np.mean(gaps[:, :T0] ** 2, axis=1))
    post = np.sqrt(np.mean(gaps[:, T0:] ** 2, axis=1))
    with np.errstate(divide="ignore"):
        ratio = np.where(pre > 0, post / np.where(pre > 0, pre, 1.0), np.inf)
    rank = int(np.sum(ratio >= ratio[treated]))
    return PlaceboSpace(gaps, pre, post, ratio, rank, rank / N)
