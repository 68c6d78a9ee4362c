"""Seeded simulator of a randomised targeting pilot whose per-customer uplift is known.

An electronics retailer offers a random half of its customers a proactive remote technical-support
session and watches who buys an accessory or upgrade within 90 days. The average effect is
small, because it is the sum of four latent customer types that react very differently: the
persuadables buy more when helped, the sure things and lost causes do not react, and the
do-not-disturbs, who dislike being contacted, buy less. Which type a customer is depends on the
CRM features through a multinomial logit, so a good uplift model can learn from the features whom
to target, but not perfectly: each customer's true uplift given the features is known exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causal.errors import SpecError
from causal.simulate import SimulatedPilot
from causal.simulate_checks import is_number, is_whole
from causal.simulate_checks import start_date as start_date_of

__all__ = ["TYPES", "UPLIFT_QUERY", "remote_support_targeting"]

# The four latent types, in the order of every per-type array below.
TYPES: tuple[str, ...] = ("persuadable", "sure_thing", "lost_cause", "do_not_disturb")
# P(purchase within 90 days | type, no offer) and the offer's effect on it (x effect_scale).
BASELINE = np.array([0.10, 0.55, 0.03, 0.25])
EFFECT = np.array([0.20, 0.00, 0.00, -0.10])
# Type shares other than do-not-disturb, before scaling to 1 - dnd_share: at the default
# dnd_share = 0.25 the shares are 0.35 / 0.20 / 0.20 / 0.25.
OTHER_SHARES = np.array([0.35, 0.20, 0.20])
# Largest effect_scale that keeps every type's purchase probability inside [0, 1]: 2.5, set by
# the do-not-disturbs (0.25 - 2.5 x 0.10 = 0).
_UP, _DOWN = EFFECT > 0, EFFECT < 0
MAX_EFFECT_SCALE = float(
    min(np.min((1 - BASELINE[_UP]) / EFFECT[_UP]), np.min(BASELINE[_DOWN] / -EFFECT[_DOWN]))
)

SEGMENTS: tuple[str, ...] = ("bronze", "silver", "gold")
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
BASKET_MEAN = np.array([60.0, 80.0, 120.0])  # EUR per accessory/upgrade purchase, by segment
BASKET_SHAPE = 2.5  # gamma shape: coefficient of variation 0.63
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")
REGION_SHARE = np.array([0.25, 0.2, 0.2, 0.2, 0.15])

MIN_CUSTOMERS = 100

UPLIFT_QUERY: str = """
SELECT
    c.*,
    o.purchased_90d,
    o.revenue_90d
FROM crm AS c
JOIN orders_90d AS o ON o.customer_id = c.customer_id
ORDER BY c.customer_id
"""
"""One row per customer: the CRM features and assignment with both 90-day outcomes."""


def remote_support_targeting(
    *,
    n_customers: int = 20_000,
    treated_share: float = 0.5,
    dnd_share: float = 0.25,
    effect_scale: float = 1.0,
    seed: int = 0,
    start_date: str = "2025-09-01",
) -> SimulatedPilot:
    """Simulate a randomised proactive remote-support pilot with a heterogeneous effect.

    Each customer is offered a proactive remote technical-support session with probability
    ``treated_share``, independently of everything else (Bernoulli assignment on
    ``start_date``). The outcome is buying an accessory or upgrade within 90 days. Every
    customer belongs to one of four latent types, with P(purchase | no offer) and offer
    effect (times ``effect_scale``):

    ===============  ========  ======
    type             baseline  effect
    ===============  ========  ======
    persuadable      0.10      +0.20
    sure_thing       0.55      0
    lost_cause       0.03      0
    do_not_disturb   0.25      -0.10
    ===============  ========  ======

    The type probabilities p_k(x) are a multinomial logit of the CRM features (tenure, device
    age, number of devices, support tickets, last year's revenue, app use, e-mail open rate,
    segment); age, region and distance to the store play no role. The intercepts are set so
    that the mean type probabilities over the drawn customers are exactly ``dnd_share`` for
    do-not-disturbs and ``(1 - dnd_share) x 0.35/0.75, 0.20/0.75, 0.20/0.75`` for
    persuadables, sure things and lost causes (0.35/0.20/0.20/0.25 at the default).

    The realised type is drawn from p_k(x) and the purchase from that type's probability in
    the customer's arm, so P(purchase | arm t, x) = sum_k p_k(x) (b_k + t effect_scale tau_k)
    and the true uplift given the features is tau(x) = effect_scale sum_k p_k(x) tau_k: what
    a perfect uplift model could learn. Treated and untreated outcomes share their random
    draws, so ``effect_scale`` changes only the effect. A purchase's basket is gamma with
    mean 60/80/120 EUR (bronze/silver/gold), independent of the offer, so the true revenue
    uplift is tau(x) x the segment's mean basket.

    Parameters
    ----------
    n_customers : int, default 20_000
        Number of customers (at least 100).
    treated_share : float, default 0.5
        Probability that a customer is offered the session (strictly between 0 and 1).
    dnd_share : float, default 0.25
        Expected share of do-not-disturbs, in [0, 1); 0 means there are none.
    effect_scale : float, default 1.0
        Multiplies every type's effect, in [0, 2.5] (so every probability stays in [0, 1]);
        0 makes the outcomes independent of the offer.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables.
    start_date : str, default "2025-09-01"
        The day the offer was made (``assigned_at``).

    Returns
    -------
    SimulatedPilot
        Tables ``crm`` (customer_id, the features, treated, assigned_at) and ``orders_90d``
        (customer_id, purchased_90d, revenue_90d); :data:`UPLIFT_QUERY` joins them.
        ``truth`` holds the average true uplift over all customers for ``purchased_90d`` and
        ``revenue_90d`` (means of tau(x) and of tau(x) x mean basket, computed from the
        probabilities, not from the draws) and the realised ``share_<type>`` of each type.
        ``unit_truth`` has one row per customer: customer_id, customer_type,
        true_uplift_purchased_90d, true_uplift_revenue_90d and baseline_purchase
        (P(purchase | no offer, x)).

    Raises
    ------
    SpecError
        If a parameter is out of range, ``start_date`` is not a date, or an arm is empty.

    Examples
    --------
    >>> pilot = remote_support_targeting(n_customers=2_000, seed=1)
    >>> sorted(pilot.tables)
    ['crm', 'orders_90d']
    >>> truth = pilot.unit_truth["true_uplift_purchased_90d"]
    >>> bool(abs(truth.mean() - pilot.truth["purchased_90d"]) < 1e-12)
    True
    >>> bool(truth.min() < 0 < truth.max())
    True
    """
    n = _whole_customers(n_customers)
    if not (is_number(treated_share) and 0.0 < treated_share < 1.0):
        raise SpecError(
            f"treated_share must be a number strictly between 0 and 1, got {treated_share!r}"
        )
    if not (is_number(dnd_share) and 0.0 <= dnd_share < 1.0):
        raise SpecError(
            f"dnd_share (the share of do-not-disturb customers) must be a number in [0, 1), "
            f"got {dnd_share!r}"
        )
    if not (is_number(effect_scale) and 0.0 <= effect_scale <= MAX_EFFECT_SCALE):
        raise SpecError(
            f"effect_scale must be a number in [0, {MAX_EFFECT_SCALE:g}] so that every "
            f"customer type's purchase probability stays in [0, 1], got {effect_scale!r}"
        )
    start = start_date_of(start_date)

    rng = np.random.default_rng(seed)
    features = _draw_features(rng, n)
    # Assignment, type and outcome draws come after the features and do not depend on the
    # parameters, so changing treated_share, dnd_share or effect_scale keeps everything else.
    treated = (rng.random(n) < treated_share).astype(np.int64)
    if treated.all() or not treated.any():
        raise SpecError(
            f"every one of the {n} customers landed in the same arm; "
            "raise n_customers or move treated_share away from 0 and 1"
        )
    u_type = rng.random(n)
    u_buy = rng.random(n)
    basket_draw = rng.gamma(BASKET_SHAPE, 1.0 / BASKET_SHAPE, size=n)

    targets = np.append(OTHER_SHARES / OTHER_SHARES.sum() * (1.0 - dnd_share), dnd_share)
    probs = _type_probabilities(_type_scores(features), targets)
    # Inverse-CDF draw of the realised type; the last cumulative sum is set to exactly 1 so a
    # type with probability 0 (do-not-disturbs at dnd_share=0) is never drawn.
    cum = np.cumsum(probs, axis=1)
    kind = (u_type[:, None] > cum / cum[:, -1:]).sum(axis=1)
    buy_prob = BASELINE[kind] + treated * effect_scale * EFFECT[kind]
    purchased = (u_buy < buy_prob).astype(np.int64)
    seg = features["segment"]
    basket_mean = BASKET_MEAN[seg]
    revenue = np.round(purchased * basket_mean * basket_draw, 2)

    uplift = effect_scale * (probs @ EFFECT)
    uplift_revenue = uplift * basket_mean

    crm = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "segment": np.array(SEGMENTS)[seg],
            "region": np.array(REGIONS)[features["region"]],
            "age": features["age"],
            "tenure_months": features["tenure_months"],
            "device_age_months": features["device_age_months"],
            "n_devices": features["n_devices"],
            "support_tickets_12m": features["support_tickets_12m"],
            "pre_revenue_12m": features["pre_revenue_12m"],
            "app_user": features["app_user"],
            "email_open_rate": features["email_open_rate"],
            "distance_to_store_km": features["distance_to_store_km"],
            "treated": treated,
            "assigned_at": np.full(n, np.datetime64(start.date(), "D")).astype("datetime64[us]"),
        }
    )
    orders = pd.DataFrame(
        {
            "customer_id": crm["customer_id"].to_numpy(),
            "purchased_90d": purchased,
            "revenue_90d": revenue,
        }
    )
    unit_truth = pd.DataFrame(
        {
            "customer_id": crm["customer_id"].to_numpy(),
            "customer_type": np.array(TYPES)[kind],
            "true_uplift_purchased_90d": uplift,
            "true_uplift_revenue_90d": uplift_revenue,
            "baseline_purchase": probs @ BASELINE,
        }
    )
    realised = np.bincount(kind, minlength=len(TYPES)) / n
    truth = {
        "purchased_90d": float(uplift.mean()),
        "revenue_90d": float(uplift_revenue.mean()),
        **{f"share_{name}": float(share) for name, share in zip(TYPES, realised, strict=True)},
    }

    shares = "/".join(f"{s:.2f}" for s in targets)
    description = (
        f"Simulated proactive remote-support targeting pilot: {n} customers (seed={seed}), "
        f"{int(treated.sum())} offered a remote-support session on {start.date()}, each "
        f"independently with probability {treated_share}. Outcome: an accessory/upgrade purchase "
        "within 90 days (purchased_90d) and its value (revenue_90d). Four latent types "
        "(persuadable/sure thing/lost cause/do-not-disturb) with expected shares "
        f"{shares}, purchase probabilities without the offer "
        f"{'/'.join(f'{b:.2f}' for b in BASELINE)} and offer effects "
        f"{'/'.join(f'{t:+.2f}' for t in EFFECT)} x effect_scale={effect_scale}. The type "
        "probabilities p_k(x) are a multinomial logit of tenure, device age, devices, support "
        "tickets, last year's revenue, app use, e-mail open rate and segment (intercepts "
        "calibrated on the drawn customers to the expected shares); age, region and "
        "distance_to_store_km are pure noise. Baskets are gamma with mean "
        f"{'/'.join(f'{m:.0f}' for m in BASKET_MEAN)} EUR (bronze/silver/gold), independent of "
        "the offer. 'truth' holds the mean over all customers of the true uplift given the "
        "features, tau(x) = effect_scale x sum_k p_k(x) tau_k for purchased_90d and tau(x) x "
        "mean basket for revenue_90d (exact, not from the draws), and the realised type shares "
        "(share_<type>); unit_truth holds each customer's tau(x), revenue uplift, baseline "
        "purchase probability and realised type, for evaluating targeting, never as data."
    )
    return SimulatedPilot(
        tables={"crm": crm, "orders_90d": orders},
        truth=truth,
        description=description,
        unit_truth=unit_truth,
    )


def _draw_features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw the CRM features; age, region and distance are independent of everything else."""
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARE)
    age = np.clip(np.round(rng.normal(46.0, 15.0, size=n)), 18, 90).astype(np.int64)
    distance = np.round(np.exp(np.log(8.0) + 0.9 * rng.normal(size=n)), 1)
    tenure = np.minimum(1 + np.floor(rng.exponential(36.0, size=n)), 240).astype(np.int64)
    n_devices = 1 + rng.poisson(np.array([1.0, 1.6, 2.4])[seg])
    device_age = np.clip(np.round(rng.gamma(2.0, 15.0, size=n)), 1, 120).astype(np.int64)
    # More and older devices break more often.
    tickets = rng.poisson(0.2 + 0.15 * n_devices + device_age / 60.0)
    log_value = np.array([-0.3, 0.2, 0.8])[seg] + 0.3 * np.log(n_devices)
    log_value += 0.15 * np.log1p(tenure / 12.0)
    pre_revenue = np.exp(np.log(180.0) + log_value + 0.7 * rng.normal(size=n))
    pre_revenue = np.maximum(np.round(pre_revenue, 2), 0.01)  # positive: the scores take logs
    app_user = (rng.random(n) < np.array([0.4, 0.5, 0.6])[seg]).astype(np.int64)
    email_open = np.round(rng.beta(2.0, 5.0, size=n), 3)
    return {
        "segment": seg,
        "region": region,
        "age": age,
        "distance_to_store_km": distance,
        "tenure_months": tenure,
        "n_devices": n_devices.astype(np.int64),
        "device_age_months": device_age,
        "support_tickets_12m": tickets.astype(np.int64),
        "pre_revenue_12m": pre_revenue,
        "app_user": app_user,
        "email_open_rate": email_open,
    }


def _type_scores(f: dict[str, np.ndarray]) -> np.ndarray:
    """(customers x types) log-odds of each type against the lost causes, before intercepts.

    Coefficients are per standard unit of a feature: strong enough that the features explain
    most of who is what, not all of it.

    - persuadables: ageing devices and many support tickets (the remote session fixes a real
      problem and points to the upgrade), app users (the session is easy to accept), readers;
    - sure things: big spenders, gold and silver members, many devices, readers;
    - do-not-disturbs: long-standing customers who ignore e-mails, rarely ask for help and do
      not use the app.

    Age, region and distance_to_store_km play no role (noise features). Features are centred
    and scaled by fixed constants (about their population mean and sd), so the scores are a
    fixed function of a customer's features.
    """
    tickets = (np.log1p(f["support_tickets_12m"]) - 0.6) / 0.5
    device_age = (f["device_age_months"] - 30.0) / 21.0
    revenue = (np.log(f["pre_revenue_12m"]) - 5.55) / 0.83
    devices = (f["n_devices"] - 2.3) / 1.25
    tenure = (np.log1p(f["tenure_months"]) - 3.15) / 1.05
    email = (f["email_open_rate"] - 0.29) / 0.16
    app = f["app_user"] - 0.45
    silver = (f["segment"] == 1).astype(float)
    gold = (f["segment"] == 2).astype(float)
    persuadable = 1.0 * tickets + 0.9 * device_age + 1.0 * app + 0.4 * email
    sure_thing = 1.2 * revenue + 0.5 * devices + 0.5 * silver + 1.0 * gold + 0.4 * email
    lost_cause = np.zeros_like(persuadable)
    do_not_disturb = 0.9 * tenure - 1.2 * email - 0.6 * tickets - 0.8 * app
    return np.column_stack([persuadable, sure_thing, lost_cause, do_not_disturb])


def _type_probabilities(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Softmax of ``scores`` plus per-type intercepts whose mean probabilities are ``targets``.

    The intercepts are found by the fixed point a_k += log(target_k / mean p_k), which
    converges for a multinomial logit; a type with target 0 gets probability 0 exactly.
    """
    active = targets > 0
    intercept = np.zeros(scores.shape[1])
    probs = np.zeros_like(scores)
    for _ in range(500):
        logits = scores[:, active] + intercept[active]
        logits -= logits.max(axis=1, keepdims=True)
        expo = np.exp(logits)
        probs[:, active] = expo / expo.sum(axis=1, keepdims=True)
        gap = np.log(targets[active]) - np.log(probs[:, active].mean(axis=0))
        intercept[active] += gap
        if np.abs(gap).max() < 1e-12:
            break
    return probs


def _whole_customers(value: object) -> int:
    # Integral floats are accepted because command-line and YAML params may arrive as 2e4.
    whole = is_whole(value)
    if not whole or int(value) < MIN_CUSTOMERS:
        raise SpecError(
            f"n_customers must be a whole number >= {MIN_CUSTOMERS} (enough for both arms and "
            f"all four customer types), got {value!r}"
        )
    return int(value)
