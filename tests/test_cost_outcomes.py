"""Cost outcomes: a decrease is value. Revenue gained and cost saved are shown separately and
together; the total's interval carries their covariance; a cost declared to go up is refused
when the spec is validated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from causal.errors import SpecError
from causal.inference import welch_difference
from causal.pipeline import analyse
from causal.spec import load_spec
from causal.value import line

MARGIN = 0.3


def _project(tmp_path: Path, *, seed: int = 0, n: int = 4000, direction: str | None = None):
    """Remote support: +6 EUR revenue and -8 EUR repair cost per customer; revenue and cost
    are positively correlated through customer activity."""
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 2, n)
    activity = rng.gamma(2.0, 1.0, n)
    revenue = 40 * activity + rng.normal(0, 20, n) + 6.0 * d
    repair = 30 * activity + rng.normal(0, 15, n) - 8.0 * d
    pd.DataFrame({"id": range(n), "d": d, "revenue": revenue, "repair_cost": repair}).to_csv(
        tmp_path / "pilot.csv", index=False
    )
    cost = {"column": "repair_cost", "kind": "cost"}
    if direction:
        cost["direction"] = direction
    spec = {
        "name": "support_costs",
        "title": "Remote support",
        "question": "Revenue gained and repair cost saved?",
        "intervention": {"name": "x", "start_date": "2025-01-01", "cost_per_treated_unit": 1.0},
        "design": {"kind": "ab_test"},
        "unit": "id",
        "treatment": "d",
        "outcomes": [{"column": "revenue"}, cost],
        "data": {"sources": {"pilot": {"path": "pilot.csv"}}},
        "estimators": ["difference_in_means"],
        "value": {"outcome": "revenue", "gross_margin": MARGIN, "cost_outcome": "repair_cost"},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_revenue_gained_and_cost_saved_apart_and_together(tmp_path):
    res = analyse(load_spec(_project(tmp_path)))
    value = res.value
    gross = line(value, "gross_profit_per_unit")
    saved = line(value, "cost_saved_per_unit")
    both = line(value, "total_value_per_unit")
    assert both["estimate"] == pytest.approx(gross["estimate"] + saved["estimate"], rel=1e-12)
    table = pd.read_csv(tmp_path / "pilot.csv")
    direct = welch_difference(
        (MARGIN * table["revenue"] - table["repair_cost"]).to_numpy(), table["d"].to_numpy()
    )
    assert both["std_error"] == pytest.approx(direct.std_error, rel=1e-12)
    # the covariance matters: revenue and cost move together, so the total is tighter than
    # the two errors added as if independent
    assert both["std_error"] < np.hypot(gross["std_error"], saved["std_error"])
    net = line(value, "net_value")
    n = value["population"]
    assert net["estimate"] == pytest.approx(n * both["estimate"] - n * 1.0, rel=1e-12)
    assert "all parts" in net["label"]


def test_true_saving_and_total_inside_their_intervals_over_seeds(tmp_path):
    covered = {"cost_saved_per_unit": 0, "total_value_per_unit": 0}
    truth = {"cost_saved_per_unit": 8.0, "total_value_per_unit": MARGIN * 6.0 + 8.0}
    reps = 40
    for seed in range(reps):
        folder = tmp_path / str(seed)
        folder.mkdir()
        value = analyse(load_spec(_project(folder, seed=seed, n=1000))).value
        for name in covered:
            item = line(value, name)
            covered[name] += item["conf_low"] <= truth[name] <= item["conf_high"]
    assert all(count >= 0.85 * reps for count in covered.values()), covered


def test_a_cost_declared_to_go_up_is_refused_at_validation(tmp_path):
    with pytest.raises(SpecError, match="contradicts kind 'cost'"):
        load_spec(_project(tmp_path, direction="increase"))
    proc = subprocess.run(
        [sys.executable, "-m", "causal.cli", "validate", str(tmp_path / "spec.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "contradicts kind 'cost'" in proc.stderr
