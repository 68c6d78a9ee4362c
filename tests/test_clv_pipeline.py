"""The clv design end to end: the CDNOW spec replicates Fader, Hardie & Lee (2005), the report
renders, the CLI validates, and bad transaction logs or settings exit 2 with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_run import cli as _cli

from causal.pipeline import analyse
from causal.results import ExperimentResults
from causal.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT / "experiments" / "cdnow_clv.yaml"
LOG = ROOT / "causal" / "data" / "datasets" / "cdnow_sample.csv"


@pytest.fixture(scope="module")
def cdnow() -> ExperimentResults:
    return analyse(load_spec(CDNOW))


def test_cdnow_spec_replicates_fader_hardie_lee(cdnow):
    head = cdnow.headline()
    bg = head.details["bgnbd"]["params"]
    gg = head.details["gamma_gamma"]["params"]
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():  # to the published rounding
        assert round(bg[name], 3) == value, name
    assert (round(gg["p"], 2), round(gg["q"], 2), round(gg["v"], 2)) == (6.25, 3.74, 15.44)
    assert head.details["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert head.n_units == 2357 and head.conf_low < head.estimate < head.conf_high
    back = ExperimentResults.from_dict(json.loads(cdnow.to_json()))
    assert back.headline().estimate == head.estimate
    assert cdnow.check("clv_convergence").status == "pass"
    assert cdnow.check("clv_holdout_forecast").status in ("pass", "warn")


def test_same_spec_same_numbers(cdnow):
    again = analyse(load_spec(CDNOW))
    assert again.to_dict()["results"] == cdnow.to_dict()["results"]


def test_groups_give_the_lifetime_value_of_what_separates_them(tmp_path):
    """Customers whose id is even are 'treated'; nothing differs, so the interval covers 0."""
    log = pd.read_csv(LOG)
    log["offered"] = (log["customer_id"] % 2 == 0).astype(int)
    spec = _write(tmp_path, log, group="offered", bootstrap_replications=200)
    res = analyse(load_spec(spec))
    head = res.headline()
    assert head.estimand.startswith("difference in mean 12-month CLV")
    assert head.conf_low < 0 < head.conf_high
    diff = head.details["difference"]
    assert diff["treated"]["n_customers"] + diff["control"]["n_customers"] == 2357


def _write(tmp_path: Path, log: pd.DataFrame, **design) -> Path:
    log.to_csv(tmp_path / "log.csv", index=False)
    spec = yaml.safe_load(CDNOW.read_text())
    spec["data"] = {"sources": {"transactions": {"path": "log.csv"}}}
    spec["design"].update(design)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("mutate", "design", "message"),
    [
        (lambda t: t.assign(spend=t["spend"].where(t.index != 5, -3.0)), {}, "negative"),
        (
            lambda t: pd.concat([t, t.head(1).assign(date="1999-01-15")]),
            {},
            "after",
        ),
        (lambda t: t, {"annual_discount_rate": 1.5}, "annual_discount_rate"),
        (
            lambda t: t,
            {"calibration_end": "1998-12-31", "observation_end": "1998-06-30"},
            "observation_end must come after calibration_end",
        ),
        (lambda t: t, {"calibration_end": "1996-06-30", "observation_end": None}, "before"),
        (lambda t: t.assign(date=t["date"].where(t.index != 3, "not a date")), {}, "date"),
    ],
)
def test_bad_input_exit_2_with_a_clear_message(tmp_path, mutate, design, message):
    log = pd.read_csv(LOG).head(400)
    spec = _write(tmp_path, mutate(log), **design)
    proc = _cli("run", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr
    assert not (tmp_path / "out" / "cdnow_clv").exists()


def test_validate_and_report(tmp_path):
    proc = _cli("validate", str(CDNOW), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "6,919 transactions, 2,357 customers (946 with repeat purchases" in proc.stdout
    proc = _cli("run", str(CDNOW), "--out", str(tmp_path / "out"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "out" / "cdnow_clv" / "index.html").read_text()
    for section in ("What a customer is worth", "Who is still active", "Fitted models"):
        assert section in html
    assert "Mean 12-month CLV" in html and html.count("<img alt=") == 2
