"""Plots for the DiD report, drawn from ``results.json`` details (never from estimators)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from causal.plots import _BLUE, _GREY, _NAMES, _RED, WIDTH, _tidy
from causal.results import ExperimentResults, Result

_NAMES.update(
    {
        "callaway_santanna": "Callaway–Sant'Anna",
        "event_study": "TWFE event study",
        "twfe": "Two-way fixed effects",
        "did_2x2": "2×2 DiD",
    }
)
_ORANGE = "#c76a00"


def event_study_plot(results: ExperimentResults) -> Figure:
    """Effect by period since treatment: Callaway–Sant'Anna with its uniform band, and the
    TWFE event study beside it (offset a little so the intervals do not overlap)."""
    outcome = results.primary["outcome"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), dpi=110)
    cs = _find(results, outcome, "callaway_santanna")
    es = _find(results, outcome, "event_study")
    if cs is not None and "table" in cs.details.get("dynamic", {}):
        rows = cs.details["dynamic"]["table"]
        e = [r["level"] for r in rows]
        if all(math.isfinite(r.get("band_low", math.nan)) for r in rows):
            ax.fill_between(
                e,
                [r["band_low"] for r in rows],
                [r["band_high"] for r in rows],
                color=_BLUE,
                alpha=0.15,
                linewidth=0,
                label="CS uniform 95% band",
            )
        ax.errorbar(
            e,
            [r["estimate"] for r in rows],
            yerr=_err(rows),
            fmt="o",
            color=_BLUE,
            capsize=3,
            markersize=4,
            linewidth=1.2,
            label="Callaway–Sant'Anna (pointwise CI)",
        )
    if es is not None:
        rows = [r for r in es.details["path"] if not r["reference"]]
        e = [r["event_time"] + 0.2 for r in rows]
        ax.errorbar(
            e,
            [r["estimate"] for r in rows],
            yerr=_err(rows),
            fmt="s",
            color=_ORANGE,
            capsize=3,
            markersize=4,
            linewidth=1.0,
            label="TWFE event study (end points binned)",
        )
    ax.axhline(0, color=_GREY, linewidth=0.8)
    ax.axvline(-0.5, color=_RED, linewidth=1, linestyle=":")
    ax.set_xlabel("Periods since treatment started (event time)")
    ax.set_ylabel(f"Effect on {outcome}")
    _legend_below(ax, ncol=2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Effect of treatment over time on {outcome}", loc="left")
    _tidy(ax)
    fig.tight_layout()
    return fig


def cohort_trends_plot(results: ExperimentResults) -> Figure:
    """Raw outcome means per adoption cohort over time, each cohort's start marked."""
    outcome = results.primary["outcome"]
    rows = next(
        (r.details["cohort_means"] for r in results.results if "cohort_means" in r.details), []
    )
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), dpi=110)
    cohorts = list(dict.fromkeys(r["cohort"] for r in rows))
    colours = _palette(len(cohorts))
    for cohort, colour in zip(cohorts, colours, strict=True):
        mine = [r for r in rows if r["cohort"] == cohort]
        never = cohort == "never treated"
        ax.plot(
            [r["time"] for r in mine],
            [r["mean"] for r in mine],
            color=_GREY if never else colour,
            linewidth=2.2 if never else 1.5,
            linestyle="--" if never else "-",
            label=f"{cohort} (n = {mine[0]['n']})",
        )
        if not never:
            start = next((r for r in mine if str(r["time"]) == str(cohort)), None)
            if start is not None:
                ax.plot([start["time"]], [start["mean"]], "o", color=colour, markersize=5)
    ax.set_xlabel("Period")
    ax.set_ylabel(f"Mean {outcome}")
    _legend_below(ax, ncol=min(len(cohorts), 4), title="First treated")
    if all(isinstance(r["time"], int) for r in rows):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Raw means by adoption cohort (dot: first treated period)", loc="left")
    _tidy(ax)
    fig.tight_layout()
    return fig


def twfe_weights_plot(results: ExperimentResults) -> Figure:
    """The weight plain TWFE gives each treated cohort-period cell, against event time."""
    outcome = results.primary["outcome"]
    twfe = _find(results, outcome, "twfe")
    rows = twfe.details.get("cell_weights", []) if twfe is not None else []
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), dpi=110)
    cohorts = list(dict.fromkeys(r["cohort"] for r in rows))
    colours = _palette(len(cohorts))
    for cohort, colour in zip(cohorts, colours, strict=True):
        mine = [r for r in rows if r["cohort"] == cohort]
        ax.plot(
            [r["event_time"] for r in mine],
            [r["weight"] for r in mine],
            "o-",
            color=colour,
            markersize=4,
            linewidth=1,
            label=f"first treated {cohort}",
        )
    ax.axhline(0, color=_RED, linewidth=0.9)
    ax.set_xlabel("Periods since treatment started")
    ax.set_ylabel("TWFE weight on the cell's effect")
    ax.legend(frameon=False)
    ax.set_title(
        "How plain TWFE weights each cohort's effects (below the red line: negative)",
        loc="left",
    )
    _tidy(ax)
    fig.tight_layout()
    return fig


def _palette(n: int):
    """Viridis without its pale yellow end, which is hard to see on white."""
    return plt.get_cmap("viridis")([0.85 * i / max(n - 1, 1) for i in range(n)])


def _legend_below(ax, *, ncol: int, title: str | None = None) -> None:
    """Legend under the axes, where it cannot cover the data."""
    ax.legend(
        frameon=False,
        title=title,
        ncol=ncol,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18),
    )


def _find(results: ExperimentResults, outcome: str, estimator: str) -> Result | None:
    return results.get(outcome=outcome, estimator=estimator)


def _err(rows: list[dict]) -> list[list[float]]:
    return [
        [r["estimate"] - r["conf_low"] for r in rows],
        [r["conf_high"] - r["estimate"] for r in rows],
    ]
