"""How far to trust an observational estimate: agreement, refuters, sensitivity, E-values.

Each function returns a :class:`~causal.checks.CheckResult` whose ``table`` carries the rows
the report shows; the sensitivity contour (too large for a check table) goes into the
regression result's ``details``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from causal.checks import CheckResult
from causal.designs.obs_frame import ObsFrame
from causal.results import Result

ADJUSTED = ("regression", "ipw", "aipw", "linear_dml", "dr_learner", "causal_forest")


def agreement_check(results: list[Result], outcome: str) -> CheckResult:
    """Do the adjusted estimators agree, and how far is the naive difference from them?

    Agreement means every adjusted point estimate lies inside every other adjusted interval;
    estimators built on different models (outcome regression, propensity weighting, both) that
    agree make a model-driven artefact less likely. The naive difference is the reference that
    shows how much adjustment mattered.

    Examples
    --------
    >>> a = Result("regression", "ATT", "y", 1.0, 0.2, 0.6, 1.4, 0.0, 100, 40)
    >>> b = Result("aipw", "ATT", "y", 1.1, 0.25, 0.6, 1.6, 0.0, 100, 40)
    >>> agreement_check([a, b], "y").status
    'pass'
    """
    on = [r for r in results if r.outcome == outcome]
    adjusted = [r for r in on if r.estimator in ADJUSTED and _finite(r.conf_low)]
    naive = next((r for r in on if r.estimator == "naive_difference"), None)
    rows = [
        {
            "estimator": r.estimator,
            "estimate": r.estimate,
            "conf_low": r.conf_low,
            "conf_high": r.conf_high,
        }
        for r in on
    ]
    if len(adjusted) < 2:
        return CheckResult(
            "estimator_agreement", "n/a", "fewer than two adjusted estimators ran", rows
        )
    outside = [
        (a.estimator, b.estimator)
        for a in adjusted
        for b in adjusted
        if a is not b and not b.conf_low <= a.estimate <= b.conf_high
    ]
    low = min(r.estimate for r in adjusted)
    high = max(r.estimate for r in adjusted)
    text = f"the {len(adjusted)} adjusted estimates range from {low:,.4g} to {high:,.4g}"
    if naive is not None:
        inside = sum(r.conf_low <= naive.estimate <= r.conf_high for r in adjusted)
        text += f"; the naive difference is {naive.estimate:,.4g}"
        text += (
            " and lies outside every adjusted interval: confounding is large here"
            if inside == 0
            else f" (inside {inside} of the adjusted intervals)"
        )
    if outside:
        first = outside[0]
        return CheckResult(
            "estimator_agreement",
            "warn",
            text + f". They disagree ({first[0]} lies outside the interval of {first[1]}"
            f"{' and more' if len(outside) > 1 else ''}): the answer depends on the model; "
            "prefer the doubly robust estimates (aipw, dr_learner) and look at overlap",
            rows,
        )
    return CheckResult(
        "estimator_agreement",
        "pass",
        text + ". Each adjusted estimate lies inside every other's interval: they agree",
        rows,
    )


def refutation_check(
    frame: ObsFrame,
    *,
    outcome: str,
    graph,
    adjustment: tuple[str, ...],
    refuters: tuple[str, ...],
    simulations: int,
    seed: int,
) -> CheckResult:
    """dowhy's refuters on the backdoor linear-regression estimate of ``outcome``."""
    from causal.designs.obs_dowhy import refute

    rows = refute(
        frame.table,
        treatment=frame.treatment,
        outcome=outcome,
        graph=graph,
        adjustment_set=adjustment,
        refuters=refuters,
        simulations=simulations,
        seed=seed,
    )
    failed = [r["refuter"] for r in rows if not r["passed"]]
    text = (
        f"{len(rows) - len(failed)} of {len(rows)} refuters passed ({simulations} simulations each)"
    )
    if failed:
        return CheckResult(
            "refutation",
            "warn",
            text + f"; failed: {', '.join(failed)} — the estimate is fragile to that test",
            rows,
        )
    return CheckResult("refutation", "pass", text, rows)


def sensitivity_analysis(
    y: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    *,
    names: list[str],
    treatment: str,
    benchmarks: tuple[str, ...],
    alpha: float,
) -> tuple[CheckResult, dict]:
    """Cinelli–Hazlett robustness values of the linear regression estimate, with benchmarks.

    Returns the check and the JSON-safe payload (statistics, bounds and contour grid) that the
    report draws.
    """
    from causal.inference.sensitivity import contour_grid, omitted_variable_bias

    chosen = benchmarks or _strongest(y, d, X, names)
    sens = omitted_variable_bias(
        y, d, X, names=names, treatment_name=treatment, alpha=alpha, benchmarks=chosen
    )
    stats = sens.to_dict()
    lim = _contour_limit(stats)
    contour = contour_grid(sens, lim=lim, lim_y=lim, n=41).to_dict()
    payload = {"statistics": stats, "contour": contour}
    text = (
        f"regression estimate {stats['estimate']:,.4g} (partial R² of treatment with outcome "
        f"{stats['r2yd_x']:.2%}); an unmeasured confounder explaining {stats['rv_q']:.2%} "
        "of the residual variance of both treatment and outcome would bring it to zero"
    )
    if stats["rv_qa"] > 0:
        text += f", and {stats['rv_qa']:.2%} would make it not significant"
    else:
        text += f"; it is not significant at the {alpha:.0%} level even without one"
    rows = stats.get("bounds", [])
    if stats["rv_qa"] < 0.01:
        return CheckResult("sensitivity", "warn", text + ": fragile", rows), payload
    overturned = [r["label"] for r in rows if r["adjusted_lower"] <= 0 <= r["adjusted_upper"]]
    if overturned:
        text += (
            f"; a confounder as strong as {overturned[0]} would make it not significant "
            "(see the bounds table)"
        )
        return CheckResult("sensitivity", "warn", text, rows), payload
    if rows:
        strongest = max(rows, key=lambda r: r["r2yz_dx"])
        text += f"; not overturned by confounders up to {strongest['label']}"
    return CheckResult("sensitivity", "pass", text, rows), payload


def e_value_check(
    results: list[Result], kinds: Mapping[str, str], *, frame: ObsFrame, primary: str
) -> CheckResult:
    """VanderWeele–Ding E-values for the primary estimator on every outcome.

    Binary outcomes: the risk ratio in the target population. For the ATT the treated risk
    r1 is observed and r0 = r1 − effect; for the ATC r0 is observed and r1 = r0 + effect; for
    the ATE r0 is approximated by the control mean (stated in the table). The interval maps
    the effect's interval through the same formula (the observed risk's own sampling error is
    small beside it and ignored). Continuous and count outcomes: the VanderWeele–Ding
    approximation RR ≈ exp(0.91 × effect / SD(outcome)).
    """
    from causal.inference.evalue import e_value

    rows = []
    for r in results:
        if r.estimator != primary or not _finite(r.conf_low):
            continue
        y, d = frame.outcome(r.outcome), frame.d
        if kinds[r.outcome] == "binary":
            rr, lo, hi, scale = _binary_risk_ratio(y, d, r)
        else:
            rr, lo, hi, scale = _approximate_risk_ratio(y, r)
        if not (_finite(rr) and rr > 0):
            continue
        ev = e_value(rr, lo=lo, hi=hi)
        rows.append(
            {
                "outcome": r.outcome,
                "scale": scale,
                "risk_ratio": rr,
                "rr_low": lo,
                "rr_high": hi,
                "e_value": ev.e_value,
                "e_value_ci": ev.e_value_ci,
            }
        )
    if not rows:
        return CheckResult("e_value", "n/a", f"{primary} gave no risk ratio to assess")
    first = rows[0]
    text = (
        f"{first['outcome']}: an unmeasured confounder associated with both treatment and "
        f"outcome by a risk ratio of {first['e_value']:.2f} each could explain the estimate "
        f"away; {first['e_value_ci']:.2f} could move the interval to include no effect"
    )
    status = "warn" if first["e_value_ci"] <= 1.0 + 1e-12 else "pass"
    return CheckResult("e_value", status, text, rows)


def _binary_risk_ratio(y: np.ndarray, d: np.ndarray, r: Result):
    """Risk ratio from the observed risk of the target group and the effect (and its limits)."""
    if r.estimand == "ATT":  # treated risk r1 observed, r0 = r1 - effect
        r1 = y[d == 1].mean()
        effects = np.array([r.estimate, r.conf_low, r.conf_high])
        with np.errstate(divide="ignore", invalid="ignore"):
            rr, a, b = (r1 / (r1 - effects)).tolist()
        return rr, min(a, b), max(a, b), "risk ratio among the treated"
    r0 = y[d == 0].mean()  # untreated risk r0 observed (ATC), or taken as baseline (ATE)
    with np.errstate(divide="ignore", invalid="ignore"):
        rr, a, b = ((r0 + np.array([r.estimate, r.conf_low, r.conf_high])) / r0).tolist()
    scale = (
        "risk ratio among the untreated"
        if r.estimand == "ATC"
        else "risk ratio, control mean as baseline (approximation for the ATE)"
    )
    return rr, min(a, b), max(a, b), scale


def _approximate_risk_ratio(y: np.ndarray, r: Result):
    from causal.inference.evalue import risk_ratio_from_difference

    sd = float(np.std(y, ddof=1))
    alpha = 1 - r.conf_level
    rr = risk_ratio_from_difference(r.estimate, sd=sd, se=r.std_error, alpha=alpha)
    return rr.rr, rr.lo, rr.hi, "approximate risk ratio exp(0.91 × effect / SD)"


def _contour_limit(stats: dict) -> float:
    """Axis limit of the contour: wide enough for the zero line and the benchmarks, narrow
    enough that they are not squeezed into a corner (sensemakr's fixed 0.4 often does that)."""
    points = [stats["rv_q"] * 2.5]
    points += [max(r["r2dz_x"], r["r2yz_dx"]) * 1.3 for r in stats.get("bounds", [])]
    finite = [p for p in points if p is not None and math.isfinite(p)]
    return float(min(0.95, max(0.02, *finite))) if finite else 0.4


def _strongest(y, d, X, names: list[str], k: int = 3) -> tuple[str, ...]:
    """The ``k`` covariates with the largest |t| in the outcome regression (default benchmarks)."""
    if X.shape[1] == 0:
        return ()
    design = np.column_stack([np.ones(len(y)), d, X])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = len(y) - design.shape[1]
    if dof <= 0:
        return ()
    sigma2 = resid @ resid / dof
    xtx_inv = np.linalg.pinv(design.T @ design)
    t = np.abs(coef[2:]) / np.sqrt(np.maximum(np.diag(xtx_inv)[2:] * sigma2, 1e-300))
    order = np.argsort(-t)[:k]
    return tuple(names[i] for i in order)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
