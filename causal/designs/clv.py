"""Customer lifetime value from BG/NBD purchases and Gamma–Gamma spend, with intervals.

Public API (the models live in :mod:`causal.designs.clv_models`, the data step in
:mod:`causal.designs.clv_data`; all are re-exported here):

- :func:`summarise_transactions` — transaction log → :class:`CustomerSummary`;
- :func:`fit_bgnbd`, :func:`fit_gamma_gamma` — maximum likelihood fits;
- :func:`customer_lifetime_value` — expected discounted spend (or margin) per customer;
- :func:`mean_clv` — mean CLV of a group of customers with an interval;
- :func:`clv_difference` — two groups fitted separately (e.g. treated and control customers),
  difference of their mean CLV with an interval;
- :func:`simulate_bgnbd` — customers drawn from the two models, for tests with a known truth.

CLV is computed as ``lifetimes`` does: the horizon is cut into months of ``periods_per_month``
model periods, the expected purchases of month i are E[Y(i·k)] − E[Y((i−1)·k)] (conditional on
the customer's history), each is valued at the Gamma–Gamma conditional expected spend and
discounted by (1 + d)^i.

Intervals (``mean_clv``; the method is recorded in the result's ``method`` field):

1. Parameter uncertainty — parametric bootstrap: draws of the log parameters of each model from
   the normal approximation to the MLE, N(log θ̂, cov_log), the two models independently (they
   are fitted on separate likelihoods); each draw gives a mean CLV.
2. With ``estimand="population"`` (the default) the customers are a sample of a population —
   treated vs control customers of a pilot — so the spread of CLV across customers also counts.
   Its variance, and its covariance with the MLE (the same customers fitted the models), come
   from influence functions: customer i contributes (g_i − ḡ)/n through the mean and
   ∇ḡ·cov_log·s_i through the parameters (s_i its score). Var(mean) + 2 Cov(mean, MLE) is
   added to each draw as independent normal noise. With ``estimand="customers"`` the estimand
   is the expected CLV of exactly these customers given their histories, and only (1) counts.

The interval is the percentile interval of the draws; ``std_error`` is their standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from causal.designs.clv_data import CustomerSummary, as_summary, summarise_transactions
from causal.designs.clv_models import (
    BGNBDFit,
    GammaGammaFit,
    _BGNBDLikelihood,
    _GammaGammaLikelihood,
    cumulative_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    independence_check,
    probability_alive,
)
from causal.errors import DesignError, SpecError
from causal.progress import progress

__all__ = [
    "BGNBDFit",
    "CLVDifference",
    "CustomerSummary",
    "GammaGammaFit",
    "GroupCLV",
    "clv_difference",
    "customer_lifetime_value",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "independence_check",
    "mean_clv",
    "simulate_bgnbd",
    "summarise_transactions",
]

Estimand = Literal["population", "customers"]
# Model periods per month, as ``lifetimes`` (weeks: 4.345; days: 30).
PERIODS_PER_MONTH: dict[str, float] = {"W": 4.345, "D": 30.0}
METHODS = {
    "customers": "parametric bootstrap: log parameters drawn from N(log θ̂, cov_log), "
    "BG/NBD and Gamma–Gamma independently; percentile interval",
    "population": "parametric bootstrap: log parameters drawn from N(log θ̂, cov_log), "
    "BG/NBD and Gamma–Gamma independently, plus normal noise for the sampling of customers "
    "(variance of the customer mean and its covariance with the MLE, from influence "
    "functions); percentile interval",
}


@dataclass(frozen=True)
class GroupCLV:
    """Mean CLV of a group of customers with its interval (money per customer)."""

    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    conf_level: float
    n_customers: int
    estimand: str
    method: str
    parameter_std_error: float  # from the parameter draws alone
    sampling_std_error: float  # the customer-sampling term added (0 for "customers")
    n_draws: int
    seed: int | str  # an int, or "entropy/spawn_key" of a spawned SeedSequence
    horizon_months: int
    discount_rate: float
    periods_per_month: float
    margin: float
    draws: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "draws"}
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }

    def summary(self) -> str:
        """One line (returned, never printed)."""
        return (
            f"mean CLV over {self.horizon_months} months: {self.estimate:,.2f} "
            f"({self.conf_level:.0%} CI {self.conf_low:,.2f} to {self.conf_high:,.2f}), "
            f"n = {self.n_customers}"
        )


@dataclass(frozen=True)
class CLVDifference:
    """Difference in mean CLV between two groups, each with its own fitted models."""

    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    conf_level: float
    treated: GroupCLV
    control: GroupCLV
    fits: dict[str, dict[str, Any]]  # "treated"/"control" → {"bgnbd": ..., "gamma_gamma": ...}
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "std_error": self.std_error,
            "conf_low": self.conf_low,
            "conf_high": self.conf_high,
            "conf_level": self.conf_level,
            "treated": self.treated.to_dict(),
            "control": self.control.to_dict(),
            "fits": {g: dict(v) for g, v in self.fits.items()},
            "method": self.method,
        }


class _CLVKernel:
    """Per-customer CLV at any parameters, for one summary and one horizon.

    The bracket of FHL's eq. 10 depends on the customer through (x, T) only, and real
    summaries have few distinct pairs (T is whole days): hyp2f1, the costly part, runs once
    per pair and month; P(alive) and the expected spend are cheap per-customer terms.
    """

    def __init__(self, summary: CustomerSummary, months: int, per_month: float, rate: float):
        self.x, self.t_x, self.T = summary.frequency, summary.recency, summary.T
        self.m = summary.monetary_value
        # distinct (x, T) pairs through one integer key: np.unique(axis=0) sorts rows, 10× slower
        xs, ix = np.unique(self.x, return_inverse=True)
        ts, it = np.unique(self.T, return_inverse=True)
        keys, self.index = np.unique(ix * len(ts) + it, return_inverse=True)
        self.px, self.pT = xs[keys // len(ts)], ts[keys % len(ts)]
        self.steps = np.arange(months + 1) * per_month
        self.discount = (1 + rate) ** -np.arange(1, months + 1)

    def purchases(self, bg: np.ndarray) -> np.ndarray:
        """Discounted expected purchases over the horizon, per customer."""
        # (pairs, months); nothing is expected by time 0, hence prepend=0
        cum = cumulative_purchases(bg, self.px[:, None], self.pT[:, None], self.steps[None, 1:])
        per_pair = np.diff(cum, axis=1, prepend=0.0) @ self.discount
        return per_pair[self.index.ravel()] * probability_alive(bg, self.x, self.t_x, self.T)

    def values(self, bg: np.ndarray, gg: np.ndarray) -> np.ndarray:
        return self.purchases(bg) * expected_spend(gg, self.x, self.m)


def customer_lifetime_value(
    bgnbd: BGNBDFit,
    gamma_gamma: GammaGammaFit,
    summary: CustomerSummary | Any,
    *,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    periods_per_month: float | None = None,
    margin: float = 1.0,
) -> np.ndarray:
    """Expected discounted spend × ``margin`` over the next ``horizon_months``, per customer.

    Parameters
    ----------
    bgnbd, gamma_gamma
        Fitted models (any summary with the same time unit may be scored).
    summary
        The customers to value; the result is aligned with ``summary.customer``.
    horizon_months
        Whole months ahead.
    discount_rate
        Monthly discount rate d in [0, 1); month i is discounted by (1 + d)^i.
    periods_per_month
        Model periods per month; by default 4.345 for weeks and 30 for days (``lifetimes``).
    margin
        Share of spend kept as gross profit, in (0, 1]; 1 values spend.

    Examples
    --------
    >>> s = simulate_bgnbd(500, r=0.5, alpha=5.0, a=0.8, b=2.5, T=40.0, spend=(6.0, 4.0, 15.0))
    >>> bg = BGNBDFit(r=0.243, alpha=4.414, a=0.793, b=2.426, period="W")
    >>> gg = GammaGammaFit(p=6.25, q=3.74, v=15.44)
    >>> clv = customer_lifetime_value(bg, gg, s, horizon_months=12, discount_rate=0.01)
    >>> clv.shape, bool(np.all(clv >= 0))
    ((500,), True)
    """
    s = as_summary(summary)
    kernel = _kernel(
        bgnbd, gamma_gamma, s, horizon_months, discount_rate, periods_per_month, margin
    )
    return margin * kernel.values(bgnbd.theta, gamma_gamma.theta)


def mean_clv(
    bgnbd: BGNBDFit,
    gamma_gamma: GammaGammaFit,
    summary: CustomerSummary | Any,
    *,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    periods_per_month: float | None = None,
    margin: float = 1.0,
    estimand: Estimand = "population",
    n_draws: int = 1000,
    conf_level: float = 0.95,
    seed: int | np.random.SeedSequence = 0,
) -> GroupCLV:
    """Mean CLV of the customers in ``summary`` with a bootstrap interval.

    ``summary`` must be the one both models were fitted on when ``estimand="population"``
    (the customers' scores enter the variance); see the module docstring for the method.
    Options as :func:`customer_lifetime_value`; ``seed`` makes the draws reproducible.

    Examples
    --------
    >>> s = simulate_bgnbd(1000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=40.0, spend=(6.0, 4.0, 15.0),
    ...                    seed=3)
    >>> res = mean_clv(fit_bgnbd(s), fit_gamma_gamma(s), s, n_draws=200)
    >>> res.conf_low < res.estimate < res.conf_high, res.estimand
    (True, 'population')
    """
    s = as_summary(summary)
    if estimand not in METHODS:
        raise SpecError(f"estimand {estimand!r} is not known; use one of {sorted(METHODS)}")
    if not (0 < conf_level < 1):
        raise SpecError(f"conf_level must be in (0, 1), got {conf_level!r}")
    if int(n_draws) < 2:
        raise SpecError(f"n_draws must be at least 2, got {n_draws!r}")
    kernel = _kernel(
        bgnbd, gamma_gamma, s, horizon_months, discount_rate, periods_per_month, margin
    )
    bg, gg = bgnbd.theta, gamma_gamma.theta
    values = margin * kernel.values(bg, gg)
    estimate = float(np.mean(values))
    rng = np.random.default_rng(seed)
    z_bg = rng.multivariate_normal(np.log(bg), np.array(bgnbd.cov_log), n_draws)
    z_gg = rng.multivariate_normal(np.log(gg), np.array(gamma_gamma.cov_log), n_draws)
    draws = np.empty(n_draws)
    for i in progress(range(n_draws), desc="CLV draws", total=n_draws):
        draws[i] = margin * np.mean(kernel.values(np.exp(z_bg[i]), np.exp(z_gg[i])))
    parameter_se = float(np.std(draws, ddof=1))
    extra_var = 0.0
    if estimand == "population":
        extra_var = _sampling_variance(bgnbd, gamma_gamma, s, kernel, values, margin)
        draws = draws + rng.normal(0.0, math.sqrt(extra_var), n_draws)
    tail = (1 - conf_level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return GroupCLV(
        estimate=estimate,
        std_error=float(np.std(draws, ddof=1)),
        conf_low=float(low),
        conf_high=float(high),
        conf_level=conf_level,
        n_customers=len(s),
        estimand=estimand,
        method=METHODS[estimand],
        parameter_std_error=parameter_se,
        sampling_std_error=math.sqrt(extra_var),
        n_draws=int(n_draws),
        seed=seed if isinstance(seed, int) else f"{seed.entropy}/{seed.spawn_key}",
        horizon_months=int(horizon_months),
        discount_rate=float(discount_rate),
        periods_per_month=float(kernel.steps[1]),
        margin=float(margin),
        draws=tuple(float(d) for d in draws),
    )


def clv_difference(
    treated: CustomerSummary | Any,
    control: CustomerSummary | Any,
    *,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    periods_per_month: float | None = None,
    margin: float = 1.0,
    estimand: Estimand = "population",
    n_draws: int = 1000,
    conf_level: float = 0.95,
    seed: int = 0,
) -> CLVDifference:
    """Fit BG/NBD and Gamma–Gamma on each group and compare their mean CLV.

    Each group gets its own models (the service may change both purchasing and spend); the
    bootstrap draws of the two groups are independent (seeds spawned from ``seed``), and the
    difference's interval is the percentile interval of treated − control draws.

    Examples
    --------
    >>> kw = dict(r=0.5, alpha=5.0, a=0.8, b=2.5, T=40.0, spend=(6.0, 4.0, 15.0))
    >>> d = clv_difference(simulate_bgnbd(800, **kw, seed=1), simulate_bgnbd(800, **kw, seed=2),
    ...                    n_draws=100)
    >>> bool(d.conf_low < 0 < d.conf_high)
    True
    """
    seeds = np.random.SeedSequence(seed).spawn(2)
    groups, fits = {}, {}
    for name, data, group_seed in (("treated", treated, seeds[0]), ("control", control, seeds[1])):
        s = as_summary(data)
        bg, gg = fit_bgnbd(s), fit_gamma_gamma(s)
        fits[name] = {"bgnbd": bg.to_dict(), "gamma_gamma": gg.to_dict()}
        groups[name] = mean_clv(
            bg,
            gg,
            s,
            horizon_months=horizon_months,
            discount_rate=discount_rate,
            periods_per_month=periods_per_month,
            margin=margin,
            estimand=estimand,
            n_draws=n_draws,
            conf_level=conf_level,
            seed=group_seed,
        )
    t, c = groups["treated"], groups["control"]
    diff = np.asarray(t.draws) - np.asarray(c.draws)
    tail = (1 - conf_level) / 2
    low, high = np.quantile(diff, [tail, 1 - tail])
    return CLVDifference(
        estimate=t.estimate - c.estimate,
        std_error=float(np.std(diff, ddof=1)),
        conf_low=float(low),
        conf_high=float(high),
        conf_level=conf_level,
        treated=t,
        control=c,
        fits=fits,
        method="difference of independent per-group draws; per group: " + METHODS[estimand],
    )


def _kernel(
    bgnbd: BGNBDFit,
    gamma_gamma: GammaGammaFit,
    s: CustomerSummary,
    horizon_months: int,
    discount_rate: float,
    periods_per_month: float | None,
    margin: float,
) -> _CLVKernel:
    """Validate the CLV options and build the kernel."""
    if not (isinstance(discount_rate, int | float) and 0 <= discount_rate < 1):
        raise SpecError(
            f"discount_rate must be a monthly rate in [0, 1), got {discount_rate!r}; "
            "e.g. 0.01 for 1% a month"
        )
    if (
        isinstance(horizon_months, bool)
        or int(horizon_months) != horizon_months
        or horizon_months < 1
    ):
        raise SpecError(f"horizon_months must be a whole number ≥ 1, got {horizon_months!r}")
    if not (0 < margin <= 1):
        raise SpecError(f"margin must be a share of spend in (0, 1], got {margin!r}")
    if periods_per_month is None:
        period = bgnbd.period or s.period
        periods_per_month = PERIODS_PER_MONTH[period]
    if not (periods_per_month > 0 and math.isfinite(periods_per_month)):
        raise SpecError(f"periods_per_month must be positive, got {periods_per_month!r}")
    if bgnbd.period is not None and bgnbd.period != s.period:
        raise SpecError(
            f"the BG/NBD model was fitted in period {bgnbd.period!r} but the summary is in "
            f"{s.period!r}; summarise both with the same period"
        )
    if s.monetary_value is None:
        raise DesignError("CLV needs spend: summarise the transactions with an amount column")
    if gamma_gamma.q <= 1 and np.any(s.frequency == 0):
        raise DesignError(
            f"the Gamma–Gamma fit has q = {gamma_gamma.q:.3g} ≤ 1: the mean spend of customers "
            "without a repeat purchase is infinite; CLV is not defined for them"
        )
    return _CLVKernel(s, int(horizon_months), float(periods_per_month), float(discount_rate))


def _sampling_variance(
    bgnbd: BGNBDFit,
    gamma_gamma: GammaGammaFit,
    s: CustomerSummary,
    kernel: _CLVKernel,
    values: np.ndarray,
    margin: float,
) -> float:
    """Var(customer mean) + 2 Cov(customer mean, MLE term), from influence functions."""
    use_gg = (s.frequency > 0) & (s.monetary_value > 0)
    if bgnbd.n_customers != len(s) or gamma_gamma.n_customers != int(use_gg.sum()):
        raise DesignError(
            "estimand 'population' needs the summary the models were fitted on "
            f"({bgnbd.n_customers} customers), got {len(s)}; pass that summary, or use "
            "estimand='customers'"
        )
    n = len(s)
    bg, gg = bgnbd.theta, gamma_gamma.theta

    def mean_at(z_bg: np.ndarray, z_gg: np.ndarray) -> float:
        return margin * float(np.mean(kernel.values(np.exp(z_bg), np.exp(z_gg))))

    z = np.concatenate([np.log(bg), np.log(gg)])
    grad = np.empty(len(z))
    for j in range(len(z)):  # ∇ḡ in log parameters, central differences
        e = np.zeros(len(z))
        e[j] = 1e-5
        up, down = z + e, z - e
        grad[j] = (mean_at(up[:4], up[4:]) - mean_at(down[:4], down[4:])) / 2e-5
    _, score_bg = _BGNBDLikelihood(s.frequency, s.recency, s.T)(np.log(bg), each=True)
    x, m = s.frequency[use_gg], s.monetary_value[use_gg]
    _, score_gg = _GammaGammaLikelihood(x, m)(np.log(gg), each=True)
    b = score_bg @ (np.array(bgnbd.cov_log) @ grad[:4])
    b[use_gg] += score_gg @ (np.array(gamma_gamma.cov_log) @ grad[4:])
    a = (values - values.mean()) / n
    return max(float(np.sum(a * a) + 2 * np.sum(a * b)), 0.0)


def simulate_bgnbd(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray,
    holdout: float = 0.0,
    spend: tuple[float, float, float] | None = None,
    seed: int = 0,
) -> CustomerSummary:
    """Simulate customers from the BG/NBD model (and Gamma–Gamma spend, ``spend=(p, q, v)``).

    Each customer buys at time 0, then at Poisson rate λ ~ Gamma(r, α) until they drop out,
    which happens after each repeat purchase with probability p ~ Beta(a, b). ``T`` (scalar or
    one per customer) is the calibration length; ``holdout`` > 0 also counts purchases in
    (T, T + holdout] as ``frequency_holdout``.

    Examples
    --------
    >>> s = simulate_bgnbd(5, r=1.0, alpha=2.0, a=1.0, b=3.0, T=10.0, seed=0)
    >>> len(s), bool(np.all(s.recency <= s.T))
    (5, True)
    """
    rng = np.random.default_rng(seed)
    age = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    x, t_x, later = np.zeros(n), np.zeros(n), np.zeros(n)
    clock = np.zeros(n)
    active = np.arange(n)
    while active.size:  # one purchase per pass, over the customers still buying
        clock[active] += rng.exponential(1.0, active.size) / lam[active]
        now = clock[active]
        cal = now <= age[active]
        x[active[cal]] += 1
        t_x[active[cal]] = now[cal]
        hold = ~cal & (now <= age[active] + holdout)
        later[active[hold]] += 1
        stays = (cal | hold) & (rng.random(active.size) >= drop[active])
        active = active[stays]
    m = None
    if spend is not None:
        p, q, v = spend
        nu = rng.gamma(q, 1.0 / v, n)
        total = rng.gamma(np.maximum(p * x, 1e-300), 1.0 / nu)
        m = np.where(x > 0, total / np.maximum(x, 1), 0.0)
    return CustomerSummary(
        customer=np.arange(n),
        frequency=x,
        recency=t_x,
        T=age,
        monetary_value=m,
        frequency_holdout=later if holdout > 0 else None,
        duration_holdout=holdout if holdout > 0 else None,
        period="W",
    )
