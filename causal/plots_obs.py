"""Plots for the observational report, drawn from ``results.json`` (never from estimators)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from causal.plots import _BLUE, _GREY, _NAMES, _RED, WIDTH, _tidy
from causal.plots_did import _legend_below
from causal.results import ExperimentResults

_NAMES.update(
    {
        "naive_difference": "Naive difference",
        "regression": "Regression adjustment",
        "ipw": "IPW (Hájek)",
        "aipw": "AIPW (doubly robust)",
        "linear_dml": "Double ML (LinearDML)",
        "dr_learner": "DR-learner",
        "causal_forest": "Causal forest",
    }
)
_ORANGE = "#c76a00"


def overlap_plot(results: ExperimentResults) -> Figure:
    """Propensity score histograms of treated (top) and untreated (bottom) units, each on its
    own scale so a small arm stays visible; overlap is where both have mass. The shaded margins
    are outside the spec's overlap bounds."""
    check = results.check("overlap")
    rows = list(check.table) if check is not None else []
    fig, axes = plt.subplots(2, 1, figsize=(WIDTH, 4.0), dpi=110, sharex=True)
    if not rows:
        axes[1].axis("off")
        return _empty(fig, axes[0], "no propensity histogram (see the overlap check)")
    left = np.array([r["bin_low"] for r in rows])
    width = np.array([r["bin_high"] - r["bin_low"] for r in rows])
    low, high = results.experiment["design_settings"]["overlap_bounds"]
    for ax, key, color, label in (
        (axes[0], "treated", _BLUE, "treated"),
        (axes[1], "control", _GREY, "untreated"),
    ):
        share = np.array([r[f"{key}_share"] for r in rows])
        count = sum(r[key] for r in rows)
        ax.bar(left, share, width=width, align="edge", color=color)
        for a, b in ((0.0, low), (high, 1.0)):
            ax.axvspan(a, b, color=_RED, alpha=0.08, linewidth=0)
        ax.set_title(f"{label} ({count:,} units)", loc="left", fontsize=11)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        _tidy(ax)
    axes[1].set_xlim(0, 1)
    axes[1].set_xlabel("Propensity score (probability of treatment given the confounders)")
    fig.supylabel("Share of arm", fontsize=11)
    fig.tight_layout()
    return fig


def balance_plot(results: ExperimentResults) -> Figure:
    """Standardised mean differences before and after weighting (a 'love plot')."""
    check = results.check("covariate_balance")
    rows = list(check.table) if check is not None else []
    fig, ax = plt.subplots(figsize=(WIDTH, 0.32 * max(len(rows), 3) + 1.4), dpi=110)
    if not rows:
        return _empty(fig, ax, "no balance table (see the balance check)")
    ys = np.arange(len(rows))[::-1]
    before = [r["smd_before"] for r in rows]
    after = [r["smd_after"] for r in rows]
    ax.scatter(np.abs(before), ys, color=_GREY, label="before weighting", zorder=3)
    ax.scatter(np.abs(after), ys, color=_BLUE, label="after weighting", zorder=3)
    threshold = results.experiment["design_settings"]["balance_threshold"]
    ax.axvline(threshold, color=_RED, linestyle="--", linewidth=1, label=f"|SMD| = {threshold}")
    ax.set_yticks(ys, [r["covariate"] for r in rows])
    ax.set_xlabel("|Standardised mean difference|")
    _tidy(ax)
    _legend_below(ax, ncol=3)
    fig.tight_layout()
    return fig


def sensitivity_plot(results: ExperimentResults) -> Figure:
    """Cinelli–Hazlett contour: the regression estimate after an unmeasured confounder of a
    given strength (partial R² with treatment on x, with outcome on y); red is where it
    crosses zero; benchmark points are confounders as strong as observed covariates."""
    outcome = results.primary["outcome"]
    reg = results.get(outcome=outcome, estimator="regression")
    payload = reg.details.get("sensitivity") if reg is not None else None
    fig, ax = plt.subplots(figsize=(WIDTH, 4.6), dpi=110)
    if not payload:
        return _empty(fig, ax, "no sensitivity analysis (see the sensitivity check)")
    grid = payload["contour"]
    x, y = np.asarray(grid["r2dz_x"]), np.asarray(grid["r2yz_dx"])
    z = np.asarray(grid["estimate"], dtype=float)
    levels = _levels(z)
    lines = ax.contour(x, y, z, levels=levels, colors=_GREY, linewidths=0.8)
    ax.clabel(lines, fontsize=9, fmt=lambda v: f"{v:,.3g}")
    ax.contour(x, y, z, levels=[grid["estimate_threshold"]], colors=_RED, linewidths=1.6)
    ax.plot(0, 0, marker="^", color="black", clip_on=False)
    ax.annotate(
        f"unadjusted {grid['unadjusted_estimate']:,.3g}",
        (0, 0),
        (6, 6),
        textcoords="offset points",
        fontsize=10,
    )
    benchmarks = grid.get("benchmarks", [])
    strongest = {}
    for bound in benchmarks:  # label only the largest multiple of each benchmark: less clutter
        if bound["kd"] >= strongest.get(bound["benchmark"], {"kd": -1})["kd"]:
            strongest[bound["benchmark"]] = bound
    for bound in benchmarks:
        ax.plot(bound["r2dz_x"], bound["r2yz_dx"], marker="D", color=_ORANGE)
    for bound in strongest.values():
        ax.annotate(
            f"{bound['label']}\n{bound['adjusted_estimate']:,.3g}",
            (bound["r2dz_x"], bound["r2yz_dx"]),
            (6, -4),
            textcoords="offset points",
            fontsize=9,
        )
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(y.min(), y.max())
    ax.set_xlabel("Partial R² of confounder with treatment")
    ax.set_ylabel("Partial R² of confounder\nwith outcome")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    fig.tight_layout()
    return fig


def cate_plot(results: ExperimentResults) -> Figure | None:
    """Mean effect by effect-modifier bin (causal forest), with intervals; None without it."""
    outcome = results.primary["outcome"]
    forest = results.get(outcome=outcome, estimator="causal_forest")
    cate = forest.details.get("cate") if forest is not None else None
    rows = (cate or {}).get("bins", [])
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH, 0.5 * len(rows) + 1.4), dpi=110)
    ys = np.arange(len(rows))[::-1]
    for y, row in zip(ys, rows, strict=True):
        ax.errorbar(
            row["mean_cate"],
            y,
            xerr=[[row["mean_cate"] - row["conf_low"]], [row["conf_high"] - row["mean_cate"]]],
            fmt="o",
            color=_BLUE,
            capsize=4,
        )
    ax.set_yticks(ys, [f"{row['modifier']}: {row['bin']}" for row in rows])
    ax.axvline(forest.estimate, color=_GREY, linestyle=":", label="average")
    ax.axvline(0, color=_GREY, linewidth=0.8, linestyle="--")
    ax.set_xlabel(f"Effect on {outcome} ({forest.estimand.replace('ATE', 'all units')})")
    _tidy(ax)
    fig.tight_layout()
    return fig


def _levels(z: np.ndarray) -> np.ndarray:
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        return np.array([0.0])
    return np.unique(np.round(np.linspace(finite.min(), finite.max(), 9)[1:-1], 12))


def _empty(fig: Figure, ax, text: str) -> Figure:
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", color=_GREY)
    return fig
