"""Callaway & Sant'Anna staggered DiD: R did replication on mpdta, agreement with csdid, known
truth by simulation, fast path = general path, multiplier bootstrap, and clear errors."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from causal.designs import did_cs
from causal.designs.did_cs import MPDTA, _group_time_effects, group_time_effects
from causal.designs.did_cs_aggregate import aggregate, multiplier_bootstrap
from causal.designs.did_cs_panel import prepare_panel
from causal.errors import DataError, DesignError

COLS = dict(unit="countyreal", time="year", cohort="first.treat", outcome="lemp")
KINDS = ("simple", "group", "dynamic", "calendar")


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(MPDTA)


@pytest.fixture(scope="module")
def fx(mpdta) -> did_cs.GroupTimeEffects:
    return group_time_effects(mpdta, **COLS)


# --- 1. R did 2.5.0 on mpdta (published numbers; never tuned) ---------------------------------

R_DID = {  # aggte(att_gt(lemp ~ year | countyreal, gname = first.treat), type = ...)
    "simple": (-0.03995, 0.01203),
    "group": (-0.03102, 0.01245),
    "dynamic": (-0.07724, 0.01996),
    "calendar": (-0.04170, 0.01597),
}


@pytest.mark.parametrize("kind", KINDS)
def test_replicates_r_did_on_mpdta(fx, kind):
    agg = aggregate(fx, kind)
    estimate, se = R_DID[kind]
    assert agg.estimate == pytest.approx(estimate, abs=1e-4)
    assert agg.std_error == pytest.approx(se, abs=1e-4)


def test_replicates_r_did_not_yet_treated_and_covariate(mpdta):
    nyt = aggregate(group_time_effects(mpdta, control_group="not_yet_treated", **COLS), "simple")
    assert (nyt.estimate, nyt.std_error) == pytest.approx((-0.03976, 0.01205), abs=1e-4)
    dr = aggregate(group_time_effects(mpdta, covariates=["lpop"], **COLS), "simple")
    assert dr.estimate == pytest.approx(-0.04175, abs=1e-4)
    assert dr.std_error == pytest.approx(0.0115, abs=1e-3)


def test_group_time_table_layout(fx):
    tb = fx.table
    assert list(tb.columns[:10]) == [
        "group", "time", "event_time", "att", "std_error", "conf_low", "conf_high", "post",
        "n_treated", "n_control",
    ]  # fmt: skip
    assert len(tb) == 12 and tb["post"].sum() == 7
    assert fx.influence.shape == (500, 12) and fx.influence.dtype == np.float64
    assert (tb["n_treated"].tolist()[:4], tb["n_control"].iloc[0]) == ([20] * 4, 309)
    # the ATT(2004, 2004) row of R's summary: -0.0105 (0.0233)
    assert (tb["att"].iloc[0], tb["std_error"].iloc[0]) == pytest.approx(
        (-0.0105, 0.0233), abs=1e-4
    )
    se = np.sqrt((fx.influence**2).mean(axis=0) / fx.n_units)
    np.testing.assert_allclose(tb["std_error"], se, rtol=1e-12)
    assert sorted(fx.units.tolist()) == sorted(pd.read_csv(MPDTA)["countyreal"].unique().tolist())


# --- 2. agreement with csdid 0.4.3 ----------------------------------------------------------


def _csdid(df, *, cov, control, method, base="varying", anticipation=0):
    pytest.importorskip("csdid", reason="csdid is the test-extra peer (pip install csdid)")
    from csdid.att_gt import ATTgt

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ATTgt(
            yname="lemp", gname="first.treat", idname="countyreal", tname="year", data=df,
            xformla=None if cov is None else f"lemp~{cov}", anticipation=anticipation,
            control_group={"never_treated": "nevertreated", "not_yet_treated": "notyettreated"}[
                control
            ],
        ).fit(est_method=method, bstrap=False, base_period=base)  # fmt: skip


def _csdid_aggte(model, kind, **kw):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.aggte(typec=kind, bstrap=False, **kw)
    return model.atte


@pytest.mark.parametrize("cov", [None, "lpop"])
@pytest.mark.parametrize("control", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_agrees_with_csdid(mpdta, cov, control, method):
    peer = _csdid(mpdta, cov=cov, control=control, method=method)
    ours = group_time_effects(
        mpdta, covariates=() if cov is None else [cov], control_group=control, method=method,
        **COLS,
    )  # fmt: skip
    tb = ours.table
    np.testing.assert_array_equal(tb["group"], peer.results["group"])
    np.testing.assert_array_equal(tb["time"], peer.results["year"])
    np.testing.assert_allclose(tb["att"], peer.results["att"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(tb["std_error"], peer.results["se"], rtol=0, atol=1e-8)
    for kind in KINDS:
        theirs, agg = _csdid_aggte(peer, kind), aggregate(ours, kind)
        assert agg.estimate == pytest.approx(theirs["overall_att"], abs=1e-8)
        assert agg.std_error == pytest.approx(theirs["overall_se"], abs=1e-8)
        if kind != "simple":
            np.testing.assert_allclose(agg.table["level"], theirs["egt"])
            np.testing.assert_allclose(agg.table["estimate"], theirs["att_egt"], atol=1e-8)
            np.testing.assert_allclose(agg.table["std_error"], theirs["se_egt"], atol=1e-8)


@pytest.mark.parametrize(
    ("base", "anticipation", "kw"),
    [
        ("universal", 0, dict(min_e=-2, max_e=2)),
        ("varying", 1, dict(balance_e=1)),
        ("universal", 1, dict(max_e=1)),
    ],
)
def test_agrees_with_csdid_options(mpdta, base, anticipation, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anticipation 1 drops the 2004 cohort, as in R
        ours = group_time_effects(
            mpdta, covariates=["lpop"], base_period=base, anticipation=anticipation, **COLS
        )
    peer = _csdid(mpdta, cov="lpop", control="never_treated", method="dr", base=base,
                  anticipation=anticipation)  # fmt: skip
    np.testing.assert_allclose(ours.table["att"], peer.results["att"], atol=1e-8)
    np.testing.assert_allclose(ours.table["std_error"], peer.results["se"], atol=1e-8)
    for kind in ("simple", "group", "dynamic"):
        theirs, agg = _csdid_aggte(peer, kind, **kw), aggregate(ours, kind, **kw)
        assert (agg.estimate, agg.std_error) == pytest.approx(
            (theirs["overall_att"], theirs["overall_se"]), abs=1e-8
        )


def test_agrees_with_csdid_without_never_treated(mpdta):
    df = mpdta[mpdta["first.treat"] > 0]
    with pytest.warns(UserWarning, match="no never-treated units"):
        ours = group_time_effects(df, control_group="not_yet_treated", **COLS)
    peer = _csdid(df, cov=None, control="not_yet_treated", method="dr")
    np.testing.assert_allclose(ours.table["att"], peer.results["att"], atol=1e-8)
    np.testing.assert_allclose(ours.table["std_error"], peer.results["se"], atol=1e-8)
    # as R: periods from 2007 (the last cohort's start) on are dropped, 2007 is only a control
    assert set(ours.table["group"]) == {2004, 2006} and ours.table["time"].max() == 2006


# --- 3. known truth by simulation ------------------------------------------------------------

COHORTS = np.array([0, 4, 5, 6])


def _effect(g, e):
    """True ATT of cohort g at event time e ≥ 0: growing with e, larger for later cohorts."""
    return np.where(e >= 0, (0.5 + 0.3 * e) * (1 + 0.5 * (g - 4)), 0.0)


def _simulate(rng, *, n=400, periods=7, effects=True):
    g = rng.choice(COHORTS, size=n, p=[0.4, 0.2, 0.2, 0.2])
    t = np.arange(1, periods + 1)
    unit_fe = rng.normal(size=n) + 0.5 * g  # cohorts differ in levels, not in trends
    y = unit_fe[:, None] + 0.2 * t + rng.normal(size=(n, periods))
    treated = g[:, None] > 0
    e = t - g[:, None]
    if effects:
        y = y + np.where(treated, _effect(g[:, None], e), 0.0)
    df = pd.DataFrame(
        {"id": np.repeat(np.arange(n), periods), "t": np.tile(t, n),
         "g": np.repeat(g, periods), "y": y.ravel()}
    )  # fmt: skip
    return df, g


def _true_dynamic(g, eseq, periods=7):
    """Cohort-share-weighted mean of the true effects over cohorts observed at event time e."""
    out = []
    for e in eseq:
        cohorts = [c for c in COHORTS[1:] if 2 <= c + e <= periods]  # cells exist from t = 2
        shares = np.array([(g == c).mean() for c in cohorts])
        out.append(float(np.sum(shares * _effect(np.array(cohorts), e)) / shares.sum()))
    return np.array(out)


def test_dynamic_effects_cover_truth():
    rng = np.random.default_rng(20210601)
    df, g = _simulate(rng)
    res = aggregate(group_time_effects(df, unit="id", time="t", cohort="g", outcome="y"), "dynamic")
    tb = res.table
    truth = _true_dynamic(g, tb["level"].to_numpy())
    z = (tb["estimate"] - truth) / tb["std_error"]
    assert np.all(np.abs(z) < 4), z.tolist()
    post = tb["level"] >= 0
    assert truth[post].min() > 0.4  # the effects are real and the estimates see them
    assert np.all(tb["conf_low"][post] > 0)
    # coverage of the pointwise 95% intervals of every event time over repeated panels
    hits = []
    for _ in range(60):
        df, g = _simulate(rng, n=300)
        tb = aggregate(group_time_effects(df, unit="id", time="t", cohort="g", outcome="y"),
                       "dynamic").table  # fmt: skip
        truth = _true_dynamic(g, tb["level"].to_numpy())
        hits.extend(((tb["conf_low"] <= truth) & (truth <= tb["conf_high"])).tolist())
    assert 0.90 <= np.mean(hits) <= 0.99, np.mean(hits)


def test_no_effect_panel_is_consistent_with_zero():
    df, _ = _simulate(np.random.default_rng(7), effects=False)
    fx0 = group_time_effects(df, unit="id", time="t", cohort="g", outcome="y")
    assert np.all(np.abs(fx0.table["att"] / fx0.table["std_error"]) < 3.5)
    for kind in KINDS:
        agg = aggregate(fx0, kind)
        assert abs(agg.estimate / agg.std_error) < 3 and agg.p_value > 0.003
    tb = aggregate(fx0, "dynamic").table
    assert np.all(np.abs(tb["estimate"] / tb["std_error"]) < 3.5)


# --- 4. fast path = DRDID estimators with an intercept-only design ---------------------------


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize("control", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("base", ["varying", "universal"])
def test_fast_path_equals_general_path(mpdta, method, control, base):
    opts = dict(method=method, control_group=control, base_period=base, **COLS)
    fast = _group_time_effects(mpdta, **opts)
    general = _group_time_effects(mpdta, force_general=True, **opts)
    for col in ("att", "std_error"):
        np.testing.assert_allclose(fast.table[col], general.table[col], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.influence, general.influence, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fast.units, general.units)


def test_universal_base_cell_is_zero(mpdta):
    tb = group_time_effects(mpdta, base_period="universal", **COLS).table
    base = tb[tb["time"] == tb["group"] - 1]
    assert len(base) == 3 and (base["att"] == 0).all() and base["std_error"].isna().all()


def test_unbalanced_units_are_dropped_with_a_warning(mpdta):
    short = mpdta.drop(mpdta.index[(mpdta["countyreal"].isin([8001, 8019])) & (mpdta.year == 2005)])
    with pytest.warns(UserWarning, match="dropped 2 of 500 units"):
        dropped = group_time_effects(short, **COLS)
    balanced = group_time_effects(mpdta[~mpdta["countyreal"].isin([8001, 8019])], **COLS)
    np.testing.assert_allclose(dropped.table["att"], balanced.table["att"], atol=1e-14)
    shuffled = mpdta.sample(frac=1, random_state=3)  # row order does not matter
    np.testing.assert_allclose(
        group_time_effects(shuffled, **COLS).table["att"],
        group_time_effects(mpdta, **COLS).table["att"],
        atol=1e-14,
    )


# --- 5. multiplier bootstrap -----------------------------------------------------------------


def test_bootstrap_is_reproducible_and_close_to_analytic(fx):
    analytic = aggregate(fx, "dynamic")
    boot = aggregate(fx, "dynamic", n_boot=999, seed=11)
    again = aggregate(fx, "dynamic", n_boot=999, seed=11)
    other = aggregate(fx, "dynamic", n_boot=999, seed=12)
    pd.testing.assert_frame_equal(boot.table, again.table)
    assert boot.critical_value == again.critical_value
    assert not np.allclose(boot.table["std_error"], other.table["std_error"], rtol=1e-12)
    ratio = boot.table["std_error"] / analytic.table["std_error"]
    assert np.all(np.abs(ratio - 1) < 0.10), ratio.tolist()
    assert abs(boot.std_error / analytic.std_error - 1) < 0.10
    assert 1.96 < boot.critical_value < 4
    band = boot.table["band_high"] - boot.table["band_low"]
    pointwise = boot.table["conf_high"] - boot.table["conf_low"]
    assert np.all(band > pointwise)
    assert np.isnan(analytic.critical_value) and analytic.table["band_low"].isna().all()


def test_multiplier_bootstrap_weights():
    inf = np.random.default_rng(0).normal(size=(2000, 2)) * [1.0, 3.0]
    for weights in ("mammen", "rademacher"):
        se, crit = multiplier_bootstrap(inf, n_boot=999, seed=1, weights=weights)
        np.testing.assert_allclose(se, inf.std(axis=0) / np.sqrt(2000), rtol=0.1)
        assert 1.96 < crit < 2.6  # sup over two independent t-statistics at 95%
    a = multiplier_bootstrap(inf[:, 0], n_boot=50, seed=5)
    assert a == multiplier_bootstrap(inf[:, 0], n_boot=50, seed=5)


# --- 6. clear errors -------------------------------------------------------------------------


def test_no_never_treated_units_suggests_not_yet_treated(mpdta):
    with pytest.raises(DesignError, match="not_yet_treated"):
        group_time_effects(mpdta[mpdta["first.treat"] > 0], **COLS)


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (dict(method="ols"), "unknown method 'ols'"),
        (dict(control_group="never"), "unknown control_group"),
        (dict(base_period="fixed"), "unknown base_period"),
        (dict(anticipation=-1), "anticipation"),
    ],
)
def test_unknown_options(mpdta, option, match):
    with pytest.raises(DesignError, match=match):
        group_time_effects(mpdta, **{**COLS, **option})
    with pytest.raises(DesignError, match="unknown aggregation"):
        aggregate(group_time_effects(mpdta, **COLS), "cohort")


def test_covariate_with_missing_values_is_named(mpdta):
    df = mpdta.assign(lpop=mpdta["lpop"].mask(mpdta.index == 7))
    with pytest.raises(DesignError, match="covariate 'lpop' has 1 missing"):
        group_time_effects(df, covariates=["lpop"], **COLS)


def test_overlap_failure_is_an_error(mpdta):
    # a covariate that is 1 exactly for the 2004 cohort separates it from every comparison unit
    df = mpdta.assign(flag=(mpdta["first.treat"] == 2004).astype(float))
    with pytest.raises(DesignError, match="overlap fails for cohort 2004"):
        group_time_effects(df, covariates=["flag"], method="dr", **COLS)
    with pytest.raises(DesignError, match="overlap fails for cohort 2004"):
        group_time_effects(df, covariates=["flag"], method="ipw", **COLS)


def test_singular_covariates_are_an_error(mpdta):
    df = mpdta.assign(one=1.0)
    with pytest.raises(DesignError, match=r"covariates \['one'\]; drop constant or collinear"):
        group_time_effects(df, covariates=["one"], method="reg", **COLS)


def test_bad_panels_are_data_errors(mpdta):
    with pytest.raises(DataError, match="has 2 rows in period 2003"):
        group_time_effects(pd.concat([mpdta, mpdta.iloc[:1]]), **COLS)
    varying = mpdta.assign(**{"first.treat": mpdta["first.treat"].where(mpdta.index != 1, 2006)})
    with pytest.raises(DataError, match="changes over time for unit 8001"):
        group_time_effects(varying, **COLS)
    with pytest.raises(DataError, match="no column"):
        group_time_effects(mpdta, **{**COLS, "outcome": "employment"})
    holes = mpdta[mpdta["year"] != 2003 + mpdta["countyreal"] % 5]  # every unit misses a year
    with (
        pytest.warns(UserWarning, match="dropped 500 of 500"),
        pytest.raises(DesignError, match="balanced panel is empty"),
    ):
        group_time_effects(holes, **COLS)


def test_cell_without_comparison_units_is_an_error(mpdta):
    w = prepare_panel(mpdta, covariates=(), control_group="never_treated", anticipation=0, **COLS)
    no_never = did_cs.WidePanel(**{**w.__dict__, "levels": w.levels + 1})  # no level is 0
    with pytest.raises(DesignError, match="no comparison units for cohort"):
        did_cs._plan(no_never, "never_treated", "varying", 0)
