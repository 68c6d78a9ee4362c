"""Report history: what changed since the last run, and the append-only history/ folder."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest

from causal.checks import CheckResult
from causal.errors import ReportError
from causal.history import (
    archive_previous,
    compare,
    estimate_status,
    history_files,
    latest_previous,
)
from causal.report import write_report
from causal.report_changes import changes_html
from causal.results import ExperimentResults, Result, load_results

if TYPE_CHECKING:
    from conftest import Project

FP_OLD = "be9fa4e36eabb684ee4a17eda1bfbabdfb06ec43c1a3cb5a268a87693e291f3b"
FP_NEW = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
SPEC = "75d7b71b5305799d34804799ec67a5d1e6f4ecbf7be4052b7bb86b4116f78d71"


def make_results(
    estimates: dict[tuple[str, str], tuple[float, float]],
    *,
    checks: dict[str, str] | None = None,
    fingerprint: str = FP_OLD,
    spec_hash: str = SPEC,
    created_at: str = "2026-11-20T14:03:05+00:00",
) -> ExperimentResults:
    """Results with ``{(outcome, estimator): (estimate, std_error)}`` and ``{check: status}``."""
    results = tuple(
        Result(estimator, "ATE", outcome, est, se, est - 2 * se, est + 2 * se, 0.05, 200, 100)
        for (outcome, estimator), (est, se) in estimates.items()
    )
    first = next(iter(estimates))
    return ExperimentResults(
        experiment={"name": "tiny_pilot", "design": "ab_test", "spec_hash": spec_hash},
        results=results,
        primary={"outcome": first[0], "estimator": first[1]},
        checks=tuple(
            CheckResult(name, status, f"{name} said {status}")
            for name, status in (checks or {}).items()
        ),
        provenance={"data_fingerprint": fingerprint, "created_at": created_at},
    )


# --- compare ---------------------------------------------------------------------------------


def test_moved_small_and_unchanged_estimates() -> None:
    old = make_results(
        {
            ("spend", "difference_in_means"): (10.0, 3.0),
            ("spend", "cuped"): (9.0, 2.0),
            ("spend", "lin"): (9.5, 2.0),
            ("spend", "relative_lift"): (0.10, 0.03),
        }
    )
    new = make_results(
        {
            ("spend", "difference_in_means"): (15.0, 3.0),  # 1.67 SE: moved
            ("spend", "cuped"): (9.0 * (1 + 1e-13), 2.0),  # the last digits only: unchanged
            ("spend", "lin"): (9.6, 2.0),  # 0.05 SE: changed, but within the noise
            ("spend", "relative_lift"): (0.10, 0.03),  # identical
        }
    )
    changes = compare(old, new)
    status = {e.estimator: e.status for e in changes.estimates}
    assert status == {
        "difference_in_means": "moved",
        "cuped": "unchanged",
        "lin": "small",
        "relative_lift": "unchanged",
    }
    [moved] = changes.moved
    assert (moved.outcome, moved.estimator, moved.before, moved.after) == (
        "spend",
        "difference_in_means",
        10.0,
        15.0,
    )
    assert moved.difference == 5.0
    assert moved.in_std_errors == pytest.approx(5 / 3)
    assert [e.estimator for e in changes.small] == ["lin"]
    assert not changes.nothing_changed
    assert not changes.data_changed and not changes.spec_changed


def test_the_moved_threshold_is_a_tenth_of_the_new_se() -> None:
    assert estimate_status(1.0, 1.0 + 0.099, 1.0) == "small"
    assert estimate_status(1.0, 1.0 + 0.101, 1.0) == "moved"
    assert estimate_status(1.0, 1.0 - 0.101, 1.0) == "moved"
    # Near zero the tolerance for noise follows the SE, not the (tiny) estimate.
    assert estimate_status(0.0, 1e-17, 1.0) == "unchanged"


def test_missing_standard_errors_and_estimates_are_nan_safe(tmp_path: Path) -> None:
    nan = math.nan
    old = make_results(
        {
            ("y", "a"): (1.0, nan),
            ("y", "b"): (1.0, nan),
            ("y", "c"): (nan, nan),
            ("y", "d"): (nan, 1.0),
            ("y", "e"): (1.0, 0.0),
        }
    )
    new = make_results(
        {
            ("y", "a"): (1.0, nan),  # same number, no SE: unchanged
            ("y", "b"): (1.5, nan),  # changed, no SE to judge by: moved
            ("y", "c"): (nan, nan),  # missing both times: unchanged
            ("y", "d"): (2.0, 1.0),  # now estimable: moved
            ("y", "e"): (1.5, 0.0),  # zero SE: any real change moved
        }
    )
    changes = compare(old, new)
    status = {e.estimator: e.status for e in changes.estimates}
    assert status == {"a": "unchanged", "b": "moved", "c": "unchanged", "d": "moved", "e": "moved"}
    by_name = {e.estimator: e for e in changes.estimates}
    for name in "abcde":
        assert math.isnan(by_name[name].in_std_errors), name
    assert math.isnan(by_name["d"].difference)
    html = changes_html_for(old, new, tmp_path)
    assert "n/a" in html
    assert not re.search(r">\s*-?nan\b", html, re.IGNORECASE)


def test_added_and_removed_estimators(tmp_path: Path) -> None:
    old = make_results({("spend", "difference_in_means"): (10.0, 3.0), ("spend", "lin"): (9, 2)})
    new = make_results({("spend", "difference_in_means"): (10.0, 3.0), ("spend", "cuped"): (9, 2)})
    changes = compare(old, new)
    assert changes.added == (("spend", "cuped"),)
    assert changes.removed == (("spend", "lin"),)
    assert [e.estimator for e in changes.estimates] == ["difference_in_means"]
    assert not changes.moved and not changes.nothing_changed
    html = changes_html_for(old, new, tmp_path)
    assert "New estimates: cuped on spend." in html
    assert "No longer estimated: lin on spend." in html


def test_checks_that_changed_status(tmp_path: Path) -> None:
    est = {("spend", "difference_in_means"): (10.0, 3.0)}
    old = make_results(est, checks={"sample_ratio": "pass", "balance": "pass", "gone": "warn"})
    new = make_results(est, checks={"sample_ratio": "fail", "balance": "pass", "new": "n/a"})
    changes = compare(old, new)
    assert [(c.name, c.before, c.after) for c in changes.checks] == [
        ("sample_ratio", "pass", "fail"),
        ("new", None, "n/a"),
        ("gone", "warn", None),
    ]
    html = changes_html_for(old, new, tmp_path)
    assert '<span class="badge pass">pass</span>' in html
    assert '<span class="badge fail">fail</span>' in html
    assert "not run" in html and "3 checks changed status" in html
    assert "balance" not in html


def test_fingerprint_spec_and_date(tmp_path: Path) -> None:
    est = {("spend", "difference_in_means"): (10.0, 3.0)}
    old = make_results(est, created_at="2026-11-20T14:03:05+00:00")
    new = make_results(est, fingerprint=FP_NEW, spec_hash="f" * 64)
    changes = compare(old, new)
    assert changes.data_changed and changes.spec_changed
    assert (changes.fingerprint_before, changes.fingerprint_after) == (FP_OLD[:12], FP_NEW[:12])
    assert changes.previous_created_at == "2026-11-20T14:03:05+00:00"
    html = changes_html_for(old, new, tmp_path)
    assert "Compared with the run of 2026-11-20 14:03 UTC: data changed" in html
    assert f"{FP_OLD[:12]} → {FP_NEW[:12]}" in html
    assert "spec changed" in html and "0 estimates moved" in html
    assert "No estimate moved by more than 0.1 standard errors." in html


def test_nothing_changed_is_said_plainly(tmp_path: Path) -> None:
    res = make_results({("spend", "difference_in_means"): (10.0, 3.0)}, checks={"a": "pass"})
    changes = compare(res, res)
    assert changes.nothing_changed
    html = changes_html_for(res, res, tmp_path)
    assert "data unchanged; spec unchanged; 0 estimates moved; 0 checks changed status" in html
    assert "Nothing changed" in html
    assert "<table" not in html and "No estimate moved" not in html


def test_changes_html_escapes_and_lists_moved_estimates(tmp_path: Path) -> None:
    old = make_results({("<b>spend</b>", "difference_in_means"): (10.0, 3.0)})
    new = make_results({("<b>spend</b>", "difference_in_means"): (4.0, 2.0)}, fingerprint=FP_NEW)
    html = changes_html_for(old, new, tmp_path)
    assert "<b>spend" not in html and "&lt;b&gt;spend&lt;/b&gt;" in html
    assert "1 estimate moved" in html
    row = re.search(r"<tr><td>&lt;b&gt;spend.*?</tr>", html)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    assert cells[1:] == ["difference_in_means", "10", "4", "-6", "-3.00"]


def test_first_run_says_so(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(make_results({("y", "a"): (1.0, 1.0)}).to_json(), encoding="utf-8")
    assert "First run of this experiment." in changes_html(path)


def test_an_unreadable_previous_run_does_not_break_the_report(tmp_path: Path) -> None:
    res = make_results({("y", "a"): (1.0, 1.0)})
    (tmp_path / "results.json").write_text(res.to_json(), encoding="utf-8")
    (tmp_path / "history").mkdir()
    old = json.loads(res.to_json()) | {"schema_version": 0}
    name = "results-20261120T140305Z-be9fa4e3.json"
    (tmp_path / "history" / name).write_text(json.dumps(old), encoding="utf-8")
    html = changes_html(tmp_path / "results.json")
    assert f"The previous run ({name}) cannot be compared with this one" in html


def changes_html_for(old: ExperimentResults, new: ExperimentResults, folder: Path) -> str:
    """``changes_html`` on a report holding ``new`` as results.json and ``old`` in history/."""
    (folder / "results.json").write_text(old.to_json(), encoding="utf-8")
    staging = folder / "next"
    staging.mkdir()
    archive_previous(folder, staging)
    (staging / "results.json").write_text(new.to_json(), encoding="utf-8")
    return changes_html(staging / "results.json")


# --- the history folder ----------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_history_is_append_only(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "tiny_pilot"
    unused = tmp_path / "unused.ipynb"
    est = {("spend", "difference_in_means"): (10.0, 3.0)}
    first = make_results(est, created_at="2026-11-20T14:03:05+00:00")
    second = make_results(
        {("spend", "difference_in_means"): (15.0, 3.0)},
        fingerprint=FP_NEW,
        created_at="2026-11-21T09:00:00+00:00",
    )
    third = make_results(est, created_at="2026-11-22T09:00:00+00:00")

    write_report(first, out, notebook=unused, render=False)
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    first_bytes = (out / "results.json").read_bytes()

    write_report(second, out, notebook=unused, render=False)
    assert [p.name for p in history_files(out)] == [f"results-20261120T140305Z-{FP_OLD[:8]}.json"]
    assert history_files(out)[0].read_bytes() == first_bytes
    kept = snapshot(out / "history")
    second_bytes = (out / "results.json").read_bytes()

    write_report(third, out, notebook=unused, render=False)
    names = [p.name for p in history_files(out)]
    assert names == [
        f"results-20261120T140305Z-{FP_OLD[:8]}.json",
        f"results-20261121T090000Z-{FP_NEW[:8]}.json",
    ]
    now = snapshot(out / "history")
    assert {k: now[k] for k in kept} == kept, "an older history file was rewritten"
    assert now[names[1]] == second_bytes
    assert latest_previous(out) == load_results(out / "history" / names[1])
    assert latest_previous(out).provenance["created_at"] == "2026-11-21T09:00:00+00:00"
    assert sorted(p.name for p in tmp_path.joinpath("reports").iterdir()) == ["tiny_pilot"]


def test_a_name_taken_gets_a_counter_and_stays_newest(tmp_path: Path) -> None:
    out = tmp_path / "tiny_pilot"
    unused = tmp_path / "unused.ipynb"
    same_second = "2026-11-20T14:03:05+00:00"
    runs = [make_results({("y", "a"): (float(i), 1.0)}, created_at=same_second) for i in range(4)]
    for res in runs:
        write_report(res, out, notebook=unused, render=False)
    stem = f"results-20261120T140305Z-{FP_OLD[:8]}"
    assert [p.name for p in history_files(out)] == [
        f"{stem}.json",
        f"{stem}-2.json",
        f"{stem}-3.json",
    ]
    assert latest_previous(out).headline().estimate == 2.0


def test_rerendering_the_same_run_adds_no_history(tmp_path: Path) -> None:
    out = tmp_path / "tiny_pilot"
    unused = tmp_path / "unused.ipynb"
    first = make_results({("y", "a"): (1.0, 1.0)}, created_at="2026-11-20T14:03:05+00:00")
    second = make_results({("y", "a"): (2.0, 1.0)}, created_at="2026-11-21T14:03:05+00:00")
    write_report(first, out, notebook=unused, render=False)
    write_report(second, out, notebook=unused, render=False)
    before = snapshot(out)
    write_report(load_results(out / "results.json"), out, notebook=unused, render=False)
    assert snapshot(out) == before
    assert latest_previous(out).headline().estimate == 1.0


def test_archive_without_a_previous_report(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    assert archive_previous(tmp_path / "missing", staging) is None
    assert list(staging.iterdir()) == []
    assert latest_previous(staging) is None


def test_a_failed_render_keeps_the_previous_folder_and_its_history(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "tiny_pilot"
    notebook = tmp_path / "broken.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "causal",
        "display_name": "Python (causal)",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            'results_path = "results.json"', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell('raise RuntimeError("the revenue chart broke")'),
    ]
    nbformat.write(nb, notebook)
    for day in (20, 21):
        res = make_results({("y", "a"): (day, 1.0)}, created_at=f"2026-11-{day}T10:00:00+00:00")
        write_report(res, out, notebook=notebook, render=False)
    before = snapshot(out)
    assert len(history_files(out)) == 1

    third = make_results({("y", "a"): (22.0, 1.0)}, created_at="2026-11-22T10:00:00+00:00")
    with pytest.raises(ReportError, match="the revenue chart broke"):
        write_report(third, out, notebook=notebook, render=True)
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny_pilot"]


# --- end to end ------------------------------------------------------------------------------


def run_cli(project: Project) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "causal.cli", "run", "spec.yaml", "--out", "out"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def changes_section(index_html: str) -> str:
    """The report's text from the "What changed" heading to the next section heading."""
    start = index_html.index("What changed since the last run")
    end = index_html.find("<h2", start)
    return index_html[start : end if end != -1 else None]


def test_cli_report_shows_what_changed(tiny_experiment: Project) -> None:
    report = tiny_experiment.root / "out" / tiny_experiment.name
    first = run_cli(tiny_experiment)
    assert first.returncode == 0, first.stderr
    assert "First run of this experiment." in changes_section(
        (report / "index.html").read_text(encoding="utf-8")
    )
    assert not (report / "history").exists()
    first_json = (report / "results.json").read_bytes()
    first_res = load_results(report / "results.json")

    treated = tiny_experiment.units.set_index("unit_id")["treated"]
    sales = tiny_experiment.sales
    sales.loc[sales["unit_id"].map(treated) == 1, "spend"] += 5.0
    tiny_experiment.write_data()
    second = run_cli(tiny_experiment)
    assert second.returncode == 0, second.stderr

    archived = history_files(report)
    assert len(archived) == 1
    assert archived[0].read_bytes() == first_json
    assert archived[0].name.endswith(f"-{first_res.provenance['data_fingerprint'][:8]}.json")

    section = changes_section((report / "index.html").read_text(encoding="utf-8"))
    assert "data changed" in section
    assert "spec unchanged" in section
    moved_table = section[section.index("<table") :]
    assert "difference_in_means" in moved_table
    new = load_results(report / "results.json")
    change = new.find(outcome="spend", estimator="difference_in_means").estimate - (
        first_res.find(outcome="spend", estimator="difference_in_means").estimate
    )
    assert change == pytest.approx(5.0)
    assert f'<td class="num">{change:,.4g}</td>' in moved_table
