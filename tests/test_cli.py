"""The ``causal`` command as a user runs it: bad input fails cleanly, reports are atomic, and
the bundled experiments run end to end into results.json and an HTML report."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pandas as pd
import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Project

REPO_ROOT = Path(__file__).resolve().parent.parent
LALONDE = "experiments/lalonde_nsw_experiment.yaml"
WARRANTY = "experiments/extended_warranty_pilot.yaml"
TIMEOUT = 300


def causal(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m causal.cli ARGS`` in ``cwd`` as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "causal.cli", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )


def causal_many(*commands: tuple[list[str | Path], Path]) -> list[subprocess.CompletedProcess[str]]:
    """Run several ``causal`` commands at once (they are independent) and wait for all."""
    procs = [
        (cmd, subprocess.Popen([sys.executable, "-m", "causal.cli", *map(str, cmd)], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for cmd, cwd in commands
    ]
    done = []
    for cmd, proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        done.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return done


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_bad_input(proc: subprocess.CompletedProcess[str], *names: str, out_dir: Path,
                     report: str = "tiny_pilot") -> str:
    """Exit 2, one or two ``error:`` lines without a traceback naming ``names``, nothing written."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    for name in names:
        assert name in proc.stderr, f"{name!r} not named in: {proc.stderr}"
    assert not (out_dir / report).exists()
    assert listing(out_dir) == [], f"{out_dir} should stay empty: {listing(out_dir)}"
    return proc.stderr


def line_of(text: str, startswith: str) -> int:
    """1-based number of the only line of ``text`` that starts with ``startswith``."""
    hits = [i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith(startswith)]
    assert len(hits) == 1, hits
    return hits[0]


def run_tiny(project: Project, *extra: str) -> subprocess.CompletedProcess[str]:
    return causal("run", "spec.yaml", "--out", "out", *extra, cwd=project.root)


# --- bad input: exit 2, one line naming the culprit, nothing written ------------------------


def test_missing_spec_file(tiny_experiment: Project) -> None:
    proc = causal("run", "experiments/no_such_pilot.yaml", "--out", "out", cwd=tiny_experiment.root)
    err = assert_bad_input(proc, "no_such_pilot.yaml", out_dir=tiny_experiment.root / "out")
    assert "not found" in err


def test_yaml_syntax_error_gives_the_line(tiny_experiment: Project) -> None:
    text = tiny_experiment.spec_path.read_text()
    text = text.replace("title: Tiny pilot\n", "title: Tiny: pilot\n")
    tiny_experiment.spec_path.write_text(text)
    line = line_of(text, "title:")
    proc = run_tiny(tiny_experiment)
    err = assert_bad_input(proc, f"spec.yaml:{line}:", out_dir=tiny_experiment.root / "out")
    assert "YAML" in err


def test_unknown_key_suggests_the_right_one_with_its_line(tiny_experiment: Project) -> None:
    tiny_experiment.spec["intervention"]["fixed_costs"] = 250.0
    text = tiny_experiment.write_spec()
    line = line_of(text, "fixed_costs:")
    proc = run_tiny(tiny_experiment)
    assert_bad_input(proc, f"spec.yaml:{line}:", "fixed_costs", "did you mean 'fixed_cost'",
                     out_dir=tiny_experiment.root / "out")


def test_treatment_column_absent(tiny_experiment: Project) -> None:
    tiny_experiment.spec["treatment"] = "assigned"
    tiny_experiment.write_spec()
    proc = run_tiny(tiny_experiment)
    assert_bad_input(proc, "'assigned'", out_dir=tiny_experiment.root / "out")


@pytest.mark.parametrize("coding", [{0: 1, 1: 2}, {0: "A", 1: "B"}], ids=["1/2", "A/B"])
def test_treatment_not_zero_one(tiny_experiment: Project, coding: dict[int, Any]) -> None:
    tiny_experiment.units["treated"] = tiny_experiment.units["treated"].map(coding)
    tiny_experiment.write_data()
    proc = run_tiny(tiny_experiment)
    assert_bad_input(proc, "'treated'", "0/1", out_dir=tiny_experiment.root / "out")


def test_outcome_not_numeric(tiny_experiment: Project) -> None:
    sales = tiny_experiment.sales
    sales["spend"] = "EUR " + sales["spend"].astype(str)
    tiny_experiment.write_data()
    proc = run_tiny(tiny_experiment)
    err = assert_bad_input(proc, "'spend'", out_dir=tiny_experiment.root / "out")
    assert "numeric" in err


def test_duplicate_units_after_join(tiny_experiment: Project) -> None:
    # Three customers have two sales rows: the join returns them twice.
    sales = tiny_experiment.sales
    tiny_experiment.sales = pd.concat([sales, sales.iloc[[4, 9, 12]]])
    tiny_experiment.write_data()
    proc = run_tiny(tiny_experiment)
    err = assert_bad_input(proc, "'unit_id'", out_dir=tiny_experiment.root / "out")
    assert "unique" in err


def test_empty_table_after_query(tiny_experiment: Project) -> None:
    tiny_experiment.spec["data"]["query"] += "WHERE u.pre_spend < 0\n"
    tiny_experiment.write_spec()
    proc = run_tiny(tiny_experiment)
    err = assert_bad_input(proc, "data.query", out_dir=tiny_experiment.root / "out")
    assert "empty" in err


def test_data_source_file_missing(tiny_experiment: Project) -> None:
    tiny_experiment.spec["data"]["sources"]["sales"]["path"] = "silo/sales_2025.csv"
    tiny_experiment.write_spec()
    proc = run_tiny(tiny_experiment)
    missing = (tiny_experiment.root / "silo" / "sales_2025.csv").resolve()
    assert_bad_input(proc, "'sales'", str(missing), out_dir=tiny_experiment.root / "out")


@pytest.mark.parametrize(
    ("right", "wrong", "culprit"),
    [("s.spend", "s.spendd", "spendd"), ("JOIN sales AS s", "JOIN saless AS s", "saless")],
    ids=["misspelt-column", "misspelt-table"],
)
def test_sql_error_in_query(tiny_experiment: Project, right: str, wrong: str, culprit: str) -> None:
    query = tiny_experiment.spec["data"]["query"]
    assert right in query
    tiny_experiment.spec["data"]["query"] = query.replace(right, wrong)
    tiny_experiment.write_spec()
    proc = run_tiny(tiny_experiment)
    assert_bad_input(proc, "data.query", culprit, out_dir=tiny_experiment.root / "out")


def test_debug_shows_the_traceback(tiny_experiment: Project) -> None:
    tiny_experiment.spec["data"]["query"] = tiny_experiment.spec["data"]["query"].replace(
        "s.spend", "s.spendd")
    tiny_experiment.write_spec()
    proc = causal("--debug", "run", "spec.yaml", "--out", "out", cwd=tiny_experiment.root)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "DataError" in proc.stderr
    assert "spendd" in proc.stderr
    assert listing(tiny_experiment.root / "out") == []


def test_no_arguments_prints_help(tmp_path: Path) -> None:
    proc = causal(cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "usage: causal" in proc.stdout
    assert "experiments/" in proc.stdout
    for command in ("run", "validate", "schema", "list", "simulate"):
        assert command in proc.stdout


def test_run_help(tmp_path: Path) -> None:
    proc = causal("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage: causal run" in proc.stdout
    assert "experiments/" in proc.stdout
    assert "--no-report" in proc.stdout


# --- atomic reports: a failed run never replaces a good report ------------------------------


def test_failed_run_keeps_the_previous_results(tiny_experiment: Project) -> None:
    out = tiny_experiment.root / "out"
    first = run_tiny(tiny_experiment, "--no-report")
    assert first.returncode == 0, first.stderr
    results = out / tiny_experiment.name / "results.json"
    relative = Path("out") / "tiny_pilot" / "results.json"
    assert first.stdout.strip().splitlines()[-1] == f"report: {relative}"
    before = results.read_bytes()
    index_before = (out / "index.html").read_bytes()  # every run rebuilds the report index
    assert json.loads(before)["experiment"]["name"] == "tiny_pilot"

    tiny_experiment.spec["data"]["sources"]["sales"]["path"] = "sales_gone.csv"
    tiny_experiment.write_spec()
    second = run_tiny(tiny_experiment, "--no-report")
    assert second.returncode == 2
    assert second.stderr.startswith("error:") and "sales_gone.csv" in second.stderr
    assert "Traceback" not in second.stderr

    tiny_experiment.spec["data"]["sources"]["sales"]["path"] = "sales.csv"
    tiny_experiment.spec["data"]["query"] = "SELEC * FROM units"
    tiny_experiment.write_spec()
    third = run_tiny(tiny_experiment, "--no-report")
    assert third.returncode == 2
    assert third.stderr.startswith("error:") and "data.query" in third.stderr

    assert results.read_bytes() == before
    assert (out / "index.html").read_bytes() == index_before
    assert listing(out) == ["index.html", tiny_experiment.name]
    assert listing(out / tiny_experiment.name) == ["results.json"]


def _notebook(path: Path, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "causal", "display_name": "Python (causal)",
                                 "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell('results_path = "results.json"',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, path)


def test_failing_notebook_keeps_the_previous_report(tiny_experiment: Project) -> None:
    notebook = tiny_experiment.root / "templates" / "tiny_report.ipynb"
    notebook.parent.mkdir()
    _notebook(notebook, 'import json\nprint(json.load(open(results_path))["primary"])')
    tiny_experiment.spec["report"] = {"notebook": "templates/tiny_report.ipynb"}
    tiny_experiment.write_spec()
    out = tiny_experiment.root / "out"

    first = run_tiny(tiny_experiment)
    assert first.returncode == 0, first.stderr
    report = out / tiny_experiment.name
    assert listing(report) == ["index.html", "report.ipynb", "results.json"]
    before = {name: (report / name).read_bytes() for name in listing(report)}

    _notebook(notebook, 'raise RuntimeError("the revenue chart broke")')
    second = run_tiny(tiny_experiment)
    assert second.returncode == 2
    assert "Traceback" not in second.stderr
    lines = second.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, second.stderr
    assert lines[0].startswith("error:"), second.stderr
    assert "tiny_report.ipynb" in lines[0]
    assert "the revenue chart broke" in second.stderr
    assert {name: (report / name).read_bytes() for name in listing(report)} == before
    assert listing(out) == ["index.html", tiny_experiment.name]


# --- end to end on the bundled experiments ---------------------------------------------------


class _Tags(HTMLParser):
    """Start tags with their attributes, and code-cell divs that contain an input area."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.code_inputs = 0
        self._divs: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "div":
            classes = (attributes.get("class") or "").split()
            in_code_cell = any("jp-CodeCell" in c for c in self._divs)
            if in_code_cell and ({"jp-InputArea", "jp-InputPrompt"} & set(classes)):
                self.code_inputs += 1
            self._divs.append(classes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._divs:
            self._divs.pop()

    def by_id(self, element_id: str) -> dict[str, str | None]:
        found = [a for _, a in self.tags if a.get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id={element_id!r}"
        return found[0]


def parse_html(path: Path) -> tuple[str, _Tags]:
    text = path.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return text, parser


def assert_code_hidden(text: str, tags: _Tags) -> None:
    for code in ("results_for_notebook(", "from causal import plots", "display(HTML("):
        assert code not in text, f"notebook code {code!r} shows in the report"
    code_cells = [a for t, a in tags.tags if t == "div" and "jp-CodeCell" in (a.get("class") or "")]
    assert code_cells, "no code cells in the report?"
    assert all("jp-mod-noInput" in a["class"] for a in code_cells)
    assert tags.code_inputs == 0


def find_result(results: dict[str, Any], *, outcome: str, estimator: str) -> dict[str, Any]:
    hits = [r for r in results["results"]
            if r["outcome"] == outcome and r["estimator"] == estimator]
    assert len(hits) == 1, (outcome, estimator)
    return hits[0]


def value_line(results: dict[str, Any], name: str) -> dict[str, Any]:
    hits = [ln for ln in results["value"]["lines"] if ln["name"] == name]
    assert len(hits) == 1, name
    return hits[0]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """Both bundled experiments run with their reports, side by side (2 cores)."""
    out = tmp_path_factory.mktemp("reports")
    procs = causal_many(
        (["run", LALONDE, "--out", out], REPO_ROOT),
        (["run", WARRANTY, "--out", out], REPO_ROOT),
    )
    return {"lalonde_nsw_experiment": (procs[0], out), "extended_warranty_pilot": (procs[1], out)}


def _finished(rendered: dict[str, tuple[Any, Path]], name: str) -> tuple[dict[str, Any], Path]:
    proc, out = rendered[name]
    assert proc.returncode == 0, proc.stderr
    html = out / name / "index.html"
    assert proc.stdout.strip().splitlines()[-1] == f"report: {html}"
    assert html.is_file()
    results = json.loads((out / name / "results.json").read_text(encoding="utf-8"))
    return results, html


def test_lalonde_end_to_end(rendered: dict[str, tuple[Any, Path]]) -> None:
    results, html = _finished(rendered, "lalonde_nsw_experiment")
    dim = find_result(results, outcome="re78", estimator="difference_in_means")
    assert round(dim["estimate"], 2) == 1794.34

    primary = results["primary"]
    headline = find_result(results, **primary)
    text, tags = parse_html(html)
    shown = tags.by_id("headline-effect")["data-value"]
    assert shown is not None
    assert float(shown) == headline["estimate"]
    assert_code_hidden(text, tags)
    title = yaml.safe_load((REPO_ROOT / LALONDE).read_text(encoding="utf-8"))["title"]
    assert escape(title, quote=False) in text


def test_warranty_end_to_end(rendered: dict[str, tuple[Any, Path]]) -> None:
    from causal.simulate import simulate

    results, html = _finished(rendered, "extended_warranty_pilot")
    spec = yaml.safe_load((REPO_ROOT / WARRANTY).read_text(encoding="utf-8"))

    text, tags = parse_html(html)
    net = value_line(results, "net_value")
    shown = tags.by_id("headline-net-value")["data-value"]
    assert shown is not None
    assert float(shown) == net["estimate"]
    images = [a for t, a in tags.tags if t == "img"]
    assert images, "the report has no figures"
    for img in images:
        assert (img.get("alt") or "").strip(), f"<img> without alt text: {str(img)[:80]}"
    assert_code_hidden(text, tags)
    assert escape(spec["title"], quote=False) in text

    # The simulator's documented truth lies inside the headline estimator's 95% intervals.
    truth = simulate("extended_warranty_pilot", seed=spec["seed"]).truth
    estimator = results["primary"]["estimator"]
    for outcome in ("revenue_12m", "gross_profit_12m", "repurchase_12m", "revenue_3m"):
        r = find_result(results, outcome=outcome, estimator=estimator)
        assert r["conf_level"] == pytest.approx(0.95)
        assert r["conf_low"] <= truth[outcome] <= r["conf_high"], (outcome, truth[outcome], r)

    def width(r: dict[str, Any]) -> float:
        return r["conf_high"] - r["conf_low"]

    cuped = find_result(results, outcome="revenue_12m", estimator="cuped")
    dim = find_result(results, outcome="revenue_12m", estimator="difference_in_means")
    assert width(cuped) < width(dim)

    prov = results["provenance"]
    assert len(prov["data_fingerprint"]) == 64
    int(prov["data_fingerprint"], 16)
    assert prov["seed"] == spec["seed"]
    assert prov["packages"]["causal"]
    assert {"numpy", "pandas", "duckdb"} <= set(prov["packages"])


def test_same_spec_same_numbers(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    procs = causal_many(
        (["run", WARRANTY, "--out", a, "--no-report"], REPO_ROOT),
        (["run", WARRANTY, "--out", b, "--no-report"], REPO_ROOT),
    )
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    first, second = (json.loads((d / "extended_warranty_pilot" / "results.json").read_text())
                     for d in (a, b))
    assert listing(a / "extended_warranty_pilot") == ["results.json"]
    # The same spec, data and seed must give the same analysis table and the same numbers,
    # even when two runs share the machine.
    assert first["provenance"]["data_fingerprint"] == second["provenance"]["data_fingerprint"], (
        "the analysis table differs between two runs of the same spec")
    assert first["results"] == second["results"]
    assert first["value"] == second["value"]

    def stable(res: dict[str, Any]) -> dict[str, Any]:
        res = copy.deepcopy(res)
        for volatile in ("created_at", "timings_seconds"):
            res["provenance"].pop(volatile)
        return res

    assert stable(first) == stable(second)
    assert all(math.isfinite(r["estimate"]) for r in first["results"])


@pytest.mark.parametrize(
    ("spec", "name", "units"),
    [(LALONDE, "lalonde_nsw_experiment", 445), (WARRANTY, "extended_warranty_pilot", 40000)],
    ids=["lalonde", "warranty"],
)
def test_validate_bundled_specs(spec: str, name: str, units: int) -> None:
    before = listing(REPO_ROOT / "reports")
    proc = causal("validate", spec, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"valid ab_test spec {name!r}" in proc.stdout
    assert f"{units} units" in proc.stdout
    assert listing(REPO_ROOT / "reports") == before


def test_schema_is_json() -> None:
    proc = causal("schema", cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert "intervention" in schema["properties"]
    assert {"name", "design", "data", "outcomes"} <= set(schema["properties"])


def test_list_experiments() -> None:
    proc = causal("list", cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"extended_warranty_pilot", "lalonde_nsw_experiment"} <= names


def test_simulate_writes_the_silos(tmp_path: Path) -> None:
    out = tmp_path / "warranty"
    proc = causal("simulate", "extended_warranty_pilot", "--out", out,
                  "--param", "n_customers=2000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert listing(out) == ["crm.csv", "erp_orders.csv", "finance_margins.csv", "truth.json"]
    crm = pd.read_csv(out / "crm.csv")
    assert len(crm) == 2000
    assert crm["customer_id"].is_unique
    assert set(crm["treated"]) == {0, 1}
    assert len(pd.read_csv(out / "erp_orders.csv")) > 0
    truth = json.loads((out / "truth.json").read_text())
    assert {"revenue_12m", "gross_profit_12m", "repurchase_12m", "revenue_3m"} <= set(truth)
    assert truth["revenue_3m"] == 0.0


def test_simulate_unknown_parameter(tmp_path: Path) -> None:
    out = tmp_path / "warranty"
    proc = causal("simulate", "extended_warranty_pilot", "--out", out, "--param", "bogus=1",
                  cwd=tmp_path)
    assert_bad_input(proc, "'bogus'", out_dir=out)
