"""SQL for the Callaway–Sant'Anna aggregate path: every query the engine runs, and its checks.

Two passes over the long panel (one row per unit × period), each returning a small table:

1. :func:`cells_sql` — per cohort × period: rows, non-missing and non-finite outcomes, and the
   sum of the outcome. It gives the periods, the cohorts and the shift (cohort × period mean)
   used by pass 2.
2. :func:`units_sql` — each unit's periods pivoted into columns (``GROUP BY`` unit), shifted by
   its cohort's period means, then summed per cohort (or per cluster × cohort): unit counts,
   the checks (repeated periods, gaps, a cohort or cluster that changes within a unit) and the
   sums Σ d_s and, clustered by unit, the products Σ d_s d_r. Nothing proportional to the
   number of units comes back.

Only plain SQL both DuckDB and Spark SQL 4 accept unchanged: ``CAST(x AS DOUBLE)``, ``SUM``,
``COUNT``, ``MIN``, ``MAX``, ``CASE WHEN``, ``GROUP BY``, ``HAVING``, ``ORDER BY``, ``LIMIT``.
The ``example_*`` queries run only after a check failed, to name a unit in the message.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from causal.errors import DataError, DesignError

Quote = Callable[[str], str]


def double_quote(identifier: str) -> str:
    """SQL-standard identifier quoting (DuckDB's)."""
    return '"' + identifier.replace('"', '""') + '"'


def quoter(engine) -> Quote:
    """The engine's identifier quoting (backticks on Spark), double quotes otherwise."""
    return getattr(engine, "quote", double_quote)


def number(value: float) -> str:
    """A DOUBLE literal read identically by both engines.

    ``repr`` of a Python float round-trips exactly, and the explicit cast stops Spark from
    reading ``8.25`` as a DECIMAL.

    Examples
    --------
    >>> number(0.1), number(2004)
    ('CAST(0.1 AS DOUBLE)', 'CAST(2004.0 AS DOUBLE)')
    """
    return f"CAST({float(value)!r} AS DOUBLE)"


def period_literal(value) -> str:
    """A period as a literal: integers as written (exact beyond 2**53), others as DOUBLE."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    return number(value)


@dataclass(frozen=True)
class PanelSource:
    """The view and the columns the aggregate path reads, with the engine's quoting.

    Examples
    --------
    >>> src = PanelSource("panel", unit="id", time="t", cohort="g", outcome="y")
    >>> src.select()
    'SELECT "id" AS u, "t" AS t, CAST("g" AS DOUBLE) AS g, CAST("y" AS DOUBLE) AS y FROM "panel"'
    """

    view: str
    unit: str
    time: str
    cohort: str
    outcome: str
    cluster: str | None = None
    quote: Quote = double_quote

    def select(self) -> str:
        """Rows renamed to u, t, g (cohort as DOUBLE), y (DOUBLE) and k (cluster)."""
        q = self.quote
        cluster = f", {q(self.cluster)} AS k" if self.cluster else ""
        return (
            f"SELECT {q(self.unit)} AS u, {q(self.time)} AS t, CAST({q(self.cohort)} AS DOUBLE)"
            f" AS g, CAST({q(self.outcome)} AS DOUBLE) AS y{cluster} FROM {q(self.view)}"
        )


def check_columns(engine, src: PanelSource) -> None:
    """Every named column exists; time, cohort and outcome are numeric (bool is not)."""
    frame = engine.query(f"SELECT * FROM {src.quote(src.view)} WHERE 1 = 0")
    present = {c.lower(): c for c in frame.columns}
    roles = [
        (src.unit, "unit id", False),
        (src.time, "time period", True),
        (src.cohort, "first treated period", True),
        (src.outcome, "outcome", True),
    ]
    if src.cluster:
        roles.append((src.cluster, "cluster", False))
    for column, role, numeric in roles:
        found = column if column in frame.columns else present.get(column.lower())
        if found is None:
            raise DataError(
                f"view {src.view!r} has no column {column!r} ({role}); its columns are "
                f"{list(frame.columns)}"
            )
        dtype = frame[found].dtype
        if numeric and (pd.api.types.is_bool_dtype(dtype) or not is_numeric_dtype(dtype)):
            raise DataError(f"column {column!r} ({role}) must be numeric; got dtype {dtype}")


def cells_sql(src: PanelSource) -> str:
    """Pass 1: per cohort × period, rows, outcomes present, non-finite outcomes and Σ y.

    ``y - y <> 0`` is true exactly for NaN and ±infinity on both engines (both order NaN as
    equal to itself and above every number), so no engine-specific ``isnan`` is needed.

    Examples
    --------
    >>> print(cells_sql(PanelSource("p", unit="i", time="t", cohort="g", outcome="y")))
    ... # doctest: +NORMALIZE_WHITESPACE
    SELECT g, t, CAST(COUNT(*) AS BIGINT) AS n_rows, CAST(COUNT(y) AS BIGINT) AS n_y,
      CAST(SUM(CASE WHEN y - y <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS n_bad, SUM(y) AS sum_y
    FROM (SELECT "i" AS u, "t" AS t, CAST("g" AS DOUBLE) AS g, CAST("y" AS DOUBLE) AS y
      FROM "p") AS src
    GROUP BY g, t
    ORDER BY g, t
    """
    return (
        "SELECT g, t, CAST(COUNT(*) AS BIGINT) AS n_rows, CAST(COUNT(y) AS BIGINT) AS n_y,\n"
        "  CAST(SUM(CASE WHEN y - y <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS n_bad, SUM(y) AS sum_y\n"
        f"FROM ({src.select()}) AS src\nGROUP BY g, t\nORDER BY g, t"
    )


def _any(columns: Sequence[str], test: str) -> str:
    """``(c1 <test> OR c2 <test> ...)``, e.g. any period counted twice."""
    return "(" + " OR ".join(f"{c} {test}" for c in columns) + ")"


def _flag(condition: str, name: str) -> str:
    return f"CAST(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS BIGINT) AS {name}"


def _shift(raw: Sequence[float], mu: np.ndarray, s: int) -> str:
    """The unit's cohort mean in kept period s, as a CASE on its cohort (0 for dropped ones)."""
    if not len(raw):
        return number(0.0)
    arms = " ".join(f"WHEN {number(g)} THEN {number(m[s])}" for g, m in zip(raw, mu, strict=True))
    return f"CASE g_lo {arms} ELSE {number(0.0)} END"


def units_sql(
    src: PanelSource,
    periods: Sequence,
    n_kept: int,
    raw_cohorts: Sequence[float],
    shifts: np.ndarray,
    *,
    products: bool,
) -> str:
    """Pass 2: units pivoted to columns, then checks and moments per cohort (× cluster).

    Parameters
    ----------
    src
        View and columns.
    periods
        Every period of the view, sorted; the first ``n_kept`` are estimated (the rest only
        counted, to catch repeated rows).
    raw_cohorts, shifts
        Cohort values (as in the data) and, per cohort, the ``n_kept`` means to subtract: the
        shifted values d = y − mean are small, so Σ d_s d_r keeps its precision.
    products
        Also return Σ d_s d_r (s ≤ r) per cohort: what unit-clustered standard errors need.
        Without it (clustered by ``src.cluster``), rows are per cluster × cohort.

    Examples
    --------
    >>> src = PanelSource("p", unit="i", time="t", cohort="g", outcome="y")
    >>> text = units_sql(src, [1, 2], 2, [0.0], np.array([[5.0, 6.0]]), products=True)
    >>> text.splitlines()[-4].strip()  # per cohort: Σ d_s d_r of the shifted outcomes
    'SUM(d_0 * d_0) AS q_0_0, SUM(d_0 * d_1) AS q_0_1, SUM(d_1 * d_1) AS q_1_1'
    >>> text.splitlines()[-3][:80]  # the unit's value in period 1 minus its cohort's mean 5
    'FROM (SELECT u, g_lo, g_hi, n_0, n_1, y_0 - CASE g_lo WHEN CAST(0.0 AS DOUBLE) T'
    """
    counts = [f"n_{a}" for a in range(len(periods))]
    kept = range(n_kept)
    cluster = src.cluster is not None
    # innermost: one row per unit; a period's count and value are columns (the pivot)
    per_unit = ["u", "MIN(g) AS g_lo", "MAX(g) AS g_hi"]
    if cluster:
        per_unit += ["MIN(k) AS k_lo", "MAX(k) AS k_hi", "COUNT(k) AS k_n", "COUNT(*) AS n_all"]
    per_unit += [
        f"SUM(CASE WHEN t = {period_literal(p)} THEN 1 ELSE 0 END) AS {c}"
        for p, c in zip(periods, counts, strict=True)
    ]
    per_unit += [
        f"SUM(CASE WHEN t = {period_literal(periods[s])} THEN y END) AS y_{s}" for s in kept
    ]
    carried = ["u", "g_lo", "g_hi", *(["k_lo", "k_hi", "k_n", "n_all"] if cluster else []), *counts]
    shifted = carried + [f"y_{s} - {_shift(raw_cohorts, shifts, s)} AS d_{s}" for s in kept]
    keys = ["g_lo", "k_lo"] if cluster else ["g_lo"]
    out = [
        *keys,
        "CAST(COUNT(*) AS BIGINT) AS n_units",
        _flag("u IS NULL", "null_unit"),
        _flag(_any(counts, "> 1"), "repeated"),
        _flag(_any(counts[:n_kept], "= 0"), "gaps"),
        _flag("g_lo <> g_hi", "mixed_cohort"),
    ]
    if cluster:
        out += [_flag("k_n < n_all", "null_cluster"), _flag("k_lo <> k_hi", "mixed_cluster")]
    out.append(", ".join(f"SUM(d_{s}) AS s_{s}" for s in kept))
    if products:
        out.append(
            ", ".join(f"SUM(d_{s} * d_{r}) AS q_{s}_{r}" for s in kept for r in kept if s <= r)
        )
    return (
        f"SELECT {(',' + chr(10) + '  ').join(out)}\n"
        f"FROM (SELECT {', '.join(shifted)}\n"
        f"FROM (SELECT {', '.join(per_unit)}\n"
        f"FROM ({src.select()}) AS src GROUP BY u) AS w) AS d GROUP BY {', '.join(keys)}"
    )


def unpack_products(frame: pd.DataFrame, n_kept: int) -> np.ndarray:
    """The q_s_r columns of :func:`units_sql` as a rows × T × T symmetric array."""
    out = np.empty((len(frame), n_kept, n_kept))
    for s in range(n_kept):
        for r in range(s, n_kept):
            out[:, s, r] = out[:, r, s] = frame[f"q_{s}_{r}"].to_numpy(float)
    return out


def kept_unit(threshold: float) -> str:
    """SQL test on a unit's cohort ``g_lo``: not dropped as treated from the first period."""
    return f"(g_lo = {number(0.0)} OR g_lo > {number(threshold)})"


def examples(engine, sql: str) -> str:
    """The first rows of an example query as ``a, b, c`` for an error message."""
    frame = engine.query(sql)
    return ", ".join(
        "(" + ", ".join(repr(_plain(v)) for v in row) + ")"
        if len(row) > 1
        else repr(_plain(row[0]))
        for row in frame.itertuples(index=False)
    )


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def example_repeated(src: PanelSource) -> str:
    """(unit, period, rows) of unit-periods with more than one row."""
    return (
        f"SELECT u, t, CAST(COUNT(*) AS BIGINT) AS n FROM ({src.select()}) AS src "
        "GROUP BY u, t HAVING COUNT(*) > 1 ORDER BY u, t LIMIT 3"
    )


def example_gaps(src: PanelSource, kept_periods: Sequence, threshold: float) -> str:
    """Units (kept for estimation) without a row in some kept period."""
    inside = ", ".join(period_literal(p) for p in kept_periods)
    count = f"SUM(CASE WHEN t IN ({inside}) THEN 1 ELSE 0 END)"
    return (
        f"SELECT u FROM (SELECT u, MIN(g) AS g_lo, {count} AS n FROM ({src.select()}) AS src "
        f"GROUP BY u) AS w WHERE n < {len(kept_periods)} AND {kept_unit(threshold)} "
        "ORDER BY u LIMIT 3"
    )


def example_mixed(src: PanelSource, column: str) -> str:
    """(unit, lowest, highest) where column ``g`` or ``k`` changes within the unit."""
    return (
        f"SELECT u, MIN({column}) AS lo, MAX({column}) AS hi FROM ({src.select()}) AS src "
        f"GROUP BY u HAVING MIN({column}) <> MAX({column}) OR COUNT({column}) < COUNT(*) "
        "ORDER BY u LIMIT 3"
    )


def example_missing(src: PanelSource, kept_periods: Sequence, threshold: float) -> str:
    """(unit, period) rows whose outcome is missing or not finite, where it is used."""
    inside = ", ".join(period_literal(p) for p in kept_periods)
    return (
        f"SELECT u, t FROM (SELECT u, t, g AS g_lo, y FROM ({src.select()}) AS src) AS w "
        f"WHERE (y IS NULL OR y - y <> 0) AND t IN ({inside}) AND {kept_unit(threshold)} "
        "ORDER BY u, t LIMIT 3"
    )


# --- R did's sample rules, per cohort: what pass 2 reads -----------------------------------------


@dataclass(frozen=True)
class Sample:
    """R did's sample rules, decided per cohort (``did_cs_panel.prepare_panel``)."""

    periods: np.ndarray  # every period of the view, sorted
    n_kept: int  # periods estimated: a prefix (shorter without never-treated units)
    raw: np.ndarray  # cohort values in the data, sorted
    level_of: np.ndarray  # per raw cohort: cohort used (late ones → 0), NaN if dropped
    groups: np.ndarray  # cohorts whose ATT(g,t) are estimated
    threshold: float  # cohorts at or below (periods[0] + anticipation) have no pre-period

    @property
    def kept_periods(self) -> np.ndarray:
        return self.periods[: self.n_kept]


def plain_periods(values: np.ndarray) -> np.ndarray:
    """Sorted distinct periods; integer columns stay integers (as the row path's table)."""
    periods = np.unique(values)
    return periods.astype(np.int64) if np.issubdtype(periods.dtype, np.integer) else periods


def sample_rules(cells: pd.DataFrame, control_group: str, anticipation: int, cohort: str) -> Sample:
    """Periods, cohorts and drops exactly as ``prepare_panel``, from cohort × period rows."""
    periods = plain_periods(cells["t"].to_numpy())
    raw = np.unique(cells["g"].to_numpy(float))
    level = np.where(raw > periods[-1] + anticipation, 0.0, raw)  # treated after the window
    groups = np.unique(level[level > 0])
    n_kept = len(periods)
    if not (level == 0).any():
        if control_group == "never_treated":
            raise DesignError(
                f"no never-treated units (cohort '{cohort}' == 0) to compare with; use "
                "control_group='not_yet_treated' to compare with units treated later"
            )
        last = groups.max()
        n_kept = int(np.searchsorted(periods, last - anticipation, side="left"))
        groups = groups[groups < last]
        warnings.warn(
            f"no never-treated units: periods from {last - anticipation} on have no comparison "
            f"units and are dropped, and cohort {last} serves only as a comparison group",
            stacklevel=4,
        )
        if n_kept < 2:
            raise DesignError(
                "no never-treated units and fewer than two periods before the last cohort "
                "starts: there is nothing to compare with"
            )
    threshold = float(periods[0] + anticipation)
    level = np.where((level > 0) & (level <= threshold), np.nan, level)
    return Sample(periods, n_kept, raw, level, groups[groups > threshold], threshold)


def used_rows(cells: pd.DataFrame, sample: Sample) -> np.ndarray:
    """Pass-1 rows that enter the estimate: kept periods of cohorts not dropped."""
    raw_index = np.searchsorted(sample.raw, cells["g"].to_numpy(float))
    in_period = np.isin(cells["t"].to_numpy(), sample.kept_periods)
    return in_period & ~np.isnan(sample.level_of[raw_index])


@dataclass(frozen=True)
class LevelMeans:
    """Cohort levels (late cohorts merged into 0) and their period means: pass 2's shift."""

    levels: np.ndarray
    means: np.ndarray  # levels × kept periods

    def of(self, levels: np.ndarray) -> np.ndarray:
        """Means of ``levels``; 0 for a level without rows (any shift is exact, and pass 2
        reports those units as gaps)."""
        at = np.minimum(np.searchsorted(self.levels, levels), len(self.levels) - 1)
        found = self.levels[at] == levels
        return np.where(found[:, None], self.means[at], 0.0)


def level_means(cells: pd.DataFrame, sample: Sample, used: np.ndarray) -> LevelMeans:
    """Σ y / rows per level and kept period, from the pass-1 rows that enter the estimate."""
    part = cells[used]
    level = sample.level_of[np.searchsorted(sample.raw, part["g"].to_numpy(float))]
    period = np.searchsorted(sample.kept_periods, part["t"].to_numpy())
    levels, code = np.unique(level, return_inverse=True)
    size = len(levels) * sample.n_kept
    key = code * sample.n_kept + period
    sums = np.bincount(key, part["sum_y"].to_numpy(float), size)
    rows = np.bincount(key, part["n_rows"].to_numpy(float), size)
    return LevelMeans(levels, (sums / np.maximum(rows, 1)).reshape(len(levels), sample.n_kept))


# --- running the passes and checking what comes back ---------------------------------------------


def run_passes(
    engine, src: PanelSource, control_group: str, anticipation: int
) -> tuple[Sample, LevelMeans, pd.DataFrame]:
    """Pass 1, the sample rules, the outcome check, then pass 2 shifted by pass 1's means.

    Returns the sample, the shift and pass 2's rows (per cohort, or cluster × cohort)."""
    cells = read_cells(engine, src)
    sample = sample_rules(cells, control_group, anticipation, src.cohort)
    used = used_rows(cells, sample)
    check_outcomes(engine, src, cells, used, sample.kept_periods, sample.threshold)
    means = level_means(cells, sample, used)
    kept = ~np.isnan(sample.level_of)
    shifts = means.of(sample.level_of[kept])
    units = read_units(
        engine, src, sample.periods, sample.n_kept, sample.raw[kept], shifts, sample.threshold
    )
    return sample, means, units


def read_cells(engine, src: PanelSource) -> pd.DataFrame:
    """Pass 1 after the column checks; missing periods or cohorts are errors here."""
    check_columns(engine, src)
    frame = engine.query(cells_sql(src))
    if frame.empty:
        raise DataError(f"view {src.view!r} has no rows; the panel is empty")
    if frame["t"].isna().any():
        raise DataError(f"column {src.time!r} (time period) has missing values; fill or drop them")
    if frame["g"].isna().any():
        raise DataError(
            f"column {src.cohort!r} (first treated period) has missing values; use 0 for units "
            "that are never treated"
        )
    if (frame["g"] < 0).any():
        raise DataError(f"column {src.cohort!r} must be 0 (never treated) or a treatment period")
    return frame


def check_outcomes(
    engine, src: PanelSource, cells: pd.DataFrame, used: np.ndarray, kept_periods, threshold
) -> None:
    """No missing or non-finite outcome in the rows the estimate uses (``used`` marks them)."""
    bad = cells["n_rows"].to_numpy() - cells["n_y"].to_numpy() + cells["n_bad"].to_numpy()
    count = int(bad[used].sum())
    if count:
        shown = examples(engine, example_missing(src, kept_periods, threshold))
        raise DataError(
            f"outcome column {src.outcome!r} has {count} missing or non-finite values, e.g. "
            f"({src.unit}, {src.time}) = {shown}; the aggregate path needs a balanced panel: "
            "fill or drop them in the query"
        )


def read_units(
    engine,
    src: PanelSource,
    periods: np.ndarray,
    n_kept: int,
    raw_cohorts: np.ndarray,
    shifts: np.ndarray,
    threshold: float,
) -> pd.DataFrame:
    """Pass 2 (see :func:`units_sql`) and its checks; rows per cohort or cluster × cohort."""
    sql = units_sql(src, list(periods), n_kept, raw_cohorts, shifts, products=src.cluster is None)
    frame = engine.query(sql)
    _check_units(engine, src, frame, periods[:n_kept], threshold)
    return frame


def _total(frame: pd.DataFrame, column: str, rows: np.ndarray | None = None) -> int:
    values = frame[column].to_numpy()
    return int(values[rows].sum() if rows is not None else values.sum())


def _check_units(engine, src: PanelSource, frame, kept_periods, threshold: float) -> None:
    if _total(frame, "null_unit"):
        raise DataError(f"column {src.unit!r} (unit id) has missing values; fill or drop them")
    if repeated := _total(frame, "repeated"):
        shown = examples(engine, example_repeated(src))
        raise DataError(
            f"{repeated} units have more than one row in a period; ({src.unit}, {src.time}, "
            f"rows): {shown}; the panel needs one row per unit and period — aggregate in the query"
        )
    if mixed := _total(frame, "mixed_cohort"):
        shown = examples(engine, example_mixed(src, "g"))
        raise DataError(
            f"column {src.cohort!r} changes over time for {mixed} units; ({src.unit}, lowest, "
            f"highest): {shown}; it must be the unit's first treated period (0 = never), the "
            "same in every row of the unit"
        )
    if src.cluster is not None:
        if _total(frame, "null_cluster"):
            raise DataError(f"cluster column {src.cluster!r} has missing values")
        if mixed := _total(frame, "mixed_cluster"):
            shown = examples(engine, example_mixed(src, "k"))
            raise DataError(
                f"cluster column {src.cluster!r} changes within {mixed} units ({src.unit}, "
                f"lowest, highest): {shown}; clusters must contain whole units (e.g. region)"
            )
    g = frame["g_lo"].to_numpy(float)
    used = (g == 0) | (g > threshold)  # units treated from the first period are dropped anyway
    if gaps := _total(frame, "gaps", used):
        shown = examples(engine, example_gaps(src, kept_periods, threshold))
        raise DataError(
            f"the aggregate path needs a balanced panel; {gaps} units miss some periods (of "
            f"{len(kept_periods)}, column {src.time!r}), e.g. {src.unit} {shown}; keep only units "
            "observed in every period in the query (R did drops them), or use the row path"
        )
