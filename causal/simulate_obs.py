"""Seeded simulator of warranty buyers: who bought is not random, and the truth is known.

The same customers, orders and warranty effect as :func:`causal.simulate.extended_warranty_pilot`,
but nobody randomised the offer: customers chose to buy the 3-year extended warranty, and
those who spent more last year, gold and silver members and long-standing customers bought it
more often. Spending last year also predicts spending next year, so comparing buyers with
non-buyers credits the warranty with what the customers already were. Buying depends only on
columns of the analysis table (last year's revenue, segment, tenure) plus independent noise,
so adjusting for them identifies the effect, and the true effects are known exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from causal.errors import SpecError
from causal.simulate import UPLIFT, SimulatedPilot, _warranty_world
from causal.simulate_checks import is_whole
from causal.simulate_checks import start_date as start_date_of

__all__ = ["warranty_buyers"]

# Log-odds of buying: per standard deviation of log(1 + last year's revenue), for silver and
# gold against bronze, and per standard deviation of log tenure. Calibrated so that at
# selection=1 buyers spent about twice as much as non-buyers last year (strong confounding),
# while every customer keeps a buying probability inside about [0.02, 0.9] (overlap).
SPEND_LOG_ODDS = 1.1
SEGMENT_LOG_ODDS = np.array([0.0, 0.4, 0.8])
TENURE_LOG_ODDS = 0.3


def warranty_buyers(
    *,
    n_customers: int = 20_000,
    buyer_share: float = 0.3,
    selection: float = 1.0,
    effect_scale: float = 1.0,
    seed: int = 0,
    start_date: str = "2025-03-01",
) -> SimulatedPilot:
    """Simulate customers who chose whether to buy the extended warranty.

    Parameters
    ----------
    n_customers : int, default 20_000
        Number of customers (at least 50).
    buyer_share : float, default 0.3
        Target share of buyers; the intercept of the buying model is set to reach it on
        average.
    selection : float, default 1.0
        Multiplies every log-odds of the buying model (>= 0): 0 is a coin flip with
        ``buyer_share``, larger values sharpen the self-selection and thin the overlap.
    effect_scale : float, default 1.0
        Multiplies the warranty's effect (>= 0); 0 gives no effect.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables.
    start_date : str, default "2025-03-01"
        The day the warranty was sold (``assigned_at``).

    Returns
    -------
    SimulatedPilot
        Tables ``crm``, ``erp_orders``, ``finance_margins`` (the analysis query is
        :data:`causal.simulate.ANALYSIS_QUERY`). ``truth[outcome]`` is the average effect over
        all customers (ATE); ``truth[outcome + "_att"]`` over buyers (ATT) and
        ``truth[outcome + "_atc"]`` over non-buyers (ATC), each the mean of the customers'
        expected differences E[Y(1) − Y(0) | latent rates and order sizes].

    Examples
    --------
    >>> pilot = warranty_buyers(n_customers=2_000, seed=1)
    >>> pilot.truth["revenue_12m_att"] > pilot.truth["revenue_12m"] > 0
    True
    """
    n = _whole_customers(n_customers)
    if not 0.0 < buyer_share < 1.0:
        raise SpecError(f"buyer_share must be between 0 and 1 (exclusive), got {buyer_share!r}")
    for name, value in (("selection", selection), ("effect_scale", effect_scale)):
        if not (np.isfinite(value) and value >= 0):
            raise SpecError(f"{name} must be a finite number >= 0, got {value!r}")
    start = start_date_of(start_date)

    def buy(*, pre_revenue, segment, tenure, rng) -> np.ndarray:
        score = selection * (
            SPEND_LOG_ODDS * _standardise(np.log1p(pre_revenue))
            + SEGMENT_LOG_ODDS[segment]
            + TENURE_LOG_ODDS * _standardise(np.log(tenure))
        )
        shift = _intercept_for_share(score, buyer_share)
        return (rng.random(n) < expit(shift + score)).astype(np.int64)

    world = _warranty_world(
        n, n // 2, seed=seed, effect_scale=effect_scale, start=start, select=buy
    )
    buyers = world.treated == 1
    if buyers.all() or not buyers.any():
        raise SpecError("every customer made the same choice; raise n_customers or buyer_share")
    truth = world.average_effects(np.ones(n, dtype=bool))
    truth |= {f"{k}_att": v for k, v in world.average_effects(buyers).items()}
    truth |= {f"{k}_atc": v for k, v in world.average_effects(~buyers).items()}
    description = (
        f"Simulated warranty buyers: {n} customers (seed={seed}), {int(buyers.sum())} bought "
        f"the 3-year extended warranty on {start.date()}. Buying was not randomised: its "
        f"log-odds rise by {SPEND_LOG_ODDS * selection:.2f} per sd of log(1 + last year's "
        f"revenue), by {SEGMENT_LOG_ODDS[1] * selection:.2f}/{SEGMENT_LOG_ODDS[2] * selection:.2f} "
        f"for silver/gold and {TENURE_LOG_ODDS * selection:.2f} per sd of log tenure, plus "
        "independent noise, so adjusting for pre_revenue_12m, segment and tenure_months "
        "identifies the effect. Orders and the warranty's effect are those of "
        f"extended_warranty_pilot: order rates in months 4-12 rise by "
        f"{UPLIFT[0]:.0%}/{UPLIFT[1]:.0%}/{UPLIFT[2]:.0%} (bronze/silver/gold) x "
        f"effect_scale={effect_scale}. 'truth' holds the ATE (outcome name), the ATT "
        "(_att, over buyers) and the ATC (_atc), from Poisson and gamma expectations."
    )
    return SimulatedPilot(tables=world.tables, truth=truth, description=description)


def _whole_customers(value: object) -> int:
    whole = is_whole(value)
    if not whole or int(value) < 50:
        raise SpecError(f"n_customers must be a whole number >= 50, got {value!r}")
    return int(value)


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def _intercept_for_share(score: np.ndarray, share: float) -> float:
    """The intercept a with mean(expit(a + score)) = share (bisection: the mean is monotone)."""
    low, high = -30.0, 30.0
    for _ in range(100):
        mid = (low + high) / 2
        if expit(mid + score).mean() < share:
            low = mid
        else:
            high = mid
    return (low + high) / 2
