"""Sensitivity to unmeasured confounding, against published numbers and peers.

* Cinelli & Hazlett (2020), JRSS-B 82(1), section 5: the Darfur example, as printed in the paper
  and by R ``sensemakr`` (its README ``summary()`` output, and its test suite's 15-digit bounds).
* PySensemakr 0.0.8 (``sensemakr``) on Darfur and on simulated data, to 1e-8.
* VanderWeele & Ding (2017) E-values; statsmodels for the risk-ratio delta method.
* The omitted-variable-bias identity on simulated data with a known confounder, checked against
  the long regression fitted by statsmodels.
"""

from __future__ import annotations

import filecmp
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from threadpoolctl import threadpool_limits

from causal.errors import DesignError
from causal.inference.evalue import e_value, risk_ratio_from_difference, risk_ratio_from_means
from causal.inference.sensitivity import (
    adjusted_estimate,
    contour_grid,
    omitted_variable_bias,
    robustness_value,
    sensitivity_stats,
)

smkr = pytest.importorskip("sensemakr", reason="PySensemakr is in the test extra")

DARFUR = Path(__file__).resolve().parents[1] / "causal" / "data" / "datasets" / "darfur.csv"
COVARIATES = ["age", "farmer_dar", "herder_dar", "pastvoted", "hhsize_darfur", "female"]
TREATMENT = "directlyharmed"
BOUND_COLUMNS = (
    "r2dz_x", "r2yz_dx", "adjusted_estimate", "adjusted_se", "adjusted_t", "adjusted_lower",
    "adjusted_upper",
)  # fmt: skip


def _table(res):
    return [tuple(getattr(b, c) for c in BOUND_COLUMNS) for b in res.bounds]


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    # The Darfur design is 1,276 × 494; on a small, busy machine multi-threaded OpenBLAS spends
    # seconds spinning on its QR/SVD, a single thread a few hundredths of a second.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def darfur():
    data = pd.read_csv(DARFUR)
    X = pd.get_dummies(
        data[[*COVARIATES, "village"]], columns=["village"], drop_first=True, dtype=float
    )
    res = omitted_variable_bias(
        data.peacefactor,
        data[TREATMENT],
        X,
        names=list(X.columns),
        treatment_name=TREATMENT,
        benchmarks=["female"],
        kd=[1, 2, 3],
    )
    return data, X, res


def test_vendored_darfur_is_the_pysensemakr_file():
    packaged = Path(smkr.__file__).parent / "data" / "darfur.csv"
    assert filecmp.cmp(DARFUR, packaged, shallow=False)


def test_darfur_replicates_cinelli_hazlett_2020(darfur):
    # The paper's Table (section 5) and sensemakr's minimal report: 0.097 (0.023), t 4.18,
    # R²_{Y~D|X} 2.2%, RV_{q=1} 13.9%, RV_{q=1,α=0.05} 7.6%, df 783.
    _, _, res = darfur
    assert res.dof == 783
    assert (round(res.estimate, 3), round(res.se, 3), round(res.t_value, 2)) == (0.097, 0.023, 4.18)
    assert round(100 * res.r2yd_x, 1) == 2.2
    assert (round(100 * res.rv_q, 1), round(100 * res.rv_qa, 1)) == (13.9, 7.6)
    # Bounds 1x, 2x, 3x female: R²_{D~Z|X} 0.9/1.8/2.7%, R²_{Y~Z|D,X} 12.5/24.9/37.4%, adjusted
    # estimates 0.075/0.053/0.030 (R prints 0.0529 for 2x, which is 0.053, not 0.052).
    assert [b.label for b in res.bounds] == ["1x female", "2x female", "3x female"]
    assert [round(100 * b.r2dz_x, 1) for b in res.bounds] == [0.9, 1.8, 2.7]
    assert [round(100 * b.r2yz_dx, 1) for b in res.bounds] == [12.5, 24.9, 37.4]
    assert [round(b.adjusted_estimate, 3) for b in res.bounds] == [0.075, 0.053, 0.030]


def test_darfur_matches_r_sensemakr_output(darfur):
    _, _, res = darfur
    # R sensemakr README, summary(sensemakr(model, "directlyharmed", "female", kd = 1:3)).
    assert round(res.estimate, 5) == 0.09732 and round(res.se, 5) == 0.02326
    assert round(res.t_value, 5) == 4.18445
    stats_5 = (round(res.r2yd_x, 5), round(res.rv_q, 5), round(res.rv_qa, 5))
    assert stats_5 == (0.02187, 0.13878, 0.07626)
    printed = [  # R2dz.x, R2yz.dx, estimate, se, t, lower CI, upper CI
        (0.0092, 0.1246, 0.0752, 0.0219, 3.4389, 0.0323, 0.1182),
        (0.0183, 0.2493, 0.0529, 0.0204, 2.6002, 0.0130, 0.0929),
        (0.0275, 0.3741, 0.0304, 0.0187, 1.6281, -0.0063, 0.0670),
    ]
    assert [tuple(round(v, 4) for v in row) for row in _table(res)] == printed
    # R sensemakr tests/testthat (test-13-darfur-fixest.R, test bounds), 15 significant digits.
    r_bounds = {
        "r2dz_x": [0.00916428667504862, 0.0183285733500972, 0.0274928600251459],
        "r2yz_dx": [0.12464092303637, 0.249324064199975, 0.374050471038094],
        "adjusted_estimate": [0.0752202712144491, 0.0529151723844518, 0.0303960234641548],
        "adjusted_se": [0.0218733277437572, 0.0203500620779637, 0.0186700648170924],
        "adjusted_t": [3.43890386024675, 2.60024623913809, 1.62806202131271],
    }
    for field, values in r_bounds.items():
        assert [getattr(b, field) for b in res.bounds] == pytest.approx(values, rel=1e-9), field
    assert (res.bounds[0].adjusted_lower, res.bounds[0].adjusted_upper) == pytest.approx(
        (0.0322829657274445, 0.118157576701454), rel=1e-9
    )


def _peer(y, d, X: pd.DataFrame, benchmarks, kd, ky, *, reduce=True, alpha=0.05):
    """PySensemakr on statsmodels fits.

    PySensemakr 0.0.8's model-based ``ovb_bounds``/``partial_r2(model=...)`` index a Series
    positionally (``[0]``), a KeyError under pandas 3 with named coefficients, so the bounds
    go through its numeric entry points with the t-values of statsmodels' two regressions (the
    regressions sensemakr itself would run).
    """
    outcome = sm.OLS(np.asarray(y), sm.add_constant(pd.concat([d, X], axis=1))).fit()
    treat = sm.OLS(np.asarray(d), sm.add_constant(X)).fit()
    st = smkr.sensitivity_stats(model=outcome, treatment=d.name, alpha=alpha)
    est, se, dof = float(st["estimate"]), float(st["se"]), int(st["dof"])
    rows = []
    for name in benchmarks:
        r2dxj = float(smkr.partial_r2(t_statistic=treat.tvalues[name], dof=treat.df_resid))
        r2yxj = float(smkr.partial_r2(t_statistic=outcome.tvalues[name], dof=outcome.df_resid))
        b = smkr.ovb_partial_r2_bound(r2dxj_x=r2dxj, r2yxj_dx=r2yxj, kd=kd, ky=ky)
        kw = {"r2dz_x": b.r2dz_x.to_numpy(), "r2yz_dx": b.r2yz_dx.to_numpy(), "se": se, "dof": dof}
        a_est = smkr.adjusted_estimate(estimate=est, reduce=reduce, **kw)
        a_se = smkr.adjusted_se(**kw)
        crit = abs(stats.t.ppf(alpha / 2, dof))  # as in sensemakr's ovb_bounds
        rows += zip(
            b.r2dz_x,
            b.r2yz_dx,
            a_est,
            a_se,
            smkr.adjusted_t(estimate=est, reduce=reduce, **kw),
            a_est - crit * a_se,
            a_est + crit * a_se,
            strict=True,
        )
    return st, rows


def _assert_agrees(res, st, rows):
    ours = (res.estimate, res.se, res.r2yd_x, res.rv_q, res.rv_qa, res.dof)
    theirs = (st["estimate"], st["se"], st["r2yd_x"], st["rv_q"], st["rv_qa"], st["dof"])
    assert ours == pytest.approx(theirs, rel=1e-8)
    assert np.allclose(_table(res), rows, rtol=1e-8, atol=1e-12)


def test_darfur_agrees_with_pysensemakr(darfur):
    data, X, res = darfur
    st, rows = _peer(data.peacefactor, data[TREATMENT], X, ["female"], [1, 2, 3], [1, 2, 3])
    _assert_agrees(res, st, rows)


def _simulated(seed=7, n=400):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x1", "x2", "x3", "x4"])
    d = pd.Series(X @ [0.6, -0.3, 0.2, 0.0] + rng.normal(size=n), name="d")
    y = 0.4 * d + X @ [0.5, 0.1, -0.8, 0.3] + rng.normal(scale=1.5, size=n)
    return y, d, X


@pytest.mark.parametrize("reduce", [True, False])
def test_simulated_agrees_with_pysensemakr(reduce):
    y, d, X = _simulated()
    kd, ky = [1.0, 2.0, 0.5], [1.5, 0.5, 1.0]
    res = omitted_variable_bias(
        y,
        d,
        X,
        names=list(X.columns),
        treatment_name="d",
        benchmarks=["x1", "x3"],
        kd=kd,
        ky=ky,
        reduce=reduce,
        alpha=0.1,
        q=0.5,
    )
    st, rows = _peer(y, d, X, ["x1", "x3"], kd, ky, reduce=reduce, alpha=0.1)
    peer_rv_q = smkr.robustness_value(t_statistic=res.t_value, dof=res.dof, q=0.5)
    assert res.rv_q == pytest.approx(float(peer_rv_q[0]), rel=1e-10)
    peer_rv_qa = smkr.robustness_value(t_statistic=res.t_value, dof=res.dof, q=0.5, alpha=0.1)
    assert res.rv_qa == pytest.approx(float(peer_rv_qa[0]), rel=1e-10)
    st = {**st, "rv_q": res.rv_q, "rv_qa": res.rv_qa}  # the peer's stats were at q = 1
    _assert_agrees(res, st, rows)
    assert [b.label for b in res.bounds][:2] == ["1/1.5x x1", "2/0.5x x1"]


def test_capped_bound_agrees_with_pysensemakr():
    # 0.5/3x x3 implies R²_{Y~Z|D,X} > 1: both cap it at 1 (adjusted SE 0, t infinite) and warn.
    y, d, X = _simulated()
    with pytest.warns(UserWarning, match=r"0.5/3x x3: implied R²\(Y~Z\|D,X\) > 1"):
        res = omitted_variable_bias(
            y, d, X, names=list(X.columns), treatment_name="d", benchmarks=["x3"], kd=0.5, ky=3
        )
    with np.errstate(divide="ignore"):
        # Lists: with scalar kd PySensemakr's capping assigns into a numpy scalar (TypeError).
        st, rows = _peer(y, d, X, ["x3"], [0.5], [3.0])
    assert res.bounds[0].r2yz_dx == 1.0 and math.isinf(res.bounds[0].adjusted_t)
    _assert_agrees(res, st, rows)


def test_robustness_value_binding_constraint_agrees_with_pysensemakr():
    # Large t: f_q > 1/f_crit, the branch where R²_{Y~Z|D,X} ≤ 1 binds.
    for t, dof in [(40.0, 50), (4.18445, 783), (0.5, 30), (2.0, 10)]:
        peer = smkr.robustness_value(t_statistic=t, dof=dof, alpha=0.05)
        assert robustness_value(t, dof, alpha=0.05) == pytest.approx(float(peer[0]), abs=1e-12)


def test_contour_grid_agrees_with_pysensemakr(darfur):
    _, _, res = darfur
    grid = contour_grid(res, n=41, estimate_threshold=0.01)
    # Default limits as sensemakr's plot: 1.2 × the largest benchmark R², at least 0.4.
    from sensemakr.sensitivity_plots import check_params

    r2d = np.array([b.r2dz_x for b in res.bounds])
    r2y = np.array([b.r2yz_dx for b in res.bounds])
    limits = check_params(res.estimate, r2d, r2y, None, None, 0.0, 0.0)[3:5]
    assert (grid.r2dz_x[-1], grid.r2yz_dx[-1]) == pytest.approx(limits, rel=1e-12)
    kw = {"estimate": res.estimate, "se": res.se, "dof": res.dof}
    x = np.asarray(grid.r2dz_x)
    for i in (0, 17, 40):
        y = np.full_like(x, grid.r2yz_dx[i])
        peer = smkr.adjusted_estimate(r2dz_x=x, r2yz_dx=y, **kw)
        assert np.allclose(grid.estimate[i], peer, rtol=1e-10, atol=1e-14)
        peer_t = smkr.adjusted_t(r2dz_x=x, r2yz_dx=y, h0=0.01, **kw)
        assert np.allclose(grid.t_value[i], peer_t, rtol=1e-10)
    assert grid.benchmarks == res.bounds
    # The t threshold's contour passes through (RV_qa, RV_qa), by the peer's own adjusted t.
    at_rv = smkr.adjusted_t(r2dz_x=res.rv_qa, r2yz_dx=res.rv_qa, **kw)
    assert contour_grid(res, n=2).t_threshold == pytest.approx(float(at_rv), rel=1e-9)
    json.dumps(grid.to_dict(), allow_nan=False)


def test_to_dict_is_json_safe(darfur):
    _, _, res = darfur
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out["dof"] == 783 and out["bounds"][0]["label"] == "1x female"
    assert out["estimate"] == res.estimate
    capped = sensitivity_stats(1.0, 0.5, 10)
    assert json.dumps(capped.to_dict(), allow_nan=False)
    assert risk_ratio_from_difference(0.5, sd=1.0).to_dict()["lo"] is None  # NaN without an SE


def test_ovb_formula_recovers_the_long_regression():
    # Z is omitted; in population R²_{D~Z|X} = 0.25/1.25 = 0.2 and
    # R²_{Y~Z|D,X} = 0.64·0.8/(0.64·0.8 + 1) ≈ 0.339. In-sample the OVB formula is an identity.
    rng = np.random.default_rng(2020)
    n = 3000
    X = rng.normal(size=(n, 2))
    Z = rng.normal(size=n)
    for sign, reduce in [(1.0, True), (-1.0, False)]:
        d = 0.3 * X[:, 0] + 0.5 * Z + rng.normal(size=n)
        y = 1.0 * d + X @ [0.5, 0.2] + sign * 0.8 * Z + rng.normal(size=n)
        long = sm.OLS(y, sm.add_constant(np.column_stack([d, X, Z]))).fit()
        d_on_z = sm.OLS(d, sm.add_constant(np.column_stack([X, Z]))).fit()
        r2dz = d_on_z.tvalues[-1] ** 2 / (d_on_z.tvalues[-1] ** 2 + d_on_z.df_resid)
        r2yz = long.tvalues[-1] ** 2 / (long.tvalues[-1] ** 2 + long.df_resid)
        assert r2dz == pytest.approx(0.2, abs=0.05) and r2yz == pytest.approx(0.339, abs=0.05)
        short = omitted_variable_bias(y, d, X, names=["x1", "x2"], treatment_name="d")
        assert abs(short.estimate - long.params[1]) > 0.2  # the omission matters
        fixed = adjusted_estimate(
            r2dz, r2yz, estimate=short.estimate, se=short.se, dof=short.dof, reduce=reduce
        )
        assert fixed == pytest.approx(long.params[1], abs=1e-8)


def test_e_value_vanderweele_ding_2017():
    # Breastfeeding and infant respiratory death (Victora et al. 1987): RR 3.9 (1.8, 8.7),
    # E-values 7.26 and 3.00.
    e = e_value(3.9, lo=1.8, hi=8.7)
    assert (round(e.e_value, 2), round(e.e_value_ci, 2)) == (7.26, 3.00)
    # A protective RR uses the inverse; its closest-to-null limit is the upper one.
    inv = e_value(1 / 3.9, lo=1 / 8.7, hi=1 / 1.8)
    assert (round(inv.e_value, 2), round(inv.e_value_ci, 2)) == (7.26, 3.00)
    assert e_value(3.9).e_value_ci is None
    # An interval crossing 1 cannot exclude the null: its E-value is 1.
    assert e_value(1.3, lo=0.9, hi=1.8).e_value_ci == 1.0
    assert e_value(0.8, lo=0.6, hi=1.05).e_value_ci == 1.0
    assert e_value(1.0).e_value == 1.0


def test_risk_ratio_from_means_agrees_with_statsmodels():
    from statsmodels.stats.contingency_tables import Table2x2

    rr = risk_ratio_from_means(150 / 500, 100 / 500, n_treated=500, n_control=500, alpha=0.1)
    table = Table2x2(np.array([[150, 350], [100, 400]]))
    assert rr.rr == pytest.approx(table.riskratio, rel=1e-12)
    assert rr.log_se == pytest.approx(table.log_riskratio_se, rel=1e-12)
    assert (rr.lo, rr.hi) == pytest.approx(table.riskratio_confint(alpha=0.1), rel=1e-12)


def test_risk_ratio_from_difference_vanderweele_ding():
    # RR ≈ exp(0.91 d), interval exp(0.91 d ± 1.78 SE_d) in VanderWeele & Ding (2017) and
    # EValue::evalues.MD; 1.78 is 0.91 × 1.96 rounded, ours is 0.91 × z(0.975) = 1.7836.
    r = risk_ratio_from_difference(2.0, sd=4.0, se=1.0)  # d = 0.5, SE_d = 0.25
    assert r.rr == pytest.approx(math.exp(0.91 * 0.5), rel=1e-12)
    assert r.lo == pytest.approx(math.exp(0.455 - 1.78 * 0.25), rel=2e-3)
    assert r.hi == pytest.approx(math.exp(0.455 + 1.78 * 0.25), rel=2e-3)
    assert r.log_se == pytest.approx(0.91 * 0.25)
    assert risk_ratio_from_difference(-2.0, sd=4.0).rr == pytest.approx(1 / r.rr)


def test_bad_inputs_raise_design_errors():
    y, d, X = _simulated(n=60)
    names = list(X.columns)
    with pytest.raises(DesignError, match=r"not among the covariates; choose from: x1, x2, x3"):
        omitted_variable_bias(y, d, X, names=names, treatment_name="d", benchmarks=["female"])
    with pytest.raises(DesignError, match="no residual degrees of freedom"):
        omitted_variable_bias(y[:6], d[:6], X[:6], names=names, treatment_name="d")
    with pytest.raises(DesignError, match="collinear"):
        Xd = np.column_stack([X, X.x1 * 2.0])
        omitted_variable_bias(y, d, Xd, names=[*names, "x1_twice"], treatment_name="d")
    with pytest.raises(DesignError, match="'d' is a linear combination of the covariates"):
        omitted_variable_bias(y, X.x1 - X.x2, X, names=names, treatment_name="d")
    with pytest.raises(DesignError, match="equal-length lists"):
        omitted_variable_bias(y, d, X, names=names, treatment_name="d", kd=[1, 2], ky=[1, 2, 3])
    with pytest.raises(DesignError, match="distinct name"):
        omitted_variable_bias(y, d, X, names=names[:3], treatment_name="d")
    with pytest.raises(DesignError, match="missing or infinite"):
        omitted_variable_bias(y.where(y > -2), d, X, names=names, treatment_name="d")
    with pytest.raises(DesignError, match="use kd <"):
        omitted_variable_bias(y, d, X, names=names, treatment_name="d", benchmarks=["x1"], kd=50)
    with pytest.raises(DesignError, match="positive, finite risk ratio"):
        e_value(0.0)
    with pytest.raises(DesignError, match="positive, finite risk ratio"):
        e_value(-1.2)
    with pytest.raises(DesignError, match="must contain the estimate"):
        e_value(2.0, lo=2.5, hi=3.0)
    with pytest.raises(DesignError, match="no events"):
        risk_ratio_from_means(0.0, 0.2, n_treated=10, n_control=10)
    with pytest.raises(DesignError, match="degrees of freedom"):
        sensitivity_stats(1.0, 0.5, 1)
