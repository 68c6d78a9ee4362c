"""Time-to-event outcomes in an A/B spec: the Rossi trial end to end (Fox 2002's Cox
coefficient, lifelines' RMST), the report's survival section, and bad input exiting 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_run import cli as _cli

from causal.pipeline import analyse
from causal.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
ROSSI = ROOT / "experiments" / "rossi_financial_aid.yaml"
DATA = ROOT / "causal" / "data" / "datasets" / "rossi.csv"


def test_rossi_spec_replicates_fox_and_lifelines():
    res = analyse(load_spec(ROSSI))
    assert res.primary == {"outcome": "week", "estimator": "rmst_difference"}
    rmst = res.headline()
    assert rmst.estimate == pytest.approx(46.875 - 44.8333, abs=1e-3)  # lifelines, 52 weeks
    cox = res.find(outcome="week", estimator="cox_ph")
    assert (round(cox.estimate, 3), round(cox.std_error, 3)) == (-0.379, 0.191)  # Fox (2002)
    churn = res.find(outcome="week", estimator="churn_at_52")
    assert churn.estimate == pytest.approx(-0.0833, abs=1e-4)
    assert res.check("proportional_hazards").status == "warn"  # age and wexp, as Fox finds
    assert res.segments == ()


def test_report_has_the_survival_section(tmp_path):
    proc = _cli("run", str(ROSSI), "--out", str(tmp_path / "out"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "out" / "rossi_financial_aid" / "index.html").read_text()
    assert "Time to event: week" in html and "Restricted mean time to 52" in html
    assert "Share without the event by arm over time" in html  # the KM plot's alt text


def _write(tmp_path: Path, frame: pd.DataFrame, **outcome) -> Path:
    frame.to_csv(tmp_path / "rossi.csv", index=False)
    spec = yaml.safe_load(ROSSI.read_text())
    spec["data"]["sources"]["rossi"]["path"] = "rossi.csv"
    spec["outcomes"][0].update(outcome)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("mutate", "outcome", "message"),
    [
        (lambda t: t.assign(week=t["week"].where(t.index != 4, -3)), {}, "negative"),
        (lambda t: t.assign(arrest=t["arrest"].where(t.index != 2, 2)), {}, "arrest"),
        (lambda t: t, {"rmst_horizon": 60}, "60"),
        (lambda t: t, {"event": None}, "needs 'event'"),
    ],
)
def test_bad_input_exit_2_with_a_clear_message(tmp_path, mutate, outcome, message):
    spec = _write(tmp_path, mutate(pd.read_csv(DATA)), **outcome)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2
