"""Regression DiD: agreement with pyfixest, fast path = general path, known truths, bad input."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from causal.designs import did_twfe
from causal.designs.did_panel import build_did_panel, check_controls
from causal.errors import DataError, DesignError


def staggered(
    n_units=300, n_periods=10, cohorts=(4, 6, 8), never_share=0.3, *, effect=None, seed=0
) -> pd.DataFrame:
    """Staggered panel with unit, period and cluster structure; effect(g, e) per cohort/event."""
    rng = np.random.default_rng(seed)
    units = np.arange(n_units)
    g = np.where(rng.random(n_units) < never_share, 0, rng.choice(cohorts, n_units))
    periods = np.arange(1, n_periods + 1)
    table = pd.DataFrame({"unit": np.repeat(units, n_periods), "t": np.tile(periods, n_units)})
    table["g"] = np.repeat(g, n_periods)
    table["region"] = table["unit"] % 25
    alpha = np.repeat(rng.normal(0, 2, n_units), n_periods)
    lam = np.tile(np.cumsum(rng.normal(0.2, 0.5, n_periods)), n_units)
    table["x"] = rng.normal(size=len(table)) + 0.1 * table["t"]
    e = table["t"] - table["g"]
    treated = (table["g"] > 0) & (e >= 0)
    tau = np.zeros(len(table)) if effect is None else effect(table["g"].to_numpy(), e.to_numpy())
    table["y"] = alpha + lam + 0.5 * table["x"] + treated * tau + rng.normal(size=len(table))
    table["d"] = treated.astype(int)
    return table


def pyfixest_fit(table, formula, cluster):
    pf = pytest.importorskip("pyfixest", reason="pyfixest is the test-extra peer for TWFE")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols(formula, data=table, vcov={"CRV1": cluster})
    return fit.coef(), fit.se()


def unbalanced(table, seed=1, share=0.15):
    rng = np.random.default_rng(seed)
    return table[rng.random(len(table)) > share].reset_index(drop=True)


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("cluster", ["unit", "region"])
def test_twfe_matches_pyfixest(balanced, cluster):
    table = staggered(effect=lambda g, e: 1.0 + 0.3 * e)
    table = table if balanced else unbalanced(table)
    panel = build_did_panel(
        table,
        unit="unit",
        time="t",
        outcome="y",
        treatment="d",
        cluster=cluster,
        covariates=["x"],
    )
    ours = did_twfe.twfe(panel)
    coef, se = pyfixest_fit(table, "y ~ d + x | unit + t", cluster)
    np.testing.assert_allclose(ours.coef, coef[["d", "x"]].to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.std_error, se[["d", "x"]].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("balanced", [True, False])
def test_event_study_matches_pyfixest(balanced):
    table = staggered(effect=lambda g, e: 0.5 * e)
    table = table if balanced else unbalanced(table)
    lead, lag = -4, 3
    e = np.clip(table["t"] - table["g"], lead, lag)
    names = []
    for k in range(lead, lag + 1):
        if k == -1:
            continue
        name = f"e_{k}".replace("-", "m")
        table[name] = ((table["g"] > 0) & (e == k)).astype(float)
        names.append(name)
    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    ours = did_twfe.event_study(panel, lead=lead, lag=lag)
    coef, se = pyfixest_fit(table, f"y ~ {' + '.join(names)} | unit + t", "unit")
    np.testing.assert_allclose(ours.fit.coef, coef[names].to_numpy(), atol=1e-8)
    np.testing.assert_allclose(ours.fit.std_error, se[names].to_numpy(), rtol=1e-6)


def test_fast_path_equals_general_path():
    table = staggered(effect=lambda g, e: 1.0 + 0.2 * e, seed=3)
    panel = build_did_panel(
        table, unit="unit", time="t", outcome="y", first_treated="g", cluster="region"
    )
    cohorts, index = did_twfe._cohort_index(panel)
    kept = (-5, -4, -3, -2, 0, 1, 2, 3, 4)
    regressors = did_twfe._event_regressors(cohorts, panel.n_periods, kept, -5, 4)
    names = tuple(map(str, kept))
    fast = did_twfe._fit_cohort_aggregates(panel, regressors, index, names)
    general = did_twfe._fit_general(panel, regressors, index, names, None)
    np.testing.assert_allclose(fast.coef, general.coef, atol=1e-10)
    np.testing.assert_allclose(fast.vcov, general.vcov, atol=1e-10, rtol=1e-9)


def test_event_study_recovers_homogeneous_path_and_passes_pretrends():
    # With one effect path shared by every cohort, TWFE event study is unbiased.
    estimates, covered = [], 0
    for seed in range(20):
        table = staggered(n_units=400, effect=lambda g, e: np.clip(e, 0, 3) * 0.5, seed=seed)
        panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
        es = did_twfe.event_study(panel, lead=-3, lag=3, covariates=False)
        tab = es.table().set_index("event_time")
        truth = np.clip(tab.index.to_numpy(), 0, 3) * 0.5
        # y has 0.5 * x in it; x is independent of treatment, so dropping it only adds noise
        covered += np.all((tab["conf_low"] <= truth + 1e-12) & (truth - 1e-12 <= tab["conf_high"]))
        estimates.append(tab.loc[3, "estimate"])
    assert abs(np.mean(estimates) - 1.5) < 0.05
    assert covered >= 14  # joint coverage of 7 pointwise intervals is below 95%


def test_pretrend_test_rejects_a_violation():
    table = staggered(n_units=400, seed=5)
    # treated cohorts trend upwards before treatment: parallel trends fail
    table["y"] += np.where(table["g"] > 0, 0.4 * table["t"], 0.0)
    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    es = did_twfe.event_study(panel, lead=-3, lag=2)
    assert es.pretrend_p < 1e-4
    clean = build_did_panel(
        staggered(n_units=400, seed=5), unit="unit", time="t", outcome="y", first_treated="g"
    )
    assert did_twfe.event_study(clean, lead=-3, lag=2).pretrend_p > 0.001


def test_twfe_is_biased_under_growing_staggered_effects_and_weights_explain_it():
    table = staggered(
        n_units=2000, cohorts=(3, 6, 9), never_share=0.05, effect=lambda g, e: 0.6 * e, seed=11
    )
    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    fit = did_twfe.twfe(panel, covariates=False)
    weights = did_twfe.twfe_cell_weights(panel)
    implied = float((weights["weight"] * 0.6 * weights["event_time"]).sum())
    cells = weights["n_units"] * 0.6 * weights["event_time"]
    true_att = float(cells.sum() / weights["n_units"].sum())
    assert fit.coef[0] < true_att - 5 * fit.std_error[0]  # clearly biased downwards
    assert abs(fit.coef[0] - implied) < 4 * fit.std_error[0]  # ...by exactly the weights
    assert (weights["weight"] < 0).any()


def test_did_2x2_is_the_textbook_difference():
    table = staggered(n_units=200, cohorts=(6,), effect=lambda g, e: 2.0, seed=2)
    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    fit, info = did_twfe.did_2x2(panel)
    table["post"] = table["t"] >= 6
    means = table.groupby([table["g"] > 0, "post"])["y"].mean()
    by_hand = (means[True, True] - means[True, False]) - (means[False, True] - means[False, False])
    assert fit.coef[0] == pytest.approx(by_hand, abs=1e-10)
    assert info["pre_periods"] == [1, 2, 3, 4, 5]
    collapsed = table.groupby(["unit", "post"], as_index=False)["y"].mean()
    collapsed["d"] = (
        (collapsed["unit"].map(table.groupby("unit")["g"].first()) > 0) & collapsed["post"]
    ).astype(float)
    collapsed["post"] = collapsed["post"].astype(int)
    _, se = pyfixest_fit(collapsed, "y ~ d | unit + post", "unit")
    assert fit.std_error[0] == pytest.approx(se["d"], rel=1e-6)


# --- bad input -----------------------------------------------------------------------------------


def test_treatment_switching_off_names_the_units():
    table = staggered(n_units=20, cohorts=(4,), seed=1)
    first_treated_unit = table.loc[table["d"] == 1, "unit"].iloc[0]
    table.loc[(table["unit"] == first_treated_unit) & (table["t"] == 8), "d"] = 0
    with pytest.raises(DataError, match=r"switches off again for 1 unit\(s\) \(unit: \d+\)"):
        build_did_panel(table, unit="unit", time="t", outcome="y", treatment="d")


def test_duplicate_rows_time_not_orderable_and_missing_outcome():
    table = staggered(n_units=10, seed=1)
    with pytest.raises(DataError, match=r"repeat a \(unit, t\) pair"):
        build_did_panel(
            pd.concat([table, table.head(1)]), unit="unit", time="t", outcome="y", first_treated="g"
        )
    words = table.assign(t=table["t"].map(lambda v: f"month {v}"))
    with pytest.raises(DataError, match="cannot be ordered"):
        build_did_panel(words, unit="unit", time="t", outcome="y", first_treated="g")
    holes = table.assign(y=table["y"].where(table.index != 7))
    with pytest.raises(DataError, match=r"missing or infinite values, first at unit=0, t=8"):
        build_did_panel(holes, unit="unit", time="t", outcome="y", first_treated="g")


def test_no_controls_and_single_unit_cohort():
    table = staggered(n_units=50, never_share=0.0, seed=4)
    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    with pytest.raises(DesignError, match="not_yet_treated"):
        check_controls(panel, "never_treated")
    check_controls(panel, "not_yet_treated")
    one = staggered(n_units=50, cohorts=(5,), seed=4)
    one.loc[one["unit"] == 0, "g"] = 8
    one_panel = build_did_panel(one, unit="unit", time="t", outcome="y", first_treated="g")
    with pytest.warns(UserWarning, match="first treated in 8 have a single unit"):
        check_controls(one_panel, "never_treated")
    same = staggered(n_units=50, cohorts=(5,), never_share=0.0, seed=4)
    same_panel = build_did_panel(same, unit="unit", time="t", outcome="y", first_treated="g")
    with pytest.raises(DesignError, match="no never-treated and no not-yet-treated"):
        check_controls(same_panel, "not_yet_treated")


def test_event_window_longer_than_data_and_cluster_inside_unit():
    table = staggered(n_units=60, seed=4)
    panel = build_did_panel(table, unit="unit", time="t", outcome="y", first_treated="g")
    with pytest.raises(DesignError, match=r"event time runs from -7 to 6"):
        did_twfe.event_study(panel, lead=-3, lag=12)
    table["wobbly"] = np.arange(len(table)) % 3
    with pytest.raises(DataError, match="changes within a unit"):
        build_did_panel(
            table, unit="unit", time="t", outcome="y", first_treated="g", cluster="wobbly"
        )
