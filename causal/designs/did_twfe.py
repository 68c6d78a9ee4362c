"""Regression DiD: the 2×2 comparison, two-way fixed effects and the TWFE event study.

All three are OLS with unit and period fixed effects and CR1 cluster-robust standard errors
(fixest's small-sample convention, so they agree with fixest / pyfixest):

- ``did_2x2`` — ever-treated vs never-treated units, mean of the periods before the first
  adoption vs mean of the periods from the last adoption on.
- ``twfe`` — one "treated now" dummy (plus optional covariates). Under staggered adoption with
  effects that change over time it is a weighted average of cell effects with weights that can be
  negative; :func:`twfe_cell_weights` shows them.
- ``event_study`` — dummies for event time ``lead..lag`` relative to first treatment, end points
  binned (every earlier / later period falls into the end bin), ``-1`` the reference.

**Fast path.** In a balanced panel without covariates the regressors depend only on (cohort,
period). The within-transformed regressors, the Gram matrix and the per-unit scores then follow
from cohort-level arrays and one product of the outcome matrix with each cohort's regressors: no
dummy matrix with a row per observation. Unbalanced panels and covariates take the general path
(alternating projections). A test holds the two paths equal to 1e-10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from causal.designs.did_panel import DidPanel
from causal.errors import DesignError
from causal.inference.fixed_effects import (
    ClusteredFit,
    cr1_covariance,
    demean_two_way,
    fixest_df_k,
    solve_gram,
    sum_by_cluster,
)


@dataclass(frozen=True)
class EventStudy:
    """Event-study coefficients, the reference period(s) and the joint pre-trend test."""

    fit: ClusteredFit
    event_times: tuple[int, ...]  # one per coefficient, in order
    reference: tuple[int, ...]
    lead: int
    lag: int
    pretrend_f: float
    pretrend_df: tuple[int, int]
    pretrend_p: float

    def table(self, *, alpha: float = 0.05) -> pd.DataFrame:
        """Coefficients with pointwise t-intervals (cluster df), reference rows at zero."""
        crit = float(stats.t(self.fit.df_t).ppf(1 - alpha / 2))
        k = len(self.event_times)  # covariates' coefficients follow the event-time ones
        se, coef = self.fit.std_error[:k], self.fit.coef[:k]
        rows = pd.DataFrame(
            {
                "event_time": self.event_times,
                "estimate": coef,
                "std_error": se,
                "conf_low": coef - crit * se,
                "conf_high": coef + crit * se,
            }
        )
        ref = pd.DataFrame({"event_time": list(self.reference), "estimate": 0.0, "std_error": 0.0})
        ref["conf_low"] = ref["conf_high"] = 0.0
        out = pd.concat([rows, ref], ignore_index=True).sort_values("event_time")
        out["binned"] = out["event_time"].isin([self.lead, self.lag])
        out["reference"] = out["event_time"].isin(self.reference)
        return out.reset_index(drop=True)

    def post_average(self) -> tuple[float, float]:
        """Mean of the post-treatment coefficients (event time ≥ 0) and its standard error."""
        w = np.zeros(len(self.fit.coef))
        w[: len(self.event_times)] = [1.0 if e >= 0 else 0.0 for e in self.event_times]
        w /= w.sum()
        return float(w @ self.fit.coef), float(math.sqrt(w @ self.fit.vcov @ w))


def twfe(panel: DidPanel, *, covariates: bool = True) -> ClusteredFit:
    """Two-way fixed effects with a single treated dummy (and the panel's covariates).

    Examples
    --------
    >>> from causal.designs.did_panel import build_did_panel
    >>> t = pd.DataFrame({"u": [1, 1, 2, 2, 3, 3], "t": [1, 2] * 3,
    ...                   "y": [1.0, 4, 1, 2, 2, 3.5], "g": [2, 2, 0, 0, 0, 0]})
    >>> p = build_did_panel(t, unit="u", time="t", outcome="y", first_treated="g")
    >>> round(float(twfe(p).coef[0]), 3)
    1.75
    """
    cohorts, index = _cohort_index(panel)
    regressors = _treated_regressors(cohorts, panel.n_periods)
    return _fit(panel, regressors, index, ("treated",), covariates=covariates)


def event_study(panel: DidPanel, *, lead: int, lag: int, covariates: bool = True) -> EventStudy:
    """TWFE event study for event times ``lead..lag`` (binned end points), reference ``-1``.

    Without never-treated units the farthest lead is a second reference period (otherwise the
    dummies are collinear with the fixed effects). The pre-trend test is the joint Wald F-test
    that all lead coefficients are zero, with (q, clusters - 1) degrees of freedom.

    Examples
    --------
    >>> from causal.designs.did_panel import build_did_panel
    >>> rng = np.random.default_rng(0)
    >>> t = pd.DataFrame({"u": np.repeat(np.arange(40), 6), "t": np.tile(np.arange(6), 40)})
    >>> t["g"] = np.where(t["u"] < 20, 3, 0)
    >>> t["y"] = (t["t"] >= t["g"]) * (t["g"] > 0) * 2.0 + rng.normal(size=len(t))
    >>> es = event_study(build_did_panel(t, unit="u", time="t", outcome="y", first_treated="g"),
    ...                  lead=-3, lag=2)
    >>> round(es.post_average()[0])
    2
    """
    if lead >= -1 or lag < 0:
        raise DesignError(f"event window [{lead}, {lag}] must have lead ≤ -2 and lag ≥ 0")
    _check_window(panel, lead, lag)
    cohorts, index = _cohort_index(panel)
    reference = (-1,) if (cohorts < 0).any() else (lead, -1)
    kept = tuple(e for e in range(lead, lag + 1) if e not in reference)
    regressors = _event_regressors(cohorts, panel.n_periods, kept, lead, lag)
    present = regressors.reshape(-1, len(kept)).any(axis=0)
    kept = tuple(e for e, p in zip(kept, present, strict=True) if p)
    regressors = regressors[:, :, present]
    names = tuple(f"event_time={e}" for e in kept)
    fit = _fit(panel, regressors, index, names, covariates=covariates)
    leads = [i for i, e in enumerate(kept) if e < 0]
    f, df, p = _wald_f(fit, leads)
    return EventStudy(fit, kept, reference, lead, lag, f, df, p)


def did_2x2(panel: DidPanel) -> tuple[ClusteredFit, dict]:
    """Ever-treated vs never-treated, before the first adoption vs from the last adoption on.

    Each unit's outcome is averaged over the "before" and "after" periods and the TWFE
    regression is run on that two-period panel, so with one adoption date it is the textbook
    2×2 DiD with cluster-robust SE.

    Examples
    --------
    >>> from causal.designs.did_panel import build_did_panel
    >>> t = pd.DataFrame({"u": [1, 1, 2, 2, 3, 3], "t": [1, 2] * 3,
    ...                   "y": [1.0, 4, 1, 2, 2, 3.5], "g": [2, 2, 0, 0, 0, 0]})
    >>> fit, info = did_2x2(build_did_panel(t, unit="u", time="t", outcome="y", first_treated="g"))
    >>> round(float(fit.coef[0]), 3), info["post_periods"]
    (1.75, [2])
    """
    pos = panel.cohort_pos
    if not (pos < 0).any():
        raise DesignError("did_2x2 compares with never-treated units and there are none")
    adopters = pos[pos > 0]
    if adopters.size == 0:
        raise DesignError("did_2x2 needs a unit first treated after the first period")
    first, last = int(adopters.min()), int(adopters.max())
    keep_unit = (pos < 0) | (pos > 0)
    rows = keep_unit[panel.unit_code] & ((panel.time_code < first) | (panel.time_code >= last))
    post = (panel.time_code[rows] >= last).astype(np.int64)
    unit_codes, units = pd.factorize(panel.unit_code[rows], sort=True)
    cell = unit_codes * 2 + post
    sums = np.bincount(cell, panel.y[rows], 2 * len(units))
    counts = np.bincount(cell, minlength=2 * len(units))
    if (counts == 0).any():
        raise DesignError("did_2x2 needs every unit observed both before and after adoption")
    collapsed = DidPanel(
        unit_code=np.repeat(np.arange(len(units)), 2),
        time_code=np.tile([0, 1], len(units)),
        y=sums / counts,
        units=panel.units[units],
        times=np.array([0, 1]),
        cohort_pos=np.where(pos[units] >= 0, 1, -1),
        cluster_code=pd.factorize(panel.cluster_code[units], sort=True)[0],
        covariates=pd.DataFrame(index=range(2 * len(units))),
        outcome=panel.outcome,
        unit=panel.unit,
        time=panel.time,
        cluster=panel.cluster,
    )
    fit = twfe(collapsed, covariates=False)
    info = {
        "pre_periods": panel.times[:first].tolist(),
        "post_periods": panel.times[last:].tolist(),
        "n_treated_units": int((pos[units] >= 0).sum()),
        "n_control_units": int((pos[units] < 0).sum()),
    }
    return fit, info


def twfe_cell_weights(panel: DidPanel) -> pd.DataFrame:
    """The weight plain TWFE puts on each treated (cohort, period) cell's average effect.

    In a balanced panel without covariates, TWFE's coefficient equals ``Σ w_gt · ATT(g, t)`` over
    treated cells (plus noise) with ``w_gt ∝ n_g · D̃_gt``, ``D̃`` the within-transformed
    treatment dummy (de Chaisemartin & D'Haultfœuille 2020). Weights sum to one; negative
    weights mean TWFE subtracts some cells' effects, which is how it misleads under staggered
    adoption with effects that grow.

    Examples
    --------
    >>> from causal.designs.did_panel import build_did_panel
    >>> t = pd.DataFrame({"u": np.repeat([1, 2, 3], 3), "t": [1, 2, 3] * 3, "y": 0.0,
    ...                   "g": np.repeat([2, 3, 0], 3)})
    >>> w = twfe_cell_weights(build_did_panel(t, unit="u", time="t", outcome="y",
    ...                                       first_treated="g"))
    >>> round(float(w["weight"].sum()), 10)
    1.0
    """
    if not panel.balanced:
        raise DesignError("TWFE cell weights are computed for balanced panels")
    cohorts, index = _cohort_index(panel)
    counts = np.bincount(index, minlength=len(cohorts)).astype(np.float64)
    regressors = _treated_regressors(cohorts, panel.n_periods)
    tilde = _within_cohort_regressors(regressors, counts)[..., 0]
    treated = regressors[..., 0] > 0
    mass = counts[:, None] * tilde
    c, t = np.nonzero(treated)
    weights = mass[c, t] / mass[treated].sum()
    return pd.DataFrame(
        {
            "cohort": panel.times[cohorts[c]],
            "time": panel.times[t],
            "event_time": t - cohorts[c],
            "n_units": counts[c].astype(int),
            "weight": weights,
        }
    )


# --- regressors as cohort × period × k arrays ---------------------------------------------------


def _cohort_index(panel: DidPanel) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cohort positions (-1 = never) and each unit's index into them."""
    cohorts, index = np.unique(panel.cohort_pos, return_inverse=True)
    return cohorts, index


def _treated_regressors(cohorts: np.ndarray, n_periods: int) -> np.ndarray:
    t = np.arange(n_periods)
    on = (cohorts[:, None] >= 0) & (t[None, :] >= cohorts[:, None])
    return on.astype(np.float64)[:, :, None]


def _event_regressors(cohorts, n_periods, kept, lead, lag) -> np.ndarray:
    t = np.arange(n_periods)
    event = np.clip(t[None, :] - cohorts[:, None], lead, lag)
    treated = (cohorts >= 0)[:, None, None]
    return ((event[:, :, None] == np.array(kept)[None, None, :]) & treated).astype(np.float64)


def _check_window(panel: DidPanel, lead: int, lag: int) -> None:
    pos = panel.cohort_pos[panel.cohort_pos >= 0]
    max_lag = panel.n_periods - 1 - int(pos.min())
    max_lead = -int(pos.max())
    if lag > max_lag or lead < max_lead:
        raise DesignError(
            f"event window [{lead}, {lag}] is longer than the data allow: with periods "
            f"{panel.times[0]}..{panel.times[-1]} and these cohorts, event time runs from "
            f"{max_lead} to {max_lag}; set design.event_window inside that range"
        )


def _within_cohort_regressors(regressors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Two-way within transformation of regressors that vary only by (cohort, period)."""
    share = counts / counts.sum()
    unit_mean = regressors.mean(axis=1, keepdims=True)
    period_mean = np.einsum("c,ctk->tk", share, regressors)[None]
    grand = np.einsum("c,ck->k", share, unit_mean[:, 0])[None, None]
    return regressors - unit_mean - period_mean + grand


# --- fitting -------------------------------------------------------------------------------------


def _fit(panel, regressors, index, names, *, covariates: bool) -> ClusteredFit:
    use_covariates = covariates and panel.covariates.shape[1] > 0
    if panel.balanced and not use_covariates:
        return _fit_cohort_aggregates(panel, regressors, index, names)
    extra = panel.covariates if use_covariates else None
    return _fit_general(panel, regressors, index, names, extra)


def _fit_cohort_aggregates(panel, regressors, index, names) -> ClusteredFit:
    """Balanced, no covariates: Gram matrix and unit scores from cohort-level arrays."""
    counts = np.bincount(index, minlength=regressors.shape[0]).astype(np.float64)
    tilde = _within_cohort_regressors(regressors, counts)
    gram = np.einsum("c,ctk,ctl->kl", counts, tilde, tilde)
    bread_inv = solve_gram(gram, names)
    y = panel.wide_outcome()
    # Σ_t D̃[c, t] (y_it - ȳ_t): the period means enter once per cohort, not once per unit.
    period_means = y.mean(axis=0)
    unit_cross = np.empty((panel.n_units, len(names)))
    for c in range(regressors.shape[0]):
        members = np.flatnonzero(index == c)
        unit_cross[members] = y[members] @ tilde[c] - period_means @ tilde[c]
    coef = bread_inv @ unit_cross.sum(axis=0)
    unit_gram = np.einsum("ctk,ctl->ckl", tilde, tilde)
    scores = unit_cross - np.einsum("ckl,l->ck", unit_gram, coef)[index]
    return _clustered(panel, names, coef, bread_inv, scores, per_unit=True)


def _fit_general(panel, regressors, index, names, covariates) -> ClusteredFit:
    x = regressors[index[panel.unit_code], panel.time_code]
    dropped: tuple[str, ...] = ()
    if covariates is not None:
        absorbed = [c for c in covariates.columns if _constant_within_units(panel, covariates[c])]
        kept = [c for c in covariates.columns if c not in absorbed]
        dropped = tuple(absorbed)
        if kept:
            x = np.column_stack([x, covariates[kept].to_numpy(dtype=np.float64)])
            names = names + tuple(kept)
    z = demean_two_way(
        np.column_stack([panel.y, x]), panel.unit_code, panel.time_code, balanced=panel.balanced
    )
    y_tilde, x_tilde = z[:, 0], z[:, 1:]
    bread_inv = solve_gram(x_tilde.T @ x_tilde, names)
    coef = bread_inv @ (x_tilde.T @ y_tilde)
    scores = x_tilde * (y_tilde - x_tilde @ coef)[:, None]
    fit = _clustered(panel, names, coef, bread_inv, scores, per_unit=False)
    return replace(fit, dropped=dropped)


def _constant_within_units(panel: DidPanel, values: pd.Series) -> bool:
    """A covariate that never changes within a unit is absorbed by the unit fixed effects."""
    v = values.to_numpy(dtype=np.float64)
    n = panel.n_units
    counts = np.bincount(panel.unit_code, minlength=n)
    means = np.bincount(panel.unit_code, v, n) / counts
    return bool(np.allclose(v, means[panel.unit_code], rtol=1e-12, atol=1e-12))


def _clustered(panel, names, coef, bread_inv, scores, *, per_unit: bool) -> ClusteredFit:
    if per_unit and panel.n_clusters == panel.n_units:
        by_cluster = scores  # clusters are the units (codes 0..n-1 in unit order)
    else:
        cluster = panel.cluster_code if per_unit else panel.cluster_code[panel.unit_code]
        by_cluster = sum_by_cluster(scores, cluster, panel.n_clusters)
    n_obs = len(panel.y)
    df_k = fixest_df_k(len(names), panel.n_periods, panel.n_units, units_nested=True)
    vcov = cr1_covariance(bread_inv, by_cluster, n_obs=n_obs, df_k=df_k)
    return ClusteredFit(tuple(names), coef, vcov, n_obs, panel.n_clusters, df_k)


def _wald_f(fit: ClusteredFit, idx: list[int]) -> tuple[float, tuple[int, int], float]:
    if not idx:
        return math.nan, (0, fit.df_t), math.nan
    b = fit.coef[idx]
    v = fit.vcov[np.ix_(idx, idx)]
    f = float(b @ np.linalg.solve(v, b)) / len(idx)
    return f, (len(idx), fit.df_t), float(stats.f.sf(f, len(idx), fit.df_t))
