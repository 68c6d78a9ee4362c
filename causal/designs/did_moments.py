"""Callaway & Sant'Anna ATT(g,t) and its aggregations from SQL aggregates (no unit rows).

The row path (:func:`causal.designs.did_cs.group_time_effects` +
:func:`causal.designs.did_cs_aggregate.aggregate`) holds an n_units × n_cells influence matrix.
Without covariates it does not need to: for a unit i of cohort c the influence function of every
ATT(g,t), and of every aggregation, is linear in the unit's outcomes with coefficients that
depend only on the cohort,

    IF_i = A_c d_i + m_c,    d_i = y_i − μ_c  (y_i the unit's T outcomes, μ_c a fixed shift),

so everything follows from per-cohort sums the engine computes (:mod:`did_moments_sql`):

- ATT(g,t) from cohort × period means (Σ d / n on top of the shift);
- clustered by unit: Σ_i IF_i IF_iᵀ = Σ_c B_cᵀ M_c B_c with B_c = [A_cᵀ; m_cᵀ] and
  M_c = Σ_{i∈c} [d_i; 1][d_i; 1]ᵀ, the cohort's (T+1) × (T+1) moment matrix. Factoring
  M_c = F_cᵀ F_c gives T+1 "pseudo-units" per cohort (rows F_c B_c) whose cross-products are
  exactly the units' — standard errors, the pre-test and ``Aggregation.combination`` run on them;
- clustered by a coarser column: the per-cluster IF sums Σ_c (D_kc A_cᵀ + N_kc m_c) from the
  cluster × cohort sums D_kc and counts N_kc — the very rows the row path's ``cluster_sums``
  gives, so its Rademacher multiplier bootstrap runs on them with the same draws.

The estimate is R ``did``'s (as the row path): no covariates, where ``dr``, ``ipw`` and ``reg``
are the same difference of mean changes (``did_cs._fast``; only the overlap guard differs).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from causal.designs import did_moments_sql as sql
from causal.designs import horizons
from causal.designs.did_cs import ZERO_SE, GroupTimeEffects, _Cells, _overlap, _plan, _validate
from causal.designs.did_cs_aggregate import (
    Aggregation,
    _checked_crit,
    _finish,
    _levels,
    _wif_by_cohort,
)
from causal.designs.did_cs_panel import WidePanel, _check_sizes
from causal.errors import DesignError

KINDS = ("simple", "group", "dynamic", "calendar")
BANDED = ("group", "dynamic", "calendar")


@dataclass(frozen=True, eq=False)
class CSAggregates:
    """Callaway–Sant'Anna from aggregates: the row path's objects, without unit rows.

    ``effects.table`` and every ``Aggregation`` hold the row path's numbers (standard errors
    clustered as asked, like ``did_cs_run.clustered_cells``). Their influence arrays have one
    row per cluster (cluster sums, as the row path's clustered ``level_influence``) or, clustered
    by unit, per pseudo-unit (T+1 per cohort, with the units' cross-products): their Gram matrix
    is right, so ``Aggregation.combination`` is, but ``effects`` must not be passed to
    ``aggregate`` or ``did_cs_run.pretest`` — use ``aggregations`` and ``pretest`` here.
    """

    effects: GroupTimeEffects
    aggregations: dict[str, Aggregation]
    pretest: dict
    n_units: int
    n_treated: int
    n_clusters: int
    details: dict = field(default_factory=dict)

    @property
    def simple(self) -> Aggregation:
        return self.aggregations["simple"]


@dataclass(frozen=True)
class _Moments:
    """Per cohort (level): size, shift, Σ d and Σ d dᵀ; or per cluster × cohort Σ d, counts."""

    levels: np.ndarray  # cohorts kept, ascending (0 = never treated first)
    sizes: np.ndarray  # units per level
    shift: np.ndarray  # K × T, the μ subtracted in SQL
    dsum: np.ndarray  # K × T, Σ d
    cross: np.ndarray | None = None  # K × T × T, Σ d dᵀ (clustered by unit)
    clusters: np.ndarray | None = None  # cluster labels in the row path's order
    cluster_n: np.ndarray | None = None  # C × K units
    cluster_d: np.ndarray | None = None  # C × K × T, Σ d

    @property
    def n(self) -> int:
        return int(self.sizes.sum())

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.dsum / self.sizes[:, None]


@dataclass(frozen=True)
class _Linear:
    """Influence functions of several estimates: IF_i = slope[c] d_i + const[c], c = cohort."""

    slope: np.ndarray  # K × m × T
    const: np.ndarray  # K × m

    def combine(self, weight: np.ndarray, extra: np.ndarray) -> _Linear:
        """Those of ``estimates @ weight`` plus a per-cohort term (R's weight-estimation wif)."""
        return _Linear(np.matmul(weight.T, self.slope), self.const @ weight + extra)


@dataclass(frozen=True)
class _Options:
    """The estimator's settings, as passed to :func:`cs_from_aggregates`."""

    control_group: str
    base_period: str
    anticipation: int
    conf_level: float
    method: str
    n_boot: int
    seed: int
    cluster: str  # column the standard errors are clustered by (the unit by default)
    outcome: str


@dataclass(frozen=True)
class _FinishFx:
    """What ``did_cs_aggregate._finish`` reads of the effects: table dtypes, n, conf_level."""

    table: pd.DataFrame
    conf_level: float
    n_units: int


def cs_from_aggregates(
    engine,
    view: str,
    *,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    cluster: str | None = None,
    control_group: str = "never_treated",
    base_period: str = "varying",
    anticipation: int = 0,
    conf_level: float = 0.95,
    bootstrap_replications: int = 999,
    seed: int = 0,
    method: str = "dr",
) -> CSAggregates:
    """ATT(g,t), the four aggregations and the pre-test from two SQL passes over ``view``.

    Equal to the row path (``group_time_effects`` + ``aggregate``, clustered as
    ``did_cs_run``) for a balanced panel without covariates. Only tables of cohort × period
    (× cluster) size come back from the engine.

    Parameters
    ----------
    engine
        Anything with ``query(sql) -> pandas.DataFrame`` (and ``quote`` for identifiers).
    view
        Name of the long panel, one row per unit and period.
    unit, time, cohort, outcome
        Columns; ``cohort`` is the first treated period, 0 for never treated.
    cluster
        Column of clusters containing whole units (default: the unit).
    control_group, base_period, anticipation, conf_level
        As :func:`causal.designs.did_cs.group_time_effects`.
    bootstrap_replications, seed
        Uniform bands of the group / dynamic / calendar tables. With ``cluster`` the row
        path's Rademacher multiplier bootstrap over clusters (same draws, same band); by unit
        a seeded Gaussian sup-t from the exact covariance (``details["uniform_band"]``).
    method
        ``dr``, ``ipw`` or ``reg``: the same estimate without covariates; ``dr`` and ``ipw``
        keep the row path's overlap guard (an error when 99.5% of a cell is treated).

    Returns
    -------
    CSAggregates
        ``effects`` (ATT(g,t) table), ``aggregations`` (simple, group, dynamic, calendar),
        ``pretest``, unit and cluster counts and ``details`` (how SEs and bands were made).

    Raises
    ------
    DataError
        A missing or non-numeric column, repeated (unit, period) rows, an unbalanced panel,
        missing outcomes, a cohort or cluster that changes within a unit.
    DesignError
        Bad options, no never-treated units for ``never_treated``, no comparison units.

    Examples
    --------
    >>> from causal.data.engine import DuckDBEngine
    >>> from causal.designs.did_cs_panel import MPDTA
    >>> from causal.spec import Source
    >>> engine = DuckDBEngine()
    >>> engine.register("mpdta", Source(path=MPDTA.name), base_dir=MPDTA.parent, seed=0)
    >>> res = cs_from_aggregates(engine, "mpdta", unit="countyreal", time="year",
    ...                          cohort="first.treat", outcome="lemp")
    >>> round(res.simple.estimate, 5), round(res.simple.std_error, 5)  # R did: -0.03995 (0.01203)
    (-0.03995, 0.01203)
    """
    _validate(control_group, method, base_period, anticipation, conf_level)
    if int(bootstrap_replications) != bootstrap_replications or bootstrap_replications < 0:
        raise DesignError(f"bootstrap_replications must be >= 0, got {bootstrap_replications!r}")
    opts = _Options(control_group, base_period, int(anticipation), conf_level, method,
                    int(bootstrap_replications), seed, cluster or unit, outcome)  # fmt: skip
    src = sql.PanelSource(view, unit, time, cohort, outcome, cluster, sql.quoter(engine))
    sample, means, units = sql.run_passes(engine, src, control_group, opts.anticipation)
    mom, groups = _moments(units, sample, means, cohort, control_group)
    return _estimate(mom, sample.kept_periods, groups, opts)


# --- moments per cohort ---------------------------------------------------------------------------


def _moments(
    units: pd.DataFrame, sample: sql.Sample, means: sql.LevelMeans, cohort: str, control_group: str
) -> tuple[_Moments, np.ndarray]:
    """Pass-2 rows merged per level (late cohorts join the never treated), dropped ones out;
    and the cohorts to estimate."""
    t = sample.n_kept
    level = sample.level_of[np.searchsorted(sample.raw, units["g_lo"].to_numpy(float))]
    keep = ~np.isnan(level)
    early = int(units["n_units"].to_numpy()[~keep].sum())
    if early:
        warnings.warn(
            f"dropped {early} units already treated in the first period "
            f"{sample.periods[0]} (cohort <= first period + anticipation): they have no pre-period",
            stacklevel=3,
        )
    clustered = "k_lo" in units.columns
    if clustered:  # codes over every unit, as the row path's factorize over the whole table
        labels, cluster_code = _cluster_codes(units["k_lo"])
        cluster_code = cluster_code[keep]
    units, level = units[keep], level[keep]
    levels, code = np.unique(level, return_inverse=True)
    k = len(levels)
    n_units = units["n_units"].to_numpy(np.int64)
    dsum_rows = units[[f"s_{s}" for s in range(t)]].to_numpy(float)
    sizes = np.bincount(code, n_units, k).astype(np.int64)
    dsum = np.zeros((k, t))
    np.add.at(dsum, code, dsum_rows)
    shift = means.of(levels)
    groups = sample.groups[np.isin(sample.groups, levels)]
    _check_sizes(levels, sizes, groups, cohort, control_group, 0)
    mom = _Moments(levels, sizes, shift, dsum)
    if not clustered:
        cross = np.zeros((k, t, t))
        np.add.at(cross, code, sql.unpack_products(units, t))
        return replace(mom, cross=cross), groups
    c = int(cluster_code.max()) + 1  # as cluster_sums: trailing clusters without units drop
    cluster_n = np.zeros((c, k))
    np.add.at(cluster_n, (cluster_code, code), n_units)
    cluster_d = np.zeros((c, k, t))
    np.add.at(cluster_d, (cluster_code, code), dsum_rows)
    return replace(mom, clusters=labels[:c], cluster_n=cluster_n, cluster_d=cluster_d), groups


def _cluster_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes in sorted order of the cluster values, as ``build_did_panel`` (pd.factorize).

    Clusters whose units are all dropped keep their code (a zero row), as in the row path, so
    the multiplier draws land on the same clusters."""
    codes, labels = pd.factorize(values.to_numpy(), sort=True)
    return np.asarray(labels), codes


# --- estimates and influence functions ------------------------------------------------------------


def _estimate(mom: _Moments, periods: np.ndarray, groups: np.ndarray, opts: _Options):
    """Cells as the row path plans them, their ATT and influence rows, then aggregations."""
    k, t = mom.shift.shape
    w = WidePanel(
        y=np.empty((0, t)), x=None, units=np.empty(0), cohort=np.empty(0), periods=periods,
        groups=groups, levels=mom.levels, starts=np.zeros(k, np.int64),
        stops=np.zeros(k, np.int64),
    )  # fmt: skip  # _plan reads periods, levels and groups only
    cells = _plan(w, opts.control_group, opts.base_period, opts.anticipation)
    att, lin = _cell_effects(w, cells, mom, opts.method)
    rows_of = _RowMaker(mom)
    rows = rows_of(lin)
    clustered = mom.cluster_n is not None
    effects = GroupTimeEffects(
        table=_table(cells, att, rows, mom, periods, opts.conf_level, clustered), influence=rows,
        units=mom.clusters if clustered else np.arange(len(rows)), group_of_unit=rows_of.owner,
        periods=periods, control_group=opts.control_group, method=opts.method,
        base_period=opts.base_period, anticipation=opts.anticipation,
        conf_level=opts.conf_level, outcome=opts.outcome,
    )  # fmt: skip  # influence rows: clusters or pseudo-units (see CSAggregates)
    fx = _FinishFx(effects.table, opts.conf_level, mom.n)
    aggregations = {
        kind: _aggregate(effects, fx, kind, lin, rows_of, mom, opts, kind in BANDED)
        for kind in KINDS
    }
    n_clusters = int((mom.cluster_n.sum(axis=1) > 0).sum()) if clustered else mom.n
    return CSAggregates(
        effects=effects,
        aggregations=aggregations,
        pretest=_pretest(effects.table, rows, mom.n),
        n_units=mom.n,
        n_treated=int(mom.sizes[mom.levels > 0].sum()),
        n_clusters=n_clusters,
        details={
            "path": "aggregates (cohort × period sums in SQL; no unit rows)",
            "standard_errors": f"analytic (influence functions), clustered by {opts.cluster}",
            "uniform_band": _band_note(clustered, opts.n_boot, opts.seed, n_clusters),
        },
    )


def _band_note(clustered: bool, n_boot: int, seed: int, n_clusters: int) -> str:
    if not n_boot:
        return "none (bootstrap_replications = 0)"
    if clustered:
        return (
            f"multiplier bootstrap over {n_clusters} clusters (Rademacher, {n_boot} draws, "
            f"seed {seed}): the row path's draws, so the same band"
        )
    # A unit-level bootstrap needs a multiplier per unit, i.e. unit rows; the Gaussian sup-t
    # over the exact covariance is what that bootstrap approximates (same limit), but its draws
    # differ, so the band is not the row path's to the digit.
    return (
        "Gaussian sup-t from the exact influence-function covariance "
        f"({horizons.SUP_T_DRAWS:,} draws, seed {seed}), not the row path's unit-level "
        "multiplier bootstrap (that needs unit rows): the same in the limit, other draws"
    )


def _cell_effects(w: WidePanel, cells: _Cells, mom: _Moments, method: str):
    """ATT(g,t) = mean change of the cohort − mean change of its comparison units, and the
    influence functions of ``did_cs._fast`` written per cohort.

    Treated unit: n/n1 (Δy_i − Δȳ_treated); comparison unit: −n/n0 (Δy_i − Δȳ_comparison);
    with y_i = μ_c + d_i both are slope · d_i + a cohort constant.
    """
    k, t = mom.shift.shape
    m, n = len(cells.group), float(mom.n)
    slope, const, att = np.zeros((k, m, t)), np.zeros((k, m)), np.zeros(m)
    sizes, mean = mom.sizes.astype(float), mom.mean
    for j in np.flatnonzero(~cells.zero):
        tj, b, g, ctrl = cells.t[j], cells.base[j], cells.treated[j], cells.controls[j]
        n1, n0 = sizes[g], sizes[ctrl].sum()
        if method != "reg" and n1 / (n1 + n0) >= 0.995:
            _overlap(w, cells, j, f"{int(n1)} of {int(n1 + n0)} units in the cell are treated")
        change = mean[:, tj] - mean[:, b]
        control_change = sizes[ctrl] @ change[ctrl] / n0
        att[j] = change[g] - control_change
        slope[g, j, tj], slope[g, j, b] = n / n1, -n / n1
        const[g, j] = -n / n1 * (mom.dsum[g, tj] - mom.dsum[g, b]) / n1  # μ_g − mean: −D/n1
        moved = mom.shift[ctrl, tj] - mom.shift[ctrl, b]
        slope[ctrl, j, tj], slope[ctrl, j, b] = -n / n0, n / n0
        const[ctrl, j] = -n / n0 * (moved - control_change)
    return att, _Linear(slope, const)


def _root(matrix: np.ndarray) -> np.ndarray:
    """F with Fᵀ F = matrix (symmetric PSD), from eigh after scaling to unit diagonal (so
    outcome and count entries of very different size keep their relative precision)."""
    diag = np.sqrt(np.clip(np.diag(matrix), 0.0, None))
    scale = np.where(diag > 0, diag, 1.0)
    vals, vecs = np.linalg.eigh(matrix / np.outer(scale, scale))
    keep = vals > 0
    return (vecs[:, keep] * np.sqrt(vals[keep])).T * scale


class _RowMaker:
    """Influence rows of a :class:`_Linear`: cluster sums, or pseudo-units per cohort."""

    def __init__(self, mom: _Moments):
        self.mom = mom
        k, t = mom.shift.shape
        if mom.cluster_n is not None:
            self.flat = mom.cluster_d.reshape(len(mom.cluster_d), k * t)
            self.owner = np.full(len(mom.cluster_d), np.nan)  # a cluster spans cohorts
            return
        self.roots = []
        for c in range(k):  # M_c = Σ_i [d_i; 1][d_i; 1]ᵀ over the cohort's units
            moment = np.empty((t + 1, t + 1))
            moment[:t, :t], moment[:t, t], moment[t, :t] = mom.cross[c], mom.dsum[c], mom.dsum[c]
            moment[t, t] = mom.sizes[c]
            self.roots.append(_root(moment))
        self.owner = np.repeat(mom.levels, [len(r) for r in self.roots])

    def __call__(self, lin: _Linear) -> np.ndarray:
        mom = self.mom
        if mom.cluster_n is not None:  # Σ_{i∈cluster} IF_i = Σ_c D_kc·slope_c + N_kc const_c
            k, m, t = lin.slope.shape
            slope = lin.slope.transpose(0, 2, 1).reshape(k * t, m)
            return self.flat @ slope + mom.cluster_n @ lin.const
        return np.vstack(
            [root @ np.vstack([lin.slope[c].T, lin.const[c]]) for c, root in enumerate(self.roots)]
        )


def _table(cells, att, rows, mom: _Moments, periods, conf_level: float, clustered: bool):
    """The row path's ATT(g,t) table (``did_cs._group_time_effects``)."""
    se = np.sqrt(np.einsum("ij,ij->j", rows, rows)) / mom.n
    if not clustered:  # did_cs masks tiny SEs; did_cs_run.clustered_cells does not
        se[se <= ZERO_SE] = np.nan
    z = stats.norm.ppf(0.5 + conf_level / 2)
    times = periods[cells.t]
    group = cells.group
    if np.issubdtype(times.dtype, np.integer) and np.all(mom.levels == np.round(mom.levels)):
        group = group.astype(times.dtype)
    return pd.DataFrame(
        {
            "group": group,
            "time": times,
            "event_time": times - group,
            "att": att,
            "std_error": se,
            "conf_low": att - z * se,
            "conf_high": att + z * se,
            "post": group <= times,
            "n_treated": mom.sizes[cells.treated],
            "n_control": [int(mom.sizes[c].sum()) for c in cells.controls],
            "base_time": periods[cells.base],
        }
    )


# --- aggregations and the pre-test ---------------------------------------------------------------


def _aggregate(effects, fx, kind, lin: _Linear, rows_of, mom: _Moments, opts, banded: bool):
    """``did_cs_aggregate.aggregate`` + ``did_cs_run._with_band`` on influence rows."""
    tb = effects.table
    att = np.nan_to_num(tb["att"].to_numpy(float))
    k, share = len(mom.levels), mom.sizes / mom.n
    cell_code = np.searchsorted(mom.levels, tb["group"].to_numpy(float))
    pg = share[cell_code]
    selections, labels, rule = _levels(effects, kind, -math.inf, math.inf, None)
    if not selections or not any(s.any() for s in selections):
        raise DesignError(f"no group-time effects fall in the {kind} aggregation")
    weight = np.zeros((len(att), len(selections)))
    extra = np.zeros((k, len(selections)))  # R's wif: the estimated weights' own influence
    for j, sel in enumerate(selections):
        weight[sel, j] = pg[sel] / pg[sel].sum() if rule != "group" else 1 / sel.sum()
        if rule != "group":
            extra[:, j] = _wif_by_cohort(sel, att, pg, cell_code, k)
    est = att @ weight
    overall, u, extra_u = _overall(rule, est, labels, mom.levels, share)
    if u is not None:  # overall = levels @ u (+ its own wif): one more column up front
        weight = np.column_stack([weight @ u, weight])
        extra = np.column_stack([extra @ u + extra_u, extra])
    rows = rows_of(lin.combine(weight, extra))
    level_rows = rows if u is None else rows[:, 1:]
    args = (fx, kind, overall, rows[:, 0], labels, est, level_rows)
    analytic = _finish(*args, 0, None, False, "mammen", None)
    n_boot = opts.n_boot if banded else 0
    if not n_boot or analytic.table is None:
        return analytic
    clustered = mom.cluster_n is not None
    if clustered:  # the row path's bootstrap on the same cluster rows: the same draws
        crit = _finish(*args, n_boot, opts.seed, False, "rademacher", None).critical_value
    else:
        crit = _gaussian_critical_value(analytic, level_rows, mom.n, opts.seed)
    table = analytic.table.copy()
    table["band_low"] = table["estimate"] - crit * table["std_error"]
    table["band_high"] = table["estimate"] + crit * table["std_error"]
    return replace(analytic, table=table, critical_value=crit, n_boot=n_boot if clustered else 0)


def _overall(rule, est: np.ndarray, labels, levels: np.ndarray, share: np.ndarray):
    """The overall estimate, its weights over the levels and (group rule) its own wif."""
    if rule is None:
        return float(est[0]), None, None
    k = len(levels)
    if rule == "group":
        code = np.searchsorted(levels, labels)
        pgg = share[code]
        wif = _wif_by_cohort(np.ones(len(labels), bool), est, pgg, code, k)
        return float(est @ pgg / pgg.sum()), pgg / pgg.sum(), wif
    use = labels >= 0 if rule == "dynamic" else np.ones(len(labels), bool)
    if not use.any():
        return math.nan, np.full(len(labels), np.nan), np.zeros(k)
    return float(est[use].mean()), use / use.sum(), np.zeros(k)


def _gaussian_critical_value(agg: Aggregation, level_rows, n: int, seed: int) -> float:
    """Sup-t critical value of the levels from N(0, exact covariance), R aggte's guards."""
    se = agg.table["std_error"].to_numpy(float)
    ok = np.isfinite(se) & (se > 0)
    crit = math.nan
    if ok.any():
        block = level_rows[:, ok]
        cov = block.T @ block / n**2
        crit = horizons.sup_t_critical_value(cov, conf_level=agg.conf_level, seed=seed)
    return _checked_crit(crit, stats.norm.ppf(0.5 + agg.conf_level / 2))


def _pretest(table: pd.DataFrame, rows: np.ndarray, n: int) -> dict:
    """``did_cs_run.pretest`` on influence rows (units' n, not the rows')."""
    variance = table["std_error"].to_numpy() ** 2
    pre = np.flatnonzero(~table["post"].to_numpy() & (variance > 0) & np.isfinite(variance))
    if pre.size == 0:
        return {"w": math.nan, "df": 0, "p_value": math.nan, "note": "no pre-period cells"}
    block = rows[:, pre]
    cov = block.T @ block / n
    if np.linalg.cond(cov) > 1 / np.finfo(float).eps:
        return {
            "w": math.nan,
            "df": int(pre.size),
            "p_value": math.nan,
            "note": "singular covariance of the pre-period cells",
        }
    theta = table["att"].to_numpy()[pre]
    w = float(n * theta @ np.linalg.solve(cov, theta))
    return {"w": w, "df": int(pre.size), "p_value": float(stats.chi2.sf(w, pre.size))}
