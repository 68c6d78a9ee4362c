"""Plots for the uplift (targeting) report, drawn from ``results.json`` (nothing estimated).

Every function takes the :class:`~causal.results.ExperimentResults` of an uplift run and
returns a matplotlib Figure; embed it with :func:`causal.plots.figure_html`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from causal.narrative import money
from causal.plots import _BLUE, _GREEN, _GREY, _RED, WIDTH, _tidy
from causal.plots_did import _legend_below
from causal.report_html_uplift import is_binary, learner_name, policy
from causal.results import ExperimentResults

# Other learners' curves: distinct, muted, readable in greyscale by line style.
_OTHERS = (("#c76a00", "--"), ("#7b4f9d", "-."), ("#2e7d32", ":"), ("#8c564b", (0, (5, 1, 1, 1))))


def qini_plot(results: ExperimentResults) -> Figure:
    """Qini curves of every learner on the held-out customers, with random targeting.

    Parameters
    ----------
    results : ExperimentResults
        An uplift run; each Result's ``details.qini_curve`` is drawn.

    Returns
    -------
    Figure
        Incremental outcomes (contacted minus not contacted, scaled to the same size) among
        the top share of customers by predicted uplift; the policy learner is drawn thickest.
    """
    return _curves(results, "qini_curve", "Qini curve: extra {outcome} among those contacted")


def uplift_curve_plot(results: ExperimentResults) -> Figure:
    """Uplift curves of every learner: difference of arm means among the top k, times k.

    Parameters
    ----------
    results : ExperimentResults
        An uplift run; each Result's ``details.uplift_curve`` is drawn.

    Returns
    -------
    Figure
        One line per learner and the random-targeting diagonal.
    """
    return _curves(results, "uplift_curve", "Uplift curve: extra {outcome} among those contacted")


def bins_plot(results: ExperimentResults) -> Figure:
    """Observed uplift per bin of predicted uplift (bin 1 = highest) with intervals.

    Parameters
    ----------
    results : ExperimentResults
        An uplift run; the policy learner's ``details.bins`` are drawn.

    Returns
    -------
    Figure
        Bars: observed uplift (contacted minus not contacted) with its interval; diamonds:
        the mean predicted uplift; dashed line: the uplift at which a contact pays, when priced.
    """
    head = results.headline()
    bins = head.details.get("bins", [])
    scale, unit = _scale(results)
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=110)
    x = np.array([b["bin"] for b in bins])
    observed = np.array([_nan(b.get("observed_uplift")) for b in bins]) * scale
    low = np.array([_nan(b.get("conf_low")) for b in bins]) * scale
    high = np.array([_nan(b.get("conf_high")) for b in bins]) * scale
    predicted = np.array([b["predicted_uplift"] for b in bins]) * scale
    ax.bar(x, np.nan_to_num(observed), color=_BLUE, alpha=0.35, width=0.7, label="observed")
    ok = np.isfinite(low) & np.isfinite(high)
    ax.errorbar(
        x[ok],
        observed[ok],
        yerr=[observed[ok] - low[ok], high[ok] - observed[ok]],
        fmt="none",
        ecolor=_BLUE,
        capsize=3,
        linewidth=1.2,
        label=f"{head.conf_level:.0%} CI",
    )
    ax.scatter(x, predicted, marker="D", color="black", s=28, zorder=3, label="predicted")
    for bx in x[~np.isfinite(observed)]:
        ax.annotate("n/a", (bx, 0), ha="center", va="bottom", color=_GREY)
    threshold = _threshold(results)
    if threshold is not None:
        ax.axhline(
            threshold * scale, color=_RED, linestyle="--", linewidth=1, label="break-even uplift"
        )
    ax.axhline(0, color=_GREY, linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xlabel("Bin of predicted uplift (1 = highest)")
    ax.set_ylabel(f"Uplift{unit.replace('percentage points', 'pts')}")
    ax.set_title(f"{learner_name(head.estimator)}: uplift in {head.outcome} by bin", loc="left")
    _tidy(ax)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    _legend_below(ax, ncol=4)
    fig.tight_layout()
    return fig


def calibration_plot(results: ExperimentResults) -> Figure:
    """Predicted against observed uplift per bin, with intervals and the 45° line.

    Parameters
    ----------
    results : ExperimentResults
        An uplift run; the policy learner's ``details.bins`` are drawn.

    Returns
    -------
    Figure
        One point per bin, numbered; points on the dotted line mean the predictions are right
        on average for those customers.
    """
    head = results.headline()
    bins = [b for b in head.details.get("bins", []) if b.get("observed_uplift") is not None]
    scale, unit = _scale(results)
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), dpi=110)
    pred = np.array([b["predicted_uplift"] for b in bins]) * scale
    obs = np.array([b["observed_uplift"] for b in bins]) * scale
    low = np.array([_nan(b.get("conf_low")) for b in bins]) * scale
    high = np.array([_nan(b.get("conf_high")) for b in bins]) * scale
    ok = np.isfinite(low) & np.isfinite(high)
    ax.errorbar(
        pred[ok],
        obs[ok],
        yerr=[obs[ok] - low[ok], high[ok] - obs[ok]],
        fmt="o",
        color=_BLUE,
        capsize=3,
        markersize=5,
        linewidth=1.1,
    )
    ax.plot(pred[~ok], obs[~ok], "o", color=_BLUE)
    for b, px, oy in zip(bins, pred, obs, strict=True):
        ax.annotate(str(b["bin"]), (px, oy), xytext=(5, 3), textcoords="offset points", fontsize=9)
    lo, hi = float(np.min(np.r_[pred, 0.0])), float(np.max(np.r_[pred, 0.0]))
    pad = 0.1 * (hi - lo or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    diagonal = [lo - pad, hi + pad]
    ax.plot(diagonal, diagonal, color=_GREY, linestyle=":", label="predicted = observed")
    ax.legend(loc="upper left", frameon=False)
    ax.axhline(0, color=_GREY, linewidth=0.6)
    ax.set_xlabel(f"Predicted uplift{unit}")
    ax.set_ylabel(f"Observed uplift{unit}")
    ax.set_title("Calibration: predicted against observed, by bin", loc="left")
    _tidy(ax)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    fig.tight_layout()
    return fig


def profit_plot(results: ExperimentResults) -> Figure:
    """Net profit per customer when the top share by predicted uplift is contacted.

    Parameters
    ----------
    results : ExperimentResults
        An uplift run; the policy learner's ``details.policy.profit_curve`` is drawn.

    Returns
    -------
    Figure
        The curve with its pointwise band, contacting no one at share 0 and everyone at 1,
        and the policy's cut-off as a vertical line; the right axis shows totals for every
        customer scored.
    """
    pol = policy(results)
    curve = pol["profit_curve"]
    cur = results.value["currency"] if results.value is not None else None
    share = np.array(curve["share"]) * 100
    est = np.array(curve["estimate"])
    fmt = (lambda v: money(v, cur, precise=True)) if cur else (lambda v: f"{v:,.3g}")
    fig, ax = plt.subplots(figsize=(WIDTH, 4.0), dpi=110)
    ax.fill_between(
        share,
        curve["conf_low"],
        curve["conf_high"],
        color=_BLUE,
        alpha=0.15,
        linewidth=0,
        label=f"{results.headline().conf_level:.0%} CI",
    )
    ax.plot(share, est, color=_BLUE, linewidth=2, label="contact the top share")
    ax.axhline(0, color=_GREY, linewidth=0.8)
    per = pol["per_customer"]
    cut = 100 * pol["share_targeted"]
    ax.axvline(cut, color=_GREEN, linestyle="--", linewidth=1.3)
    value = per["policy"]
    ax.errorbar(
        cut,
        value["estimate"],
        yerr=[[value["estimate"] - value["conf_low"]], [value["conf_high"] - value["estimate"]]],
        fmt="o",
        color=_GREEN,
        capsize=4,
        zorder=4,
    )
    ax.annotate(
        f"policy: top {cut:.0f}%\n{fmt(value['estimate'])} per customer",
        (cut, value["conf_high"]),
        xytext=(8, 2),
        textcoords="offset points",
        color=_GREEN,
        fontsize=10,
        va="bottom",
    )
    everyone = per["treat_all"]["estimate"]
    ax.plot([0, 100], [0, everyone], "s", color="black", zorder=4, clip_on=False)
    ax.annotate("no one: 0", (0, 0), xytext=(6, -6), textcoords="offset points", va="top")
    ax.annotate(
        f"everyone: {fmt(everyone)}",
        (100, everyone),
        xytext=(-8, -6),
        textcoords="offset points",
        ha="right",
        va="top",
    )
    ax.set_xlim(0, 100)
    ax.set_ylim(*_padded(ax.get_ylim(), top=0.18))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    ax.set_xlabel("Share of customers contacted (highest predicted uplift first)")
    unit = f" ({cur})" if cur else ""
    ax.set_ylabel(f"Net per customer{unit}\nvs contacting no one")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.2f}" if cur else f"{v:,.3g}")
    n = pol["n_customers"]
    right = ax.secondary_yaxis("right", functions=(lambda v: v * n, lambda v: v / n))
    right.set_ylabel(f"Total for {n:,} customers{unit}")
    right.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.set_title("What contacting the top share earns", loc="left")
    ax.spines["top"].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    _legend_below(ax, ncol=2)
    fig.tight_layout()
    return fig


# --- helpers -------------------------------------------------------------------------------------


def _curves(results: ExperimentResults, key: str, title: str) -> Figure:
    head = results.headline()
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), dpi=110)
    others = iter(_OTHERS * 3)
    end = None
    for r in results.results:
        curve = r.details.get(key)
        if not curve or not curve["x"]:
            continue
        x, y = np.asarray(curve["x"], dtype=float), np.asarray(curve["y"], dtype=float)
        share = 100 * x / x[-1] if x[-1] > 0 else x
        label = f"{learner_name(r.estimator)} ({r.estimate:.3f})"
        if r.estimator == head.estimator:
            ax.plot(share, y, color=_BLUE, linewidth=2.6, label=label + ", policy", zorder=3)
            end = (share[-1], y[-1])
        else:
            color, style = next(others)
            ax.plot(share, y, color=color, linestyle=style, linewidth=1.4, label=label)
            end = end or (share[-1], y[-1])
    if end is not None:
        ax.plot([0, end[0]], [0, end[1]], color=_GREY, linewidth=1.2, label="random targeting")
    ax.axhline(0, color=_GREY, linewidth=0.6)
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    ax.set_xlabel(f"Share of the {head.n_units:,} held-out customers contacted")
    ax.set_ylabel(
        f"Extra {head.outcome}\n(count)" if is_binary(results) else f"Extra {head.outcome}"
    )
    ax.set_title(title.format(outcome=head.outcome), loc="left")
    _tidy(ax)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    _legend_below(ax, ncol=2)
    fig.tight_layout()
    return fig


def _scale(results: ExperimentResults) -> tuple[float, str]:
    """Percentage points for a 0/1 outcome, outcome units otherwise."""
    return (100.0, " (percentage points)") if is_binary(results) else (1.0, "")


def _threshold(results: ExperimentResults) -> float | None:
    """The uplift above which a contact pays for itself, when the spec prices the outcome."""
    money_block = results.experiment.get("design_settings", {}).get("money")
    if not money_block:
        return None
    return money_block["cost_per_contact"] / money_block["value_per_unit"]


def _padded(limits: tuple[float, float], *, top: float) -> tuple[float, float]:
    low, high = limits
    return low, high + top * (high - low)


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)
