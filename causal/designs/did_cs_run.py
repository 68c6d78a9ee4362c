"""Callaway–Sant'Anna from a :class:`DidPanel` and the spec, returned as one :class:`Result`.

The headline is the ``simple`` aggregation (the average effect over treated unit-periods);
the ``group``, ``dynamic`` and ``calendar`` aggregations, the ATT(g, t) table and the uniform
bands of the multiplier bootstrap go into ``details`` for the report.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from causal.designs.did_cs import GroupTimeEffects, group_time_effects
from causal.designs.did_cs_aggregate import Aggregation, aggregate, cluster_sums
from causal.designs.did_panel import DidPanel, json_plain, json_records
from causal.progress import progress
from causal.results import Result
from causal.spec import Spec

BOOTSTRAPPED = ("dynamic", "group", "calendar")


def fit_callaway_santanna(panel: DidPanel, spec: Spec) -> Result:
    """ATT(g, t) and its aggregations with the spec's settings.

    Periods are passed to the estimator as positions 1..T (so dates work as well as years) and
    mapped back to the panel's own values in every table. Units treated from the first period
    have no pre-period and are left out, as R ``did`` does.

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> from causal.data.dataset import query_table
    >>> from causal.designs.did_run import build_panels
    >>> spec = load_spec("experiments/mpdta_minimum_wage.yaml")
    >>> panels, _ = build_panels(spec, query_table(spec))
    >>> round(fit_callaway_santanna(panels["lemp"], spec).estimate, 5)
    -0.03995
    """
    design = spec.design
    effects = group_time_effects(
        _long_frame(panel),
        unit="unit",
        time="period",
        cohort="cohort",
        outcome="y",
        covariates=tuple(panel.covariates.columns),
        control_group=design.control_group,
        method=design.method,
        base_period=design.base_period,
        anticipation=design.anticipation,
        conf_level=1 - spec.alpha,
    )
    cluster = None
    if panel.cluster != panel.unit:
        cluster = panel.cluster_code[effects.units.astype(np.int64)]
        effects = clustered_cells(effects, cluster)
    simple = aggregate(effects, "simple", cluster=cluster)
    details = {
        "att_gt": json_records(_periods_back(effects.table, panel, ("group", "time"))),
        "settings": {
            "control_group": design.control_group,
            "method": design.method if len(panel.covariates.columns) else "no covariates",
            "base_period": design.base_period,
            "anticipation": design.anticipation,
            "bootstrap_replications": design.bootstrap_replications,
            "covariates": list(panel.covariates.columns),
            "standard_errors": f"analytic (influence functions), clustered by {panel.cluster}",
        },
    }
    details["pretest"] = pretest(effects, cluster=cluster)
    kinds = progress(BOOTSTRAPPED, desc="CS aggregations", total=len(BOOTSTRAPPED))
    for kind in kinds:
        agg = _with_band(effects, kind, design.bootstrap_replications, spec.seed, cluster)
        details[kind] = _aggregation_record(agg, panel)
        if kind == "dynamic":
            details["cumulative"] = cumulative_effects(agg, seed=spec.seed)
    return Result(
        estimator="callaway_santanna",
        estimand="ATT (mean over treated unit-periods)",
        outcome=panel.outcome,
        estimate=simple.estimate,
        std_error=simple.std_error,
        conf_low=simple.conf_low,
        conf_high=simple.conf_high,
        p_value=simple.p_value,
        n_units=len(effects.units),
        n_treated=int((effects.group_of_unit > 0).sum()),
        details=details,
        conf_level=1 - spec.alpha,
    )


def cumulative_effects(dynamic: Aggregation, *, seed: int = 0) -> list[dict]:
    """Running totals of the event-time effects ATT(0) + … + ATT(e), with standard errors
    from the joint influence functions and a sup-t simultaneous band over event times.

    This is what a per-period outcome (monthly revenue) adds up to by ``e`` periods after
    treatment. Each ATT(e) averages the cohorts observed ``e`` periods after their start, so
    with unbalanced event times the later terms rest on fewer cohorts (the report says so).

    Examples
    --------
    >>> from causal.spec import load_spec
    >>> from causal.data.dataset import query_table
    >>> from causal.designs.did_run import build_panels
    >>> spec = load_spec("experiments/mpdta_minimum_wage.yaml")
    >>> panels, _ = build_panels(spec, query_table(spec))
    >>> res = fit_callaway_santanna(panels["lemp"], spec)
    >>> [round(r["estimate"], 4) for r in res.details["cumulative"]][:2]
    [-0.0199, -0.0709]
    """
    from causal.designs.horizons import sup_t_critical_value

    if dynamic.table is None:
        return []
    levels = dynamic.table["level"].to_numpy()
    post = np.flatnonzero(levels >= 0)
    if post.size == 0:
        return []
    weights = np.zeros((post.size, len(levels)))
    for row in range(post.size):
        weights[row, post[: row + 1]] = 1.0
    est, se, cov = dynamic.combination(weights)
    z = float(stats.norm.ppf(0.5 + dynamic.conf_level / 2))
    ok = np.isfinite(se) & (se > 0)
    crit = (
        sup_t_critical_value(cov[np.ix_(ok, ok)], conf_level=dynamic.conf_level, seed=seed)
        if ok.any()
        else math.nan
    )
    return [
        {
            "event_time": json_plain(levels[j]),
            "estimate": float(est[row]),
            "std_error": float(se[row]),
            "conf_low": float(est[row] - z * se[row]),
            "conf_high": float(est[row] + z * se[row]),
            "band_low": float(est[row] - crit * se[row]),
            "band_high": float(est[row] + crit * se[row]),
        }
        for row, j in enumerate(post)
    ]


def pretest(effects: GroupTimeEffects, *, cluster: np.ndarray | None = None) -> dict:
    """Wald test that every pre-treatment ATT(g, t) is zero, as R ``did``'s ``att_gt``.

    ``W = n · θ' V⁻¹ θ`` over the pre-period cells with a positive variance, ``V`` the analytic
    influence-function covariance, χ² with as many degrees of freedom as cells. Returns NaN
    (with the reason) when there are no such cells or their covariance is singular.

    Examples
    --------
    >>> import pandas as pd
    >>> from causal.designs.did_cs import group_time_effects
    >>> from causal.designs.did_cs_panel import MPDTA
    >>> mpdta = pd.read_csv(MPDTA)
    >>> effects = group_time_effects(mpdta, unit="countyreal", time="year",
    ...                              cohort="first.treat", outcome="lemp")
    >>> round(pretest(effects)["p_value"], 5)
    0.16812
    """
    table = effects.table
    n = effects.influence.shape[0]
    variance = table["std_error"].to_numpy() ** 2
    pre = np.flatnonzero(~table["post"].to_numpy() & (variance > 0) & np.isfinite(variance))
    if pre.size == 0:
        return {"w": math.nan, "df": 0, "p_value": math.nan, "note": "no pre-period cells"}
    block = effects.influence[:, pre]
    if cluster is not None:
        block = cluster_sums(block, cluster)
    cov = block.T @ block / n
    if np.linalg.cond(cov) > 1 / np.finfo(float).eps:
        return {
            "w": math.nan,
            "df": int(pre.size),
            "p_value": math.nan,
            "note": "singular covariance of the pre-period cells",
        }
    theta = table["att"].to_numpy()[pre]
    w = float(n * theta @ np.linalg.solve(cov, theta))
    return {"w": w, "df": int(pre.size), "p_value": float(stats.chi2.sf(w, pre.size))}


def clustered_cells(effects: GroupTimeEffects, cluster: np.ndarray) -> GroupTimeEffects:
    """The ATT(g, t) table with cluster-robust standard errors and intervals."""
    n = effects.influence.shape[0]
    sums = cluster_sums(effects.influence, cluster)
    se = np.sqrt((sums**2).sum(axis=0)) / n
    z = stats.norm.ppf(0.5 + effects.conf_level / 2)
    table = effects.table.copy()
    table["std_error"] = se
    table["conf_low"] = table["att"] - z * se
    table["conf_high"] = table["att"] + z * se
    return replace(effects, table=table)


def _with_band(
    effects: GroupTimeEffects, kind: str, n_boot: int, seed: int, cluster: np.ndarray | None
) -> Aggregation:
    """Analytic standard errors and pointwise intervals (so the numbers replicate R's
    ``bstrap = FALSE``), with the uniform band ``estimate ± c · SE`` where ``c`` is the sup-t
    critical value of the multiplier bootstrap (Rademacher weights, as R ``did``)."""
    analytic = aggregate(effects, kind, cluster=cluster)
    if n_boot == 0 or analytic.table is None:
        return analytic
    boot = aggregate(effects, kind, n_boot=n_boot, seed=seed, weights="rademacher", cluster=cluster)
    crit = boot.critical_value
    table = analytic.table.copy()
    table["band_low"] = table["estimate"] - crit * table["std_error"]
    table["band_high"] = table["estimate"] + crit * table["std_error"]
    return replace(analytic, table=table, critical_value=crit, n_boot=n_boot)


def _long_frame(panel: DidPanel) -> pd.DataFrame:
    cohort = np.where(panel.cohort_pos >= 0, panel.cohort_pos + 1, 0)
    keep = (panel.cohort_pos != 0)[panel.unit_code]  # treated from the first period: no pre
    frame = pd.DataFrame(
        {
            "unit": panel.unit_code[keep],
            "period": panel.time_code[keep] + 1,
            "cohort": cohort[panel.unit_code[keep]],
            "y": panel.y[keep],
        }
    )
    for column in panel.covariates.columns:
        frame[column] = panel.covariates[column].to_numpy()[keep]
    return frame


def _aggregation_record(agg: Aggregation, panel: DidPanel) -> dict:
    record = {
        "estimate": agg.estimate,
        "std_error": agg.std_error,
        "conf_low": agg.conf_low,
        "conf_high": agg.conf_high,
        "p_value": agg.p_value,
        "critical_value": agg.critical_value,
    }
    if agg.table is not None:
        table = agg.table
        if agg.kind in ("group", "calendar"):
            table = _periods_back(table, panel, ("level",))
        record["table"] = json_records(table)
    return record


def _periods_back(table: pd.DataFrame, panel: DidPanel, columns) -> pd.DataFrame:
    out = table.copy()
    for column in columns:
        out[column] = [json_plain(panel.times[int(v) - 1]) for v in out[column]]
    return out


__all__ = ["GroupTimeEffects", "fit_callaway_santanna"]
