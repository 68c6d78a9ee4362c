"""engine: spark — the same spec and the same numbers as DuckDB, and clear errors when Spark
cannot run. Marked `spark`: they start a local Spark (local[2]) once per test session."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_run import ROOT, cli
from conftest import SPARK_MASTER, spark_unavailable

from causal.data.dataset import query_table, run_query
from causal.data.engine import DuckDBEngine
from causal.errors import DataError
from causal.pipeline import analyse
from causal.spec import load_spec, with_engine

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(spark_unavailable() is not None, reason=str(spark_unavailable())),
]
WARRANTY = ROOT / "experiments" / "extended_warranty_pilot.yaml"
NSW = ROOT / "experiments" / "lalonde_nsw_experiment.yaml"


def on_spark(path: Path):
    return with_engine(load_spec(path), "spark", SPARK_MASTER)


def assert_same_numbers(a, b, *, path: str = "", rel: float = 1e-9) -> None:
    """Every number in ``a`` equals ``b`` to ``rel`` (absolute near 0); strings and keys equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys differ: {set(a) ^ set(b)}"
        for key in a:
            assert_same_numbers(a[key], b[key], path=f"{path}.{key}", rel=rel)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_numbers(x, y, path=f"{path}[{i}]", rel=rel)
    elif isinstance(a, float) and not isinstance(a, bool):
        if math.isnan(a):
            assert isinstance(b, float) and math.isnan(b), f"{path}: {a} vs {b}"
        else:
            assert b == pytest.approx(a, rel=rel, abs=rel), f"{path}: {a} vs {b}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def comparable(results) -> dict:
    """results.json without what legitimately differs between engines (provenance)."""
    out = json.loads(results.to_json())
    out.pop("provenance")
    return out


# --- the same table and the same numbers --------------------------------------------------


def test_spec_sql_builds_the_same_table_on_spark(spark_engine):
    spec = load_spec(WARRANTY)
    duck = query_table(spec)
    spark = query_table(on_spark(WARRANTY)).sort_values("customer_id", ignore_index=True)
    assert list(spark.columns) == list(duck.columns)
    pd.testing.assert_frame_equal(spark, duck, check_dtype=False)


def test_warranty_results_on_spark_equal_duckdb(spark_engine):
    """The issue's must-show: `--engine spark` gives the results.json numbers of DuckDB. The
    DuckDB run is the row path; the Spark run sends only aggregates back."""
    duck = analyse(load_spec(WARRANTY))
    spark = analyse(on_spark(WARRANTY))
    assert spark.provenance["engine"]["computed_from"] == "aggregates"
    assert duck.provenance["engine"]["computed_from"] == "rows"
    assert_same_numbers(comparable(duck), comparable(spark))


def test_csv_sources_on_spark_equal_duckdb(spark_engine):
    duck = analyse(load_spec(NSW))
    spark = analyse(on_spark(NSW))
    assert_same_numbers(comparable(duck), comparable(spark))


def test_cli_run_with_engine_spark_writes_the_same_results(tmp_path):
    """The command a user types, in a fresh interpreter (it starts its own Spark)."""
    duck = cli("run", str(WARRANTY), "--no-report", "--out", str(tmp_path / "duck"))
    spark = cli(
        "run", str(WARRANTY), "--no-report", "--engine", "spark", "--spark-master", SPARK_MASTER,
        "--out", str(tmp_path / "spark"),
    )  # fmt: skip
    assert duck.returncode == 0, duck.stderr
    assert spark.returncode == 0, spark.stderr
    assert spark.stdout.splitlines()[0] == duck.stdout.splitlines()[0]
    read = [
        json.loads((tmp_path / arm / "extended_warranty_pilot" / "results.json").read_text())
        for arm in ("duck", "spark")
    ]
    assert read[1]["provenance"]["engine"] == {
        "kind": "spark",
        "master": SPARK_MASTER,
        "computed_from": "aggregates",
    }
    for results in read:
        results.pop("provenance")
    assert_same_numbers(read[0], read[1])


def test_row_level_designs_collect_through_arrow(spark_engine):
    """A design that needs rows (here the surrogate's history query) gets the same frame."""
    spec = load_spec(ROOT / "experiments" / "extended_warranty_long_term.yaml")
    sql = spec.long_term.surrogate.source_sql
    duck = run_query(spec, sql, what="history")
    spark = run_query(with_engine(spec, "spark", SPARK_MASTER), sql, what="history")
    keys = list(duck.columns[:2])
    pd.testing.assert_frame_equal(
        spark.sort_values(keys, ignore_index=True),
        duck.sort_values(keys, ignore_index=True),
        check_dtype=False,
    )


def test_tracking_statistics_sql_on_spark_equals_duckdb(spark_engine):
    from causal.designs.track_stats import look_statistics_sql
    from causal.simulate import simulate

    world = simulate("remote_support_pilot", seed=3, n_customers=2_000, days=20)
    units = world.tables["customers"]
    events = world.tables["support_events"]
    events = events[events["metric"] == "repair_cost"]
    looks = pd.DataFrame({"look": pd.date_range(units["assigned_at"].min(), periods=10)})
    sql = look_statistics_sql(
        "u", "e", "l", unit="customer_id", arm="treated", covariate="pre_period_repair_cost",
        event_unit="customer_id", event_time="event_time",
    )  # fmt: skip
    frames = []
    for engine in (DuckDBEngine(), spark_engine):
        register = getattr(engine, "register_frame", None) or engine._con.register
        for name, frame in (("u", units), ("e", events), ("l", looks)):
            register(name, frame)
        frames.append(engine.query(sql))
    duck, spark = frames
    pd.testing.assert_frame_equal(spark.drop(columns="look"), duck.drop(columns="look"),
                                  check_dtype=False, rtol=1e-9)  # fmt: skip


# --- dialect --------------------------------------------------------------------------------


def test_duckdb_function_spark_lacks_is_translated(spark_engine):
    """strftime is DuckDB's; Spark rejects it, sqlglot translates it (date_format)."""
    spark_engine.register_frame("d", pd.DataFrame({"day": pd.to_datetime(["2025-03-04"])}))
    out = spark_engine.query("SELECT strftime(day, '%Y-%m') AS month FROM d")
    assert out["month"].tolist() == ["2025-03"]


def test_sql_spark_rejects_names_engine_and_line(spark_engine):
    spark_engine.register_frame("t", pd.DataFrame({"x": [1]}))
    with pytest.raises(DataError) as err:
        spark_engine.query("SELECT x,\n  no_such_function(x)\nFROM t")
    message = str(err.value)
    assert message.startswith("Spark rejected the SQL at line 2 (no_such_function(x))"), message
    assert "no_such_function" in message and "fix the query in the spec" in message


def test_sql_duckdb_rejects_names_engine_and_line():
    with pytest.raises(DataError, match=r"^DuckDB rejected the SQL at line 3 \(FORM t\)"):
        DuckDBEngine().query("SELECT 1\nAS x\nFORM t")


# --- bad input: clear errors, exit 2 ------------------------------------------------------


def test_duckdb_file_source_on_spark_says_export_to_parquet(tmp_path, spark_engine):
    spec = yaml.safe_load(NSW.read_text())
    spec["data"]["sources"] = {"nsw": {"path": "nsw.duckdb", "table": "nsw"}}
    (tmp_path / "nsw.duckdb").write_bytes(b"")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match=r"Spark cannot read a DuckDB file.*Parquet"):
        query_table(with_engine(load_spec(tmp_path / "spec.yaml"), "spark", SPARK_MASTER))


def test_master_that_does_not_answer_fails_fast():
    # Port 9 (discard) is closed here: the connection is refused at once.
    result = cli("validate", str(NSW), "--engine", "spark", "--spark-master", "spark://127.0.0.1:9")
    assert result.returncode == 2
    assert "Spark master spark://127.0.0.1:9 did not answer within 60 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_master_timeout_message(monkeypatch):
    import socket

    from causal.data import spark_engine

    def hang(address, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    with pytest.raises(DataError, match=r"sc://10\.0\.0\.1:15002 did not answer within 2 s"):
        spark_engine._reachable("sc://10.0.0.1:15002", 2.0)


def test_spark_not_installed_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # import fails as if not installed
    from causal.data.spark_engine import SparkEngine

    with pytest.raises(DataError, match=r"needs pyspark.*pip install 'causal\[spark\]'"):
        SparkEngine(master="local[1]")


def test_java_missing_says_so(monkeypatch):
    from causal.data.spark_engine import SparkEngine

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DataError, match=r"needs Java 17 or newer, and none was found"):
        SparkEngine(master="local[1]")


def test_cli_without_pyspark_exits_2(tmp_path):
    """A fresh interpreter where pyspark cannot be imported: one line, exit 2."""
    blocker = tmp_path / "pyspark"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('pyspark blocked for this test')\n")
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "causal.cli", "validate", str(NSW), "--engine", "spark"],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: engine spark needs pyspark, which is not installed: "
        "pip install 'causal[spark]' (make install includes it)"
    )


def test_awkward_table_aggregates_on_spark_equal_duckdb(spark_engine):
    """Missing values, a constant covariate, a tiny segment level, a mean 1e6 times the spread:
    every estimator and check from Spark's sums equals DuckDB's to 1e-9."""
    from test_ab_sums import COVARIATES, OUTCOMES, SEGMENTS, awkward_table

    from causal.designs import ab_sums
    from causal.designs.ab_sums_sql import summarize

    table = awkward_table()
    summaries = []
    for engine in (DuckDBEngine(), spark_engine):
        engine.register_frame("awkward", table)
        kw = {"outcomes": OUTCOMES, "covariates": COVARIATES, "segments": SEGMENTS}
        summaries.append(summarize(engine, "awkward", unit="id", treatment="d", **kw))
    duck, spark = summaries
    assert duck.fingerprint == spark.fingerprint
    for outcome in OUTCOMES:
        for name in ab_sums.ESTIMATORS:
            assert_same_numbers(
                ab_sums.estimate(name, duck, outcome).to_dict(),
                ab_sums.estimate(name, spark, outcome).to_dict(),
            )
        assert_same_numbers(
            [r.to_dict() for r in ab_sums.segment_effects(duck, outcome)],
            [r.to_dict() for r in ab_sums.segment_effects(spark, outcome)],
        )
    assert_same_numbers(
        list(ab_sums.balance_check(duck).table), list(ab_sums.balance_check(spark).table)
    )


def test_did_spec_on_spark_brings_rows_and_gives_the_same_results(spark_engine):
    """`causal run` on a DiD spec needs the panel's rows (TWFE, event study): through Arrow,
    the same numbers. (Callaway–Sant'Anna alone also runs from aggregates: test_did_moments.)"""
    path = ROOT / "experiments" / "mpdta_minimum_wage.yaml"
    duck = analyse(load_spec(path))
    spark = analyse(on_spark(path))
    assert spark.provenance["engine"]["computed_from"] == "rows"
    assert_same_numbers(comparable(duck), comparable(spark))


def test_validate_on_spark_summarises_in_the_engine(spark_engine, capsys):
    from causal.cli import main

    assert (
        main(["validate", str(WARRANTY), "--engine", "spark", "--spark-master", SPARK_MASTER]) == 0
    )
    out = capsys.readouterr().out
    assert "analysis table: 40000 units, " in out
    assert "missing values: none" in out
