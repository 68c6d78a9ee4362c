"""Seeded simulator of a staggered roll-out: remote technical support switched on region by region.

Stores adopt in waves, so the comparison has to come from a staggered difference-in-differences
(Callaway–Sant'Anna or similar). The effect ramps in over months and is larger for earlier
waves, so a two-way fixed-effects regression with a single post dummy is visibly biased, while
the untreated outcomes satisfy parallel trends in expectation and the true effects are known
exactly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from causal.errors import SpecError
from causal.simulate import SimulatedPilot
from causal.simulate_checks import is_whole

__all__ = ["remote_support_rollout", "truth_tables"]

FIRST_MONTH = "2023-01-01"  # month_index 1

# Ramp of the effect in event time e = month - first treated month, as a share of the store's
# plateau: customers barely notice the service for EARLY_MONTHS months, then uptake grows
# linearly until PLATEAU_EVENT_MONTH and stays flat.
EARLY_MONTHS = 3  # e = 0, 1, 2
EARLY_SHARE = 0.125  # 1% of revenue at the default 8% plateau
PLATEAU_EVENT_MONTH = 9
# Earlier waves get the service where the retailer expected the most of it: the first wave's
# plateau is (1 + WAVE_SPREAD) x plateau, the last's (1 - WAVE_SPREAD) x, linear in between.
# Dynamic, cohort-heterogeneous effects are what make a single-dummy TWFE misleading.
WAVE_SPREAD = 0.5
STORE_EFFECT_SHAPE = 4.0  # gamma shape of the store's effect multiplier (mean 1, cv 0.5)

# Untreated revenue, EUR per month: E[Y(0)_it] = region_level_r + scale_i * m_t, with m_t a
# common season x trend. Region levels enter additively so that the roll-out order may depend
# on them (the retailer starts where revenue is high) without breaking parallel trends in levels.
BASE_REVENUE = 20_000.0  # median store scale
FLOOR_AREA_MEDIAN, FLOOR_AREA_SD = 1_200.0, 0.4  # m², lognormal
FLOOR_AREA_ELASTICITY = 0.6
SCALE_SD = 0.25  # lognormal store scale beyond floor area and age
AGE_EFFECT = 0.01  # log scale per year of age, up to AGE_CAP years: regulars build up
AGE_CAP = 20
OPENED_FIRST, OPENED_LAST = 1990, 2022
REGION_LEVEL_MAX = 0.3  # region levels are uniform on [0, 0.3] x BASE_REVENUE
REGION_SIZE_CONCENTRATION = 5.0  # Dirichlet: regions differ in size, none very small
PRIORITY_NOISE = 0.05  # roll-out order follows region level up to this noise (in BASE units)
SEASON_AMPLITUDE = 0.12  # December peak: gifts and new-device set-ups
TREND_PER_YEAR = 0.05
# Multiplicative noise exp(u - var/2): store AR(1) plus a region AR(1) shared by its stores.
STORE_RHO, STORE_SD = 0.6, 0.07  # stationary sd of the store component
REGION_RHO, REGION_SD = 0.5, 0.008


def _whole(name: str, value: object, low: int, high: int | None = None, upto: str = "") -> int:
    """Return ``value`` as an int in ``low..high`` or raise a :class:`SpecError` naming it."""
    # Integral floats are accepted because command-line and YAML params may arrive as 6e2.
    whole = is_whole(value)
    number = int(value) if whole else None
    if number is not None and low <= number and (high is None or number <= high):
        return number
    bounds = f">= {low}" if high is None else f"in {low}..{upto}{'=' if upto else ''}{high}"
    raise SpecError(f"{name} must be a whole number {bounds}, got {value!r}")


def _number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _parse(item: object) -> object:
    """Return a whole number written as text (``" 14"``) as an int, anything else unchanged."""
    return int(item) if isinstance(item, str) and item.strip().isdigit() else item


def _ramp(event: np.ndarray) -> np.ndarray:
    """Share of the plateau reached at event time ``event`` (0 before adoption)."""
    growth = (event - (EARLY_MONTHS - 1)) / (PLATEAU_EVENT_MONTH - (EARLY_MONTHS - 1))
    share = EARLY_SHARE + (1 - EARLY_SHARE) * np.clip(growth, 0.0, 1.0)
    return np.where(event >= 0, share, 0.0)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) paths along the first axis (time), sd ``sd``, vectorised over columns."""
    u = rng.standard_normal(shape)
    u *= sd * np.sqrt(1 - rho**2)
    u[0] *= 1 / np.sqrt(1 - rho**2)
    for t in range(1, shape[0]):
        u[t] += rho * u[t - 1]
    return u


def remote_support_rollout(
    *,
    n_stores: int = 600,
    n_regions: int = 12,
    n_months: int = 30,
    waves: tuple[int, ...] = (10, 14, 18, 22),
    share_never: float = 0.25,
    plateau: float = 0.08,
    seed: int = 0,
) -> SimulatedPilot:
    """Simulate monthly store revenue while remote technical support is rolled out by region.

    A retailer switches on remote technical support for its stores region by region. Regions
    are ranked by their revenue level (plus noise); the top ones are split into ``waves``
    (earlier waves get the stronger regions and one more region when the split is uneven), the
    last ``round(share_never * n_regions)`` never get the service in the window. Untreated
    monthly service-and-accessory revenue of store ``i`` in month ``t`` is ``Y(0)_it =
    (level_r + scale_i·m_t)·exp(u_it - var/2)``: an additive region level, a store scale (floor
    area, age, lognormal noise), a common December-peaking season times a 5%/year trend ``m_t``
    and AR(1) noise (store plus region), so ``E[Y(0)_it] = level_r + scale_i·m_t`` and parallel
    trends hold in expectation whatever the roll-out order. From its region's start month
    ``g`` the store earns ``Y(1)_it = Y(0)_it·(1 + tau_i(t - g))`` with ``tau_i(e) =
    plateau·w_g·k_i·ramp(e)``: ``ramp`` is 1/8 for ``e = 0..2``, then grows linearly to 1 at
    ``e = 9``; ``w_g`` falls linearly from 1.5 (first wave) to 0.5 (last wave); ``k_i`` is a
    gamma store multiplier with mean 1. No anticipation: ``tau_i(e) = 0`` for ``e < 0``.

    Parameters
    ----------
    n_stores : int, default 600
        Number of stores (at least ``n_regions``; every region has a store).
    n_regions : int, default 12
        Number of regions (at least 2), ``region_01`` ...; sizes vary (Dirichlet shares).
    n_months : int, default 30
        Number of months; ``month_index`` 1 is January 2023.
    waves : tuple of int, default (10, 14, 18, 22)
        Strictly increasing start months, each in ``2..n_months`` (a pre-period is needed);
        a list, a single month or a comma-separated string (``"10,14"``) is accepted too.
    share_never : float, default 0.25
        Share of regions never treated in the window, in ``[0, 1)``; at least one region per
        wave must remain.
    plateau : float, default 0.08
        Relative revenue gain at the plateau for a wave of weight ``w_g = 1`` (the middle of
        the waves) and an average store (>= 0); 0 gives a null roll-out.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables, and
        runs differing only in ``plateau`` share every draw, so ``plateau=0`` gives ``Y(0)``.

    Returns
    -------
    SimulatedPilot
        Tables ``stores`` (store, region, opened_year, floor_area_m2), ``rollout`` (region,
        support_start_month, null if never treated) and ``store_months`` (store, month_index,
        month, revenue; sorted by store then month). Truth: ``E[Y(1) - Y(0)]`` given each
        store's parameters (``mu_it·tau_i(e)`` with ``mu_it = E[Y(0)_it]``), exact, no noise.
        With ``n_g`` the stores of cohort ``g`` and ``ATT(g,t)`` the mean over them in month
        ``t``: ``revenue_g{g}_t{t}`` is ``ATT(g,t)`` for each ``t >= g``; ``revenue`` the
        Callaway–Sant'Anna "simple" aggregation ``sum n_g·ATT(g,t) / sum n_g`` over those
        cells, i.e. the mean over treated store-months; ``revenue_relative`` that over the
        mean of ``E[Y(0)]`` of the same store-months; ``revenue_e{e}`` (``e >= 0``) the
        "dynamic" aggregation ``sum_g n_g·ATT(g,g+e) / sum_g n_g`` over cohorts observed at
        ``e``. Effects before adoption are 0 and have no key. See :func:`truth_tables`.

    Raises
    ------
    SpecError
        If a parameter is out of range; the message names it.

    Examples
    --------
    >>> pilot = remote_support_rollout(n_stores=120, n_months=24, seed=1)
    >>> sorted(pilot.tables)
    ['rollout', 'store_months', 'stores']
    >>> pilot.tables["store_months"].shape
    (2880, 4)
    >>> pilot.truth["revenue_e0"] < pilot.truth["revenue_e9"]
    True
    >>> remote_support_rollout(plateau=0.0).truth["revenue"]
    0.0
    """
    n_regions = _whole("n_regions", n_regions, 2)
    n_stores = _whole("n_stores", n_stores, 1)
    if n_stores < n_regions:
        raise SpecError(
            f"n_stores must be at least n_regions={n_regions} (every region has a store), "
            f"got {n_stores}"
        )
    n_months = _whole("n_months", n_months, 2)
    # The command line gives "10,14,18" (a string) or 10 (a single wave).
    items = waves.split(",") if isinstance(waves, str) else waves
    if _number(items):
        items = [items]
    if not isinstance(items, Sequence | np.ndarray):
        raise SpecError(f"waves must be a list of start months, got {waves!r}")
    try:
        starts = [_whole("waves", _parse(w), 2, n_months, "n_months") for w in items]
    except SpecError:
        raise SpecError(
            f"waves must list whole start months in 2..n_months={n_months}, got {waves!r}"
        ) from None
    if not starts or any(b <= a for a, b in itertools.pairwise(starts)):
        raise SpecError(f"waves must be a non-empty, strictly increasing list, got {waves!r}")
    if not (_number(share_never) and 0 <= share_never < 1):
        raise SpecError(f"share_never must be a number in [0, 1), got {share_never!r}")
    n_never = round(share_never * n_regions)
    if n_regions - n_never < len(starts):
        raise SpecError(
            f"share_never={share_never!r} leaves {n_regions - n_never} treated regions of "
            f"{n_regions} for {len(starts)} waves; lower it or raise n_regions"
        )
    # Gains only: with unbounded store multipliers a negative plateau could push revenue below 0.
    if not (_number(plateau) and np.isfinite(plateau) and plateau >= 0):
        raise SpecError(f"plateau must be a finite number >= 0, got {plateau!r}")

    rng = np.random.default_rng(seed)
    n, n_waves = n_stores, len(starts)
    month_index = np.arange(1, n_months + 1)
    month = np.datetime64(FIRST_MONTH, "M") + np.arange(n_months).astype("timedelta64[M]")
    season = 1 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (month.astype(np.int64) % 12 - 11) / 12)
    m_t = season * (1 + TREND_PER_YEAR) ** ((month_index - 1) / 12)

    # --- Regions: sizes, levels, and the roll-out order (by level, not by trend).
    sizes = 1 + rng.multinomial(
        n - n_regions, rng.dirichlet([REGION_SIZE_CONCENTRATION] * n_regions)
    )
    level = BASE_REVENUE * rng.uniform(0.0, REGION_LEVEL_MAX, n_regions)
    priority = level / BASE_REVENUE + rng.normal(0.0, PRIORITY_NOISE, n_regions)
    order = np.argsort(-priority, kind="stable")
    region_wave = np.full(n_regions, -1)  # index into starts, -1 = never treated
    for k, regions in enumerate(np.array_split(order[: n_regions - n_never], n_waves)):
        region_wave[regions] = k
    region_start = np.where(region_wave >= 0, np.array(starts)[region_wave], 0)

    # --- Stores: CRM attributes, scale, and effect multiplier, all independent of the region.
    region = rng.permutation(np.repeat(np.arange(n_regions), sizes))
    floor_area = np.round(FLOOR_AREA_MEDIAN * np.exp(rng.normal(0.0, FLOOR_AREA_SD, n)), -1)
    opened = rng.integers(OPENED_FIRST, OPENED_LAST + 1, n)
    age = np.minimum(int(FIRST_MONTH[:4]) - opened, AGE_CAP)
    log_scale = FLOOR_AREA_ELASTICITY * np.log(floor_area / FLOOR_AREA_MEDIAN) + AGE_EFFECT * (
        age - AGE_CAP / 2
    )
    scale = BASE_REVENUE * np.exp(log_scale + rng.normal(0.0, SCALE_SD, n))
    k_store = rng.gamma(STORE_EFFECT_SHAPE, 1 / STORE_EFFECT_SHAPE, n)

    # --- Untreated revenue, laid out (months x stores) so the AR steps are contiguous.
    var = STORE_SD**2 + REGION_SD**2
    noise = _ar1(rng, (n_months, n), STORE_RHO, STORE_SD)
    noise += _ar1(rng, (n_months, n_regions), REGION_RHO, REGION_SD)[:, region]
    noise -= var / 2
    np.exp(noise, out=noise)
    mu = np.multiply.outer(m_t, scale)  # E[Y(0)] = level + scale * m_t
    mu += level[region]
    revenue = noise
    revenue *= mu  # Y(0)

    # --- The effect: Y(1) = Y(0) * (1 + tau), tau = plateau * w_g * k_i * ramp(t - g).
    # Wave weights fall linearly from 1 + WAVE_SPREAD to 1 - WAVE_SPREAD (1 for a single wave).
    weight = 1 + WAVE_SPREAD * np.linspace(1.0, -1.0, n_waves) if n_waves > 1 else np.ones(1)
    wave = region_wave[region]
    att = np.zeros((n_waves, n_months))  # ATT(g, t), 0 before adoption
    n_g = np.bincount(wave[wave >= 0], minlength=n_waves)
    y0_sum = np.zeros(n_waves)
    for k in range(n_waves):  # one pass per wave, vectorised over its stores
        members = np.flatnonzero(wave == k)
        tau = (
            plateau
            * weight[k]
            * np.multiply.outer(_ramp(month_index - starts[k]), k_store[members])
        )
        mu_k = mu[:, members]
        att[k] = (mu_k * tau).mean(axis=1)  # every wave has a region, so a store
        y0_sum[k] = mu_k[month_index >= starts[k]].sum()
        revenue[:, members] *= 1 + tau

    # --- Truth, from the expected gains mu * tau (see docstring for the aggregations).
    truth: dict[str, float] = {}
    post = month_index[None, :] >= np.array(starts)[:, None]  # (waves x months)
    cells = n_g[:, None] * post
    gain_total = float((cells * att).sum())
    truth["revenue"] = gain_total / float(cells.sum())
    truth["revenue_relative"] = gain_total / float(y0_sum.sum())
    for e in range(n_months - starts[0] + 1):
        t = np.array(starts) + e
        seen = t <= n_months
        weights = n_g[seen]
        values = att[np.flatnonzero(seen), t[seen] - 1]
        truth[f"revenue_e{e}"] = float(weights @ values / weights.sum())
    for k, start in enumerate(starts):
        for t in range(start, n_months + 1):
            truth[f"revenue_g{start}_t{t}"] = float(att[k, t - 1])

    del mu  # the frames below are the memory peak at large sizes
    names = np.array([f"region_{r:02d}" for r in range(1, n_regions + 1)])
    stores = pd.DataFrame(
        {
            "store": np.arange(1, n + 1, dtype=np.int64),
            "region": names[region],
            "opened_year": opened.astype(np.int64),
            "floor_area_m2": floor_area,
        }
    )
    start_col = pd.array([int(s) if s else None for s in region_start], dtype="Int64")
    rollout = pd.DataFrame({"region": names, "support_start_month": start_col})
    store_months = pd.DataFrame(
        {
            "store": np.repeat(np.arange(1, n + 1, dtype=np.int64), n_months),
            "month_index": np.tile(month_index.astype(np.int64), n),
            "month": np.tile(month.astype("datetime64[D]").astype("datetime64[us]"), n),
            "revenue": revenue.T.ravel(),
        },
        copy=False,
    )

    never = int((region_wave < 0).sum())
    description = (
        f"Simulated staggered roll-out of remote technical support: {n} stores in {n_regions} "
        f"regions over {n_months} months from {FIRST_MONTH[:7]} (seed={seed}). Regions ranked by "
        f"revenue level adopt in waves starting in months {', '.join(map(str, starts))} "
        f"({', '.join(map(str, n_g))} stores); {never} regions never adopt in the window. "
        "Untreated monthly service-and-accessory revenue (EUR) is (region level + store scale x "
        "December-peaking season x 5%/year trend) x exp(store and region AR(1) noise), so "
        "parallel trends hold in expectation. The service multiplies revenue by 1 + tau, tau = "
        f"{plateau} x wave weight (1.5 first wave .. 0.5 last) x store multiplier (mean 1) x "
        f"ramp: 1/8 for event months 0-2, linear to 1 at event month {PLATEAU_EVENT_MONTH}, flat "
        "after; no anticipation. 'truth' is exact E[Y(1) - Y(0)] given the stores' parameters: "
        "ATT(g,t) per cohort and month (revenue_g<g>_t<t>), the cohort-size-weighted mean over "
        "post cells (revenue, as Callaway-Sant'Anna 'simple'), its share of E[Y(0)] "
        "(revenue_relative) and the event-time path (revenue_e<e>, as 'dynamic')."
    )
    return SimulatedPilot(
        tables={"stores": stores, "rollout": rollout, "store_months": store_months},
        truth=truth,
        description=description,
    )


_GT_KEY = re.compile(r"^revenue_g(\d+)_t(\d+)$")
_E_KEY = re.compile(r"^revenue_e(\d+)$")


def truth_tables(truth: Mapping[str, float]) -> dict[str, pd.DataFrame]:
    """Unflatten the truth of :func:`remote_support_rollout` into tables.

    Parameters
    ----------
    truth : Mapping[str, float]
        The ``truth`` of a pilot from :func:`remote_support_rollout` (or its ``truth.json``).

    Returns
    -------
    dict[str, pandas.DataFrame]
        ``"att_gt"``: columns cohort, month_index, event_time, att (one row per post cell);
        ``"event"``: columns event_time, att.

    Examples
    --------
    >>> truth = remote_support_rollout(n_stores=60, n_months=12, waves=(10,), seed=2).truth
    >>> tables = truth_tables(truth)
    >>> tables["att_gt"][["cohort", "month_index", "event_time"]].values.tolist()
    [[10, 10, 0], [10, 11, 1], [10, 12, 2]]
    >>> tables["event"].event_time.tolist()
    [0, 1, 2]
    """
    gt = [(int(m[1]), int(m[2]), v) for k, v in truth.items() if (m := _GT_KEY.match(k))]
    att_gt = pd.DataFrame(gt, columns=["cohort", "month_index", "att"])
    att_gt.insert(2, "event_time", att_gt.month_index - att_gt.cohort)
    event = pd.DataFrame(
        [(int(m[1]), v) for k, v in truth.items() if (m := _E_KEY.match(k))],
        columns=["event_time", "att"],
    )
    return {
        "att_gt": att_gt.sort_values(["cohort", "month_index"], ignore_index=True),
        "event": event.sort_values("event_time", ignore_index=True),
    }
