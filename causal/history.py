"""Report history: earlier ``results.json`` files kept next to a report, and what changed since.

Every ``causal run`` into an existing report folder first copies the folder's ``history/`` and
its old ``results.json`` into the new (staging) folder, so the history is append-only: files are
added, never rewritten, and a failed render leaves the previous folder untouched.

An archived file is named ``results-<created_at as YYYYMMDDTHHMMSSZ>-<first 8 of the data
fingerprint>.json`` (``-2``, ``-3``, … appended when that name is taken).

When an estimate "moved"
------------------------
For each (outcome, estimator) present in both runs, with ``Δ = after - before`` and ``SE`` the
new run's standard error:

* ``unchanged`` when ``|Δ| <= 1e-9 · max(|before|, |after|, SE)``: equal up to floating-point
  noise (both missing counts as unchanged too);
* ``moved`` when ``|Δ| > 0.1 · SE``, or, when the new SE is missing, zero or infinite, as soon
  as the estimate is not unchanged; an estimate that appears or disappears (NaN on one side)
  has moved;
* ``small`` otherwise: changed, but by less than a tenth of a standard error, i.e. far less
  than the estimate's own noise.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from causal.results import ExperimentResults, Result, load_results

HISTORY_DIR = "history"
MOVED_IN_SE = 0.1
"""An estimate moved when it changed by more than this many (new) standard errors."""
SAME_RELATIVE = 1e-9
"""Changes within this relative tolerance are floating-point noise: unchanged."""
SHORT_HASH = 12

_NAME = re.compile(r"^results-(?P<stamp>\d{8}T\d{6}Z)-(?P<fp>[^-.]+)(?:-(?P<n>\d+))?\.json$")

EstimateStatus = Literal["unchanged", "small", "moved"]


@dataclass(frozen=True)
class EstimateChange:
    """One (outcome, estimator) in both runs: before, after and how far it went."""

    outcome: str
    estimator: str
    before: float
    after: float
    std_error: float
    status: EstimateStatus

    @property
    def difference(self) -> float:
        """``after - before`` (NaN when either is missing)."""
        return self.after - self.before

    @property
    def in_std_errors(self) -> float:
        """The difference in units of the new standard error; NaN when that SE is unusable."""
        se = self.std_error
        if not (math.isfinite(se) and se > 0 and math.isfinite(self.difference)):
            return math.nan
        return self.difference / se

    @property
    def moved(self) -> bool:
        return self.status == "moved"


@dataclass(frozen=True)
class CheckChange:
    """A design check whose status differs; ``None`` when the check did not run on that side."""

    name: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Changes:
    """What changed between two runs of the same experiment (see the module for "moved")."""

    previous_created_at: str | None
    estimates: tuple[EstimateChange, ...]
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    checks: tuple[CheckChange, ...]
    fingerprint_before: str
    fingerprint_after: str
    data_changed: bool
    spec_hash_before: str
    spec_hash_after: str
    spec_changed: bool

    @property
    def moved(self) -> tuple[EstimateChange, ...]:
        """Estimates that moved by more than the noise threshold."""
        return tuple(e for e in self.estimates if e.status == "moved")

    @property
    def small(self) -> tuple[EstimateChange, ...]:
        """Estimates that changed by less than a tenth of a standard error."""
        return tuple(e for e in self.estimates if e.status == "small")

    @property
    def nothing_changed(self) -> bool:
        """Same data, same spec, no estimate changed, none added or removed, same check statuses."""
        return not (
            self.data_changed
            or self.spec_changed
            or self.added
            or self.removed
            or self.checks
            or any(e.status != "unchanged" for e in self.estimates)
        )


def estimate_status(before: float, after: float, std_error: float) -> EstimateStatus:
    """Classify a change of an estimate as ``unchanged``, ``small`` or ``moved``.

    Examples
    --------
    >>> estimate_status(2.0, 2.0 + 1e-13, 1.0), estimate_status(2.0, 2.05, 1.0)
    ('unchanged', 'small')
    >>> estimate_status(2.0, 2.5, 1.0), estimate_status(2.0, 2.5, float("nan"))
    ('moved', 'moved')
    """
    before, after = _float(before), _float(after)
    if math.isnan(before) or math.isnan(after):
        return "unchanged" if math.isnan(before) and math.isnan(after) else "moved"
    if before == after:
        return "unchanged"
    delta = abs(after - before)
    se = std_error if math.isfinite(std_error) and std_error > 0 else 0.0
    if delta <= SAME_RELATIVE * max(abs(before), abs(after), se):
        return "unchanged"
    if se == 0.0 or delta > MOVED_IN_SE * se:
        return "moved"
    return "small"


def compare(previous: ExperimentResults, current: ExperimentResults) -> Changes:
    """What changed from ``previous`` to ``current``: estimates, check statuses, data and spec.

    Parameters
    ----------
    previous
        The earlier run (e.g. from :func:`latest_previous`).
    current
        The run being reported.

    Returns
    -------
    Changes
        Every (outcome, estimator) in both runs with its status, the ones added and removed,
        checks whose status changed, and whether the data fingerprint and spec hash changed.

    Examples
    --------
    >>> old = ExperimentResults(
    ...     experiment={"spec_hash": "aa"}, primary={}, provenance={"data_fingerprint": "f1"},
    ...     results=(Result("dim", "ATE", "y", 2.0, 1.0, 0.0, 4.0, 0.05, 100, 50),))
    >>> new = ExperimentResults(
    ...     experiment={"spec_hash": "aa"}, primary={}, provenance={"data_fingerprint": "f2"},
    ...     results=(Result("dim", "ATE", "y", 2.5, 1.0, 0.5, 4.5, 0.01, 100, 50),))
    >>> ch = compare(old, new)
    >>> ch.data_changed, ch.spec_changed, [(e.estimator, e.in_std_errors) for e in ch.moved]
    (True, False, [('dim', 0.5)])
    """
    before = _by_key(previous.results)
    after = _by_key(current.results)
    estimates = tuple(
        EstimateChange(
            outcome=key[0],
            estimator=key[1],
            before=_float(before[key].estimate),
            after=_float(r.estimate),
            std_error=_float(r.std_error),
            status=estimate_status(before[key].estimate, r.estimate, r.std_error),
        )
        for key, r in after.items()
        if key in before
    )
    old_fp = str(previous.provenance.get("data_fingerprint") or "")
    new_fp = str(current.provenance.get("data_fingerprint") or "")
    old_spec = str(previous.experiment.get("spec_hash") or "")
    new_spec = str(current.experiment.get("spec_hash") or "")
    return Changes(
        previous_created_at=previous.provenance.get("created_at"),
        estimates=estimates,
        added=tuple(key for key in after if key not in before),
        removed=tuple(key for key in before if key not in after),
        checks=_check_changes(previous, current),
        fingerprint_before=old_fp[:SHORT_HASH],
        fingerprint_after=new_fp[:SHORT_HASH],
        data_changed=old_fp != new_fp,
        spec_hash_before=old_spec[:SHORT_HASH],
        spec_hash_after=new_spec[:SHORT_HASH],
        spec_changed=old_spec != new_spec,
    )


def archive_previous(
    out_dir: Path, staging: Path, *, current: ExperimentResults | None = None
) -> Path | None:
    """Carry ``out_dir``'s history and its old ``results.json`` into ``staging/history/``.

    Nothing in ``out_dir`` is touched: files are copied, byte for byte, so if the new report
    fails, discarding ``staging`` leaves the previous folder and its history as they were.

    Parameters
    ----------
    out_dir
        The report folder as it is now (it may not exist yet).
    staging
        The folder the new report is being built in.
    current
        The results about to be written, if known. When the old ``results.json`` holds exactly
        these (a re-render of the same run), only the history is carried over: the run is not
        archived as its own predecessor.

    Returns
    -------
    Path or None
        The archived copy of the previous ``results.json`` inside ``staging/history/`` (it
        becomes ``out_dir/history/<same name>`` once staging is swapped in), or None when
        ``out_dir`` had no ``results.json`` or it was the same run as ``current``.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "report").mkdir(); (root / "staging").mkdir()
    >>> _ = (root / "report" / "results.json").write_text(json.dumps({"provenance": {
    ...     "created_at": "2026-11-20T14:03:05+00:00", "data_fingerprint": "be9fa4e36eab"}}))
    >>> archive_previous(root / "report", root / "staging").name
    'results-20261120T140305Z-be9fa4e3.json'
    >>> archive_previous(root / "nothing_here", root / "staging") is None
    True
    """
    out_dir, staging = Path(out_dir), Path(staging)
    target_dir = staging / HISTORY_DIR
    old_history = out_dir / HISTORY_DIR
    # The history is carried over whenever there is one, so a swap can never drop it.
    if old_history.is_dir():
        for path in sorted(old_history.iterdir()):
            if path.is_file():
                target_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target_dir / path.name)
    old = out_dir / "results.json"
    if not old.is_file() or (current is not None and _same_run(old, current)):
        return None
    target_dir.mkdir(parents=True, exist_ok=True)
    stem = _archive_stem(old)
    target = target_dir / f"{stem}.json"
    counter = 2
    while target.exists():
        target = target_dir / f"{stem}-{counter}.json"
        counter += 1
    shutil.copy2(old, target)
    return target


def history_files(report_dir: str | Path) -> list[Path]:
    """The archived results in ``report_dir/history/``, oldest first.

    Ordered by the run time in the name, then the counter, then modification time, so that
    the last one is the run most recently archived.

    Examples
    --------
    >>> import tempfile
    >>> history_files(tempfile.mkdtemp())
    []
    """
    folder = Path(report_dir) / HISTORY_DIR
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("results-*.json") if p.is_file()]
    return sorted(files, key=_order)


def latest_previous(report_dir: str | Path) -> ExperimentResults | None:
    """The newest archived run in ``report_dir/history/``, or None when there is none.

    Examples
    --------
    >>> import tempfile
    >>> latest_previous(tempfile.mkdtemp()) is None
    True
    """
    files = history_files(report_dir)
    return load_results(files[-1]) if files else None


def _same_run(results_json: Path, current: ExperimentResults) -> bool:
    try:
        return json.loads(results_json.read_text(encoding="utf-8")) == json.loads(current.to_json())
    except (OSError, ValueError):
        return False


def _archive_stem(results_json: Path) -> str:
    """``results-<YYYYMMDDTHHMMSSZ>-<fingerprint[:8]>`` from the file's provenance."""
    try:
        provenance = json.loads(results_json.read_text(encoding="utf-8")).get("provenance") or {}
    except (OSError, ValueError, AttributeError):
        provenance = {}
    when = _parse_time(provenance.get("created_at"))
    if when is None:
        when = datetime.fromtimestamp(results_json.stat().st_mtime, tz=UTC)
    fingerprint = re.sub(r"[^0-9A-Za-z]", "", str(provenance.get("data_fingerprint") or ""))
    return f"results-{when.strftime('%Y%m%dT%H%M%SZ')}-{fingerprint[:8] or 'unknown'}"


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _order(path: Path) -> tuple[str, int, int, str]:
    match = _NAME.match(path.name)
    stamp = match["stamp"] if match else ""
    counter = int(match["n"]) if match and match["n"] else 1
    return stamp, counter, path.stat().st_mtime_ns, path.name


def _by_key(results: tuple[Result, ...]) -> dict[tuple[str, str], Result]:
    keyed: dict[tuple[str, str], Result] = {}
    for r in results:
        keyed.setdefault((r.outcome, r.estimator), r)
    return keyed


def _check_changes(
    previous: ExperimentResults, current: ExperimentResults
) -> tuple[CheckChange, ...]:
    def statuses(res: ExperimentResults) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for c in res.checks:
            out.setdefault(c.name, c.status)
        return out

    old, new = statuses(previous), statuses(current)
    names = list(new) + [n for n in old if n not in new]
    return tuple(
        CheckChange(name, old.get(name), new.get(name))
        for name in names
        if old.get(name) != new.get(name)
    )


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)
