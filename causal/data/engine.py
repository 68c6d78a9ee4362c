"""The engine interface and its embedded DuckDB implementation.

The interface is deliberately narrow — register a named source, run SQL, get pandas — so that
a distributed engine can stand in later without the designs noticing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from causal.data.dialect import failed, is_rejection, rejected
from causal.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from causal.spec import Source, Spec

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".duckdb": "duckdb",
    ".db": "duckdb",
}


class Engine(Protocol):
    """What the designs may ask of a data engine."""

    name: str  # "duckdb" or "spark": for messages and provenance, never for estimator logic

    def register(self, name: str, source: Source, *, base_dir: Path, seed: int) -> None: ...

    def query(self, sql: str) -> pd.DataFrame: ...

    def create_view(self, name: str, sql: str, *, materialize: bool = False) -> None:
        """Name the result of ``sql`` so later queries can read it; ``materialize`` keeps it
        computed (in the engine, never on the driver) when several passes will read it."""
        ...

    def close(self) -> None: ...


class DuckDBEngine:
    """Embedded, in-memory DuckDB: each source becomes a view named after it.

    Examples
    --------
    >>> from causal.spec import Source
    >>> engine = DuckDBEngine()
    >>> nsw = Source(path="causal/data/datasets/nsw_mixtape.csv")
    >>> engine.register("nsw", nsw, base_dir=Path("."), seed=0)
    >>> int(engine.query("SELECT count(*) AS n FROM nsw").n[0])
    445
    """

    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self._duckdb = duckdb
        # One thread: parallel aggregation adds floats in a run-dependent order, so SUMs (and
        # every estimate and the data fingerprint) would differ in the last bits between runs of
        # the same spec. Reproducibility is a promise; a distributed engine is the way to scale.
        self._con = duckdb.connect(database=":memory:", config={"threads": 1})
        self._simulated: dict[tuple, object] = {}

    def register(self, name: str, source: Source, *, base_dir: Path, seed: int) -> None:
        if source.simulator is not None:
            self._register_simulated(name, source, seed)
            return
        path = (base_dir / source.path).resolve()
        if not path.exists():
            raise DataError(
                f"data source {name!r}: file not found: {path} "
                f"(data.sources.{name}.path is relative to the spec's folder)"
            )
        fmt = source.format or _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise DataError(
                f"data source {name!r}: cannot tell the format of {path.name}; "
                f"set data.sources.{name}.format to csv, parquet or duckdb"
            )
        literal = "'" + str(path).replace("'", "''") + "'"
        if fmt == "csv":
            sql = f'CREATE VIEW "{name}" AS SELECT * FROM read_csv_auto({literal})'
        elif fmt == "parquet":
            sql = f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet({literal})'
        else:
            alias = f"src_{name}"
            self._execute(f'ATTACH {literal} AS "{alias}" (READ_ONLY)', name)
            table = source.table or name
            sql = f'CREATE VIEW "{name}" AS SELECT * FROM "{alias}"."{table}"'
        self._execute(sql, name)

    def _register_simulated(self, name: str, source: Source, seed: int) -> None:
        from causal.simulate import simulate

        key = (source.simulator, tuple(sorted(source.params.items())), seed)
        if key not in self._simulated:  # one simulated world shared by all its tables
            self._simulated[key] = simulate(source.simulator, seed=seed, **source.params)
        tables = self._simulated[key].tables
        if source.table not in tables:
            raise DataError(
                f"data source {name!r}: simulator {source.simulator!r} has no table "
                f"{source.table!r}; it has: {', '.join(tables)}"
            )
        self._con.register(name, tables[source.table])

    def _execute(self, sql: str, name: str) -> None:
        try:
            self._con.execute(sql)
        except self._duckdb.Error as exc:
            raise DataError(
                f"data source {name!r}: DuckDB could not open it: {_first_line(exc)}"
            ) from None

    @staticmethod
    def quote(identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Make a pandas frame a view (simulated data, tests)."""
        self._con.register(name, frame)

    def query(self, sql: str) -> pd.DataFrame:
        try:
            return self._con.execute(sql).df()
        except self._duckdb.Error as exc:
            if not is_rejection(str(exc)):
                raise failed("DuckDB", str(exc)) from None
            raise rejected("DuckDB", str(exc), sql) from None

    def create_view(self, name: str, sql: str, *, materialize: bool = False) -> None:
        kind = "TEMP TABLE" if materialize else "VIEW"
        try:
            self._con.execute(f"CREATE OR REPLACE {kind} {self.quote(name)} AS\n{sql}")
        except self._duckdb.Error as exc:
            if not is_rejection(str(exc)):
                raise failed("DuckDB", str(exc)) from None
            # the statement has one line in front of the spec's SQL
            raise rejected("DuckDB", _shift_line(str(exc), -1), sql) from None

    def close(self) -> None:
        self._con.close()


def _shift_line(message: str, by: int) -> str:
    import re

    return re.sub(r"^LINE (\d+):", lambda m: f"LINE {int(m.group(1)) + by}:", message, flags=re.M)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def open_engine(spec: Spec) -> Engine:
    """The engine the spec asks for (``engine:``), DuckDB unless it says spark.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> open_engine(load_spec("experiments/lalonde_nsw_experiment.yaml")).name
    'duckdb'
    """
    settings = spec.engine
    if settings.kind == "spark":
        from causal.data.spark_engine import SparkEngine  # pyspark only when asked for

        return SparkEngine(
            settings.master,
            connect_timeout=settings.connect_timeout_seconds,
            max_collect_rows=settings.max_collect_rows,
            config=dict(settings.config),
        )
    return DuckDBEngine()
