"""The observational design end to end: specs, results.json, the CLI on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_run import cli as _cli

from causal.pipeline import analyse
from causal.results import ExperimentResults
from causal.simulate import simulate
from causal.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
WARRANTY = ROOT / "experiments" / "warranty_buyers_observational.yaml"
LALONDE = ROOT / "experiments" / "lalonde_nsw_cps.yaml"


@pytest.fixture(scope="module")
def warranty() -> ExperimentResults:
    return analyse(load_spec(WARRANTY))


@pytest.fixture(scope="module")
def warranty_truth() -> dict[str, float]:
    spec = load_spec(WARRANTY)
    return dict(simulate("warranty_buyers", seed=spec.seed).truth)


def test_warranty_naive_is_biased_and_adjusted_estimators_cover_the_truth(warranty, warranty_truth):
    truth = warranty_truth["revenue_12m_att"]
    naive = warranty.find(outcome="revenue_12m", estimator="naive_difference")
    assert abs(naive.estimate - truth) > 3 * naive.std_error
    for name in ("regression", "aipw", "linear_dml", "dr_learner"):
        r = warranty.find(outcome="revenue_12m", estimator=name)
        assert r.estimand == "ATT"
        assert r.conf_low <= truth <= r.conf_high, (name, r.estimate, r.conf_low, r.conf_high)
    profit = warranty.find(outcome="gross_profit_12m", estimator="aipw")
    assert profit.conf_low <= warranty_truth["gross_profit_12m_att"] <= profit.conf_high


def test_warranty_graph_adjusts_for_the_observed_backdoor_variables(warranty):
    check = next(c for c in warranty.checks if c.name == "identification")
    assert check.status == "pass"
    # customer_value is unobserved; last year's (log) spend, segment and tenure block its paths.
    minimal = {row["adjustment_set"] for row in check.table}
    assert minimal == {"log_pre_revenue_12m, log_tenure, segment"}
    aipw = warranty.find(outcome="revenue_12m", estimator="aipw")
    adjusted = set(aipw.details["adjustment_set"])
    # The listed proxies of customer value keep the set valid, so they are adjusted for too.
    assert adjusted == {
        "log_pre_revenue_12m",
        "log_tenure",
        "segment",
        "pre_revenue_12m",
        "pre_orders_12m",
    }


def test_warranty_report_parts_are_in_results(warranty):
    names = {c.name for c in warranty.checks}
    for name in (
        "overlap",
        "covariate_balance",
        "estimator_agreement",
        "refutation",
        "sensitivity",
        "e_value",
    ):
        assert name in names, name
    assert all(c.status != "n/a" for c in warranty.checks if c.name in names), [
        (c.name, c.detail) for c in warranty.checks if c.status == "n/a"
    ]
    forest = warranty.find(outcome="revenue_12m", estimator="causal_forest")
    assert forest.details["cate"]
    assert warranty.value is not None
    back = ExperimentResults.from_dict(json.loads(warranty.to_json()))
    assert back.headline().estimate == warranty.headline().estimate


def test_regression_equals_dowhy_backdoor_linear_regression():
    """Our plain (not interacted) regression against dowhy on the warranty data."""
    from causal.data.dataset import query_table
    from causal.designs.obs_dowhy import linear_regression_estimate
    from causal.designs.obs_estimators import regression_adjustment
    from causal.designs.obs_frame import build_frame

    spec = load_spec(WARRANTY)
    table = query_table(spec)
    columns = ("pre_revenue_12m", "pre_orders_12m", "log_tenure")
    frame = build_frame(
        table,
        unit="customer_id",
        treatment="treated",
        outcomes={"revenue_12m": "continuous"},
        columns=columns,
    )
    X, names = frame.matrix(columns)
    ours = regression_adjustment(
        frame.outcome("revenue_12m"), frame.d, X, names=names, estimand="ATE", interacted=False
    )
    theirs = linear_regression_estimate(
        frame.table, treatment="treated", outcome="revenue_12m", adjustment_set=columns
    )
    assert ours.estimate == pytest.approx(theirs, abs=1e-8, rel=1e-10)


def test_lalonde_cps_naive_and_adjusted_att():
    res = analyse(load_spec(LALONDE))
    naive = res.find(outcome="re78", estimator="naive_difference")
    assert naive.estimate == pytest.approx(-8497.52, abs=0.01)
    experimental = 1794.34
    for name in ("ipw", "aipw"):
        r = res.find(outcome="re78", estimator=name)
        assert abs(r.estimate - experimental) < 700, (name, r.estimate)
        assert r.conf_low <= experimental <= r.conf_high, (name, r.conf_low, r.conf_high)


def test_same_spec_same_numbers(tmp_path):
    """Every estimator, the causal forest included, repeats to the last digit."""
    table = _table(n=600).assign(segment=lambda t: np.where(t["x2"] > 0, "a", "b"))
    spec = load_spec(
        _write_project(
            tmp_path, table, effect_modifiers=["segment"], outcome_learner="gradient_boosting"
        )
    )
    first, second = analyse(spec), analyse(spec)
    assert "causal_forest" in {r.estimator for r in first.results}
    assert [r.to_dict() for r in first.results] == [r.to_dict() for r in second.results]
    assert first.provenance["data_fingerprint"] == second.provenance["data_fingerprint"]


# --- bad input through the CLI -------------------------------------------------------------------


def _table(seed: int = 0, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * x1 - 0.5 * x2)))).astype(int)
    y = 1.0 + 2.0 * d + x1 + 0.5 * x2 + rng.normal(size=n)
    return pd.DataFrame({"id": np.arange(n), "d": d, "y": y, "x1": x1, "x2": x2})


def _write_project(tmp_path: Path, table: pd.DataFrame, query: str | None = None, **design):
    table.to_csv(tmp_path / "units.csv", index=False)
    spec = {
        "name": "tiny_obs",
        "title": "Tiny observational study",
        "question": "Did it work?",
        "intervention": {"name": "x", "description": "x", "start_date": "2024-01-01"},
        "design": {
            "kind": "observational",
            "confounders": ["x1", "x2"],
            "refuter_simulations": 2,
            "outcome_learner": "linear",
            **design,
        },
        "unit": "id",
        "treatment": "d",
        "outcomes": [{"column": "y"}],
        "data": {
            "sources": {"units": {"path": "units.csv"}},
            "query": query or "SELECT * FROM units",
        },
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _separating(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(x2=np.where(t["d"] == 1, 1.0, 0.0) + 0.001 * t["x1"])


@pytest.mark.parametrize(
    ("mutate", "design", "query", "message"),
    [
        (None, {"graph": [["x1", "d"], ["x3", "y"], ["d", "y"]]}, None, "x3"),
        (None, {"graph": "digraph { x1 -> d; d -> y; y -> x1 }"}, None, "cycle"),
        (
            None,
            {
                "confounders": [],
                "graph": [["U", "d"], ["U", "y"], ["d", "y"]],
                "unobserved": ["U"],
            },
            None,
            "not identifiable",
        ),
        (None, {}, "SELECT * FROM units WHERE d = 1", "only the value 1"),
        (_separating, {}, None, "x2"),
        (None, {"outcome_learner": "xgboost"}, None, "known: linear"),
    ],
    ids=["unknown-node", "cycle", "unidentifiable", "constant-treatment", "separation", "learner"],
)
def test_bad_input_exit_2_with_a_clear_message(tmp_path, mutate, design, query, message):
    table = _table()
    if mutate is not None:
        table = mutate(table)
    spec = _write_project(tmp_path, table, query=query, **design)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "tiny_obs").exists()


def test_no_overlap_is_a_clear_error(tmp_path):
    table = _table()
    table["x1"] = np.where(table["d"] == 1, 5.0 + np.abs(table["x1"]), -5.0 - np.abs(table["x1"]))
    spec = _write_project(tmp_path, table)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "do not overlap" in proc.stderr, proc.stderr


def test_validate_observational_spec():
    proc = _cli("validate", str(LALONDE), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "16177 units, 185 treated" in proc.stdout, proc.stdout


def test_e_value_of_a_binary_att_uses_the_treated_risk(warranty):
    """RR among buyers = observed buyers' repurchase rate / (that rate − ATT)."""
    from causal.data.dataset import query_table

    table = query_table(load_spec(WARRANTY))
    r1 = table.loc[table["treated"] == 1, "repurchase_12m"].mean()
    aipw = warranty.find(outcome="repurchase_12m", estimator="aipw")
    row = next(
        r
        for r in next(c for c in warranty.checks if c.name == "e_value").table
        if r["outcome"] == "repurchase_12m"
    )
    rr = r1 / (r1 - aipw.estimate)
    assert row["risk_ratio"] == pytest.approx(rr, rel=1e-12)
    far = max(rr, 1 / rr)  # the E-value of RR < 1 is that of 1 / RR
    assert row["e_value"] == pytest.approx(far + np.sqrt(far * (far - 1)), rel=1e-12)
