"""Seeded simulators of service pilots whose true effect is known.

A simulator returns the raw tables of a pilot as the business would hold them (separate CRM,
ERP and finance extracts) together with the true average treatment effect on every outcome of
the canonical analysis table, so estimators can be checked against a known answer.

The truth is the average, over the simulated customers, of each customer's *expected*
difference between the treated and untreated outcome given that customer's latent parameters.
It is computed analytically from the rates and order-size means, never from the random draws,
so it carries no sampling noise of its own.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from causal.errors import SpecError
from causal.simulate_checks import start_date as start_date_of

__all__ = [
    "ANALYSIS_QUERY",
    "SIMULATORS",
    "SimulatedPilot",
    "extended_warranty_pilot",
    "simulate",
    "write_tables",
]


@dataclass(frozen=True)
class SimulatedPilot:
    """A simulated pilot: raw source tables plus the known truth.

    Attributes
    ----------
    tables : Mapping[str, pandas.DataFrame]
        Source tables by name: ``"crm"``, ``"erp_orders"`` and ``"finance_margins"``.
    truth : Mapping[str, float]
        True average treatment effect on each outcome column of :data:`ANALYSIS_QUERY`.
    description : str
        How the data were generated and what ``truth`` means.
    unit_truth : pandas.DataFrame or None, default None
        Per-unit true effects (one row per unit, e.g. each customer's true uplift), for tests
        and reports that compare estimated with true heterogeneity. Never a data source: it
        is not among ``tables``, so specs and the engine cannot read it. ``None`` when the
        simulator does not provide it.
    """

    tables: Mapping[str, pd.DataFrame]
    truth: Mapping[str, float]
    description: str
    unit_truth: pd.DataFrame | None = None


# Category order is fixed: every per-category array below is indexed in this order.
CATEGORIES: tuple[str, ...] = ("appliances", "accessories", "consumables", "services")
GROSS_MARGIN = np.array([0.18, 0.45, 0.30, 0.60])
# Mix of ordinary orders, and of the extra orders the warranty brings: covered appliances
# need cables, cases and spare parts, so the extra demand leans to accessories.
BASE_MIX = np.array([0.12, 0.28, 0.45, 0.15])
EXTRA_MIX = np.array([0.05, 0.65, 0.15, 0.15])
# Relative order size by category, scaled so that an ordinary order averages 1 (times the
# customer's mean order size): appliances are rare but large, consumables frequent but small.
_RAW_SIZE = np.array([2.5, 0.45, 0.35, 1.2])
SIZE_MULT = _RAW_SIZE / (BASE_MIX @ _RAW_SIZE)
ORDER_SIZE_SHAPE = 3.0  # gamma shape: coefficient of variation 0.58 within a category

SEGMENTS: tuple[str, ...] = ("bronze", "silver", "gold")
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
SEGMENT_LOG_VALUE = np.array([-0.35, 0.15, 0.75])
UPLIFT = np.array([0.04, 0.06, 0.09])  # relative lift of the order rate, months 4..12
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")

LAG_MONTHS = 3  # the offer does nothing in post months 1..3
HORIZON_MONTHS = 12
BASE_MONTHLY_RATE = 0.35  # orders per month of a customer with latent value 1
BASE_ORDER_SIZE = 55.0  # currency units, mean ordinary order of a customer with value 1
LATENT_SD = 0.65  # sd of log value within segment and tenure
DRIFT_SD = 0.15  # sd of the log change of the order rate from the pre to the post year


def _month_boundaries(start: pd.Timestamp) -> np.ndarray:
    """Return start + k months for k = -12..12 as datetime64[D].

    Offsets are taken from ``start`` directly, as DuckDB's ``assigned_at + INTERVAL k MONTH``
    does, so both clamp a 31st to the month end in the same way.
    """
    ks = range(-HORIZON_MONTHS, HORIZON_MONTHS + 1)
    return np.array([(start + pd.DateOffset(months=k)).date() for k in ks], dtype="datetime64[D]")


def _draw_orders(
    rng: np.random.Generator,
    rates: Callable[[int], np.ndarray],
    months: range,
    size_mean: np.ndarray,
    boundaries: np.ndarray,
) -> dict[str, np.ndarray]:
    """Draw Poisson order counts per customer, category and month, then sizes and dates.

    ``rates(m)`` gives the (customers x categories) rate for month index ``m`` (0 = first
    pre-period month). Order sizes are gamma with mean ``size_mean[customer, category]``.
    """
    cust, cat, month = [], [], []
    for m in months:
        counts = rng.poisson(rates(m))
        i, c = np.nonzero(counts)
        reps = counts[i, c]
        cust.append(np.repeat(i, reps))
        cat.append(np.repeat(c, reps))
        month.append(np.full(reps.sum(), m))
    cust_a, cat_a, month_a = (np.concatenate(x) for x in (cust, cat, month))
    scale = size_mean[cust_a, cat_a] / ORDER_SIZE_SHAPE
    amount = np.round(rng.gamma(ORDER_SIZE_SHAPE, scale), 2)
    days_in_month = (boundaries[1:] - boundaries[:-1]).astype(np.int64)
    day = np.floor(rng.random(cust_a.size) * days_in_month[month_a]).astype(np.int64)
    date = boundaries[month_a] + day.astype("timedelta64[D]")
    return {"cust": cust_a, "cat": cat_a, "amount": amount, "date": date}


def extended_warranty_pilot(
    *,
    n_customers: int = 40_000,
    treated_share: float = 0.5,
    seed: int = 0,
    effect_scale: float = 1.0,
    start_date: str = "2025-03-01",
) -> SimulatedPilot:
    """Simulate a randomised extended-warranty offer with a lagged, heterogeneous effect.

    A retailer shows a 3-year extended-warranty offer at checkout to a random
    ``treated_share`` of its customers on ``start_date``. Each customer has a latent value
    (lognormal, higher for silver and gold and growing with tenure) that drives the monthly
    order rate and the mean order size both in the 12 months before and the 12 months after
    the offer, with a customer-level drift between the two periods. For treated customers the
    post-period order rate in months 4..12 is multiplied by ``1 + uplift * effect_scale``
    (uplift 0.04 bronze, 0.06 silver, 0.09 gold); months 1..3 are unaffected. The extra orders
    lean to accessories. Month ``k`` after the start is ``[start + (k-1) months, start + k
    months)``, the same windows :data:`ANALYSIS_QUERY` uses.

    Parameters
    ----------
    n_customers : int, default 40_000
        Number of customers in the pilot (at least 2).
    treated_share : float, default 0.5
        Share shown the offer; exactly ``round(n_customers * treated_share)`` are treated,
        chosen by a random permutation.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical tables.
    effect_scale : float, default 1.0
        Multiplies every segment's uplift (>= 0); 0 means the offer has no effect.
    start_date : str, default "2025-03-01"
        The day the offer was shown (``assigned_at``).

    Returns
    -------
    SimulatedPilot
        Tables ``crm``, ``erp_orders``, ``finance_margins`` and the truth for the columns
        ``pre_revenue_12m`` (0), ``revenue_3m`` (0, the lag), ``revenue_12m``,
        ``gross_profit_12m`` and ``repurchase_12m``: the mean over customers of
        E[Y(1) - Y(0) | customer's latent rate and order size], from Poisson and gamma
        expectations (``1 - exp(-Λ)`` for the probability of any order).

    Raises
    ------
    SpecError
        If a parameter is out of range or ``start_date`` is not a date.

    Examples
    --------
    >>> pilot = extended_warranty_pilot(n_customers=2_000, seed=1)
    >>> sorted(pilot.tables)
    ['crm', 'erp_orders', 'finance_margins']
    >>> pilot.truth["revenue_3m"]
    0.0
    >>> pilot.truth["revenue_12m"] > 0
    True
    """
    # Integral floats are accepted because command-line and YAML params may arrive as 4e4.
    if isinstance(n_customers, bool) or not (
        isinstance(n_customers, int | np.integer)
        or (isinstance(n_customers, float) and n_customers.is_integer())
    ):
        raise SpecError(f"n_customers must be a whole number, got {n_customers!r}")
    n = int(n_customers)
    n_treated = round(n * treated_share)
    if not (0.0 < treated_share < 1.0 and 0 < n_treated < n):
        raise SpecError(
            f"treated_share={treated_share!r} with n_customers={n} leaves an arm empty; "
            "use 0 < treated_share < 1 and at least 2 customers"
        )
    # Negative effects would need thinning of the ordinary orders, not an added Poisson stream.
    if not (np.isfinite(effect_scale) and effect_scale >= 0):
        raise SpecError(f"effect_scale must be a finite number >= 0, got {effect_scale!r}")
    start = start_date_of(start_date)

    world = _warranty_world(n, n_treated, seed=seed, effect_scale=effect_scale, start=start)
    truth = world.average_effects(np.ones(n, dtype=bool))

    description = (
        f"Simulated extended-warranty pilot: {n} customers (seed={seed}), {n_treated} shown the "
        f"offer on {start.date()} by complete randomisation. A lognormal latent customer value "
        "(higher for silver/gold, rising with tenure) sets Poisson monthly order rates and gamma "
        "order sizes in the 12 months before and after the offer, with a customer-level drift "
        "between the years and a December peak. For treated customers the order rate in months "
        f"4-12 rises by {UPLIFT[0]:.0%}/{UPLIFT[1]:.0%}/{UPLIFT[2]:.0%} (bronze/silver/gold) x "
        f"effect_scale={effect_scale}, the extra orders leaning to accessories; months 1-3 are "
        "unaffected (month k = [start + (k-1) months, start + k months)). 'truth' is, per outcome "
        "of ANALYSIS_QUERY, the mean over all simulated customers of E[Y(1) - Y(0) | the "
        "customer's latent rate and order sizes], computed from Poisson and gamma expectations "
        "(1 - exp(-expected orders) for repurchase), not from the draws; it is 0 for "
        "pre_revenue_12m and revenue_3m."
    )
    return SimulatedPilot(tables=world.tables, truth=truth, description=description)


@dataclass(frozen=True)
class _WarrantyWorld:
    """The simulated warranty tables plus each customer's expected effect on every outcome."""

    tables: Mapping[str, pd.DataFrame]
    treated: np.ndarray
    expected_effects: Mapping[str, np.ndarray]

    def average_effects(self, who: np.ndarray) -> dict[str, float]:
        """Mean expected effect over the customers ``who`` (a boolean mask), per outcome."""
        return {k: float(np.mean(v[who])) for k, v in self.expected_effects.items()}


def _warranty_world(
    n: int,
    n_treated: int,
    *,
    seed: int,
    effect_scale: float,
    start: pd.Timestamp,
    select: Callable[..., np.ndarray] | None = None,
) -> _WarrantyWorld:
    """Draw the customers, their orders and the offer's extra orders.

    Treatment is a random permutation (``n_treated`` customers) unless ``select`` is given:
    then ``select(pre_revenue=..., segment=..., tenure=..., rng=...)`` returns the 0/1
    treatment from what the business saw in the pre-period (self-selection on observables).
    The permutation is drawn either way so randomised pilots keep their numbers.
    """
    rng = np.random.default_rng(seed)
    boundaries = _month_boundaries(start)
    # A December peak, so month-to-month comparisons would mislead but randomisation does not.
    month_of_year = boundaries[:-1].astype("datetime64[M]").astype(np.int64) % 12 + 1
    season = 1.0 + 0.2 * np.cos(2 * np.pi * (month_of_year - 12) / 12)

    # --- CRM: segment, region, tenure, and the latent value that ties the periods together.
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    region = rng.integers(0, len(REGIONS), size=n)
    tenure = np.minimum(1 + np.floor(rng.exponential(30.0, size=n)), 180).astype(np.int64)
    noise = LATENT_SD * rng.normal(size=n)
    value = np.exp(SEGMENT_LOG_VALUE[seg] + 0.25 * np.log1p(tenure / 12) + noise)
    # Customers drift between years (moves, life events), so pre-period revenue predicts the
    # post-period only partially: this sets the pre/post correlation CUPED can exploit.
    drift = np.exp(DRIFT_SD * rng.normal(size=n) - DRIFT_SD**2 / 2)
    rate_pre = BASE_MONTHLY_RATE * value**0.6
    rate_post = rate_pre * drift
    size_mean = BASE_ORDER_SIZE * value[:, None] ** 0.4 * SIZE_MULT[None, :]
    signup_day = rng.integers(0, 28, size=n)
    treated = np.zeros(n, dtype=np.int64)
    treated[rng.permutation(n)[:n_treated]] = 1

    start_d = np.datetime64(start.date(), "D")
    signup_month = start_d.astype("datetime64[M]") - tenure.astype("timedelta64[M]")
    signup = signup_month.astype("datetime64[D]") + signup_day.astype("timedelta64[D]")
    crm = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "segment": np.array(SEGMENTS)[seg],
            "region": np.array(REGIONS)[region],
            "tenure_months": tenure,
            "signup_date": signup.astype("datetime64[us]"),
            "treated": treated,
            "assigned_at": np.full(n, start_d).astype("datetime64[us]"),
        }
    )

    # --- ERP: ordinary orders for all 24 months, then the offer's extra orders on top. Drawing
    # the extra orders as a separate Poisson stream (superposition) keeps every untreated
    # outcome identical whatever effect_scale is, so only the effect changes between runs.
    # Month index m runs 0..23; m = 12 is post month 1, so months 4..12 are m = 15..23.
    lagged = range(HORIZON_MONTHS + LAG_MONTHS, 2 * HORIZON_MONTHS)

    def base_rates(m: int) -> np.ndarray:
        rate = rate_pre if m < HORIZON_MONTHS else rate_post
        return (rate * season[m])[:, None] * BASE_MIX[None, :]

    parts = [_draw_orders(rng, base_rates, range(2 * HORIZON_MONTHS), size_mean, boundaries)]
    if select is not None:
        in_pre = parts[0]["date"] < boundaries[HORIZON_MONTHS]
        pre_revenue = np.bincount(parts[0]["cust"][in_pre], parts[0]["amount"][in_pre], n)
        treated = select(pre_revenue=pre_revenue, segment=seg, tenure=tenure, rng=rng)
        crm["treated"] = treated
    # The lift is fixed only now: a self-selected treatment is known after the pre-period.
    lift_if_treated = UPLIFT[seg] * effect_scale
    lift = lift_if_treated * treated

    def extra_rates(m: int) -> np.ndarray:
        return (rate_post * season[m] * lift)[:, None] * EXTRA_MIX[None, :]

    if effect_scale > 0:
        parts.append(_draw_orders(rng, extra_rates, lagged, size_mean, boundaries))
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # Sort by date then customer so order_id grows with time, as an ERP would number them.
    order = np.lexsort((cols["cust"], cols["date"]))
    erp = pd.DataFrame(
        {
            "order_id": np.arange(1, order.size + 1, dtype=np.int64),
            "customer_id": cols["cust"][order].astype(np.int64) + 1,
            "order_date": cols["date"][order].astype("datetime64[us]"),
            "category": np.array(CATEGORIES)[cols["cat"][order]],
            "amount": cols["amount"][order],
        }
    )
    finance = pd.DataFrame({"category": list(CATEGORIES), "gross_margin": GROSS_MARGIN})

    # --- Truth: expected extra orders per customer over months 4..12, valued at the
    # customer's expected order size (and margin) of the categories the extra orders go to.
    base_lambda = rate_post * season[lagged].sum()  # expected orders, months 4..12, no offer
    extra_lambda = base_lambda * lift_if_treated
    zero = np.zeros(n)
    effects = {
        "pre_revenue_12m": zero,
        "revenue_3m": zero,
        "revenue_12m": extra_lambda * (size_mean @ EXTRA_MIX),
        "gross_profit_12m": extra_lambda * (size_mean @ (EXTRA_MIX * GROSS_MARGIN)),
        # P(any order) = 1 - exp(-expected orders), so the effect is a difference of exps.
        "repurchase_12m": np.exp(-base_lambda) * -np.expm1(-extra_lambda),
    }
    tables = {"crm": crm, "erp_orders": erp, "finance_margins": finance}
    return _WarrantyWorld(tables=tables, treated=treated, expected_effects=effects)


class _LazySimulator:
    """A simulator defined in a module that imports this one, imported on first use.

    Its ``__signature__`` is the real function's, so :func:`simulate` checks parameter names
    against it without a wrapper that repeats the signature by hand.
    """

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name

    def _target(self) -> Callable[..., SimulatedPilot]:
        return getattr(importlib.import_module(self._module), self._name)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._target())

    def __call__(self, **params: object) -> SimulatedPilot:
        return self._target()(**params)


SIMULATORS: dict[str, Callable[..., SimulatedPilot]] = {
    "extended_warranty_pilot": extended_warranty_pilot,
    "city_free_delivery": _LazySimulator("causal.simulate_city", "city_free_delivery"),
    "remote_support_rollout": _LazySimulator("causal.simulate_rollout", "remote_support_rollout"),
    "warranty_buyers": _LazySimulator("causal.simulate_obs", "warranty_buyers"),
    "remote_support_targeting": _LazySimulator(
        "causal.simulate_uplift", "remote_support_targeting"
    ),
    "extended_warranty_long_term": _LazySimulator(
        "causal.simulate_long_term", "extended_warranty_long_term"
    ),
    "remote_support_pilot": _LazySimulator("causal.simulate_support", "remote_support_pilot"),
}


def simulate(name: str, *, seed: int, **params: object) -> SimulatedPilot:
    """Run the simulator registered under ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`SIMULATORS`.
    seed : int
        Seed passed to the simulator.
    **params
        Keyword parameters of that simulator.

    Returns
    -------
    SimulatedPilot

    Raises
    ------
    SpecError
        If ``name`` or a parameter name is unknown; the message lists the known ones.

    Examples
    --------
    >>> pilot = simulate("extended_warranty_pilot", seed=3, n_customers=1_000)
    >>> len(pilot.tables["crm"])
    1000
    """
    if name not in SIMULATORS:
        raise SpecError(f"unknown simulator {name!r}; known simulators: {', '.join(SIMULATORS)}")
    func = SIMULATORS[name]
    known = [p for p in inspect.signature(func).parameters if p != "seed"]
    unknown = [p for p in params if p not in known]
    if unknown:
        raise SpecError(
            f"unknown parameter {unknown[0]!r} for simulator {name!r}; "
            f"known parameters: {', '.join(known)}"
        )
    return func(seed=seed, **params)


def write_tables(
    pilot: SimulatedPilot, out_dir: str | Path, *, fmt: Literal["csv", "parquet"] = "csv"
) -> dict[str, Path]:
    """Write each table of ``pilot`` to ``<out_dir>/<table>.<fmt>``.

    Parameters
    ----------
    pilot : SimulatedPilot
        The pilot whose tables to write.
    out_dir : str or Path
        Directory, created if missing; existing files of the same name are overwritten.
    fmt : {"csv", "parquet"}, default "csv"
        File format. CSV dates are written as ISO ``YYYY-MM-DD``.

    Returns
    -------
    dict[str, Path]
        The written path of each table, by table name.

    Examples
    --------
    >>> import tempfile
    >>> pilot = extended_warranty_pilot(n_customers=100)
    >>> paths = write_tables(pilot, tempfile.mkdtemp(), fmt="csv")
    >>> sorted(p.name for p in paths.values())
    ['crm.csv', 'erp_orders.csv', 'finance_margins.csv']
    """
    if fmt not in ("csv", "parquet"):
        raise SpecError(f"unknown table format {fmt!r}; known formats: csv, parquet")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for table, df in pilot.tables.items():
        path = out / f"{table}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            df.to_parquet(path, index=False)
        paths[table] = path
    return paths


# One row per customer. Windows are relative to each customer's assigned_at so the query also
# serves staggered roll-outs; LEFT JOIN + COALESCE keeps customers who never ordered.
ANALYSIS_QUERY: str = """
WITH orders AS (
    SELECT
        o.customer_id,
        o.amount,
        o.amount * f.gross_margin AS gross_profit,
        o.order_date >= c.assigned_at - INTERVAL 12 MONTH AND o.order_date < c.assigned_at AS pre,
        o.order_date >= c.assigned_at AND o.order_date < c.assigned_at + INTERVAL 3 MONTH AS m1_3,
        o.order_date >= c.assigned_at + INTERVAL 3 MONTH
            AND o.order_date < c.assigned_at + INTERVAL 12 MONTH AS m4_12
    FROM erp_orders AS o
    JOIN crm AS c ON c.customer_id = o.customer_id
    LEFT JOIN finance_margins AS f ON f.category = o.category
)
SELECT
    c.customer_id,
    c.treated,
    c.segment,
    c.region,
    c.tenure_months,
    COALESCE(SUM(o.amount) FILTER (WHERE o.pre), 0.0) AS pre_revenue_12m,
    COUNT(*) FILTER (WHERE o.pre)::BIGINT AS pre_orders_12m,
    COALESCE(SUM(o.amount) FILTER (WHERE o.m1_3), 0.0) AS revenue_3m,
    COALESCE(SUM(o.amount) FILTER (WHERE o.m1_3 OR o.m4_12), 0.0) AS revenue_12m,
    COALESCE(SUM(o.gross_profit) FILTER (WHERE o.m1_3 OR o.m4_12), 0.0) AS gross_profit_12m,
    (COUNT(*) FILTER (WHERE o.m4_12) > 0)::BIGINT AS repurchase_12m
FROM crm AS c
LEFT JOIN orders AS o ON o.customer_id = c.customer_id
GROUP BY c.customer_id, c.treated, c.segment, c.region, c.tenure_months
ORDER BY c.customer_id
"""
