"""Per-look sufficient statistics of a running pilot, from assignment and outcome-event data.

At each look date L a unit counts once it is assigned (``assigned_at ≤ L``), and its outcome is
the sum of its event values dated ``≤ L``. For each look and arm we return n, Σy, Σy² and, with
a pre-period covariate x, Σx, Σx², Σxy: everything :func:`causal.designs.sequential.
difference_at_look` needs, for the difference in means and CUPED.

:func:`look_statistics` makes one pass over the events in date order, keeping a running outcome
total per unit; at each look only the units with new events are touched (Σy² moves by
new² − old²), and counts and covariate sums are cumulative sums over the assignment dates.
:func:`look_statistics_sql` writes the same numbers as one SQL query (DuckDB dialect, portable
constructs only) so a database or Spark can compute them where the data live.

Times are compared as given: with date looks, pass dates (or end-of-day times) as events so an
event on the look day counts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from causal.errors import DataError

ARMS = (0, 1)


def look_statistics(
    units: pd.DataFrame | Mapping[str, Any],
    events: pd.DataFrame | Mapping[str, Any],
    looks: Any,
    *,
    unit: str = "unit_id",
    arm: str = "arm",
    assigned_at: str = "assigned_at",
    covariate: str | None = None,
    event_unit: str = "unit_id",
    event_time: str = "event_at",
    value: str = "value",
) -> pd.DataFrame:
    """Cumulative per-arm sufficient statistics at each look date.

    Parameters
    ----------
    units
        One row per unit: id, arm (0 control, 1 treated), assignment time and optionally a
        pre-period covariate. A DataFrame or a mapping of column name to array.
    events
        Outcome events: unit id, event time, value (e.g. one row per purchase).
    looks
        Increasing look dates.
    unit, arm, assigned_at, covariate, event_unit, event_time, value
        Column names.

    Returns
    -------
    DataFrame
        One row per look: ``look``, ``n_a``, ``sum_y_a``, ``sum_y2_a`` for a = 0, 1, and with a
        covariate ``sum_x_a``, ``sum_x2_a``, ``sum_xy_a``. ``attrs["timings_s"]`` holds the
        seconds spent validating, indexing, bucketing and accumulating.

    Examples
    --------
    >>> units = {"unit_id": [1, 2, 3], "arm": [0, 1, 1],
    ...          "assigned_at": ["2025-01-01", "2025-01-01", "2025-01-02"]}
    >>> events = {"unit_id": [2, 2, 3], "event_at": ["2025-01-01", "2025-01-02", "2025-01-02"],
    ...           "value": [5.0, 1.0, 2.0]}
    >>> t = look_statistics(units, events, ["2025-01-01", "2025-01-02"])
    >>> t[["n_0", "n_1", "sum_y_1", "sum_y2_1"]].to_numpy().tolist()
    [[1.0, 1.0, 5.0, 25.0], [1.0, 2.0, 8.0, 40.0]]
    """
    clock = _Clock()
    ids, arms = np.asarray(units[unit]), np.asarray(units[arm])
    assigned = _as_time(units[assigned_at], assigned_at)
    look_t = _as_time(looks, "looks")
    x = None if covariate is None else np.asarray(units[covariate], dtype=float)
    ev_ids, ev_t = np.asarray(events[event_unit]), _as_time(events[event_time], event_time)
    ev_v = np.asarray(events[value], dtype=float)
    _validate_units(ids, arms, assigned, x, unit=unit, arm=arm, assigned_at=assigned_at)
    _validate_looks(look_t, assigned)
    for bad, column in ((np.isnat(ev_t), event_time), (np.isnan(ev_v), value)):
        if bad.any():
            raise DataError(f"events: {int(bad.sum())} rows have no {column!r}; drop or fill them")
    arms = arms.astype(np.int64)
    clock.lap("validate")

    ev_idx = _positions(ids, ev_ids, event_unit)
    clock.lap("index")

    n_looks, n_units = len(look_t), len(ids)
    early = ev_t < assigned[ev_idx]
    if early.any():
        raise DataError(
            f"events: {int(early.sum())} events are dated before their unit's assignment "
            f"(assignment after the outcome time; first: unit {ids[ev_idx[np.argmax(early)]]}); "
            f"fix '{assigned_at}' or '{event_time}'"
        )
    # Look index at which each unit enters / each event counts: the first look on or after it.
    unit_look = np.searchsorted(look_t, assigned, side="left")
    small = np.int16 if n_looks < 2**15 - 1 else np.int32  # int16: numpy's radix sort
    ev_look = np.searchsorted(look_t, ev_t, side="left").astype(small)
    # Stable sort on the small look index: the one pass over the events in date order.
    order = np.argsort(ev_look, kind="stable")
    bounds = np.searchsorted(ev_look[order], np.arange(n_looks + 1))
    clock.lap("bucket")

    # Counts and covariate sums only grow at assignment dates: cumulative sums over looks.
    out: dict[str, np.ndarray] = {}
    unit_terms = {"n": np.ones(n_units)} | ({} if x is None else {"sum_x": x, "sum_x2": x * x})
    for name, w in unit_terms.items():
        per_look = np.bincount(unit_look * 2 + arms, weights=w, minlength=2 * (n_looks + 1))
        out[name] = np.cumsum(per_look.reshape(n_looks + 1, 2), axis=0)[:n_looks]

    # Outcome sums: a running total per unit, updated look by look with the new events only.
    total = np.zeros(n_units)
    for name in ("sum_y", "sum_y2", "sum_xy"):
        out[name] = np.zeros((n_looks, 2))
    running = np.zeros((3, 2))
    for k in range(n_looks):
        chunk = order[bounds[k] : bounds[k + 1]]
        if len(chunk):
            inc = np.bincount(ev_idx[chunk], weights=ev_v[chunk], minlength=n_units)
            touched = np.flatnonzero(inc)  # a zero net increment changes nothing
            d, old = inc[touched], total[touched]
            total[touched] = old + d
            a = arms[touched]
            running[0] += np.bincount(a, weights=d, minlength=2)
            # new² − old² = d (2 old + d): no cancellation between two large squares
            running[1] += np.bincount(a, weights=d * (2 * old + d), minlength=2)
            if x is not None:
                running[2] += np.bincount(a, weights=d * x[touched], minlength=2)
        out["sum_y"][k], out["sum_y2"][k], out["sum_xy"][k] = running
    clock.lap("accumulate")

    names = ["n", "sum_y", "sum_y2"] + ([] if x is None else ["sum_x", "sum_x2", "sum_xy"])
    frame = pd.DataFrame({"look": look_t} | {f"{m}_{a}": out[m][:, a] for m in names for a in ARMS})
    frame.attrs["timings_s"] = clock.laps
    return frame


def look_statistics_sql(
    units_table: str,
    events_table: str,
    looks_table: str,
    *,
    unit: str = "unit_id",
    arm: str = "arm",
    assigned_at: str = "assigned_at",
    covariate: str | None = None,
    event_unit: str = "unit_id",
    event_time: str = "event_at",
    value: str = "value",
    look: str = "look",
) -> str:
    """One SQL query computing :func:`look_statistics` in the database, one row per look.

    Events are bucketed into the look intervals (previous look, look] by a range join, summed
    per unit and interval, and accumulated per unit by a window sum over the looks from its
    assignment on; a final GROUP BY look pivots the arms. Only standard SQL (CTEs, LAG,
    ROW_NUMBER, windowed SUM, CASE) so Spark or another engine can run it. Table names are
    inserted verbatim (they may be subqueries): never pass untrusted text. The data are not
    validated here: run :func:`look_statistics` checks (or the same rules) on the source.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE u AS SELECT * FROM (VALUES (1, 0, DATE '2025-01-01'), "
    ...                 "(2, 1, DATE '2025-01-01')) t(unit_id, arm, assigned_at)")
    >>> _ = con.execute("CREATE TABLE e AS SELECT * FROM (VALUES (2, DATE '2025-01-02', 3.0)) "
    ...                 "t(unit_id, event_at, value)")
    >>> _ = con.execute("CREATE TABLE l AS SELECT * FROM (VALUES (DATE '2025-01-01'), "
    ...                 "(DATE '2025-01-02')) t(look)")
    >>> con.execute(look_statistics_sql("u", "e", "l")).fetchnumpy()["sum_y_1"].tolist()
    [0.0, 3.0]
    """
    for name in (unit, arm, assigned_at, event_unit, event_time, value, look, covariate):
        if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise DataError(f"column name {name!r} is not a plain SQL identifier; rename it")
    x = f"u.{covariate}" if covariate else "CAST(NULL AS DOUBLE)"
    terms = {"n": "1", "sum_y": "y", "sum_y2": "y * y"}
    if covariate:
        terms |= {"sum_x": "x", "sum_x2": "x * x", "sum_xy": "x * y"}
    select = ",\n  ".join(
        f"COALESCE(SUM(CASE WHEN arm = {a} THEN {expr} END), 0) AS {name}_{a}"
        for name, expr in terms.items()
        for a in ARMS
    )
    return f"""WITH lk AS (
  SELECT {look} AS look,
         ROW_NUMBER() OVER (ORDER BY {look}) AS k,
         LAG({look}) OVER (ORDER BY {look}) AS prev_look
  FROM {looks_table}
),
inc AS (  -- outcome increments per unit and look interval (prev_look, look]
  SELECT e.{event_unit} AS unit_key, lk.k, SUM(e.{value}) AS dy
  FROM {events_table} AS e
  JOIN lk ON e.{event_time} <= lk.look
         AND (lk.prev_look IS NULL OR e.{event_time} > lk.prev_look)
  GROUP BY e.{event_unit}, lk.k
),
grid AS (  -- every unit at every look from its assignment on
  SELECT u.{unit} AS unit_key, u.{arm} AS arm, {x} AS x, lk.k, lk.look
  FROM {units_table} AS u
  JOIN lk ON u.{assigned_at} <= lk.look
),
cum AS (
  SELECT g.look, g.arm, g.x,
         SUM(COALESCE(i.dy, 0)) OVER (
           PARTITION BY g.unit_key ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
         ) AS y
  FROM grid AS g
  LEFT JOIN inc AS i ON i.unit_key = g.unit_key AND i.k = g.k
)
SELECT look,
  {select}
FROM cum
GROUP BY look
ORDER BY look"""


def check_units_stable(previous_ids: Iterable[Any], current_ids: Iterable[Any]) -> int:
    """Check that every unit seen at the previous look is still there; return how many are new.

    A unit can join a running pilot but never leave it: a unit that disappears between looks
    means the source was re-filtered or truncated, and the looks are no longer comparable.

    Examples
    --------
    >>> check_units_stable([1, 2], [1, 2, 3])
    1
    >>> check_units_stable([1, 2, 3], [1, 3])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    causal.errors.DataError: 1 unit(s) seen at the previous look disappeared (first: 2); ...
    """
    prev = pd.Index(pd.unique(np.asarray(list(previous_ids))))
    cur = pd.Index(pd.unique(np.asarray(list(current_ids))))
    gone = prev.difference(cur, sort=False)
    if len(gone):
        raise DataError(
            f"{len(gone)} unit(s) seen at the previous look disappeared (first: {gone[0]}); "
            "the units source must only grow during a pilot: find out why it lost them"
        )
    return len(cur.difference(prev, sort=False))


# --- internals ------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _as_time(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]")
    try:
        return pd.to_datetime(arr).to_numpy("datetime64[ns]")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what!r}: cannot read as dates ({exc}); use ISO dates") from None


def _validate_units(ids, arms, assigned, x, *, unit: str, arm: str, assigned_at: str) -> None:
    missing = np.isnat(assigned)
    if missing.any():
        raise DataError(
            f"units: assignment time '{assigned_at}' is missing for {int(missing.sum())} units "
            f"(first: {ids[np.argmax(missing)]}); fill it or drop units never assigned"
        )
    if not np.isin(arms, ARMS).all():
        raise DataError(f"units: '{arm}' must be 0 (control) or 1 (treated)")
    if len(ids) and not pd.Index(ids).is_unique:
        raise DataError(f"units: '{unit}' has duplicate ids; one row per unit")
    if x is not None and np.isnan(x).any():
        raise DataError("units: the covariate has missing values; fill them (e.g. with 0)")


def _validate_looks(look_t: np.ndarray, assigned: np.ndarray) -> None:
    if len(look_t) == 0 or np.isnat(look_t).any():
        raise DataError("looks: give at least one look date and no missing ones")
    if (np.diff(look_t) <= np.timedelta64(0)).any():
        raise DataError("looks: dates must be strictly increasing; sort and deduplicate them")
    if len(assigned) == 0:
        raise DataError("units: no units; the pilot has not started")
    start = assigned.min()
    if look_t[0] < start:
        raise DataError(
            f"looks: {np.datetime_as_string(look_t[0], unit='D')} is before the pilot started "
            f"(first assignment {np.datetime_as_string(start, unit='D')}); drop looks before it"
        )


def _positions(ids: np.ndarray, event_ids: np.ndarray, column: str) -> np.ndarray:
    """Row of each event's unit in ``ids`` (binary search for sorted integer ids, else hashing)."""
    if ids.dtype.kind in "iu" and event_ids.dtype.kind in "iu" and (np.diff(ids) > 0).all():
        pos = np.minimum(np.searchsorted(ids, event_ids), len(ids) - 1)
        found = ids[pos] == event_ids
    else:
        pos = pd.Index(ids).get_indexer(event_ids)
        found = pos >= 0
    if not found.all():
        raise DataError(
            f"events: {int((~found).sum())} events belong to units not in the units table "
            f"(first: {event_ids[np.argmin(found)]}); check '{column}' or add the units"
        )
    return pos.astype(np.int64)
