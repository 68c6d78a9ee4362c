"""Value from saved costs and lower churn on the simulated remote-support pilot with known
truth: each part and the total inside its interval, the total equal to the sum of its parts,
and the bootstrap's point estimates equal to the A/B estimators'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from causal.pipeline import analyse
from causal.simulate import simulate
from causal.spec import load_spec
from causal.value import line

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "remote_support_costs_churn.yaml"
MARGIN, PER_DAY = 0.35, 0.8213


@pytest.fixture(scope="module")
def run():
    return analyse(load_spec(SPEC))


@pytest.fixture(scope="module")
def truth():
    return simulate("remote_support_pilot", seed=0).truth


def test_each_part_and_the_total_cover_the_truth(run, truth):
    value = run.value
    parts = {
        "cost_saved_per_unit": -truth["repair_cost"],
        "retained_margin_per_unit": PER_DAY * truth["rmst_difference_365"],
        "gross_profit_per_unit": MARGIN * truth["accessory_revenue"],
    }
    parts["total_value_per_unit"] = sum(parts.values())
    for name, true in parts.items():
        item = line(value, name)
        assert item["conf_low"] <= true <= item["conf_high"], (name, item, true)
    total = sum(line(value, n)["estimate"] for n in list(parts)[:3])
    assert line(value, "total_value_per_unit")["estimate"] == pytest.approx(total, rel=1e-9)
    assert "bootstrap over units" in value["total"]["method"]
    rmst = run.find(outcome="contract_days", estimator="rmst_difference")
    assert rmst.conf_low <= truth["rmst_difference_365"] <= rmst.conf_high


def test_bootstrap_point_estimates_equal_the_ab_estimators(run):
    from causal.data.dataset import load_dataset
    from causal.designs import abtest
    from causal.value_parts import _covariates, _effect

    spec = load_spec(SPEC)
    data = load_dataset(spec)
    y = data.table["accessory_revenue"].to_numpy(dtype=float)
    d = data.table["treated"].to_numpy()
    X = _covariates(data)
    for name in ("difference_in_means", "cuped", "lin"):
        ours = _effect(name, y, d, X)
        assert ours == pytest.approx(abtest.estimate(name, data, "accessory_revenue").estimate,
                                     rel=1e-9)  # fmt: skip
    assert np.isfinite(ours)


def test_report_shows_churn_and_the_value_parts(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "causal.cli", "run", str(SPEC), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "remote_support_costs_churn" / "index.html").read_text()
    assert "Time to event: contract_days" in html
    assert "Cost saved per unit" in html and "Margin from customers kept longer" in html
