"""Targeting policies priced on held-out customers with doubly robust scores.

A policy says, for each customer, treat or not. Its value against treating no one is the mean
over customers of ``treat_i × (value × Γ_i − cost)``, where ``Γ_i`` is the doubly robust
(AIPW) score of the customer's effect:

    Γ = μ1(x) − μ0(x) + d (y − μ1(x)) / e(x) − (1 − d) (y − μ0(x)) / (1 − e(x))

with outcome models μ and propensity e fitted on other customers (the training part, or the
other folds). Given the features, ``E[Γ | x] = τ(x)`` whenever e is right — always so in a
randomised pilot, whose e is the planned share — so the mean is unbiased for the policy's
average profit over these customers, and its standard error is the scores' spread over √n
(Athey & Wager 2021, "Policy learning with observational data"). The policy is fixed before
the scores are computed (it comes from models that never saw these customers' outcomes),
which is what makes the interval honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal.errors import DesignError


@dataclass(frozen=True)
class Pricing:
    """Money per unit of outcome and per contact; (1, 0) prices the outcome itself."""

    value_per_unit: float = 1.0
    cost_per_contact: float = 0.0

    @property
    def threshold(self) -> float:
        """Predicted uplift above which a contact pays for itself."""
        return self.cost_per_contact / self.value_per_unit


def dr_scores(
    y: np.ndarray, d: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, e: np.ndarray
) -> np.ndarray:
    """Per-customer doubly robust (AIPW) scores of the effect.

    Examples
    --------
    >>> dr_scores(np.array([1.0, 0.0]), np.array([1, 0]), np.array([0.2, 0.2]),
    ...           np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    array([1.3, 0.7])
    """
    return mu1 - mu0 + d * (y - mu1) / e - (1 - d) * (y - mu0) / (1 - e)


def decide(
    score: np.ndarray,
    *,
    pricing: Pricing,
    max_treated: int | None = None,
) -> np.ndarray:
    """Treat (1) where the predicted uplift pays for the contact, best first within a budget.

    Parameters
    ----------
    score : array of shape (n,)
        Predicted uplift per customer, in outcome units.
    pricing : Pricing
        Treat where ``score × value_per_unit > cost_per_contact``.
    max_treated : int, optional
        At most this many customers are treated: the highest scores among those that pay.

    Examples
    --------
    >>> decide(np.array([0.3, -0.1, 0.2, 0.05]), pricing=Pricing(10.0, 1.0), max_treated=1)
    array([1, 0, 0, 0])
    """
    treat = score * pricing.value_per_unit > pricing.cost_per_contact
    if max_treated is not None and treat.sum() > max_treated:
        # Stable order: among equal scores the earlier customer wins, so reruns agree.
        order = np.argsort(-score, kind="stable")
        treat = np.zeros(len(score), dtype=bool)
        treat[order[:max_treated]] = score[order[:max_treated]] * pricing.value_per_unit > (
            pricing.cost_per_contact
        )
    return treat.astype(np.int64)


def policy_values(
    treat: np.ndarray, gamma: np.ndarray, *, pricing: Pricing, alpha: float = 0.05
) -> dict[str, dict[str, float]]:
    """Average profit per customer of the policy, of treating everyone, and their difference.

    Each entry has ``estimate``, ``std_error``, ``conf_low``, ``conf_high`` (normal interval at
    ``1 - alpha``), all per customer against treating no one (whose value is 0 by definition).

    Examples
    --------
    >>> v = policy_values(np.array([1, 0, 1, 0]), np.array([2.0, -1.0, 1.0, 0.0]),
    ...                   pricing=Pricing(1.0, 0.5))
    >>> v["policy"]["estimate"], v["treat_all"]["estimate"], v["policy_vs_treat_all"]["estimate"]
    (0.5, 0.0, 0.5)
    """
    from scipy.stats import norm

    if len(gamma) < 2:
        raise DesignError("pricing a policy needs at least two held-out customers")
    net = pricing.value_per_unit * gamma - pricing.cost_per_contact
    z = norm.ppf(1 - alpha / 2)
    contributions = {
        "policy": treat * net,
        "treat_all": net,
        "policy_vs_treat_all": (treat - 1) * net,
    }
    out = {}
    for key, values in contributions.items():
        mean = float(values.mean())
        se = float(values.std(ddof=1) / np.sqrt(len(values)))
        out[key] = {
            "estimate": mean,
            "std_error": se,
            "conf_low": mean - z * se,
            "conf_high": mean + z * se,
        }
    return out


def profit_curve(
    score: np.ndarray,
    gamma: np.ndarray,
    *,
    pricing: Pricing,
    points: int = 101,
    alpha: float = 0.05,
) -> dict[str, list[float]]:
    """Average profit per customer when the top share ``q`` by predicted uplift is treated.

    Returns the shares, the estimates and a pointwise normal interval, on ``points`` shares
    from 0 to 1 (one sort and cumulative sums: no loop over shares).

    Examples
    --------
    >>> c = profit_curve(np.array([3.0, 2.0, 1.0, 0.0]), np.array([2.0, 1.0, 0.0, -1.0]),
    ...                  pricing=Pricing(1.0, 0.0), points=5)
    >>> c["share"], c["estimate"]
    ([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.5, 0.75, 0.75, 0.5])
    """
    from scipy.stats import norm

    n = len(score)
    order = np.argsort(-score, kind="stable")
    net = pricing.value_per_unit * gamma[order] - pricing.cost_per_contact
    first = np.concatenate([[0.0], np.cumsum(net)])
    second = np.concatenate([[0.0], np.cumsum(net**2)])
    shares = np.linspace(0.0, 1.0, points)
    k = np.rint(shares * n).astype(int)
    mean = first[k] / n
    # Contributions are net_i for the top k and 0 for the rest: variance from the two sums.
    var = np.maximum(second[k] / n - mean**2, 0.0) * n / max(n - 1, 1)
    se = np.sqrt(var / n)
    z = norm.ppf(1 - alpha / 2)
    return {
        "share": [round(float(s), 10) for s in shares],
        "estimate": mean.tolist(),
        "conf_low": (mean - z * se).tolist(),
        "conf_high": (mean + z * se).tolist(),
    }


def segment_profile(
    table, treat: np.ndarray, *, features: list[str], categorical: list[str], top: int = 5
) -> list[dict[str, object]]:
    """Who the policy targets: the features that differ most between targeted and the rest.

    Numeric features are compared by their means (standardised difference); categorical ones
    by the level most over-represented among the targeted. Each row carries a plain sentence.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"tickets": [5, 4, 0, 1], "tier": ["gold", "gold", "bronze", "gold"]})
    >>> rows = segment_profile(t, np.array([1, 1, 0, 0]), features=["tickets", "tier"],
    ...                        categorical=["tier"])
    >>> rows[0]["sentence"]
    'Targeted customers have higher tickets: 4.5 on average against 0.5 for the others.'
    """
    from causal.designs.obs_frame import is_numeric

    chosen = np.asarray(treat, dtype=bool)
    if chosen.all() or not chosen.any():
        return []
    rows = []
    for column in features:
        values = table[column]
        if column in categorical or not is_numeric(values):
            rows.append(_level_row(column, values.astype(str).to_numpy(), chosen))
        else:
            rows.append(_numeric_row(column, values.to_numpy(dtype=float), chosen))
    rows.sort(key=lambda r: -abs(r["smd"]))
    return rows[:top]


def _numeric_row(column: str, x: np.ndarray, chosen: np.ndarray) -> dict[str, object]:
    a, b = x[chosen], x[~chosen]
    pooled = np.sqrt((a.var() + b.var()) / 2)
    smd = 0.0 if pooled == 0 else float((a.mean() - b.mean()) / pooled)
    word = "higher" if a.mean() >= b.mean() else "lower"
    if np.isin(x, (0.0, 1.0)).all():  # a 0/1 flag reads better as a share
        sentence = (
            f"{a.mean():.0%} of targeted customers have {column} = 1, against "
            f"{b.mean():.0%} of the others."
        )
    else:
        sentence = (
            f"Targeted customers have {word} {column}: {_num(a.mean())} on average "
            f"against {_num(b.mean())} for the others."
        )
    return {
        "feature": column,
        "targeted": float(a.mean()),
        "others": float(b.mean()),
        "smd": smd,
        "sentence": sentence,
    }


def _level_row(column: str, text: np.ndarray, chosen: np.ndarray) -> dict[str, object]:
    best = None
    for level in np.unique(text):
        p_in, p_out = (text[chosen] == level).mean(), (text[~chosen] == level).mean()
        pooled = np.sqrt((p_in * (1 - p_in) + p_out * (1 - p_out)) / 2)
        smd = 0.0 if pooled == 0 else (p_in - p_out) / pooled
        if best is None or smd > best[1]:
            best = (level, float(smd), float(p_in), float(p_out))
    level, smd, p_in, p_out = best
    return {
        "feature": f"{column} = {level}",
        "targeted": p_in,
        "others": p_out,
        "smd": smd,
        "sentence": f"{p_in:.0%} of targeted customers have {column} = {level}, against "
        f"{p_out:.0%} of the others.",
    }


def _num(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
