"""``causal track`` end to end: looks → append-only history → results.json → tracking report.

Layout under the reports folder: ``NAME/track/`` holds the history of looks (append-only,
:mod:`causal.track_history`); ``NAME/tracking/`` the tracking report (``results.json`` and
``index.html``, written atomically like every report).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causal.errors import DataError
from causal.results import ExperimentResults, Result
from causal.spec import Spec
from causal.track import TrackedPilot, summary_record, track_pilot

UNITS_FILE = "units_seen.parquet"


def run_track(
    spec: Spec, *, out: Path, as_of: date | None = None, render: bool = True
) -> tuple[ExperimentResults, Path, Any]:
    """Track the pilot, record the looks, write the tracking report.

    Returns the results, the report path and the history update (looks added, unchanged,
    revised).
    """
    from causal.report import resolve_notebook, write_report
    from causal.track_history import load_changes, record_looks

    history = out / spec.name / "track"
    known = _known_units(history)
    pilot = track_pilot(spec, as_of=as_of, known_units=known)
    update = record_looks(history, _history_rows(pilot))
    _remember_units(history, pilot.unit_ids, known=known)
    changes = load_changes(history)
    results = build_results(spec, pilot, changes=changes)
    notebook = resolve_notebook("tracking", design="ab_test", base_dir=spec.base_dir)
    path = write_report(results, out / spec.name / "tracking", notebook=notebook, render=render)
    return results, path, update


def tracking_results(results_path: str | Path, spec_path: str | Path) -> ExperimentResults:
    """The tracking notebook's input: the results.json when it exists, else the pilot tracked
    in memory (no history written), so the notebook runs from a fresh clone.

    Examples
    --------
    >>> res = tracking_results("no/such/results.json", "experiments/remote_support_tracking.yaml")
    >>> res.tracking["primary_metric"]
    'repair_cost'
    """
    from causal.results import load_results
    from causal.spec import load_spec

    if Path(results_path).is_file():
        return load_results(results_path)
    spec = load_spec(spec_path)
    return build_results(spec, track_pilot(spec), changes=pd.DataFrame())


def build_results(spec: Spec, pilot: TrackedPilot, *, changes: pd.DataFrame) -> ExperimentResults:
    """The last look of every ``sum`` metric as Results (interval = confidence sequence), the
    sample-ratio check of the last look, and every look in the ``tracking`` block."""
    from causal.checks import CheckResult
    from causal.pipeline import _experiment_block, _provenance

    settings = spec.tracking
    last = pilot.looks.groupby("metric", sort=False).tail(1)
    results = [
        _result(row, spec.alpha)
        for row in last.itertuples()
        if row.summary == "sum" and np.isfinite(row.estimate)
    ]
    if not any(r.outcome == settings.primary.name for r in results):
        raise DataError(
            f"tracking: the primary metric {settings.primary.name!r} has no estimate at the "
            "last look (fewer than 2 units in an arm?); track a later date"
        )
    results.sort(key=lambda r: r.outcome != settings.primary.name)  # primary first
    line = pilot.lines.iloc[-1]
    checks = [CheckResult("sample_ratio", line["srm_status"], line["srm_detail"])]
    block = summary_record(pilot)
    block["primary_metric"] = settings.primary.name
    block["planned_units"] = settings.planned_units
    block["changes"] = _json_changes(changes)
    experiment = _experiment_block(spec) | {"tracked_as_of": str(line["look_date"])}
    fingerprint = str(pd.util.hash_pandas_object(pilot.looks, index=False).sum())
    return ExperimentResults(
        experiment=experiment,
        results=tuple(results),
        primary={"outcome": settings.primary.name, "estimator": results[0].estimator},
        checks=tuple(checks),
        provenance=_provenance(spec, fingerprint, len(pilot.unit_ids), {}),
        tracking=block,
    )


def _result(row: Any, alpha: float) -> Result:
    return Result(
        estimator="sequential_difference_in_means",
        estimand="ATE (anytime-valid confidence sequence)",
        outcome=row.metric,
        estimate=float(row.estimate),
        std_error=float(row.std_error),
        conf_low=float(row.cs_low),
        conf_high=float(row.cs_high),
        p_value=float(row.p_value_anytime),
        n_units=int(row.n_control + row.n_treated),
        n_treated=int(row.n_treated),
        details={
            "fixed_conf_low": float(row.conf_low),
            "fixed_conf_high": float(row.conf_high),
            "fixed_p_value": float(row.p_value),
            "decision": row.decision,
            "look_date": str(row.look_date),
        },
        conf_level=1 - alpha,
    )


def _history_rows(pilot: TrackedPilot) -> pd.DataFrame:
    looks = pilot.looks.copy()
    looks["look_date"] = looks["look_date"].astype(str)
    return looks


def _json_changes(changes: pd.DataFrame) -> list[dict[str, Any]]:
    if changes is None or not len(changes):
        return []
    frame = changes.copy()
    for column in frame.columns:
        frame[column] = frame[column].astype(str)
    return frame.to_dict(orient="records")


def _known_units(history: Path) -> np.ndarray | None:
    """Unit ids seen by earlier runs (as text), or None on the first run."""
    seen = history / UNITS_FILE
    return pd.read_parquet(seen)["unit"].to_numpy().astype(str) if seen.is_file() else None


def _remember_units(history: Path, unit_ids: np.ndarray, *, known: np.ndarray | None) -> None:
    """The units seen so far, written only when new ones came (re-runs leave it untouched);
    ``known`` is what the file held, so it is not read twice."""
    ids = np.unique(np.asarray(unit_ids).astype(str))
    if known is not None and len(known) == len(ids):
        return
    history.mkdir(parents=True, exist_ok=True)
    seen = history / UNITS_FILE
    tmp = history / f".{UNITS_FILE}.tmp"  # a dot-file: the history ignores leftovers
    pd.DataFrame({"unit": ids}).to_parquet(tmp, index=False)
    tmp.replace(seen)
