"""Two-way fixed-effects regression pieces: within transformation and cluster-robust variance.

Written here rather than taken from pyfixest because they are the product: the DiD fast path
builds the same Gram matrix and cluster scores from cohort-level aggregates (see
:mod:`causal.designs.did_twfe`), and both paths must share one small-sample convention. The
convention is fixest's default (``ssc(adj = TRUE, fixef.K = "nested", cluster.adj = TRUE)``),
so the numbers agree with R fixest and pyfixest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal.errors import DesignError


@dataclass(frozen=True)
class ClusteredFit:
    """OLS coefficients with a CR1 covariance; t-based inference uses ``n_clusters - 1`` df."""

    names: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    n_obs: int
    n_clusters: int
    df_k: int
    dropped: tuple[str, ...] = ()  # covariates absorbed by the fixed effects

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    @property
    def df_t(self) -> int:
        return self.n_clusters - 1

    def index(self, name: str) -> int:
        return self.names.index(name)


def demean_two_way(
    values: np.ndarray,
    unit_code: np.ndarray,
    time_code: np.ndarray,
    *,
    balanced: bool,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Remove unit and period means from each column of ``values`` (rows are observations).

    Balanced panels use the closed form ``z - z̄_unit - z̄_period + z̄``; unbalanced ones
    alternate the two one-way demeanings until the largest change is below ``tol`` times the
    column scale (the method of alternating projections, Guimarães & Portugal 2010).

    Examples
    --------
    >>> u = np.array([0, 0, 1, 1, 2]); t = np.array([0, 1, 0, 1, 0])
    >>> z = demean_two_way(np.array([[1.0], [2], [3], [5], [4]]), u, t, balanced=False)
    >>> bool(np.allclose(np.bincount(u, z[:, 0]), 0) and np.allclose(np.bincount(t, z[:, 0]), 0))
    True
    """
    z = np.array(values, dtype=np.float64, copy=True)
    if z.ndim == 1:
        z = z[:, None]
    n_units, n_periods = int(unit_code.max()) + 1, int(time_code.max()) + 1
    unit_n = np.bincount(unit_code, minlength=n_units).astype(np.float64)
    time_n = np.bincount(time_code, minlength=n_periods).astype(np.float64)
    if balanced:
        for j in range(z.shape[1]):
            col = z[:, j]
            unit_mean = np.bincount(unit_code, col, n_units) / unit_n
            time_mean = np.bincount(time_code, col, n_periods) / time_n
            col -= unit_mean[unit_code] + time_mean[time_code] - col.mean()
        return z
    for j in range(z.shape[1]):
        col = z[:, j]
        scale = max(float(np.abs(col).max()), 1.0)
        for _ in range(max_iter):
            col -= (np.bincount(unit_code, col, n_units) / unit_n)[unit_code]
            shift = (np.bincount(time_code, col, n_periods) / time_n)[time_code]
            col -= shift
            if np.abs(shift).max() < tol * scale:
                break
        else:
            raise DesignError(
                f"the two-way demeaning did not converge in {max_iter} iterations; the panel may "
                "split into disconnected groups of units and periods"
            )
    return z


def fixest_df_k(n_coef: int, n_periods: int, n_units: int, *, units_nested: bool) -> int:
    """Parameters counted in the small-sample factor, as fixest's default ``fixef.K = "nested"``.

    Unit fixed effects nested in the clusters count as one; period effects count ``T - 1``.
    """
    unit_k = 1 if units_nested else n_units
    return n_coef + (unit_k + n_periods - 1)


def cr1_covariance(
    bread_inv: np.ndarray,
    cluster_scores: np.ndarray,
    *,
    n_obs: int,
    df_k: int,
) -> np.ndarray:
    """``G/(G-1) · (N-1)/(N-K) · (X'X)⁻¹ (Σ_g s_g s_g') (X'X)⁻¹`` from per-cluster scores."""
    n_clusters = cluster_scores.shape[0]
    if n_clusters < 2:
        raise DesignError("cluster-robust standard errors need at least two clusters")
    meat = cluster_scores.T @ cluster_scores
    adj = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - df_k)
    vcov = adj * bread_inv @ meat @ bread_inv
    return (vcov + vcov.T) / 2


def solve_gram(gram: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Inverse of X'X, with a clear error naming the regressors when they are collinear."""
    scale = np.sqrt(np.diag(gram))
    if np.any(scale == 0):
        dead = [n for n, s in zip(names, scale, strict=True) if s == 0]
        raise DesignError(f"regressor(s) {dead} are absorbed by the unit and period effects")
    normed = gram / np.outer(scale, scale)
    if np.linalg.cond(normed) > 1e12:
        raise DesignError(
            f"regressors {list(names)} are collinear with each other or with the fixed effects; "
            "narrow the event window or add never-treated units"
        )
    inv = np.linalg.inv(normed) / np.outer(scale, scale)
    return (inv + inv.T) / 2


def sum_by_cluster(scores: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Column sums of ``scores`` (rows: observations or units) within each cluster."""
    return np.column_stack(
        [np.bincount(cluster, scores[:, j], n_clusters) for j in range(scores.shape[1])]
    )
