"""The validated analysis table (:class:`Dataset`) and how it is built from a spec."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from causal.data.engine import Engine, open_engine
from causal.errors import DataError

if TYPE_CHECKING:
    from causal.spec import Spec


@dataclass(frozen=True)
class Dataset:
    """One validated row per unit, sorted by unit id so results do not depend on join order.

    The table is the engine's output after validation; the designs read it and never write it.
    """

    table: pd.DataFrame
    unit: str
    treatment: str
    outcomes: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    missing: Mapping[str, int] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "missing", MappingProxyType(dict(self.missing)))

    @property
    def n_units(self) -> int:
        return len(self.table)

    @property
    def n_treated(self) -> int:
        return int(self.table[self.treatment].sum())


def load_dataset(spec: Spec, *, engine: Engine | None = None) -> Dataset:
    """Register the spec's sources, run its query and validate the analysis table.

    Parameters
    ----------
    spec
        A loaded spec.
    engine
        The data engine; an embedded in-memory DuckDB by default.

    Raises
    ------
    DataError
        Naming the source, query or column at fault.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> ds = load_dataset(load_spec("experiments/lalonde_nsw_experiment.yaml"))
    >>> ds.n_units
    445
    """
    return validate_table(
        query_table(spec, engine=engine),
        unit=spec.unit,
        treatment=spec.treatment,
        outcomes={o.column: o.kind for o in spec.outcomes},
        covariates=tuple(spec.covariates),
        segments=tuple(spec.segments),
    )


def query_table(spec: Spec, *, engine: Engine | None = None) -> pd.DataFrame:
    """Register the spec's sources in the engine and return the result of its query.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> query_table(load_spec("experiments/lalonde_nsw_experiment.yaml")).shape
    (445, 11)
    """
    own_engine = engine is None
    engine = engine or open_engine(spec)
    try:
        for name, source in spec.data.sources.items():
            engine.register(name, source, base_dir=spec.base_dir, seed=spec.seed)
        sql = spec.data.query or f'SELECT * FROM "{next(iter(spec.data.sources))}"'
        table = _query(engine, sql, field="data.query")
    finally:
        if own_engine:
            engine.close()
    if len(table) == 0:
        raise DataError("the analysis table is empty after data.query; check its joins and filters")
    return table


def run_query(spec: Spec, sql: str, *, what: str, engine: Engine | None = None) -> pd.DataFrame:
    """Run another query over the spec's sources (e.g. the historical sample of a surrogate
    index), in a fresh engine unless one is given.

    Raises
    ------
    DataError
        Naming ``what`` (the spec field of the query) when the result is empty.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> spec = load_spec("experiments/lalonde_nsw_experiment.yaml")
    >>> len(run_query(spec, "SELECT * FROM nsw WHERE treat = 1", what="test"))
    185
    """
    own_engine = engine is None
    engine = engine or open_engine(spec)
    try:
        for name, source in spec.data.sources.items():
            engine.register(name, source, base_dir=spec.base_dir, seed=spec.seed)
        table = _query(engine, sql, field=what)
    finally:
        if own_engine:
            engine.close()
    if len(table) == 0:
        raise DataError(f"{what}: the query returned no rows; check its table and filters")
    return table


def _query(engine: Engine, sql: str, *, field: str) -> pd.DataFrame:
    """The engine's result, with the spec field that holds the SQL named in any error."""
    try:
        return engine.query(sql)
    except DataError as exc:
        raise DataError(f"{field}: {exc}") from None


def validate_table(
    table: pd.DataFrame,
    *,
    unit: str,
    treatment: str,
    outcomes: Mapping[str, str],
    covariates: tuple[str, ...] = (),
    segments: tuple[str, ...] = (),
) -> Dataset:
    """Check the analysis table and return it as a :class:`Dataset`.

    Rules: not empty; every named column present; unit ids unique and not missing; treatment
    0/1 with no missing values; outcomes numeric (binary 0/1, count non-negative whole numbers);
    covariates numeric. Missing values in outcomes and covariates are counted, not fatal.

    Examples
    --------
    >>> t = pd.DataFrame({"id": [1, 2], "d": [0, 1], "y": [1.0, 2.0]})
    >>> validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"}).n_treated
    1
    """
    if len(table) == 0:
        raise DataError("the analysis table is empty after data.query; check its joins and filters")
    require_columns(table, [unit, treatment, *outcomes, *covariates, *segments])
    _check_unit(table, unit)
    table = table.copy()
    table[treatment] = _check_treatment(table[treatment], treatment)
    for column, kind in outcomes.items():
        table[column] = _check_numeric(table[column], column, role=f"outcome ({kind})")
        _check_outcome_kind(table[column], column, kind)
    for column in covariates:
        table[column] = _check_numeric(table[column], column, role="covariate")
    table = table.sort_values(unit, kind="mergesort").reset_index(drop=True)
    missing = {c: int(table[c].isna().sum()) for c in [*outcomes, *covariates, *segments]}
    return Dataset(
        table=table,
        unit=unit,
        treatment=treatment,
        outcomes=tuple(outcomes),
        covariates=covariates,
        segments=segments,
        missing=missing,
        fingerprint=fingerprint(table),
    )


def fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 of a table's column names, dtypes and values (row order matters).

    Examples
    --------
    >>> fingerprint(pd.DataFrame({"a": [1]})) == fingerprint(pd.DataFrame({"a": [1]}))
    True
    """
    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in table.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def require_columns(
    table: pd.DataFrame,
    columns: list[str],
    *,
    field: str | None = None,
    where: str = "analysis table",
) -> None:
    """Raise a DataError naming the first of ``columns`` missing from ``table``, the spec
    ``field`` that asked for it (when given) and the columns there are.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a"])
    >>> require_columns(pd.DataFrame({"a": [1]}), ["b"], field="long_term.nps")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    causal.errors.DataError: long_term.nps: column 'b' is not in the analysis table ...
    """
    absent = [c for c in dict.fromkeys(columns) if c not in table.columns]
    if not absent:
        return
    have = ", ".join(map(str, table.columns[:20]))
    if field is None:
        raise DataError(
            f"column {absent[0]!r} named in the spec is not in the {where} "
            f"(columns: {have}); fix the spec or data.query"
        )
    raise DataError(
        f"{field}: column {absent[0]!r} is not in the {where} (columns: {have}); "
        "fix the spec or data.query"
    )


def _check_unit(table: pd.DataFrame, unit: str) -> None:
    ids = table[unit]
    if ids.isna().any():
        raise DataError(f"unit id column {unit!r} has {int(ids.isna().sum())} missing values")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        examples = ", ".join(map(str, pd.unique(dup).tolist()[:3]))
        raise DataError(
            f"unit id column {unit!r} is not unique: {dup.nunique()} ids appear more than once "
            f"(e.g. {examples}); the query must return one row per unit"
        )


def _check_treatment(values: pd.Series, column: str) -> pd.Series:
    if values.isna().any():
        raise DataError(
            f"treatment column {column!r} has {int(values.isna().sum())} missing values"
        )
    if values.dtype == bool:
        return values.astype("int64")
    uniques = pd.unique(values).tolist()  # Python scalars: messages show 2, not np.int64(2)
    if not pd.api.types.is_numeric_dtype(values) or not set(uniques) <= {0, 1}:
        shown = ", ".join(map(repr, uniques[:5]))
        raise DataError(f"treatment column {column!r} must be 0/1; found values {shown}")
    if len(uniques) < 2:
        raise DataError(
            f"treatment column {column!r} has only the value {uniques[0]!r}; both arms are needed"
        )
    return values.astype("int64")


def _check_numeric(values: pd.Series, column: str, *, role: str) -> pd.Series:
    if values.dtype == bool:
        return values.astype("int64")
    if not pd.api.types.is_numeric_dtype(values):
        example = values.dropna().tolist()[0] if values.notna().any() else None
        raise DataError(
            f"{role} column {column!r} must be numeric; it has type {values.dtype} "
            f"(e.g. {example!r}); cast it in data.query"
        )
    return values.astype("float64")


def _check_outcome_kind(values: pd.Series, column: str, kind: str) -> None:
    present = values.dropna().to_numpy()
    if kind == "binary" and not np.isin(present, (0.0, 1.0)).all():
        raise DataError(f"binary outcome {column!r} must be 0/1; found other values")
    if kind == "count" and ((present < 0).any() or (present != np.round(present)).any()):
        raise DataError(f"count outcome {column!r} must hold non-negative whole numbers")
