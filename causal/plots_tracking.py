"""Plots and HTML of the tracking report, drawn from the ``tracking`` block of results.json."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from causal.plots import _BLUE, _GREY, _RED, WIDTH, _tidy, plt
from causal.report_html import _table
from causal.results import ExperimentResults


def looks_frame(res: ExperimentResults) -> pd.DataFrame:
    """Every look and metric as a DataFrame (dates parsed)."""
    frame = pd.DataFrame((res.tracking or {}).get("looks") or [])
    if len(frame):
        frame["look_date"] = pd.to_datetime(frame["look_date"])
    return frame


def trajectory_plot(res: ExperimentResults, metric: str) -> Figure:
    """The effect at each look with the fixed-horizon 95% interval (valid only at a look
    chosen in advance) and the confidence sequence (valid at every look)."""
    frame = looks_frame(res)
    frame = frame[frame["metric"] == metric]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=110)
    x = frame["look_date"]
    ax.fill_between(x, frame["cs_low"], frame["cs_high"], color=_BLUE, alpha=0.15,
                    label="Confidence sequence (any look)")  # fmt: skip
    ax.plot(x, frame["conf_low"], color=_GREY, linestyle=":", label="Fixed-horizon 95% CI")
    ax.plot(x, frame["conf_high"], color=_GREY, linestyle=":")
    ax.plot(x, frame["estimate"], color=_BLUE, label="Estimate")
    ax.axhline(0, color=_RED, linewidth=0.8, linestyle="--")
    ax.set_ylabel(f"Effect on {metric} per unit")
    ax.legend(loc="upper left", frameon=False, fontsize=9)
    fig.autofmt_xdate()
    _tidy(ax)
    fig.tight_layout()
    return fig


def kpi_plot(res: ExperimentResults) -> Figure:
    """Mean per unit (sum metrics) or mean answer / NPS (trend metrics) by arm over the looks."""
    frame = looks_frame(res)
    metrics = list(dict.fromkeys(frame["metric"]))
    fig, axes = plt.subplots(
        len(metrics), 1, figsize=(WIDTH, 1.9 * len(metrics) + 0.6), dpi=110, sharex=True,
        squeeze=False,
    )  # fmt: skip
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        rows = frame[frame["metric"] == metric]
        ax.plot(rows["look_date"], rows["control_mean"], color=_GREY, label="Control")
        ax.plot(rows["look_date"], rows["treated_mean"], color=_BLUE, label="Treated")
        unit = {"sum": "per unit", "mean": "mean answer", "nps": "NPS"}[rows["summary"].iloc[0]]
        ax.set_title(f"{metric} ({unit})", loc="left", fontsize=11)
        _tidy(ax)
    axes[0, 0].legend(loc="upper left", frameon=False, fontsize=9)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def decision_html(res: ExperimentResults) -> str:
    """The decision at the last look and when the sequence first excluded zero."""
    block = res.tracking or {}
    lines = block.get("lines") or []
    if not lines:
        return "<p>No looks yet.</p>"
    last = lines[-1]
    primary = block.get("primary_metric", "")
    first = first_exclusion(res, primary)
    when = (
        f"The confidence sequence for {escape(primary)} first excluded zero at look "
        f"{first['look']} ({first['look_date']})."
        if first
        else f"The confidence sequence for {escape(primary)} has not excluded zero yet."
    )
    return (
        f'<div class="causal"><p class="big">Look {last["look"]} ({last["look_date"]}, '
        f"{last['units']:,} units): <strong>{escape(last['decision'])}</strong></p>"
        f"<p>{when}</p></div>"
    )


def first_exclusion(res: ExperimentResults, metric: str) -> dict[str, Any] | None:
    """The first look at which the metric's confidence sequence excluded zero."""
    frame = looks_frame(res)
    rows = frame[frame["metric"] == metric].reset_index(drop=True)
    hit = rows[(rows["cs_low"] > 0) | (rows["cs_high"] < 0)]
    if not len(hit):
        return None
    i = int(hit.index[0])
    return {"look": i + 1, "look_date": str(rows.loc[i, "look_date"].date())}


def looks_html(res: ExperimentResults, *, last: int = 10) -> str:
    """The last looks of every sum metric: estimate, fixed CI, CS and decision."""
    frame = looks_frame(res)
    frame = frame[frame["summary"] == "sum"].groupby("metric", sort=False).tail(last)
    rows = [
        [
            str(r.look_date.date()),
            r.metric,
            r.role,
            f"{r.estimate:,.3g}",
            f"{r.conf_low:,.3g} to {r.conf_high:,.3g}",
            f"{r.cs_low:,.3g} to {r.cs_high:,.3g}",
            r.decision,
        ]
        for r in frame.itertuples()
    ]
    header = ["Look", "Metric", "Role", "Effect", "Fixed 95% CI", "Confidence sequence", "Decision"]
    return _table(header, rows)


def srm_html(res: ExperimentResults) -> str:
    """Sample-ratio check at each look (a failing look points at broken assignment)."""
    lines = (res.tracking or {}).get("lines") or []
    bad = [line for line in lines if line["srm_status"] == "fail"]
    rows = [[line["look_date"], f"{line['units']:,}", line["srm_status"]] for line in lines[-10:]]
    note = (
        f"<p>{len(bad)} of {len(lines)} looks fail the sample-ratio check.</p>"
        if bad
        else f"<p>All {len(lines)} looks pass the sample-ratio check.</p>"
    )
    return note + _table(["Look", "Units", "Sample ratio"], rows)


def changes_html(res: ExperimentResults) -> str:
    """Past looks whose data changed since they were first recorded."""
    changes = (res.tracking or {}).get("changes") or []
    if not changes:
        return "<p>No past look changed: the history is as first recorded.</p>"
    rows = [[c["look_date"], c["metric"], c["field"], c["old"], c["new"]] for c in changes[:30]]
    return (
        f"<p><strong>{len(changes)} values of past looks changed</strong> since they were "
        "first recorded (the original rows are kept):</p>"
        + _table(["Look", "Metric", "Field", "Recorded", "Now"], rows)
    )
