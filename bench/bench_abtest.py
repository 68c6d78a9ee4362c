"""A/B estimators against statsmodels on the same data, in one process; prints time ratios.

Run: .venv/bin/python bench/bench_abtest.py [n_units]   (default 1,000,000)
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.weightstats import CompareMeans

from causal.data.dataset import validate_table
from causal.designs import abtest


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(n: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    d = rng.integers(0, 2, n)
    y = x @ [1.0, 0.5, -0.3] + 0.2 * d + rng.normal(size=n)
    table = pd.DataFrame(
        {"id": np.arange(n), "d": d, "y": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]}
    )
    t_validate, ds = best_of(
        lambda: validate_table(
            table,
            unit="id",
            treatment="d",
            outcomes={"y": "continuous"},
            covariates=("x1", "x2", "x3"),
        )
    )
    print(f"n = {n:,} units, 3 covariates; best of 3 runs; validate_table {t_validate:.3f} s")
    print(f"{'task':<32}{'causal s':>10}{'statsmodels s':>15}{'ratio':>8}")

    ours, r = best_of(lambda: abtest.difference_in_means(ds, "y"))
    peer, _ = best_of(
        lambda: CompareMeans.from_data(y[d == 1], y[d == 0]).ttest_ind(usevar="unequal")
    )
    print(f"{'difference in means (Welch)':<32}{ours:>10.3f}{peer:>15.3f}{ours / peer:>8.2f}")

    frame = table.assign(**{f"x{i}c": table[f"x{i}"] - table[f"x{i}"].mean() for i in (1, 2, 3)})
    ours, r = best_of(lambda: abtest.lin(ds, "y"))
    peer, fit = best_of(lambda: smf.ols("y ~ d * (x1c + x2c + x3c)", frame).fit(cov_type="HC2"))
    assert abs(r.estimate - fit.params["d"]) < 1e-9 and abs(r.std_error - fit.bse["d"]) < 1e-9
    print(f"{'Lin regression adjustment, HC2':<32}{ours:>10.3f}{peer:>15.3f}{ours / peer:>8.2f}")

    ours, _ = best_of(lambda: abtest.cuped(ds, "y"))
    print(f"{'CUPED (no direct peer)':<32}{ours:>10.3f}{'-':>15}{'-':>8}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
