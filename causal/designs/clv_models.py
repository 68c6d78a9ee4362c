"""BG/NBD and Gamma–Gamma models, written here with scipy (no ``lifetimes`` at run time).

- BG/NBD (Fader, Hardie & Lee 2005, *Marketing Science* 24(2): 275–284): while active, a
  customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each repeat purchase
  they drop out with probability p ~ Beta(a, b).
- Gamma–Gamma (Fader, Hardie & Lee 2005, *JMR* 42(4): 415–430, after Colombo & Jiang 1999):
  spend per purchase ~ Gamma(p, ν) with ν ~ Gamma(q, γ), independent of the purchase process;
  ``v`` is γ, as in ``lifetimes``.

Both are fitted by maximum likelihood on the log parameters: L-BFGS-B with the analytic
gradient, then Newton steps on a Hessian from central differences of that gradient, which
both polishes the optimum and gives the covariance. ``cov_log`` is the inverse Hessian of the
negative log-likelihood in log parameters; ``cov`` is its delta-method image
diag(θ) cov_log diag(θ), equal to the natural-scale inverse Hessian at the optimum (the
gradient is zero there). Terms that depend on the repeat count x only are evaluated once per
distinct x: that keeps a million-customer fit to a few passes over the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import optimize, special

from causal.checks import CheckResult
from causal.designs.clv_data import CustomerSummary, as_summary
from causal.errors import DesignError

COV_METHOD = (
    "inverse Hessian of the negative log-likelihood in log parameters (central differences of "
    "the analytic gradient), mapped to the natural scale by the delta method"
)
# |corr(x, m̄)| at or above this warns: FHL (2005, JMR) call CDNOW's 0.11 weak enough to ignore.
INDEPENDENCE_WARN = 0.3


@dataclass(frozen=True)
class _Fit:
    theta: np.ndarray
    log_likelihood: float
    cov_log: np.ndarray
    converged: bool
    iterations: int


def _maximise(
    loglik: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray, n: int
) -> _Fit:
    """Maximise ``loglik(log θ) -> (ll, gradient)``; returns θ̂, ll and the log-scale covariance."""

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = loglik(z)
        # Mean per customer: the same tolerances work for 2,000 and 1,000,000 customers.
        if not math.isfinite(ll):
            return 1e300, np.zeros_like(z)
        return -ll / n, -grad / n

    from threadpoolctl import threadpool_limits  # scikit-learn's dependency, so always here

    # L-BFGS-B calls BLAS on 4-vectors: threaded BLAS made CDNOW's fit 3× slower on an idle
    # 2-core machine and 20× slower on a busy one (the likelihood itself is memory-bound).
    with threadpool_limits(1, user_api="blas"):
        res = optimize.minimize(
            objective,
            np.log(start),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-20.0, 20.0)] * len(start),
            options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-6},
        )
    # Newton polish with the Hessian at the L-BFGS-B point: that stops on a flat ridge before
    # the last digits. Recompute the Hessian (for the covariance) only if the polish moved.
    z, steps, moved = res.x, int(res.nit), 0.0
    hess = _hessian(loglik, z)
    ll, grad = loglik(z)
    for _ in range(20):
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1.0:
            break
        trial_ll, trial_grad = loglik(z + step)
        if not trial_ll >= ll - 1e-9 * n:
            break
        z, ll, grad, steps = z + step, trial_ll, trial_grad, steps + 1
        moved += float(np.max(np.abs(step)))
        if np.max(np.abs(step)) < 1e-10:
            break
    if moved > 1e-3:
        hess = _hessian(loglik, z)
    try:
        cov_log = np.linalg.inv(hess)
        positive = bool(np.all(np.linalg.eigvalsh(hess) > 0))
    except np.linalg.LinAlgError:
        cov_log, positive = np.full_like(hess, math.nan), False
    converged = positive and bool(np.max(np.abs(grad)) / n < 1e-6)
    return _Fit(np.exp(z), float(ll), cov_log, converged, steps)


def _hessian(loglik: Callable, z: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Hessian of the negative log-likelihood by central differences of its gradient."""
    k = len(z)
    hess = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        hess[:, j] = -(loglik(z + e)[1] - loglik(z - e)[1]) / (2 * step)
    return (hess + hess.T) / 2


class _BGNBDLikelihood:
    """BG/NBD log-likelihood (FHL 2005 eq. 6) and its gradient in log (r, α, a, b).

    ll_i = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
           + ln[(α+T)^−(r+x) + 1{x>0} a/(b+x−1) (α+t_x)^−(r+x)]

    Customers without a repeat purchase reduce to r ln(α/(α+T)), summed over their distinct
    T; terms in x alone are summed over distinct x with their counts. Only the repeat buyers
    cost a pass each. ``each=True`` returns per-customer values and scores instead of sums.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        self.n, self.repeat = len(x), x > 0
        self.T0_all = T[~self.repeat]
        self.T0, self.T0_count = np.unique(self.T0_all, return_counts=True)
        self.x, self.t_x, self.T = x[self.repeat], t_x[self.repeat], T[self.repeat]
        self.xs, self.ix, self.x_count = np.unique(self.x, return_inverse=True, return_counts=True)

    def __call__(self, z: np.ndarray, *, each: bool = False) -> tuple[Any, np.ndarray]:
        r, alpha, a, b = np.exp(z)
        xs, ix, x, count = self.xs, self.ix, self.x, self.x_count
        psi_ab = special.digamma(a + b)
        b_x = b + xs - 1
        unique_ll = special.gammaln(r + xs) + special.betaln(a, b + xs)
        unique_r = special.digamma(r + xs)
        unique_a = psi_ab - special.digamma(a + b + xs)
        unique_b = special.digamma(b + xs) - special.digamma(b) + unique_a
        const = -special.gammaln(r) + r * math.log(alpha) - special.betaln(a, b)
        log_T, log_tx = np.log(alpha + self.T), np.log(alpha + self.t_x)
        gap = log_tx - log_T
        rx = r + x
        d = (math.log(a) - np.log(b_x))[ix] - rx * gap  # log-odds of "dropped out after t_x"
        pi = special.expit(d)
        softplus = np.logaddexp(0.0, d)
        inv_ends = (1 - pi) / (alpha + self.T) + pi / (alpha + self.t_x)
        log_ratio0 = math.log(alpha) - np.log(alpha + (self.T0_all if each else self.T0))
        if each:
            ll = np.empty(self.n)
            grad = np.zeros((self.n, 4))
            ll[~self.repeat] = r * log_ratio0
            grad[~self.repeat, 0] = log_ratio0 * r
            grad[~self.repeat, 1] = (r / alpha - r / (alpha + self.T0_all)) * alpha
            ll[self.repeat] = unique_ll[ix] + const - rx * log_T + softplus
            d_r = unique_r[ix] - special.digamma(r) + math.log(alpha) - log_T - pi * gap
            d_alpha = r / alpha - rx * inv_ends
            d_a = unique_a[ix] + pi / a
            d_b = unique_b[ix] - pi / b_x[ix]
            grad[self.repeat] = np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
            return ll, grad
        n1, c0 = len(x), self.T0_count
        ll = count @ unique_ll + n1 * const - rx @ log_T + softplus.sum() + r * (c0 @ log_ratio0)
        d_r = (
            count @ unique_r
            + n1 * (math.log(alpha) - special.digamma(r))
            - log_T.sum()
            - pi @ gap
            + c0 @ log_ratio0
        )
        d_alpha = n1 * r / alpha - rx @ inv_ends + c0 @ (r / alpha - r / (alpha + self.T0))
        d_a = count @ unique_a + pi.sum() / a
        d_b = count @ unique_b - np.bincount(ix, weights=pi, minlength=len(xs)) @ (1 / b_x)
        return float(ll), np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


class _GammaGammaLikelihood:
    """Gamma–Gamma log-likelihood of the mean repeat spend m̄ over x purchases (x ≥ 1).

    ll_i = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(γ+x m̄)

    The sums of x ln m̄, ln m̄ and x ln x are data constants; only ln(γ + x m̄) is per customer.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        self.x, self.m, self.n = x, m, len(x)
        self.xs, self.x_count = np.unique(x, return_counts=True)
        log_m, log_x = np.log(m), np.log(x)
        self.log_m, self.log_x = log_m, log_x
        self.sums = (float(x @ log_m), float(log_m.sum()), float(x @ log_x))

    def __call__(self, z: np.ndarray, *, each: bool = False) -> tuple[Any, np.ndarray]:
        p, q, v = np.exp(z)
        x, n = self.x, self.n
        spent = v + x * self.m
        log_spent = np.log(spent)
        weight = p * x + q
        if each:
            pxq, px = special.digamma(p * x + q), special.digamma(p * x)
            ll = (
                special.gammaln(p * x + q)
                - special.gammaln(p * x)
                - special.gammaln(q)
                + q * math.log(v)
                + (p * x - 1) * self.log_m
                + p * x * self.log_x
                - weight * log_spent
            )
            d_p = x * (pxq - px + self.log_m + self.log_x - log_spent)
            d_q = pxq - special.digamma(q) + math.log(v) - log_spent
            d_v = q / v - weight / spent
            return ll, np.column_stack([d_p * p, d_q * q, d_v * v])
        xs, count = self.xs, self.x_count
        x_log_m, sum_log_m, x_log_x = self.sums
        psi_pxq = special.digamma(p * xs + q)
        ll = (
            count @ (special.gammaln(p * xs + q) - special.gammaln(p * xs))
            - n * special.gammaln(q)
            + n * q * math.log(v)
            + p * x_log_m
            - sum_log_m
            + p * x_log_x
            - weight @ log_spent
        )
        d_p = count @ (xs * (psi_pxq - special.digamma(p * xs))) + x_log_m + x_log_x
        d_p -= x @ log_spent
        d_q = count @ psi_pxq - n * special.digamma(q) + n * math.log(v) - log_spent.sum()
        d_v = n * q / v - (weight / spent).sum()
        return float(ll), np.array([d_p * p, d_q * q, d_v * v])


def _matrix(a: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in a)


class _ModelFit:
    """Shared methods of the two fits (each a frozen dataclass listing its parameters first)."""

    _names: ClassVar[tuple[str, ...]] = ()
    log_likelihood: float
    cov: tuple[tuple[float, ...], ...]
    cov_log: tuple[tuple[float, ...], ...]
    n_customers: int
    converged: bool
    iterations: int

    @property
    def params(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self._names}

    @property
    def std_errors(self) -> dict[str, float]:
        if not self.cov:
            return dict.fromkeys(self._names, math.nan)
        return {k: math.sqrt(self.cov[i][i]) for i, k in enumerate(self._names)}

    @property
    def theta(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in self._names])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": type(self).__name__,
            "params": self.params,
            "std_errors": self.std_errors,
            "cov": [list(r) for r in self.cov],
            "cov_log": [list(r) for r in self.cov_log],
            "cov_method": COV_METHOD,
            "log_likelihood": self.log_likelihood,
            "n_customers": self.n_customers,
            "converged": self.converged,
            "iterations": self.iterations,
        }

    def summary(self) -> str:
        """Parameters with standard errors (returned, never printed)."""
        se = self.std_errors
        body = ", ".join(f"{k} = {v:.4g} ({se[k]:.2g})" for k, v in self.params.items())
        return (
            f"{type(self).__name__}: {body}; log-likelihood {self.log_likelihood:,.2f}, "
            f"n = {self.n_customers}" + ("" if self.converged else " (NOT converged)")
        )


@dataclass(frozen=True)
class BGNBDFit(_ModelFit):
    """A fitted BG/NBD model (times in the summary's period, e.g. weeks)."""

    _names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    cov: tuple[tuple[float, ...], ...] = ()
    cov_log: tuple[tuple[float, ...], ...] = ()
    n_customers: int = 0
    converged: bool = False
    iterations: int = 0
    period: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "period": self.period}

    def expected_purchases(self, t: Any) -> np.ndarray:
        """E[X(t)]: expected repeat purchases in (0, t] of a customer who just made a first one.

        Examples
        --------
        >>> fit = BGNBDFit(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> round(float(fit.expected_purchases(39.0)), 4)
        1.1967
        """
        t = np.asarray(t, dtype=np.float64)
        return cumulative_purchases(self.theta, np.zeros_like(t), np.zeros_like(t), t)

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + 1{x>0} a/(b+x−1) ((α+T)/(α+t_x))^(r+x)).

        Examples
        --------
        >>> fit = BGNBDFit(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> fit.probability_alive([2, 0], [30.43, 0.0], [38.86, 38.86]).round(4).tolist()
        [0.7266, 1.0]
        """
        return probability_alive(self.theta, *_arrays(frequency, recency, T))

    def conditional_expected_purchases(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t] (FHL 2005 eq. 10).

        Examples
        --------
        >>> fit = BGNBDFit(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> round(float(fit.conditional_expected_purchases(39, 2, 30.43, 38.86)[0]), 4)
        1.226
        """
        x, t_x, age = _arrays(frequency, recency, T)
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        alive = probability_alive(self.theta, x, t_x, age)
        return cumulative_purchases(self.theta, x, age, t) * alive


@dataclass(frozen=True)
class GammaGammaFit(_ModelFit):
    """A fitted Gamma–Gamma spend model, with the frequency–spend independence check."""

    _names: ClassVar[tuple[str, ...]] = ("p", "q", "v")
    p: float
    q: float
    v: float
    log_likelihood: float = math.nan
    cov: tuple[tuple[float, ...], ...] = ()
    cov_log: tuple[tuple[float, ...], ...] = ()
    n_customers: int = 0
    converged: bool = False
    iterations: int = 0
    n_excluded: int = 0  # repeat customers with zero mean spend (the model needs m̄ > 0)
    diagnostics: tuple[CheckResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "n_excluded": self.n_excluded,
            "diagnostics": [c.to_dict() for c in self.diagnostics],
        }

    def conditional_expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E[M | x, m̄] = p (γ + x m̄) / (p x + q − 1); for x = 0 the population mean p γ/(q − 1).

        Examples
        --------
        >>> fit = GammaGammaFit(p=6.25, q=3.74, v=15.44)
        >>> fit.conditional_expected_spend([0, 2], [0.0, 22.35]).round(2).tolist()
        [35.22, 24.66]
        """
        return expected_spend(self.theta, np.asarray(frequency, float), np.asarray(monetary_value))


def fit_bgnbd(summary: CustomerSummary | Any) -> BGNBDFit:
    """Fit the BG/NBD model by maximum likelihood.

    ``summary`` is a :class:`CustomerSummary` or a DataFrame with columns frequency, recency
    and T. See the module docstring for the optimiser and the covariance.

    Examples
    --------
    >>> from causal.designs.clv import simulate_bgnbd
    >>> s = simulate_bgnbd(2000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=40.0, seed=1)
    >>> fit = fit_bgnbd(s)
    >>> fit.converged, round(fit.r, 2), round(fit.alpha, 1)
    (True, 0.47, 4.9)
    """
    s = as_summary(summary)
    x, t_x, T = s.frequency, s.recency, s.T
    if len(x) < 5 or not np.any(x > 0):
        raise DesignError(
            f"the BG/NBD model needs repeat purchases to fit; this summary has {len(x)} "
            f"customers and {int(np.sum(x > 0))} with a repeat purchase"
        )
    rate = max(float(np.mean(x)), 1e-3) / max(float(np.mean(T)), 1e-3)
    loglik = _BGNBDLikelihood(x, t_x, T)
    fit = _maximise(loglik, np.array([1.0, 1.0 / rate, 1.0, 1.0]), len(x))
    d = np.diag(fit.theta)
    r, alpha, a, b = (float(v) for v in fit.theta)
    return BGNBDFit(
        log_likelihood=fit.log_likelihood,
        cov=_matrix(d @ fit.cov_log @ d),
        cov_log=_matrix(fit.cov_log),
        n_customers=len(x),
        converged=fit.converged,
        iterations=fit.iterations,
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        period=s.period,
    )


def fit_gamma_gamma(summary: CustomerSummary | Any) -> GammaGammaFit:
    """Fit the Gamma–Gamma spend model on the customers with a repeat purchase.

    Customers with x > 0 and a zero mean repeat spend are left out (counted in
    ``n_excluded``): the model's spend is a gamma variable, always positive. ``diagnostics``
    holds the independence check: the model assumes spend per purchase does not depend on the
    purchase rate, and a correlation of |ρ| ≥ 0.3 between x and m̄ warns.

    Examples
    --------
    >>> from causal.designs.clv import simulate_bgnbd
    >>> s = simulate_bgnbd(3000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=40.0, spend=(6.0, 4.0, 15.0),
    ...                    seed=2)
    >>> fit = fit_gamma_gamma(s)
    >>> round(fit.p, 1), round(fit.q, 1), fit.diagnostics[0].status
    (7.2, 3.8, 'pass')
    """
    s = as_summary(summary)
    if s.monetary_value is None:
        raise DesignError("the Gamma–Gamma model needs spend: summarise with an amount column")
    use = (s.frequency > 0) & (s.monetary_value > 0)
    x, m = s.frequency[use], s.monetary_value[use]
    if len(x) < 5:
        raise DesignError(
            f"the Gamma–Gamma model needs customers with repeat purchases; only {len(x)} here"
        )
    fit = _maximise(_GammaGammaLikelihood(x, m), np.array([1.0, 2.0, float(np.mean(m))]), len(x))
    d = np.diag(fit.theta)
    p, q, v = (float(val) for val in fit.theta)
    return GammaGammaFit(
        log_likelihood=fit.log_likelihood,
        cov=_matrix(d @ fit.cov_log @ d),
        cov_log=_matrix(fit.cov_log),
        n_customers=len(x),
        converged=fit.converged,
        iterations=fit.iterations,
        p=p,
        q=q,
        v=v,
        n_excluded=int(np.sum((s.frequency > 0) & ~use)),
        diagnostics=(independence_check(x, m),),
    )


def independence_check(frequency: np.ndarray, monetary_value: np.ndarray) -> CheckResult:
    """Pearson correlation of repeat count and mean spend among repeat customers.

    Examples
    --------
    >>> independence_check(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 41])).status
    'warn'
    """
    name = "gamma_gamma_independence"
    if len(frequency) < 3 or np.std(frequency) == 0 or np.std(monetary_value) == 0:
        return CheckResult(name, "n/a", "too few distinct repeat customers to correlate")
    rho = float(np.corrcoef(frequency, monetary_value)[0, 1])
    status = "warn" if abs(rho) >= INDEPENDENCE_WARN else "pass"
    detail = (
        f"correlation of repeat purchases and mean spend {rho:.3f} over {len(frequency)} "
        f"repeat customers (warn at |ρ| ≥ {INDEPENDENCE_WARN}: the model assumes independence)"
    )
    return CheckResult(name, status, detail, ({"correlation": rho, "n": len(frequency)},))


def probability_alive(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """P(alive) at log-scale-free parameters θ = (r, α, a, b), computed as a logistic."""
    r, alpha, a, b = theta
    repeat = x > 0
    e = (
        np.log(a)
        - np.log(np.where(repeat, b + x - 1, 1.0))
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(repeat, special.expit(-e), 1.0)


def cumulative_purchases(theta: np.ndarray, x: np.ndarray, T: np.ndarray, t: np.ndarray):
    """E[Y(t) | x, T, alive]: FHL's eq. 10 without the P(alive) factor.

    (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)], z = t/(α+T+t),
    evaluated after Euler's transformation as 1 − (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z):
    the original series has large parameters and overflows for heavy buyers.
    """
    r, alpha, a, b = theta
    z = t / (alpha + T + t)
    c = a + b + x - 1
    bracket = 1 - np.exp((a - 1) * np.log1p(-z)) * special.hyp2f1(a + b - 1 - r, a - 1, c, z)
    return c / (a - 1) * bracket


def expected_spend(theta: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, v = theta
    return p * (v + x * m) / (p * x + q - 1)


def _arrays(*columns: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.atleast_1d(np.asarray(c, dtype=np.float64)) for c in columns)
