"""The A/B pilot's sufficient statistics, computed by the engine in three aggregate queries.

1. checks and shifts: row and unit counts, arm sizes, missing values, column means, min/max;
2. moments: per arm and outcome, sums of products of (1, covariates, outcome) shifted by the
   column means (shifted, because raw sums of squares lose digits when the mean dwarfs the
   spread), per-arm covariate moments for balance, and per segment level and arm the outcome's
   count, sum and sum of squares;
3. Lin's HC2 meat: per arm and outcome, sums of z z' e² / (1 - h), with the pass-2
   coefficients and inverse Gram matrices written into the SQL as exact float literals.

Only these small tables reach the driver. The SQL is portable (CAST, SUM, COUNT, CASE), so
DuckDB and Spark run the same text; identifiers are quoted by the engine's ``quote``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal.data.dataset import require_columns
from causal.errors import DataError


@dataclass(frozen=True)
class ABSummary:
    """What the A/B estimators need, without the rows (see :func:`summarize`)."""

    unit: str
    treatment: str
    outcomes: tuple[str, ...]
    kinds: Mapping[str, str]
    covariates: tuple[str, ...]  # the spec's covariates
    design_columns: tuple[str, ...]  # after mean-fill indicators and constant-column drop
    segments: tuple[str, ...]
    n_units: int
    n_treated: int
    missing: Mapping[str, int]
    # per outcome: {arm: (n, sums matrix over z = (1, x~..., y~))}, with the outcome's shift
    moments: Mapping[str, dict] = field(default_factory=dict)
    shifts: Mapping[str, float] = field(default_factory=dict)
    balance: tuple[dict, ...] = ()  # per covariate and arm: count, shifted sum, sum of squares
    segment_stats: pd.DataFrame | None = None
    meat: Mapping[str, dict] = field(default_factory=dict)  # HC2 pieces per outcome and arm
    fingerprint: str = ""


def summarize(
    engine,
    view: str,
    *,
    unit: str,
    treatment: str,
    outcomes: Mapping[str, str],
    covariates: tuple[str, ...] = (),
    segments: tuple[str, ...] = (),
) -> ABSummary:
    """Validate the analysis table in the engine and return its sufficient statistics.

    Raises the same :class:`~causal.errors.DataError` messages as
    :func:`causal.data.dataset.validate_table`.

    Examples
    --------
    >>> import pandas as pd
    >>> from causal.data.engine import DuckDBEngine
    >>> engine = DuckDBEngine()
    >>> engine.register_frame("t", pd.DataFrame({"id": range(6), "d": [0, 1] * 3,
    ...                                          "y": [1.0, 2, 3, 4, 5, 7]}))
    >>> summarize(engine, "t", unit="id", treatment="d", outcomes={"y": "continuous"}).n_treated
    3
    """
    q = getattr(engine, "quote", _double_quote)
    head = engine.query(f"SELECT * FROM {q(view)} WHERE 1 = 0")
    require_columns(head, [unit, treatment, *outcomes, *covariates, *segments])
    _check_types(head, treatment, outcomes, covariates)
    first = _pass_checks(engine, q, view, unit, treatment, outcomes, covariates, segments)
    index = {c: i for i, c in enumerate([*outcomes, *covariates])}
    columns, fills = _design_columns(first, index, covariates)
    # shift = the column's mean; it is also the value a missing covariate is filled with
    shifts = {c: _num(first[f"mean_{i}"]) for c, i in index.items()}
    z = _z_terms(q, columns, fills, shifts)
    moments, balance = _pass_moments(engine, q, view, treatment, outcomes, covariates, z, shifts)
    seg = _pass_segments(engine, q, view, treatment, outcomes, segments, shifts)
    meat = _pass_meat(engine, q, view, treatment, outcomes, z, shifts, moments)
    n = int(first["n"])
    missing = {c: n - int(first[f"nn_{i}"]) for c, i in index.items()}
    missing |= {s: int(first[f"null_seg_{i}"]) for i, s in enumerate(segments)}
    summary = ABSummary(
        unit=unit,
        treatment=treatment,
        outcomes=tuple(outcomes),
        kinds=dict(outcomes),
        covariates=tuple(covariates),
        design_columns=tuple(columns),
        segments=tuple(segments),
        n_units=n,
        n_treated=int(first["n1"]),
        missing={c: missing[c] for c in [*outcomes, *covariates, *segments]},
        moments=moments,
        shifts=shifts,
        balance=balance,
        segment_stats=seg,
        meat=meat,
    )
    object.__setattr__(summary, "fingerprint", _fingerprint(summary, first))
    return summary


# --- pass 1: validation, counts, shifts -----------------------------------------------------


def _pass_checks(engine, q, view, unit, treatment, outcomes, covariates, segments) -> pd.Series:
    t = f"CAST({q(treatment)} AS DOUBLE)"
    parts = [
        "CAST(COUNT(*) AS BIGINT) AS n",
        f"CAST(COUNT({q(unit)}) AS BIGINT) AS nn_unit",
        f"CAST(COUNT(DISTINCT {q(unit)}) AS BIGINT) AS n_distinct",
        f"CAST(SUM(CASE WHEN {t} = 1 THEN 1 ELSE 0 END) AS BIGINT) AS n1",
        f"CAST(SUM(CASE WHEN {t} = 0 THEN 1 ELSE 0 END) AS BIGINT) AS n0",
        f"CAST(COUNT({q(treatment)}) AS BIGINT) AS nn_treatment",
    ]
    for i, c in enumerate([*outcomes, *covariates]):
        x = f"CAST({q(c)} AS DOUBLE)"
        parts += [
            f"CAST(COUNT({q(c)}) AS BIGINT) AS nn_{i}",
            f"AVG({x}) AS mean_{i}",
            f"MIN({x}) AS min_{i}",
            f"MAX({x}) AS max_{i}",
        ]
    for i, (c, kind) in enumerate(outcomes.items()):
        x = f"CAST({q(c)} AS DOUBLE)"
        bad = {"binary": f"{x} <> 0 AND {x} <> 1", "count": f"{x} < 0 OR {x} <> FLOOR({x})"}
        if kind in bad:
            parts.append(f"CAST(SUM(CASE WHEN {bad[kind]} THEN 1 ELSE 0 END) AS BIGINT) AS bad_{i}")
    for i, s in enumerate(segments):
        parts.append(f"CAST(COUNT(*) - COUNT({q(s)}) AS BIGINT) AS null_seg_{i}")
    row = engine.query(f"SELECT {', '.join(parts)} FROM {q(view)}").iloc[0]
    _validate(engine, q, view, row, unit, treatment, outcomes)
    return row


def _validate(engine, q, view, row, unit, treatment, outcomes) -> None:
    """The rules of :func:`causal.data.dataset.validate_table`, on the engine's counts."""
    n = int(row["n"])
    if n == 0:
        raise DataError("the analysis table is empty after data.query; check its joins and filters")
    if int(row["nn_unit"]) < n:
        raise DataError(f"unit id column {unit!r} has {n - int(row['nn_unit'])} missing values")
    if int(row["n_distinct"]) < n:
        dup = engine.query(
            f"SELECT {q(unit)} AS u FROM {q(view)} GROUP BY {q(unit)} HAVING COUNT(*) > 1 "
            f"ORDER BY {q(unit)}"
        )["u"]
        examples = ", ".join(map(str, dup.tolist()[:3]))
        raise DataError(
            f"unit id column {unit!r} is not unique: {len(dup)} ids appear more than once "
            f"(e.g. {examples}); the query must return one row per unit"
        )
    if int(row["nn_treatment"]) < n:
        missing = n - int(row["nn_treatment"])
        raise DataError(f"treatment column {treatment!r} has {missing} missing values")
    n1, n0 = int(row["n1"]), int(row["n0"])
    if n1 + n0 < n:
        found = engine.query(
            f"SELECT DISTINCT {q(treatment)} AS v FROM {q(view)} ORDER BY {q(treatment)}"
        )["v"]
        shown = ", ".join(map(repr, [_plain(v) for v in found.tolist()[:5]]))
        raise DataError(f"treatment column {treatment!r} must be 0/1; found values {shown}")
    if n1 == 0 or n0 == 0:
        raise DataError(
            f"treatment column {treatment!r} has only the value {1 if n1 else 0!r}; "
            "both arms are needed"
        )
    for i, (c, kind) in enumerate(outcomes.items()):
        if kind == "binary" and int(row[f"bad_{i}"]):
            raise DataError(f"binary outcome {c!r} must be 0/1; found other values")
        if kind == "count" and int(row[f"bad_{i}"]):
            raise DataError(f"count outcome {c!r} must hold non-negative whole numbers")


def _check_types(head: pd.DataFrame, treatment, outcomes, covariates) -> None:
    numeric = pd.api.types.is_numeric_dtype
    if not (numeric(head[treatment]) or head[treatment].dtype == bool):
        raise DataError(f"treatment column {treatment!r} must be 0/1; it has type text")
    for column, role in [*((c, f"outcome ({k})") for c, k in outcomes.items()),
                         *((c, "covariate") for c in covariates)]:  # fmt: skip
        if not (numeric(head[column]) or head[column].dtype == bool):
            raise DataError(
                f"{role} column {column!r} must be numeric; it has type {head[column].dtype}; "
                "cast it in data.query"
            )


# --- pass 2: shifted moments ----------------------------------------------------------------


def _design_columns(
    first: pd.Series, index: Mapping[str, int], covariates
) -> tuple[list[str], dict[str, str]]:
    """Covariates as in ``abtest._covariate_matrix``: mean-filled with a missing indicator,
    constant columns dropped (min = max is exact where a variance from sums is not)."""
    n = int(first["n"])
    columns: list[str] = []
    sources: dict[str, str] = {}
    for c in covariates:
        i = index[c]
        nn = int(first[f"nn_{i}"])
        if 0 < nn < n:
            columns.append(f"{c}_missing")
            sources[f"{c}_missing"] = c
        if nn > 0 and first[f"min_{i}"] != first[f"max_{i}"]:
            columns.append(c)
            sources[c] = c
    return columns, sources


def _z_terms(q, columns, fills, shifts) -> list[str]:
    terms = []
    for name in columns:
        source = fills[name]
        if name != source:  # the missing-value indicator
            terms.append(f"(CASE WHEN {q(source)} IS NULL THEN 1.0 ELSE 0.0 END)")
        else:
            terms.append(f"COALESCE(CAST({q(source)} AS DOUBLE) - {_lit(shifts[source])}, 0.0)")
    return terms


def _pass_moments(engine, q, view, treatment, outcomes, covariates, z, shifts):
    arm = f"CAST({q(treatment)} AS INTEGER)"
    parts = []
    for i, y in enumerate(outcomes):
        terms = ["1.0", *z, f"(CAST({q(y)} AS DOUBLE) - {_lit(shifts[y])})"]
        keep = f"{q(y)} IS NOT NULL"
        for j in range(len(terms)):
            for k in range(j, len(terms)):
                product = f"{terms[j]} * {terms[k]}"
                parts.append(f"SUM(CASE WHEN {keep} THEN {product} END) AS m{i}_{j}_{k}")
    for i, x in enumerate(covariates):
        dx = f"(CAST({q(x)} AS DOUBLE) - {_lit(shifts[x])})"
        parts += [
            f"CAST(COUNT({q(x)}) AS BIGINT) AS bn_{i}",
            f"SUM({dx}) AS bs_{i}",
            f"SUM({dx} * {dx}) AS bss_{i}",
        ]
    frame = engine.query(
        f"SELECT {arm} AS arm, CAST(COUNT(*) AS BIGINT) AS rows_, {', '.join(parts)} "
        f"FROM {q(view)} GROUP BY {arm} ORDER BY arm"
    ).set_index("arm")
    size = len(z) + 2
    moments = {}
    for i, y in enumerate(outcomes):
        moments[y] = {}
        for a in (0, 1):
            m = np.zeros((size, size))
            for j in range(size):
                for k in range(j, size):
                    m[j, k] = m[k, j] = _num(frame.loc[a, f"m{i}_{j}_{k}"])
            moments[y][a] = m
    balance = tuple(
        {
            "covariate": x,
            "arm": a,
            "n": int(frame.loc[a, f"bn_{i}"]),
            "sum": _num(frame.loc[a, f"bs_{i}"]),
            "squares": _num(frame.loc[a, f"bss_{i}"]),
        }
        for i, x in enumerate(covariates)
        for a in (0, 1)
    )
    return moments, balance


def _pass_segments(engine, q, view, treatment, outcomes, segments, shifts) -> pd.DataFrame | None:
    if not segments:
        return None
    arm = f"CAST({q(treatment)} AS INTEGER)"
    frames = []
    for s in segments:
        parts = ["CAST(COUNT(*) AS BIGINT) AS rows_"]
        for i, y in enumerate(outcomes):
            dy = f"(CAST({q(y)} AS DOUBLE) - {_lit(shifts[y])})"
            parts += [
                f"CAST(COUNT({q(y)}) AS BIGINT) AS n_{i}",
                f"SUM({dy}) AS s_{i}",
                f"SUM({dy} * {dy}) AS ss_{i}",
            ]
        frame = engine.query(
            f"SELECT {q(s)} AS level, {arm} AS arm, {', '.join(parts)} FROM {q(view)} "
            f"WHERE {q(s)} IS NOT NULL GROUP BY {q(s)}, {arm} ORDER BY level, arm"
        )
        frames.append(frame.assign(segment=s))
    return pd.concat(frames, ignore_index=True)


# --- pass 3: Lin's HC2 meat -------------------------------------------------------------------


def _pass_meat(engine, q, view, treatment, outcomes, z, shifts, moments) -> dict:
    """Σ z z' e²/(1-h) per arm, where z = (1, x~) and e, h come from each arm's own regression
    of y~ on z (Lin's interacted model is these two regressions; its hat matrix is
    block-diagonal by arm, so HC2's leverages are the per-arm ones)."""
    if not z:
        return {}
    p = len(z) + 1
    zs = ["1.0", *z]
    arm = f"CAST({q(treatment)} AS INTEGER)"
    inner = [f"{arm} AS arm"] + [f"{t} AS z{j}" for j, t in enumerate(zs)]
    fits = {}
    for i, y in enumerate(outcomes):
        fits[y] = {a: _arm_fit(moments[y][a], p) for a in (0, 1)}
        dy = f"(CAST({q(y)} AS DOUBLE) - {_lit(shifts[y])})"
        weight = []
        for a in (0, 1):
            beta, bread = fits[y][a]
            fitted = " + ".join(f"{_lit(beta[j])} * {zs[j]}" for j in range(p))
            lever = " + ".join(
                f"{_lit(bread[j, k])} * {zs[j]} * {zs[k]}" for j in range(p) for k in range(p)
            )
            weight.append(f"POWER({dy} - ({fitted}), 2) / (1.0 - ({lever}))")
        inner.append(f"CASE WHEN {arm} = 1 THEN {weight[1]} ELSE {weight[0]} END AS w{i}")
    sums = [
        f"SUM(z{j} * z{k} * w{i}) AS h{i}_{j}_{k}"
        for i in range(len(outcomes))
        for j in range(p)
        for k in range(j, p)
    ]
    frame = engine.query(
        f"SELECT arm, {', '.join(sums)} FROM (SELECT {', '.join(inner)} FROM {q(view)}) AS r "
        "GROUP BY arm ORDER BY arm"
    ).set_index("arm")
    meat = {}
    for i, y in enumerate(outcomes):
        meat[y] = {}
        for a in (0, 1):
            m = np.zeros((p, p))
            for j in range(p):
                for k in range(j, p):
                    m[j, k] = m[k, j] = _num(frame.loc[a, f"h{i}_{j}_{k}"])
            beta, bread = fits[y][a]
            meat[y][a] = {"beta": beta, "bread": bread, "meat": m}
    return meat


def _arm_fit(m: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """OLS of y~ on z within one arm from its moment matrix: coefficients and (Z'Z)^-1."""
    gram = m[:p, :p]
    bread = np.linalg.inv(gram)
    return bread @ m[:p, p], bread


# --- helpers --------------------------------------------------------------------------------


def _lit(value: float) -> str:
    """A float as an exact SQL DOUBLE literal (repr round-trips)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def _num(value) -> float:
    return 0.0 if value is None or pd.isna(value) else float(value)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _double_quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _fingerprint(summary: ABSummary, first: pd.Series) -> str:
    """SHA-256 of counts, extremes, means and sums of squares, floats to 10 significant digits:
    the same data give the same fingerprint in any row order and on engines whose float sums
    differ in the last bits (a mean within 1e-9 of the column's range from 0 counts as 0)."""
    parts = []
    for key, value in first.items():
        if key.startswith("mean_"):
            scale = max(abs(_num(first["min_" + key[5:]])), abs(_num(first["max_" + key[5:]])))
            value = 0.0 if abs(_num(value)) <= 1e-9 * scale else value
        parts.append(f"{key}={_digits(value)}")
    for y in summary.outcomes:
        for a in (0, 1):  # centred sums of squares: they do not depend on the shift
            m = summary.moments[y][a]
            sums = m[0, 1:]
            squares = np.diag(m[1:, 1:]) - sums**2 / m[0, 0] if m[0, 0] else sums
            parts.append(f"{y}/{a}=" + ",".join(_digits(v) for v in squares))
    if summary.segment_stats is not None:
        counts = summary.segment_stats.filter(regex=r"^(segment|level|arm|rows_|n_\d+)$")
        parts.append(counts.astype(str).to_csv(index=False))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _digits(value) -> str:
    value = _num(value)
    return "0" if value == 0 else np.format_float_scientific(value, precision=9, unique=False)
