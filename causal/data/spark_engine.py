"""Spark as a data engine: the same spec, where the data already live.

Local mode (``local[*]``) by default; a ``spark://`` / ``yarn`` / ``k8s://`` master or a Spark
Connect address (``sc://host:15002``) for a real cluster. Only small tables come back to the
driver, through Arrow: pyspark's own pandas conversion warns on pandas 3 and copies twice.

The spec's SQL is written for DuckDB; Spark 4 accepts most of it as written (``INTERVAL 12
MONTH``, ``FILTER (WHERE …)``, ``::BIGINT``, double-quoted identifiers with the setting below).
What it rejects is translated once by :mod:`causal.data.dialect`, never in the designs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from causal.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from causal.spec import Source

DEFAULT_MASTER = "local[*]"
_SESSIONS: dict[str, object] = {}
# Spark 4 runs in ANSI mode; with this, "name" is an identifier as in DuckDB, not a string.
_CONFIG = {
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
_LOG4J = Path(__file__).with_name("log4j2-quiet.properties")


class SparkEngine:
    """Spark SQL behind the :class:`~causal.data.engine.Engine` interface.

    Parameters
    ----------
    master
        ``local[*]`` (default), ``local[2]``, a cluster master URL or ``sc://host:port``.
    connect_timeout
        Seconds to wait for a remote master or Spark Connect server before giving up.
    max_collect_rows
        Largest result :meth:`query` brings to the driver; designs that need unit-level rows
        say so instead of filling the driver's memory.
    config
        Extra Spark settings (e.g. ``{"spark.executor.memory": "8g"}``).

    Examples
    --------
    >>> from causal.spec import Source
    >>> engine = SparkEngine(master="local[2]")  # doctest: +SKIP
    >>> engine.register("nsw", Source(path="causal/data/datasets/nsw_mixtape.csv"),
    ...                 base_dir=Path("."), seed=0)  # doctest: +SKIP
    >>> int(engine.query("SELECT count(*) AS n FROM nsw").n[0])  # doctest: +SKIP
    445
    """

    name = "spark"

    def __init__(
        self,
        master: str | None = None,
        *,
        connect_timeout: float = 60.0,
        max_collect_rows: int = 5_000_000,
        config: dict[str, str] | None = None,
    ) -> None:
        self.master = master or DEFAULT_MASTER
        self.max_collect_rows = max_collect_rows
        self._spark = _session(self.master, connect_timeout, dict(config or {}))
        self._views: list[str] = []
        self._cached: list[str] = []
        self._simulated: dict[tuple, object] = {}

    @staticmethod
    def quote(identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def register(self, name: str, source: Source, *, base_dir: Path, seed: int) -> None:
        if source.simulator is not None:
            self._register_simulated(name, source, seed)
            return
        frame = self._read(name, source, base_dir)
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Make a pandas frame a view (through Arrow; for simulated data and tests)."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        self._spark.createDataFrame(table).createOrReplaceTempView(name)
        self._views.append(name)

    def query(self, sql: str) -> pd.DataFrame:
        frame = self._sql(sql)
        try:
            table = frame.limit(self.max_collect_rows + 1).toArrow()
        except Exception as exc:  # pyspark raises many types for a job that dies; name it
            from causal.data.dialect import failed

            raise failed("Spark", str(exc)) from None
        if table.num_rows > self.max_collect_rows:
            raise DataError(
                f"the query returns more than {self.max_collect_rows:,} rows, too many to bring "
                "to the Spark driver; this design needs unit-level rows: sample in data.query "
                "(e.g. WHERE xxhash64(unit_id) % 10 = 0 keeps a fixed 10%), or raise "
                "engine.max_collect_rows if the driver has the memory"
            )
        return _to_pandas(table)

    def create_view(self, name: str, sql: str, *, materialize: bool = False) -> None:
        self._sql(sql).createOrReplaceTempView(name)
        self._views.append(name)
        if materialize:  # kept in the executors' memory for the passes that follow
            self._spark.catalog.cacheTable(name)
            self._cached.append(name)

    def close(self) -> None:
        # The session outlives the engine: starting Spark costs seconds, so a run that opens
        # several engines (data, then surrogate history) pays it once.
        for name in self._cached:
            self._spark.catalog.uncacheTable(name)
        for name in dict.fromkeys(self._views):
            self._spark.catalog.dropTempView(name)
        self._views.clear()
        self._cached.clear()

    def _sql(self, sql: str):
        from causal.data.dialect import run_spark_sql

        return run_spark_sql(self._spark, sql)

    def _read(self, name: str, source: Source, base_dir: Path):
        from causal.data.engine import _FORMATS

        path = (base_dir / source.path).resolve()
        if not path.exists() and "://" not in source.path:
            raise DataError(
                f"data source {name!r}: file not found: {path} "
                f"(data.sources.{name}.path is relative to the spec's folder)"
            )
        fmt = source.format or _FORMATS.get(path.suffix.lower())
        if fmt == "duckdb":
            raise DataError(
                f"data source {name!r}: Spark cannot read a DuckDB file ({path.name}); "
                f"export the table to Parquet (in DuckDB: COPY {source.table or name} TO "
                f"'{name}.parquet') and point data.sources.{name}.path at it"
            )
        location = source.path if "://" in source.path else str(path)
        if fmt == "csv":
            return self._spark.read.csv(location, header=True, inferSchema=True)
        if fmt == "parquet":
            return self._spark.read.parquet(location)
        raise DataError(
            f"data source {name!r}: cannot tell the format of {path.name}; "
            f"set data.sources.{name}.format to csv or parquet"
        )

    def _register_simulated(self, name: str, source: Source, seed: int) -> None:
        from causal.simulate import simulate

        key = (source.simulator, tuple(sorted(source.params.items())), seed)
        if key not in self._simulated:
            self._simulated[key] = simulate(source.simulator, seed=seed, **source.params)
        tables = self._simulated[key].tables
        if source.table not in tables:
            raise DataError(
                f"data source {name!r}: simulator {source.simulator!r} has no table "
                f"{source.table!r}; it has: {', '.join(tables)}"
            )
        self.register_frame(name, tables[source.table])


def _to_pandas(table) -> pd.DataFrame:
    """Arrow → pandas with DuckDB's conventions: naive timestamps (the session is in UTC)."""
    import pyarrow as pa

    columns = []
    for field in table.schema:
        column = table[field.name]
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            column = column.cast(pa.timestamp(field.type.unit))
        columns.append(column)
    return pa.table(columns, names=table.column_names).to_pandas()


def _session(master: str, timeout: float, config: dict[str, str]):
    key = master + repr(sorted(config.items()))
    if key in _SESSIONS:
        return _SESSIONS[key]
    pyspark = _import_pyspark()
    if not master.startswith("sc://"):
        _require_java()
    _reachable(master, timeout)
    quiet = {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"}
    session = _start(pyspark, master, {**_CONFIG, **quiet, **config}, timeout)
    _SESSIONS[key] = session
    return session


def _import_pyspark():
    try:
        import pyspark.sql as pyspark_sql
    except ImportError:
        raise DataError(
            "engine spark needs pyspark, which is not installed: "
            "pip install 'causal[spark]' (make install includes it)"
        ) from None
    return pyspark_sql


def _require_java() -> None:
    """pyspark starts a JVM; without Java it fails with a long gateway error, so say it first."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise DataError(
            "engine spark needs Java 17 or newer, and none was found (no java on PATH, "
            "JAVA_HOME unset); install it (Debian/Ubuntu: apt install openjdk-17-jre-headless) "
            "or use engine: duckdb"
        )
    try:
        banner = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return  # let Spark report what it finds
    found = re.search(r'version "(\d+)', banner)
    if found and int(found.group(1)) < 17:
        raise DataError(
            f"engine spark needs Java 17 or newer; {java} is Java {found.group(1)}: "
            "install OpenJDK 17 and point JAVA_HOME at it"
        )


def _reachable(master: str, timeout: float) -> None:
    """A master URL that does not answer must fail in seconds, not hang on the first query."""
    parsed = urlparse(master)
    if parsed.scheme not in {"spark", "sc"} or parsed.hostname is None:
        return
    default_port = 15002 if parsed.scheme == "sc" else 7077
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout):
            return
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        raise DataError(
            f"Spark master {master} did not answer within {timeout:g} s ({reason}); check the "
            "address and that the cluster is up, or set engine.master to local[*]"
        ) from None


def _start(pyspark, master: str, config: dict[str, str], timeout: float):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    # pyspark warns about pandas 3 wherever it might convert; every table crosses through Arrow
    # here (register_frame, query), never through pyspark's pandas code, so the warning is moot.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    builder = pyspark.SparkSession.builder.appName("causal")
    builder = builder.remote(master) if master.startswith("sc://") else builder.master(master)
    for key, value in config.items():
        builder = builder.config(key, value)
    started: dict[str, object] = {}

    def start() -> None:
        try:
            started["session"] = builder.getOrCreate()
        except Exception as exc:  # reported below with the master named
            started["error"] = exc

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise DataError(
            f"Spark did not start within {timeout:g} s on master {master}; check the master "
            "URL and the cluster, or raise engine.connect_timeout_seconds"
        )
    if "error" in started:
        first = str(started["error"]).strip().splitlines()[0][:300]
        raise DataError(f"Spark could not start on master {master}: {first}")
    session = started["session"]
    atexit.register(_stop, session)
    return session


def _stop(session) -> None:
    with contextlib.suppress(Exception):  # the interpreter is exiting; nothing to report to
        session.stop()
