"""CLV: our BG/NBD + Gamma–Gamma against lifetimes 0.11.3 on the same data, in one process.

Run: .venv/bin/python bench/bench_clv.py [--customers 1000000] [--peer-repeat 1]

1. CDNOW 1/10 sample (2,357 customers, 39-week calibration): summary of the transaction log
   (ours ``summarise_transactions`` vs ``calibration_and_holdout_data(freq="D",
   freq_multiplier=7)``), BG/NBD fit (vs ``BetaGeoFitter().fit``), Gamma–Gamma fit (vs
   ``GammaGammaFitter().fit``), 12-month CLV per customer at equal parameters (vs
   ``GammaGammaFitter.customer_lifetime_value(freq="W")``), and our mean CLV with a 1,000-draw
   interval (no peer).
2. A simulated summary of ``--customers`` customers from the BG/NBD with Gamma–Gamma spend
   (r = 0.25, α = 4.4, a = 0.8, b = 2.4; p = 6.25, q = 3.7, v = 15.4), times in whole days
   as a log gives: a 12-week acquisition cohort observed for 39 weeks, as in CDNOW.

Timings: best of 3 for ours; lifetimes best of ``--peer-repeat`` (3 on CDNOW). BLAS runs on
one thread for both. Ratio = causal / lifetimes (below 1: we are faster). The script also
prints how far the two fits' parameters and CLVs are apart.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

# BLAS single-threaded for both libraries: L-BFGS-B's tiny BLAS calls are 3-20× slower with
# threads on this 2-core machine (ours limits them itself; lifetimes does not).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from causal.designs.clv import (
    BGNBDFit,
    GammaGammaFit,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    mean_clv,
    simulate_bgnbd,
    summarise_transactions,
)

CDNOW = Path(__file__).resolve().parents[1] / "causal" / "data" / "datasets" / "cdnow_sample.csv"


def best_of(fn, repeat: int = 3):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def row(task: str, ours: float, peer: float | None) -> None:
    if peer is None:
        print(f"{task:<44}{ours:>10.3f}{'-':>12}{'-':>8}")
    else:
        print(f"{task:<44}{ours:>10.3f}{peer:>12.3f}{ours / peer:>8.3f}")


def max_rel(ours: dict[str, float], theirs: pd.Series) -> float:
    return max(abs(v / theirs[k] - 1) for k, v in ours.items())


def bench(label: str, summary, log: pd.DataFrame | None, lt, peer_repeat: int) -> None:
    print(f"\n{label}: {len(summary):,} customers, {int((summary.frequency > 0).sum()):,} repeat")
    print(f"{'task':<44}{'causal s':>10}{'lifetimes s':>12}{'ratio':>8}")
    x, t_x, T, m = summary.frequency, summary.recency, summary.T, summary.monetary_value
    rep = x > 0
    if log is not None:
        kw = {"customer": "customer_id", "date": "date", "amount": "spend"}
        ours, _ = best_of(
            lambda: summarise_transactions(
                log, **kw, calibration_end="1997-09-30", observation_end="1998-06-30"
            )
        )
        dated = log.assign(date=pd.to_datetime(log["date"]))
        peer = None
        if lt is not None:
            peer, _ = best_of(
                lambda: lt.utils.calibration_and_holdout_data(
                    dated,
                    "customer_id",
                    "date",
                    calibration_period_end="1997-09-30",
                    observation_period_end="1998-06-30",
                    freq="D",
                    freq_multiplier=7,
                    monetary_value_col="spend",
                ),
                peer_repeat,
            )
        row("summary of the transaction log", ours, peer)

    ours_bg_s, bg = best_of(lambda: fit_bgnbd(summary))
    ours_gg_s, gg = best_of(lambda: fit_gamma_gamma(summary))
    peer_bg_s = peer_gg_s = peer_clv_s = None
    if lt is not None:
        peer_bg_s, their_bg = best_of(lambda: lt.BetaGeoFitter().fit(x, t_x, T), peer_repeat)
        peer_gg_s, their_gg = best_of(
            lambda: lt.GammaGammaFitter().fit(x[rep], m[rep]), peer_repeat
        )
    row("BG/NBD fit", ours_bg_s, peer_bg_s)
    row("Gamma–Gamma fit", ours_gg_s, peer_gg_s)
    if lt is not None:
        same_bg = BGNBDFit(**their_bg.params_.to_dict(), period="W")
        same_gg = GammaGammaFit(**their_gg.params_.to_dict())
        series = [pd.Series(v) for v in (x, t_x, T, m)]
        peer_clv_s, their_clv = best_of(
            lambda: their_gg.customer_lifetime_value(
                their_bg, *series, time=12, discount_rate=0.01, freq="W"
            ),
            peer_repeat,
        )
    ours_clv_s, clv = best_of(
        lambda: customer_lifetime_value(
            same_bg if lt is not None else bg, same_gg if lt is not None else gg, summary
        )
    )
    row("12-month CLV per customer (equal params)", ours_clv_s, peer_clv_s)
    if len(summary) < 100_000:
        ours_mean_s, res = best_of(lambda: mean_clv(bg, gg, summary, n_draws=1000), 1)
        row("mean CLV, 1,000-draw interval (population)", ours_mean_s, None)
        print(f"  mean CLV {res.estimate:.2f} ({res.conf_low:.2f} to {res.conf_high:.2f})")
    print(f"  ours: {bg.summary()}")
    print(f"  ours: {gg.summary()}")
    if lt is not None:
        print(
            f"  max relative difference in parameters: BG/NBD "
            f"{max_rel(bg.params, their_bg.params_):.1e}, Gamma–Gamma "
            f"{max_rel(gg.params, their_gg.params_):.1e}; CLV at equal parameters "
            f"{np.max(np.abs(clv / their_clv.to_numpy() - 1)):.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--peer-repeat", type=int, default=1)
    args = parser.parse_args()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lifetimes as lt
            import lifetimes.utils  # noqa: F401
    except ImportError:
        lt = None
        print("lifetimes is not installed (pip install lifetimes==0.11.3): ours only")
    warnings.filterwarnings("ignore", category=FutureWarning)
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}"
    )

    log = pd.read_csv(CDNOW, dtype={"master_id": str})
    cdnow = summarise_transactions(
        log,
        customer="customer_id",
        date="date",
        amount="spend",
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
    )
    bench("CDNOW", cdnow, log, lt, max(args.peer_repeat, 3))

    n = args.customers
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    sim = simulate_bgnbd(
        n,
        r=0.25,
        alpha=4.4,
        a=0.8,
        b=2.4,
        T=(273 - rng.integers(0, 84, n)) / 7,
        spend=(6.25, 3.7, 15.4),
        seed=1,
    )
    # Recency in whole days, as a log gives: days between the first and last purchase days,
    # the first purchase at a uniform time of its day (so no bias); T is whole days already.
    day_start = rng.random(n)
    sim = type(sim)(
        customer=sim.customer,
        frequency=sim.frequency,
        recency=np.where(sim.frequency > 0, np.floor(sim.recency * 7 + day_start), 0) / 7,
        T=sim.T,
        monetary_value=sim.monetary_value,
    )
    print(f"\nsimulated {n:,} customers in {time.perf_counter() - start:.1f} s")
    bench("simulated", sim, None, lt, args.peer_repeat)


if __name__ == "__main__":
    main()
