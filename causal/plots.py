"""Free functions that draw from results (never from estimators' internals).

Each returns a matplotlib Figure; :func:`figure_html` embeds one as a PNG with alt text so a
report stays a single self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from causal.narrative import money, population_phrase
from causal.results import ExperimentResults, Result
from causal.value import line

_BLUE, _GREY, _RED, _GREEN = "#1f5fa8", "#6b6b6b", "#b03a2e", "#2e7d32"
# Figures are drawn 6 in wide with 11-12 pt text: shrunk to a 390 px phone screen the text
# stays about 10 px high (a 7 in figure with 8-10 pt text came out at 5-6 px).
WIDTH = 6.0
plt.rcParams.update(
    {
        "font.size": 12,
        "axes.titlesize": 12,
        "axes.labelsize": 12,
        "xtick.labelsize": 11,
        "ytick.labelsize": 11,
        "legend.fontsize": 10,
        "legend.title_fontsize": 10,
    }
)
_RELATIVE = ("relative_lift",)
_NAMES = {
    "difference_in_means": "Difference in means",
    "cuped": "CUPED",
    "lin": "Regression adjustment (Lin)",
    "relative_lift": "Relative lift",
    "synthetic_did": "Synthetic DiD",
    "synthetic_control": "Synthetic control",
    "did_sc_baseline": "DiD (baseline)",
}


def effect_plot(results: ExperimentResults, outcome: str, *, currency: str | None = None) -> Figure:
    """Each absolute estimator's effect on ``outcome`` with its confidence interval."""
    rows = [r for r in results.results if r.outcome == outcome and r.estimator not in _RELATIVE]
    if any(r.estimator == "rmst_difference" for r in rows):  # churn and log-HR: other scales
        rows = [r for r in rows if r.estimator == "rmst_difference"]
    labels = [_NAMES.get(r.estimator, r.estimator) for r in rows]
    unit = f" ({currency} per unit)" if currency else " (per unit)"
    fig = _forest(
        rows, labels, xlabel=f"Effect on {outcome}{unit}", highlight=results.primary["estimator"]
    )
    fig.axes[0].set_title(
        f"Effect on {outcome}: estimate and {rows[0].conf_level:.0%} CI" if rows else outcome,
        loc="left",
    )
    return fig


def lift_plot(results: ExperimentResults) -> Figure:
    """Relative lift of every outcome, so outcomes in different units share one axis."""
    rows = [r for r in results.results if r.estimator == "relative_lift"]
    fig = _forest(
        rows, [r.outcome for r in rows], xlabel="Relative lift (% of control mean)", scale=100.0
    )
    fig.axes[0].set_title("Relative lift by outcome", loc="left")
    return fig


def segment_plot(results: ExperimentResults) -> Figure:
    """Effect within each segment level, with Holm-adjusted p-values in the labels."""
    rows = list(results.segments)
    labels = [
        f"{r.details['segment']} = {r.details['level']}  "
        f"(n={r.n_units:,}, Holm p={_p(r.details['p_value_holm'])})"
        for r in rows
    ]
    overall = results.find(outcome=results.primary["outcome"], estimator="difference_in_means")
    fig = _forest(rows, labels, xlabel=f"Effect on {results.primary['outcome']} (per unit)")
    ax = fig.axes[0]
    ax.axvline(overall.estimate, color=_GREY, linestyle=":", linewidth=1)
    ax.set_title("Effect by segment (dotted: all units)", loc="left")
    return fig


def value_plot(results: ExperimentResults) -> Figure:
    """Gross profit, cost and net value for the roll-out population, with intervals."""
    value = results.value
    cur = value["currency"]
    names = ["gross_profit", "cost", "net_value"]
    labels = ["Incremental gross profit", "Cost of the service", "Net value"]
    items = [line(value, n) for n in names]
    fig, ax = plt.subplots(figsize=(WIDTH, 2.6), dpi=110)
    ys = list(range(len(items)))[::-1]
    for y, item in zip(ys, items, strict=True):
        color = _RED if item["name"] == "cost" else (_GREEN if item["estimate"] >= 0 else _RED)
        ax.barh(y, item["estimate"], color=color, alpha=0.75, height=0.55)
        if item["std_error"] > 0:
            ax.errorbar(
                item["estimate"],
                y,
                xerr=[
                    [item["estimate"] - item["conf_low"]],
                    [item["conf_high"] - item["estimate"]],
                ],
                color="black",
                capsize=4,
                linewidth=1.2,
            )
        ax.annotate(
            money(item["estimate"], cur),
            (item["estimate"], y),
            xytext=(6, 8),
            textcoords="offset points",
        )
    ax.set_yticks(ys, labels)
    ax.axvline(0, color=_GREY, linewidth=0.8)
    ax.set_xlabel(
        f"{cur}, {population_phrase(value).lower()} "
        f"(bars: estimate; whiskers: {value['conf_level']:.0%} CI)"
    )
    ax.xaxis.set_major_formatter(lambda x, _: money(x, cur))
    _tidy(ax)
    fig.tight_layout()
    return fig


def synth_path_plot(results: ExperimentResults, estimator: str) -> Figure:
    """Treated path against its synthetic counterpart, with the treatment start marked."""
    r = results.find(outcome=results.primary["outcome"], estimator=estimator)
    d = r.details
    times, start = d["times"], d["treatment_start_index"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), dpi=110)
    ax.plot(times, d["treated_path"], color=_BLUE, linewidth=2, label="Treated")
    ax.plot(
        times,
        d["synthetic_path"],
        color=_GREY,
        linewidth=2,
        linestyle="--",
        label=f"Synthetic ({_NAMES.get(estimator, estimator)})",
    )
    ax.axvline(times[start], color=_RED, linewidth=1, linestyle=":")
    ax.annotate(
        "treatment starts",
        (times[start], ax.get_ylim()[1]),
        xytext=(4, -12),
        textcoords="offset points",
        color=_RED,
    )
    ax.set_xlabel("Period")
    ax.set_ylabel(r.outcome)
    ax.legend(frameon=False)
    ax.set_title(f"{r.outcome}: treated and synthetic", loc="left")
    _tidy(ax)
    fig.tight_layout()
    return fig


def gap_plot(results: ExperimentResults, estimator: str) -> Figure:
    """Treated minus synthetic over time, with every donor's placebo gap in grey."""
    r = results.find(outcome=results.primary["outcome"], estimator=estimator)
    d = r.details
    times, start = d["times"], d["treatment_start_index"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4), dpi=110)
    for gaps in d.get("placebo_space", {}).get("gaps", {}).values():
        ax.plot(times, gaps, color="#bbbbbb", linewidth=0.7)
    gap = [t - s for t, s in zip(d["treated_path"], d["synthetic_path"], strict=True)]
    ax.plot(times, gap, color=_BLUE, linewidth=2.2, label="Treated")
    ax.axhline(0, color=_GREY, linewidth=0.8)
    ax.axvline(times[start], color=_RED, linewidth=1, linestyle=":")
    ax.set_xlabel("Period")
    ax.set_ylabel(f"Gap in {r.outcome} (treated − synthetic)")
    space = d.get("placebo_space")
    subtitle = (
        f"; grey: {space['n'] - 1} donors as placebo treated units "
        f"(rank {space['rank']} of {space['n']})"
        if space
        else ""
    )
    ax.set_title(f"Gap, {_NAMES.get(estimator, estimator)}{subtitle}", loc="left")
    _tidy(ax)
    fig.tight_layout()
    return fig


def figure_html(fig: Figure, *, alt: str) -> str:
    """The figure as an inline PNG ``<img>`` with alt text; closes the figure.

    Examples
    --------
    >>> fig, _ = plt.subplots()
    >>> figure_html(fig, alt="empty").startswith('<img alt="empty"')
    True
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<img alt="{html.escape(alt, quote=True)}" style="max-width:100%;height:auto" '
        f'src="data:image/png;base64,{data}">'
    )


def _forest(
    rows: list[Result],
    labels: list[str],
    *,
    xlabel: str,
    scale: float = 1.0,
    highlight: str | None = None,
) -> Figure:
    fig, ax = plt.subplots(figsize=(WIDTH, 0.55 * max(len(rows), 1) + 1.3), dpi=110)
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        color = _BLUE if highlight in (None, r.estimator) else _GREY
        ax.errorbar(
            r.estimate * scale,
            y,
            xerr=[[(r.estimate - r.conf_low) * scale], [(r.conf_high - r.estimate) * scale]],
            fmt="o",
            color=color,
            capsize=4,
            markersize=6,
            linewidth=1.6,
        )
    ax.set_yticks(ys, labels)
    ax.axvline(0, color=_GREY, linewidth=0.8, linestyle="--")
    ax.set_xlabel(xlabel)
    _tidy(ax)
    fig.tight_layout()
    return fig


def _tidy(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _p(p: float) -> str:
    return "n/a" if p is None or not math.isfinite(p) else ("<0.001" if p < 1e-3 else f"{p:.3f}")
