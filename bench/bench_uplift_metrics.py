"""Uplift metrics: our Qini / uplift AUC against scikit-uplift on the same arrays, and our
vectorised bootstrap.

Run: .venv/bin/python bench/bench_uplift_metrics.py [--units 1000000] [--boot-units 100000]

Data: randomised treatment (p = 0.5), binary outcome with base rate 0.3 and an effect of +0.1
where a latent x > 0; score = x + noise (continuous, no ties).

- Qini: ours ``qini_curve`` + ``qini_coefficient`` (what a report needs: the curve to plot and
  the number) vs sklift's ``qini_auc_score`` alone (negative_effect=True).
- Uplift AUC: ours ``uplift_auc`` vs sklift's ``uplift_auc_score``.
- Bootstrap: ours ``bootstrap_metrics`` (500 stratified replicates, both metrics) on
  ``--boot-units`` units; sklift has no bootstrap.

Timings are the median of 3 in this process after one untimed warm-up run; ratio = ours /
sklift (below 1: we are faster). The load average is printed: on a shared machine it matters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np


def median_of(task, repeat: int = 3) -> tuple[float, object]:
    task()  # warm-up, untimed: first-touch page faults of the large arrays
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = task()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def simulate(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    x = rng.normal(size=n)
    y = (rng.random(n) < 0.3 + 0.1 * t * (x > 0)).astype(int)
    return y, x + rng.normal(size=n), t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--boot-units", type=int, default=100_000)
    parser.add_argument("--replications", type=int, default=500)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Function stable_cumsum is deprecated")
    from sklift.metrics import qini_auc_score, uplift_auc_score

    from causal.designs.uplift_metrics import (
        bootstrap_metrics,
        qini_coefficient,
        qini_curve,
        uplift_auc,
    )

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average before the run: {load} ({os.cpu_count()} cores)\n")
    y, s, t = simulate(args.units)
    ours_q_t, ours_q = median_of(lambda: (qini_curve(y, s, t), qini_coefficient(y, s, t))[1])
    peer_q_t, peer_q = median_of(lambda: qini_auc_score(y, s, t))
    ours_u_t, ours_u = median_of(lambda: uplift_auc(y, s, t))
    peer_u_t, peer_u = median_of(lambda: uplift_auc_score(y, s, t))
    print("| task | units | ours (s) | sklift (s) | ours / sklift | |difference| |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [
        ("qini_curve + qini_coefficient vs qini_auc_score", ours_q_t, peer_q_t, ours_q, peer_q),
        ("uplift_auc vs uplift_auc_score", ours_u_t, peer_u_t, ours_u, peer_u),
    ]
    for name, ours_t, peer_t, ours, peer in rows:
        print(
            f"| {name} | {args.units:,} | {ours_t:.3f} | {peer_t:.3f} | {ours_t / peer_t:.2f} | "
            f"{abs(ours - peer):.1e} |",
            flush=True,
        )

    y, s, t = simulate(args.boot_units, seed=1)
    boot_t, out = median_of(
        lambda: bootstrap_metrics(y, s, t, replications=args.replications, seed=0)
    )
    print(
        f"\n| bootstrap_metrics ({args.replications} replicates, qini + auuc) | "
        f"{args.boot_units:,} units | {boot_t:.2f} s |"
    )
    for key in ("qini", "auuc"):
        r = out[key]
        print(
            f"  {key}: {r['estimate']:.4f} (SE {r['std_error']:.4f}, "
            f"95% CI {r['conf_low']:.4f} to {r['conf_high']:.4f})"
        )


if __name__ == "__main__":
    main()
