"""A validated long panel for difference-in-differences: integer codes, cohorts, clusters.

Every DiD estimator works from :class:`DidPanel`: units and periods as integer codes (periods in
time order), the cohort of each unit (its first treated period, 0 for never treated), the
outcome, the cluster of each unit and optional covariates. Building it is where bad input is
caught, with the unit, period or column named: duplicate unit-period rows, a time column that
cannot be ordered, treatment that switches off again, cohorts off the time grid, missing values.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal.errors import DataError, DesignError

NEVER = 0  # cohort code of never-treated units (as R `did` and `mpdta` write it)


@dataclass(frozen=True)
class DidPanel:
    """A long panel as arrays, one entry per unit-period row (sorted by unit, then time).

    ``cohort_pos`` is the position in ``times`` of each unit's first treated period, or -1 for
    never-treated units, so event time is ``time_code - cohort_pos``.
    """

    unit_code: np.ndarray  # per row, 0..n_units-1
    time_code: np.ndarray  # per row, 0..n_periods-1 in time order
    y: np.ndarray  # per row, float64
    units: np.ndarray  # unit id per unit code
    times: np.ndarray  # period value per time code (sorted)
    cohort_pos: np.ndarray  # per unit: position of the first treated period, -1 never
    cluster_code: np.ndarray  # per unit, 0..n_clusters-1
    covariates: pd.DataFrame  # per row, numeric (may have no columns)
    outcome: str
    unit: str
    time: str
    cluster: str

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_periods(self) -> int:
        return len(self.times)

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_code.max()) + 1

    @property
    def balanced(self) -> bool:
        return len(self.y) == self.n_units * self.n_periods

    @property
    def row_cohort_pos(self) -> np.ndarray:
        return self.cohort_pos[self.unit_code]

    @property
    def cohort_values(self) -> np.ndarray:
        """Per unit, the first treated period as a time value (0 for never treated)."""
        out = np.zeros(self.n_units, dtype=object)
        treated = self.cohort_pos >= 0
        out[treated] = self.times[self.cohort_pos[treated]]
        return out

    def treated_indicator(self) -> np.ndarray:
        """Per row, 1 where the unit is treated in that period."""
        pos = self.row_cohort_pos
        return ((pos >= 0) & (self.time_code >= pos)).astype(np.float64)

    def wide_outcome(self) -> np.ndarray:
        """Units × periods outcome matrix (balanced panels only)."""
        if not self.balanced:
            raise DesignError("a units × periods matrix needs a balanced panel")
        return self.y.reshape(self.n_units, self.n_periods)


def build_did_panel(
    table: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    treatment: str | None = None,
    first_treated: str | None = None,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
) -> DidPanel:
    """Validate a long table and turn it into a :class:`DidPanel`.

    Give either ``treatment`` (0/1 per unit-period; treatment must not switch off again) or
    ``first_treated`` (each unit's first treated period; 0 or missing for never treated).
    ``cluster`` defaults to the unit and must be constant within a unit.

    Examples
    --------
    >>> t = pd.DataFrame({"u": [1, 1, 2, 2], "t": [1, 2, 1, 2], "y": [1.0, 3, 1, 2],
    ...                   "d": [0, 1, 0, 0]})
    >>> p = build_did_panel(t, unit="u", time="t", outcome="y", treatment="d")
    >>> p.cohort_values.tolist(), p.balanced
    ([2, 0], True)
    """
    if (treatment is None) == (first_treated is None):
        raise DesignError("give exactly one of a 0/1 treatment column or a first-treated column")
    cluster = cluster or unit
    covariates = list(covariates)
    needed = [unit, time, outcome, treatment or first_treated, cluster, *covariates]
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        raise DataError(
            f"the analysis table has no column(s) {missing}; columns are {list(table.columns)}"
        )
    _check_time_orderable(table[time], time)
    unit_codes, units = _sorted_codes(table[unit].to_numpy())
    time_codes, times = _sorted_codes(table[time].to_numpy())
    if len(times) < 2:
        raise DesignError(f"the time column {time!r} has a single period; DiD needs two or more")
    # Sort by (unit, time) through one integer key; tables that arrive sorted are not copied.
    key = unit_codes.astype(np.int64) * len(times) + time_codes
    steps = np.diff(key)
    if not (steps > 0).all():
        order = np.argsort(key, kind="stable")
        _check_no_duplicates(table, unit, time, key[order], order)
        table = table.take(order).reset_index(drop=True)
        unit_codes, time_codes = unit_codes[order], time_codes[order]
    y = _numeric_no_missing(table, outcome, unit, time, role="outcome")
    times = np.asarray(times)
    if treatment is not None:
        cohort_pos = _cohorts_from_treatment(table, unit, treatment, unit_codes, time_codes, units)
    else:
        cohort_pos = _cohorts_from_column(table, unit, first_treated, unit_codes, times)
    if cluster == unit:
        cluster_code = np.arange(len(units), dtype=np.int64)
    else:
        cluster_code = _unit_level_clusters(table, unit, cluster, unit_codes, len(units))
    covs = pd.DataFrame(
        {c: _numeric_no_missing(table, c, unit, time, role="covariate") for c in covariates}
    )
    return DidPanel(
        unit_code=unit_codes.astype(np.int64),
        time_code=time_codes.astype(np.int64),
        y=y,
        units=np.asarray(units),
        times=times,
        cohort_pos=cohort_pos,
        cluster_code=cluster_code,
        covariates=covs,
        outcome=outcome,
        unit=unit,
        time=time,
        cluster=cluster,
    )


def check_controls(panel: DidPanel, control_group: str) -> None:
    """Raise when there is nothing to compare the treated units with; warn on one-unit cohorts."""
    pos = panel.cohort_pos
    if not (pos >= 0).any():
        raise DesignError(
            f"no unit is ever treated in the panel (column for {panel.unit!r}); nothing to estimate"
        )
    never = int((pos < 0).sum())
    if control_group == "never_treated" and never == 0:
        raise DesignError(
            "no never-treated units: every unit is treated by the last period; set "
            "design.control_group: not_yet_treated to compare with units treated later"
        )
    if control_group == "not_yet_treated" and never == 0 and len(np.unique(pos)) < 2:
        raise DesignError(
            "no never-treated and no not-yet-treated units: all units start together and none "
            "stays untreated, so there is no comparison group"
        )
    cohorts, counts = np.unique(pos[pos >= 0], return_counts=True)
    single = [str(panel.times[c]) for c, n in zip(cohorts, counts, strict=True) if n == 1]
    if single:
        warnings.warn(
            f"cohort(s) first treated in {', '.join(single)} have a single unit; their "
            "effects rest on one unit and their standard errors are unreliable",
            stacklevel=2,
        )


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes in sorted order of the values; a non-decreasing numeric column (a table
    already sorted by unit) is coded in one pass instead of a hash-based factorize."""
    if values.dtype.kind in "iuf" and len(values) > 1:
        steps = np.diff(values)
        if (steps >= 0).all():
            new = np.r_[True, steps > 0]
            return np.cumsum(new) - 1, values[new]
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques)


def _check_time_orderable(values: pd.Series, column: str) -> None:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric or pd.api.types.is_datetime64_any_dtype(values):
        if values.isna().any():
            raise DataError(f"time column {column!r} has {int(values.isna().sum())} missing values")
        return
    sample = ", ".join(map(repr, pd.unique(values.dropna()).tolist()[:3]))
    raise DataError(
        f"time column {column!r} cannot be ordered (values like {sample}); give periods as "
        "numbers (year, month index) or dates, e.g. CAST(... AS DATE) in the spec's query"
    )


def _check_no_duplicates(table, unit, time, sorted_key, order) -> None:
    repeated = np.flatnonzero(np.diff(sorted_key) == 0)
    if repeated.size:
        rows = table.iloc[order[repeated[:3]]]
        shown = ", ".join(
            f"({u!r}, {t!r})"
            for u, t in zip(*(rows[c].tolist() for c in (unit, time)), strict=True)
        )
        raise DataError(
            f"{repeated.size} rows repeat a ({unit}, {time}) pair, e.g. {shown}; a panel needs "
            "one row per unit and period — aggregate in the spec's query"
        )


def _numeric_no_missing(
    table: pd.DataFrame, column: str, unit: str, time: str, *, role: str
) -> np.ndarray:
    values = table[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(f"{role} column {column!r} must be numeric; found dtype {values.dtype}")
    # One copy to float64 (pandas' NA becomes NaN) and one isfinite pass catch NaN and ±inf.
    array = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    finite = np.isfinite(array)
    if not finite.all():
        where = int(np.argmin(finite))
        u, t = (table[c].iloc[[where]].tolist()[0] for c in (unit, time))
        raise DataError(
            f"{role} column {column!r} has {int((~finite).sum())} missing or infinite values, "
            f"first at {unit}={u!r}, {time}={t!r}; fill or drop them in the query"
        )
    return array


def _cohorts_from_treatment(table, unit, column, unit_codes, time_codes, units) -> np.ndarray:
    d = table[column]
    if d.isna().any() or not set(pd.unique(d).tolist()) <= {0, 1}:
        shown = ", ".join(map(repr, pd.unique(d).tolist()[:5]))
        raise DataError(f"treatment column {column!r} must be 0/1 per unit-period; found {shown}")
    d = d.to_numpy(dtype=np.int8)
    n = len(units)
    big = np.iinfo(np.int64).max
    first_on = np.full(n, big, dtype=np.int64)
    on = d == 1
    np.minimum.at(first_on, unit_codes[on], time_codes[on])
    switched_off = (~on) & (time_codes > first_on[unit_codes])
    if switched_off.any():
        bad = pd.unique(units[unit_codes[switched_off]])
        shown = ", ".join(map(repr, bad[:5].tolist()))
        raise DataError(
            f"treatment column {column!r} switches off again for {len(bad)} unit(s) "
            f"({unit}: {shown}); staggered DiD assumes that once treated a unit stays treated — "
            "drop those units or model the switch-off separately"
        )
    cohort = np.where(first_on == big, -1, first_on)
    return _drop_always_treated_warning(cohort, unit)


def _cohorts_from_column(table, unit, column, unit_codes, times) -> np.ndarray:
    g = table[column]
    if not (pd.api.types.is_numeric_dtype(g) or pd.api.types.is_datetime64_any_dtype(g)):
        raise DataError(f"first-treated column {column!r} must hold periods; found {g.dtype}")
    values = g.to_numpy()
    starts = np.flatnonzero(np.r_[True, np.diff(unit_codes) != 0])  # rows are sorted by unit
    first_values = values[starts]
    if not _same_within_unit(values, first_values, unit_codes):
        raise DataError(f"first-treated column {column!r} varies within a {unit}; it is per unit")
    first = pd.Series(first_values)
    is_never = first.isna() | (first == NEVER)
    values = first[~is_never]
    pos = np.searchsorted(times, values.to_numpy())
    late = pos >= len(times)
    if late.any():
        warnings.warn(
            f"{int(late.sum())} unit(s) are first treated after the last period; they count as "
            "never treated in this window",
            stacklevel=3,
        )
    inside = pos < len(times)
    off_grid = inside & (times[np.minimum(pos, len(times) - 1)] != values.to_numpy())
    if off_grid.any():
        bad = values[off_grid].unique()[:3].tolist()
        raise DataError(
            f"first-treated column {column!r} has periods not among the time values, e.g. {bad}"
        )
    cohort = np.full(len(first), -1, dtype=np.int64)
    cohort[np.flatnonzero(~is_never.to_numpy())[inside]] = pos[inside]
    return _drop_always_treated_warning(cohort, unit)


def _same_within_unit(values, per_unit, unit_codes) -> bool:
    spread = per_unit[unit_codes]
    both_missing = pd.isna(values) & pd.isna(spread)
    return bool(((values == spread) | both_missing).all())


def _drop_always_treated_warning(cohort: np.ndarray, unit: str) -> np.ndarray:
    always = cohort == 0
    if always.all():
        raise DesignError("every unit is treated from the first period; there is no pre-period")
    if always.any():
        warnings.warn(
            f"{int(always.sum())} {unit}(s) are treated from the first period on; with no "
            "pre-period they identify nothing and are left out of Callaway–Sant'Anna",
            stacklevel=3,
        )
    return cohort


def _unit_level_clusters(table, unit, cluster, unit_codes, n_units) -> np.ndarray:
    codes, _ = pd.factorize(table[cluster].to_numpy(), sort=True)
    if (codes < 0).any():
        raise DataError(f"cluster column {cluster!r} has missing values")
    per_unit = np.full(n_units, -1, dtype=np.int64)
    per_unit[unit_codes] = codes
    if not np.array_equal(per_unit[unit_codes], codes):
        raise DataError(
            f"cluster column {cluster!r} changes within a {unit}; clusters must contain whole "
            "units (e.g. region, store)"
        )
    return per_unit


def json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows of ``frame`` as JSON-ready dicts (numpy scalars and timestamps made plain)."""
    return [{k: json_plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def json_plain(value):
    """A numpy scalar as its Python value, a timestamp as an ISO date; others unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value
