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
