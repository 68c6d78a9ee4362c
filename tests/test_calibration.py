"""Calibration on the bundled service simulator: intervals cover the known truth.

The default suite checks one simulated pilot end to end (tests/test_cli.py); this file repeats
the pilot over many seeds and is marked ``slow`` (``make test-slow``).
"""

from __future__ import annotations

import numpy as np
import pytest

from causal.data.dataset import load_dataset
from causal.pipeline import analyse
from causal.simulate import simulate
from causal.spec import load_spec
from causal.value import line

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "extended_warranty_pilot.yaml"


def pilot_spec(seed: int, n: int):
    spec = load_spec(SPEC)
    sources = {
        name: src.model_copy(update={"params": {"n_customers": n}})
        for name, src in spec.data.sources.items()
    }
    data = spec.data.model_copy(update={"sources": sources})
    new = spec.model_copy(update={"seed": seed, "data": data})
    new._path = spec.path
    return new


@pytest.mark.slow
def test_warranty_pilot_coverage_over_seeds():
    reps, n = 150, 8000
    hits = {"difference_in_means": 0, "lin": 0, "cuped": 0, "net_value": 0}
    widths = {"difference_in_means": [], "lin": []}
    for seed in range(reps):
        spec = pilot_spec(seed, n)
        truth = simulate("extended_warranty_pilot", seed=seed, n_customers=n).truth
        res = analyse(spec, load_dataset(spec))
        for name in ("difference_in_means", "lin", "cuped"):
            r = res.find(outcome="revenue_12m", estimator=name)
            hits[name] += r.conf_low <= truth["revenue_12m"] <= r.conf_high
            if name in widths:
                widths[name].append(r.conf_high - r.conf_low)
        v = res.value
        true_net = v["population"] * truth["gross_profit_12m"] - line(v, "cost")["estimate"]
        net = line(v, "net_value")
        hits["net_value"] += net["conf_low"] <= true_net <= net["conf_high"]
    print(f"coverage over {reps} pilots of {n:,}:",
          {name: round(k / reps, 3) for name, k in hits.items()},
          "mean CI width:", {name: round(float(np.mean(w)), 2) for name, w in widths.items()})
    for name, k in hits.items():
        assert 0.91 <= k / reps <= 0.99, (name, k / reps)
    assert np.mean(widths["lin"]) < 0.85 * np.mean(widths["difference_in_means"])
