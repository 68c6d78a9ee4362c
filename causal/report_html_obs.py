"""HTML pieces of the observational report, built from ``results.json`` (escaped, no estimation)."""

from __future__ import annotations

import math
from html import escape

from causal.report_html import METHODS, _table, badge
from causal.results import ExperimentResults

METHODS.update(
    {
        "naive_difference": (
            "Naive difference",
            "Mean outcome of the treated minus that of the untreated, nothing adjusted; Welch "
            "standard error. Shown as the reference that adjustment has to move away from.",
            "That treated and untreated units are alike in everything else — rarely true when "
            "customers chose the service.",
            "—",
        ),
        "regression": (
            "Regression adjustment",
            "OLS of the outcome on treatment, the adjustment set and their interactions, "
            "centred at the target population's means so the treatment coefficient is the "
            "ATE, ATT or ATC; heteroskedasticity-robust standard errors.",
            "No unmeasured confounding given the adjustment set; the outcome is linear in it "
            "within each arm.",
            "Imbens & Wooldridge (2009), JEL 47(1); Lin (2013), AoAS 7(1).",
        ),
        "ipw": (
            "Inverse probability weighting",
            "Logistic propensity score on the adjustment set; normalised (Hájek) weights for "
            "the target population; extreme scores clipped or trimmed as the spec says. The "
            "standard error accounts for estimating the propensity (stacked M-estimation).",
            "No unmeasured confounding; overlap; a correctly specified propensity model.",
            "Hirano, Imbens & Ridder (2003), Econometrica 71(4).",
        ),
        "aipw": (
            "Augmented IPW (doubly robust)",
            "Outcome models per arm plus the propensity score, both cross-fitted over seeded "
            "folds with the spec's learners; standard error from the influence function.",
            "No unmeasured confounding; overlap; either the outcome or the propensity model "
            "good enough (both converging fast enough for valid intervals).",
            "Robins, Rotnitzky & Zhao (1994); Chernozhukov et al. (2018), Econometrics J. 21(1).",
        ),
        "linear_dml": (
            "Double machine learning (econml LinearDML)",
            "Partialling-out: residualise outcome and treatment on the adjustment set with "
            "cross-fitted learners, then regress residual on residual.",
            "No unmeasured confounding; overlap; an effect that is linear in the effect "
            "modifiers (constant without them), so under heterogeneity it is a weighted average.",
            "Chernozhukov et al. (2018), Econometrics J. 21(1); econml.",
        ),
        "dr_learner": (
            "DR-learner (econml)",
            "Doubly robust pseudo-outcomes from cross-fitted outcome and propensity models, "
            "averaged over the target population.",
            "No unmeasured confounding; overlap.",
            "Kennedy (2023), EJS 17(2); econml.",
        ),
        "causal_forest": (
            "Causal forest (econml CausalForestDML)",
            "Generalised random forest on the residualised outcome and treatment: an effect "
            "per unit that varies with the effect modifiers, averaged over the target.",
            "No unmeasured confounding; overlap; enough units per leaf.",
            "Athey, Tibshirani & Wager (2019), AoS 47(2); econml.",
        ),
    }
)


def identification_html(res: ExperimentResults) -> str:
    """Where the adjustment set comes from, per outcome."""
    check = res.check("identification")
    if check is None:
        return "<p>No identification step was recorded.</p>"
    settings = res.experiment["design_settings"]
    parts = [f"<p>{badge(check.status)} {escape(check.detail)}.</p>"]
    if settings.get("unobserved"):
        names = ", ".join(settings["unobserved"])
        parts.append(
            f"<p class='small'>Declared unobserved (never adjusted for): {escape(names)}.</p>"
        )
    if check.table:
        rows = [[r["outcome"], r["adjustment_set"]] for r in check.table]
        parts.append(_table(["Outcome", "Adjustment set"], rows))
    other = res.check("graph_vs_confounders")
    if other is not None:
        parts.append(f"<p>{badge(other.status)} {escape(other.detail)}.</p>")
    return _div("".join(parts))


def agreement_html(res: ExperimentResults) -> str:
    check = res.check("estimator_agreement")
    if check is None:
        return ""
    return _div(f"<p>{badge(check.status)} {escape(_sentence(check.detail))}</p>")


def refuters_html(res: ExperimentResults) -> str:
    check = res.check("refutation")
    if check is None:
        return "<p>No refuters were run (design.refuters is empty).</p>"
    if not check.table:
        return _div(f"<p>{badge(check.status)} {escape(check.detail)}</p>")
    rows = [
        [
            badge("pass" if r["passed"] else "warn"),
            escape(r["refuter"].replace("_", " ")),
            escape(_num(r["new_effect"])),
            escape(_num(r["original_estimate"])),
            escape(r["sentence"]),
        ]
        for r in check.table
    ]
    header = ["", "Refuter", "New effect", "Original", "What it means"]
    rules = "; ".join(
        dict.fromkeys(f"{r['refuter'].replace('_', ' ')} {r['rule']}" for r in check.table)
    )
    return _table(header, rows, raw=True) + _div(f"<p class='small'>Rules: {escape(rules)}.</p>")


def sensitivity_html(res: ExperimentResults) -> str:
    check = res.check("sensitivity")
    if check is None:
        return "<p>No sensitivity analysis was run.</p>"
    parts = [f"<p>{badge(check.status)} {escape(_sentence(check.detail))}</p>"]
    if check.table:
        rows = [
            [
                r["label"],
                f"{r['r2dz_x']:.1%}",
                f"{r['r2yz_dx']:.1%}",
                _num(r["adjusted_estimate"]),
                f"{_num(r['adjusted_lower'])} to {_num(r['adjusted_upper'])}",
            ]
            for r in check.table
        ]
        header = [
            "Confounder as strong as",
            "R² with treatment",
            "R² with outcome",
            "Adjusted estimate",
            "Adjusted CI",
        ]
        parts.append(_table(header, rows))
    return _div("".join(parts))


def e_value_html(res: ExperimentResults) -> str:
    check = res.check("e_value")
    if check is None or not check.table:
        return f"<p>{escape(check.detail) if check else 'No E-values were computed.'}</p>"
    rows = [
        [
            r["outcome"],
            r["scale"],
            f"{_num(r['risk_ratio'])} ({_num(r['rr_low'])} to {_num(r['rr_high'])})",
            _num(r["e_value"]),
            _num(r["e_value_ci"]),
        ]
        for r in check.table
    ]
    header = ["Outcome", "Scale", "Risk ratio (CI)", "E-value", "E-value of the CI"]
    intro = f"<p>{badge(check.status)} {escape(_sentence(check.detail))}</p>"
    return _div(intro) + _table(header, rows)


def cate_html(res: ExperimentResults) -> str:
    outcome = res.primary["outcome"]
    forest = res.get(outcome=outcome, estimator="causal_forest")
    cate = forest.details.get("cate") if forest is not None else None
    if not cate:
        return "<p>No effect modifiers in the spec (design.effect_modifiers), so no CATEs.</p>"
    rows = [
        [
            r["modifier"],
            r["bin"],
            f"{r['n']:,}",
            _num(r["mean_cate"]),
            f"{_num(r['conf_low'])} to {_num(r['conf_high'])}",
        ]
        for r in cate["bins"]
    ]
    quantiles = ", ".join(f"{k}: {_num(v)}" for k, v in cate["quantiles"].items())
    return _table(["Modifier", "Bin", "Units", "Mean effect", "CI"], rows) + _div(
        f"<p class='small'>Spread of unit-level effects: {escape(quantiles)}. "
        f"{escape(cate['bin_rule'])}.</p>"
    )


def _div(html: str) -> str:
    """Inside the report's style scope (badges and small print are styled under .causal)."""
    return f'<div class="causal">{html}</div>'


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.4g}"
