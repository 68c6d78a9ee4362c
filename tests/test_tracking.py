"""`causal track` end to end on the simulated remote-support pilot: the confidence sequence at
each look covers the true effect at that look, the decision and the first exclusion are
reported, the history is byte-identical on a re-run, grows by one look a day, flags a changed
past look, and bad input exits 2 with a clear message."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_run import cli as _cli

from causal.simulate import simulate
from causal.spec import load_spec
from causal.track import track_pilot

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "remote_support_tracking.yaml"


@pytest.fixture(scope="module")
def pilot():
    return track_pilot(load_spec(SPEC))


def test_sequence_covers_the_true_effect_at_every_look(pilot):
    truth = simulate("remote_support_pilot", seed=0).truth
    cost = pilot.looks[pilot.looks["metric"] == "repair_cost"].reset_index(drop=True)
    assert len(cost) == 60
    for k, row in cost.iterrows():
        true = truth[f"repair_cost_look_{k + 1}"]
        assert row["cs_low"] <= true <= row["cs_high"], (k + 1, row["cs_low"], true)
        assert row["cs_low"] <= row["conf_low"] and row["conf_high"] <= row["cs_high"]
    assert pilot.lines["decision"].iloc[-1] == "positive effect, can stop"  # cost goes down
    assert (pilot.lines["srm_status"] == "pass").all()
    guard = pilot.looks[pilot.looks["metric"] == "complaint"]
    assert not guard["decision"].str.startswith("negative").any()


def test_kpi_trends_by_arm(pilot):
    nps = pilot.looks[pilot.looks["metric"] == "nps"]
    assert nps["summary"].iloc[0] == "nps"
    last = nps.iloc[-1]
    assert last["treated_mean"] > last["control_mean"]  # NPS points, promoters - detractors
    assert -100 <= last["control_mean"] <= 100


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_history_is_append_only_and_idempotent(tmp_path):
    out = tmp_path / "reports"
    first = _cli("track", str(SPEC), "--out", str(out), "--as-of", "2026-04-10", "--no-report")
    assert first.returncode == 0, first.stderr
    assert "1 looks added" in first.stdout
    history = out / "remote_support_tracking" / "track"
    before = _snapshot(history)
    again = _cli("track", str(SPEC), "--out", str(out), "--as-of", "2026-04-10", "--no-report")
    assert "0 looks added, 1 unchanged" in again.stdout
    assert _snapshot(history) == before  # byte-identical
    nxt = _cli("track", str(SPEC), "--out", str(out), "--as-of", "2026-04-11", "--no-report")
    assert "1 looks added" in nxt.stdout
    assert len(_snapshot(history)) == len(before) + 1


def test_a_changed_past_look_is_flagged_not_overwritten(tmp_path):
    from causal.track_history import load_changes, load_history, record_looks

    spec = load_spec(SPEC)
    looks = track_pilot(spec, as_of=pd.Timestamp("2026-04-10").date()).looks
    history = tmp_path / "track"
    record_looks(history, looks.assign(look_date=looks["look_date"].astype(str)))
    late = looks.copy()
    late.loc[late["metric"] == "repair_cost", "estimate"] += 0.5  # late-arriving repair bills
    update = record_looks(history, late.assign(look_date=late["look_date"].astype(str)))
    assert len(update.revised) == 1
    changes = load_changes(history)
    assert set(changes["metric"]) == {"repair_cost"} and "estimate" in set(changes["field"])
    assert load_history(history)["revised"].any()


def test_tracking_report_states_the_decision_and_the_first_exclusion(tmp_path):
    proc = _cli("track", str(SPEC), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "look 60 (2026-04-30, 20,000 units): positive effect, can stop" in proc.stdout
    html = (tmp_path / "remote_support_tracking" / "tracking" / "index.html").read_text()
    assert "first excluded zero at look" in html
    assert "Confidence sequence" in html and html.count("<img alt=") == 2


def _mutated(tmp_path: Path, change) -> Path:
    spec = yaml.safe_load(SPEC.read_text())
    change(spec)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _query(spec, old, new):
    spec["data"]["query"] = spec["data"]["query"].replace(old, new)


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (
            lambda s: _query(s, "SELECT c.*,", "SELECT c.* REPLACE (NULL AS assigned_at),"),
            (),
            "have no assignment time",
        ),
        (
            lambda s: s["tracking"].update(
                events="SELECT customer_id, event_time - INTERVAL 40 DAY AS event_time, metric, "
                "value FROM support_events"
            ),
            (),
            "before",
        ),
        (lambda s: None, ("--as-of", "2026-01-01"), "before the pilot started"),
        (lambda s: s["tracking"]["metrics"][0].update(direction="increase"), (), "contradicts"),
    ],
)
def test_bad_input_exit_2_with_a_clear_message(tmp_path, change, args, message):
    path = _mutated(tmp_path, change)
    proc = _cli("track", str(path), "--out", str(tmp_path / "out"), "--no-report", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_units_that_disappear_between_runs_are_an_error(tmp_path):
    out = tmp_path / "out"
    assert _cli("track", str(SPEC), "--out", str(out), "--no-report").returncode == 0
    fewer = _mutated(
        tmp_path, lambda s: s["data"].update(query=s["data"]["query"] + "WHERE customer_id > 5\n")
    )
    proc = _cli("track", str(fewer), "--out", str(out), "--no-report")
    assert proc.returncode == 2 and "disappeared" in proc.stderr, proc.stderr
