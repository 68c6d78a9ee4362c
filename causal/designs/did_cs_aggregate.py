"""Aggregations of Callaway & Sant'Anna group-time effects, as R ``did::aggte``, and the
multiplier bootstrap for uniform bands, as R ``did::mboot``.

Weights are cohort shares (``pg = n_g / n``). Where they are estimated the influence function
carries R's "wif" term (the estimation effect of the weights): ``simple``, ``dynamic`` and
``calendar`` per level, and the overall ``group`` average. Overall standard errors are
``sqrt(mean(IF**2) / n)``; with ``n_boot > 0`` the standard errors are the bootstrap ones
(IQR-based, as R) and the table gets a uniform (sup-t) band over its levels. The multipliers
are Mammen's two-point weights by default (as DRDID's ``mboot.did``); R ``did``'s own ``mboot``
draws Rademacher weights (``BMisc::multiplier_bootstrap``), available as
``weights="rademacher"``. Both have mean 0 and variance 1, so either is valid.

Everything is computed from the n × n_cells influence matrix in one pass (each cell's column
added, with its weight, to its level's column), so nothing of size n × n_cells is copied.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.linalg.blas import daxpy

from causal.designs.did_cs import ZERO_SE, GroupTimeEffects
from causal.errors import DesignError
from causal.progress import progress as progress_bar

KINDS = ("simple", "group", "dynamic", "calendar")
MAMMEN_LOW, MAMMEN_HIGH = (1 - math.sqrt(5)) / 2, (1 + math.sqrt(5)) / 2
MAMMEN_P_LOW = (1 + math.sqrt(5)) / (2 * math.sqrt(5))  # P(v = MAMMEN_LOW): mean 0, variance 1
IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)


@dataclass(frozen=True, eq=False)
class Aggregation:
    """An aggregated ATT (``estimate``) and, except for ``simple``, the per-level table.

    ``table`` columns: level (cohort, event time or calendar period), estimate, std_error,
    conf_low and conf_high (pointwise), band_low and band_high (uniform band from the
    multiplier bootstrap; NaN without it). ``influence`` is the overall influence function;
    ``level_influence`` the per-level ones (rows are units, or cluster sums when clustered),
    from which any linear combination of the levels gets its standard error.
    """

    kind: str
    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    p_value: float
    table: pd.DataFrame | None
    critical_value: float
    conf_level: float = 0.95
    n_boot: int = 0
    influence: np.ndarray | None = None
    level_influence: np.ndarray | None = None
    n_units: int = 0

    def combination(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimates, SEs and covariance of ``weights @ levels`` (one row per combination),
        from the level influence functions, as R ``did`` computes every SE."""
        if self.table is None or self.level_influence is None:
            raise ValueError(f"the {self.kind} aggregation has no levels to combine")
        w = np.atleast_2d(np.asarray(weights, dtype=float))
        inf = self.level_influence @ w.T
        cov = inf.T @ inf / self.n_units**2
        return w @ self.table["estimate"].to_numpy(), np.sqrt(np.diag(cov)), cov


def _draws(
    influence: np.ndarray, n_boot: int, seed: int | None, weights: str, show: bool
) -> np.ndarray:
    """n_boot × k bootstrap draws sqrt(n) · mean(v_i · IF_i) (BMisc ``multiplier_bootstrap``)."""
    if weights not in ("mammen", "rademacher"):
        raise DesignError(f"unknown bootstrap weights {weights!r}; use 'mammen' or 'rademacher'")
    if int(n_boot) != n_boot or n_boot < 1:
        raise DesignError(f"n_boot must be a positive whole number, got {n_boot!r}")
    n = influence.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, min(int(n_boot), 2**24 // max(n, 1)))  # ≤ 128 MB of multipliers at a time
    edges = [*range(0, int(n_boot), chunk), int(n_boot)]
    out = np.empty((int(n_boot), influence.shape[1]))
    pieces = list(itertools.pairwise(edges))
    if show:
        pieces = progress_bar(pieces, desc="multiplier bootstrap", total=len(pieces))
    for lo, hi in pieces:
        if weights == "mammen":
            v = np.where(rng.random((hi - lo, n)) < MAMMEN_P_LOW, MAMMEN_LOW, MAMMEN_HIGH)
        else:
            v = rng.integers(0, 2, size=(hi - lo, n)).astype(float) * 2 - 1
        out[lo:hi] = v @ influence
    return out / math.sqrt(n)


def _boot_stats(draws: np.ndarray, n: int, conf_level: float) -> tuple[np.ndarray, float]:
    """IQR standard errors per column and the sup-t critical value over columns (R ``mboot``)."""
    ok = np.isfinite(draws.sum(axis=0)) & ((draws**2).sum(axis=0) > ZERO_SE)
    se = np.full(draws.shape[1], np.nan)
    if not ok.any():
        return se, math.nan
    good = draws[:, ok]
    q75, q25 = np.quantile(good, [0.75, 0.25], axis=0, method="inverted_cdf")
    sigma = (q75 - q25) / IQR_NORMAL
    se[ok] = sigma / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        sup = np.nan_to_num(np.abs(good / sigma), nan=-np.inf).max(axis=1)
    sup = sup[np.isfinite(sup)]
    crit = float(np.quantile(sup, conf_level, method="inverted_cdf")) if sup.size else math.nan
    return se, crit


def multiplier_bootstrap(
    influence: np.ndarray,
    *,
    n_boot: int,
    seed: int | None,
    progress: bool = False,
    conf_level: float = 0.95,
    weights: Literal["mammen", "rademacher"] = "mammen",
) -> tuple[np.ndarray, float]:
    """Multiplier-bootstrap standard errors and the uniform-band critical value.

    Draws b = 1..n_boot multipliers v_i (Mammen's two-point weights by default — DRDID's
    ``mboot.did``; ``"rademacher"`` is what R ``did``'s ``mboot`` uses through
    ``BMisc::multiplier_bootstrap``), forms sqrt(n) · mean(v_i · IF_i) per column and returns,
    as R ``mboot``: standard errors (IQR of the draws / IQR of the standard normal, / sqrt(n))
    and the ``conf_level`` quantile of max over columns of |draw / scale| (sup-t).

    Parameters
    ----------
    influence
        n × k influence functions (one column per estimate), R ``did``'s scaling.
    n_boot, seed
        Number of draws and the seed of the numpy ``Generator`` (same seed, same result).
    progress
        Show a progress bar (only on an interactive terminal).
    conf_level
        Coverage of the uniform band.
    weights
        ``"mammen"`` or ``"rademacher"`` multipliers.

    Examples
    --------
    >>> inf = np.random.default_rng(0).normal(size=(400, 3)) * [1.0, 2.0, 3.0]
    >>> se, crit = multiplier_bootstrap(inf, n_boot=499, seed=1)
    >>> (se * np.sqrt(400)).round(1).tolist(), round(crit, 2)  # IF's sd is about 1, 2, 3
    ([1.0, 2.1, 2.7], 2.25)
    """
    influence = np.asarray(influence, dtype=float)
    if influence.ndim == 1:
        influence = influence[:, None]
    draws = _draws(influence, n_boot, seed, weights, progress)
    return _boot_stats(draws, influence.shape[0], conf_level)


def _recode(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """R aggte's consecutive relabelling of periods and cohorts (1, 2, ... over their union)."""
    return np.searchsorted(grid, values).astype(float) + 1


def _wif_by_cohort(sel: np.ndarray, att: np.ndarray, pg: np.ndarray, code: np.ndarray, k: int):
    """R ``wif(keepers, ...) %*% att[keepers]`` — the estimation effect of the weights pg.

    It depends on a unit only through its cohort, so it is returned per cohort (length k).
    """
    s_pg = pg[sel].sum()
    s_pg_att = (pg[sel] * att[sel]).sum()
    att_by = np.bincount(code[sel], weights=att[sel], minlength=k)
    count_by = np.bincount(code[sel], minlength=k)
    return (att_by - s_pg_att) / s_pg - (count_by - s_pg) * (s_pg_att / s_pg**2)


class _Cohorts:
    """Units by cohort: shares and a fast way to add a per-cohort value to every unit."""

    def __init__(self, group_of_unit: np.ndarray):
        g = np.asarray(group_of_unit, dtype=float)
        self.n = len(g)
        if np.all(g[1:] >= g[:-1]):  # rows sorted by cohort, as group_time_effects returns
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            self.levels, self.bounds = g[starts], np.r_[starts, self.n]
            self.code = None
            sizes = np.diff(self.bounds)
        else:
            self.levels, self.code = np.unique(g, return_inverse=True)
            sizes = np.bincount(self.code)
        self.share = sizes / self.n

    def add(self, out: np.ndarray, values: np.ndarray) -> None:
        """out[i] += values[cohort of unit i]."""
        if self.code is not None:
            out += values[self.code]
            return
        for c, value in enumerate(values):
            out[self.bounds[c] : self.bounds[c + 1]] += value


def _combine(inf: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """inf @ weight without a dense matrix product: weight has one level per cell at most."""
    if weight.shape[1] == 1:
        return (inf @ weight[:, 0])[:, None].copy(order="F")
    out = np.zeros((inf.shape[0], weight.shape[1]), order="F")
    inf = np.asfortranarray(inf)
    for j, level in zip(*np.nonzero(weight), strict=True):
        daxpy(inf[:, j], out[:, level], a=weight[j, level])  # in place on the column
    return out


def _se(inf: np.ndarray, n: int | None = None) -> np.ndarray:
    """R getSE: sqrt(mean(IF^2) / n) per column; NaN when (numerically) zero. Rows may be
    cluster sums, in which case ``n`` is still the number of units."""
    inf = inf.reshape(inf.shape[0], -1)
    se = np.sqrt(np.einsum("ij,ij->j", inf, inf)) / (n or inf.shape[0])
    se[se <= ZERO_SE] = np.nan
    return se


def _levels(fx: GroupTimeEffects, kind: str, min_e, max_e, balance_e):
    """Which cells make up each level (boolean masks), the level labels and the overall rule."""
    tb = fx.table
    att, group, t = (tb[c].to_numpy(float) for c in ("att", "group", "time"))
    ok = ~np.isnan(att)  # R aggte(na.rm = TRUE): cells without an estimate are dropped
    if not ok.any():
        raise DesignError("no group-time effect could be estimated; nothing to aggregate")
    glist = np.unique(group[ok])
    grid = np.union1d(fx.periods.astype(float), glist)
    rg, rt = _recode(group, grid), _recode(t, grid)
    in_window = ok & (rg <= rt) & (rt <= rg + max_e)
    if kind == "simple":
        return [in_window], None, None
    if kind == "group":
        keep = [g for g in glist if in_window[group == g].any()]
        return [in_window & (group == g) for g in keep], np.array(keep), "group"
    if kind == "dynamic":
        e = t - group
        include = ok.copy()
        eseq = np.unique(e[ok])
        if balance_e is not None:
            t_max = t[ok].max()
            include &= t_max - group >= balance_e
            eseq = np.unique(e[include])
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t_max + grid[0])]
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        return [include & (e == x) for x in eseq], eseq, "dynamic"
    if any(map(math.isfinite, (min_e, max_e))) or balance_e is not None:
        warnings.warn("min_e, max_e and balance_e are ignored for kind='calendar'", stacklevel=3)
    post = ok & (group <= t)
    cal = np.unique(t[post])
    return [post & (t == x) for x in cal], cal, "calendar"


def aggregate(
    effects: GroupTimeEffects,
    kind: str,
    *,
    min_e: float = -math.inf,
    max_e: float = math.inf,
    balance_e: int | None = None,
    n_boot: int = 0,
    seed: int | None = None,
    progress: bool = False,
    weights: Literal["mammen", "rademacher"] = "mammen",
    cluster: np.ndarray | None = None,
) -> Aggregation:
    """Aggregate ATT(g,t) as R ``did::aggte``: simple, group, dynamic or calendar.

    - ``simple``: post-treatment cells averaged with cohort-size weights.
    - ``group``: per cohort, the mean of its post-treatment cells; overall, their
      cohort-size-weighted average.
    - ``dynamic``: per event time e = t − g (within ``min_e``..``max_e``; with ``balance_e``
      only cohorts observed for e = 0..balance_e), cohort-size-weighted; overall, the mean
      over e ≥ 0.
    - ``calendar``: per period, post-treatment cells of that period, cohort-size-weighted;
      overall, the mean over periods.

    ``max_e`` also caps the post-treatment cells of ``simple`` and ``group`` (``min_e`` does
    not), as in R; there R counts it in positions on the sorted periods and cohorts, which is
    the event time when periods are consecutive integers (csdid uses the raw time difference).
    With ``n_boot > 0`` standard errors come from the multiplier bootstrap (seeded) and the
    table gets a uniform band; ``weights`` picks the multipliers (see
    :func:`multiplier_bootstrap`). ``cluster`` (a code per row of ``effects.influence``)
    makes standard errors and bootstrap draws cluster-robust: influence functions are summed
    within clusters first (R ``did`` with ``clustervars``, analytic or bootstrap).

    Examples
    --------
    >>> from causal.designs.did_cs import MPDTA, group_time_effects
    >>> fx = group_time_effects(pd.read_csv(MPDTA), unit="countyreal", time="year",
    ...                         cohort="first.treat", outcome="lemp")
    >>> agg = aggregate(fx, "simple")
    >>> round(agg.estimate, 5), round(agg.std_error, 5)  # R did 2.5: -0.03995 (0.01203)
    (-0.03995, 0.01203)
    >>> aggregate(fx, "dynamic").table[["level", "estimate", "std_error"]].round(4)
       level  estimate  std_error
    0     -3    0.0305     0.0150
    1     -2   -0.0006     0.0133
    2     -1   -0.0245     0.0142
    3      0   -0.0199     0.0118
    4      1   -0.0510     0.0169
    5      2   -0.1373     0.0364
    6      3   -0.1008     0.0344
    """
    if kind not in KINDS:
        raise DesignError(f"unknown aggregation {kind!r}; use one of {', '.join(KINDS)}")
    tb, n = effects.table, effects.n_units
    att = np.nan_to_num(tb["att"].to_numpy(float))  # NaN cells never get a weight
    group = tb["group"].to_numpy(float)
    cohorts = _Cohorts(effects.group_of_unit)
    k = len(cohorts.levels)
    cell_code = np.searchsorted(cohorts.levels, group)
    pg = cohorts.share[cell_code]
    selections, labels, rule = _levels(effects, kind, min_e, max_e, balance_e)
    if not selections or not any(s.any() for s in selections):
        raise DesignError(
            f"no group-time effects fall in the {kind} aggregation (check min_e, max_e, "
            "balance_e: are there post-treatment cells in the window?)"
        )
    weight = np.zeros((len(att), len(selections)))
    for j, sel in enumerate(selections):
        weight[sel, j] = pg[sel] / pg[sel].sum() if rule != "group" else 1 / sel.sum()
    est = att @ weight
    lvl_inf = _combine(effects.influence, weight)  # one pass over the big matrix
    if rule != "group":
        for j, sel in enumerate(selections):
            cohorts.add(lvl_inf[:, j], _wif_by_cohort(sel, att, pg, cell_code, k))
    if rule is None:
        overall, overall_inf = float(est[0]), lvl_inf[:, 0]
    elif rule == "group":
        code = np.searchsorted(cohorts.levels, labels)
        pgg = cohorts.share[code]
        overall = float(est @ pgg / pgg.sum())
        overall_inf = lvl_inf @ (pgg / pgg.sum())
        cohorts.add(overall_inf, _wif_by_cohort(np.ones(len(labels), bool), est, pgg, code, k))
    else:
        use = labels >= 0 if rule == "dynamic" else np.ones(len(labels), bool)
        overall = float(est[use].mean()) if use.any() else math.nan
        overall_inf = lvl_inf[:, use].mean(axis=1) if use.any() else np.full(n, np.nan)
    return _finish(
        effects,
        kind,
        overall,
        overall_inf,
        labels,
        est,
        lvl_inf,
        n_boot,
        seed,
        progress,
        weights,
        cluster,
    )


def cluster_sums(influence: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Influence functions summed within clusters: (n_clusters × k) from (n × k)."""
    influence = influence.reshape(influence.shape[0], -1)
    size = int(cluster.max()) + 1
    return np.column_stack(
        [np.bincount(cluster, influence[:, j], size) for j in range(influence.shape[1])]
    )


def _finish(
    fx, kind, overall, overall_inf, labels, est, lvl_inf, n_boot, seed, show, weights, cluster
):
    """Standard errors (analytic or bootstrap), intervals, bands and the result object."""
    conf = fx.conf_level
    z = stats.norm.ppf(0.5 + conf / 2)
    crit = math.nan
    n = fx.n_units
    rows = overall_inf if cluster is None else cluster_sums(overall_inf, cluster)[:, 0]
    lvl_rows = lvl_inf if cluster is None or labels is None else cluster_sums(lvl_inf, cluster)
    if n_boot:
        cols = np.column_stack([rows, lvl_rows]) if labels is not None else rows
        # draws are sqrt(n)-scaled sums over rows (units or clusters): the SE scale stays n
        draws = _draws(cols.reshape(len(rows), -1), n_boot, seed, weights, show)
        draws *= math.sqrt(len(rows) / n)
        se_all, _ = _boot_stats(draws[:, :1], n, conf)
        overall_se = float(se_all[0])
        if labels is not None:
            lvl_se, crit = _boot_stats(draws[:, 1:], n, conf)
            crit = _checked_crit(crit, z)
    else:
        overall_se = float(_se(rows, n)[0])
        lvl_se = _se(lvl_rows, n) if labels is not None else None
    table = None
    if labels is not None:
        table = pd.DataFrame(
            {
                "level": labels.astype(fx.table["group"].dtype, copy=False)
                if kind != "dynamic"
                else labels.astype(fx.table["event_time"].dtype, copy=False),
                "estimate": est,
                "std_error": lvl_se,
                "conf_low": est - z * lvl_se,
                "conf_high": est + z * lvl_se,
                "band_low": est - crit * lvl_se,
                "band_high": est + crit * lvl_se,
            }
        )
    return Aggregation(
        kind=kind,
        estimate=overall,
        std_error=overall_se,
        conf_low=overall - z * overall_se,
        conf_high=overall + z * overall_se,
        p_value=float(2 * stats.norm.sf(abs(overall / overall_se))),
        table=table,
        critical_value=crit,
        conf_level=conf,
        n_boot=int(n_boot),
        influence=overall_inf,
        level_influence=lvl_rows if labels is not None else None,
        n_units=n,
    )


def _checked_crit(crit: float, z: float) -> float:
    """R aggte's guards on the uniform critical value."""
    if not math.isfinite(crit):
        warnings.warn(
            "uniform critical value is not finite; using pointwise intervals", stacklevel=4
        )
        return z
    if crit < z:
        warnings.warn(
            "uniform band narrower than the pointwise intervals; using pointwise", stacklevel=4
        )
        return z
    if crit >= 7:
        warnings.warn(
            f"uniform critical value {crit:.1f} is very large: few units per cohort or little "
            "outcome variation; the band may be unreliable",
            stacklevel=4,
        )
    return crit
