"""DiD at scale: our event study against pyfixest, our Callaway–Sant'Anna against csdid.

Run: .venv/bin/python bench/bench_did.py [--units 1000000] [--periods 24] [--peer-units N]

One run of this script simulates a balanced panel (``remote_support_rollout``: staggered
waves, ramping effects, never-treated regions), writes it to Parquet once, then times each
task in its own worker process on that same file, so each peak memory figure is that task's
own (``ru_maxrss`` of the worker, which includes the loaded table). Timed, best of 3: from the long
DataFrame in memory to the estimates with standard errors.

- Event study: leads/lags -8..8 (end points binned, -1 the reference), unit and period fixed
  effects, CR1 clustered by unit. Ours: ``build_did_panel`` + ``event_study`` (fast path).
  pyfixest: ``feols("y ~ i(rel, ref=-1) | unit + t", vcov={"CRV1": "unit"})`` with ``rel``
  the binned event time (never treated: -1, i.e. all dummies zero) computed before timing.
- Callaway–Sant'Anna: never-treated controls, no covariates, analytic SE, the ``simple``
  aggregation. Ours: ``group_time_effects`` + ``aggregate``. csdid: ``ATTgt(...).fit(
  est_method="dr", bstrap=False)`` + ``aggte("simple", bstrap=False)``.

``--peer-units`` runs the peers (and ours again, for a like-for-like ratio) on the first N
units when a peer cannot finish at full size on the machine; ``--full-size-peers`` says which
peers also run at full size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

LEAD, LAG = -8, 8
REPEAT = 3  # best of 3 in the same worker (the first run also pays first-touch page faults)
TASKS = ("causal_event_study", "pyfixest_event_study", "causal_cs", "csdid_cs")


def simulate_panel(n_units: int, n_periods: int, path: Path) -> None:
    from causal.simulate_rollout import remote_support_rollout

    waves = tuple(range(8, n_periods - 1, 4))
    pilot = remote_support_rollout(
        n_stores=n_units, n_regions=40, n_months=n_periods, waves=waves, seed=1
    )
    stores = pilot.tables["stores"].merge(pilot.tables["rollout"], on="region")
    first = stores.set_index("store")["support_start_month"].fillna(0).astype("int64")
    months = pilot.tables["store_months"]
    panel = pd.DataFrame(
        {
            "unit": months["store"].to_numpy(),
            "t": months["month_index"].to_numpy(),
            "y": months["revenue"].to_numpy(),
            "g": first.reindex(months["store"]).to_numpy(),
        }
    )
    panel.to_parquet(path)


def worker(task: str, path: str, n_units: int | None) -> dict:
    table = pd.read_parquet(path)
    if n_units is not None:
        table = table[table["unit"] <= n_units].reset_index(drop=True)
    loaded = _peak_gib()
    for module in IMPORTS[task]:  # imports are not timed
        __import__(module)
    prepare, run = WORKERS[task]
    data = prepare(table)
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            numbers = run(data)
        times.append(time.perf_counter() - start)
    return {
        "seconds": min(times),
        "first_seconds": times[0],
        "peak_gib": _peak_gib(),
        "loaded_gib": loaded,
        **numbers,
    }


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _ours_event_study(table):
    from causal.designs import did_twfe
    from causal.designs.did_panel import build_did_panel

    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    es = did_twfe.event_study(panel, lead=LEAD, lag=LAG)
    return {"coef": es.fit.coef.tolist(), "se": es.fit.std_error.tolist()}


def _with_rel(table):
    rel = np.clip(table["t"] - table["g"], LEAD, LAG)
    table["rel"] = np.where(table["g"] > 0, rel, -1)
    return table


def _pyfixest_event_study(table):
    import pyfixest as pf

    fit = pf.feols("y ~ i(rel, ref=-1) | unit + t", data=table, vcov={"CRV1": "unit"})
    return {"coef": fit.coef().to_numpy().tolist(), "se": fit.se().to_numpy().tolist()}


def _ours_cs(table):
    from causal.designs.did_cs import group_time_effects
    from causal.designs.did_cs_aggregate import aggregate

    effects = group_time_effects(table, unit="unit", time="t", cohort="g", outcome="y")
    simple = aggregate(effects, "simple")
    return {"att": simple.estimate, "se": simple.std_error}


def _csdid_cs(table):
    from csdid.att_gt import ATTgt

    fit = ATTgt(
        yname="y",
        gname="g",
        idname="unit",
        tname="t",
        xformla=None,
        data=table,
        control_group="nevertreated",
    ).fit(est_method="dr", bstrap=False)
    simple = fit.aggte(typec="simple", bstrap=False)
    out = simple.atte if hasattr(simple, "atte") else fit.atte
    return {"att": float(out["overall_att"]), "se": float(out["overall_se"])}


IMPORTS = {
    "causal_event_study": ("causal.designs.did_twfe", "causal.designs.did_panel"),
    "pyfixest_event_study": ("pyfixest",),
    "causal_cs": ("causal.designs.did_cs", "causal.designs.did_cs_aggregate"),
    "csdid_cs": ("csdid.att_gt",),
}
WORKERS = {
    "causal_event_study": (lambda t: t, _ours_event_study),
    "pyfixest_event_study": (_with_rel, _pyfixest_event_study),
    "causal_cs": (lambda t: t, _ours_cs),
    "csdid_cs": (lambda t: t, _csdid_cs),
}


def launch(task: str, path: Path, n_units: int | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", task, "--data", str(path)]
    if n_units is not None:
        cmd += ["--subset", str(n_units)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        return {"failed": f"exit {proc.returncode}: {reason[:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(label: str, ours: dict, peer: dict, peer_name: str) -> None:
    if "failed" in peer or "failed" in ours:
        nan = float("nan")
        print(
            f"{label:<34} causal {ours.get('seconds', nan):8.2f} s "
            f"{ours.get('peak_gib', nan):5.2f} GiB (first run {ours.get('first_seconds', nan):.2f}"
            f" s, table loaded {ours.get('loaded_gib', nan):.2f} GiB) | "
            f"{peer_name}: {peer.get('failed') or ours.get('failed')}"
        )
        return
    if "coef" in ours:
        diff = max(abs(a - b) for a, b in zip(ours["coef"], peer["coef"], strict=True))
        sediff = max(abs(a / b - 1) for a, b in zip(ours["se"], peer["se"], strict=True))
    else:
        diff, sediff = abs(ours["att"] - peer["att"]), abs(ours["se"] / peer["se"] - 1)
    print(
        f"{label:<34} causal {ours['seconds']:8.2f} s {ours['peak_gib']:5.2f} GiB | "
        f"{peer_name} {peer['seconds']:8.2f} s {peer['peak_gib']:5.2f} GiB | "
        f"ratio {ours['seconds'] / peer['seconds']:.3f} ({peer['seconds'] / ours['seconds']:.0f}×)"
        f" | max |Δcoef| {diff:.1e}, max SE rel. diff {sediff:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--periods", type=int, default=24)
    parser.add_argument("--peer-units", type=int, default=None)
    parser.add_argument(
        "--full-size-peers",
        default="pyfixest,csdid",
        help="peers also run at --units (comma list, '' for none; pyfixest needs ~23 GiB at 1M)",
    )
    parser.add_argument("--worker", choices=TASKS)
    parser.add_argument("--data")
    parser.add_argument("--subset", type=int, default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.subset)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "panel.parquet"
        start = time.perf_counter()
        simulate_panel(args.units, args.periods, path)
        print(
            f"simulated {args.units:,} units × {args.periods} periods in "
            f"{time.perf_counter() - start:.1f} s"
        )
        full_size = set(filter(None, args.full_size_peers.split(",")))
        sizes = [(None, args.units, full_size)]
        if args.peer_units:
            sizes.append((args.peer_units, args.peer_units, {"pyfixest", "csdid"}))
        skipped = {"failed": "not run at this size (see --full-size-peers)"}
        for subset, n, peers in sizes:
            runs = {
                task: launch(task, path, subset)
                if task.startswith("causal") or task.split("_")[0] in peers
                else skipped
                for task in TASKS
            }
            print(f"--- {n:,} units × {args.periods} periods")
            compare(
                "event study, 8 leads/lags, CR1",
                runs["causal_event_study"],
                runs["pyfixest_event_study"],
                "pyfixest",
            )
            compare("Callaway–Sant'Anna, analytic SE", runs["causal_cs"], runs["csdid_cs"], "csdid")


if __name__ == "__main__":
    main()
