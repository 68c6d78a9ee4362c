"""Callaway & Sant'Anna (2021) staggered difference-in-differences: group-time effects ATT(g,t).

Callaway, B. & Sant'Anna, P. H. C. (2021). "Difference-in-Differences with multiple time
periods." *Journal of Econometrics* 225(2): 200–230. Our own implementation of what R ``did``
2.x ``att_gt`` computes for a balanced panel (defaults: ``est_method = "dr"``,
``base_period = "varying"``, analytic standard errors):

- each cohort g (units first treated in period g) is compared, period by period, with the
  never-treated units or with the units not yet treated by then (``control_group``);
- each ATT(g,t) is a two-period DiD between period t and a base period — the previous period
  for pre-treatment cells and g − 1 − anticipation for the others (``base_period="varying"``),
  or always g − 1 − anticipation (``"universal"``, where that cell is reported as exactly 0);
- with covariates each cell is ``DRDID``'s doubly robust / IPW / regression estimator on that
  cell's units (covariates taken in the earlier of the two periods, as R does); without
  covariates all three reduce to a difference of mean outcome changes, which takes a fast path:
  one pass over the wide outcome array per cell, no per-cell frames.

Every cell carries its influence function over all n units (R's scaling: the cell's own
influence function × n / n_cell), so ``std_error = sqrt(sum(IF**2)) / n`` and aggregations
(:mod:`causal.designs.did_cs_aggregate`) combine cells exactly as R ``aggte`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from causal.designs.did_cs_drdid import ESTIMATORS, CellFailure
from causal.designs.did_cs_panel import MPDTA, WidePanel, prepare_panel
from causal.errors import DesignError

METHODS = ("dr", "ipw", "reg")
CONTROL_GROUPS = ("never_treated", "not_yet_treated")
BASE_PERIODS = ("varying", "universal")
__all__ = ["MPDTA", "GroupTimeEffects", "WidePanel", "group_time_effects"]
ZERO_SE = math.sqrt(np.finfo(float).eps) * 10  # R did: smaller standard errors are NA


@dataclass(frozen=True, eq=False)
class GroupTimeEffects:
    """ATT(g,t) table and the per-unit influence functions behind it.

    ``table`` has one row per (cohort, period) cell: group, time, event_time (time − group),
    att, std_error, conf_low, conf_high (pointwise, ``conf_level``), post (time ≥ group),
    n_treated, n_control and base_time (the cell's base period). ``influence`` is
    n_units × n_cells (float64, Fortran order), column j belonging to table row j, rows to
    ``units`` (sorted by cohort, then unit id) with ``group_of_unit`` their cohort (0 = never
    treated); ``std_error = sqrt(sum(influence**2, axis=0)) / n_units`` as in R ``did``.
    """

    table: pd.DataFrame
    influence: np.ndarray
    units: np.ndarray
    group_of_unit: np.ndarray
    periods: np.ndarray
    control_group: str
    method: str
    base_period: str
    anticipation: int
    conf_level: float
    outcome: str = ""
    covariates: tuple[str, ...] = ()

    @property
    def n_units(self) -> int:
        return len(self.units)


@dataclass(frozen=True)
class _Cells:
    """The (g, t) cells to estimate, in R's order (cohort, then period)."""

    group: np.ndarray
    t: np.ndarray  # period index
    base: np.ndarray  # base-period index
    treated: np.ndarray  # level index of the cohort
    controls: list[np.ndarray]  # level indices of the comparison units
    zero: np.ndarray  # universal base period: the base cell itself, ATT 0 by construction


def _plan(w: WidePanel, control_group: str, base_period: str, anticipation: int) -> _Cells:
    """Cells and their base periods and comparison groups exactly as R ``compute.att_gt``."""
    periods, levels = w.periods, w.levels
    rows: list[tuple] = []
    first = 1 if base_period == "varying" else 0
    for g in w.groups:
        base_g = int(np.flatnonzero(periods + anticipation < g)[-1])  # last pre-period
        treated = int(np.searchsorted(levels, g))
        for t in range(first, len(periods)):
            base = base_g if (base_period == "universal" or g <= periods[t]) else t - 1
            control = levels == 0
            if control_group == "not_yet_treated":
                threshold = periods[max(t, base)] + anticipation
                control |= (levels > threshold) & (levels != g)
            rows.append((g, t, base, treated, np.flatnonzero(control), t == base))
            if len(rows[-1][4]) == 0:
                raise DesignError(
                    f"no comparison units for cohort {g:g} in period {periods[t]}: no unit is "
                    f"never treated or untreated by then; drop cohort {g:g} or shorten the window"
                )
    group, t, base, treated, controls, zero = zip(*rows, strict=True)
    return _Cells(
        np.array(group), np.array(t), np.array(base), np.array(treated), list(controls),
        np.array(zero, dtype=bool),
    )  # fmt: skip


def _fast(w: WidePanel, cells: _Cells, method: str, inf: np.ndarray) -> np.ndarray:
    """No covariates: ATT = mean ΔY (cohort) − mean ΔY (comparison), influence in place.

    For unit i of the cohort the influence is n (ΔY_i − mean_treated) / n_treated, for a
    comparison unit −n (ΔY_i − mean_control) / n_control, else 0 — what DRDID's three panel
    estimators give with an intercept-only design, times R did's n / n_cell.
    """
    y, n, starts, stops = w.y, float(w.n), w.starts, w.stops
    att = np.zeros(len(cells.group))
    for j in np.flatnonzero(~cells.zero):
        col, t, b = inf[:, j], cells.t[j], cells.base[j]
        means = []
        for blocks in ([cells.treated[j]], cells.controls[j]):
            total, count = 0.0, 0
            for c in blocks:
                lo, hi = starts[c], stops[c]
                np.subtract(y[lo:hi, t], y[lo:hi, b], out=col[lo:hi])
                total += col[lo:hi].sum()
                count += hi - lo
            means.append((total / count, count))
        (m1, n1), (m0, n0) = means
        if method != "reg" and n1 / (n1 + n0) >= 0.995:
            _overlap(w, cells, j, f"{n1} of {n1 + n0} units in the cell are treated")
        for blocks, mean, scale in (
            ([cells.treated[j]], m1, n / n1),
            (cells.controls[j], m0, -n / n0),
        ):
            for c in blocks:
                seg = col[starts[c] : stops[c]]
                seg -= mean
                seg *= scale
        att[j] = m1 - m0
    return att


def _overlap(w: WidePanel, cells: _Cells, j: int, detail: str):
    raise DesignError(
        f"overlap fails for cohort {cells.group[j]:g} in period {w.periods[cells.t[j]]}: {detail} "
        "(propensity score near 1); drop covariates that separate this cohort from its "
        "comparison units, or use method='reg'"
    )


def _general(
    w: WidePanel, cells: _Cells, method: str, inf: np.ndarray, covariates: Sequence[str]
) -> np.ndarray:
    """Covariates (or a forced intercept-only design): DRDID's estimator cell by cell."""
    estimator = ESTIMATORS[method]
    ranges = [np.arange(lo, hi) for lo, hi in zip(w.starts, w.stops, strict=True)]
    att = np.zeros(len(cells.group))
    n = w.n
    for j in np.flatnonzero(~cells.zero):
        t, b = cells.t[j], cells.base[j]
        rows = np.concatenate([ranges[c] for c in [cells.treated[j], *cells.controls[j]]])
        d = (w.cohort[rows] == cells.group[j]).astype(float)
        dy = w.y[rows, t] - w.y[rows, b]
        x = np.ones((len(rows), 1))
        if w.x is not None:  # covariates in the earlier of the two periods, as R did
            x = np.column_stack([x, w.x[rows, min(t, b), :]])
        try:
            att[j], cell_inf = estimator(dy, d, x)
        except CellFailure as err:
            if err.kind == "overlap":
                _overlap(w, cells, j, str(err))
            raise DesignError(
                f"cannot estimate cohort {cells.group[j]:g} in period {w.periods[t]}: {err} "
                f"with covariates {list(covariates)}; drop constant or collinear covariates"
            ) from None
        inf[rows, j] = cell_inf * (n / len(rows))
    return att


def _validate(control_group: str, method: str, base_period: str, anticipation: int, conf: float):
    for value, allowed, name in (
        (control_group, CONTROL_GROUPS, "control_group"),
        (method, METHODS, "method"),
        (base_period, BASE_PERIODS, "base_period"),
    ):
        if value not in allowed:
            raise DesignError(f"unknown {name} {value!r}; use one of {', '.join(allowed)}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise DesignError(f"anticipation must be a whole number >= 0, got {anticipation!r}")
    if not 0 < conf < 1:
        raise DesignError(f"conf_level must be between 0 and 1, got {conf!r}")


def group_time_effects(
    panel: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    covariates: Sequence[str] = (),
    control_group: Literal["never_treated", "not_yet_treated"] = "never_treated",
    method: Literal["dr", "ipw", "reg"] = "dr",
    base_period: Literal["varying", "universal"] = "varying",
    anticipation: int = 0,
    conf_level: float = 0.95,
) -> GroupTimeEffects:
    """Estimate every ATT(g,t) of a staggered adoption panel (R ``did::att_gt``).

    Parameters
    ----------
    panel
        Long panel, one row per unit and period.
    unit, time, cohort, outcome
        Column names. ``cohort`` is the unit's first treated period (0 = never treated);
        periods are orderable numbers (years, month indexes).
    covariates
        Pre-treatment covariates (numeric, no missing values); none gives the fast path.
    control_group
        ``"never_treated"`` or ``"not_yet_treated"`` (never treated plus units first treated
        after max(t, base period) + anticipation).
    method
        ``"dr"`` (doubly robust, Sant'Anna & Zhao 2020), ``"ipw"`` or ``"reg"``.
    base_period
        ``"varying"`` (pre-treatment cells compare t with t − 1) or ``"universal"``.
    anticipation
        Periods of anticipation: the base period is g − 1 − anticipation.
    conf_level
        Level of the pointwise intervals in the table.

    Returns
    -------
    GroupTimeEffects
        The cell table and the influence functions for :func:`did_cs_aggregate.aggregate`.

    Raises
    ------
    DesignError
        Unknown options, no never-treated units for ``control_group="never_treated"``, a
        cell without comparison units, missing covariate values, overlap failure or a
        singular covariate design (the message names the cohort and period).

    Examples
    --------
    >>> mpdta = pd.read_csv(MPDTA)
    >>> fx = group_time_effects(mpdta, unit="countyreal", time="year", cohort="first.treat",
    ...                         outcome="lemp")
    >>> fx.table[["group", "time", "att", "std_error"]].head(3).round(4)
       group  time     att  std_error
    0   2004  2004 -0.0105     0.0233
    1   2004  2005 -0.0704     0.0310
    2   2004  2006 -0.1373     0.0364
    """
    return _group_time_effects(
        panel, unit=unit, time=time, cohort=cohort, outcome=outcome, covariates=covariates,
        control_group=control_group, method=method, base_period=base_period,
        anticipation=anticipation, conf_level=conf_level,
    )  # fmt: skip


def _group_time_effects(
    panel: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    covariates: Sequence[str] = (),
    control_group: str = "never_treated",
    method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    conf_level: float = 0.95,
    force_general: bool = False,
) -> GroupTimeEffects:
    """:func:`group_time_effects`; ``force_general`` runs DRDID's estimators without covariates."""
    _validate(control_group, method, base_period, anticipation, conf_level)
    covariates = tuple(covariates)
    w = prepare_panel(
        panel, unit=unit, time=time, cohort=cohort, outcome=outcome, covariates=covariates,
        control_group=control_group, anticipation=int(anticipation),
    )  # fmt: skip
    cells = _plan(w, control_group, base_period, int(anticipation))
    inf = np.zeros((w.n, len(cells.group)), order="F")
    if covariates or force_general:
        att = _general(w, cells, method, inf, covariates)
    else:
        att = _fast(w, cells, method, inf)
    se = np.sqrt(np.einsum("ij,ij->j", inf, inf)) / w.n
    se[se <= ZERO_SE] = np.nan
    z = stats.norm.ppf(0.5 + conf_level / 2)
    times = w.periods[cells.t]
    group, cohort_of_row = cells.group, w.cohort
    if np.issubdtype(times.dtype, np.integer) and np.all(w.levels == np.round(w.levels)):
        group, cohort_of_row = group.astype(times.dtype), cohort_of_row.astype(times.dtype)
    n_levels = w.stops - w.starts
    table = pd.DataFrame(
        {
            "group": group,
            "time": times,
            "event_time": times - group,
            "att": att,
            "std_error": se,
            "conf_low": att - z * se,
            "conf_high": att + z * se,
            "post": group <= times,
            "n_treated": n_levels[cells.treated],
            "n_control": [int(n_levels[c].sum()) for c in cells.controls],
            "base_time": w.periods[cells.base],
        }
    )
    return GroupTimeEffects(
        table=table,
        influence=inf,
        units=w.units,
        group_of_unit=cohort_of_row,
        periods=w.periods,
        control_group=control_group,
        method=method,
        base_period=base_period,
        anticipation=int(anticipation),
        conf_level=conf_level,
        outcome=outcome,
        covariates=covariates,
    )
