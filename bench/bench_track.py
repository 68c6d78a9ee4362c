"""Per-look statistics of a running pilot: 1,000,000 units × 60 daily looks, time per part.

Run: .venv/bin/python bench/bench_track.py [n_units] [--sql]

Units are assigned uniformly over the 60 days, half to each arm, with a pre-period covariate;
each unit makes Poisson(3)-many purchases spread over the days after its assignment (~3 events
per unit, those after the last look are ignored). Prints the best of 3 for
``causal.designs.track_stats.look_statistics`` with its parts (validate, index, bucket,
accumulate), then the confidence sequences at all 60 looks. ``--sql`` also runs
``look_statistics_sql`` in DuckDB once and checks it agrees to 1e-9.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from causal.designs.sequential import decision, difference_at_look
from causal.designs.track_stats import look_statistics, look_statistics_sql

N_LOOKS = 60


def simulate(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01", "D")
    day = rng.integers(0, N_LOOKS, n)
    arm = rng.integers(0, 2, n)
    x = rng.gamma(2.0, 20.0, n)
    units = {
        "unit_id": np.arange(n),
        "arm": arm,
        "assigned_at": start + day,
        "x": x,
    }
    per_unit = rng.poisson(3.0, n)
    owner = np.repeat(np.arange(n), per_unit)
    delay = rng.geometric(1 / 20, owner.size) - 1  # days after assignment
    value = rng.gamma(2.0, 0.5 * (20.0 + 0.5 * x[owner] + 2.0 * arm[owner]))
    events = {
        "unit_id": owner,
        "event_at": start + day[owner] + delay,
        "value": value,
    }
    looks = start + np.arange(N_LOOKS)
    return units, events, looks


def main(n: int, run_sql: bool) -> None:
    t0 = time.perf_counter()
    units, events, looks = simulate(n)
    print(
        f"{n:,} units, {len(events['value']):,} events, {N_LOOKS} looks "
        f"(simulated in {time.perf_counter() - t0:.1f} s)"
    )
    kw = {"covariate": "x"}
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        frame = look_statistics(units, events, looks, **kw)
        runs.append((time.perf_counter() - start, frame))
    total, frame = min(runs, key=lambda r: r[0])
    parts = ", ".join(f"{k} {v:.3f}" for k, v in frame.attrs["timings_s"].items())
    print(f"look_statistics (best of 3): {total:.3f} s  [{parts}]")

    start = time.perf_counter()
    planned = float(frame["n_0"].iloc[-1] + frame["n_1"].iloc[-1])
    plain = difference_at_look(frame, planned_n=planned)
    cuped = difference_at_look(frame, planned_n=planned, cuped=True)
    calls = decision(cuped)
    print(f"CS at {N_LOOKS} looks, plain + CUPED: {time.perf_counter() - start:.4f} s")
    first = int(np.argmax(calls != "keep running")) if (calls != "keep running").any() else None
    print(
        f"last look: plain {plain.estimate[-1]:.3f} CS [{plain.cs_low[-1]:.3f}, "
        f"{plain.cs_high[-1]:.3f}]; CUPED {cuped.estimate[-1]:.3f} CS [{cuped.cs_low[-1]:.3f}, "
        f"{cuped.cs_high[-1]:.3f}]; first CUPED decision at look {first}: "
        f"{calls[first] if first is not None else '-'}"
    )

    if run_sql:
        import duckdb
        import pandas as pd

        con = duckdb.connect()
        con.register("units", pd.DataFrame(units))
        con.register("events", pd.DataFrame(events))
        con.register("looks", pd.DataFrame({"look": looks}))
        start = time.perf_counter()
        sql = con.execute(look_statistics_sql("units", "events", "looks", **kw)).df()
        elapsed = time.perf_counter() - start
        cols = [c for c in frame.columns if c != "look"]
        np.testing.assert_allclose(sql[cols].to_numpy(float), frame[cols].to_numpy(), rtol=1e-9)
        print(f"look_statistics_sql in DuckDB: {elapsed:.2f} s (agrees to 1e-9)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 1_000_000, "--sql" in sys.argv)
