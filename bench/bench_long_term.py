"""Long-term value: joint horizon effects against statsmodels' stacked cluster-robust
regression (the same covariance), and the surrogate index at two sizes (no peer library).

Run: .venv/bin/python bench/bench_long_term.py [--units 100000] [--large 1000000]

- Horizons: difference in means at 4 horizons (half the units followed to the last one) with
  the joint covariance. Ours: ``horizon_effects`` (its sup-t band included); statsmodels: OLS of
  the stacked outcome on horizon × arm dummies with covariance clustered by unit, the same
  numbers (checked here). ``--large`` times ours alone at 12 horizons.
- Surrogate index: ``surrogate_index`` with the linear index, 200 bootstrap replications over
  both samples and leave-one-experiment-out validation, on the simulator at its default size
  (20,000 pilot / 40,000 historical customers) and at 10 times that.

Timings are the median of 3 after one untimed warm-up run; ratio = ours / statsmodels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd


def median_of(task, repeat: int = 3) -> tuple[float, object]:
    task()
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = task()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def panel(n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 2, n)
    y = (rng.gamma(2.0, 5.0, (n, k)) + d[:, None]).cumsum(axis=1)
    followup = np.where(rng.random(n) < 0.5, k - 1.0, float(k))
    y[followup < k, k - 1] = np.nan
    return y, d, followup


def bench_horizons(n: int) -> None:
    import statsmodels.formula.api as smf

    from causal.designs.horizons import horizon_effects

    y, d, f = panel(n, 4)
    ours_t, ours = median_of(lambda: horizon_effects(y, d, horizons=[1, 2, 3, 4], followup=f))
    keep = ~np.isnan(y)
    unit = np.repeat(np.arange(n), 4)[keep.ravel()]
    stacked = pd.DataFrame(
        {
            "y": y.ravel()[keep.ravel()],
            "h": np.tile(["h1", "h2", "h3", "h4"], n)[keep.ravel()],
            "d": np.repeat(d, 4)[keep.ravel()],
            "unit": unit,
        }
    )

    def peer():
        return smf.ols("y ~ 0 + C(h) + C(h):d", stacked).fit(
            cov_type="cluster", cov_kwds={"groups": stacked["unit"], "use_correction": False}
        )

    peer_t, fit = median_of(peer, repeat=1)
    names = [f"C(h)[h{j}]:d" for j in range(1, 5)]
    gap = float(np.max(np.abs(fit.params[names].to_numpy() - ours.estimate)))
    print(
        f"horizons, {n:,} units x 4: ours {ours_t:.3f} s, statsmodels {peer_t:.3f} s, "
        f"ratio {ours_t / peer_t:.3f}; estimates agree to {gap:.1e}"
    )


def bench_horizons_large(n: int) -> None:
    from causal.designs.horizons import horizon_effects

    y, d, f = panel(n, 12)
    t, _ = median_of(lambda: horizon_effects(y, d, horizons=list(range(1, 13)), followup=f))
    print(f"horizons, {n:,} units x 12: ours {t:.2f} s")


def bench_surrogate(scale: int) -> None:
    from causal.designs.surrogate import surrogate_index
    from causal.simulate_long_term import SURROGATES, extended_warranty_long_term

    sim = extended_warranty_long_term(n_pilot=20_000 * scale, n_historical=40_000 * scale)
    exp = sim.tables["pilot_customers"].merge(sim.tables["pilot_signals"], on="customer_id")
    hist = sim.tables["historical"]
    covariates = ["prior_year_revenue", "tenure_months", "segment"]

    def run():
        return surrogate_index(
            hist, exp, surrogates=list(SURROGATES), long_outcome="revenue_12m",
            covariates=covariates, bootstrap_replications=200,
        )  # fmt: skip

    t, res = median_of(run, repeat=1 if scale > 1 else 3)
    print(
        f"surrogate index, {len(exp):,} pilot / {len(hist):,} historical, 200 replications: "
        f"{t:.2f} s (estimate {res.long_term.estimate:.2f}, SE {res.long_term.std_error:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    bench_horizons(args.units)
    bench_horizons_large(args.large)
    bench_surrogate(1)
    bench_surrogate(10)


if __name__ == "__main__":
    main()
