"""Kaplan–Meier curves and the survival section of an A/B report, drawn from results.json."""

from __future__ import annotations

from html import escape

import numpy as np
from matplotlib.figure import Figure

from causal.plots import _BLUE, _GREY, WIDTH, _tidy, plt
from causal.report_html import METHODS, _table
from causal.results import ExperimentResults, Result

METHODS.update(
    {
        "rmst_difference": (
            "Restricted mean survival time",
            "Area under each arm's Kaplan–Meier curve up to the horizon: the mean time without "
            "the event within it. The difference treated − control is the extra time the "
            "service kept customers (or delayed the event); standard error by the "
            "Greenwood-type delta method, arms independent.",
            "Random assignment; censoring unrelated to the event within each arm.",
            "Royston & Parmar (2013), BMC Med. Res. Methodol. 13:152; lifelines.",
        ),
        "churn_at": (
            "Churn by a horizon",
            "One minus each arm's Kaplan–Meier survival at the horizon, Greenwood standard "
            "errors, arms independent.",
            "Random assignment; censoring unrelated to the event within each arm.",
            "Kaplan & Meier (1958); Greenwood (1926).",
        ),
        "cox_ph": (
            "Cox proportional hazards",
            "Log hazard ratio of the treatment with the spec's covariates (Efron ties, as R "
            "coxph); the proportional-hazards test is a check.",
            "Hazards proportional over time; random assignment (covariates add precision).",
            "Cox (1972); Fox (2002), appendix to An R and S-PLUS Companion; lifelines.",
        ),
    }
)


def survival_results(res: ExperimentResults) -> list[Result]:
    """The RMST results of the report (one per time-to-event outcome)."""
    return [r for r in res.results if r.estimator == "rmst_difference"]


def km_plot(rmst: Result) -> Figure:
    """Share still without the event (retained) by arm up to the RMST horizon; the area
    between the curves is the RMST difference."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=110)
    horizon = rmst.details["horizon"]
    curves = {}
    for arm, color, label in (("control", _GREY, "Control"), ("treated", _BLUE, "Treated")):
        table = rmst.details["km"][arm]
        at_risk = np.asarray(table["at_risk"], dtype=float)
        events = np.asarray(table["events"], dtype=float)
        surv = np.cumprod(1.0 - events / at_risk)
        times = np.concatenate([[0.0], np.asarray(table["time"], dtype=float), [horizon]])
        values = np.concatenate([[1.0], surv, [surv[-1] if len(surv) else 1.0]])
        ax.step(times, values, where="post", color=color, label=label, linewidth=1.8)
        curves[arm] = (times, values)
    ax.set_xlim(0, horizon)
    ax.set_xlabel(f"Time since treatment ({rmst.outcome})")
    ax.set_ylabel("Share without the event")
    ax.legend(loc="lower left", frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def survival_html(res: ExperimentResults) -> str:
    """RMST, churn by horizon and the Cox hazard ratio, one row each."""
    rows = []
    for r in res.results:
        if r.estimator == "rmst_difference":
            d = r.details
            what = (
                f"Restricted mean time to {d['horizon']:g}: {d['rmst_treated']:.2f} treated vs "
                f"{d['rmst_control']:.2f} control"
            )
        elif r.estimator.startswith("churn_at_"):
            d = r.details
            what = (
                f"Share with the event by {d['horizon']:g}: {d['churn_treated']:.1%} treated vs "
                f"{d['churn_control']:.1%} control"
            )
        elif r.estimator == "cox_ph":
            hr = r.details.get("hazard_ratio")
            what = "Cox log hazard ratio (with the covariates)" + (
                f"; hazard ratio {hr:.3f}" if hr is not None else ""
            )
        else:
            continue
        rows.append(
            [
                escape(what),
                f"{r.estimate:,.4g}",
                f"{r.conf_low:,.4g} to {r.conf_high:,.4g}",
                f"{r.p_value:.3g}",
            ]
        )
    return _table(["Quantity", "Difference (treated − control)", "95% CI", "p"], rows, raw=True)
