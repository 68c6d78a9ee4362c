"""Seeded simulator of a randomised remote-support pilot for contract customers, observed daily.

A provider of device contracts offers remote technical support (a technician fixes the device
over a video link) to a random share of its contract customers. Customers enter the pilot day by
day over the first ``enrolment_days`` days, so a daily tracker sees the pilot grow; the event data
are cut after ``days`` days. Uptake is slow: a treated customer starts using remote support at a
time drawn uniformly over the first ``adoption_days`` days after assignment (and keeps using it),
so the share of treated customers using it ``s`` days after assignment is ``min(s / A, 1)`` and
early looks show little effect.

While a customer holds the contract, five Poisson event streams run (repairs, accessory purchases,
complaints, support contacts and the surveys after them); churn ends them all. The churn hazard is
constant per customer (exponential durations, one rate per segment and new/established tenure)
and is multiplied by ``hazard_ratio`` from the moment the customer uses remote support.

Every expectation is exact given each customer's latent rates: with ``S0(t) = exp(-λt)``,
``m = min(t, A)`` and ``k = λ(1 - h)``,

    g(t)  = P(alive and using at t | treated) = exp(-λht) · (m/A) · φ(k m),  φ(x) = (1 - e^{-x})/x
    S1(t) = exp(-λt) · (1 - m/A) + g(t)   (survival of a treated customer; A = 0: exp(-λht))

and a stream of rate ρ contributes ρ ∫ S (or ρ ∫ g for the part while using) over the exposure.
The integrals are Gauss–Legendre sums on each day (8 nodes; the integrands are smooth within a
day, the only kink is at the whole day A), exact to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from causal.errors import SpecError
from causal.simulate import SimulatedPilot
from causal.simulate_checks import is_number, is_whole
from causal.simulate_checks import start_date as start_date_of

__all__ = ["METRICS", "remote_support_aa", "remote_support_pilot"]

METRICS: tuple[str, ...] = (
    "repair_cost",
    "accessory_revenue",
    "complaint",
    "nps",
    "csat",
    "first_contact_resolution",
)
SEGMENTS: tuple[str, ...] = ("bronze", "silver", "gold")
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
YEAR = 365.0  # days; rates below are per year and divided by YEAR
MONTH = 365.25 / 12  # days per contract month, to value retained days at the monthly margin

# Churn: constant hazard per segment, x1.5 in the first contract year. Six classes only, so the
# survival integrals are computed once per class.
CHURN_PER_YEAR = np.array([0.30, 0.20, 0.12])
NEW_CUSTOMER_CHURN, NEW_MONTHS = 1.5, 12
# Repairs: per device and year times a lognormal frailty of mean 1 (this frailty is what makes the
# pre-period repair cost predictive); gamma costs with a customer-level mean.
REPAIRS_PER_DEVICE_YEAR, REPAIR_FRAILTY_SD = 0.9, 0.7
REPAIR_COST_MEAN = np.array([110.0, 135.0, 170.0])  # EUR by segment
REPAIR_COST_SD, REPAIR_COST_SHAPE = 0.25, 2.0
PRE_PERIOD_DAYS = 180
ACCESSORIES_PER_YEAR, ACCESSORY_SD = np.array([2.5, 3.5, 5.0]), 0.5
BASKET_MEAN, BASKET_SHAPE = 40.0, 2.0
COMPLAINTS_PER_YEAR, CONTACTS_PER_YEAR, SURVEY_RESPONSE = 0.5, 4.0, 0.35
# Survey answers: rounded, clipped normals around a customer's satisfaction; effects of using
# remote support at experience_scale 1: NPS +1.0 point, CSAT +0.3, first-contact resolution +12pp.
NPS_BASE, NPS_SAT, NPS_NOISE, NPS_EFFECT = 7.0, 1.2, 1.6, 1.0
CSAT_BASE, CSAT_SAT, CSAT_NOISE, CSAT_EFFECT = 3.8, 0.45, 0.7, 0.3
FCR_BASE, FCR_EFFECT = 0.68, 0.12
RMST_HORIZONS = (180, 365)
MIN_CUSTOMERS, MAX_DAYS, MAX_FOLLOWUP = 100, 365, 3650
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)


def remote_support_pilot(
    *,
    n_customers: int = 20_000,
    days: int = 60,
    treated_share: float = 0.5,
    cost_reduction: float = 0.20,
    hazard_ratio: float = 0.75,
    adoption_days: int = 30,
    accessory_lift: float = 0.10,
    experience_scale: float = 1.0,
    enrolment_days: int | None = None,
    followup_days: int = 365,
    seed: int = 0,
    start_date: str = "2026-03-02",
) -> SimulatedPilot:
    """Simulate a randomised remote-support pilot: daily events, slow adoption and churn.

    Customers (segment bronze/silver/gold 60/30/10%, tenure, 1-6 devices, monthly margin) are
    treated independently with probability ``treated_share`` and assigned on a day drawn
    uniformly from the first ``enrolment_days`` days. A treated customer uses remote support
    from a uniform time in [0, ``adoption_days``) days after assignment on. While using it:
    each repair costs ``1 - cost_reduction`` times as much, accessory purchases run at ``1 +
    accessory_lift`` times the rate, and after a support contact the latent NPS answer is
    higher by 1.0 x ``experience_scale`` points, CSAT by 0.3 x, first-contact resolution
    by 12 x percentage points (from 68%). Complaints have **no direct effect**: their only
    (tiny, exact) effect is that treated customers stay longer and so can complain longer.
    Churn is exponential, hazard 0.30/0.20/0.12 per year by segment (x1.5 in the first contract
    year), multiplied by ``hazard_ratio`` from the day of first use.

    Parameters
    ----------
    n_customers : int, default 20_000
        Customers in the pilot (at least 100).
    days : int, default 60
        Length of the pilot (1-365): events are dated ``start_date`` .. ``start_date + days - 1``.
    treated_share : float, default 0.5
        Probability that a customer is offered remote support (strictly between 0 and 1).
    cost_reduction : float, default 0.20
        Share of a repair's cost saved when remote support is used (0-1).
    hazard_ratio : float, default 0.75
        Churn hazard of a user relative to the same customer not using it (0 < hr <= 5).
    adoption_days : int, default 30
        Days over which uptake among treated customers rises linearly from 0 to 1 (0-365;
        0 = everybody uses it from assignment).
    accessory_lift : float, default 0.10
        Relative increase of the accessory purchase rate while using (0-5).
    experience_scale : float, default 1.0
        Multiplies the NPS, CSAT and first-contact-resolution effects (0-2).
    enrolment_days : int or None, default None
        Days over which customers are assigned (1..``days``); None means ``ceil(days / 2)``.
    followup_days : int, default 365
        Each contract is followed this many days from assignment (``days``-3650); the
        ``contracts`` table is censored there.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables.
    start_date : str, default "2026-03-02"
        First day of the pilot.

    Returns
    -------
    SimulatedPilot
        Tables ``customers`` (customer_id, treated, assigned_at, segment, tenure_months,
        devices, pre_period_repair_cost: repair cost in the 180 days before assignment,
        monthly_margin: EUR), ``support_events`` (customer_id, event_time: the event's date,
        never before assigned_at nor after churn; metric: one of :data:`METRICS`; value: EUR,
        1 per complaint, 0-10, 1-5 or 0/1) and ``contracts`` (customer_id, duration_days:
        days from assignment to churn or to ``followup_days``, churned: 0/1).
        ``truth``: exact expectations averaged over the pilot's customers given their latent
        rates (see the module docstring), each customer's window running from assignment to
        the data cut (``start_date + days``):

        * ``repair_cost``, ``accessory_revenue`` (EUR per customer), ``complaint`` (count):
          E[Y(1) - Y(0)], and ``<metric>_control`` = E[Y(0)];
        * ``repair_cost_<days>d``, ``accessory_revenue_<days>d``: the same over the first
          ``days`` days after assignment for every customer (beyond the cut for late enrolees);
        * ``repair_cost_look_<k>``, ``accessory_revenue_look_<k>`` for k = 1..days: at the
          look on date ``start_date + k - 1``, averaged over customers assigned by then, with
          events dated up to then, as :func:`causal.designs.track_stats.look_statistics` counts;
        * ``nps`` (mean 0-10 answer), ``nps_points`` (promoters - detractors x 100), ``csat``,
          ``first_contact_resolution``: per answer (per contact) in all customers' windows,
          E[sum]/E[count] if all were treated minus if none were, and ``<metric>_control``;
        * ``rmst_difference_<τ>``, ``rmst_control_<τ>`` (days), ``churn_difference_<τ>``
          (1 - S(τ), treated - control) and ``retained_margin_<τ>`` (EUR: monthly margin x
          RMST difference / 30.44) for τ in 180, 365 (when <= ``followup_days``) and
          ``followup_days``, where RMST_a(τ) = mean over customers of ∫_0^τ S_a(t) dt;
        * ``hazard_ratio`` (the parameter: users vs the same customers not using; the
          intention-to-treat hazard ratio is diluted and not constant), ``cost_saving_share``
          (``cost_reduction``, per repair of a user), ``adoption_share`` (mean over customers
          of P(using by the cut | treated)).

        ``unit_truth`` per customer: ``adoption_day`` (treated: days from assignment to first
        use, realised; NaN for control), expected repair cost and accessory revenue in each arm
        over the window (``expected_<metric>_<arm>``) and ``rmst_difference_<τ>``.

    Raises
    ------
    SpecError
        If a parameter is out of range, ``start_date`` is not a date, or an arm is empty.

    Examples
    --------
    >>> pilot = remote_support_pilot(n_customers=2_000, seed=1)
    >>> sorted(pilot.tables)
    ['contracts', 'customers', 'support_events']
    >>> t = pilot.truth
    >>> bool(t["repair_cost_look_60"] < t["repair_cost_look_10"] < 0 < t["rmst_difference_365"])
    True
    >>> t["hazard_ratio"], t["cost_saving_share"]
    (0.75, 0.2)
    """
    n = _whole("n_customers", n_customers, MIN_CUSTOMERS, 10**8)
    n_days = _whole("days", days, 1, MAX_DAYS)
    adopt = _whole("adoption_days", adoption_days, 0, MAX_DAYS)
    enrol = math.ceil(n_days / 2) if enrolment_days is None else enrolment_days
    enrol = _whole("enrolment_days", enrol, 1, n_days)
    follow = _whole("followup_days", followup_days, n_days, MAX_FOLLOWUP)
    _number("treated_share", treated_share, lambda v: 0 < v < 1, "strictly between 0 and 1")
    _number("cost_reduction", cost_reduction, lambda v: 0 <= v <= 1, "in [0, 1]")
    _number("hazard_ratio", hazard_ratio, lambda v: 0 < v <= 5, "in (0, 5] (1 = no effect)")
    _number("accessory_lift", accessory_lift, lambda v: 0 <= v <= 5, "in [0, 5]")
    _number("experience_scale", experience_scale, lambda v: 0 <= v <= 2, "in [0, 2]")
    start = start_date_of(start_date)
    cr, hr, lift, xs = map(float, (cost_reduction, hazard_ratio, accessory_lift, experience_scale))

    rng = np.random.default_rng(seed)
    c = _draw_customers(rng, n)
    treated = (rng.random(n) < treated_share).astype(np.int64)
    if treated.all() or not treated.any():
        raise SpecError(
            f"every one of the {n} customers landed in the same arm; "
            "raise n_customers or move treated_share away from 0 and 1"
        )
    assign = rng.integers(0, enrol, size=n)  # day of assignment, 0 = start_date
    # Adoption time and a unit exponential are drawn for everybody, so control customers
    # consume the same random numbers; churn T inverts the cumulative hazard λ·min(T, U) +
    # λ·hr·(T - U)+ (before/after first use) at the exponential draw.
    use_at = rng.uniform(0.0, adopt, size=n) if adopt else np.zeros(n)
    unit_exp = rng.exponential(size=n)
    lam = c["churn"]
    pre_use = unit_exp <= lam * use_at
    t_treated = np.where(pre_use, unit_exp / lam, use_at + (unit_exp - lam * use_at) / (lam * hr))
    churn_t = np.where(treated == 1, t_treated, unit_exp / lam)
    using_from = np.where(treated == 1, use_at, np.inf)

    events = _draw_events(rng, c, assign, churn_t, using_from, n_days, cr=cr, lift=lift, xs=xs)
    ids = np.arange(1, n + 1, dtype=np.int64)
    start_d = np.datetime64(start.date(), "D")
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "treated": treated,
            "assigned_at": (start_d + assign.astype("timedelta64[D]")).astype("datetime64[us]"),
            "segment": np.array(SEGMENTS)[c["segment"]],
            "tenure_months": c["tenure_months"],
            "devices": c["devices"],
            "pre_period_repair_cost": c["pre_period_repair_cost"],
            "monthly_margin": c["monthly_margin"],
        }
    )
    order = np.lexsort((events["metric"], events["cust"], events["day"]))
    support_events = pd.DataFrame(
        {
            "customer_id": ids[events["cust"][order]],
            "event_time": (start_d + events["day"][order].astype("timedelta64[D]")).astype(
                "datetime64[us]"
            ),
            "metric": np.array(METRICS)[events["metric"][order]],
            "value": events["value"][order],
        }
    )
    contracts = pd.DataFrame(
        {
            "customer_id": ids,
            "duration_days": np.round(np.minimum(churn_t, follow), 2),
            "churned": (churn_t < follow).astype(np.int64),
        }
    )

    horizons = sorted({h for h in RMST_HORIZONS if h <= follow} | {follow})
    truth, unit = _truth(c, assign, n_days, horizons, adopt=adopt, hr=hr, cr=cr, lift=lift, xs=xs)
    unit_truth = pd.DataFrame(
        {"customer_id": ids, "adoption_day": np.where(treated == 1, use_at, np.nan), **unit}
    )
    description = (
        f"Simulated remote-support pilot (seed={seed}): {n} contract customers, "
        f"{int(treated.sum())} offered remote technical support (Bernoulli {treated_share}), "
        f"assigned day by day over {enrol} days from {start.date()}; events dated up to day "
        f"{n_days - 1} (data cut {(start + pd.Timedelta(days=n_days)).date()}). Uptake among the "
        f"treated rises linearly from 0 to 1 over {adopt} days after assignment (uniform start, "
        f"then kept). Using it saves {cr:.0%} of each repair's cost, raises accessory purchases "
        f"by {lift:.0%}, and after support contacts raises NPS by {NPS_EFFECT * xs:g} points, CSAT "
        f"by {CSAT_EFFECT * xs:g} and first-contact resolution by {FCR_EFFECT * xs:.0%} (from "
        f"{FCR_BASE:.0%}); complaints have no direct effect. Churn is exponential (hazard "
        f"{'/'.join(f'{x:g}' for x in CHURN_PER_YEAR)} per year bronze/silver/gold, x"
        f"{NEW_CUSTOMER_CHURN} in the first contract year), x{hr:g} from first use; events stop "
        f"at churn; contracts are followed {follow} days from assignment. 'truth' holds exact "
        "expectations averaged over the simulated customers given their latent rates (effects on "
        "each window from assignment to the cut, per daily look, per survey answer, RMST and "
        "churn differences by horizon), not the draws."
    )
    return SimulatedPilot(
        tables={"customers": customers, "support_events": support_events, "contracts": contracts},
        truth=truth,
        description=description,
        unit_truth=unit_truth,
    )


def remote_support_aa(
    *,
    n_customers: int = 20_000,
    days: int = 60,
    treated_share: float = 0.5,
    adoption_days: int = 30,
    enrolment_days: int | None = None,
    followup_days: int = 365,
    seed: int = 0,
    start_date: str = "2026-03-02",
) -> SimulatedPilot:
    """The same pilot with no effect at all (an A/A test): no cost saving, hazard ratio 1, no
    accessory lift and no experience effect; every effect in ``truth`` is 0.

    Examples
    --------
    >>> pilot = remote_support_aa(n_customers=1_000, seed=2)
    >>> pilot.truth["repair_cost"], pilot.truth["rmst_difference_365"], pilot.truth["nps"]
    (0.0, 0.0, 0.0)
    """
    pilot = remote_support_pilot(
        n_customers=n_customers,
        days=days,
        treated_share=treated_share,
        cost_reduction=0.0,
        hazard_ratio=1.0,
        adoption_days=adoption_days,
        accessory_lift=0.0,
        experience_scale=0.0,
        enrolment_days=enrolment_days,
        followup_days=followup_days,
        seed=seed,
        start_date=start_date,
    )
    description = "A/A variant (no effect of any kind). " + pilot.description
    return SimulatedPilot(pilot.tables, pilot.truth, description, pilot.unit_truth)


def _draw_customers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Covariates and per-customer latent rates (per day) and means."""
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    tenure = np.minimum(1 + np.floor(rng.exponential(30.0, size=n)), 180).astype(np.int64)
    devices = np.minimum(1 + rng.poisson(np.array([0.9, 1.3, 1.8])[seg]), 6).astype(np.int64)
    new = tenure < NEW_MONTHS
    frailty = np.exp(REPAIR_FRAILTY_SD * rng.normal(size=n) - REPAIR_FRAILTY_SD**2 / 2)
    repair_rate = REPAIRS_PER_DEVICE_YEAR / YEAR * devices * frailty
    cost_mean = REPAIR_COST_MEAN[seg] * np.exp(
        REPAIR_COST_SD * rng.normal(size=n) - REPAIR_COST_SD**2 / 2
    )
    pre_repairs = rng.poisson(repair_rate * PRE_PERIOD_DAYS)
    pre_cost = rng.gamma(pre_repairs * REPAIR_COST_SHAPE, cost_mean / REPAIR_COST_SHAPE)
    satisfaction = rng.normal(size=n)
    # Unhappier customers complain and call more; exp(-0.3 z - 0.045) has mean 1.
    unhappy = np.exp(-0.3 * satisfaction - 0.045)
    accessory_rate = (
        ACCESSORIES_PER_YEAR[seg] / YEAR * np.exp(ACCESSORY_SD * rng.normal(size=n) - 0.125)
    )
    margin = (9.0 + 5.5 * devices) * np.array([1.0, 1.25, 1.6])[seg]
    margin = np.round(margin * np.exp(0.15 * rng.normal(size=n) - 0.01125), 2)
    churn_class = seg * 2 + new
    return {
        "segment": seg,
        "tenure_months": tenure,
        "devices": devices,
        "pre_period_repair_cost": np.round(pre_cost, 2),
        "monthly_margin": margin,
        "churn_class": churn_class,
        "churn": _class_hazards()[churn_class],
        "repair_rate": repair_rate,
        "cost_mean": cost_mean,
        "accessory_rate": accessory_rate,
        "complaint_rate": COMPLAINTS_PER_YEAR / YEAR * unhappy,
        "contact_rate": CONTACTS_PER_YEAR / YEAR * unhappy,
        "satisfaction": satisfaction,
    }


def _class_hazards() -> np.ndarray:
    """Churn hazard per day of class 2 x segment + new (6 classes)."""
    return np.repeat(CHURN_PER_YEAR / YEAR, 2) * np.tile([1.0, NEW_CUSTOMER_CHURN], 3)


def _stream(
    rng: np.random.Generator, rate: np.ndarray, begin: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson(rate) event times on [begin, begin + length) per customer (none if length <= 0)."""
    counts = rng.poisson(rate * np.maximum(length, 0.0))
    cust = np.repeat(np.arange(rate.size), counts)
    return cust, begin[cust] + np.maximum(length, 0.0)[cust] * rng.random(cust.size)


def _draw_events(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    assign: np.ndarray,
    churn_t: np.ndarray,
    using_from: np.ndarray,
    n_days: int,
    *,
    cr: float,
    lift: float,
    xs: float,
) -> dict[str, np.ndarray]:
    """Every event while the contract runs and before the cut, as day offsets from the start."""
    a = assign.astype(float)
    exposure = np.minimum(churn_t, n_days - a)  # observed contract time in the pilot
    parts = []

    def add(metric: int, cust: np.ndarray, t: np.ndarray, value: np.ndarray) -> None:
        # Floor to the date; the clip guards against t rounding up to the cut itself.
        day = np.minimum(np.floor(t), n_days - 1).astype(np.int64)
        parts.append((np.full(cust.size, metric), cust, day, np.asarray(value, dtype=float)))

    def using(cust: np.ndarray, t: np.ndarray) -> np.ndarray:
        return t - a[cust] >= using_from[cust]

    cust, t = _stream(rng, c["repair_rate"], a, exposure)
    cost = rng.gamma(REPAIR_COST_SHAPE, c["cost_mean"][cust] / REPAIR_COST_SHAPE)
    add(0, cust, t, np.round(cost * (1.0 - cr * using(cust, t)), 2))
    # Accessories: the base stream plus, while using, an extra stream at lift x the rate.
    cust, t = _stream(rng, c["accessory_rate"], a, exposure)
    user = np.isfinite(using_from)
    since = np.where(user, using_from, 0.0)
    extra_c, extra_t = _stream(rng, c["accessory_rate"] * lift * user, a + since, exposure - since)
    cust, t = np.concatenate([cust, extra_c]), np.concatenate([t, extra_t])
    add(1, cust, t, np.round(rng.gamma(BASKET_SHAPE, BASKET_MEAN / BASKET_SHAPE, cust.size), 2))
    cust, t = _stream(rng, c["complaint_rate"], a, exposure)
    add(2, cust, t, np.ones(cust.size))
    cust, t = _stream(rng, c["contact_rate"], a, exposure)
    used = using(cust, t)
    add(5, cust, t, rng.random(cust.size) < FCR_BASE + xs * FCR_EFFECT * used)
    answered = rng.random(cust.size) < SURVEY_RESPONSE
    cust, t, used = cust[answered], t[answered], used[answered]
    sat = c["satisfaction"][cust]
    nps = NPS_BASE + NPS_SAT * sat + xs * NPS_EFFECT * used + NPS_NOISE * rng.normal(size=cust.size)
    add(3, cust, t, np.clip(np.round(nps), 0, 10))
    csat = CSAT_BASE + CSAT_SAT * sat + xs * CSAT_EFFECT * used
    add(4, cust, t, np.clip(np.round(csat + CSAT_NOISE * rng.normal(size=cust.size)), 1, 5))
    metric, cust, day, value = (np.concatenate(x) for x in zip(*parts, strict=True))
    return {"metric": metric, "cust": cust, "day": day, "value": value}


def _phi(x: np.ndarray) -> np.ndarray:
    """(1 - e^{-x}) / x, 1 at 0, accurate for small x."""
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, -np.expm1(-safe) / safe)


def _survival(lam: np.ndarray, t: np.ndarray, *, hr: float, adopt: int) -> tuple[np.ndarray, ...]:
    """S0(t), S1(t) and g(t) of the module docstring, broadcasting ``lam`` against ``t``."""
    s0 = np.exp(-lam * t)
    if adopt == 0:
        s1 = s0 if hr == 1 else np.exp(-hr * lam * t)
        return s0, s1, s1
    m = np.minimum(t, adopt)
    g = np.exp(-hr * lam * t) * (m / adopt) * _phi(lam * (1 - hr) * m)
    # hr = 1: using does not change survival; S1 is S0 itself so A/A differences are exactly 0.
    return s0, s0 if hr == 1 else s0 * (1 - m / adopt) + g, g


def _survival_integrals(
    lam: np.ndarray, *, hr: float, adopt: int, horizon: int
) -> tuple[np.ndarray, ...]:
    """∫_0^s of S0, S1 and g for s = 0..horizon (columns), one row per λ."""
    t = np.arange(horizon)[:, None] + (_NODES[None, :] + 1) / 2  # (days, nodes)
    curves = _survival(lam[:, None, None], t[None], hr=hr, adopt=adopt)
    zero = np.zeros((lam.size, 1))
    return tuple(np.concatenate([zero, np.cumsum(f @ (_WEIGHTS / 2), axis=1)], 1) for f in curves)


def _answer_means(mean: np.ndarray, sd: float, lo: int, hi: int) -> np.ndarray:
    """E[clip(round(Z), lo, hi)] for Z ~ N(mean, sd): lo + Σ_{k=lo}^{hi-1} P(Z >= k + 1/2)."""
    return lo + stats.norm.sf((np.arange(lo, hi)[None, :] + 0.5 - mean[:, None]) / sd).sum(axis=1)


def _nps_points(mean: np.ndarray) -> np.ndarray:
    """E[NPS points] of one answer: 100 x (P(answer >= 9) - P(answer <= 6))."""
    return 100 * (
        stats.norm.sf((8.5 - mean) / NPS_NOISE) - stats.norm.cdf((6.5 - mean) / NPS_NOISE)
    )


def _truth(
    c: dict[str, np.ndarray],
    assign: np.ndarray,
    n_days: int,
    horizons: list[int],
    *,
    adopt: int,
    hr: float,
    cr: float,
    lift: float,
    xs: float,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Exact expected effects (see :func:`remote_support_pilot`), and per-customer pieces."""
    cls, lam = c["churn_class"], _class_hazards()
    s0, s1, g = _survival_integrals(lam, hr=hr, adopt=adopt, horizon=max(horizons))

    def arms(rate: np.ndarray, s: np.ndarray, gain: float) -> tuple[np.ndarray, np.ndarray]:
        """E[total] in each arm over exposure s: rate ∫S0 and rate ∫(S1 + gain·g), the gain
        applying while using."""
        return rate * s0[cls, s], rate * (s1[cls, s] + gain * g[cls, s])

    to_cut = n_days - assign
    streams = {
        "repair_cost": (c["repair_rate"] * c["cost_mean"], -cr),
        "accessory_revenue": (c["accessory_rate"] * BASKET_MEAN, lift),
        "complaint": (c["complaint_rate"], 0.0),
    }
    money = ("repair_cost", "accessory_revenue")
    truth: dict[str, float] = {}
    unit: dict[str, np.ndarray] = {}
    for name, (weight, gain) in streams.items():
        control, treated = arms(weight, to_cut, gain)
        truth[name], truth[f"{name}_control"] = np.mean(treated - control), control.mean()
        if name in money:
            unit[f"expected_{name}_control"], unit[f"expected_{name}_treated"] = control, treated
            full = arms(weight, np.full(assign.size, n_days), gain)
            truth[f"{name}_{n_days}d"] = np.mean(full[1] - full[0])

    # Survey and contact metrics: ratio of expected sums to expected counts in each arm.
    sat = c["satisfaction"]
    nps_mean = NPS_BASE + NPS_SAT * sat
    per_state = {  # value expected per answer (contact) when not using / using
        "nps": [_answer_means(nps_mean + e, NPS_NOISE, 0, 10) for e in (0, xs * NPS_EFFECT)],
        "nps_points": [_nps_points(nps_mean + e) for e in (0, xs * NPS_EFFECT)],
        "csat": [
            _answer_means(CSAT_BASE + CSAT_SAT * sat + e, CSAT_NOISE, 1, 5)
            for e in (0, xs * CSAT_EFFECT)
        ],
        "first_contact_resolution": [np.full(sat.size, FCR_BASE + e) for e in (0, xs * FCR_EFFECT)],
    }
    rate = c["contact_rate"]
    alive0, alive1, using1 = (rate * x[cls, to_cut] for x in (s0, s1, g))
    for name, (v0, v1) in per_state.items():
        control = np.sum(alive0 * v0) / alive0.sum()
        # Written as a change from v0 so that no effect gives exactly 0, not rounding noise.
        treated = (np.sum(alive1 * v0) + np.sum(using1 * (v1 - v0))) / alive1.sum()
        truth[name], truth[f"{name}_control"] = treated - control, control

    for h in horizons:
        diff = s1[cls, h] - s0[cls, h]
        truth[f"rmst_difference_{h}"], truth[f"rmst_control_{h}"] = diff.mean(), s0[cls, h].mean()
        surv0, surv1, _ = _survival(lam, np.float64(h), hr=hr, adopt=adopt)
        truth[f"churn_difference_{h}"] = np.mean(surv0[cls] - surv1[cls])  # 1 - S1 - (1 - S0)
        truth[f"retained_margin_{h}"] = np.mean(c["monthly_margin"] * diff) / MONTH
        unit[f"rmst_difference_{h}"] = diff
    truth["hazard_ratio"], truth["cost_saving_share"] = hr, cr
    truth["adoption_share"] = np.mean(np.minimum(to_cut / adopt, 1.0)) if adopt else 1.0

    # Daily looks: look k (date start + k - 1) sees customers assigned on days < k, with their
    # events dated < k, i.e. exposure k - assigned day.
    for name in money:
        weight, gain = streams[name]
        effect = s1 - s0 + gain * g
        for k in range(1, n_days + 1):
            seen = assign < k
            value = weight[seen] * effect[cls[seen], k - assign[seen]]
            truth[f"{name}_look_{k}"] = value.mean() if seen.any() else 0.0
    return {k: float(v) for k, v in truth.items()}, unit


def _number(name: str, value: object, ok: Callable[[float], bool], what: str) -> None:
    if not (is_number(value) and ok(float(value))):
        raise SpecError(f"{name} must be a number {what}, got {value!r}")


def _whole(name: str, value: object, minimum: int, maximum: int) -> int:
    # Integral floats are accepted because command-line and YAML params may arrive as 2e4.
    whole = is_whole(value)
    if not whole or not minimum <= int(value) <= maximum:
        raise SpecError(f"{name} must be a whole number from {minimum} to {maximum}, got {value!r}")
    return int(value)
