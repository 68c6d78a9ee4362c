"""Long panel → wide arrays for the Callaway & Sant'Anna estimator, with R ``did``'s sample rules.

Rules (R ``did`` 2.x ``pre_process_did``): cohorts later than the last period (+ anticipation)
count as never treated; without never-treated units the not-yet-treated comparison drops the
periods from the last cohort's (anticipation-adjusted) start on and does not estimate that cohort;
units already treated in the first period are dropped; units not observed with an outcome in
every period are dropped (the panel is balanced), each with a warning saying how many.

Rows of the wide arrays are sorted by cohort, then unit id, so every cohort is one contiguous
block of rows: cohort means and influence functions are then plain slices.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causal.errors import DataError, DesignError

MPDTA = Path(__file__).resolve().parent.parent / "data" / "datasets" / "mpdta.csv"


@dataclass(frozen=True, eq=False)
class WidePanel:
    """A balanced panel as arrays; rows sorted by (cohort, unit)."""

    y: np.ndarray  # n_units x n_periods outcomes, Fortran order (a period is contiguous)
    x: np.ndarray | None  # n_units x n_periods x n_covariates, or None
    units: np.ndarray  # unit ids in row order
    cohort: np.ndarray  # first treated period per row, 0 = never treated (float64)
    periods: np.ndarray  # sorted periods kept
    groups: np.ndarray  # treated cohorts to estimate, ascending
    levels: np.ndarray  # distinct cohort values present (0 first when present)
    starts: np.ndarray  # first row of each level's block
    stops: np.ndarray  # one past the last row of each level's block

    @property
    def n(self) -> int:
        return len(self.units)


def _plain(value):
    """numpy scalars as Python ones, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _numeric(values: np.ndarray, column: str, what: str) -> np.ndarray:
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise DataError(f"column '{column}' ({what}) must be numeric; got dtype {values.dtype}")
    return values


def _codes(panel: pd.DataFrame, unit: str, time: str) -> tuple:
    """Unit and period codes of each row, the unique units and the sorted periods."""
    times = _numeric(panel[time].to_numpy(), time, "time period")
    if pd.isna(times).any():
        raise DataError(f"column '{time}' (time period) has missing values; fill or drop them")
    tcode, periods = pd.factorize(times, sort=True)
    ucode, units = pd.factorize(panel[unit].to_numpy())
    if (ucode < 0).any():
        raise DataError(f"column '{unit}' (unit id) has missing values; fill or drop them")
    return ucode, np.asarray(units), tcode, np.asarray(periods)


def _unit_cohorts(g_rows, ucode, units, cohort: str, matrix=None) -> np.ndarray:
    """Each unit's cohort; an error if missing, negative or not constant within the unit."""
    if np.isnan(g_rows).any():
        raise DataError(
            f"column '{cohort}' (first treated period) has missing values; use 0 for units "
            "that are never treated"
        )
    if (g_rows < 0).any():
        raise DataError(f"column '{cohort}' must be 0 (never treated) or a treatment period")
    if matrix is not None:  # regular layout: compare every period with the first
        g_mat = matrix(g_rows)
        g_unit = g_mat[:, 0].copy()
        varying_unit = (g_mat != g_unit[:, None]).any(axis=1)
        bad = units[np.argmax(varying_unit)] if varying_unit.any() else None
    else:
        g_unit = np.empty(len(units))
        g_unit[ucode] = g_rows
        varying = g_unit[ucode] != g_rows
        bad = units[ucode[np.argmax(varying)]] if varying.any() else None
    if bad is not None:
        raise DataError(
            f"column '{cohort}' changes over time for unit {_plain(bad)!r}; it must be the "
            "unit's first treated period (0 = never), the same in every row of the unit"
        )
    return g_unit


def _no_duplicates(ucode, tcode, units, periods) -> None:
    n_periods = len(periods)
    counts = np.bincount(ucode * n_periods + tcode, minlength=len(units) * n_periods)
    if counts.max() > 1:
        k = int(np.argmax(counts))
        raise DataError(
            f"unit {_plain(units[k // n_periods])!r} has {counts[k]} rows in period "
            f"{_plain(periods[k % n_periods])!r}; the panel needs one row per unit and period"
        )


def prepare_panel(
    panel: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    covariates: Sequence[str],
    control_group: str,
    anticipation: int,
) -> WidePanel:
    """Validate a long panel and reshape it to :class:`WidePanel` (see the module docstring).

    Examples
    --------
    >>> w = prepare_panel(pd.read_csv(MPDTA), unit="countyreal", time="year",
    ...                   cohort="first.treat", outcome="lemp", covariates=(),
    ...                   control_group="never_treated", anticipation=0)
    >>> w.y.shape, w.periods.tolist(), w.groups.tolist()
    ((500, 5), [2003, 2004, 2005, 2006, 2007], [2004.0, 2006.0, 2007.0])
    >>> w.levels.tolist(), w.starts.tolist(), w.stops.tolist()  # cohort blocks of rows
    ([0.0, 2004.0, 2006.0, 2007.0], [0, 309, 329, 369], [309, 329, 369, 500])
    """
    needed = [unit, time, cohort, outcome, *covariates]
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise DataError(f"panel has no column(s) {missing}; columns are {list(panel.columns)}")
    for col in covariates:
        _numeric(panel[col].to_numpy(), col, "covariate; one-hot encode categories first")
        if panel[col].isna().any():
            raise DesignError(
                f"covariate '{col}' has {int(panel[col].isna().sum())} missing values; impute "
                "them or drop the covariate (the estimator needs it for every unit)"
            )
    ucode, units, tcode, periods = _codes(panel, unit, time)
    n_units, n_periods = len(units), len(periods)
    y = _numeric(panel[outcome].to_numpy(), outcome, "outcome").astype(float, copy=False)
    g_rows = _numeric(panel[cohort].to_numpy(), cohort, "cohort").astype(float, copy=False)
    shape = (n_units, n_periods)
    # rows already sorted by unit, then period, one per pair: reshape instead of scattering
    regular = len(y) == n_units * n_periods and bool(
        (ucode.reshape(shape) == np.arange(n_units)[:, None]).all()
        and (tcode.reshape(shape) == np.arange(n_periods)).all()
    )
    if not regular:
        _no_duplicates(ucode, tcode, units, periods)

    def matrix(values: np.ndarray) -> np.ndarray:
        """Row-level values as units x periods (C order), NaN where a pair has no row."""
        if regular:
            return values.reshape(shape)
        out = np.full(shape, np.nan)
        out[ucode, tcode] = values
        return out

    y_mat = matrix(y)
    g_unit = _unit_cohorts(g_rows, ucode, units, cohort, matrix if regular else None)
    observed = np.isfinite(y_mat)  # R did drops rows with missing or infinite values

    # R did: cohorts after the last period (+ anticipation) are never treated within the window
    g_unit[g_unit > periods[-1] + anticipation] = 0
    groups = np.unique(g_unit[g_unit > 0])
    n_keep_periods = n_periods
    if not (g_unit == 0).any():
        if control_group == "never_treated":
            raise DesignError(
                f"no never-treated units (cohort '{cohort}' == 0) to compare with; use "
                "control_group='not_yet_treated' to compare with units treated later"
            )
        last = groups.max()
        n_keep_periods = int(np.searchsorted(periods, last - anticipation, side="left"))
        groups = groups[groups < last]
        warnings.warn(
            f"no never-treated units: periods from {last - anticipation} on have no comparison "
            f"units and are dropped, and cohort {last} serves only as a comparison group",
            stacklevel=4,
        )
        if n_keep_periods < 2:
            raise DesignError(
                "no never-treated units and fewer than two periods before the last cohort "
                "starts: there is nothing to compare with"
            )
    periods = periods[:n_keep_periods]
    groups = groups[groups > periods[0] + anticipation]
    early = (g_unit > 0) & (g_unit <= periods[0] + anticipation)
    if early.any():
        warnings.warn(
            f"dropped {int(early.sum())} units already treated in the first period "
            f"{periods[0]} (cohort <= first period + anticipation): they have no pre-period",
            stacklevel=4,
        )
    complete = observed[:, :n_keep_periods].all(axis=1)
    if not complete.all():
        warnings.warn(
            f"dropped {int((~complete).sum())} of {n_units} units not observed with a "
            f"finite '{outcome}' in every period, to balance the panel (as R did does)",
            stacklevel=4,
        )
    keep = complete & ~early
    if not keep.any():
        raise DesignError(
            "no unit is observed in every period: the balanced panel is empty; check the "
            f"'{unit}' and '{time}' columns or fill missing '{outcome}' values"
        )
    by_id = np.argsort(units, kind="stable")
    by_id = by_id[keep[by_id]]
    order = by_id[np.argsort(g_unit[by_id], kind="stable")]
    by_period = np.ascontiguousarray(y_mat[:, :n_keep_periods].T)  # periods x units
    wide = np.empty((len(order), n_keep_periods), order="F")
    for k in range(n_keep_periods):  # a row gather per period: cache-friendly, no temporaries
        np.take(by_period[k], order, out=wide[:, k])
    del by_period
    x = None
    if covariates:
        x = np.empty((len(order), n_keep_periods, len(covariates)))
        for j, col in enumerate(covariates):
            values = panel[col].to_numpy().astype(float, copy=False)
            x[:, :, j] = matrix(values)[order, :n_keep_periods]
    cohort_rows = g_unit[order]
    levels, sizes = np.unique(cohort_rows, return_counts=True)
    groups = groups[np.isin(groups, levels)]
    _check_sizes(levels, sizes, groups, cohort, control_group, len(covariates))
    return WidePanel(
        y=wide,
        x=x,
        units=units[order],
        cohort=cohort_rows,
        periods=periods,
        groups=groups,
        levels=levels,
        starts=np.searchsorted(cohort_rows, levels, side="left"),
        stops=np.searchsorted(cohort_rows, levels, side="right"),
    )


def _check_sizes(levels, sizes, groups, cohort: str, control_group: str, n_cov: int) -> None:
    """R did's size rules: no cohort to estimate or a tiny never-treated group is an error."""
    if len(groups) == 0:
        raise DesignError(
            f"no treated cohort to estimate: column '{cohort}' has no first-treated period "
            "after the first period (+ anticipation) among the kept units"
        )
    need = n_cov + 5  # R did: groups with fewer than (number of covariates + 5) units
    small = [f"{g:g} ({k} units)" for g, k in zip(levels, sizes, strict=True) if k < need]
    if levels[0] == 0 and sizes[0] < need and control_group == "never_treated":
        raise DesignError(
            f"only {sizes[0]} never-treated units, fewer than {need} (covariates + 5): too "
            "few to serve as the comparison group; use control_group='not_yet_treated'"
        )
    if small:
        warnings.warn(
            f"cohorts with very few units may give unstable estimates: {', '.join(small)}",
            stacklevel=5,
        )
