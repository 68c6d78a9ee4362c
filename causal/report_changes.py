"""The report's "What changed since the last run" section, drawn from results.json and history/.

The previous run is the newest file in the ``history/`` folder next to ``results.json`` (see
:mod:`causal.history`, which also defines when an estimate "moved").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from causal.errors import ReportError
from causal.history import (
    MOVED_IN_SE,
    Changes,
    EstimateChange,
    compare,
    history_files,
    latest_previous,
)
from causal.narrative import percent
from causal.report_html import _table, badge
from causal.results import load_results


def changes_html(results_path: str | Path) -> str:
    """HTML saying what changed since the previous run of the same experiment.

    Parameters
    ----------
    results_path
        The report's ``results.json``; the previous run is read from ``history/`` beside it.

    Returns
    -------
    str
        "First run of this experiment." without history; otherwise a sentence on the data, the
        spec and the estimates, a table of the estimates that moved and a table of the checks
        whose status changed (each left out, and said so, when empty).

    Examples
    --------
    >>> import tempfile
    >>> from causal.results import ExperimentResults
    >>> folder = Path(tempfile.mkdtemp())
    >>> res = ExperimentResults(experiment={}, results=(), primary={})
    >>> _ = (folder / "results.json").write_text(res.to_json())
    >>> "First run of this experiment." in changes_html(folder / "results.json")
    True
    """
    results_path = Path(results_path)
    if not results_path.is_file():
        return _div("<p>No saved run of this experiment yet, so nothing to compare with.</p>")
    current = load_results(results_path)
    try:
        previous = latest_previous(results_path.parent)
    except (ReportError, OSError, ValueError, KeyError, TypeError) as exc:
        # An unreadable or older-format history file must not break the whole report.
        newest = history_files(results_path.parent)[-1].name
        return _div(
            f"<p>The previous run ({escape(newest)}) cannot be compared with this one: "
            f"{escape(str(exc))}</p>"
        )
    if previous is None:
        return _div("<p>First run of this experiment.</p>")
    return render_changes(compare(previous, current))


def render_changes(changes: Changes) -> str:
    """The section for an already computed :class:`~causal.history.Changes`.

    Examples
    --------
    >>> from causal.history import compare
    >>> from causal.results import ExperimentResults
    >>> res = ExperimentResults(experiment={}, results=(), primary={},
    ...                         provenance={"created_at": "2026-11-20T14:03:05+00:00"})
    >>> "2026-11-20 14:03 UTC: data unchanged" in render_changes(compare(res, res))
    True
    """
    when = _when(changes.previous_created_at)
    if changes.data_changed:
        data = (
            f"data changed (fingerprint {escape(changes.fingerprint_before or 'none')} → "
            f"{escape(changes.fingerprint_after or 'none')})"
        )
    else:
        data = "data unchanged"
    spec = "spec changed" if changes.spec_changed else "spec unchanged"
    moved, small = changes.moved, changes.small
    counts = [_plural(len(moved), "estimate moved", "estimates moved")]
    if small:
        counts.append(
            f"{len(small)} changed by less than {MOVED_IN_SE:g} standard errors (not counted)"
        )
    n_checks = len(changes.checks)
    counts.append(_plural(n_checks, "check changed status", "checks changed status"))
    parts = [
        f"<p>Compared with the run of {escape(when)}: {data}; {spec}; {'; '.join(counts)}.</p>"
    ]
    if changes.nothing_changed:
        parts.append(
            "<p><strong>Nothing changed:</strong> same data, same spec, every estimate and "
            "every check status as before.</p>"
        )
    for keys, label in ((changes.added, "New estimates"), (changes.removed, "No longer estimated")):
        if keys:
            listed = ", ".join(f"{escape(e)} on {escape(o)}" for o, e in keys)
            parts.append(f"<p>{label}: {listed}.</p>")
    html = _div("".join(parts))
    if moved:
        rows = [_moved_row(e) for e in moved]
        html += _table(["Outcome", "Estimator", "Before", "After", "Change", "Change in SEs"], rows)
        html += _div(
            f'<p class="small">Moved: changed by more than {MOVED_IN_SE:g} of the new standard '
            "error (or changed at all when there is no standard error); differences in the "
            "last digits only count as unchanged.</p>"
        )
    elif changes.estimates and not changes.nothing_changed:
        html += _div(f"<p>No estimate moved by more than {MOVED_IN_SE:g} standard errors.</p>")
    if changes.checks:
        rows = [[escape(c.name), _status(c.before), _status(c.after)] for c in changes.checks]
        html += _table(["Check", "Before", "Now"], rows, raw=True)
    return html


def _moved_row(e: EstimateChange) -> list[str]:
    if e.estimator == "relative_lift":
        value, change = (lambda x: percent(x, 2)), (lambda x: _signed(100 * x, " pp"))
    else:
        value, change = _num, _signed
    z = e.in_std_errors
    return [
        e.outcome,
        e.estimator,
        value(e.before),
        value(e.after),
        change(e.difference),
        f"{z:.2f}" if math.isfinite(z) else "n/a",
    ]


def _status(status: str | None) -> str:
    return badge(status) if status is not None else "not run"


def _num(x: float) -> str:
    return f"{x:,.4g}" if math.isfinite(x) else "n/a"


def _signed(x: float, unit: str = "") -> str:
    # No "+" on gains: the report's tables right-align plain numbers only.
    return f"{x:,.4g}{unit}" if math.isfinite(x) else "n/a"


def _plural(n: int, one: str, many: str) -> str:
    return f"1 {one}" if n == 1 else f"{n} {many}"


def _when(created_at: str | None) -> str:
    """``2026-11-20T14:03:05+00:00`` → ``2026-11-20 14:03 UTC`` (raw text if unparsable)."""
    if not created_at:
        return "an unknown date"
    try:
        when = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return created_at
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _div(inner: str) -> str:
    return f'<div class="causal">{inner}</div>'
