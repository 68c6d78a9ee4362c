"""A/B estimators and checks: agreement with statsmodels, known values, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.weightstats import CompareMeans

from causal.data.dataset import validate_table
from causal.designs import abtest
from causal.designs.registry import ESTIMATORS
from causal.errors import DesignError


def make_pilot(n=2000, *, effect=1.0, seed=0, binary=False, missing_x=0.0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(10, 3, n)
    x2 = rng.exponential(2, n)
    d = rng.permutation(np.repeat([0, 1], [n // 2, n - n // 2]))
    noise = rng.normal(0, 2 + d, n)  # unequal variances: Welch and HC2 matter
    y = 5 + 0.8 * x1 + 0.5 * x2 + effect * d + 0.3 * d * (x1 - 10) + noise
    if binary:
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(y - 13) / 3))).astype(float)
    x1 = np.where(rng.uniform(size=n) < missing_x, np.nan, x1)
    table = pd.DataFrame(
        {
            "id": np.arange(n),
            "d": d,
            "y": y,
            "x1": x1,
            "x2": x2,
            "seg": rng.choice(["a", "b", "c"], n),
        }
    )
    kind = "binary" if binary else "continuous"
    return validate_table(
        table,
        unit="id",
        treatment="d",
        outcomes={"y": kind},
        covariates=("x1", "x2"),
        segments=("seg",),
    )


def test_registry_names_match_the_spec_registry():
    assert tuple(abtest.ESTIMATORS) == ESTIMATORS["ab_test"]


def test_difference_in_means_matches_statsmodels_welch():
    ds = make_pilot()
    t = ds.table
    cm = CompareMeans.from_data(t.y[t.d == 1], t.y[t.d == 0])
    _, p, df = cm.ttest_ind(usevar="unequal")
    lo, hi = cm.tconfint_diff(usevar="unequal")
    r = abtest.difference_in_means(ds, "y")
    assert r.estimate == pytest.approx(t.y[t.d == 1].mean() - t.y[t.d == 0].mean(), rel=1e-12)
    assert r.std_error == pytest.approx(cm.std_meandiff_separatevar, rel=1e-10)
    assert r.details["df"] == pytest.approx(df, rel=1e-10)
    assert (r.conf_low, r.conf_high) == pytest.approx((lo, hi), rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-8)


def test_lin_matches_statsmodels_interacted_formula_hc2():
    ds = make_pilot()
    t = ds.table.assign(x1c=lambda f: f.x1 - f.x1.mean(), x2c=lambda f: f.x2 - f.x2.mean())
    peer = smf.ols("y ~ d * (x1c + x2c)", data=t).fit(cov_type="HC2")
    r = abtest.lin(ds, "y")
    assert r.estimate == pytest.approx(peer.params["d"], rel=1e-10)
    assert r.std_error == pytest.approx(peer.bse["d"], rel=1e-8)
    assert r.details["df"] == peer.df_resid


def test_lin_hc2_against_textbook_formula():
    # Independent of statsmodels: HC2 = (X'X)^-1 X' diag(e^2 / (1 - h)) X (X'X)^-1.
    ds = make_pilot(n=500, seed=3)
    t = ds.table
    xc = t[["x1", "x2"]].to_numpy() - t[["x1", "x2"]].to_numpy().mean(axis=0)
    d = t.d.to_numpy(float)
    X = np.column_stack([np.ones(len(t)), d, xc, xc * d[:, None]])
    bread = np.linalg.inv(X.T @ X)
    beta = bread @ X.T @ t.y.to_numpy()
    e = t.y.to_numpy() - X @ beta
    h = np.einsum("ij,jk,ik->i", X, bread, X)
    cov = bread @ (X.T * (e**2 / (1 - h))) @ X @ bread
    r = abtest.lin(ds, "y")
    assert r.estimate == pytest.approx(beta[1], rel=1e-10)
    assert r.std_error == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-8)


def test_cuped_single_covariate_theta_and_narrower_interval():
    ds = make_pilot(seed=4)
    t = ds.table
    r = abtest.cuped(ds, "y")
    dim = abtest.difference_in_means(ds, "y")
    assert r.std_error < 0.8 * dim.std_error
    assert 0 < r.details["variance_reduction"] < 1
    # With one covariate theta is cov(y, x) / var(x) on the pooled sample (Deng et al. 2013).
    one = validate_table(
        t[["id", "d", "y", "x1"]],
        unit="id",
        treatment="d",
        outcomes={"y": "continuous"},
        covariates=("x1",),
    )
    theta = np.cov(t.y, t.x1)[0, 1] / np.var(t.x1, ddof=1)
    assert abtest.cuped(one, "y").details["theta"]["x1"] == pytest.approx(theta, rel=1e-10)


def test_binary_outcome_difference_matches_unpooled_wald_interval():
    ds = make_pilot(binary=True, n=4000, seed=5)
    t = ds.table
    r = abtest.difference_in_means(ds, "y")
    p1, p0 = t.y[t.d == 1].mean(), t.y[t.d == 0].mean()
    n1, n0 = (t.d == 1).sum(), (t.d == 0).sum()
    # Welch on 0/1 data uses the ddof=1 variance p(1-p) n/(n-1).
    se = np.sqrt(p1 * (1 - p1) / (n1 - 1) + p0 * (1 - p0) / (n0 - 1))
    assert r.estimate == pytest.approx(p1 - p0, rel=1e-12)
    assert r.std_error == pytest.approx(se, rel=1e-10)


def test_relative_lift_delta_se_agrees_with_bootstrap():
    ds = make_pilot(n=4000, seed=6)
    t = ds.table
    r = abtest.relative_lift(ds, "y")
    y1, y0 = t.y[t.d == 1].to_numpy(), t.y[t.d == 0].to_numpy()
    assert r.estimate == pytest.approx(y1.mean() / y0.mean() - 1, rel=1e-12)
    rng = np.random.default_rng(0)
    boot = [
        rng.choice(y1, len(y1)).mean() / rng.choice(y0, len(y0)).mean() - 1 for _ in range(2000)
    ]
    assert r.std_error == pytest.approx(np.std(boot, ddof=1), rel=0.08)


def test_relative_lift_with_zero_control_mean_is_a_design_error():
    t = pd.DataFrame({"id": range(6), "d": [0, 0, 0, 1, 1, 1], "y": [0.0, 0, 0, 1, 2, 3]})
    ds = validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"})
    with pytest.raises(DesignError, match="control mean is 0"):
        abtest.relative_lift(ds, "y")


def test_missing_outcomes_dropped_and_missing_covariates_get_an_indicator():
    ds = make_pilot(missing_x=0.1, seed=7)
    r = abtest.lin(ds, "y")
    assert "x1_missing" in r.details["covariates"]
    t = ds.table.copy()
    t.loc[:9, "y"] = np.nan
    ds2 = validate_table(
        t, unit="id", treatment="d", outcomes={"y": "continuous"}, covariates=("x1", "x2")
    )
    assert abtest.difference_in_means(ds2, "y").n_units == len(t) - 10
    assert abtest.difference_in_means(ds2, "y").details["n_missing_outcome"] == 10


def test_adjusted_estimators_need_covariates():
    t = pd.DataFrame({"id": range(6), "d": [0, 0, 0, 1, 1, 1], "y": [1.0, 2, 3, 2, 4, 6]})
    ds = validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"})
    with pytest.raises(DesignError, match="covariates"):
        abtest.lin(ds, "y")


def test_unknown_estimator_lists_known_ones():
    with pytest.raises(DesignError, match="known: difference_in_means"):
        abtest.estimate("diff", make_pilot(n=20), "y")


@pytest.mark.parametrize(
    ("treated", "control", "status"),
    [(10_400, 9_600, "fail"), (10_000, 10_000, "pass"), (10_060, 9_940, "pass")],
)
def test_sample_ratio_check_flags_52_48_on_20000(treated, control, status):
    check = abtest.sample_ratio_check(treated, control, planned_share=0.5, alpha=0.001)
    assert check.status == status


def test_sample_ratio_chi_square_value():
    check = abtest.sample_ratio_check(10_400, 9_600, planned_share=0.5)
    assert "chi² = 32.00" in check.detail  # 2 * 400² / 10,000


def test_sample_ratio_against_unequal_plan():
    assert abtest.sample_ratio_check(2000, 8000, planned_share=0.2).status == "pass"
    assert abtest.sample_ratio_check(2000, 8000, planned_share=0.5).status == "fail"


def test_balance_check_standardised_mean_difference():
    t = pd.DataFrame(
        {
            "id": range(8),
            "d": [0, 0, 0, 0, 1, 1, 1, 1],
            "x": [0.0, 1, 0, 1, 1, 2, 1, 2],
            "y": [1.0] * 8,
        }
    )
    ds = validate_table(
        t, unit="id", treatment="d", outcomes={"y": "continuous"}, covariates=("x",)
    )
    check = abtest.balance_check(ds, threshold=0.1)
    # means 0.5 vs 1.5, both variances 1/3: SMD = 1 / sqrt(1/3)
    assert check.table[0]["smd"] == pytest.approx(np.sqrt(3))
    assert check.status == "warn"
    assert abtest.balance_check(make_pilot(n=20_000)).status == "pass"


def test_segment_effects_holm_and_within_segment_estimates():
    ds = make_pilot(n=3000, seed=8)
    segs = abtest.segment_effects(ds, "y")
    assert [s.details["level"] for s in segs] == ["a", "b", "c"]
    raw = sorted(s.p_value for s in segs)
    holm = sorted(s.details["p_value_holm"] for s in segs)
    # Holm: the smallest p times 3, then max-accumulated, capped at 1.
    assert holm[0] == pytest.approx(min(1.0, 3 * raw[0]))
    assert all(h >= p for h, p in zip(holm, raw, strict=True))
    t = ds.table[ds.table.seg == "b"]
    direct = t.y[t.d == 1].mean() - t.y[t.d == 0].mean()
    assert segs[1].estimate == pytest.approx(direct, rel=1e-12)


def test_power_row_matches_statsmodels_normal_power():
    sigma, n = 2.0, 500
    r = abtest.Result(
        "difference_in_means",
        "ATE",
        "y",
        0.0,
        sigma * np.sqrt(2 / n),
        -1,
        1,
        1.0,
        2 * n,
        n,
        details={"control_mean": 10.0},
    )
    effect = NormalIndPower().solve_power(nobs1=n, alpha=0.05, power=0.8, ratio=1.0)
    assert abtest.power_row(r)["mde"] == pytest.approx(effect * sigma, rel=1e-6)


def test_fast_calibration_difference_in_means_and_lin_cover_the_true_effect():
    # 400 pilots with a known ATE of 1.0 (heterogeneous effect with mean 1 because x1 is
    # centred at its population mean 10): coverage must sit near 95% (binomial sd 1.1%).
    covered = {"difference_in_means": 0, "lin": 0, "cuped": 0}
    reps = 400
    for seed in range(reps):
        ds = make_pilot(n=300, seed=1000 + seed)
        for name in covered:
            r = abtest.estimate(name, ds, "y")
            covered[name] += r.conf_low <= 1.0 <= r.conf_high
    for name, hits in covered.items():
        assert 0.92 <= hits / reps <= 0.98, (name, hits / reps)


@pytest.mark.parametrize("cov_type", ["HC1", "HC2", "HC3"])
def test_ols_robust_matches_statsmodels(cov_type):
    import statsmodels.api as sm

    from causal.inference import ols_robust

    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(300), rng.normal(size=(300, 3))])
    y = X @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=300) * (1 + np.abs(X[:, 1]))
    ours = ols_robust(y, X, names=("a", "b", "c", "d"), cov_type=cov_type)
    peer = sm.OLS(y, X).fit(cov_type=cov_type)
    np.testing.assert_allclose(ours.params, peer.params, rtol=1e-10)
    np.testing.assert_allclose(ours.cov, peer.cov_params(), rtol=1e-8)
    assert ours.df_resid == peer.df_resid
