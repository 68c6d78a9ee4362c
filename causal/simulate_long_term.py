"""Seeded simulator of a pilot whose money comes late: the long-term (surrogate index) case.

A retailer offers a 3-year extended warranty to a random half of its new customers. Its money
comes late: the offer barely moves purchases in the first three months, but customers who feel
looked after answer the satisfaction survey more warmly, call support a little less and come back
in months 6-12. The pilot's data are cut four months after the start, so the 12-month revenue
is not yet observed; what is observed are the short-term signals (the *surrogates*) and a
historical sample of customers, some of them in past randomised experiments, whose full 12
months are known. That is the setting of the surrogate index (Athey, Chetty, Imbens & Kang 2019).

Revenue in months 4..12 is drawn from the *observed* surrogates and covariates only (a Poisson
number of orders whose rate is linear in them, gamma order sizes with a fixed mean), so
E[revenue months 4..12 | surrogates, covariates, treatment] does not depend on the treatment:
surrogacy holds exactly, and a linear regression of ``revenue_12m`` on the surrogates and the
covariates (segment as indicator columns) is correctly specified. ``surrogacy_violation`` adds
a direct effect of that many EUR per month in months 4..12 to every treated customer, pilot and
past experiments alike, which the surrogates do not carry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from causal.errors import SpecError
from causal.simulate import SimulatedPilot
from causal.simulate_checks import is_number, is_whole
from causal.simulate_checks import start_date as start_date_of

__all__ = [
    "DATA_CUT_MONTHS",
    "SURROGATES",
    "extended_warranty_long_term",
    "past_effect_scales",
]

SURROGATES: tuple[str, ...] = (
    "purchases_q1",
    "revenue_q1",
    "support_contacts_q1",
    "nps_score",
    "csat",
)
SEGMENTS: tuple[str, ...] = ("bronze", "silver", "gold")
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
SEGMENT_LOG_VALUE = np.array([-0.25, 0.15, 0.6])
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")

HORIZON_MONTHS = 12
Q1_MONTHS = 3
DATA_CUT_MONTHS = 4  # the pilot's data are cut at start_date + 4 months + DATA_CUT_DAYS
# Half a month more: month 4 is complete for about half of the customers (those enrolled in
# the first 15 days), so the longest horizon is estimated on part of the pilot, not on a few.
DATA_CUT_DAYS = 15
ENROLMENT_DAYS = 30
BASKET_MEAN = 60.0  # EUR per order, the same for everybody: keeps E[revenue] linear in rates
BASKET_SHAPE = 2.0  # gamma shape of one order's size
Q1_RATE = 0.3  # orders per month in months 1..3 of a customer with latent value 1

# Short-term signals. NPS and CSAT are rounded, clipped normal answers around a segment mean
# plus the customer's latent satisfaction; support contacts are Poisson, capped at 9.
NPS_BASE = np.array([6.0, 6.3, 6.6])
NPS_SATISFACTION, NPS_NOISE = 1.5, 0.9
CSAT_BASE, CSAT_SATISFACTION, CSAT_NOISE = 3.5, 0.6, 0.6
SUPPORT_BASE, SUPPORT_SATISFACTION, SUPPORT_CAP = 0.7, 0.5, 9

# The warranty's effect at effect scale 1: +1.2 NPS points and +0.35 CSAT points on the latent
# answer, support contacts x exp(-0.16), orders in months 1..3 x exp(0.04).
NPS_EFFECT, CSAT_EFFECT, SUPPORT_EFFECT, PURCHASE_LIFT = 1.2, 0.35, 0.16, 0.04

# Orders per month in months 4..12 given the observed signals and covariates:
#   rate_m = INTERCEPT[segment] + PRIOR x prior_year_revenue / 1000 + TENURE x tenure / 100
#            + RAMP[m] x (NPS x nps_score + CSAT x (csat - 1))
#            + PURCHASES x purchases_q1 + REVENUE x revenue_q1 / 100 - SUPPORT x support_q1
# The ramp makes satisfaction pay off from month 6 on (repurchases follow good experiences
# with a lag). Every term but support is >= 0 and INTERCEPT >= SUPPORT x SUPPORT_CAP, so the
# rate is positive for every possible customer.
RATE_INTERCEPT = np.array([0.05, 0.09, 0.17])
RATE_PRIOR, RATE_TENURE = 0.08, 0.01
RATE_NPS, RATE_CSAT = 0.025, 0.02
RATE_PURCHASES, RATE_REVENUE, RATE_SUPPORT = 0.04, 0.05, 0.005
RAMP = np.array([0.0, 0.0, 0.0, 0.3, 0.6, 1, 1, 1, 1, 1, 1, 1])  # months 1..12
NPS_TYPICAL, CSAT_TYPICAL = 6.4, 3.6  # answers standing in before the ramp is complete

MIN_PILOT, MIN_HISTORICAL, MAX_PAST_EXPERIMENTS = 200, 1_000, 8
MAX_EFFECT_SCALE, MAX_VIOLATION = 3.0, 50.0
EXPERIMENT_SHARE = 0.1  # of the historical customers per past experiment (<= 45% in all)


def past_effect_scales(n_past_experiments: int) -> np.ndarray:
    """Effect of past experiment k on the surrogates, as a multiple of the warranty's: 0.5 k.

    Examples
    --------
    >>> past_effect_scales(4).tolist()
    [0.5, 1.0, 1.5, 2.0]
    """
    return 0.5 * np.arange(1, n_past_experiments + 1)


def extended_warranty_long_term(
    *,
    n_pilot: int = 20_000,
    n_historical: int = 40_000,
    n_past_experiments: int = 4,
    treated_share: float = 0.5,
    surrogacy_violation: float = 0.0,
    effect_scale: float = 1.0,
    seed: int = 0,
    start_date: str = "2026-01-05",
) -> SimulatedPilot:
    """Simulate a warranty pilot observed for 3-4 months, and a historical sample observed for 12.

    **Customers** have a segment (bronze/silver/gold, 60/30/10%), a region (no effect), tenure
    in months and last year's revenue, plus two latents the data never show: a customer value
    (lognormal; drives purchases and last year's revenue) and a satisfaction (normal; drives the
    survey answers and support contacts).

    **Short-term signals** (months 1..3 after assignment): ``purchases_q1`` and ``revenue_q1``
    (Poisson orders at 0.3 x value per month, gamma sizes of mean 60 EUR), ``support_contacts_q1``
    (Poisson, capped at 9), ``nps_score`` (0..10) and ``csat`` (1..5), every customer answering.
    The warranty (effect scale 1) raises the latent NPS answer by 1.2 points and CSAT by 0.35,
    multiplies support contacts by exp(-0.16) and orders in months 1..3 by exp(0.04): little
    money in the first quarter.

    **Months 4..12**: Poisson orders whose rate is linear in the observed signals and covariates
    (see ``RATE_*`` and ``RAMP``; satisfaction pays from month 6), gamma sizes of mean 60 EUR,
    plus ``surrogacy_violation`` EUR per month for treated customers. With no violation the
    treatment acts on months 4..12 only through the signals, exactly.

    **Past experiments**: experiment k = 1..``n_past_experiments`` (10% of the historical
    customers each, at most 45% in all; half of them treated) applied a service change that
    moved the signals by 0.5 k times the warranty's effect, plus the same direct
    ``surrogacy_violation``. The other historical customers were never treated.

    **Pilot**: each customer is treated with probability ``treated_share`` and enrolled on a day
    spread uniformly over the first 30 days from ``start_date`` (fewer when a short month would
    leave a late enrolee's third month incomplete at the cut). The data are cut at
    ``start_date + 4 months + 15 days``; month i of a customer is observed when ``assigned_at +
    i months <= cut``, so months 1..3 are complete for everybody and month 4 only for those
    enrolled in the first 15 days (about half).

    Parameters
    ----------
    n_pilot : int, default 20_000
        Pilot customers (at least 200).
    n_historical : int, default 40_000
        Historical customers (at least 1,000), experimental and not.
    n_past_experiments : int, default 4
        Past randomised experiments in the historical sample (0 to 8).
    treated_share : float, default 0.5
        Probability that a pilot customer is offered the warranty (strictly between 0 and 1).
    surrogacy_violation : float, default 0.0
        Direct effect of treatment on revenue in months 4..12, EUR per month (0 to 50), that
        bypasses the signals; 0 means surrogacy holds.
    effect_scale : float, default 1.0
        Multiplies the warranty's effect on the signals in the pilot (0 to 3); the past
        experiments keep theirs.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables.
    start_date : str, default "2026-01-05"
        First enrolment day of the pilot.

    Returns
    -------
    SimulatedPilot
        Tables ``pilot_customers`` (customer_id, treated, assigned_at, segment, region,
        tenure_months, prior_year_revenue), ``pilot_monthly`` (customer_id, month, orders, revenue:
        one row per observed month, zeros included), ``pilot_signals`` (customer_id and the five
        signals) and ``historical`` (customer_id, experiment_id (None outside experiments),
        treated, the covariates, the signals, revenue_m1..revenue_m12 and revenue_12m).
        ``truth`` holds the average over pilot customers of E[Y(1) - Y(0) | covariates,
        latents] for ``revenue_12m``, ``revenue_3m``, the cumulative curve
        ``revenue_cum_m1..revenue_cum_m12`` and each signal, and ``past_<k>_revenue_12m``
        (the same over experiment k's customers); all exact expectations (normal and Poisson
        probabilities), not realised draws. ``unit_truth`` has each pilot customer's
        ``true_effect_revenue_3m`` and ``true_effect_revenue_12m``, and the realised
        ``hindsight_revenue_12m`` the pilot will show a year on (for tests, never data).

    Raises
    ------
    SpecError
        If a parameter is out of range, ``start_date`` is not a date, or an arm is empty.

    Examples
    --------
    >>> pilot = extended_warranty_long_term(n_pilot=2_000, n_historical=4_000, seed=1)
    >>> sorted(pilot.tables)
    ['historical', 'pilot_customers', 'pilot_monthly', 'pilot_signals']
    >>> t = pilot.truth
    >>> bool(t["revenue_12m"] > 5 * t["revenue_3m"] > 0)
    True
    >>> pilot.tables["pilot_monthly"].groupby("customer_id")["month"].max().unique().tolist()
    [3, 4]
    """
    n_p = _whole("n_pilot", n_pilot, MIN_PILOT)
    n_h = _whole("n_historical", n_historical, MIN_HISTORICAL)
    if isinstance(n_past_experiments, bool) or not (
        isinstance(n_past_experiments, int | np.integer)
        and 0 <= n_past_experiments <= MAX_PAST_EXPERIMENTS
    ):
        raise SpecError(
            f"n_past_experiments must be a whole number from 0 to {MAX_PAST_EXPERIMENTS}, "
            f"got {n_past_experiments!r}"
        )
    k_past = int(n_past_experiments)
    if not (is_number(treated_share) and 0.0 < treated_share < 1.0):
        raise SpecError(
            f"treated_share must be a number strictly between 0 and 1, got {treated_share!r}"
        )
    if not (is_number(surrogacy_violation) and 0.0 <= surrogacy_violation <= MAX_VIOLATION):
        raise SpecError(
            f"surrogacy_violation must be a number of EUR per month in [0, {MAX_VIOLATION:g}] "
            f"(0 = surrogacy holds), got {surrogacy_violation!r}"
        )
    if not (is_number(effect_scale) and 0.0 <= effect_scale <= MAX_EFFECT_SCALE):
        raise SpecError(
            f"effect_scale must be a number in [0, {MAX_EFFECT_SCALE:g}], got {effect_scale!r}"
        )
    start = start_date_of(start_date)
    violation = float(surrogacy_violation)

    rng = np.random.default_rng(seed)
    # Historical customers first, then the pilot's; every draw is made whatever the
    # parameters, so effect_scale or surrogacy_violation change only the effects.
    hist = _draw_customers(rng, n_h)
    exp_index = np.zeros(n_h, dtype=np.int64)  # 0 = not in a past experiment
    hist_treated = np.zeros(n_h, dtype=np.int64)
    size = int(n_h * min(EXPERIMENT_SHARE, 0.45 / max(k_past, 1)))
    order = rng.permutation(n_h)
    for k in range(1, k_past + 1):
        members = order[(k - 1) * size : k * size]
        exp_index[members] = k
        hist_treated[members[rng.permutation(size)[: size // 2]]] = 1
    hist_scale = np.append(0.0, past_effect_scales(k_past))[exp_index]
    hist_out = _draw_outcomes(rng, hist, hist_treated, hist_scale, violation)

    pilot = _draw_customers(rng, n_p)
    treated = (rng.random(n_p) < treated_share).astype(np.int64)
    if treated.all() or not treated.any():
        raise SpecError(
            f"every one of the {n_p} pilot customers landed in the same arm; "
            "raise n_pilot or move treated_share away from 0 and 1"
        )
    enrol_day = rng.integers(0, _enrolment_days(start), size=n_p)
    scale = np.full(n_p, float(effect_scale))
    out = _draw_outcomes(rng, pilot, treated, scale, violation)

    # --- Tables.
    pilot_ids = np.arange(n_h + 1, n_h + n_p + 1, dtype=np.int64)
    assigned = np.datetime64(start.date(), "D") + enrol_day.astype("timedelta64[D]")
    customers = pd.DataFrame(
        {
            "customer_id": pilot_ids,
            "treated": treated,
            "assigned_at": assigned.astype("datetime64[us]"),
            **_covariate_columns(pilot),
        }
    )
    observed = _observed_months(start, enrol_day)
    cust_idx, month_idx = np.nonzero(np.arange(1, HORIZON_MONTHS + 1)[None, :] <= observed[:, None])
    monthly = pd.DataFrame(
        {
            "customer_id": pilot_ids[cust_idx],
            "month": (month_idx + 1).astype(np.int64),
            "orders": out["orders"][cust_idx, month_idx],
            "revenue": out["monthly"][cust_idx, month_idx],
        }
    )
    signals = pd.DataFrame({"customer_id": pilot_ids, **{s: out[s] for s in SURROGATES}})
    exp_names = np.array([None, *(f"past_{k}" for k in range(1, k_past + 1))], dtype=object)
    historical = pd.DataFrame(
        {
            "customer_id": np.arange(1, n_h + 1, dtype=np.int64),
            "experiment_id": exp_names[exp_index],
            "treated": hist_treated,
            **_covariate_columns(hist),
            **{s: hist_out[s] for s in SURROGATES},
            **{f"revenue_m{m}": hist_out["monthly"][:, m - 1] for m in range(1, 13)},
            "revenue_12m": np.round(hist_out["monthly"].sum(axis=1), 2),
        }
    )

    # --- Truth: exact expected effects given covariates and latents.
    treated_exp, control_exp = (_expected(pilot, arm, scale, violation) for arm in (1, 0))
    effect = {k: treated_exp[k] - control_exp[k] for k in treated_exp}
    monthly_effect = effect["monthly"]
    cumulative = monthly_effect.cumsum(axis=1).mean(axis=0)
    truth: dict[str, float] = {
        "revenue_12m": float(cumulative[-1]),
        "revenue_3m": float(cumulative[Q1_MONTHS - 1]),
        **{f"revenue_cum_m{m}": float(cumulative[m - 1]) for m in range(1, 13)},
        **{s: float(effect[s].mean()) for s in SURROGATES},
    }
    hist_effect = (
        _expected(hist, 1, hist_scale, violation)["monthly"]
        - _expected(hist, 0, hist_scale, violation)["monthly"]
    ).sum(axis=1)
    for k in range(1, k_past + 1):
        truth[f"past_{k}_revenue_12m"] = float(hist_effect[exp_index == k].mean())
    unit_truth = pd.DataFrame(
        {
            "customer_id": pilot_ids,
            "true_effect_revenue_3m": monthly_effect[:, :Q1_MONTHS].sum(axis=1),
            "true_effect_revenue_12m": monthly_effect.sum(axis=1),
            "hindsight_revenue_12m": np.round(out["monthly"].sum(axis=1), 2),
        }
    )

    cut = (start + pd.DateOffset(months=DATA_CUT_MONTHS) + pd.Timedelta(days=DATA_CUT_DAYS)).date()
    scales = "/".join(f"{s:g}" for s in past_effect_scales(k_past)) or "none"
    description = (
        f"Simulated long-term extended-warranty pilot (seed={seed}): {n_p} pilot customers, "
        f"{int(treated.sum())} offered a 3-year warranty (Bernoulli {treated_share}), enrolled "
        f"from {start.date()} over {_enrolment_days(start)} days; data cut on {cut}, so months "
        "1-3 after enrolment are observed for everybody and month 4 only for customers enrolled "
        f"in the first {DATA_CUT_DAYS} days. Historical sample: {n_h} customers with 12 months "
        "of revenue, "
        f"{k_past} past randomised experiments of {size} customers each moving the short-term "
        f"signals by {scales} x the warranty's effect, the rest never treated. The warranty "
        f"(x effect_scale={effect_scale}) raises the latent NPS answer by {NPS_EFFECT} points and "
        f"CSAT by {CSAT_EFFECT}, multiplies support contacts by exp(-{SUPPORT_EFFECT}) and "
        f"months 1-3 orders by exp({PURCHASE_LIFT}). Orders in months 4-12 are Poisson with a "
        "rate linear in the observed signals (purchases_q1, revenue_q1, support_contacts_q1, "
        "nps_score, csat) and covariates (segment, tenure_months, prior_year_revenue; region is "
        "noise), satisfaction paying from month 6; order sizes are gamma with mean "
        f"{BASKET_MEAN:g} EUR. Direct effect bypassing the signals (surrogacy violation): "
        f"{violation:g} EUR per month in months 4-12 for treated customers, pilot and past "
        "experiments alike. 'truth' is the mean over pilot customers (past_<k>_revenue_12m: "
        "over experiment k) of E[Y(1) - Y(0) | covariates, latent value and satisfaction], "
        "exact, for the cumulative revenue of months 1..m (revenue_cum_m<m>, revenue_3m, "
        "revenue_12m) and each signal."
    )
    return SimulatedPilot(
        tables={
            "pilot_customers": customers,
            "pilot_monthly": monthly,
            "pilot_signals": signals,
            "historical": historical,
        },
        truth=truth,
        description=description,
        unit_truth=unit_truth,
    )


def _draw_customers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Covariates and the two latents (log value, satisfaction), plus the outcome noise."""
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    region = rng.integers(0, len(REGIONS), size=n)
    tenure = np.minimum(1 + np.floor(rng.exponential(30.0, size=n)), 240).astype(np.int64)
    log_value = SEGMENT_LOG_VALUE[seg] + 0.15 * np.log1p(tenure / 12) + 0.5 * rng.normal(size=n)
    prior = 12 * Q1_RATE * BASKET_MEAN * np.exp(log_value + 0.35 * rng.normal(size=n) - 0.06125)
    return {
        "segment": seg,
        "region": region,
        "tenure_months": tenure,
        "prior_year_revenue": np.round(prior, 2),
        "log_value": log_value,
        "satisfaction": rng.normal(size=n),
        # Noise of the signals, drawn here so that it does not depend on the parameters.
        "nps_noise": rng.normal(size=n),
        "csat_noise": rng.normal(size=n),
        "uniform_support": rng.random(n),
        "uniform_orders": rng.random((n, HORIZON_MONTHS)),
        # Order sizes come from their own stream: a gamma draw uses a varying number of
        # random numbers, which would otherwise shift every draw after it.
        "size_seed": rng.integers(2**63),
    }


def _covariate_columns(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "segment": np.array(SEGMENTS)[c["segment"]],
        "region": np.array(REGIONS)[c["region"]],
        "tenure_months": c["tenure_months"],
        "prior_year_revenue": c["prior_year_revenue"],
    }


def _signal_means(
    c: dict[str, np.ndarray], treated: np.ndarray | int, scale: np.ndarray
) -> dict[str, np.ndarray]:
    """Latent means of the signals given covariates, latents and arm."""
    push = scale * treated
    return {
        "nps": NPS_BASE[c["segment"]] + NPS_SATISFACTION * c["satisfaction"] + NPS_EFFECT * push,
        "csat": CSAT_BASE + CSAT_SATISFACTION * c["satisfaction"] + CSAT_EFFECT * push,
        "support": SUPPORT_BASE
        * np.exp(-SUPPORT_SATISFACTION * c["satisfaction"] - SUPPORT_EFFECT * push),
        "order_rate": Q1_RATE * np.exp(c["log_value"] + PURCHASE_LIFT * push),
    }


def _late_rate(c: dict[str, np.ndarray], s: dict[str, np.ndarray]) -> np.ndarray:
    """(customers x 12) orders per month given the (observed or expected) signals; months 1..3
    are 0 here (they come from the short-term order rate)."""
    base = (
        RATE_INTERCEPT[c["segment"]]
        + RATE_PRIOR * c["prior_year_revenue"] / 1000
        + RATE_TENURE * c["tenure_months"] / 100
        + RATE_PURCHASES * s["purchases_q1"]
        + RATE_REVENUE * s["revenue_q1"] / 100
        - RATE_SUPPORT * s["support_contacts_q1"]
    )
    satisfaction = RATE_NPS * s["nps_score"] + RATE_CSAT * (s["csat"] - 1)
    typical = RATE_NPS * NPS_TYPICAL + RATE_CSAT * (CSAT_TYPICAL - 1)
    # Before month 6 the answers count only in part; the rest is a typical customer's level,
    # so the revenue level is smooth while the satisfaction effect builds up.
    late = np.arange(1, HORIZON_MONTHS + 1) > Q1_MONTHS
    mix = RAMP[None, :] * satisfaction[:, None] + (1 - RAMP[None, :]) * typical
    return (base[:, None] + mix) * late[None, :]


def _draw_outcomes(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    treated: np.ndarray,
    scale: np.ndarray,
    violation: float,
) -> dict[str, np.ndarray]:
    """The five signals and the (customers x 12) monthly revenue."""
    m = _signal_means(c, treated, scale)
    nps = np.clip(np.round(m["nps"] + NPS_NOISE * c["nps_noise"]), 0, 10).astype(np.int64)
    csat = np.clip(np.round(m["csat"] + CSAT_NOISE * c["csat_noise"]), 1, 5).astype(np.int64)
    support = np.minimum(_poisson_inverse(c["uniform_support"], m["support"]), SUPPORT_CAP)
    q1 = np.arange(1, HORIZON_MONTHS + 1) <= Q1_MONTHS
    rate = np.where(q1[None, :], m["order_rate"][:, None], 0.0)
    size_rng = np.random.default_rng(c["size_seed"])
    orders = _poisson_inverse(c["uniform_orders"][:, :Q1_MONTHS], rate[:, :Q1_MONTHS])
    revenue_q1_months = _order_value(size_rng, orders)
    signals = {
        "purchases_q1": orders.sum(axis=1).astype(np.int64),
        "revenue_q1": np.round(revenue_q1_months.sum(axis=1), 2),
        "support_contacts_q1": support,
        "nps_score": nps,
        "csat": csat,
    }
    late_rate = _late_rate(c, signals)[:, Q1_MONTHS:]
    late_rate = late_rate + violation / BASKET_MEAN * treated[:, None]
    assert (late_rate > 0).all()  # guaranteed by the RATE_* constants
    late_orders = _poisson_inverse(c["uniform_orders"][:, Q1_MONTHS:], late_rate)
    late_revenue = _order_value(size_rng, late_orders)
    return {
        **signals,
        "monthly": np.hstack([revenue_q1_months, late_revenue]),
        "orders": np.hstack([orders, late_orders]).astype(np.int64),
    }


def _order_value(rng: np.random.Generator, orders: np.ndarray) -> np.ndarray:
    """EUR value of ``orders`` iid gamma orders (their sum is gamma with shape k x shape),
    rounded to cents."""
    value = rng.gamma(orders * BASKET_SHAPE, BASKET_MEAN / BASKET_SHAPE)  # shape 0 gives 0
    return np.round(value, 2)


def _poisson_inverse(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson(``lam``) counts by inverse CDF of the uniforms ``u``: the smallest k with
    P(X <= k) > u. Counts are monotone in ``lam`` for a given ``u``, so arms and parameter
    values share their randomness (and ~10x faster than ``scipy.stats.poisson.ppf``)."""
    u, lam = np.broadcast_arrays(u, lam)
    counts = np.zeros(u.shape, dtype=np.int64)
    idx = np.flatnonzero(u.ravel() >= np.exp(-lam.ravel()))
    uu, ll = u.ravel()[idx], lam.ravel()[idx]
    pmf = np.exp(-ll)
    cdf = pmf.copy()
    k = 0
    while idx.size and k < 1_000:
        k += 1
        pmf = pmf * ll / k
        cdf = cdf + pmf
        more = uu >= cdf
        counts.ravel()[idx[~more]] = k
        idx, uu, ll, pmf, cdf = idx[more], uu[more], ll[more], pmf[more], cdf[more]
    return counts


def _expected(
    c: dict[str, np.ndarray], arm: int, scale: np.ndarray, violation: float
) -> dict[str, np.ndarray]:
    """E[signal | covariates, latents, arm] and E[monthly revenue | ...] (customers x 12).

    Months 4..12 are linear in the signals, so their expectation is the rate at the expected
    signals. Rounded, clipped answers: E[clip(round(Z), lo, hi)] = lo + sum over k in
    [lo, hi) of P(Z >= k + 1/2); a capped Poisson count: E[min(P, c)] = sum over k < c of
    P(P > k).
    """
    m = _signal_means(c, arm, scale)
    signals = {
        "purchases_q1": Q1_MONTHS * m["order_rate"],
        "revenue_q1": Q1_MONTHS * m["order_rate"] * BASKET_MEAN,
        "support_contacts_q1": stats.poisson.sf(
            np.arange(SUPPORT_CAP)[None, :], m["support"][:, None]
        ).sum(axis=1),
        "nps_score": _clipped_round_mean(m["nps"], NPS_NOISE, 0, 10),
        "csat": _clipped_round_mean(m["csat"], CSAT_NOISE, 1, 5),
    }
    q1 = np.arange(1, HORIZON_MONTHS + 1) <= Q1_MONTHS
    monthly = BASKET_MEAN * _late_rate(c, signals) + (violation * arm) * ~q1[None, :]
    monthly[:, q1] = (m["order_rate"] * BASKET_MEAN)[:, None]
    return {**signals, "monthly": monthly}


def _clipped_round_mean(mean: np.ndarray, sd: float, lo: int, hi: int) -> np.ndarray:
    cuts = np.arange(lo, hi) + 0.5
    return lo + stats.norm.sf((cuts[None, :] - mean[:, None]) / sd).sum(axis=1)


def _enrolment_days(start: pd.Timestamp) -> int:
    """Days 0..D-1 after ``start`` whose enrolees have 3 complete months at the data cut."""
    cut = start + pd.DateOffset(months=DATA_CUT_MONTHS) + pd.Timedelta(days=DATA_CUT_DAYS)
    ok = [
        start + pd.Timedelta(days=d) + pd.DateOffset(months=Q1_MONTHS) <= cut
        for d in range(ENROLMENT_DAYS)
    ]
    return int(sum(ok))


def _observed_months(start: pd.Timestamp, enrol_day: np.ndarray) -> np.ndarray:
    """Complete months at the cut per customer: month i when assigned_at + i months <= cut."""
    cut = start + pd.DateOffset(months=DATA_CUT_MONTHS) + pd.Timedelta(days=DATA_CUT_DAYS)
    by_day = np.array(
        [
            sum(
                start + pd.Timedelta(days=d) + pd.DateOffset(months=i) <= cut
                for i in range(1, HORIZON_MONTHS + 1)
            )
            for d in range(ENROLMENT_DAYS)
        ]
    )
    return by_day[enrol_day]


def _whole(name: str, value: object, minimum: int) -> int:
    # Integral floats are accepted because command-line and YAML params may arrive as 2e4.
    whole = is_whole(value)
    if not whole or int(value) < minimum:
        raise SpecError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)
