"""Synthetic control, synthetic DiD and DiD on a panel with one (or a few) treated units.

Estimators (registry names as in results.json):

- ``synthetic_did`` — Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021): unit weights ω and
  time weights λ with the paper's regularisation, solved as R ``synthdid`` does.
- ``synthetic_control`` — outcome-only synthetic control as in the paper's Table 1 (R
  ``synthdid::sc_estimate``), or, with predictors and ``outcome_only: false``, Abadie, Diamond &
  Hainmueller (2010) with nested predictor weights (:mod:`causal.designs.synth_adh`).
- ``did_sc_baseline`` — plain DiD on the same panel (uniform weights), for the comparison.

Inference: placebo standard errors (Arkhangelsky et al. 2021, Algorithm 4: donors at random play
the treated units, weights refitted from the fitted ones), placebo-in-space (each donor as the
treated unit; post/pre RMSPE ratio rank and permutation p-value) and placebo-in-time (fake
start dates inside the pre-period). All seeded; the refits are batched (one numpy loop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal.checks import CheckResult
from causal.designs import synth_solvers as solvers
from causal.errors import DataError, DesignError
from causal.results import Result

KINDS = {
    "synthetic_did": "synthetic_did",
    "synthetic_control": "synthetic_control",
    "did_sc_baseline": "did",
}
MIN_PRE_PERIODS = 2


@dataclass(frozen=True)
class Panel:
    """Outcomes as a units × periods matrix, donors first, treated units last."""

    Y: np.ndarray
    units: tuple[str, ...]
    times: tuple
    n0: int
    t0: int

    @property
    def treated_units(self) -> tuple[str, ...]:
        return self.units[self.n0 :]

    @property
    def donors(self) -> tuple[str, ...]:
        return self.units[: self.n0]


def build_panel(
    table: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    treated_units: Sequence,
    start,
    exclude: Sequence = (),
) -> Panel:
    """Validate a long panel and reshape it for the estimators.

    Raises :class:`DataError` naming the unit, period or column at fault: missing columns,
    duplicate unit-period rows, an unbalanced panel, missing outcomes, treated units absent,
    an empty donor pool, or too few pre-periods.

    Examples
    --------
    >>> t = pd.DataFrame({"u": list("aabbcc"), "t": [1, 2] * 3, "y": [1., 2, 2, 3, 3, 5]})
    >>> p = build_panel(t, unit="u", time="t", outcome="y", treated_units=["c"], start=2)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    causal.errors.DataError: only 1 pre-period before the start 2; synthetic control needs ...
    """
    for column in (unit, time, outcome):
        if column not in table.columns:
            raise DataError(
                f"column {column!r} named in the spec is not in the analysis table "
                f"(columns: {', '.join(map(str, table.columns[:20]))})"
            )
    if not pd.api.types.is_numeric_dtype(table[outcome]):
        raise DataError(
            f"outcome column {outcome!r} must be numeric; it has type "
            f"{table[outcome].dtype}; cast it in data.query"
        )
    frame = table[[unit, time, outcome]].copy()
    frame[unit] = frame[unit].astype(str)
    dup = frame.duplicated([unit, time], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        raise DataError(
            f"{int(dup.sum())} duplicate unit-period rows, e.g. {unit}={first[unit]!r}, "
            f"{time}={first[time]!r}; the query must return one row per unit and period"
        )
    wide = frame.pivot(index=unit, columns=time, values=outcome)
    try:
        wide = wide.sort_index(axis=1)
    except TypeError as exc:
        raise DataError(f"time column {time!r} cannot be ordered ({exc})") from None
    _check_missing(wide, unit, time, outcome)
    treated = [str(u) for u in treated_units]
    absent = [u for u in treated if u not in wide.index]
    if absent:
        raise DataError(
            f"treated unit {absent[0]!r} is not in the panel's {unit!r} column "
            f"(e.g. {', '.join(map(str, wide.index[:5]))})"
        )
    donors = [u for u in wide.index if u not in treated and u not in {str(e) for e in exclude}]
    if not donors:
        raise DataError(
            "the donor pool is empty after removing treated and excluded units; "
            "remove entries from design.exclude_donors"
        )
    times = list(wide.columns)
    t0 = sum(1 for t in times if t < start)
    if t0 < MIN_PRE_PERIODS:
        raise DataError(
            f"only {t0} pre-period{'s' if t0 != 1 else ''} before the start {start!r}; "
            f"synthetic control needs at least {MIN_PRE_PERIODS}"
        )
    if t0 == len(times):
        raise DataError(f"no period at or after the start {start!r} (last period {times[-1]!r})")
    Y = wide.loc[donors + treated].to_numpy(dtype=float)
    return Panel(Y, tuple(donors + treated), tuple(times), len(donors), t0)


def fit_estimator(
    name: str,
    panel: Panel,
    *,
    outcome: str = "outcome",
    alpha: float = 0.05,
    replications: int = 200,
    seed: int = 0,
) -> Result:
    """Estimate the ATT with ``name`` and its placebo standard error.

    Examples
    --------
    >>> fit_estimator("synthetic_lasso", None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    causal.errors.DesignError: unknown synthetic-control estimator 'synthetic_lasso'; known: ...
    """
    if name not in KINDS:
        raise DesignError(
            f"unknown synthetic-control estimator {name!r}; known: {', '.join(KINDS)}"
        )
    kind = KINDS[name]
    settings = solvers.default_settings(kind, panel.Y, panel.n0, panel.t0)
    fit = solvers.fit(panel.Y, panel.n0, panel.t0, settings)
    estimate = float(fit.estimate[0])
    se = placebo_se(panel, fit, settings, replications=replications, seed=seed)
    path = _paths(panel, fit.omega[0], fit.lam[0])
    details = {
        "unit_weights": _named(panel.donors, fit.omega[0]),
        "time_weights": _named(panel.times[: panel.t0], fit.lam[0]),
        "pre_rmspe": path["pre_rmspe"],
        "times": [_plain(t) for t in panel.times],
        "treatment_start_index": panel.t0,
        "treated_path": path["treated"],
        "synthetic_path": path["synthetic"],
        "variance": f"placebo standard error (Arkhangelsky et al. 2021, Algorithm 4), "
        f"{replications} replications, seed {seed}; normal interval",
        "treated_units": list(panel.treated_units),
    }
    if name == "synthetic_control":
        details["exact_simplex_estimate"] = exact_sc_estimate(panel)
    return Result.from_estimate(
        name,
        "ATT",
        outcome,
        estimate,
        se,
        n_units=panel.Y.shape[0],
        n_treated=panel.Y.shape[0] - panel.n0,
        alpha=alpha,
        details=details,
    )


def placebo_se(
    panel: Panel,
    fit: solvers.SynthdidFit,
    settings: solvers.Settings,
    *,
    replications: int = 200,
    seed: int = 0,
) -> float:
    """Placebo SE: donors drawn at random play the treated units; weights refitted, batched."""
    n1 = panel.Y.shape[0] - panel.n0
    if panel.n0 <= n1:
        return math.nan  # the paper's placebo needs more donors than treated units
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(panel.n0) for _ in range(replications)])
    n0_placebo = panel.n0 - n1
    omega0 = fit.omega[0][order[:, :n0_placebo]]
    sums = omega0.sum(axis=1, keepdims=True)
    omega0 = np.where(sums > 0, omega0 / np.where(sums > 0, sums, 1), 1.0 / n0_placebo)
    placebo = solvers.fit(
        panel.Y[order], n0_placebo, panel.t0, settings, omega0=omega0, lambda0=fit.lam[0]
    )
    estimates = placebo.estimate
    return float(math.sqrt((replications - 1) / replications) * np.std(estimates, ddof=1))


@dataclass(frozen=True)
class PlaceboSpace:
    """Each donor refitted as if it were treated; the real treated unit ranked among them."""

    units: tuple[str, ...]  # donors, then "treated" (the real treated units' average)
    gaps: np.ndarray  # (n0 + 1, T)
    pre_rmspe: np.ndarray
    post_rmspe: np.ndarray
    ratio: np.ndarray
    rank: int
    p_value: float


def placebo_in_space(name: str, panel: Panel) -> PlaceboSpace:
    """Post/pre RMSPE ratio of every donor as a placebo treated unit and of the real one.

    The real treated units are removed from the donor pool of every placebo fit; the rank of
    the real ratio among all ``n0 + 1`` gives the permutation p-value ``rank / (n0 + 1)``.
    """
    kind = KINDS[name]
    controls = panel.Y[: panel.n0]
    n0 = panel.n0
    batch = np.stack([np.vstack([np.delete(controls, j, axis=0), controls[j]]) for j in range(n0)])
    real = solvers.default_settings(kind, panel.Y, panel.n0, panel.t0)
    placebo_fit = solvers.fit(batch, n0 - 1, panel.t0, real)
    real_fit = solvers.fit(panel.Y, panel.n0, panel.t0, real)
    gaps = [
        _gap(batch[j], n0 - 1, panel.t0, placebo_fit.omega[j], placebo_fit.lam[j])
        for j in range(n0)
    ]
    gaps.append(_gap(panel.Y, panel.n0, panel.t0, real_fit.omega[0], real_fit.lam[0]))
    gaps = np.vstack(gaps)
    pre = np.sqrt(np.mean(gaps[:, : panel.t0] ** 2, axis=1))
    post = np.sqrt(np.mean(gaps[:, panel.t0 :] ** 2, axis=1))
    ratio = post / np.where(pre > 0, pre, np.nan)
    rank = int(1 + np.sum(ratio[:-1] > ratio[-1]))
    return PlaceboSpace((*panel.donors, "treated"), gaps, pre, post, ratio, rank, rank / len(ratio))


def placebo_in_time(name: str, panel: Panel, *, starts: Sequence | None = None) -> pd.DataFrame:
    """Refit on pre-period data only, pretending treatment began earlier; estimates should be ~0.

    ``starts`` are periods inside the pre-period (default: up to three evenly spaced ones that
    leave at least two earlier periods).
    """
    kind = KINDS[name]
    pre_times = panel.times[: panel.t0]
    if starts is None:
        candidates = list(range(MIN_PRE_PERIODS, panel.t0))
        picks = np.unique(np.linspace(0, len(candidates) - 1, min(3, len(candidates))).astype(int))
        indices = [candidates[i] for i in picks] if candidates else []
    else:
        indices = [pre_times.index(s) for s in starts if s in pre_times]
    rows = []
    for t0 in indices:
        Y = panel.Y[:, : panel.t0]
        fit = solvers.fit(Y, panel.n0, t0, solvers.default_settings(kind, Y, panel.n0, t0))
        rows.append({"fake_start": _plain(pre_times[t0]), "estimate": float(fit.estimate[0])})
    return pd.DataFrame(rows, columns=["fake_start", "estimate"])


def convex_hull_check(panel: Panel) -> CheckResult:
    """Warn when the treated path leaves the donors' range: weights cannot reach it."""
    pre = panel.Y[:, : panel.t0]
    treated = pre[panel.n0 :].mean(axis=0)
    low, high = pre[: panel.n0].min(axis=0), pre[: panel.n0].max(axis=0)
    outside = np.flatnonzero((treated < low) | (treated > high))
    if outside.size == 0:
        return CheckResult(
            "convex_hull", "pass", "the treated pre-period path lies inside the donors' range"
        )
    periods = ", ".join(str(_plain(panel.times[i])) for i in outside[:5])
    return CheckResult(
        "convex_hull",
        "warn",
        f"the treated unit lies outside the donors' range in {outside.size} of {panel.t0} "
        f"pre-periods ({periods}); synthetic control cannot reproduce it: prefer synthetic DiD",
    )


def exact_sc_estimate(panel: Panel) -> float:
    """Outcome-only SC at the exact simplex least-squares optimum (no penalty, no sparsify)."""
    A = panel.Y[: panel.n0, : panel.t0].T
    b = panel.Y[panel.n0 :, : panel.t0].mean(axis=0)
    w = solvers.simplex_least_squares(A, b)
    post = panel.Y[:, panel.t0 :]
    return float(post[panel.n0 :].mean() - w @ post[: panel.n0].mean(axis=1))


def _gap(Y: np.ndarray, n0: int, t0: int, omega: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Treated minus synthetic path, shifted by the λ-weighted pre-period difference (SDID/DiD)."""
    raw = Y[n0:].mean(axis=0) - omega @ Y[:n0]
    return raw - lam @ raw[:t0]


def _paths(panel: Panel, omega: np.ndarray, lam: np.ndarray) -> dict:
    treated = panel.Y[panel.n0 :].mean(axis=0)
    gap = _gap(panel.Y, panel.n0, panel.t0, omega, lam)
    synthetic = treated - gap
    return {
        "treated": treated.tolist(),
        "synthetic": synthetic.tolist(),
        "pre_rmspe": float(np.sqrt(np.mean(gap[: panel.t0] ** 2))),
    }


def _named(names: Sequence, values: np.ndarray) -> dict:
    return {str(_plain(n)): float(v) for n, v in zip(names, values, strict=True) if v > 0}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _check_missing(wide: pd.DataFrame, unit: str, time: str, outcome: str) -> None:
    missing = wide.isna()
    if missing.to_numpy().any():
        rows, cols = np.nonzero(missing.to_numpy())
        first_unit, first_time = wide.index[rows[0]], wide.columns[cols[0]]
        raise DataError(
            f"outcome {outcome!r} is missing for {len(rows)} unit-period cells (absent rows or "
            f"nulls), e.g. {unit}={first_unit!r}, {time}={_plain(first_time)!r}; synthetic "
            f"control needs a balanced panel"
        )
