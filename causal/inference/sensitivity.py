"""Sensitivity of an estimate to unmeasured confounding.

Cinelli & Hazlett (2020), "Making sense of sensitivity: extending omitted variable bias",
JRSS-B 82(1): 39–67. For an OLS coefficient, how strong (in partial R²) a confounder Z would
have to be to move the estimate: robustness values, bias-adjusted estimates, bounds from
observed benchmark covariates, and contour data. Formulas follow R ``sensemakr``. E-values
(the risk-ratio scale) are in :mod:`causal.inference.evalue`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, stats

from causal.errors import DesignError


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    x = float(value)
    return x if math.isfinite(x) else None  # JSON has no NaN/inf


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """Field name → value; nested records become dicts, tuples lists, NaN/inf ``None``."""
        return _json(self)


@dataclasses.dataclass(frozen=True)
class Bound(_Record):
    """A confounder ``kd`` times as strong as ``benchmark`` with D, ``ky`` times with Y."""

    label: str
    benchmark: str
    kd: float
    ky: float
    r2dz_x: float
    r2yz_dx: float
    adjusted_estimate: float
    adjusted_se: float
    adjusted_t: float
    adjusted_lower: float
    adjusted_upper: float


@dataclasses.dataclass(frozen=True)
class SensitivityResult(_Record):
    """Estimate, sensitivity statistics and benchmark bounds of one treatment coefficient."""

    treatment: str
    estimate: float
    se: float
    t_value: float
    dof: int
    r2yd_x: float  # partial R² of the treatment with the outcome
    f2yd_x: float  # Cohen's partial f²
    rv_q: float
    rv_qa: float
    q: float
    alpha: float
    reduce: bool
    bounds: tuple[Bound, ...] = ()


def robustness_value(
    t_value: float, dof: int, *, q: float = 1.0, alpha: float | None = None
) -> float:
    """Robustness value RV_q, or RV_{q,α} when ``alpha`` is given (Cinelli & Hazlett 2020, §4).

    The partial R² that a confounder would need with both treatment and outcome to reduce the
    estimate by 100·q % (RV_q), or to make the adjusted (1 − α) interval reach that value.

    Examples
    --------
    >>> round(robustness_value(4.18445, 783), 4)
    0.1388
    >>> round(robustness_value(4.18445, 783, alpha=0.05), 4)
    0.0763
    """
    _check_dof(dof)
    if not q > 0:
        raise DesignError(f"q must be > 0 (the share of the estimate to explain away), got {q}")
    fq = q * abs(t_value) / math.sqrt(dof)
    f_crit = 0.0
    if alpha is not None:
        _check_alpha(alpha)
        # dof − 1: the long regression that includes Z spends one more degree of freedom.
        f_crit = abs(float(stats.t.ppf(alpha / 2, dof - 1))) / math.sqrt(dof - 1)
    fqa = fq - f_crit
    if fqa <= 0:
        return 0.0
    if f_crit > 0 and fq > 1 / f_crit:  # the r2yz_dx ≤ 1 constraint binds
        return (fq**2 - f_crit**2) / (1 + fq**2)
    return 0.5 * (math.sqrt(fqa**4 + 4 * fqa**2) - fqa**2)


def sensitivity_stats(
    estimate: float,
    se: float,
    dof: int,
    *,
    treatment_name: str = "treatment",
    q: float = 1.0,
    alpha: float = 0.05,
    reduce: bool = True,
) -> SensitivityResult:
    """Partial R², partial f², RV_q and RV_{q,α} from a coefficient, its classical SE and dof.

    Examples
    --------
    >>> s = sensitivity_stats(0.09731582, 0.02325654, 783)
    >>> round(s.t_value, 3), round(s.r2yd_x, 4), round(s.rv_q, 4), round(s.rv_qa, 4)
    (4.184, 0.0219, 0.1388, 0.0763)
    """
    _check_dof(dof)
    _check_alpha(alpha)
    if not (se > 0 and math.isfinite(se) and math.isfinite(estimate)):
        raise DesignError(f"need a finite estimate and a positive SE, got {estimate}, {se}")
    t = float(estimate) / float(se)
    return SensitivityResult(
        treatment=treatment_name,
        estimate=float(estimate),
        se=float(se),
        t_value=t,
        dof=int(dof),
        r2yd_x=t**2 / (t**2 + dof),
        f2yd_x=t**2 / dof,
        rv_q=robustness_value(t, dof, q=q),
        rv_qa=robustness_value(t, dof, q=q, alpha=alpha),
        q=float(q),
        alpha=float(alpha),
        reduce=bool(reduce),
    )


def adjusted_estimate(
    r2dz_x: ArrayLike,
    r2yz_dx: ArrayLike,
    *,
    estimate: float,
    se: float,
    dof: int,
    reduce: bool = True,
) -> float | np.ndarray:
    """Estimate corrected for a confounder with partial R²s ``r2dz_x`` (with D given X) and
    ``r2yz_dx`` (with Y given D, X): |bias| = se·√dof·√(r2yz_dx·r2dz_x / (1 − r2dz_x)).

    ``reduce=True`` (the default, as in sensemakr) moves the estimate towards zero (and past
    it); ``reduce=False`` away from zero.

    Examples
    --------
    >>> round(adjusted_estimate(0.05, 0.05, estimate=0.09731582, se=0.02325654, dof=783), 5)
    0.06393
    """
    a, b = _r2_pair(r2dz_x, r2yz_dx)
    bias = np.sqrt(b * a / (1 - a)) * se * math.sqrt(dof)
    out = np.sign(estimate) * (abs(estimate) + (-bias if reduce else bias))
    return float(out) if out.ndim == 0 else out


def adjusted_se(
    r2dz_x: ArrayLike, r2yz_dx: ArrayLike, *, se: float, dof: int
) -> float | np.ndarray:
    """Classical SE of the long regression that includes such a confounder (one fewer dof).

    Examples
    --------
    >>> round(adjusted_se(0.05, 0.05, se=0.02325654, dof=783), 5)
    0.02327
    """
    a, b = _r2_pair(r2dz_x, r2yz_dx)
    out = np.sqrt((1 - b) / (1 - a)) * se * math.sqrt(dof / (dof - 1))
    return float(out) if out.ndim == 0 else out


def omitted_variable_bias(
    y: ArrayLike,
    d: ArrayLike,
    X: ArrayLike,
    *,
    names: Sequence[str],
    treatment_name: str,
    alpha: float = 0.05,
    q: float = 1.0,
    benchmarks: Sequence[str] = (),
    kd: float | Sequence[float] = (1, 2, 3),
    ky: float | Sequence[float] | None = None,
    reduce: bool = True,
) -> SensitivityResult:
    """Cinelli–Hazlett sensitivity of the OLS coefficient of ``d`` in ``y ~ 1 + d + X``.

    Classical (homoskedastic) SEs, as in the paper. For each benchmark covariate X_j and each
    pair (kd, ky) the bound is on a confounder kd times as strong as X_j with the treatment and
    ky times with the outcome (§6.2 and footnote 10), with the estimate, SE, t and (1 − α)
    interval adjusted for it. ``ky`` defaults to ``kd``.

    Parameters
    ----------
    y, d : arrays of length n (outcome, treatment).
    X : n × p covariates, without the intercept (fixed effects as dummy columns).
    names : p column names of ``X``; ``benchmarks`` must be among them.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(200, 2))
    >>> d = X @ [0.5, 0.2] + rng.normal(size=200)
    >>> y = 1.0 * d + X @ [0.5, 0.3] + rng.normal(size=200)
    >>> res = omitted_variable_bias(y, d, X, names=["x1", "x2"], treatment_name="d",
    ...                             benchmarks=["x1"], kd=[1, 2])
    >>> round(res.estimate, 2), res.dof, round(res.rv_q, 2), round(res.rv_qa, 2)
    (1.0, 196, 0.6, 0.54)
    >>> [(b.label, round(b.adjusted_estimate, 3)) for b in res.bounds]
    [('1x x1', 0.758), ('2x x1', 0.394)]
    """
    y, d, X, names = _design(y, d, X, names, treatment_name)
    r, est, se, dof = _fit(y, d, X, names, treatment_name)
    opts = {"q": q, "alpha": alpha, "reduce": reduce}
    res = sensitivity_stats(est, se, dof, treatment_name=treatment_name, **opts)
    kds, kys = _multipliers(kd, ky)
    bounds = []
    for name in _benchmarks(benchmarks, names):
        r2dxj, r2yxj = _benchmark_r2(r, names.index(name))
        for k_d, k_y in zip(kds, kys, strict=True):
            r2dz, r2yz = _benchmark_bound(r2dxj, r2yxj, k_d, k_y, name)
            adjusted = _adjusted(res, r2dz, r2yz)
            bounds.append(Bound(_label(name, k_d, k_y), name, k_d, k_y, r2dz, r2yz, *adjusted))
    return dataclasses.replace(res, bounds=tuple(bounds))


def _adjusted(res: SensitivityResult, r2dz: float, r2yz: float) -> tuple[float, ...]:
    """Adjusted estimate, SE, t and (1 − α) interval; the interval uses t(dof) as sensemakr."""
    est = adjusted_estimate(
        r2dz, r2yz, estimate=res.estimate, se=res.se, dof=res.dof, reduce=res.reduce
    )
    se = adjusted_se(r2dz, r2yz, se=res.se, dof=res.dof)
    with np.errstate(divide="ignore", invalid="ignore"):  # se is 0 when r2yz_dx is capped at 1
        t = float(np.divide(est, se))  # ±inf then, as R and PySensemakr
    crit = float(stats.t.isf(res.alpha / 2, res.dof))
    return est, se, t, est - crit * se, est + crit * se


@dataclasses.dataclass(frozen=True)
class ContourGrid(_Record):
    """Adjusted estimate and t on a grid, for the Cinelli–Hazlett contour plot.

    ``estimate[i][j]`` and ``t_value[i][j]`` are at ``r2dz_x[j]`` (x axis) and ``r2yz_dx[i]``
    (y axis), the layout ``matplotlib.contour(x, y, Z)`` expects. ``t_value`` is
    (adjusted estimate − ``estimate_threshold``) / adjusted SE; ``t_threshold`` is the critical
    value with dof − 1, so its contour passes through (RV_{q=1,α}, RV_{q=1,α}) when
    ``estimate_threshold`` is 0 and ``reduce`` is true.
    """

    r2dz_x: tuple[float, ...]
    r2yz_dx: tuple[float, ...]
    estimate: tuple[tuple[float, ...], ...]
    t_value: tuple[tuple[float, ...], ...]
    unadjusted_estimate: float
    unadjusted_t: float
    estimate_threshold: float
    t_threshold: float
    reduce: bool
    benchmarks: tuple[Bound, ...]


def contour_grid(
    result: SensitivityResult,
    *,
    lim: float | None = None,
    lim_y: float | None = None,
    n: int = 101,
    estimate_threshold: float = 0.0,
) -> ContourGrid:
    """Contour data on [0, lim] × [0, lim_y], ``n`` points a side, with the benchmark points.

    Limits default as in sensemakr: 0.4, or 1.2 × the largest benchmark partial R², below 1.

    Examples
    --------
    >>> g = contour_grid(sensitivity_stats(0.09731582, 0.02325654, 783), n=5)
    >>> [round(x, 2) for x in g.r2dz_x]
    [0.0, 0.1, 0.2, 0.3, 0.4]
    >>> round(g.estimate[0][0], 4), round(g.estimate[1][1], 4)
    (0.0973, 0.0287)
    """
    if n < 2:
        raise DesignError(f"the grid needs at least 2 points a side, got n={n}")
    b = result.bounds
    lim = _limit(lim, [x.r2dz_x for x in b])
    lim_y = _limit(lim_y, [x.r2yz_dx for x in b])
    xs, ys = np.linspace(0.0, lim, n), np.linspace(0.0, lim_y, n)
    gx, gy = np.meshgrid(xs, ys)  # rows follow r2yz_dx
    est = adjusted_estimate(
        gx, gy, estimate=result.estimate, se=result.se, dof=result.dof, reduce=result.reduce
    )
    t = (est - estimate_threshold) / adjusted_se(gx, gy, se=result.se, dof=result.dof)
    grid = (tuple(xs.tolist()), tuple(ys.tolist()), _rows(est), _rows(t))
    t0 = (result.estimate - estimate_threshold) / result.se
    crit = float(stats.t.isf(result.alpha / 2, result.dof - 1))
    h0 = float(estimate_threshold)
    return ContourGrid(*grid, result.estimate, t0, h0, crit, result.reduce, b)


def _rows(z: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(map(tuple, z.tolist()))


# --- OLS and checks -------------------------------------------------------------------------


def _fit(y, d, X, names: list[str], treat: str) -> tuple[np.ndarray, float, float, int]:
    """R of [1, X, d, y], and the coefficient, classical SE and dof of d in y ~ 1 + X + d."""
    # One Householder QR of [1, X, d, y] holds both regressions (d on [1, X], y on [1, X, d]);
    # it is backward stable, and no n × n Q is formed.
    a = np.column_stack([np.ones(len(y)), X, d, y])
    r = linalg.qr(a, mode="r")[0][: a.shape[1]]
    scale = np.linalg.norm(a, axis=0)
    labels = ["the intercept", *(f"covariate {n!r}" for n in names), treat, "the outcome"]
    for i in np.flatnonzero(np.abs(np.diag(r)) <= 1e-10 * np.maximum(scale, 1e-300)):
        if i == len(labels) - 1:
            raise DesignError("the outcome is fitted exactly by [1, X, d]: no residual variance")
        if i == len(labels) - 2:
            raise DesignError(
                f"the treatment {treat!r} is a linear combination of the covariates;"
                " nothing is left to estimate its effect from"
            )
        raise DesignError(
            f"{labels[i]} is collinear with the columns before it in [1, X]; drop "
            "redundant covariates (e.g. keep one dummy fewer than levels)"
        )
    k = a.shape[1] - 1
    dof = len(y) - k
    sigma = abs(r[k, k]) / math.sqrt(dof)
    return r, float(r[k - 1, k] / r[k - 1, k - 1]), float(sigma / abs(r[k - 1, k - 1])), dof


def _benchmark_r2(r: np.ndarray, j: int) -> tuple[float, float]:
    """Partial R² of covariate j with d (given the other X) and with y (given d and the other
    X), t²/(t² + dof) in d ~ 1 + X and y ~ 1 + X + d; with t² = dof·b²/(RSS·[(X'X)⁻¹]_jj)
    the dof cancels: R² = f²/(1 + f²), f² = b²/(RSS·[(X'X)⁻¹]_jj)."""
    k = r.shape[1] - 2  # columns of [1, X]
    r2 = []
    for cols in (k, k + 1):
        rr = r[:cols, :cols]
        coef = linalg.solve_triangular(rr, r[:cols, cols])
        row = linalg.solve_triangular(rr.T, np.eye(cols)[j + 1], lower=True)  # row j+1 of R⁻¹
        f2 = coef[j + 1] ** 2 / (r[cols, cols] ** 2 * (row @ row))
        r2.append(float(f2 / (1 + f2)))
    return r2[0], r2[1]


def _design(y, d, X, names, treat) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    y, d, X = (np.asarray(v, dtype=float) for v in (y, d, X))
    if X.ndim == 1 and X.size == 0:
        X = X.reshape(len(y), 0)
    names = list(names)
    if y.ndim != 1 or d.shape != y.shape or X.ndim != 2 or X.shape[0] != y.size:
        raise DesignError(
            f"y and d must be 1-D of equal length and X n × p; got shapes "
            f"{y.shape}, {d.shape}, {X.shape}"
        )
    if len(names) != X.shape[1] or len(set(names)) != len(names) or treat in names:
        raise DesignError(
            f"names must give each of the {X.shape[1]} columns of X a distinct "
            f"name other than the treatment {treat!r}; got {names[:10]}"
        )
    for label, v in (("y", y), ("d", d), ("X", X)):
        if not np.isfinite(v).all():
            raise DesignError(f"{label} has missing or infinite values; drop those rows first")
    dof = y.size - X.shape[1] - 2
    if dof < 2:
        raise DesignError(
            f"no residual degrees of freedom to spare: {y.size} rows for "
            f"{X.shape[1] + 2} coefficients (intercept, treatment, {X.shape[1]} "
            "covariates); need at least 2 more rows than coefficients"
        )
    return y, d, X, names


def _benchmarks(benchmarks: Sequence[str] | str, names: list[str]) -> list[str]:
    chosen = [benchmarks] if isinstance(benchmarks, str) else list(benchmarks)
    unknown = [b for b in chosen if b not in names]
    if unknown:
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise DesignError(
            f"benchmark covariate(s) {unknown} are not among the covariates; choose from: {shown}"
        )
    return chosen


def _multipliers(kd, ky) -> tuple[list[float], list[float]]:
    # A single multiplier pairs with each of the other's, as R's recycling does.
    try:
        kds, kys = np.broadcast_arrays(np.atleast_1d(kd), np.atleast_1d(kd if ky is None else ky))
        kds, kys = kds.astype(float).tolist(), kys.astype(float).tolist()
    except (ValueError, TypeError):
        kds = kys = []
    if not kds or min(kds + kys) <= 0 or np.ndim(kd) > 1 or np.ndim(ky) > 1:
        raise DesignError(
            f"kd and ky must be positive numbers or equal-length lists of them, got {kd}, {ky}"
        )
    return kds, kys


def _benchmark_bound(r2dxj: float, r2yxj: float, kd: float, ky: float, name: str):
    # Cinelli & Hazlett (2020), eq. (6.2)-(6.4) and footnote 10, as in sensemakr.
    r2dz = kd * r2dxj / (1 - r2dxj)
    if r2dz >= 1:
        raise DesignError(
            f"kd = {kd:g} times {name!r} implies R²(D~Z|X) ≥ 1; use kd < {(1 - r2dxj) / r2dxj:.3g}"
        )
    r2zxj = kd * r2dxj**2 / ((1 - kd * r2dxj) * (1 - r2dxj))
    r2yz = ((math.sqrt(ky) + math.sqrt(r2zxj)) / math.sqrt(1 - r2zxj)) ** 2 * r2yxj / (1 - r2yxj)
    if r2yz > 1:
        warnings.warn(
            f"{_label(name, kd, ky)}: implied R²(Y~Z|D,X) > 1, set to 1; try lower kd or ky",
            stacklevel=3,
        )
        r2yz = 1.0
    return float(r2dz), float(r2yz)


def _label(name: str, kd: float, ky: float) -> str:
    return f"{kd:g}x {name}" if kd == ky else f"{kd:g}/{ky:g}x {name}"


def _r2_pair(r2dz_x: ArrayLike, r2yz_dx: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(r2dz_x, dtype=float), np.asarray(r2yz_dx, dtype=float)
    if not (((a >= 0) & (a < 1)).all() and ((b >= 0) & (b <= 1)).all()):
        raise DesignError("partial R² values must lie in [0, 1] (r2dz_x below 1)")
    return a, b


def _limit(lim: float | None, values: list[float]) -> float:
    if lim is None:
        lim = max([0.4, *(1.2 * v for v in values)])
    if not lim > 0:
        raise DesignError(f"the contour limit must be positive (at most 1), got {lim}")
    return min(lim, 1 - 1e-12)


def _check_dof(dof: int) -> None:
    if not (dof >= 2 and float(dof).is_integer()):
        raise DesignError(f"need an integer of at least 2 residual degrees of freedom, got {dof}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha <= 1:
        raise DesignError(f"alpha must be in (0, 1], got {alpha}")
