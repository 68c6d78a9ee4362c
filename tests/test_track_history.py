"""Append-only history of a tracked pilot: idempotent looks, flagged revisions, atomic files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from causal import track_history
from causal.designs.sequential import decision, difference_at_look
from causal.errors import DataError
from causal.track_history import carry_over, load_changes, load_history, record_looks

START = dt.date(2026, 3, 1)
METRICS = ("revenue", "complaints")


def make_looks(n_days: int, *, bump: dict[tuple[int, str], float] | None = None) -> pd.DataFrame:
    """The rows ``causal track`` would give after ``n_days`` daily looks, computed for real.

    Arm sums grow by day; ``bump[(day, metric)]`` adds to the treated Σy of that look only (a
    late-arriving event for a past date). ``computed_at`` is "now", so it differs every call.
    """
    bump = bump or {}
    rows = []
    for d in range(n_days):
        for m, metric in enumerate(METRICS):
            n = 40.0 * (d + 1)
            stats = {
                "n_0": n,
                "n_1": n + d,
                "sum_y_0": 10.0 * n + m,
                "sum_y_1": 10.5 * n + bump.get((d, metric), 0.0),
                "sum_y2_0": 104.0 * n,
                "sum_y2_1": 115.0 * n,
            }
            look = difference_at_look(stats, planned_n=2_000)
            rows.append(
                {
                    "look_date": pd.Timestamp(START + dt.timedelta(days=d)),
                    "metric": metric,
                    **stats,
                    "estimate": look.estimate,
                    "std_error": look.std_error,
                    "conf_low": look.conf_low,
                    "conf_high": look.conf_high,
                    "cs_low": look.cs_low,
                    "cs_high": look.cs_high,
                    "theta": look.theta,  # NaN without CUPED: NaN must equal NaN
                    "srm_p_value": 0.5,
                    "decision": decision(look),
                    "data_fingerprint": f"fp-{d}-{bump.get((d, metric), 0.0)}",
                    "computed_at": pd.Timestamp.now(tz="UTC"),
                }
            )
    return pd.DataFrame(rows)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (hidden ones included): bytes and mtime."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def day(d: int) -> dt.date:
    return START + dt.timedelta(days=d)


def test_first_run_writes_one_file_per_look(tmp_path: Path) -> None:
    up = record_looks(tmp_path / "track", make_looks(3))
    assert up.added == (day(0), day(1), day(2))
    assert up.unchanged == up.revised == () and up.changes.empty
    assert sorted(p.name for p in (tmp_path / "track").iterdir()) == [
        "look=2026-03-01.parquet",
        "look=2026-03-02.parquet",
        "look=2026-03-03.parquet",
    ]
    history = load_history(tmp_path / "track")
    assert len(history) == 6 and (history["revision"] == 0).all() and not history["revised"].any()
    assert history["look_date"].dt.date.tolist() == [day(d) for d in range(3) for _ in METRICS]
    assert history["metric"].tolist() == ["complaints", "revenue"] * 3  # sorted by the key
    assert history["decision"].iloc[0] == "keep running"
    assert history["theta"].isna().all()


def test_identical_rerun_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "track"
    record_looks(folder, make_looks(3))
    before = snapshot(folder)
    # A new computed_at, shuffled rows and columns: same values, so nothing to write.
    again = make_looks(3).sample(frac=1, random_state=1)
    up = record_looks(folder, again[again.columns[::-1]])
    assert up.wrote_nothing and up.unchanged == (day(0), day(1), day(2)) and up.changes.empty
    assert snapshot(folder) == before  # bytes and mtimes


def test_bytes_are_deterministic(tmp_path: Path) -> None:
    rows = make_looks(2).drop(columns="computed_at")
    record_looks(tmp_path / "a", rows)
    record_looks(tmp_path / "b", rows.iloc[::-1])
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[name][0] == b[name][0] for name in a)


def test_next_day_adds_exactly_one_look(tmp_path: Path) -> None:
    folder = tmp_path / "track"
    record_looks(folder, make_looks(3))
    before = snapshot(folder)
    up = record_looks(folder, make_looks(4))
    assert up.added == (day(3),) and up.revised == ()
    assert up.written == (folder / "look=2026-03-04.parquet",)
    after = snapshot(folder)
    assert set(after) - set(before) == {"look=2026-03-04.parquet"}
    assert all(after[name] == before[name] for name in before)  # past files untouched
    # Passing only today's rows is the same as passing all of them.
    assert record_looks(folder, make_looks(4).tail(2)).wrote_nothing


def test_changed_past_look_is_revised_and_flagged(tmp_path: Path) -> None:
    folder = tmp_path / "track"
    record_looks(folder, make_looks(3))
    original = (folder / "look=2026-03-02.parquet").read_bytes()
    up = record_looks(folder, make_looks(3, bump={(1, "revenue"): 8.0}))

    assert up.revised == (day(1),) and up.unchanged == (day(0), day(2)) and up.added == ()
    assert (folder / "look=2026-03-02.parquet").read_bytes() == original  # never overwritten
    assert (folder / "revisions" / "look=2026-03-02.rev=1.parquet").is_file()
    changes = up.changes
    assert set(changes["look_date"].dt.date) == {day(1)} and set(changes["metric"]) == {"revenue"}
    assert (changes["revision"] == 1).all()
    moved = changes.set_index("field")
    assert {"sum_y_1", "estimate", "cs_low", "data_fingerprint"} <= set(moved.index)
    assert not {"n_0", "theta", "decision", "computed_at"} & set(moved.index)
    old_estimate = make_looks(3).query("metric == 'revenue'")["estimate"].iloc[1]
    assert float(moved.loc["estimate", "old"]) == old_estimate  # exact text of the float
    assert moved.loc["sum_y_1", "old"] == "840.0" and moved.loc["sum_y_1", "new"] == "848.0"

    pd.testing.assert_frame_equal(load_changes(folder), changes, check_dtype=False)
    history = load_history(folder)
    second = history[history["look_date"].dt.date == day(1)]
    assert second["revision"].tolist() == [1, 1] and second["revised"].all()
    assert second.set_index("metric").loc["revenue", "sum_y_1"] == 848.0
    assert history.loc[history["look_date"].dt.date != day(1), "revision"].eq(0).all()
    assert len(load_history(folder, all_revisions=True)) == 8

    # The revised data again: nothing new. The data changing back: revision 2, not a rewrite.
    assert record_looks(folder, make_looks(3, bump={(1, "revenue"): 8.0})).wrote_nothing
    back = record_looks(folder, make_looks(3))
    assert back.revised == (day(1),) and (back.changes["revision"] == 2).all()
    assert load_history(folder).query("metric == 'revenue'")["revision"].tolist() == [0, 2, 0]
    assert load_changes(folder)["revision"].tolist().count(1) == len(changes)


def test_a_metric_appearing_for_a_past_date_is_a_row_change(tmp_path: Path) -> None:
    rows = make_looks(1)
    record_looks(tmp_path, rows[rows["metric"] == "revenue"])
    up = record_looks(tmp_path, rows)
    assert up.changes[["metric", "field", "old", "new"]].values.tolist() == [
        ["complaints", "(row)", "(absent)", "present"]
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("look=2026-03-02.parquet", b"PAR1 not really", "not a readable Parquet file"),
        ("notes.txt", b"hello", "unexpected in the track history"),
        ("look=2026-02-30.parquet", b"", "unexpected in the track history"),
    ],
)
def test_corrupt_or_foreign_file_names_it(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    record_looks(tmp_path, make_looks(1))
    (tmp_path / name).write_bytes(content)
    for call in (lambda: load_history(tmp_path), lambda: record_looks(tmp_path, make_looks(2))):
        with pytest.raises(DataError, match=message) as err:
            call()
        assert name in str(err.value)


def test_side_file_is_allowed(tmp_path: Path) -> None:
    record_looks(tmp_path, make_looks(1))
    pd.DataFrame({"unit": ["a"]}).to_parquet(tmp_path / "units_seen.parquet")
    assert record_looks(tmp_path, make_looks(2)).added == (day(1),)
    assert len(load_history(tmp_path)) == 4


def test_foreign_parquet_and_misnamed_file(tmp_path: Path) -> None:
    pd.DataFrame({"look_date": [day(0)], "x": [1]}).to_parquet(tmp_path / "look=2026-03-01.parquet")
    with pytest.raises(DataError, match=r"look=2026-03-01\.parquet: not a track-history file"):
        load_history(tmp_path)
    ours = tmp_path / "ours"
    record_looks(ours, make_looks(1))
    (ours / "look=2026-03-01.parquet").rename(ours / "look=2026-03-09.parquet")
    with pytest.raises(DataError, match=r"look=2026-03-09\.parquet: its rows are not look"):
        load_history(ours)


def test_deleted_revision_is_an_error(tmp_path: Path) -> None:
    record_looks(tmp_path, make_looks(1))
    record_looks(tmp_path, make_looks(1, bump={(0, "revenue"): 1.0}))
    (tmp_path / "look=2026-03-01.parquet").unlink()
    with pytest.raises(DataError, match="revision 0 of look 2026-03-01 is missing"):
        load_history(tmp_path)


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_crash_mid_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    folder = tmp_path / "track"
    record_looks(folder, make_looks(2))
    before = snapshot(folder)

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(track_history.os, step, crash)
    with pytest.raises(OSError, match="disk full"):
        record_looks(folder, make_looks(3))
    assert snapshot(folder) == before  # no partial look, no temp file left behind
    monkeypatch.undo()
    assert record_looks(folder, make_looks(3)).added == (day(2),)


def test_crash_between_change_record_and_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_looks(tmp_path, make_looks(1))
    bumped = make_looks(1, bump={(0, "revenue"): 2.0})
    real = track_history._atomic_write

    def fail_on_revision(path: Path, data: bytes) -> None:
        if path.parent.name == "revisions":
            raise KeyboardInterrupt  # killed between the two writes
        real(path, data)

    monkeypatch.setattr(track_history, "_atomic_write", fail_on_revision)
    with pytest.raises(KeyboardInterrupt):
        record_looks(tmp_path, bumped)
    assert (tmp_path / "changes" / "look=2026-03-01.rev=1.parquet").is_file()  # orphan
    assert load_changes(tmp_path).empty and (load_history(tmp_path)["revision"] == 0).all()
    monkeypatch.undo()
    up = record_looks(tmp_path, bumped)
    assert up.revised == (day(0),) and len(load_changes(tmp_path)) == len(up.changes)


def test_invalid_input(tmp_path: Path) -> None:
    rows = make_looks(1)
    with pytest.raises(DataError, match="duplicate rows"):
        record_looks(tmp_path, pd.concat([rows, rows.iloc[:1]]))
    with pytest.raises(DataError, match="must be dates"):
        record_looks(tmp_path, rows.assign(look_date=rows["look_date"] + pd.Timedelta("1h")))
    with pytest.raises(DataError, match="key column"):
        record_looks(tmp_path, rows.drop(columns="metric"))
    with pytest.raises(DataError, match="reserved"):
        record_looks(tmp_path, rows.assign(revision=1))
    record_looks(tmp_path, rows)
    new_day = make_looks(2).tail(2).assign(arm="all")  # a new date only: checked up front
    with pytest.raises(DataError, match="written with key"):
        record_looks(tmp_path, new_day, key=("look_date", "metric", "arm"))
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))


def test_carry_over_copies_the_history_byte_for_byte(tmp_path: Path) -> None:
    record_looks(tmp_path / "report" / "track", make_looks(2))
    record_looks(tmp_path / "report" / "track", make_looks(2, bump={(0, "revenue"): 1.0}))
    (tmp_path / "staging").mkdir()
    copied = carry_over(tmp_path / "report", tmp_path / "staging")
    original = snapshot(tmp_path / "report" / "track")
    assert copied is not None and snapshot(copied) == original  # copy2 keeps mtimes too
    pd.testing.assert_frame_equal(load_history(copied), load_history(tmp_path / "report" / "track"))
