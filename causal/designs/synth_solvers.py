"""Synthetic DiD, synthetic control and DiD weights after R ``synthdid`` (Arkhangelsky et al. 2021)

The unit weights ω and time weights λ solve penalised least-squares problems on the simplex
with Frank–Wolfe, exactly as R ``synthdid`` 0.0.9 does (``sc.weight.fw``): start uniform, at most
100 iterations, zero the weights ≤ max/4 and renormalise (``sparsify``), then iterate again to
convergence. The published Table 1 numbers are the output of that algorithm, not of the exact
optimum, so the algorithm is reproduced step for step.

Everything is batched over a leading axis: the placebo standard error refits hundreds of
problems of the same shape, and doing them together in one numpy loop is what makes it fast.
Each step uses the Gram matrix with rank-one updates, so it costs O(k) per problem rather than
O(n·k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["synthetic_did", "synthetic_control", "did"]


@dataclass(frozen=True)
class SynthdidFit:
    """Weights and estimate of one (or a batch of) synthdid-family fits."""

    estimate: np.ndarray  # (B,)
    omega: np.ndarray  # (B, N0) unit weights
    lam: np.ndarray  # (B, T0) time weights
    omega_intercept: bool


@dataclass(frozen=True)
class Settings:
    """Regularisation and stopping rules of one fit, kept to reuse in placebo refits."""

    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    omega_intercept: bool
    update_omega: bool
    update_lambda: bool
    zero_time_weights: bool = False  # synthetic control compares post-periods only
    max_iter: int = 10_000
    max_iter_pre_sparsify: int = 100


def frank_wolfe(
    A: np.ndarray,
    b: np.ndarray,
    *,
    zeta: float,
    intercept: bool = True,
    x0: np.ndarray | None = None,
    min_decrease: float = 1e-3,
    max_iter: int = 1000,
) -> np.ndarray:
    """Minimise ζ²‖x‖² + ‖A x − b‖²/n over the simplex by Frank–Wolfe (R ``sc.weight.fw``).

    Parameters
    ----------
    A, b
        ``(B, n, k)`` and ``(B, n)``: B independent problems (a 2-D ``A`` is one problem).
    zeta
        Ridge penalty ζ.
    intercept
        Centre A and b over the n rows first (a free constant in the fit).
    x0
        Starting weights ``(B, k)``; uniform by default.
    min_decrease, max_iter
        Stop a problem when its objective falls by less than ``min_decrease²`` in one step.

    Examples
    --------
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> frank_wolfe(A, np.array([0.25, 0.75, 0.0]), zeta=0.0, intercept=False,
    ...             min_decrease=1e-12).round(6)
    array([0.25, 0.75])
    """
    single = A.ndim == 2
    A = np.asarray(A, dtype=float)[None] if single else np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)[None] if single else np.asarray(b, dtype=float)
    n_batch, n, k = A.shape
    if intercept:
        A = A - A.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    x = np.full((n_batch, k), 1.0 / k) if x0 is None else np.array(x0, dtype=float, ndmin=2)
    eta = n * zeta**2
    gram = np.einsum("bnk,bnl->bkl", A, A)
    ab = np.einsum("bnk,bn->bk", A, b)
    bb = np.einsum("bn,bn->b", b, b)
    rows = np.arange(n_batch)
    gx = np.einsum("bkl,bl->bk", gram, x)
    active = np.ones(n_batch, dtype=bool)
    previous = np.full(n_batch, np.inf)
    for t in range(max_iter):
        half_grad = gx - ab + eta * x
        i = np.argmin(half_grad, axis=1)
        x_i = x[rows, i]
        grad_dot_d = half_grad[rows, i] - np.einsum("bk,bk->b", half_grad, x)
        xgx = np.einsum("bk,bk->b", x, gx)
        d_gram_d = gram[rows, i, i] - 2 * gx[rows, i] + xgx
        d_sq = 1 - 2 * x_i + np.einsum("bk,bk->b", x, x)
        denom = d_gram_d + eta * d_sq
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(denom > 0, -grad_dot_d / denom, 0.0)
        step = np.clip(step, 0.0, 1.0) * active  # finished problems stay where they are
        x = x * (1 - step)[:, None]
        x[rows, i] += step
        gx = gx * (1 - step)[:, None] + step[:, None] * gram[rows, :, i]
        value = (
            zeta**2 * np.einsum("bk,bk->b", x, x)
            + (np.einsum("bk,bk->b", x, gx) - 2 * np.einsum("bk,bk->b", ab, x) + bb) / n
        )
        if t >= 1:  # R stops once an iteration improves by no more than min_decrease²
            active &= previous - value > min_decrease**2
        previous = np.where(active, value, previous)
        if not active.any():
            break
    return x[0] if single else x


def sparsify(weights: np.ndarray) -> np.ndarray:
    """Zero weights at or below a quarter of the largest and renormalise (R ``sparsify_function``).

    Examples
    --------
    >>> sparsify(np.array([0.5, 0.1, 0.4]))
    array([0.55555556, 0.        , 0.44444444])
    """
    w = np.where(weights <= weights.max(axis=-1, keepdims=True) / 4, 0.0, weights)
    return w / w.sum(axis=-1, keepdims=True)


def collapsed_form(Y: np.ndarray, n0: int, t0: int) -> np.ndarray:
    """Controls' pre-periods, their post-period mean, and the treated units' average row.

    Y is ``(B, N, T)`` with controls first; returns ``(B, n0 + 1, t0 + 1)``.
    """
    controls, treated = Y[:, :n0], Y[:, n0:]
    top = np.concatenate([controls[:, :, :t0], controls[:, :, t0:].mean(2, keepdims=True)], 2)
    bottom = np.concatenate(
        [treated[:, :, :t0].mean(1), treated[:, :, t0:].mean((1, 2))[:, None]], 1
    )
    return np.concatenate([top, bottom[:, None, :]], axis=1)


def noise_level(Y: np.ndarray, n0: int, t0: int) -> float:
    """Standard deviation of the controls' first differences over the pre-period (ζ's scale)."""
    return float(np.std(np.diff(Y[:n0, :t0], axis=1), ddof=1))


def default_settings(kind: Kind, Y: np.ndarray, n0: int, t0: int) -> Settings:
    """R ``synthdid_estimate`` / ``sc_estimate`` / ``did_estimate`` defaults for this panel."""
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    sigma = noise_level(Y, n0, t0)
    eta_omega = 1e-6 if kind == "synthetic_control" else (n1 * t1) ** 0.25
    return Settings(
        zeta_omega=eta_omega * sigma,
        zeta_lambda=1e-6 * sigma,
        min_decrease=1e-5 * sigma,
        omega_intercept=kind != "synthetic_control",
        update_omega=kind != "did",
        update_lambda=kind == "synthetic_did",
        zero_time_weights=kind == "synthetic_control",
    )


def fit(
    Y: np.ndarray,
    n0: int,
    t0: int,
    settings: Settings,
    *,
    omega0: np.ndarray | None = None,
    lambda0: np.ndarray | None = None,
) -> SynthdidFit:
    """Fit weights and the estimate for a batch of panels ``Y`` (B, N, T), controls first.

    Weights that are not updated keep ``omega0`` / ``lambda0`` (uniform unit weights and, for
    synthetic control, zero time weights when not given).
    """
    Y = np.asarray(Y, dtype=float)
    Y = Y[None] if Y.ndim == 2 else Y
    n_batch, n, t = Y.shape
    yc = collapsed_form(Y, n0, t0)
    s = settings
    lam = _initial(lambda0, n_batch, t0, zero=s.zero_time_weights)
    omega = _initial(omega0, n_batch, n0)
    if s.update_lambda:
        lam = _two_stage(yc[:, :n0, :t0], yc[:, :n0, t0], s.zeta_lambda, True, lam, s)
    if s.update_omega:
        a = np.swapaxes(yc[:, :n0, :t0], 1, 2)  # rows: pre-periods, columns: controls
        omega = _two_stage(a, yc[:, n0, :t0], s.zeta_omega, s.omega_intercept, omega, s)
    unit = np.concatenate([-omega, np.full((n_batch, n - n0), 1.0 / (n - n0))], axis=1)
    time = np.concatenate([-lam, np.full((n_batch, t - t0), 1.0 / (t - t0))], axis=1)
    estimate = np.einsum("bn,bnt,bt->b", unit, Y, time)
    return SynthdidFit(estimate, omega, lam, s.omega_intercept)


def _two_stage(A, b, zeta, intercept, start, s: Settings) -> np.ndarray:
    first = frank_wolfe(
        A,
        b,
        zeta=zeta,
        intercept=intercept,
        x0=start,
        min_decrease=s.min_decrease,
        max_iter=s.max_iter_pre_sparsify,
    )
    return frank_wolfe(
        A,
        b,
        zeta=zeta,
        intercept=intercept,
        x0=sparsify(first),
        min_decrease=s.min_decrease,
        max_iter=s.max_iter,
    )


def _initial(given, n_batch: int, size: int, *, zero: bool = False) -> np.ndarray:
    if given is not None:
        return np.broadcast_to(np.asarray(given, dtype=float), (n_batch, size)).copy()
    return np.full((n_batch, size), 0.0 if zero else 1.0 / size)


def simplex_least_squares(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact minimiser of ‖A x − b‖² over the simplex, for comparison with Frank–Wolfe.

    Non-negative least squares (scipy's Lawson–Hanson, exact active set) with the sum-to-one
    constraint as a heavily weighted extra row; SLSQP stalls on the raw scale of sales data.

    Examples
    --------
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> simplex_least_squares(A, np.array([0.3, 0.7])).round(6)
    array([0.3, 0.7])
    """
    from scipy.optimize import nnls

    weight = 1e4 * max(float(np.abs(A).max()), 1.0)
    augmented = np.vstack([A, np.full((1, A.shape[1]), weight)])
    x, _ = nnls(augmented, np.append(b, weight), maxiter=50 * A.shape[1])
    return x / x.sum()
