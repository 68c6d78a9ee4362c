"""The DiD design end to end: specs, results.json, the report, the CLI on bad input."""

from __future__ import annotations

import contextlib
import io
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
MPDTA = ROOT / "experiments" / "mpdta_minimum_wage.yaml"
ROLLOUT = ROOT / "experiments" / "remote_support_rollout.yaml"


@pytest.fixture(scope="module")
def rollout() -> ExperimentResults:
    return analyse(load_spec(ROLLOUT))


def test_mpdta_spec_replicates_r_did():
    res = analyse(load_spec(MPDTA))
    cs = res.headline()
    assert res.primary["estimator"] == "callaway_santanna"
    assert cs.estimate == pytest.approx(-0.03995, abs=1e-4)  # R did 2.5.0
    assert cs.std_error == pytest.approx(0.01203, abs=1e-4)
    assert cs.details["dynamic"]["estimate"] == pytest.approx(-0.07724, abs=1e-4)
    assert cs.details["group"]["estimate"] == pytest.approx(-0.03102, abs=1e-4)
    assert cs.details["calendar"]["estimate"] == pytest.approx(-0.04170, abs=1e-4)
    years = {row["time"] for row in cs.details["att_gt"]}
    assert years == {2004, 2005, 2006, 2007}  # periods mapped back to years
    back = ExperimentResults.from_dict(json.loads(res.to_json()))
    assert back.headline().estimate == cs.estimate


def test_rollout_event_path_covers_the_true_ramp(rollout):
    truth = simulate("remote_support_rollout", seed=2025).truth
    cs = rollout.find(outcome="revenue", estimator="callaway_santanna")
    rows = cs.details["dynamic"]["table"]
    assert len(rows) == 41 and cs.details["dynamic"]["critical_value"] > 1.96
    for row in rows:
        true = truth.get(f"revenue_e{row['level']}", 0.0)  # no effect before treatment
        assert row["band_low"] <= true <= row["band_high"], row
    assert cs.conf_low <= truth["revenue"] <= cs.conf_high
    ramp = {r["level"]: r["estimate"] for r in rows}
    assert max(ramp[0], ramp[1], ramp[2]) < ramp[9] / 2  # small for three months, then growing


def test_rollout_cumulative_effect_band_covers_the_true_running_total(rollout):
    truth = simulate("remote_support_rollout", seed=2025).truth
    cs = rollout.find(outcome="revenue", estimator="callaway_santanna")
    dynamic = {r["level"]: r for r in cs.details["dynamic"]["table"]}
    cumulative = cs.details["cumulative"]
    assert [r["event_time"] for r in cumulative] == sorted(e for e in dynamic if e >= 0)
    first = cumulative[0]  # one term: the event-time effect itself, same SE
    assert first["estimate"] == pytest.approx(dynamic[0]["estimate"], rel=1e-12)
    assert first["std_error"] == pytest.approx(dynamic[0]["std_error"], rel=1e-10)
    running = 0.0
    for row in cumulative:
        running += truth[f"revenue_e{row['event_time']}"]
        assert row["band_low"] <= running <= row["band_high"], row
        assert row["conf_low"] >= row["band_low"]
    # the running total's SE grows: later sums add more (positively correlated) terms
    assert cumulative[-1]["std_error"] > 3 * cumulative[0]["std_error"]


def test_cumulative_standard_errors_equal_a_direct_influence_function_sum():
    from causal.designs.did_cs import group_time_effects
    from causal.designs.did_cs_aggregate import aggregate
    from causal.designs.did_cs_run import cumulative_effects

    data = pd.read_csv(ROOT / "causal" / "data" / "datasets" / "mpdta.csv")
    fx = group_time_effects(
        data, unit="countyreal", time="year", cohort="first.treat", outcome="lemp"
    )
    dyn = aggregate(fx, "dynamic")
    rows = cumulative_effects(dyn)
    post = dyn.table["level"].to_numpy() >= 0
    inf = dyn.level_influence[:, post]
    for k, row in enumerate(rows):  # sum of the first k+1 post-period influence columns
        direct = np.sqrt(np.sum(inf[:, : k + 1].sum(axis=1) ** 2)) / fx.n_units
        assert row["std_error"] == pytest.approx(direct, rel=1e-12)
        total = dyn.table["estimate"].to_numpy()[post][: k + 1].sum()
        assert row["estimate"] == pytest.approx(total, rel=1e-12)


def test_rollout_report_shows_twfe_bias(rollout):
    truth = simulate("remote_support_rollout", seed=2025).truth["revenue"]
    twfe = rollout.find(outcome="revenue", estimator="twfe")
    assert twfe.conf_high < truth  # TWFE misses the truth by far
    check = next(c for c in rollout.checks if c.name == "twfe_vs_callaway_santanna")
    assert check.status == "warn" and "negative weight" in check.detail
    weights = pd.DataFrame(twfe.details["cell_weights"])
    assert weights["weight"].sum() == pytest.approx(1.0)
    value = rollout.value
    assert value["population"] == 6322 and value["estimator"] == "callaway_santanna"


def test_same_spec_same_numbers(rollout):
    again = analyse(load_spec(ROLLOUT))
    assert again.to_dict()["results"] == rollout.to_dict()["results"]
    assert again.provenance["data_fingerprint"] == rollout.provenance["data_fingerprint"]


def _write_project(tmp_path: Path, table: pd.DataFrame, **design) -> Path:
    table.to_csv(tmp_path / "panel.csv", index=False)
    spec = {
        "name": "tiny_rollout",
        "title": "Tiny roll-out",
        "question": "Did it work?",
        "intervention": {"name": "x", "description": "x", "start_date": "2024-01-01"},
        "design": {"kind": "did", "time": "t", "event_window": [-2, 2], **design},
        "unit": "unit",
        "outcomes": [{"column": "y"}],
        "data": {"sources": {"panel": {"path": "panel.csv"}}, "query": "SELECT * FROM panel"},
    }
    if "first_treated" not in design:
        spec["treatment"] = "d"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _tiny_panel(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    units, periods = np.arange(60), np.arange(1, 9)
    table = pd.DataFrame({"unit": np.repeat(units, 8), "t": np.tile(periods, 60)})
    table["g"] = np.repeat(np.where(units < 20, 0, np.where(units < 40, 4, 6)), 8)
    table["d"] = ((table["g"] > 0) & (table["t"] >= table["g"])).astype(int)
    table["y"] = rng.normal(size=len(table)) + table["d"]
    return table


@pytest.mark.parametrize(
    ("mutate", "design", "message"),
    [
        (
            lambda t: t.assign(d=np.where((t["unit"] == 25) & (t["t"] == 7), 0, t["d"])),
            {},
            "switches off again for 1 unit(s) (unit: 25)",
        ),
        (lambda t: pd.concat([t, t.head(1)]), {}, "repeat a (unit, t) pair"),
        (lambda t: t[t["g"] > 0], {"first_treated": "g"}, "no never-treated units"),
        (
            lambda t: t,
            {"first_treated": "g", "event_window": [-2, 9]},
            "event window [-2, 9] is longer than the data allow",
        ),
        (lambda t: t.assign(t=t["t"].map(lambda v: f"m{v}")), {}, "cannot be ordered"),
    ],
    ids=["switch-off", "duplicates", "no-controls", "window", "time-text"],
)
def test_bad_input_exit_2_with_a_clear_message(tmp_path, mutate, design, message):
    spec = _write_project(tmp_path, mutate(_tiny_panel()), **design)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "tiny_rollout").exists()


def test_report_renders_with_event_study_and_cohort_table(tmp_path):
    spec = _write_project(tmp_path, _tiny_panel(), first_treated="g", bootstrap_replications=99)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "out" / "tiny_rollout" / "index.html").read_text()
    assert "Effect by time since treatment" in html and "First treated" in html
    assert "Cumulative effect" in html and "Periods since treatment" in html
    assert html.count("<img alt=") >= 4
    assert "results_for_notebook(" not in html  # code hidden


def test_validate_did_spec():
    proc = _cli("validate", str(MPDTA), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "500 units × 5 periods (balanced), cohorts first treated in 2004, 2006, 2007" in (
        proc.stdout
    )


def csdid_on_mpdta(csdid, mpdta: pd.DataFrame, **options):
    """csdid's ATT(g, t) on mpdta, never-treated, doubly robust, analytic SEs (quietly)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return csdid.ATTgt(
            yname="lemp",
            gname="first.treat",
            idname="countyreal",
            tname="year",
            data=mpdta,
            control_group="nevertreated",
            **options,
        ).fit(est_method="dr", bstrap=False)


def test_parallel_trends_pretest_replicates_r_and_csdid():
    from causal.designs.did_cs import MPDTA, group_time_effects
    from causal.designs.did_cs_run import pretest

    mpdta = pd.read_csv(MPDTA)
    effects = group_time_effects(
        mpdta, unit="countyreal", time="year", cohort="first.treat", outcome="lemp"
    )
    assert pretest(effects)["p_value"] == pytest.approx(0.16812, abs=5e-6)  # R did vignette
    csdid = pytest.importorskip("csdid.att_gt", reason="csdid is the test-extra peer for CS")
    for covariates, formula in [((), None), (("lpop",), "lemp ~ lpop")]:
        ours = pretest(
            group_time_effects(
                mpdta,
                unit="countyreal",
                time="year",
                cohort="first.treat",
                outcome="lemp",
                covariates=covariates,
            )
        )
        peer = csdid_on_mpdta(csdid, mpdta, xformla=formula)
        assert ours["w"] == pytest.approx(peer.MP["W"], rel=1e-8)
        assert round(ours["p_value"], 5) == peer.MP["Wpval"]


def test_clustered_callaway_santanna_matches_csdid(tmp_path):
    # Counties clustered by state (FIPS // 1000): analytic cluster-robust SEs as R did's
    # clustervars with bstrap = FALSE, reached through the spec's design.cluster.
    csdid = pytest.importorskip("csdid.att_gt", reason="csdid is the test-extra peer for CS")
    text = MPDTA.read_text().replace("../causal/", str(ROOT / "causal") + "/")
    text = text.replace(
        "SELECT countyreal, year", "SELECT countyreal, countyreal // 1000 AS state, year"
    )
    text = text.replace(
        "  first_treated: first_treat\n", "  first_treated: first_treat\n  cluster: state\n"
    )
    (tmp_path / "spec.yaml").write_text(text)
    cs = analyse(load_spec(tmp_path / "spec.yaml")).find(
        outcome="lemp", estimator="callaway_santanna"
    )
    mpdta = pd.read_csv(ROOT / "causal" / "data" / "datasets" / "mpdta.csv")
    mpdta["state"] = mpdta["countyreal"] // 1000
    peer = csdid_on_mpdta(csdid, mpdta, clustervar="state")
    with contextlib.redirect_stdout(io.StringIO()):
        peer.aggte(typec="dynamic", bstrap=False)
    assert cs.details["dynamic"]["std_error"] == pytest.approx(peer.atte["overall_se"], rel=1e-8)
    ours = pd.DataFrame(cs.details["att_gt"]).sort_values(["group", "time"])
    np.testing.assert_allclose(ours["std_error"], peer.results["se"], rtol=1e-8)
    unclustered = analyse(load_spec(MPDTA)).headline()
    assert cs.estimate == pytest.approx(unclustered.estimate, abs=1e-12)
    assert cs.std_error != pytest.approx(unclustered.std_error, rel=1e-3)
    assert "clustered by state" in cs.details["settings"]["standard_errors"]


def test_covariates_from_the_spec_give_the_doubly_robust_estimate(tmp_path):
    text = MPDTA.read_text().replace("../causal/", str(ROOT / "causal") + "/")
    (tmp_path / "spec.yaml").write_text(text + "covariates: [lpop]\n")
    res = analyse(load_spec(tmp_path / "spec.yaml"))
    cs = res.headline()
    assert cs.estimate == pytest.approx(-0.04175, abs=1e-4)  # R did 2.5, xformla = ~lpop
    assert cs.std_error == pytest.approx(0.0115, abs=1e-3)
    assert cs.details["settings"]["method"] == "dr"
    twfe = res.find(outcome="lemp", estimator="twfe")
    assert twfe.details["absorbed_covariates"] == ["lpop"]  # time-invariant: in the unit effects
