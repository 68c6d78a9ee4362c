"""Seeded simulator of a city-level pilot: free delivery switched on in one city (or a few).

The pilot city cannot be randomised against the others, so the estimate has to come from a
comparison over time with the untreated cities (synthetic control, synthetic DiD). The data are
built so that a weighted average of the other cities reproduces the pilot city while the plain
average of the other cities does not, and the true effect is known exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson

from causal.errors import SpecError
from causal.simulate import REGIONS, SimulatedPilot
from causal.simulate_checks import is_whole

__all__ = ["city_free_delivery"]

FIRST_WEEK = "2023-01-02"  # a Monday: weeks run Monday to Sunday
RAMP_WEEKS = 4  # free delivery takes about a month to be noticed
N_SOURCES = 4  # donors whose loadings each treated city's loadings are a mixture of

# Latent city parameters (one row per city): log population, log weekly online spend per head
# (currency units), and the loadings on the yearly trend, the common demand shock, the regional
# shift and the seasonal cycle. Means and sds of each column, in that order.
LOG_POPULATION_MEAN, LOG_POPULATION_SD = np.log(350_000.0), 0.6
LOG_SPEND_MEAN, LOG_SPEND_SD = np.log(1.2), 0.2
TREND_MEAN, TREND_SD = 0.05, 0.07  # log growth per year: online retail grows, unevenly
SHOCK_MEAN, SHOCK_SD = 1.0, 0.35
REGION_SHIFT_SD, CITY_SHIFT_SD = 0.05, 0.02
SEASON_MEAN, SEASON_SD = 1.0, 0.25
# The mixed loadings get this share of each column's donor sd as noise: small enough that the
# treated city stays (almost) inside the donors' convex hull, large enough not to be an exact copy.
LOADING_JITTER = 0.02

AR_RHO, AR_SD = 0.4, 0.012  # weekly log-revenue noise: AR(1), stationary sd about 1.3%
SHOCK_STEP_SD = 0.012  # weekly step of the common demand random walk
ORDER_VALUE_MEAN, ORDER_VALUE_SD = 45.0, 0.08  # currency units; lognormal across cities


def _whole(name: str, value: object, low: int, high: int | None = None, upto: str = "") -> int:
    """Return ``value`` as an int in ``low..high`` or raise a :class:`SpecError` naming it.

    ``upto`` names the bound ``high`` comes from, for the message.
    """
    # Integral floats are accepted because command-line and YAML params may arrive as 4e1.
    whole = is_whole(value)
    number = int(value) if whole else None
    if number is not None and low <= number and (high is None or number <= high):
        return number
    bounds = f">= {low}" if high is None else f"in {low}..{upto}{'=' if upto else ''}{high}"
    raise SpecError(f"{name} must be a whole number {bounds}, got {value!r}")


def _factors(rng: np.random.Generator, week_start: np.ndarray) -> np.ndarray:
    """Return the (weeks x 4) common factors: trend, demand shock, regional shift, season."""
    n_weeks = week_start.size
    trend = np.arange(n_weeks) / 52.0  # years since the first week
    # A random walk of the national demand (macro climate, competitors' promotions): common to
    # all cities but with city-specific sensitivity, so no fixed trend removes it.
    shock = np.cumsum(rng.normal(0.0, SHOCK_STEP_SD, n_weeks))
    shock -= shock.mean()
    # A shift that switches on mid-sample (a carrier changes its regional network): a logistic
    # step whose size differs by region.
    midpoint = rng.uniform(0.3, 0.7) * n_weeks
    step = 1.0 / (1.0 + np.exp(-(np.arange(n_weeks) - midpoint) / 4.0))
    # Yearly cycle peaking in December plus the Black-Friday-to-Christmas rush around day 340.
    day = (week_start - week_start.astype("datetime64[Y]")).astype(np.int64) + 3.0  # mid-week
    season = 0.10 * np.cos(2 * np.pi * (day - 350.0) / 365.25) + 0.12 * np.exp(
        -0.5 * ((day - 340.0) / 12.0) ** 2
    )
    return np.column_stack([trend, shock, step, season])


def city_free_delivery(
    *,
    n_cities: int = 40,
    n_weeks: int = 104,
    treatment_week: int = 79,
    effect: float = 0.06,
    n_treated: int = 1,
    seed: int = 0,
) -> SimulatedPilot:
    """Simulate weekly online revenue of cities, free delivery switched on in the first ones.

    A retailer offers free delivery in ``n_treated`` pilot cities from week ``treatment_week``;
    the other cities are the donor pool. Weekly revenue of every city follows a latent factor
    model, ``log Y(0)_ct = log population_c + log spend_c + trend_c·t/52 + shock_c·D_t +
    shift_c·S_t + season_c·Q_t + u_ct``, with a common demand random walk ``D``, a logistic
    regional step ``S`` (shift sizes cluster by region), a December-peaking season ``Q`` and
    AR(1) noise ``u``. Each pilot city's latent parameters are a random convex combination of
    those of 4 similar donors (plus a little noise), chosen around a large, fast-growing donor:
    a weighted average of donors reproduces the pilot city, but the plain donor average grows
    more slowly, so a plain difference-in-differences is biased, typically upwards. Free delivery
    multiplies revenue by ``1 + lift_t`` with ``lift_t = effect·min(1, (t - treatment_week +
    1)/4)`` from ``treatment_week`` on; orders are Poisson with mean revenue over the city's
    average order value, drawn from the same uniforms whatever ``effect`` is.

    Parameters
    ----------
    n_cities : int, default 40
        Number of cities, treated ones included (at least 3).
    n_weeks : int, default 104
        Number of weeks; week 1 starts on Monday 2023-01-02.
    treatment_week : int, default 79
        First week with free delivery, in ``2..n_weeks`` (weeks before it are the pre-period).
    effect : float, default 0.06
        Relative revenue lift once fully ramped in (> -1); 0 gives a null pilot.
    n_treated : int, default 1
        Number of pilot cities (``city_01`` ...), all starting in ``treatment_week``;
        at most ``n_cities - 1``.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables, and
        runs differing only in ``effect`` share every untreated outcome and ``Y(0)``.

    Returns
    -------
    SimulatedPilot
        Tables ``city_weeks`` (city, week, week_start, revenue in thousands, orders,
        population, region; one row per city and week) and ``cities`` (city, region,
        population, treated). Truth, over the treated city-weeks from ``treatment_week`` on,
        computed from the simulated ``Y(0)`` itself (exact, not an expectation):
        ``revenue`` the mean of ``Y(1) - Y(0) = Y(0)·lift_t``, ``revenue_total`` its sum,
        ``revenue_relative`` the mean over the mean of ``Y(0)``.

    Raises
    ------
    SpecError
        If a parameter is out of range; the message names it.

    Examples
    --------
    >>> pilot = city_free_delivery(n_cities=10, n_weeks=30, treatment_week=21, seed=1)
    >>> sorted(pilot.tables)
    ['cities', 'city_weeks']
    >>> pilot.tables["city_weeks"].shape
    (300, 7)
    >>> int(pilot.tables["cities"].treated.sum())
    1
    >>> city_free_delivery(effect=0.0).truth["revenue"]
    0.0
    """
    n_cities = _whole("n_cities", n_cities, 3)
    n_weeks = _whole("n_weeks", n_weeks, 2)
    # At least one week before the start, so there is a pre-period to fit donors' weights on.
    treatment_week = _whole("treatment_week", treatment_week, 2, n_weeks, "n_weeks")
    n_treated = _whole("n_treated", n_treated, 1, n_cities - 1, "n_cities - 1")
    number = isinstance(effect, int | float | np.number) and not isinstance(effect, bool)
    if not (number and np.isfinite(effect) and effect > -1):
        raise SpecError(f"effect must be a finite number > -1, got {effect!r}")

    rng = np.random.default_rng(seed)
    n_donors = n_cities - n_treated
    week_start = np.datetime64(FIRST_WEEK, "D") + 7 * np.arange(n_weeks).astype("timedelta64[D]")
    factors = _factors(rng, week_start)

    # --- Donors' latent parameters. Columns: log population, log spend per head, then the
    # loadings on the four factors (trend, shock, regional step, season).
    donor_region = rng.integers(0, len(REGIONS), size=n_donors)
    region_shift = rng.normal(0.0, REGION_SHIFT_SD, size=len(REGIONS))
    donors = np.column_stack(
        [
            rng.normal(LOG_POPULATION_MEAN, LOG_POPULATION_SD, n_donors),
            rng.normal(LOG_SPEND_MEAN, LOG_SPEND_SD, n_donors),
            rng.normal(TREND_MEAN, TREND_SD, n_donors),
            rng.normal(SHOCK_MEAN, SHOCK_SD, n_donors),
            region_shift[donor_region] + rng.normal(0.0, CITY_SHIFT_SD, n_donors),
            rng.normal(SEASON_MEAN, SEASON_SD, n_donors),
        ]
    )

    # --- Pilot cities: a retailer pilots in a large city where online sales grow fast, so each
    # pilot city is built around a donor that is in the fastest-growing third and at least of
    # median size. Mixing it with its nearest fast-growing donors (standardised parameters,
    # trend weighted up) puts the pilot city inside the donors' convex hull but away from the
    # donor average: it grows faster, so its gap to the average widens over time and a plain
    # DiD is biased, typically upwards.
    fast = np.flatnonzero(donors[:, 2] >= np.quantile(donors[:, 2], 2 / 3))
    large = fast[donors[fast, 0] >= np.median(donors[:, 0])]
    k = min(N_SOURCES, fast.size)
    scale = donors.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a single donor has no spread
    z = donors / scale * np.array([1.0, 1.0, 3.0, 1.0, 1.0, 1.0])
    anchors = rng.choice(large if large.size else fast, size=n_treated, replace=True)
    dist = np.linalg.norm(z[anchors][:, None, :] - z[None, fast, :], axis=2)  # (treated, fast)
    sources = fast[np.argsort(dist, axis=1, kind="stable")[:, :k]]  # anchor first (distance 0)
    mix = rng.dirichlet(np.ones(k), size=n_treated)
    jitter = rng.normal(0.0, LOADING_JITTER, size=(n_treated, donors.shape[1])) * scale
    treated_params = np.einsum("ik,ikp->ip", mix, donors[sources]) + jitter
    params = np.vstack([treated_params, donors])
    # The region is that of the donor with the largest share in the mixture.
    treated_region = donor_region[sources[np.arange(n_treated), mix.argmax(axis=1)]]
    region = np.concatenate([treated_region, donor_region])

    # --- Untreated revenue Y(0), thousands of currency units per week.
    e = rng.normal(0.0, AR_SD, size=(n_cities, n_weeks))
    u = np.empty_like(e)
    u[:, 0] = e[:, 0] / np.sqrt(1 - AR_RHO**2)  # start in the stationary distribution
    for t in range(1, n_weeks):  # one step per week, vectorised over cities
        u[:, t] = AR_RHO * u[:, t - 1] + e[:, t]
    log_y0 = params[:, :2].sum(axis=1)[:, None] + params[:, 2:] @ factors.T + u
    y0 = np.exp(log_y0) / 1000.0

    # --- Free delivery: a multiplicative lift that ramps in over RAMP_WEEKS weeks.
    week = np.arange(1, n_weeks + 1)
    lift = effect * np.clip((week - treatment_week + 1) / RAMP_WEEKS, 0.0, 1.0)
    is_treated = np.arange(n_cities) < n_treated
    gain = y0 * lift[None, :] * is_treated[:, None]  # exactly Y(1) - Y(0), 0 for donors
    revenue = y0 + gain

    # Orders by inverse CDF of pre-drawn uniforms, so an effect changes the treated cities'
    # orders only through their mean (coupled draws) and never shifts anyone else's stream.
    order_value = ORDER_VALUE_MEAN * np.exp(rng.normal(0.0, ORDER_VALUE_SD, n_cities))
    uniform = np.clip(rng.random((n_cities, n_weeks)), 1e-12, 1 - 1e-12)
    orders = poisson.ppf(uniform, revenue * 1000.0 / order_value[:, None]).astype(np.int64)

    width = max(2, len(str(n_cities)))
    names = np.array([f"city_{i:0{width}d}" for i in range(1, n_cities + 1)])
    population = np.round(np.exp(params[:, 0])).astype(np.int64)
    region_names = np.array(REGIONS)[region]
    cities = pd.DataFrame(
        {
            "city": names,
            "region": region_names,
            "population": population,
            "treated": is_treated.astype(np.int64),
        }
    )
    city_weeks = pd.DataFrame(
        {
            "city": np.repeat(names, n_weeks),
            "week": np.tile(week, n_cities).astype(np.int64),
            "week_start": np.tile(week_start, n_cities).astype("datetime64[us]"),
            "revenue": revenue.ravel(),
            "orders": orders.ravel(),
            "population": np.repeat(population, n_weeks),
            "region": np.repeat(region_names, n_weeks),
        }
    )

    post = week >= treatment_week
    cells = gain[:n_treated][:, post]
    truth = {
        "revenue": float(cells.mean()),
        "revenue_total": float(cells.sum()),
        "revenue_relative": float(cells.mean() / y0[:n_treated][:, post].mean()),
    }

    n_post = n_weeks - treatment_week + 1
    description = (
        f"Simulated free-delivery pilot: {n_cities} cities over {n_weeks} weeks from "
        f"{FIRST_WEEK} (seed={seed}); free delivery in {n_treated} pilot "
        f"cit{'y' if n_treated == 1 else 'ies'} ({', '.join(names[:n_treated][:3])}"
        f"{', ...' if n_treated > 3 else ''}) from week {treatment_week} ({n_post} post weeks), "
        f"the other {n_donors} cities being the donor pool. Weekly online revenue (thousands) "
        "is exp(log population + log spend per head + loadings x common factors + AR(1) noise), "
        "the factors being a linear trend, a national demand random walk, a regional step and a "
        "December-peaking season. Each pilot city's latent parameters are a random convex "
        f"combination of those of {k} similar donors (plus small noise), built around a large, "
        "fast-growing donor: a weighted average of donors tracks it, the plain donor average "
        "does not, so simple difference-in-differences is biased. Free delivery multiplies "
        "revenue by "
        f"1 + lift, lift = {effect} x min(1, (week - {treatment_week} + 1)/{RAMP_WEEKS}); "
        "orders are Poisson with mean revenue over the city's average order value. 'truth' is "
        "exact for this draw: the mean ('revenue'), sum ('revenue_total') and share of the "
        "untreated revenue ('revenue_relative') of Y(1) - Y(0) = Y(0) x lift over the pilot "
        "cities' post weeks, Y(0) being the simulated untreated revenue."
    )
    return SimulatedPilot(
        tables={"city_weeks": city_weeks, "cities": cities},
        truth=truth,
        description=description,
    )
