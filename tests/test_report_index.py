"""The index of reports, `causal report`, and their bad-input paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from causal.errors import ReportError
from causal.pipeline import analyse
from causal.report_index import collect, index_html, terminal_table, write_index
from causal.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
LALONDE = ROOT / "experiments" / "lalonde_nsw_experiment.yaml"


@pytest.fixture(scope="module")
def lalonde_json() -> str:
    return analyse(load_spec(LALONDE)).to_json()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "causal.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def put(reports: Path, name: str, text: str) -> Path:
    folder = reports / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(text, encoding="utf-8")
    return folder


def test_index_lists_reports_with_headline_status_and_link(tmp_path, lalonde_json):
    put(tmp_path, "lalonde_nsw_experiment", lalonde_json)
    put(tmp_path, "broken", "{not json")
    rows = collect(tmp_path)
    good = next(r for r in rows if r.name == "lalonde_nsw_experiment")
    assert good.effect.startswith("re78: 1,794 (95% CI 474 to 3,115)")
    assert good.status == "warn" and good.design == "ab_test"
    bad = next(r for r in rows if r.name == "broken")
    assert bad.problem
    html = write_index(tmp_path).read_text()
    assert 'href="lalonde_nsw_experiment/index.html"' in html
    assert "cannot read results.json" in html
    assert "lalonde_nsw_experiment" in terminal_table(rows)


def test_titles_and_names_are_escaped(tmp_path, lalonde_json):
    data = json.loads(lalonde_json)
    data["experiment"]["title"] = "<script>alert(1)</script>"
    put(tmp_path, "x", json.dumps(data))
    html = index_html(collect(tmp_path))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_unwritable_index_keeps_the_previous_one(tmp_path, lalonde_json, monkeypatch):
    put(tmp_path, "lalonde_nsw_experiment", lalonde_json)
    previous = write_index(tmp_path).read_text()
    put(tmp_path, "second", lalonde_json)

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("causal.report_index.os.replace", refuse)
    with pytest.raises(ReportError, match=r"cannot write the report index .*Permission denied"):
        write_index(tmp_path)
    assert (tmp_path / "index.html").read_text() == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_run_rebuilds_the_index_and_list_shows_it(tmp_path):
    proc = cli("run", str(LALONDE), "--out", str(tmp_path), "--no-report", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "lalonde_nsw_experiment/index.html" in (tmp_path / "index.html").read_text()
    listing = cli("list", "--reports", str(tmp_path), cwd=ROOT)
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.startswith("lalonde_nsw_experiment"))
    assert "re78: 1,794" in line and "warn" in line
    assert any(
        x.startswith("prop99_smoking") and "not run" in x for x in listing.stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d.mkdir(), "no results.json here; run `causal run"),
        (
            lambda d: put(d.parent, d.name, json.dumps({"schema_version": 0})),
            "format version 0, but this causal reads version 1; re-run `causal run`",
        ),
    ],
    ids=["no-results", "old-format"],
)
def test_report_command_bad_input(tmp_path, setup, message):
    folder = tmp_path / "exp"
    setup(folder)
    (tmp_path / "index.html").write_text("previous index")
    proc = cli("report", str(folder), cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "index.html").read_text() == "previous index"


def test_report_command_needs_a_folder_or_index(tmp_path):
    proc = cli("report", cwd=tmp_path)
    assert proc.returncode == 2 and "REPORT_DIR" in proc.stderr


def test_reports_are_self_contained(tmp_path):
    proc = cli("run", str(LALONDE), "--out", str(tmp_path), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "lalonde_nsw_experiment" / "index.html").read_text()
    assert "<script src=" not in html and "cdnjs" not in html  # opens offline, e-mailable
    assert html.count('<img alt="') >= 2 and "data:image/png;base64," in html
    proc = cli("report", str(tmp_path / "lalonde_nsw_experiment"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"index: {tmp_path / 'index.html'}"
