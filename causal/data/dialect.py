"""The one place where SQL dialects differ: specs are written for DuckDB, Spark runs them.

Spark 4 runs most DuckDB SQL as written. What it rejects is translated by sqlglot
(``read="duckdb", write="spark"``) and tried once more; if that fails too, the error is Spark's
own message on the *spec's* SQL, with its line, so the user fixes the text they wrote.
"""

from __future__ import annotations

import re

from causal.errors import DataError

_SPARK_LINE = (
    re.compile(r"line (\d+),? pos(?:ition)? \d+"),
    re.compile(r"\(line (\d+), position \d+\)"),
)
_DUCKDB_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)


def rejected(engine: str, message: str, sql: str) -> DataError:
    """A DataError naming the engine, the line of ``sql`` and the engine's first message line.

    Examples
    --------
    >>> error = rejected("DuckDB", 'Parser Error: syntax error\\n\\nLINE 2: FORM x',
    ...                  "SELECT 1\\nFORM x")
    >>> str(error).split(";")[0]
    'DuckDB rejected the SQL at line 2 (FORM x): Parser Error: syntax error'
    """
    line = _line_number(engine, message)
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    first = re.sub(r"\s*SQLSTATE: \w+;?", "", first).strip()
    where = ""
    lines = sql.splitlines()
    if line is not None and 1 <= line <= len(lines):
        where = f" at line {line} ({lines[line - 1].strip()[:80]})"
    return DataError(f"{engine} rejected the SQL{where}: {first}; fix the query in the spec")


def failed(engine: str, message: str) -> DataError:
    """A DataError for SQL the engine accepted but could not finish (disk, memory, a lost
    executor): not the user's SQL, so the message says where to look instead.

    Examples
    --------
    >>> str(failed("DuckDB", "IO Error: Could not write file")).split(";")[0]
    'DuckDB failed while running the SQL: IO Error: Could not write file'
    """
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return DataError(
        f"{engine} failed while running the SQL: {first[:300]}; check free disk space and "
        "memory (DuckDB spills to .tmp/ in the working folder) or the cluster's executors"
    )


def is_rejection(message: str) -> bool:
    """DuckDB's parse, bind and catalog errors are about the SQL text; the rest are not.

    Examples
    --------
    >>> is_rejection("Binder Error: column x not found"), is_rejection("IO Error: disk full")
    (True, False)
    """
    return message.lstrip().startswith(("Parser Error", "Binder Error", "Catalog Error"))


def run_spark_sql(spark, sql: str):
    """``spark.sql(sql)``, or its sqlglot translation when Spark rejects the DuckDB text."""
    from pyspark.errors import AnalysisException, ParseException

    try:
        return spark.sql(sql)
    except (ParseException, AnalysisException) as exc:
        original = exc
    translated = _translate(sql)
    if translated is not None and translated != sql:
        try:
            return spark.sql(translated)
        except (ParseException, AnalysisException):
            pass  # report the error on the text the user wrote, not on our translation
    raise rejected("Spark", str(original), sql) from None


def _translate(sql: str) -> str | None:
    try:
        import sqlglot
    except ImportError:  # the spark extra brings it; without it, Spark's own error stands
        return None
    try:
        return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="spark"))
    except sqlglot.errors.SqlglotError:
        return None


def _line_number(engine: str, message: str) -> int | None:
    if engine == "DuckDB":
        found = _DUCKDB_LINE.search(message)
        return int(found.group(1)) if found else None
    for pattern in _SPARK_LINE:
        found = pattern.search(message)
        if found:
            return int(found.group(1))
    return None
