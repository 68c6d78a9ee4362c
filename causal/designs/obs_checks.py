"""Design checks for selection on observables: overlap of propensities, covariate balance.

Both return a :class:`causal.checks.CheckResult` whose ``detail`` is a plain sentence and whose
``table`` holds the rows a plot or a report table needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from causal.checks import CheckResult
from causal.designs.obs_propensity import ess

OVERLAP_WARN_SHARE = 0.10  # warn when more than 10% of an arm lies outside the bounds
HISTOGRAM_BINS = 20


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def overlap_check(
    ps: np.ndarray,
    d: np.ndarray,
    *,
    bounds: tuple[float, float] = (0.05, 0.95),
    warn_share: float = OVERLAP_WARN_SHARE,
) -> CheckResult:
    """Do the propensity scores of treated and untreated units overlap?

    Reports, per arm, the share of units with a propensity outside ``bounds``, the smallest and
    largest propensity, and the effective sample size (Σw)²/Σw² of the inverse-probability
    weights for the ATE (1/e for the treated, 1/(1 − e) for the untreated) and of the
    untreated's ATT weights e/(1 − e). Status: ``fail`` when the arms' propensity ranges do not
    intersect; ``warn`` when more than ``warn_share`` (10%) of either arm lies outside
    ``bounds`` (weights there are large and estimates lean on few units); else ``pass``.
    The table is a histogram of the propensity by arm in 20 equal bins on [0, 1].

    Examples
    --------
    >>> r = overlap_check(np.array([0.2, 0.4, 0.5, 0.6, 0.8, 0.3]), np.array([0, 0, 0, 1, 1, 1]))
    >>> r.status, len(r.table)
    ('pass', 20)
    """
    ps, d = np.asarray(ps, dtype=float), np.asarray(d)
    name = "overlap"
    if len(ps) == 0 or d.min() == d.max():
        return CheckResult(name, "n/a", "overlap needs treated and untreated units")
    lo, hi = bounds
    t, c = ps[d == 1], ps[d == 0]
    outside = {
        arm: float(np.mean((x < lo) | (x > hi))) for arm, x in (("treated", t), ("control", c))
    }
    eps = np.finfo(float).tiny
    ess_t = ess(1 / np.maximum(t, eps))
    ess_c = ess(1 / np.maximum(1 - c, eps))
    ess_c_att = ess(c / np.maximum(1 - c, eps))
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    counts_t = np.histogram(t, bins=edges)[0]
    counts_c = np.histogram(c, bins=edges)[0]
    table = [
        {
            "bin_low": float(edges[i]),
            "bin_high": float(edges[i + 1]),
            "treated": int(counts_t[i]),
            "control": int(counts_c[i]),
            "treated_share": float(counts_t[i] / len(t)),
            "control_share": float(counts_c[i] / len(c)),
        }
        for i in range(HISTOGRAM_BINS)
    ]
    ranges = (
        f"Propensities range {t.min():.3g}–{t.max():.3g} among the {len(t)} treated and "
        f"{c.min():.3g}–{c.max():.3g} among the {len(c)} untreated"
    )
    shares = (
        f"{_pct(outside['treated'])} of treated and {_pct(outside['control'])} of untreated units "
        f"lie outside [{lo:g}, {hi:g}]"
    )
    sizes = (
        f"effective sample sizes under ATE weights: {ess_t:.0f} treated, {ess_c:.0f} untreated "
        f"(untreated under ATT weights: {ess_c_att:.0f})"
    )
    if t.min() > c.max() or c.min() > t.max():
        status, verdict = "fail", "The arms do not overlap at all: no unit has a comparable one."
    elif max(outside.values()) > warn_share:
        status = "warn"
        verdict = (
            f"More than {_pct(warn_share)} of an arm is outside the bounds: weights there are "
            "large and the estimate rests on few units."
        )
    else:
        status, verdict = "pass", "The arms overlap well."
    detail = f"{ranges}; {shares}; {sizes}. {verdict}"
    return CheckResult(name, status, detail, tuple(table))


def _smd(diff: float, sd: float) -> float | None:
    if sd > 0:
        return float(diff / sd)
    return 0.0 if diff == 0 else None


def balance_check(
    X: np.ndarray,
    d: np.ndarray,
    *,
    names: Sequence[str],
    weights: np.ndarray | None = None,
    threshold: float = 0.1,
    estimand: str = "ATE",
) -> CheckResult:
    """Standardised mean differences of the covariates, before and after weighting.

    SMD = (mean of the treated − mean of the untreated) / s, with s = √((s²₁ + s²₀)/2) the
    pooled standard deviation of the *unweighted* sample in both columns, so the before and
    after numbers differ only through the means (Austin 2009; a weighted SD would move with
    the weights and could hide imbalance). ``weights`` are per-unit weights (e.g. the IPW
    weights towards ``estimand``); means after weighting are weighted means within each arm.
    Status: ``warn`` when any |SMD| after weighting (before, if no weights) exceeds
    ``threshold`` (0.1, the usual rule of thumb); ``n/a`` without covariates.

    Examples
    --------
    >>> X = np.array([[1.0], [2], [3], [2], [3], [4]])
    >>> r = balance_check(X, np.array([0, 0, 0, 1, 1, 1]), names=["x"])
    >>> r.status, r.table[0]["smd_before"]
    ('warn', 1.0)
    """
    X = np.asarray(X, dtype=float).reshape(len(d), -1)
    d = np.asarray(d)
    name = "covariate_balance"
    if X.shape[1] == 0:
        return CheckResult(name, "n/a", "no covariates to balance")
    if d.min() == d.max():
        return CheckResult(name, "n/a", "balance needs treated and untreated units")
    t, c = d == 1, d == 0
    sd = np.sqrt((X[t].var(axis=0, ddof=1) + X[c].var(axis=0, ddof=1)) / 2)
    before = X[t].mean(axis=0) - X[c].mean(axis=0)
    after = None
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        after = np.average(X[t], axis=0, weights=w[t]) - np.average(X[c], axis=0, weights=w[c])
    rows = []
    for j, col in enumerate(names):
        rows.append(
            {
                "covariate": str(col),
                "smd_before": _smd(before[j], sd[j]),
                "smd_after": None if after is None else _smd(after[j], sd[j]),
            }
        )
    key = "smd_before" if after is None else "smd_after"
    judged = [(r["covariate"], r[key]) for r in rows]
    worst_name, worst_smd = max(
        judged, key=lambda item: math.inf if item[1] is None else abs(item[1])
    )
    bad = [n for n, v in judged if v is None or abs(v) > threshold]
    when = "without weighting" if after is None else f"after weighting for the {estimand}"
    largest = "undefined" if worst_smd is None else f"{worst_smd:+.2f}"
    detail = f"Largest standardised mean difference {when}: {worst_name} ({largest})"
    if bad:
        status = "warn"
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        detail += f"; {len(bad)} of {len(rows)} covariates exceed {threshold:g}: {shown}."
    else:
        status = "pass"
        detail += f"; all {len(rows)} covariates are within {threshold:g}."
    return CheckResult(name, status, detail, tuple(rows))
