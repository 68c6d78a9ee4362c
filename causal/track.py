"""``causal track``: look at a running pilot as often as you like and still be right.

At each look date only the units assigned by then and the events observed by then count
(:mod:`causal.designs.track_stats`, one pass over the events). Every ``sum`` metric gets the
difference in means with its fixed-horizon interval and an anytime-valid confidence sequence
(:mod:`causal.designs.sequential`), plain or CUPED-adjusted; ``mean`` and ``nps`` metrics are
trends by arm. The primary metric and the guardrails give the decision line of each look; the
sample ratio is tested at each look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from causal.errors import DataError, SpecError
from causal.spec import Spec

SEQUENCE_COLUMNS = (
    "n_control",
    "n_treated",
    "control_mean",
    "treated_mean",
    "estimate",
    "std_error",
    "conf_low",
    "conf_high",
    "cs_low",
    "cs_high",
    "p_value",
    "p_value_anytime",
)


@dataclass(frozen=True)
class TrackedPilot:
    """Every look of a pilot: ``looks`` (one row per look and metric) and ``lines`` (one row
    per look: units, sample-ratio p-value and the decision line)."""

    looks: pd.DataFrame
    lines: pd.DataFrame
    unit_ids: np.ndarray


def look_dates(spec: Spec, assigned: pd.Series, events: pd.Series, *, as_of: date | None):
    """The schedule's look dates, from the first assignment (or ``first_look``) to the last
    data date; ``as_of`` gives that one look."""
    settings = spec.tracking
    start = pd.Timestamp(settings.first_look or assigned.min()).normalize()
    if as_of is not None:
        look = pd.Timestamp(as_of)
        if look < assigned.min().normalize():
            raise DataError(
                f"--as-of {look.date()} is before the pilot started (first assignment "
                f"{assigned.min().date()}); choose a later date"
            )
        return pd.DatetimeIndex([look])
    end = max(assigned.max(), events.max() if len(events) else assigned.max()).normalize()
    step = "1D" if settings.schedule == "daily" else "7D"
    return pd.date_range(start, end, freq=step)


def track_pilot(
    spec: Spec, *, as_of: date | None = None, known_units: np.ndarray | None = None
) -> TrackedPilot:
    """Compute every look of the spec's pilot.

    ``known_units`` (ids seen by earlier runs) must all still be there: a unit can join a
    running pilot, never leave it.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> pilot = track_pilot(load_spec("experiments/remote_support_tracking.yaml"))
    >>> pilot.lines["decision"].iloc[0]
    'keep running'
    """
    from causal.data.dataset import load_dataset, require_columns, run_query

    if spec.tracking is None:
        raise SpecError(f"{spec.path}: no 'tracking' block; `causal track` needs one")
    settings = spec.tracking
    data = load_dataset(spec)
    units = data.table
    if known_units is not None:
        from causal.designs.track_stats import check_units_stable

        check_units_stable(known_units, units[spec.unit].to_numpy().astype(str))
    require_columns(
        units,
        [settings.assigned_at, *([settings.covariate] if settings.covariate else [])],
        field="tracking",
    )
    events = run_query(spec, settings.source_sql, what="tracking.events")
    require_columns(
        events,
        [settings.event_unit, settings.event_time, settings.metric_column, settings.value_column],
        field="tracking.events",
        where="events query",
    )
    assigned = pd.to_datetime(units[settings.assigned_at], errors="coerce")
    if assigned.isna().any():
        raise DataError(
            f"tracking.assigned_at: {int(assigned.isna().sum())} units have no assignment time "
            f"in column {settings.assigned_at!r}; every unit needs one"
        )
    times = pd.to_datetime(events[settings.event_time], errors="coerce")
    looks = look_dates(spec, assigned, times, as_of=as_of)
    frames = [
        _sum_metric(spec, metric, units, events, looks)
        if metric.summary == "sum"
        else _trend_metric(spec, metric, units, events, looks)
        for metric in settings.metrics
    ]
    table = pd.concat(frames, ignore_index=True)
    return TrackedPilot(table, _lines(spec, table), units[spec.unit].to_numpy())


def _sum_metric(spec: Spec, metric, units, events, looks) -> pd.DataFrame:
    from causal.designs.sequential import decision, difference_at_look
    from causal.designs.track_stats import look_statistics

    settings = spec.tracking
    mine = events[events[settings.metric_column] == metric.name]
    stats = look_statistics(
        units,
        mine,
        looks,
        unit=spec.unit,
        arm=spec.treatment,
        assigned_at=settings.assigned_at,
        covariate=settings.covariate,
        event_unit=settings.event_unit,
        event_time=settings.event_time,
        value=settings.value_column,
    )
    est = difference_at_look(
        stats,
        alpha=spec.alpha,
        planned_n=settings.planned_units,
        cuped=settings.covariate is not None,
    )
    frame = est.to_frame()[list(SEQUENCE_COLUMNS)]
    frame.insert(0, "look_date", looks.date)
    frame.insert(1, "metric", metric.name)
    frame.insert(2, "role", metric.role)
    frame.insert(3, "summary", "sum")
    frame["decision"] = np.atleast_1d(
        decision(est, planned_n=settings.planned_units, direction=metric.good_direction)
    )
    return frame


def _trend_metric(spec: Spec, metric, units, events, looks) -> pd.DataFrame:
    """Mean answer (or NPS in points) by arm among the answers given by each look."""
    settings = spec.tracking
    mine = events[events[settings.metric_column] == metric.name]
    arm_of = pd.Series(units[spec.treatment].to_numpy(), index=units[spec.unit].to_numpy())
    arm = arm_of.reindex(mine[settings.event_unit].to_numpy()).to_numpy()
    times = pd.to_datetime(mine[settings.event_time]).to_numpy()
    values = mine[settings.value_column].to_numpy(dtype=float)
    if metric.summary == "nps":
        values = 100.0 * ((values >= 9).astype(float) - (values <= 6).astype(float))
    rows = {"look_date": looks.date, "metric": metric.name, "role": metric.role}
    rows["summary"] = metric.summary
    ends = (looks + pd.Timedelta(days=1)).to_numpy()  # a look includes its whole day
    for label, value in (("control", 0), ("treated", 1)):
        keep = arm == value
        order = np.argsort(times[keep], kind="stable")
        t, v = times[keep][order], values[keep][order]
        upto = np.searchsorted(t, ends, side="left")
        total = np.concatenate([[0.0], np.cumsum(v)])[upto]
        with np.errstate(invalid="ignore", divide="ignore"):
            rows[f"{label}_mean"] = np.where(upto > 0, total / np.maximum(upto, 1), np.nan)
        rows[f"n_{label}"] = upto.astype(float)
    frame = pd.DataFrame(rows)
    frame["estimate"] = frame["treated_mean"] - frame["control_mean"]
    for column in SEQUENCE_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    frame["decision"] = ""
    return frame[["look_date", "metric", "role", "summary", *SEQUENCE_COLUMNS, "decision"]]


def _lines(spec: Spec, table: pd.DataFrame) -> pd.DataFrame:
    """Per look: units, the sample-ratio p-value and the decision (a guardrail that shows harm
    stops the pilot whatever the primary metric says)."""
    from causal.designs.sequential import NEGATIVE, sample_ratio_at_look

    settings = spec.tracking
    primary = table[table["metric"] == settings.primary.name].reset_index(drop=True)
    guards = table[table["role"] == "guardrail"]
    rows = []
    planned = spec.design.planned_treated_share or 0.5
    for i, row in primary.iterrows():
        check = sample_ratio_at_look(
            {"n_0": row["n_control"], "n_1": row["n_treated"]}, planned_share=planned
        )
        harm = guards[(guards["look_date"] == row["look_date"]) & (guards["decision"] == NEGATIVE)]
        line = row["decision"]
        if len(harm):
            line = f"{NEGATIVE} (guardrail {', '.join(harm['metric'])})"
        rows.append(
            {
                "look_date": row["look_date"],
                "look": i + 1,
                "units": int(row["n_control"] + row["n_treated"]),
                "srm_status": check.status,
                "srm_detail": check.detail,
                "decision": line,
            }
        )
    return pd.DataFrame(rows)


def summary_record(pilot: TrackedPilot) -> dict[str, Any]:
    """JSON-safe record of every look for results.json and the tracking report."""
    looks = pilot.looks.assign(look_date=pilot.looks["look_date"].astype(str))
    lines = pilot.lines.assign(look_date=pilot.lines["look_date"].astype(str))
    return {"looks": looks.to_dict(orient="records"), "lines": lines.to_dict(orient="records")}
