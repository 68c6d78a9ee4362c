"""Plots of value over time (horizons, surrogate index, payback) and of lifetime value, drawn
from ``results.json`` only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from causal.plots import _BLUE, _GREEN, _GREY, _RED, WIDTH, _tidy, plt
from causal.results import ExperimentResults


def horizon_plot(res: ExperimentResults) -> Figure:
    """Cumulative effect per treated customer against time since treatment: pointwise
    intervals, the simultaneous band, and the surrogate index's long-horizon prediction."""
    block = res.long_term or {}
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), dpi=110)
    horizons = block.get("horizons")
    if horizons:
        rows = horizons["table"]
        t = [r["horizon"] for r in rows]
        total = [r["total"] for r in rows]
        lo = [r["total_conf_low"] for r in rows]
        hi = [r["total_conf_high"] for r in rows]
        ax.fill_between(
            t,
            [r["band_low"] for r in rows] if horizons["cumulative"] else lo,
            [r["band_high"] for r in rows] if horizons["cumulative"] else hi,
            color=_BLUE,
            alpha=0.15,
            label="Simultaneous 95% band" if horizons["cumulative"] else "95% interval",
        )
        ax.errorbar(
            t,
            total,
            yerr=[np.subtract(total, lo), np.subtract(hi, total)],
            fmt="o-",
            color=_BLUE,
            capsize=3,
            label="Pilot: measured",
        )
    surrogate = block.get("surrogate")
    if surrogate:
        long = surrogate["long_term"]
        h = surrogate.get("horizon") or _surrogate_horizon(res)
        ax.errorbar(
            [h],
            [long["estimate"]],
            yerr=[[long["estimate"] - long["conf_low"]], [long["conf_high"] - long["estimate"]]],
            fmt="s",
            color=_GREEN,
            capsize=4,
            markersize=7,
            label="Predicted (surrogate index)",
        )
        if horizons:
            ax.plot([t[-1], h], [total[-1], long["estimate"]], color=_GREEN, linestyle=":")
    ax.axhline(0, color=_GREY, linewidth=0.8, linestyle="--")
    unit = (horizons or {}).get("time_unit", "month")
    ax.set_xlabel(f"{unit.capitalize()}s since treatment")
    ax.set_ylabel("Effect per treated customer")
    ax.legend(loc="upper left", frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def payback_plot(res: ExperimentResults) -> Figure:
    """Discounted cumulative gross profit per treated customer against its cost, with the
    band and the payback month with its interval."""
    money = (res.long_term or {}).get("service_value") or {}
    payback = money.get("payback")
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=110)
    if not payback:
        ax.text(
            0.5, 0.5, "No cost per treated unit: no payback", ha="center", transform=ax.transAxes
        )
        return fig
    curve = payback["curve"]
    t = [0.0] + [c["time"] for c in curve]
    est = [0.0] + [c["estimate"] for c in curve]
    ax.fill_between(
        t,
        [0.0] + [c["band_low"] for c in curve],
        [0.0] + [c["band_high"] for c in curve],
        color=_BLUE,
        alpha=0.15,
        label="Simultaneous 95% band",
    )
    ax.plot(t, est, "o-", color=_BLUE, label="Cumulative gross profit (discounted)")
    ax.axhline(payback["cost_per_customer"], color=_RED, linestyle="--", label="Cost per customer")
    if payback["months"] is not None:
        ax.axvline(payback["months"], color=_GREY, linewidth=1.0)
        lo = payback["earliest"] or 0.0
        hi = payback["latest"] if payback["latest"] is not None else t[-1]
        ax.axvspan(lo, hi, color=_GREY, alpha=0.12, label="Payback interval")
    ax.set_xlabel("Months since treatment")
    ax.set_ylabel(f"{money.get('currency', '')} per treated customer")
    ax.legend(loc="upper left", frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def validation_plot(res: ExperimentResults) -> Figure:
    """Past experiments: long-term effect predicted by the surrogate index against the actual."""
    surrogate = (res.long_term or {}).get("surrogate") or {}
    rows = _validation_rows(surrogate)
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), dpi=110)
    if not rows:
        ax.text(0.5, 0.5, "No past experiments to validate on", ha="center", transform=ax.transAxes)
        return fig
    x = [r["actual"] for r in rows]
    y = [r["surrogate_estimate"] for r in rows]
    ax.errorbar(
        x,
        y,
        xerr=[1.96 * r["actual_se"] for r in rows],
        yerr=[1.96 * r["surrogate_se"] for r in rows],
        fmt="o",
        color=_BLUE,
        capsize=3,
    )
    for r in rows:
        ax.annotate(
            str(r["experiment"]),
            (r["actual"], r["surrogate_estimate"]),
            fontsize=9,
            xytext=(4, 4),
            textcoords="offset points",
        )
    lim = [min(x + y + [0.0]), max(x + y)]
    ax.plot(lim, lim, color=_GREY, linestyle="--", linewidth=0.8, label="Predicted = actual")
    ax.set_xlabel("Actual long-term effect")
    ax.set_ylabel("Predicted from surrogates")
    ax.legend(loc="upper left", frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def clv_by_frequency_plot(res: ExperimentResults) -> Figure:
    """Mean CLV and probability alive by number of repeat purchases in calibration."""
    details = res.headline().details
    rows = details["customers"]["by_frequency"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=110)
    freq = [r["frequency"] for r in rows]
    labels = [f"{int(f)}" if f < 7 else "7+" for f in freq]
    ax.bar(labels, [r["mean_clv"] for r in rows], color=_BLUE, alpha=0.8)
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Mean CLV per customer")
    twin = ax.twinx()
    twin.plot(labels, [r["mean_alive"] for r in rows], "o-", color=_RED)
    twin.set_ylabel("P(still active)", color=_RED)
    twin.set_ylim(0, 1.05)
    _tidy(ax)
    fig.tight_layout()
    return fig


def clv_holdout_plot(res: ExperimentResults) -> Figure:
    """Hold-out purchases per customer, expected by the model and actual, by calibration
    frequency (Fader, Hardie & Lee 2005, Figure 4)."""
    rows = res.headline().details["customers"]["by_frequency"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=110)
    if not rows or "actual_holdout" not in rows[0]:
        ax.text(0.5, 0.5, "No hold-out period in the spec", ha="center", transform=ax.transAxes)
        return fig
    labels = [f"{int(r['frequency'])}" if r["frequency"] < 7 else "7+" for r in rows]
    ax.plot(labels, [r["actual_holdout"] for r in rows], "o-", color=_GREY, label="Actual")
    ax.plot(labels, [r["expected_holdout"] for r in rows], "s--", color=_BLUE, label="BG/NBD")
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Purchases per customer, hold-out")
    ax.legend(loc="upper left", frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def _validation_rows(surrogate: Mapping[str, Any]) -> list[dict[str, Any]]:
    validation = surrogate.get("validation") or {}
    return list(validation.get("table") or [])


def _surrogate_horizon(res: ExperimentResults) -> float:
    settings = res.experiment.get("long_term") or {}
    return float((settings.get("surrogate") or {}).get("horizon", 12))
