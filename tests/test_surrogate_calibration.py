"""Calibration of the surrogate index on the long-term warranty simulator: over many simulated
pilots the 95% interval covers the true 12-month effect about 95% of the time.

Slow (``make test-slow``): 200 pilots of 4,000 customers with 8,000 historical customers and
200 bootstrap replications each.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from causal.designs.surrogate import surrogate_index
from causal.simulate_long_term import SURROGATES, extended_warranty_long_term

COVARIATES = ["segment", "tenure_months", "prior_year_revenue", "region"]


@pytest.mark.slow
def test_surrogate_index_coverage_over_simulated_pilots():
    reps, n_pilot, n_historical = 200, 4_000, 8_000
    start = time.perf_counter()
    hits, z, validation = 0, [], []
    for seed in range(reps):
        p = extended_warranty_long_term(n_pilot=n_pilot, n_historical=n_historical, seed=seed)
        experiment = p.tables["pilot_customers"].merge(p.tables["pilot_signals"])
        res = surrogate_index(
            p.tables["historical"],
            experiment,
            surrogates=list(SURROGATES),
            long_outcome="revenue_12m",
            covariates=COVARIATES,
            bootstrap_replications=200,
            seed=seed,
        )
        lt, truth = res.long_term, p.truth["revenue_12m"]
        hits += lt.conf_low <= truth <= lt.conf_high
        z.append((lt.estimate - truth) / lt.std_error)
        validation.append(res.validation.check.status == "pass")
    coverage = hits / reps
    print(
        f"surrogate index: coverage {coverage:.3f} over {reps} pilots of {n_pilot:,} "
        f"(historical {n_historical:,}); mean z {np.mean(z):+.3f}, sd z {np.std(z):.3f}; "
        f"validation passes {np.mean(validation):.3f}; {time.perf_counter() - start:.0f} s"
    )
    assert 0.92 <= coverage <= 0.98
    assert abs(np.mean(z)) < 0.25  # no visible bias
    assert np.mean(validation) >= 0.9  # surrogacy holds: the check rarely warns
