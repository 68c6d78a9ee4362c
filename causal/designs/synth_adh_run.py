"""ADH synthetic control with predictors, as the ``synthetic_control`` estimator of a spec.

Predictors are pre-period means of panel columns (the outcome's lags included), one value per
unit. With several treated units their predictors and outcomes are averaged, as SDID does.
Inference refits the synthetic control with each donor as the treated unit: the spread of those
placebo effects is the standard error and the post/pre RMSPE rank is the permutation p-value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from causal.designs import synth_adh
from causal.designs.synth import Panel
from causal.errors import DataError
from causal.results import Result
from causal.spec import Spec


def predictor_matrix(table: pd.DataFrame, panel: Panel, spec: Spec) -> tuple[np.ndarray, list]:
    """``(k, N)`` predictor values for the panel's units (donors then treated) and their names.

    Examples
    --------
    >>> from causal.data.dataset import query_table
    >>> from causal.designs.synth import build_panel
    >>> from causal.spec import load_spec
    >>> spec = load_spec("experiments/prop99_adh.yaml")
    >>> table = query_table(spec)
    >>> panel = build_panel(table, unit="state", time="year", outcome="packs",
    ...                     treated_units=["California"], start=1989)
    >>> X, names = predictor_matrix(table, panel, spec)
    >>> X.shape, names[0]
    ((4, 39), 'packs 1980-1988')
    """
    design = spec.design
    time, unit = design.time, spec.unit
    pre_times = panel.times[: panel.t0]
    frame = table.assign(**{unit: table[unit].astype(str)})
    rows, names = [], []
    for p in design.predictors:
        if p.column not in frame.columns:
            raise DataError(f"design.predictors: column {p.column!r} is not in the analysis table")
        if not pd.api.types.is_numeric_dtype(frame[p.column]):
            raise DataError(f"design.predictors: column {p.column!r} must be numeric")
        start = p.start if p.start is not None else pre_times[0]
        end = p.end if p.end is not None else pre_times[-1]
        in_pre = frame[time] <= pre_times[-1]  # predictors never look past the start
        window = frame[(frame[time] >= start) & (frame[time] <= end) & in_pre]
        means = window.groupby(unit)[p.column].mean().reindex(list(panel.units))
        if means.isna().any():
            missing = means[means.isna()].index[0]
            raise DataError(
                f"design.predictors: no {p.column!r} values for unit {missing!r} "
                f"between {start} and {end}"
            )
        rows.append(means.to_numpy(dtype=float))
        names.append(f"{p.column} {start}" if start == end else f"{p.column} {start}-{end}")
    return np.vstack(rows), names


def fit_adh_estimator(
    panel: Panel,
    table: pd.DataFrame,
    spec: Spec,
    *,
    outcome: str,
    alpha: float = 0.05,
    replications: int = 200,
    seed: int = 0,
) -> Result:
    """Fit ADH synthetic control and its placebo inference; returns the common Result.

    ``replications`` is accepted for a common signature; ADH placebos use every donor once.
    """
    del replications
    X, names = predictor_matrix(table, panel, spec)
    n0, t0 = panel.n0, panel.t0
    Y = np.vstack([panel.Y[:n0], panel.Y[n0:].mean(axis=0)])
    Xa = np.column_stack([X[:, :n0], X[:, n0:].mean(axis=1)])
    fit = synth_adh.fit_adh(Xa[:, n0], Xa[:, :n0], Y[n0, :t0], Y[:n0, :t0].T, seed=seed)
    gap = Y[n0] - fit.weights @ Y[:n0]
    estimate = float(gap[t0:].mean())
    space = synth_adh.placebo_in_space(Y, Xa, n0, t0, seed=seed)
    placebo_effects = space.gaps[:n0, t0:].mean(axis=1)
    se = float(np.std(placebo_effects, ddof=1)) if n0 > 2 else math.nan
    units = (*panel.donors, "treated")
    details = {
        "unit_weights": {
            u: float(w) for u, w in zip(panel.donors, fit.weights, strict=True) if w > 0
        },
        "predictor_weights": dict(zip(names, map(float, fit.v), strict=True)),
        "predictor_gap": dict(zip(names, map(float, fit.predictor_gap), strict=True)),
        "pre_rmspe": float(np.sqrt(fit.pre_mspe)),
        "times": [t.item() if hasattr(t, "item") else t for t in panel.times],
        "treatment_start_index": t0,
        "treated_path": Y[n0].tolist(),
        "synthetic_path": (Y[n0] - gap).tolist(),
        "treated_units": list(panel.treated_units),
        "variance": "placebo standard error: sd of the effects when each donor in turn plays "
        "the treated unit (ADH placebo-in-space); normal interval",
        "placebo_space": {
            "rank": space.rank,
            "n": len(space.ratio),
            "p_value": space.p_value,
            "ratios": {
                u: (float(r) if np.isfinite(r) else None)
                for u, r in zip(units, space.ratio, strict=True)
            },
            "gaps": {u: g.tolist() for u, g in zip(panel.donors, space.gaps[:n0], strict=True)},
        },
        "method": "Abadie, Diamond & Hainmueller (2010), nested predictor weights",
    }
    return Result.from_estimate(
        "synthetic_control",
        "ATT",
        outcome,
        estimate,
        se,
        n_units=panel.Y.shape[0],
        n_treated=panel.Y.shape[0] - n0,
        alpha=alpha,
        details=details,
    )
