"""The same spec on local Spark and on DuckDB: wall time and peak driver memory as data grow 10×.

Run: .venv/bin/python bench/bench_spark.py [--data DIR] [--sizes tenth,full]
     [--engines duckdb,spark] [--designs ab,did] [--masters "local[1],local[2]"]

Data (seeded, generated once in chunks with numpy → pyarrow Parquet under ``--data``, reused
when present):

- A/B: silos like ``experiments/extended_warranty_pilot.yaml``: ``crm`` (customer_id, treated,
  segment, tenure_months), ``erp_orders`` (customer_id, order_date, amount, category; written in
  date order, as an ERP appends them) and ``finance_margins`` (category, gross_margin). Full
  size: ≈100M order lines over 10M customers; 1/10: ≈10M lines, 1M customers. A spec YAML next
  to the data builds one row per customer (join + GROUP BY customer with FILTER/INTERVAL) and
  asks for difference in means, CUPED, Lin, relative lift and the value block. The offer raises
  the order rate in months 4–12 by 4/6/9% (bronze/silver/gold); ``truth.json`` has the mean
  expected effect per outcome.
- DiD: a long panel (unit, period, first_treated (0 = never), region, y), periods 1..24 in
  period order (a monthly fact table), staggered adoption by region at periods 8/12/16/20 and a
  known ATT(g, t). Full size: 10M units (240M rows); 1/10: 1M units.

Each measured run is a fresh subprocess (so its peak memory is its own): engine start, then
build + estimate; peak memory is the Python process's ``ru_maxrss`` and, for Spark, the JVM
child's ``VmHWM`` (peak RSS; the JVM is found through /proc/<pid>/task/*/children). Results
are appended to ``DIR/results.jsonl`` (a re-run replaces the same run), and the table, the
Spark/DuckDB ratios and the agreement between engines (max relative difference of every
estimate and standard error) are printed from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path("/tmp/causal-bench-spark")
SIZES = {"tenth": 0.1, "full": 1.0}
SEED = 20250301

# --- A/B world --------------------------------------------------------------------------------
AB_CUSTOMERS = 10_000_000  # full size; ≈10 order lines each over 24 months
START = np.datetime64("2025-03-01", "D")
MONTHS = np.arange(
    np.datetime64("2024-03", "M"), np.datetime64("2026-04", "M"), dtype="datetime64[M]"
).astype("datetime64[D]")  # 25 boundaries: months 0..11 pre, 12..14 post 1-3, 15..23 post 4-12
SEGMENTS = ("bronze", "silver", "gold")
SEGMENT_SHARE = (0.6, 0.3, 0.1)
SEGMENT_LOG_VALUE = np.array([0.0, 0.5, 1.0])
UPLIFT = np.array([0.04, 0.06, 0.09])  # order rate, months 4..12, treated
CATEGORIES = ("appliances", "computers", "phones", "accessories", "services")
CATEGORY_SHARE = np.array([0.25, 0.2, 0.2, 0.25, 0.1])
MARGINS = np.array([0.18, 0.12, 0.15, 0.45, 0.60])
ORDER_SHAPE = 2.0  # gamma shape of an order's amount
LINES_PER_CUSTOMER = 10.0

AB_QUERY = """\
WITH orders AS (
    SELECT
        o.customer_id,
        o.amount,
        o.amount * f.gross_margin AS gross_profit,
        o.order_date >= DATE '2025-03-01' - INTERVAL 12 MONTH
            AND o.order_date < DATE '2025-03-01' AS pre,
        o.order_date >= DATE '2025-03-01'
            AND o.order_date < DATE '2025-03-01' + INTERVAL 3 MONTH AS m1_3,
        o.order_date >= DATE '2025-03-01' + INTERVAL 3 MONTH
            AND o.order_date < DATE '2025-03-01' + INTERVAL 12 MONTH AS m4_12
    FROM erp_orders AS o
    LEFT JOIN finance_margins AS f ON f.category = o.category
)
SELECT
    c.customer_id,
    c.treated,
    c.segment,
    c.tenure_months,
    COALESCE(SUM(o.amount) FILTER (WHERE o.pre), 0.0) AS pre_revenue_12m,
    COUNT(o.amount) FILTER (WHERE o.pre)::BIGINT AS pre_orders_12m,
    COALESCE(SUM(o.amount) FILTER (WHERE o.m1_3), 0.0) AS revenue_3m,
    COALESCE(SUM(o.amount) FILTER (WHERE o.m1_3 OR o.m4_12), 0.0) AS revenue_12m,
    COALESCE(SUM(o.gross_profit) FILTER (WHERE o.m1_3 OR o.m4_12), 0.0) AS gross_profit_12m,
    (COUNT(o.amount) FILTER (WHERE o.m4_12) > 0)::BIGINT AS repurchase_12m
FROM crm AS c
LEFT JOIN orders AS o ON o.customer_id = c.customer_id
GROUP BY c.customer_id, c.treated, c.segment, c.tenure_months
"""

# --- DiD world --------------------------------------------------------------------------------
DID_UNITS = 10_000_000
PERIODS = 24
REGIONS = 200
COHORTS = np.array([0, 8, 12, 16, 20])  # first treated period of a region; 0 = never
COHORT_SHARE = np.array([0.25, 0.1875, 0.1875, 0.1875, 0.1875])


def did_effect(group: np.ndarray, period: np.ndarray) -> np.ndarray:
    """True ATT(g, t) for t >= g: a jump that grows with exposure, larger for early cohorts."""
    return 0.5 + 0.05 * (period - group) + 0.1 * (group == 8)


# --- data generation --------------------------------------------------------------------------


def generate(data: Path, size: str) -> Path:
    """Both data sets of one size under ``data/size`` (skipped when already complete)."""
    folder = data / size
    folder.mkdir(parents=True, exist_ok=True)
    scale = SIZES[size]
    if not (folder / "ab" / "truth.json").exists():
        start = time.perf_counter()
        _generate_ab(folder / "ab", round(AB_CUSTOMERS * scale))
        print(f"[{size}] A/B data written in {time.perf_counter() - start:.0f} s", flush=True)
    if not (folder / "did" / "truth.json").exists():
        start = time.perf_counter()
        _generate_did(folder / "did", round(DID_UNITS * scale))
        print(f"[{size}] DiD panel written in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def _generate_ab(folder: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE).astype(np.int8)
    tenure = np.minimum(1 + np.floor(rng.exponential(30.0, size=n)), 180).astype(np.int64)
    value = np.exp(SEGMENT_LOG_VALUE[seg] + 0.25 * np.log1p(tenure / 12) + 0.8 * rng.normal(size=n))
    drift = np.exp(0.3 * rng.normal(size=n) - 0.045)  # pre/post rate change: CUPED's limit
    treated = np.zeros(n, dtype=np.int64)
    treated[rng.permutation(n)[: n // 2]] = 1
    rate = value**0.6
    rate *= LINES_PER_CUSTOMER / (12 * rate.mean() + 12 * (rate * drift).mean())  # per month
    rate_post = rate * drift
    size_mean = 40.0 * value**0.4
    del value

    crm = pa.table(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "treated": treated,
            "segment": pa.DictionaryArray.from_arrays(seg, list(SEGMENTS)).cast(pa.string()),
            "tenure_months": tenure,
        }
    )
    pq.write_table(crm, folder / "crm.parquet")
    del crm
    margins = pa.table({"category": list(CATEGORIES), "gross_margin": MARGINS})
    pq.write_table(margins, folder / "finance_margins.parquet")

    # Order lines month by month over all customers, each month in date order.
    schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("order_date", pa.date32()),
            ("amount", pa.float64()),
            ("category", pa.string()),
        ]
    )
    lines = 0
    ids = np.arange(1, n + 1, dtype=np.int64)
    with pq.ParquetWriter(folder / "erp_orders.parquet", schema) as writer:
        for m in range(24):
            lam = rate if m < 12 else rate_post
            if m >= 15:
                lam = lam * (1 + UPLIFT[seg] * treated)
            count = rng.poisson(lam)
            who = np.repeat(ids, count)
            k = len(who)
            days = (MONTHS[m + 1] - MONTHS[m]).astype(np.int64)
            day = rng.integers(0, days, size=k)
            order = np.argsort(day, kind="stable")
            who, day = who[order], day[order]
            amount = rng.gamma(ORDER_SHAPE, size_mean[who - 1] / ORDER_SHAPE)
            category = rng.choice(len(CATEGORIES), size=k, p=CATEGORY_SHARE).astype(np.int8)
            date = (MONTHS[m] + day.astype("timedelta64[D]")).astype("datetime64[D]")
            batch = pa.table(
                {
                    "customer_id": who,
                    "order_date": pa.array(date, type=pa.date32()),
                    "amount": amount,
                    "category": pa.DictionaryArray.from_arrays(category, list(CATEGORIES)).cast(
                        pa.string()
                    ),
                },
                schema=schema,
            )
            writer.write_table(batch, row_group_size=1 << 20)
            lines += k
    # Truth: mean over customers of E[Y(1) - Y(0) | the customer's rates and order size].
    extra = 9 * rate_post * UPLIFT[seg]  # expected extra orders, months 4..12
    base = 9 * rate_post
    mean_margin = float(CATEGORY_SHARE @ MARGINS)
    truth = {
        "revenue_12m": float(np.mean(extra * size_mean)),
        "gross_profit_12m": float(np.mean(extra * size_mean) * mean_margin),
        "repurchase_12m": float(np.mean(np.exp(-base) - np.exp(-base - extra))),
        "revenue_3m": 0.0,
        "pre_revenue_12m": 0.0,
        "n_customers": n,
        "n_order_lines": int(lines),
    }
    _write_spec(folder)
    (folder / "truth.json").write_text(json.dumps(truth, indent=2))


def _write_spec(folder: Path) -> None:
    import yaml

    spec = {
        "name": "bench_spark_warranty",
        "title": "Extended warranty at checkout (bench data)",
        "question": "Did the offer earn more than it cost over 12 months?",
        "intervention": {
            "name": "extended_warranty_offer",
            "description": "A 3-year extended warranty offered at checkout.",
            "start_date": "2025-03-01",
            "cost_per_treated_unit": 2.5,
            "fixed_cost": 150000,
        },
        "design": {"kind": "ab_test", "planned_treated_share": 0.5},
        "unit": "customer_id",
        "treatment": "treated",
        "outcomes": [
            {"column": "revenue_12m", "kind": "continuous", "horizon": "12 months"},
            {"column": "gross_profit_12m", "kind": "continuous", "horizon": "12 months"},
            {"column": "repurchase_12m", "kind": "binary", "horizon": "12 months"},
            {"column": "revenue_3m", "kind": "continuous", "horizon": "3 months"},
        ],
        "covariates": ["pre_revenue_12m", "pre_orders_12m", "tenure_months"],
        "segments": ["segment"],
        "data": {
            "sources": {
                "crm": {"path": "crm.parquet"},
                "erp_orders": {"path": "erp_orders.parquet"},
                "finance_margins": {"path": "finance_margins.parquet"},
            },
            "query": AB_QUERY,
        },
        "value": {
            "currency": "EUR",
            "outcome": "revenue_12m",
            "profit_outcome": "gross_profit_12m",
            "population": 4_000_000,
        },
        "estimators": ["difference_in_means", "cuped", "lin", "relative_lift"],
        "seed": SEED,
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, width=100))


def _generate_did(folder: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    region_cohort = rng.choice(COHORTS, size=REGIONS, p=COHORT_SHARE)
    region_effect = rng.normal(0.0, 1.0, size=REGIONS)
    region = rng.integers(0, REGIONS, size=n).astype(np.int32)
    first = region_cohort[region].astype(np.int32)
    alpha = region_effect[region] + rng.normal(0.0, 1.0, size=n)
    trend = 0.1 * np.arange(1, PERIODS + 1) + 0.3 * np.sin(np.arange(1, PERIODS + 1) / 2)
    shock = rng.normal(0.0, 0.1, size=(PERIODS, REGIONS))  # region × period: clustered errors
    unit = np.arange(1, n + 1, dtype=np.int64)
    schema = pa.schema(
        [
            ("unit", pa.int64()),
            ("period", pa.int32()),
            ("first_treated", pa.int32()),
            ("region", pa.int32()),
            ("y", pa.float64()),
        ]
    )
    with pq.ParquetWriter(folder / "panel.parquet", schema) as writer:
        for t in range(1, PERIODS + 1):
            treated_now = (first > 0) & (t >= first)
            effect = np.where(treated_now, did_effect(first, np.full(n, t)), 0.0)
            y = alpha + trend[t - 1] + shock[t - 1, region] + effect + rng.normal(size=n)
            batch = pa.table(
                {
                    "unit": unit,
                    "period": np.full(n, t, dtype=np.int32),
                    "first_treated": first,
                    "region": region,
                    "y": y,
                },
                schema=schema,
            )
            writer.write_table(batch, row_group_size=1 << 20)
    # Truth of the simple aggregation: post cells weighted by cohort size (R did::aggte).
    groups, sizes = np.unique(first[first > 0], return_counts=True)
    num = den = 0.0
    cells = {}
    for g, size in zip(groups, sizes, strict=True):
        for t in range(int(g), PERIODS + 1):
            att = float(did_effect(np.array(g), np.array(t)))
            cells[f"{g},{t}"] = att
            num += size * att
            den += size
    cohorts = np.unique(first, return_counts=True)
    truth = {
        "simple": num / den,
        "att_gt": cells,
        "n_units": n,
        "n_rows": n * PERIODS,
        "cohort_sizes": {str(int(g)): int(k) for g, k in zip(*cohorts, strict=True)},
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=2))


# --- measured runs (each in its own process) ----------------------------------------------


def _gib(kib: float) -> float:
    return kib / 2**20


def _descendants(pid: int) -> list[int]:
    """Child processes, through /proc/<pid>/task/*/children, or PPid when the kernel lacks it."""
    kids: list[int] = []
    tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if tasks:
        for task in tasks:
            try:
                kids += [int(k) for k in task.read_text().split()]
            except OSError:
                continue
    else:  # CONFIG_PROC_CHILDREN off: scan every process's parent
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in text:
                kids.append(int(status.parent.name))
    return kids + [d for k in kids for d in _descendants(k)]


def _jvm_stats() -> dict:
    """Peak RSS (VmHWM) and CPU seconds of the JVM(s) our process started."""
    peak, cpu = 0.0, 0.0
    for pid in _descendants(os.getpid()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if "Name:\tjava" not in status:
            continue
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        peak = max(peak, _gib(float(hwm.split()[1])))
        cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return {"jvm_peak_gib": peak or None, "jvm_cpu_s": cpu or None}


def _time_queries() -> list:
    """Record [first words, seconds, rows] of every query the engines run (where time goes;
    on Spark the first query over a cached view also builds it)."""
    from causal.data.engine import DuckDBEngine
    from causal.data.spark_engine import SparkEngine

    log: list = []
    for cls in (DuckDBEngine, SparkEngine):
        original = cls.query

        def query(self, sql, _original=original):
            start = time.perf_counter()
            frame = _original(self, sql)
            log.append([" ".join(sql.split())[:60], time.perf_counter() - start, len(frame)])
            return frame

        cls.query = query
    return log


def _spark_config(args: dict) -> dict[str, str]:
    return {"spark.driver.memory": args["spark_memory"]} if args.get("spark_memory") else {}


def _duckdb_engine(threads: int):
    from causal.data.engine import DuckDBEngine

    engine = DuckDBEngine()
    if threads != 1:  # reference only: the shipped engine is single-threaded on purpose
        engine._con.execute(f"SET threads = {threads}")
    return engine


def worker(args: dict) -> dict:
    """One measured run; returns timings, peak memory and the numbers to compare."""
    import causal.pipeline
    import causal.pipeline_pushdown

    del causal  # imported here so that the timed part does not pay for the imports

    queries = _time_queries()
    out = worker_ab(args) if args["design"] == "ab" else worker_did(args)
    out["queries"] = queries
    out["python_peak_gib"] = _gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    out["python_cpu_s"] = sum(os.times()[:2])
    out.update(_jvm_stats())
    return out


def worker_ab(args: dict) -> dict:
    from causal import pipeline_pushdown
    from causal.data.engine import open_engine
    from causal.pipeline import analyse
    from causal.spec import load_spec, with_engine

    spec = load_spec(Path(args["folder"]) / "ab" / "spec.yaml")
    if args["engine"] == "spark":
        spec = with_engine(spec, "spark", args["master"])
        config = _spark_config(args)
        if config:
            settings = spec.engine.model_copy(update={"config": config})
            copy = spec.model_copy(update={"engine": settings})
            copy._path = spec._path
            spec = copy
    start = time.perf_counter()
    if args["threads"] != 1:
        engine = _duckdb_engine(args["threads"])
        pipeline_pushdown.open_engine = lambda _spec: engine
    else:
        open_engine(spec).close()  # Spark: the session stays up for the run (one per master)
    started = time.perf_counter()
    run = analyse if args["path"] == "rows" else pipeline_pushdown.analyse_pushed_down
    res = run(spec)
    done = time.perf_counter()
    numbers = {f"{r.outcome}/{r.estimator}": [r.estimate, r.std_error] for r in res.results}
    for line in (res.value or {}).get("lines", ()):
        numbers[f"value/{line['name']}"] = [line["estimate"], line["std_error"]]
    lin = res.find(outcome="revenue_12m", estimator="lin")
    return {
        "start_s": started - start,
        "run_s": done - started,
        "steps_s": res.provenance.get("timings_seconds", {}),
        "computed_from": res.provenance.get("engine", {}).get("computed_from"),
        "n_units": res.provenance.get("n_rows"),
        "numbers": numbers,
        "check": {"estimate": lin.estimate, "std_error": lin.std_error},
    }


def worker_did(args: dict) -> dict:
    from causal.spec import Source

    folder = Path(args["folder"]) / "did"
    source = Source(path="panel.parquet")
    start = time.perf_counter()
    if args["engine"] == "spark":
        from causal.data.spark_engine import SparkEngine

        engine = SparkEngine(args["master"], config=_spark_config(args))
    else:
        engine = _duckdb_engine(args["threads"])
    started = time.perf_counter()
    engine.register("panel", source, base_dir=folder, seed=0)
    if args["path"] == "rows":
        numbers, check = _did_rows(engine)
    else:
        numbers, check = _did_aggregates(engine)
    done = time.perf_counter()
    engine.close()
    return {
        "start_s": started - start,
        "run_s": done - started,
        "numbers": numbers,
        "check": check,
    }


DID_KINDS = ("simple", "group", "dynamic", "calendar")
N_BOOT = 999  # uniform bands of group / dynamic / calendar (cs_from_aggregates' default)


def _did_rows(engine) -> tuple[dict, dict]:
    """Our row path: the long panel to pandas, ``group_time_effects``, cluster-robust cells,
    the four aggregations with their bands (``did_cs_run``'s steps) and the pre-test."""
    from causal.designs.did_cs import group_time_effects
    from causal.designs.did_cs_aggregate import aggregate
    from causal.designs.did_cs_run import clustered_cells, pretest

    panel = engine.query("SELECT unit, period, first_treated, region, y FROM panel")
    effects = group_time_effects(
        panel, unit="unit", time="period", cohort="first_treated", outcome="y"
    )
    region = panel.drop_duplicates("unit").set_index("unit")["region"]
    del panel
    cluster = np.unique(region.reindex(effects.units).to_numpy(), return_inverse=True)[1]
    effects = clustered_cells(effects, cluster)
    aggregations = {}
    for kind in DID_KINDS:
        analytic = aggregate(effects, kind, cluster=cluster)
        if analytic.table is not None:  # the band, as did_cs_run._with_band
            boot = aggregate(
                effects, kind, n_boot=N_BOOT, seed=0, weights="rademacher", cluster=cluster
            )
            table = analytic.table.copy()
            table["band_low"] = table["estimate"] - boot.critical_value * table["std_error"]
            table["band_high"] = table["estimate"] + boot.critical_value * table["std_error"]
            analytic = replace(analytic, table=table)
        aggregations[kind] = analytic
    return _did_numbers(effects.table, aggregations, pretest(effects, cluster=cluster))


def _did_aggregates(engine) -> tuple[dict, dict]:
    from causal.designs.did_moments import cs_from_aggregates

    result = cs_from_aggregates(
        engine,
        "panel",
        unit="unit",
        time="period",
        cohort="first_treated",
        outcome="y",
        cluster="region",
        bootstrap_replications=N_BOOT,
        seed=0,
    )
    return _did_numbers(result.effects.table, result.aggregations, result.pretest)


def _did_numbers(cells, aggregations: dict, pre: dict) -> tuple[dict, dict]:
    numbers = {
        f"att_gt/{int(g)},{int(t)}": [float(a), float(s)]
        for g, t, a, s in cells[["group", "time", "att", "std_error"]].itertuples(index=False)
    }
    for kind, agg in aggregations.items():
        numbers[kind] = [agg.estimate, agg.std_error]
        if agg.table is not None:
            for row in agg.table.itertuples(index=False):
                numbers[f"{kind}/{row.level}"] = [
                    float(row.estimate),
                    float(row.std_error),
                    float(row.band_low),
                    float(row.band_high),
                ]
    numbers["pretest"] = [pre["w"], pre["p_value"]]
    simple = aggregations["simple"]
    return numbers, {"estimate": simple.estimate, "std_error": simple.std_error}


# --- the driver -------------------------------------------------------------------------------

TIMEOUT_S = 25 * 60


def plan(sizes, engines, designs, masters, *, threads2: bool) -> list[dict]:
    runs = []
    for design in designs:
        for size in sizes:
            if "duckdb" in engines:
                if design == "ab" or size == "tenth":  # full-size DiD rows need ≈30 GiB
                    runs.append(dict(design=design, size=size, engine="duckdb", path="rows"))
                runs.append(dict(design=design, size=size, engine="duckdb", path="aggregates"))
                if threads2:
                    runs.append(
                        dict(design=design, size=size, engine="duckdb", path="aggregates",
                             threads=2)
                    )  # fmt: skip
            if "spark" in engines:
                for master in masters:
                    runs.append(
                        dict(design=design, size=size, engine="spark", path="aggregates",
                             master=master)
                    )  # fmt: skip
    for run in runs:
        run.setdefault("threads", 1)
        run.setdefault("master", None)
    return runs


def run_key(run: dict) -> str:
    engine = run["engine"] + (f" {run['master']}" if run["master"] else "")
    engine += f" threads={run['threads']}" if run["threads"] != 1 else ""
    return f"{run['design']}|{run['size']}|{engine}|{run['path']}"


def _busy_seconds() -> float:
    """CPU seconds spent by everything on the machine so far (/proc/stat, all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])
    return (sum(int(f) for f in fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_idle(max_wait_s: float) -> float:
    """Wait (up to ``max_wait_s``) until the machine is idle for 5 s; return its busy share."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = _busy_seconds()
        time.sleep(5)
        share = (_busy_seconds() - before) / 5 / os.cpu_count()
        if share < 0.1 or time.monotonic() > deadline:
            return share


def launch(run: dict, data: Path, spark_memory: str | None) -> dict:
    args = {**run, "folder": str(data / run["size"]), "spark_memory": spark_memory}
    cmd = [sys.executable, __file__, "--worker", json.dumps(args)]
    busy = _busy_seconds()
    wall = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {**run, "failed": f"over {TIMEOUT_S // 60} min"}
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {**run, "failed": f"exit {proc.returncode}: {reason[:200]}", "process_s": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # CPU the rest of the machine used meanwhile (other jobs compete for the 2 cores)
    others = _busy_seconds() - busy - out["python_cpu_s"] - (out.get("jvm_cpu_s") or 0.0)
    return {
        **run,
        **out,
        "process_s": wall,
        "spark_memory": spark_memory,
        "other_cpu_s": max(others, 0.0),
    }


def load_results(path: Path) -> dict[str, dict]:
    results: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                results[run_key(row)] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="tenth,full")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--designs", default="ab,did")
    parser.add_argument("--masters", default="local[1],local[2]")
    parser.add_argument("--no-threads2", action="store_true", help="skip DuckDB threads=2")
    parser.add_argument("--spark-memory", default=None, help="spark.driver.memory (e.g. 4g)")
    parser.add_argument(
        "--wait-idle", type=float, default=600, help="seconds to wait for an idle machine"
    )
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="print the stored results")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    sizes = args.sizes.split(",")
    store = args.data / "results.jsonl"
    if not args.report_only:
        for size in sizes:
            generate(args.data, size)
        if args.generate_only:
            return
        runs = plan(
            sizes,
            args.engines.split(","),
            args.designs.split(","),
            args.masters.split(","),
            threads2=not args.no_threads2,
        )
        for run in runs:
            busy_before = wait_idle(args.wait_idle)
            print(f"running {run_key(run)} …", flush=True)
            row = launch(run, args.data, args.spark_memory)
            row["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
            row["busy_before"] = busy_before
            with store.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print("  " + _line(row), flush=True)
    report(load_results(store), args.data)


def report(results: dict[str, dict], data: Path) -> None:
    """The table, Spark/DuckDB ratios, 10× scaling, agreement between engines, estimate vs truth."""
    rows = sorted(results.values(), key=lambda r: (r["design"], r["size"] != "tenth", run_key(r)))
    print(
        "\n| design | size | engine | path | engine start s | build + estimate s | total s "
        "| Python peak GiB | JVM peak GiB | CPU s (ours) | CPU s (other jobs) |"
    )
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        engine = run_key(r).split("|")[2]
        if "failed" in r:
            print(f"| {r['design']} | {r['size']} | {engine} | {r['path']} | {r['failed']} |")
            continue
        jvm = f"{r['jvm_peak_gib']:.2f}" if r.get("jvm_peak_gib") else "–"
        cpu = r["python_cpu_s"] + (r.get("jvm_cpu_s") or 0.0)
        print(
            f"| {r['design']} | {r['size']} | {engine} | {r['path']} | {r['start_s']:.2f} "
            f"| {r['run_s']:.1f} | {r['start_s'] + r['run_s']:.1f} "
            f"| {r['python_peak_gib']:.2f} | {jvm} | {cpu:.0f} | {r.get('other_cpu_s', 0):.0f} |"
        )
    ok = {k: r for k, r in results.items() if "failed" not in r}

    def find(design, size, engine_label, path="aggregates"):
        return ok.get(f"{design}|{size}|{engine_label}|{path}")

    print("\nSpark / DuckDB (aggregate path, DuckDB single-threaded), total wall time:")
    for design in ("ab", "did"):
        for size in SIZES:
            duck = find(design, size, "duckdb")
            for master in ("local[1]", "local[2]"):
                spark = find(design, size, f"spark {master}")
                if duck and spark:
                    total = (spark["start_s"] + spark["run_s"]) / (duck["start_s"] + duck["run_s"])
                    run = spark["run_s"] / duck["run_s"]
                    print(
                        f"  {design} {size:<5} {master}: {total:5.2f}× total, "
                        f"{run:5.2f}× without engine start"
                    )
    print("\nData 10× (full / tenth): build + estimate time, Python peak, JVM peak:")
    for key, full in ok.items():
        design, size, engine, path = key.split("|")
        tenth = ok.get(f"{design}|tenth|{engine}|{path}")
        if size != "full" or tenth is None:
            continue
        jvm = (
            f"{full['jvm_peak_gib'] / tenth['jvm_peak_gib']:.2f}×"
            if full.get("jvm_peak_gib") and tenth.get("jvm_peak_gib")
            else "–"
        )
        print(
            f"  {design} {engine:<22} {path:<10} time {full['run_s'] / tenth['run_s']:5.1f}×, "
            f"Python {full['python_peak_gib'] / tenth['python_peak_gib']:4.2f}×, JVM {jvm}"
        )
    print("\nAgreement (max relative difference of estimates, SEs and bands) with DuckDB's")
    print("aggregate path, or with Spark local[1] where DuckDB did not finish:")
    for key, row in sorted(ok.items()):
        design, size, engine, path = key.split("|")
        ref, label = find(design, size, "duckdb"), "duckdb"
        if ref is None:
            ref, label = find(design, size, "spark local[1]"), "spark local[1]"
        if ref is None or row is ref:
            continue
        diff, where = max_rel_diff(row["numbers"], ref["numbers"])
        print(
            f"  {design} {size:<5} {engine:<22} {path:<10} vs {label}: {diff:.1e} "
            f"over {len(ref['numbers'])} results (worst: {where})"
        )
    print("\nEstimate vs truth (A/B: Lin on revenue_12m; DiD: simple ATT, CR by region):")
    for key, row in ok.items():
        design, size, engine, path = key.split("|")
        if path != "aggregates" or engine not in ("duckdb", "spark local[2]"):
            continue
        truth = json.loads((data / size / design / "truth.json").read_text())
        true = truth["revenue_12m"] if design == "ab" else truth["simple"]
        est, se = row["check"]["estimate"], row["check"]["std_error"]
        print(
            f"  {design} {size:<5} {engine:<15} estimate {est:.4f} (SE {se:.4f}), "
            f"truth {true:.4f}, z = {(est - true) / se:+.2f}"
        )


def max_rel_diff(a: dict, b: dict) -> tuple[float, str]:
    """Largest |x − y| / max(|x|, |y|) over the numbers both runs report (0 where both are 0),
    and which number it was."""
    if set(a) != set(b):
        return float("nan"), "different numbers reported"
    worst, where = 0.0, ""
    for key, pair in b.items():
        for i, (x, y) in enumerate(zip(a[key], pair, strict=True)):
            if x is None or y is None:
                if x is not y:
                    return float("nan"), key
                continue
            scale = max(abs(x), abs(y))
            if scale > 0 and abs(x - y) / scale > worst:
                worst = abs(x - y) / scale
                where = f"{key} [{('estimate', 'SE', 'band low', 'band high')[i]}]"
    return worst, where


def _line(row: dict) -> str:
    if "failed" in row:
        return f"{run_key(row)}: FAILED {row['failed']}"
    jvm = f"{row['jvm_peak_gib']:.2f}" if row.get("jvm_peak_gib") else "–"
    return (
        f"{run_key(row)}: start {row['start_s']:.1f} s, build+estimate {row['run_s']:.1f} s, "
        f"Python peak {row['python_peak_gib']:.2f} GiB, JVM peak {jvm} GiB, "
        f"CPU of other jobs meanwhile {row['other_cpu_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
