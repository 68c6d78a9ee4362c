"""Every report notebook runs top to bottom with its default parameters, as a user opening it
in JupyterLab would (from a fresh clone: no report exists, so the example spec is analysed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from causal.report import _ipc_kernel_manager, ensure_kernel

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_its_defaults(notebook, tmp_path):
    import papermill as pm

    executed = pm.execute_notebook(
        str(notebook),
        str(tmp_path / notebook.name),
        kernel_name=ensure_kernel(),
        cwd=str(notebook.parent),
        progress_bar=False,
        kernel_manager_class=_ipc_kernel_manager(),
    )
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = sum(
        "image/png" in o.get("data", {}) or "<img alt=" in str(o.get("data", {}))
        for c in executed.cells
        for o in c.get("outputs", [])
    )
    assert images >= 2


def test_uplift_report_renders_from_a_results_json(tmp_path):
    """The uplift template on a results.json (no run): every section, plot and alt text."""
    import re

    import nbformat
    from test_uplift_report import uplift_results

    from causal.report import resolve_notebook, write_report

    res = uplift_results()
    notebook = resolve_notebook(None, design="uplift", base_dir=tmp_path)
    html = write_report(res, tmp_path / "tiny_targeting", notebook=notebook).read_text()
    executed = nbformat.read(tmp_path / "tiny_targeting" / "report.ipynb", as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    for heading in (
        "Design checks",
        "What changed since the last run",
        "Learners compared on held-out customers",
        "Uplift by decile for the policy learner",
        "The policy in money",
        "Who is targeted",
        "The scored file",
        "Methods and assumptions",
        "Reproduce",
    ):
        assert f">{heading}<" in html, heading
    assert 'id="headline-net-value"' in html and "headline-effect" not in html
    images = re.findall(r"<img alt=\"([^\"]*)\"", html)
    assert len(images) == 5 and all(alt.strip() for alt in images)
    assert "This notebook draws a report" not in html  # the remove-in-report cell
