"""Uplift-model evaluation: Qini and uplift curves, their normalised areas, a stratified
bootstrap and a binned calibration table.

Definitions follow scikit-uplift 0.5.1 (``sklift.metrics``) exactly; with ``weights=None`` every
curve and score equals sklift's to rounding:

- Units are sorted by score, highest first; a curve has one point per distinct score (tied units
  enter together) and starts at (0, 0). x is the number of units targeted.
- Qini: ``Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``; uplift: ``(Y_t(k)/N_t(k) - Y_c(k)/N_c(k)) * k``,
  where N are counts and Y outcome sums of the top k per arm; an arm not yet reached counts as 0.
- Perfect curves are sklift's: the Qini one ranks by ``y`` if treated and ``-y`` if control (its
  ``negative_effect=True``); the uplift one by ``2 * (y == t) + (y if CR > TN else t)``, with CR
  the control responders and TN the treated non-responders (a binary-outcome formula, applied
  literally to other outcomes).
- Coefficient = (area under the curve - baseline) / (area under the perfect curve - baseline),
  trapezoidal areas, baseline the straight line from (0, 0) to the perfect curve's last point;
  NaN when the perfect curve encloses no area (e.g. a constant outcome).

``weights`` (non-negative) turn counts into weight sums and outcome sums into weighted sums: use
them for inverse-propensity weights; integer weights equal duplicating rows, and units with
weight 0 are dropped. The bootstrap multiplies them by its resampling multiplicities.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from causal.errors import DesignError

if TYPE_CHECKING:
    import pandas as pd

_MEMORY_BUDGET = 160 * 2**20  # bytes of (replicates x units) arrays per bootstrap chunk
_MATRIX_BYTES = 64 * 2**20  # largest (units x 4 x groups) matrix for a perfect ordering
_BIN_COLUMNS = ("bin", "n", "n_treated", "n_control", "predicted_uplift", "observed_uplift")
_BIN_COLUMNS += ("std_error", "conf_low", "conf_high")


def _validate(y, score, treatment, weights):
    """Float arrays (y, score, t, w), w None without weights; DesignError on bad input."""
    given = {"y": y, "score": score, "treatment": treatment, "weights": weights}
    arrays = {}
    for name, values in ((k, v) for k, v in given.items() if v is not None):
        try:
            a = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DesignError(f"{name} must be numeric; pass a 1-D array of numbers.") from None
        if a.ndim != 1:
            raise DesignError(f"{name} must be 1-D (got shape {a.shape}); pass one value per unit.")
        if bad := np.count_nonzero(~np.isfinite(a)):
            raise DesignError(
                f"{name} has {bad} non-finite value(s) (NaN or inf); drop or impute those units "
                "before evaluating."
            )
        arrays[name] = a
    sizes = {name: a.size for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        got = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise DesignError(f"lengths differ ({got}); pass one value per held-out unit in each.")
    t, w = arrays["treatment"], arrays.get("weights")
    if not np.all((t == 0) | (t == 1)):
        raise DesignError(
            f"treatment must be 0/1 (got values {np.unique(t)[:5].tolist()}); recode the arm "
            "indicator as 1 = treated, 0 = control."
        )
    if w is not None and (neg := np.count_nonzero(w < 0)):
        raise DesignError(
            f"weights must be non-negative ({neg} are negative); pass sampling or "
            "inverse-propensity weights (>= 0), e.g. 1 / p for treated and 1 / (1 - p) for control."
        )
    for arm, mask in (("treated", t == 1), ("control", t == 0)):
        if not np.any(mask if w is None else mask & (w > 0)):
            raise DesignError(
                f"the held-out data has no {arm} units (or all their weights are 0); uplift "
                "metrics compare the arms, so evaluate on a sample with both treated and control."
            )
    if w is not None and not np.all(w > 0):  # a unit with weight 0 is not in the sample
        keep = w > 0
        return tuple(
            None if a is None else a[keep] for a in (arrays["y"], arrays.get("score"), t, w)
        )
    return arrays["y"], arrays.get("score"), t, w


class _Plan:
    """A descending ordering by ``keys``; ``sums`` gives cumulative (N_t, N_c, Y_t, Y_c) at each
    tie group's end: (G,) arrays, or (replicates, G) for multiplicities ``counts`` (replicates x
    units). Each arm is cumulated over its own units (the nonzero terms of a cumulative sum over
    all units). For ``replicates``, with few tie groups (binary-outcome perfect orderings), a
    matrix turns the replicates' group sums into one matrix product."""

    def __init__(self, keys, y, t, w, *, replicates: bool = False):
        order = np.argsort(keys)[::-1]
        k = keys[order]
        thr = np.r_[np.flatnonzero(k[1:] != k[:-1]), k.size - 1]
        self.groups, treated = thr.size, (t == 1)[order]
        reached = np.cumsum(treated)  # treated units among the top k + 1
        reached = reached if thr.size == k.size else reached[thr]
        self.arms = []
        for idx, pos in ((order[treated], reached - 1), (order[~treated], thr - reached)):
            if replicates and k.size < 2**31:  # kept for all chunks: halve the memory
                idx, pos = idx.astype(np.int32), pos.astype(np.int32)
            wa = None if w is None else w[idx]  # None: unit weights
            self.arms.append((idx, pos, wa, y[idx] if w is None else wa * y[idx]))
        self.matrix = None
        if replicates and 32 * self.groups * y.size <= _MATRIX_BYTES:
            group = np.empty(y.size, np.int64)
            group[order] = np.repeat(np.arange(self.groups), np.diff(np.r_[-1, thr]))
            m, rows = np.zeros((y.size, 4, self.groups)), np.arange(y.size)
            w = 1.0 if w is None else w
            for q, part in enumerate((w * t, w * (1 - t), w * t * y, w * (1 - t) * y)):
                m[rows, q, group] = part
            self.matrix = m.reshape(y.size, -1)

    def sums(self, counts=None):
        if counts is not None and self.matrix is not None:
            s = np.cumsum((counts @ self.matrix).reshape(-1, 4, self.groups), axis=2)
            return s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        out = []
        for idx, pos, w, wy in self.arms:
            if counts is None:
                cum_n = np.arange(1.0, idx.size + 1) if w is None else np.cumsum(w)
                cum_y = np.cumsum(wy)
            else:
                cum_n = np.take(counts, idx, axis=1)
                cum_y = np.cumsum(np.multiply(cum_n, wy, out=np.empty_like(cum_n)), axis=1)
                if w is not None:
                    np.multiply(cum_n, w, out=cum_n)
                np.cumsum(cum_n, axis=1, out=cum_n)
            for cum in (cum_n, cum_y):
                at = np.take(cum, np.maximum(pos, 0), axis=-1)
                at[..., pos < 0] = 0.0  # this arm not reached yet
                out.append(at)
        n_t, y_t, n_c, y_c = out
        return n_t, n_c, y_t, y_c


def _values(kind, n_t, n_c, y_t, y_c):
    """Curve points (x, value) at each tie group, without the leading (0, 0).

    Where an arm's count is 0 its outcome sum is 0 too, so dividing by 1 there gives sklift's 0.
    """
    x = n_t + n_c
    ratio = np.divide(n_t if kind == "qini" else y_c, np.where(n_c == 0, 1.0, n_c))
    if kind == "qini":
        return x, np.subtract(y_t, np.multiply(y_c, ratio, out=ratio), out=ratio)
    v = np.divide(y_t, np.where(n_t == 0, 1.0, n_t))
    return x, np.multiply(np.subtract(v, ratio, out=v), x, out=v)


def _summary(kind, sums):
    """(trapezoidal area from (0, 0), last x, last value) of the curve, along the last axis."""
    x, v = _values(kind, *sums)
    twice = np.add(v[..., 1:], v[..., :-1])
    twice *= np.diff(x, axis=-1)
    return (x[..., 0] * v[..., 0] + twice.sum(axis=-1)) / 2.0, x[..., -1], v[..., -1]


def _normalised(area, perfect):
    area_p, x_end, v_end = perfect
    base = x_end * v_end / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return (area - base) / (area_p - base)


def _perfect_keys(y, t):
    """sklift's perfect Qini score, and perfect uplift scores for summand y (CR > TN) and t."""
    same = 2.0 * (y == t)
    return y * t - y * (1 - t), same + y, same + t


def _cr_tn(y, t, w):
    """Per-unit weights of control responders and treated non-responders."""
    w = 1.0 if w is None else w
    return w * ((y == 1) & (t == 0)), w * ((y == 0) & (t == 1))


def _perfect_plan(kind, y, t, w):
    keys = _perfect_keys(y, t)
    if kind == "qini":
        return _Plan(keys[0], y, t, w)
    cr, tn = _cr_tn(y, t, w)
    return _Plan(keys[1 if cr.sum() > tn.sum() else 2], y, t, w)


def _curve(kind, y, score, treatment, weights):
    """The model's curve, or the perfect one when ``score`` is None, from (0, 0)."""
    y, score, t, w = _validate(y, score, treatment, weights)
    plan = _perfect_plan(kind, y, t, w) if score is None else _Plan(score, y, t, w)
    x, v = _values(kind, *plan.sums())
    return np.r_[0.0, x], np.r_[0.0, v]


def qini_curve(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike, *, weights: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: (units targeted, incremental outcomes) at each distinct score, best first.

    Equals ``sklift.metrics.qini_curve`` when ``weights`` is None (x is returned as float).

    Examples
    --------
    >>> y, t, s = [1, 0, 1, 0], [1, 1, 0, 0], [0.9, 0.5, 0.4, 0.1]
    >>> [a.tolist() for a in qini_curve(y, s, t)]
    [[0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, -1.0, 0.0]]
    """
    return _curve("qini", y, score, treatment, weights)


def uplift_curve(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike, *, weights: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: (units targeted, difference of arm means x units targeted).

    Equals ``sklift.metrics.uplift_curve`` when ``weights`` is None.

    Examples
    --------
    >>> y, t, s = [1, 0, 1, 0], [1, 1, 0, 0], [0.9, 0.5, 0.4, 0.1]
    >>> uplift_curve(y, s, t)[1].tolist()
    [0.0, 1.0, 1.0, -1.5, 0.0]
    """
    return _curve("uplift", y, score, treatment, weights)


def perfect_qini_curve(
    y: ArrayLike, treatment: ArrayLike, *, weights: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Perfect Qini curve (sklift's ``perfect_qini_curve`` with ``negative_effect=True``).

    Examples
    --------
    >>> [a.tolist() for a in perfect_qini_curve([1, 0, 1, 0], [1, 1, 0, 0])]
    [[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 1.0, 0.0]]
    """
    return _curve("qini", y, None, treatment, weights)


def perfect_uplift_curve(
    y: ArrayLike, treatment: ArrayLike, *, weights: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Perfect uplift curve (sklift's ``perfect_uplift_curve``).

    Examples
    --------
    >>> perfect_uplift_curve([1, 0, 1, 0], [1, 1, 0, 0])[1].tolist()
    [0.0, 1.0, 2.0, 1.5, 0.0]
    """
    return _curve("uplift", y, None, treatment, weights)


def _coefficient(kind, y, score, treatment, weights):
    y, score, t, w = _validate(y, score, treatment, weights)
    area = _summary(kind, _Plan(score, y, t, w).sums())[0]
    return float(_normalised(area, _summary(kind, _perfect_plan(kind, y, t, w).sums())))


def qini_coefficient(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike, *, weights: ArrayLike | None = None
) -> float:
    """Normalised area under the Qini curve: 1 = perfect ranking, 0 = random, < 0 = worse.

    Equals ``sklift.metrics.qini_auc_score(y, score, treatment)`` when ``weights`` is None.

    Examples
    --------
    >>> round(qini_coefficient([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1], [1, 1, 0, 0]), 6)
    0.333333
    """
    return _coefficient("qini", y, score, treatment, weights)


def uplift_auc(
    y: ArrayLike, score: ArrayLike, treatment: ArrayLike, *, weights: ArrayLike | None = None
) -> float:
    """Normalised area under the uplift curve (sklift's ``uplift_auc_score``).

    Examples
    --------
    >>> round(uplift_auc([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1], [1, 1, 0, 0]), 6)
    0.111111
    """
    return _coefficient("uplift", y, score, treatment, weights)


def _draw_counts(rng: np.random.Generator, treated: np.ndarray, control: np.ndarray, n: int):
    """One stratified replicate as multiplicities: n_t draws from the treated, n_c from control."""
    counts = np.zeros(n)
    for arm in (treated, control):
        counts[arm] = np.bincount(rng.integers(arm.size, size=arm.size), minlength=arm.size)
    return counts


def _replicate_scores(y, t, w, counts, plans):
    """(qini, auuc) coefficients of each row of multiplicities ``counts``."""
    score, qini_perfect, uplift_by_y, uplift_by_t = plans
    sums = score.sums(counts)
    area_q, area_u = _summary("qini", sums)[0], _summary("uplift", sums)[0]
    del sums
    qini = _normalised(area_q, _summary("qini", qini_perfect.sums(counts)))
    cr, tn = _cr_tn(y, t, w)
    by_y = np.einsum("ij,j->i", counts, cr - tn) > 0
    auuc = np.empty(counts.shape[0])
    for rows, plan in ((by_y, uplift_by_y), (~by_y, uplift_by_t)):
        if rows.all() or (rows.any() and plan.matrix is not None):  # tall matrix products
            auuc = np.where(rows, _normalised(area_u, _summary("uplift", plan.sums(counts))), auuc)
        elif rows.any():
            perfect = _summary("uplift", plan.sums(counts[rows]))
            auuc[rows] = _normalised(area_u[rows], perfect)
    return qini, auuc


def _bootstrap_draws(y, score, t, w, replications: int, seed: int):
    """Replicates' (qini, auuc) coefficients, computed ``chunk`` replicates at a time."""
    n = y.size
    perfect = (_Plan(k, y, t, w, replicates=True) for k in _perfect_keys(y, t))
    plans = (_Plan(score, y, t, w, replicates=True), *perfect)
    treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MEMORY_BUDGET // (12 * 8 * n))
    qini, auuc = np.empty(replications), np.empty(replications)
    for start in range(0, replications, chunk):
        stop = min(start + chunk, replications)
        counts = np.stack([_draw_counts(rng, treated, control, n) for _ in range(start, stop)])
        qini[start:stop], auuc[start:stop] = _replicate_scores(y, t, w, counts, plans)
    return qini, auuc


def bootstrap_metrics(
    y: ArrayLike,
    score: ArrayLike,
    treatment: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    replications: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Qini coefficient and uplift AUC with stratified-bootstrap SEs and percentile intervals.

    Each replicate resamples units with replacement within each arm (so both arms are present),
    as multiplicities per unit drawn with ``np.random.default_rng(seed)`` replicate by replicate
    (same seed, same numbers, whatever the chunking). One sort by score and one per perfect
    ordering; all replicates' cumulative sums are matrix operations over chunks of replicates
    sized to ~160 MB (peak ~220 MB at a million units, one replicate per chunk). ``weights``
    multiply the multiplicities. Replicates with a NaN coefficient are ignored.

    Returns ``{"qini": {...}, "auuc": {...}, "replications": B}``, each inner dict with keys
    ``estimate``, ``std_error``, ``conf_low``, ``conf_high``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> t = rng.integers(0, 2, 400); s = rng.normal(size=400)
    >>> y = (rng.random(400) < 0.3 + 0.2 * t * (s > 0)).astype(float)
    >>> out = bootstrap_metrics(y, s, t, replications=50)
    >>> out["qini"]["conf_low"] < out["qini"]["estimate"] < out["qini"]["conf_high"]
    True
    """
    if int(replications) != replications or replications < 2 or not 0 < alpha < 1:
        raise DesignError(
            f"replications must be an integer >= 2 and 0 < alpha < 1 (got {replications}, {alpha})."
        )
    y, score, t, w = _validate(y, score, treatment, weights)
    replications = int(replications)
    draws = _bootstrap_draws(y, score, t, w, replications, seed)
    out: dict = {}
    for key, fn, draw in zip(("qini", "auuc"), (qini_coefficient, uplift_auc), draws, strict=True):
        low, high = np.nanquantile(draw, [alpha / 2, 1 - alpha / 2])
        out[key] = {
            "estimate": fn(y, score, t, weights=w),
            "std_error": float(np.nanstd(draw, ddof=1)),
            "conf_low": float(low),
            "conf_high": float(high),
        }
    out["replications"] = replications
    return out


def uplift_by_bin(
    y: ArrayLike,
    score: ArrayLike,
    treatment: ArrayLike,
    *,
    bins: int = 10,
    weights: ArrayLike | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Observed uplift per bin of predicted uplift (deciles by default), bin 1 = highest scores.

    A unit's bin is ``floor(r * bins / n) + 1``, r its 0-based descending rank, tied scores
    sharing their average rank: tied units always share a bin, so heavy ties can leave bins
    empty (they are omitted) or uneven. Columns: ``bin``, ``n``, ``n_treated``, ``n_control``
    (unit counts), ``predicted_uplift`` (mean score), ``observed_uplift`` (treated minus control
    mean of y), ``std_error`` (unpooled, Welch-type), ``conf_low``, ``conf_high`` (normal).
    With weights, means are weighted and the variance of an arm's mean is
    ``m / (m - 1) * sum(w² (y - ȳ)²) / (sum w)²`` over its m units (s²/m without weights). A bin
    with no treated or no control unit has NaN observed uplift; with one unit in an arm, NaN SE.

    Examples
    --------
    >>> t = np.tile([0, 1], 50); s = np.repeat(np.arange(10.0), 10); y = t * (s >= 6)
    >>> table = uplift_by_bin(y, s, t, bins=5)
    >>> table[["bin", "n", "predicted_uplift", "observed_uplift"]].values.tolist()[:3]
    [[1.0, 20.0, 8.5, 1.0], [2.0, 20.0, 6.5, 1.0], [3.0, 20.0, 4.5, 0.0]]
    """
    import pandas as pd

    if int(bins) != bins or bins < 1 or not 0 < alpha < 1:
        raise DesignError(
            f"bins must be a positive integer and 0 < alpha < 1 (got {bins}, {alpha})."
        )
    y, score, t, w = _validate(y, score, treatment, weights)
    n, w = y.size, np.ones_like(y) if w is None else w
    order = np.argsort(-score, kind="stable")
    s = score[order]
    first = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]  # tie groups' first sorted positions
    size = np.diff(np.r_[first, n])
    rank = np.empty(n)
    rank[order] = np.repeat(first + (size - 1) / 2.0, size)
    b = (rank * bins / n).astype(np.int64)

    def total(values):
        return np.bincount(b, values, minlength=bins)

    stats = []
    with np.errstate(divide="ignore", invalid="ignore"):  # empty arms give NaN
        for mask in (t, 1 - t):
            m, sw = total(mask), total(w * mask)
            mean = total(w * y * mask) / sw
            var = m / (m - 1) * total(mask * (w * (y - mean[b])) ** 2) / sw**2
            stats.append((m.astype(np.int64), mean, np.where(m > 1, var, np.nan)))
        predicted = total(w * score) / total(w)
    (m_t, mean_t, var_t), (m_c, mean_c, var_c) = stats
    observed, se = mean_t - mean_c, np.sqrt(var_t + var_c)
    half = NormalDist().inv_cdf(1 - alpha / 2) * se
    columns = (np.arange(1, bins + 1), m_t + m_c, m_t, m_c, predicted, observed, se)
    columns += (observed - half, observed + half)
    table = pd.DataFrame(dict(zip(_BIN_COLUMNS, columns, strict=True)))
    return table[table["n"] > 0].reset_index(drop=True)


def thin_curve(
    x: ArrayLike, y: ArrayLike, *, max_points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Down-sample a curve to ``max_points`` points evenly spaced by index, keeping both ends.

    Examples
    --------
    >>> xs, ys = thin_curve(np.arange(1001), np.arange(1001) ** 2, max_points=5)
    >>> xs.tolist()
    [0, 250, 500, 750, 1000]
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 1:
        raise DesignError(f"x and y must be 1-D of the same length (got {x.shape}, {y.shape}).")
    if max_points < 2:
        raise DesignError(f"max_points must be at least 2 (got {max_points}).")
    if x.size <= max_points:
        return x.copy(), y.copy()
    keep = np.unique(np.round(np.linspace(0, x.size - 1, max_points)).astype(np.int64))
    return x[keep], y[keep]
