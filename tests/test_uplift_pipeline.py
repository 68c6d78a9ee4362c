"""The uplift design end to end: truth from the simulator, the scored file, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_run import cli as _cli

from causal.designs.uplift_metrics import qini_coefficient
from causal.designs.uplift_run import SCORES_FILE, prepare, run_uplift, split_customers
from causal.pipeline import analyse
from causal.results import ExperimentResults, _json_safe
from causal.simulate import simulate
from causal.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[1]
TARGETING = ROOT / "experiments" / "remote_support_targeting.yaml"


@pytest.fixture(scope="module")
def targeting() -> tuple[Spec, ExperimentResults, pd.DataFrame]:
    spec = load_spec(TARGETING)
    results = analyse(spec)
    truth = simulate("remote_support_targeting", seed=spec.seed).unit_truth
    return spec, results, truth


def _evaluated(spec: Spec, results: ExperimentResults, truth: pd.DataFrame) -> pd.DataFrame:
    """The evaluation customers with their outcome, arm, scores and true uplift."""
    from causal.data.dataset import query_table

    data = prepare(spec, query_table(spec))
    ((_, test),) = split_customers(data.d, spec)
    scores = results.artifacts[SCORES_FILE].set_index(spec.unit)
    ids = data.table[spec.unit].to_numpy()[test]
    return pd.DataFrame(
        {
            "y": data.y[test],
            "d": data.d[test],
            "score": scores.loc[ids, "predicted_uplift"].to_numpy(),
            "treat": scores.loc[ids, "treat"].to_numpy(),
            "out_of_sample": scores.loc[ids, "scored_out_of_sample"].to_numpy(),
            "tau": truth.set_index("customer_id").loc[ids, "true_uplift_purchased_90d"].to_numpy(),
        }
    )


def test_best_learner_reaches_70_percent_of_the_oracle_qini(targeting):
    spec, results, truth = targeting
    ev = _evaluated(spec, results, truth)
    assert ev["out_of_sample"].all()
    oracle = qini_coefficient(ev["y"].to_numpy(), ev["tau"].to_numpy(), ev["d"].to_numpy())
    best = max(results.results, key=lambda r: r.estimate)
    assert oracle > 0.05  # normalised by the perfect curve (sorted by outcomes): small numbers
    assert best.estimate >= 0.7 * oracle, (best.estimator, best.estimate, oracle)
    # The policy learner's Qini is recomputed from the scored file: the same number.
    policy = results.headline()
    mine = qini_coefficient(ev["y"].to_numpy(), ev["score"].to_numpy(), ev["d"].to_numpy())
    assert policy.estimate == pytest.approx(mine, rel=1e-12)


def test_policy_profit_interval_covers_the_true_profit_and_beats_treat_all(targeting):
    spec, results, truth = targeting
    ev = _evaluated(spec, results, truth)
    money = spec.design.money
    net = money.value_per_unit * ev["tau"] - money.cost_per_contact
    policy = results.headline().details["policy"]
    per = policy["per_customer"]
    true_policy = float((ev["treat"] * net).mean())
    assert per["policy"]["conf_low"] <= true_policy <= per["policy"]["conf_high"]
    true_all = float(net.mean())
    assert per["treat_all"]["conf_low"] <= true_all <= per["treat_all"]["conf_high"]
    assert true_all < 0 < true_policy  # the do-not-disturbs make treating everyone a loss
    assert per["policy_vs_treat_all"]["conf_low"] > 0
    assert policy["n_targeted"] == int(ev["treat"].sum())


def test_results_carry_curves_bins_value_and_checks(targeting):
    spec, results, _ = targeting
    assert {r.estimator for r in results.results} == set(spec.design.learners)
    for r in results.results:
        assert r.estimand == "Qini coefficient" and r.conf_low <= r.estimate <= r.conf_high
        assert len(r.details["bins"]) == spec.design.bins
        assert r.details["qini_curve"]["x"][0] == 0
        assert r.details["auuc"]["conf_low"] <= r.details["auuc"]["estimate"]
    value = results.value
    names = [line["name"] for line in value["lines"]]
    assert names[:3] == ["gross_profit", "cost", "net_value"]
    policy = results.headline().details["policy"]
    assert policy["profile"] and "sentence" in policy["profile"][0]
    curve = policy["profit_curve"]
    assert curve["share"][0] == 0 and curve["share"][-1] == 1 and curve["estimate"][0] == 0
    assert {c.name for c in results.checks} >= {"sample_ratio", "learner_comparison"}
    assert results.experiment["artifacts"] == [SCORES_FILE]


def _small_spec(tmp_path: Path, **design) -> Path:
    raw = yaml.safe_load(TARGETING.read_text())
    for source in raw["data"]["sources"].values():
        source["params"] = {"n_customers": 3000}
    raw["design"] |= {"learners": ["t_learner", "dr_learner"], "base_learner": "linear"}
    raw["design"] |= {"bootstrap_replications": 100} | design
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_same_spec_same_numbers_and_cross_fit_scores_everyone(tmp_path):
    spec = load_spec(_small_spec(tmp_path))
    first, second = run_uplift(spec), run_uplift(spec)

    def numbers(run):  # fit times aside
        rows = [r.to_dict() | {"details": {**r.details, "fit_seconds": 0}} for r in run["results"]]
        return json.dumps(_json_safe(rows), sort_keys=True)

    assert numbers(first) == numbers(second)
    pd.testing.assert_frame_equal(first["artifacts"][SCORES_FILE], second["artifacts"][SCORES_FILE])
    spec = load_spec(_small_spec(tmp_path, evaluation="cross_fit"))
    run = run_uplift(spec)
    scored = run["artifacts"][SCORES_FILE]
    assert scored["scored_out_of_sample"].all() and len(scored) == 3000
    assert all(r.n_units == 3000 for r in run["results"])


def test_budget_caps_the_targeted_share(tmp_path):
    spec = load_spec(_small_spec(tmp_path, budget_share=0.1))
    run = run_uplift(spec)
    scored = run["artifacts"][SCORES_FILE]
    assert scored["treat"].sum() <= 300
    policy = next(r for r in run["results"] if r.estimator == "dr_learner").details["policy"]
    assert policy["share_targeted"] <= 0.1 + 1e-12 and "10%" in policy["rule"]


def test_observational_data_estimate_the_propensity(tmp_path):
    spec = load_spec(_small_spec(tmp_path, planned_treated_share=None))
    run = run_uplift(spec)
    check = next(c for c in run["checks"] if c.name == "propensity")
    assert "inverse-propensity weights" in check.detail


def test_run_writes_the_scored_file_for_the_crm(tmp_path):
    spec = _small_spec(tmp_path)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), "--no-report", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_parquet(tmp_path / "out" / "remote_support_targeting" / SCORES_FILE)
    assert len(scored) == 3000 and scored["customer_id"].is_unique
    assert list(scored.columns[:4]) == ["customer_id", "predicted_uplift", "rank", "treat"]
    assert (np.diff(scored["predicted_uplift"]) <= 0).all()


def _tiny_project(tmp_path: Path, table: pd.DataFrame, **design) -> Path:
    table.to_csv(tmp_path / "customers.csv", index=False)
    spec = {
        "name": "tiny_uplift",
        "title": "Tiny uplift",
        "question": "Who should get the call?",
        "intervention": {"name": "call", "start_date": "2025-01-01"},
        "design": {
            "kind": "uplift",
            "features": ["x1", "x2"],
            "learners": ["t_learner"],
            "policy_learner": "t_learner",
            "base_learner": "linear",
            "bootstrap_replications": 50,
            "money": {"value_per_unit": 10.0, "cost_per_contact": 1.0},
        }
        | design,
        "unit": "id",
        "treatment": "d",
        "outcomes": [{"column": "y", "kind": "continuous"}],
        "data": {"sources": {"customers": {"path": "customers.csv"}}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _table(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    d = (rng.random(n) < 0.5).astype(int)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "d": d,
            "x1": x1,
            "x2": x2,
            "y": x1 + d * (x2 > 0) + rng.normal(size=n),
        }
    )


def _one_treated(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(d=np.r_[1, np.zeros(len(t) - 1, dtype=int)])


def _text_feature(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(x2=np.where(t["x2"] > 0, "high", "low"))


@pytest.mark.parametrize(
    ("mutate", "design", "message"),
    [
        (None, {"budget_share": 1.5}, "budget_share: expected a share"),
        (None, {"budget_share": -0.2}, "budget_share: expected a share"),
        (None, {"features": ["x1", "x9"]}, "'x9' is not in the analysis table"),
        (_text_feature, {}, "list it under design.categorical"),
        (_one_treated, {}, "has no treated customers"),
        (None, {"money": {"value_per_unit": 10.0}}, "money.cost_per_contact: required field"),
        (None, {"money": {"cost_per_contact": 1.0}}, "money.value_per_unit: required field"),
        (None, {"learners": ["t_learner", "r_learner"]}, "unknown uplift learner 'r_learner'"),
    ],
    ids=[
        "budget-above-1",
        "budget-negative",
        "missing-feature",
        "text-feature",
        "arm-absent-from-holdout",
        "no-cost",
        "no-value",
        "unknown-learner",
    ],
)
def test_bad_input_exit_2_with_a_clear_message(tmp_path, mutate, design, message):
    table = _table()
    if mutate is not None:
        table = mutate(table)
    spec = _tiny_project(tmp_path, table, **design)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "tiny_uplift").exists()


def test_text_feature_listed_as_categorical_runs(tmp_path):
    spec = load_spec(_tiny_project(tmp_path, _text_feature(_table()), categorical=["x2"]))
    run = run_uplift(spec)
    assert run["results"][0].details["bins"]


def test_validate_uplift_spec():
    proc = _cli("validate", str(TARGETING), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "20000 customers" in proc.stdout and "6000 customers scored" in proc.stdout


@pytest.mark.slow
def test_null_qini_interval_covers_zero_in_at_least_90_of_100_pilots(tmp_path):
    """No effect at all: the held-out Qini interval should cover 0 about 95% of the time."""
    raw = yaml.safe_load(TARGETING.read_text())
    raw["design"] |= {
        "learners": ["t_learner"],
        "policy_learner": "t_learner",
        "base_learner": "linear",
        "bootstrap_replications": 300,
    }
    covered = 0
    for seed in range(100):
        for source in raw["data"]["sources"].values():
            source["params"] = {"n_customers": 4000, "effect_scale": 0.0}
        raw["seed"] = seed
        path = tmp_path / f"null_{seed}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        qini = run_uplift(load_spec(path))["results"][0]
        covered += qini.conf_low <= 0 <= qini.conf_high
    assert covered >= 90, covered
