"""Append-only history of a tracked pilot: one Parquet file per look date, revisions flagged.

``causal track SPEC`` computes, every day and for every look date so far, one row per metric
(arm statistics, estimate, CIs, confidence-sequence bounds, SRM p-value, decision, data
fingerprint). :func:`record_looks` files them under ``reports/<name>/track/``::

    look=2026-03-15.parquet                  rows first seen for that date (revision 0)
    revisions/look=2026-03-15.rev=1.parquet  rows after the data for that date changed
    changes/look=2026-03-15.rev=1.parquet    what moved: key, revision, field, old, new

Files rather than one file rewritten daily: a file, once written, is never opened for writing
again, so a bug or crash today cannot damage yesterday's looks, and "nothing changed" is simply
"no file written". DuckDB reads revision 0 with ``read_parquet('track/look=*.parquet')``.

Rows equal to the date's latest revision are not written. Values are compared, not bytes (the
``ignore`` columns such as ``computed_at`` left out, floats exactly, NaN equal to NaN), so a
pyarrow upgrade that encodes the same values differently writes nothing either. A changed
date gets revision n + 1 and its change record; the revision file is written last and is the
commit point (an orphan change record from a crash in between is ignored, then replaced).
Each write is a fsynced temporary dot-file in the same folder, then ``os.replace``; bytes are
deterministic (fixed pyarrow settings, no pandas metadata, rows sorted by the key).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from causal.errors import DataError

TRACK_DIR = "track"
REVISIONS_DIR = "revisions"
CHANGES_DIR = "changes"
ABSENT = "(absent)"
"""``old``/``new`` of a field (or of a whole row, field ``(row)``) missing on that side."""
ROW = "(row)"
SIDE_FILES = ("units_seen.parquet",)
"""Files other modules keep beside the looks (``causal.track_report``); not read here."""
_BASE = re.compile(r"^look=(\d{4}-\d{2}-\d{2})\.parquet$")
_REV = re.compile(r"^look=(\d{4}-\d{2}-\d{2})\.rev=([1-9]\d*)\.parquet$")
_RESERVED = ("revision", "revised")
_MARK, _KEY = b"causal.track", b"causal.track.key"
# Fixed writer settings: the same rows give the same bytes (for one pyarrow version).
_PARQUET: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "version": "2.6",
    "write_statistics": True,
    "data_page_version": "1.0",
    "write_page_index": False,
}
_MISSING = object()


def _change_columns(key: tuple[str, ...]) -> list[str]:
    return [*key, "revision", "field", "old", "new"]


@dataclass(frozen=True)
class HistoryUpdate:
    """What :func:`record_looks` did, per look date, and the fields that moved."""

    added: tuple[date, ...]
    unchanged: tuple[date, ...]
    revised: tuple[date, ...]
    changes: pd.DataFrame = field(repr=False)
    """Key columns, ``revision``, ``field``, ``old``, ``new`` (values as exact text)."""
    written: tuple[Path, ...] = ()

    @property
    def wrote_nothing(self) -> bool:
        return not self.written


def record_looks(
    folder: str | Path,
    looks: pd.DataFrame,
    *,
    key: Sequence[str] = ("look_date", "metric"),
    ignore: Sequence[str] = ("computed_at",),
) -> HistoryUpdate:
    """File the rows of each look date: new dates added, equal ones skipped, changed ones revised.

    Parameters
    ----------
    folder
        The track folder (``reports/<name>/track``); created when needed.
    looks
        One row per look date and metric; any further columns are stored as they are. Dates
        not in ``looks`` are left alone, so passing only today's rows is fine.
    key
        Columns identifying a row; the first is the look date (dates, no time of day).
    ignore
        Columns stored but not compared (a timestamp of the computation).

    Returns
    -------
    HistoryUpdate

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "track"
    >>> rows = pd.DataFrame({"look_date": ["2026-03-15", "2026-03-16"], "metric": "revenue",
    ...                      "estimate": [1.5, float("nan")]})
    >>> [p.name for p in record_looks(folder, rows).written]
    ['look=2026-03-15.parquet', 'look=2026-03-16.parquet']
    >>> record_looks(folder, rows).wrote_nothing
    True
    >>> up = record_looks(folder, rows.assign(estimate=[1.75, float("nan")]))
    >>> [str(d) for d in up.revised], up.changes[["field", "old", "new"]].values.tolist()
    (['2026-03-15'], [['estimate', '1.5', '1.75']])
    """
    folder, key = Path(folder), tuple(key)
    frame = _prepare(looks, key)
    stored, _ = _scan(folder)
    if stored:  # one key per folder: rows filed under another key could not be compared
        day, revs = max(stored.items())
        _parse(revs[max(revs)].read_bytes(), revs[max(revs)], kind=b"look", day=day, key=key)
    added, unchanged, revised = [], [], []  # look dates
    written: list[Path] = []
    changes: list[pd.DataFrame] = []
    for day, rows in frame.groupby(key[0], sort=True):
        revs = stored.get(day)
        if not revs:
            path = folder / _name(day, 0)
            _atomic_write(path, _look_bytes(rows, key, 0))
            added.append(day)
            written.append(path)
            continue
        latest = max(revs)
        candidate = _look_bytes(rows, key, latest)
        old_bytes = revs[latest].read_bytes()
        if old_bytes == candidate:  # the common daily case: decided without parsing
            unchanged.append(day)
            continue
        old = _parse(old_bytes, revs[latest], kind=b"look", key=key, day=day, revision=latest)
        new = pq.read_table(pa.BufferReader(candidate)).to_pandas()  # same round trip as old
        diff = _diff(old, new, key, ignore=(*ignore, "revision"), revision=latest + 1)
        if diff.empty:
            unchanged.append(day)
            continue
        # Change record first, revision second: the revision file commits both.
        note = folder / CHANGES_DIR / _name(day, latest + 1)
        _atomic_write(note, _table_bytes(diff, key, kind=b"changes"))
        path = folder / REVISIONS_DIR / _name(day, latest + 1)
        _atomic_write(path, _look_bytes(rows, key, latest + 1))
        revised.append(day)
        written += [note, path]
        diff.attrs["key"] = key
        changes.append(diff)
    table = _combine(changes, folder, empty=_change_columns(key))
    return HistoryUpdate(tuple(added), tuple(unchanged), tuple(revised), table, tuple(written))


def load_history(folder: str | Path, *, all_revisions: bool = False) -> pd.DataFrame:
    """The latest revision of every look (or every revision), sorted by key and revision.

    The stored rows plus a ``revised`` flag: True when the look date has more than one
    revision. ``look_date`` comes back as datetime64.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> rows = pd.DataFrame({"look_date": ["2026-03-15"], "metric": ["revenue"], "n": [10]})
    >>> _ = record_looks(folder, rows); _ = record_looks(folder, rows.assign(n=11))
    >>> load_history(folder)[["metric", "n", "revision", "revised"]].values.tolist()
    [['revenue', 11, 1, True]]
    >>> len(load_history(folder, all_revisions=True))
    2
    """
    stored, _ = _scan(Path(folder))
    files = [
        (day, rev, revs[rev], len(revs) > 1)
        for day, revs in sorted(stored.items())
        for rev in (sorted(revs) if all_revisions else [max(revs)])
    ]
    frames = [
        _parse(path.read_bytes(), path, kind=b"look", day=day, revision=rev).assign(revised=many)
        for day, rev, path, many in files
    ]
    return _combine(frames, folder, empty=["look_date", "revision", "revised"])


def load_changes(folder: str | Path) -> pd.DataFrame:
    """Every recorded change: key, ``revision``, ``field``, ``old``, ``new``, sorted.

    A change record whose revision file is missing (a crash between the two writes) is ignored.

    Examples
    --------
    >>> import tempfile
    >>> load_changes(tempfile.mkdtemp()).columns.tolist()
    ['look_date', 'metric', 'revision', 'field', 'old', 'new']
    """
    stored, notes = _scan(Path(folder))
    frames = [
        _parse(path.read_bytes(), path, kind=b"changes", day=day, revision=rev)
        for (day, rev), path in sorted(notes.items())
        if rev in stored.get(day, {})
    ]
    return _combine(frames, folder, empty=_change_columns(("look_date", "metric")))


def carry_over(report_dir: str | Path, staging: str | Path) -> Path | None:
    """Copy ``report_dir/track`` into ``staging/track`` byte for byte (temp files left out).

    ``write_report`` swaps a whole report folder for its staging copy: without this the
    history of a tracked pilot would vanish at the next ``causal run``.

    Examples
    --------
    >>> import tempfile
    >>> carry_over(tempfile.mkdtemp(), tempfile.mkdtemp()) is None
    True
    """
    source = Path(report_dir) / TRACK_DIR
    if not source.is_dir():
        return None
    target = Path(staging) / TRACK_DIR
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
    return target


# --- internals ------------------------------------------------------------------------------


def _prepare(looks: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(looks, pd.DataFrame):
        raise DataError(f"looks: expected a pandas DataFrame, got {type(looks).__name__}")
    missing = [c for c in key if c not in looks.columns]
    if missing:
        raise DataError(f"looks: key column(s) {missing} missing; columns are {list(looks)}")
    taken = [c for c in _RESERVED if c in looks.columns]
    if taken:
        raise DataError(f"looks: column(s) {taken} are reserved for the history; rename them")
    frame = looks.reset_index(drop=True).copy()
    try:
        when = pd.to_datetime(frame[key[0]])
    except (ValueError, TypeError) as exc:
        raise DataError(f"looks: {key[0]!r} cannot be read as dates ({exc})") from None
    if when.isna().any() or (when != when.dt.normalize()).any():
        raise DataError(f"looks: {key[0]!r} must be dates, without missing values or times")
    frame[key[0]] = when.dt.date
    if frame[list(key)].isna().any().any():
        raise DataError(f"looks: key columns {list(key)} have missing values")
    dup = frame.duplicated(list(key))
    if dup.any():
        first = tuple(frame.loc[dup.idxmax(), list(key)])
        raise DataError(f"looks: {int(dup.sum())} duplicate rows for key {key} (first: {first})")
    return frame


def _name(day: date, revision: int) -> str:
    return f"look={day}.parquet" if revision == 0 else f"look={day}.rev={revision}.parquet"


def _look_bytes(rows: pd.DataFrame, key: tuple[str, ...], revision: int) -> bytes:
    # Rows sorted by the key, so their order in the caller's frame does not change the bytes.
    rows = rows.sort_values(list(key), kind="stable").assign(revision=revision)
    columns = [*key, "revision", *(c for c in rows.columns if c not in (*key, "revision"))]
    return _table_bytes(rows[columns], key, kind=b"look")


def _table_bytes(frame: pd.DataFrame, key: tuple[str, ...], *, kind: bytes) -> bytes:
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DataError(
            f"looks: cannot be stored as Parquet ({exc}); use one type per column"
        ) from None
    # Our metadata only: pandas' own block names the pandas version, which would change bytes.
    table = table.replace_schema_metadata({_MARK: kind, _KEY: json.dumps(list(key)).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_PARQUET)
    return sink.getvalue().to_pybytes()


def _parse(
    data: bytes, path: Path, *, kind: bytes, day: date, revision: int | None = None, key: Any = None
) -> pd.DataFrame:
    """Read one history file, checking it is ours and holds what its name says."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({exc}); restore it from a backup or move it "
            "out of the track folder"
        ) from None
    meta = table.schema.metadata or {}
    if meta.get(_MARK) != kind or _KEY not in meta:
        raise DataError(f"{path}: not a track-history file of this toolkit; move it elsewhere")
    stored_key = tuple(json.loads(meta[_KEY]))
    if key is not None and stored_key != key:
        raise DataError(f"{path}: written with key {stored_key}, not {key}; use the same key")
    frame = table.to_pandas()
    dates = set(frame[stored_key[0]]) if stored_key[0] in frame else set()
    revs = set(frame.get("revision", ()))
    if dates != {day} or (revision is not None and revs != {revision}):
        raise DataError(f"{path}: its rows are not look {day}, revision {revision} as named")
    frame.attrs["key"] = stored_key
    return frame


def _scan(folder: Path) -> tuple[dict[date, dict[int, Path]], dict[tuple[date, int], Path]]:
    """The files on disk by look date and revision; anything else in the folder is an error."""
    looks: dict[date, dict[int, Path]] = {}
    notes: dict[tuple[date, int], Path] = {}
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: expected the track history folder, found a file")
    subs = ((folder, _BASE, looks), (folder / REVISIONS_DIR, _REV, looks))
    for sub, pattern, target in (*subs, (folder / CHANGES_DIR, _REV, notes)):
        for entry in sorted(sub.iterdir()) if sub.is_dir() else ():
            # Dot-files are our temporary files (or the OS's); the two sub-folders are ours.
            top = sub == folder and entry.name in (*_SUBDIRS, *SIDE_FILES)
            if entry.name.startswith(".") or top:
                continue
            match = pattern.match(entry.name)
            try:
                day = date.fromisoformat(match[1]) if match and entry.is_file() else None
            except ValueError:
                day = None
            if day is None:
                raise DataError(
                    f"{entry}: unexpected in the track history (expected {pattern.pattern}); "
                    "move it out of the folder"
                )
            rev = int(match[2]) if pattern is _REV else 0
            if target is notes:
                notes[(day, rev)] = entry
            else:
                looks.setdefault(day, {})[rev] = entry
    for day, revs in looks.items():
        gap = sorted(set(range(max(revs) + 1)) - set(revs))
        if gap:
            raise DataError(
                f"{folder}: revision {gap[0]} of look {day} is missing ({_name(day, gap[0])}); "
                "the history was edited, restore the file from a backup"
            )
    return looks, notes


_SUBDIRS = (REVISIONS_DIR, CHANGES_DIR)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _diff(
    old: pd.DataFrame, new: pd.DataFrame, key: tuple[str, ...], *, ignore: Any, revision: int
) -> pd.DataFrame:
    """One row per (key, field) whose value differs; whole rows added or dropped as ``(row)``."""
    skip = {*key, *ignore}
    fields_ = [c for c in dict.fromkeys([*old.columns, *new.columns]) if c not in skip]
    before = {tuple(r[k] for k in key): r for r in old.to_dict("records")}
    after = {tuple(r[k] for k in key): r for r in new.to_dict("records")}
    out = []
    for k in [*after, *(k for k in before if k not in after)]:
        if k not in before or k not in after:
            moved = [
                (ROW, "present" if k in before else ABSENT, "present" if k in after else ABSENT)
            ]
        else:
            a, b = before[k], after[k]
            moved = [
                (f, _text(a.get(f, _MISSING)), _text(b.get(f, _MISSING)))
                for f in fields_
                if not _same(a.get(f, _MISSING), b.get(f, _MISSING))
            ]
        out += [(*k, revision, *m) for m in moved]
    return pd.DataFrame(out, columns=_change_columns(key))


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    na_a, na_b = _isna(a), _isna(b)
    if na_a or na_b:
        return na_a and na_b  # NaN == NaN: an estimate still undefined has not moved
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # array-valued cells
        return repr(a) == repr(b)


def _isna(v: Any) -> bool:
    return pd.api.types.is_scalar(v) and bool(pd.isna(v))


def _text(v: Any) -> str:
    if v is _MISSING:
        return ABSENT
    if _isna(v):
        return "NA"
    if isinstance(v, float):
        return repr(float(v))  # shortest text that reads back to the same float
    return str(v)


def _combine(frames: list[pd.DataFrame], folder: str | Path, *, empty: list[str]) -> pd.DataFrame:
    """Concatenate files read by :func:`_parse`, sorted by their (single) key and revision."""
    if not frames:
        return pd.DataFrame(columns=empty)
    keys = {f.attrs["key"] for f in frames}
    if len(keys) > 1:
        raise DataError(f"{folder}: files were written with different keys {sorted(keys)}")
    key = [*keys.pop(), "revision"]
    out = pd.concat(frames, ignore_index=True).sort_values(key, kind="stable", ignore_index=True)
    out[key[0]] = pd.to_datetime(out[key[0]])
    return out
