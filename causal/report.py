"""Rendering: results.json → papermill runs the design's notebook → nbconvert HTML, atomically.

Everything is built in a temporary sibling folder and swapped in only once complete, so a failed
render never leaves a half-written report over a good one.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

from causal.errors import ReportError
from causal.results import ExperimentResults

KERNEL_NAME = "causal"
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"  # nbconvert template causal_report


def resolve_notebook(notebook: str | None, *, design: str, base_dir: Path) -> Path:
    """Find the notebook template: a bare name lives in ``notebooks/``, a path is spec-relative.

    Examples
    --------
    >>> resolve_notebook(None, design="ab_test", base_dir=Path(".")).name
    'ab_test.ipynb'
    """
    name = notebook or design
    if "/" in name or name.endswith(".ipynb"):
        path = (base_dir / name).resolve()
    else:
        path = NOTEBOOKS_DIR / f"{name}.ipynb"
    if not path.is_file():
        raise ReportError(f"report.notebook: notebook template not found: {path}")
    return path


def write_report(
    results: ExperimentResults, out_dir: str | Path, *, notebook: Path, render: bool = True
) -> Path:
    """Write ``results.json`` and, if ``render``, ``report.ipynb`` and ``index.html`` atomically.

    Parameters
    ----------
    results
        What ``causal run`` learned.
    out_dir
        The report folder (``reports/<name>`` by default); replaced only when complete.
    notebook
        The parameterised template to execute.
    render
        False writes results.json only.

    Returns
    -------
    Path
        ``index.html`` when rendered, else ``results.json``, inside ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        # The old results.json joins history/ inside staging: discarded with it on failure.
        from causal.history import archive_previous

        archive_previous(out_dir, staging, current=results)
        _keep_tracking(out_dir, staging)
        (staging / "results.json").write_text(results.to_json(), encoding="utf-8")
        _write_artifacts(results, staging, previous=out_dir)
        if render:
            _execute(notebook, staging)
            _to_html(staging / "report.ipynb", staging / "index.html")
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / ("index.html" if render else "results.json")


def _keep_tracking(out_dir: Path, staging: Path) -> None:
    """A tracked pilot's history (``track/``) and tracking report (``tracking/``) live inside
    its report folder: carried over, or a `causal run` would delete them."""
    from causal.track_history import carry_over

    carry_over(out_dir, staging)
    if (out_dir / "tracking").is_dir():
        shutil.copytree(out_dir / "tracking", staging / "tracking", dirs_exist_ok=True)


def _write_artifacts(results: ExperimentResults, staging: Path, *, previous: Path) -> None:
    """Write the run's files beside results.json; on a re-render keep the previous ones."""
    for name, frame in results.artifacts.items():
        if name.endswith(".parquet"):
            frame.to_parquet(staging / name, index=False)
        else:
            frame.to_csv(staging / name, index=False)
    for name in results.experiment.get("artifacts", ()):
        if name not in results.artifacts and (previous / name).is_file():
            shutil.copy2(previous / name, staging / name)


def render_existing(folder: str | Path) -> Path:
    """Re-render ``folder/index.html`` from ``folder/results.json`` (atomically).

    The notebook is the design's default template. Raises :class:`ReportError` when the folder
    has no results.json or it was written in another format version.
    """
    from causal.results import load_results

    folder = Path(folder)
    results_path = folder / "results.json"
    if not results_path.is_file():
        raise ReportError(
            f"{folder}: no results.json here; run `causal run experiments/NAME.yaml` to create "
            "the report folder first"
        )
    results = load_results(results_path)
    notebook = resolve_notebook(None, design=results.experiment["design"], base_dir=folder)
    return write_report(results, folder, notebook=notebook)


def ensure_kernel() -> str:
    """Make sure a Jupyter kernel named ``causal`` runs *this* Python; install it if not.

    papermill looks kernels up by name, and a kernel left by another environment would run the
    notebook against the wrong packages, so the kernel's interpreter is checked, not just its name.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    try:
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL_NAME, display_name="Python (causal)", prefix=sys.prefix)
    except Exception as exc:
        raise ReportError(
            f"no Jupyter kernel {KERNEL_NAME!r} for {sys.executable} and it could not be "
            f"installed ({exc}); run `make install` or `python -m ipykernel install --sys-prefix "
            f"--name {KERNEL_NAME}`"
        ) from None
    return KERNEL_NAME


def _ipc_kernel_manager():
    """A kernel manager on local IPC sockets rather than TCP.

    The kernel runs on this machine only; over TCP, ipykernel >= 7 warns on every run that the
    channel is unencrypted, which is noise in a command-line tool.
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"

    return IPCKernelManager


def _execute(notebook: Path, folder: Path) -> None:
    import papermill as pm

    kernel = ensure_kernel()
    show_progress = sys.stderr.isatty() and not os.environ.get("CI")
    try:
        pm.execute_notebook(
            str(notebook),
            str(folder / "report.ipynb"),
            parameters={"results_path": "results.json"},
            kernel_name=kernel,
            cwd=str(folder),
            progress_bar=show_progress,
            log_output=False,
            report_mode=False,
            kernel_manager_class=_ipc_kernel_manager(),
            # The staging copy is written once at the end: saving it after every cell (the
            # default) rewrites every embedded PNG each time and costs seconds per report.
            request_save_on_cell_execute=False,
        )
    except pm.PapermillExecutionError as exc:
        raise ReportError(
            f"the report notebook {notebook.name} failed in cell {exc.exec_count}: "
            f"{exc.ename}: {exc.evalue}; the previous report was kept"
        ) from None


def _to_html(executed: Path, target: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    # Cells meant for people running the notebook in JupyterLab (how-to text) stay out of reports.
    config.TagRemovePreprocessor.remove_cell_tags = {"remove-in-report"}
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        template_name="causal_report", extra_template_basedirs=[str(TEMPLATES_DIR)], config=config
    )
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    target.write_text(body, encoding="utf-8")


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging`` with two renames; the old folder goes last."""
    backup = None
    if out_dir.exists():
        backup = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, backup)
    try:
        os.replace(staging, out_dir)
    except OSError:
        if backup is not None:
            os.replace(backup, out_dir)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
