"""Observational estimators: published numbers, known simulation truths, peer libraries, errors.

Truth comes from outside our code: LaLonde's experimental benchmark and Dehejia–Wahba's
naive gap, IHDP's ATT of 4.0 by construction, simulated data with effects known in closed
form (or by a 4-million-draw Monte Carlo), statsmodels, dowhy and a bootstrap.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit

from causal.designs.learners import (
    OUTCOME_LEARNERS,
    PROPENSITY_LEARNERS,
    outcome_learner,
    propensity_learner,
)
from causal.designs.obs_checks import balance_check, overlap_check
from causal.designs.obs_estimators import (
    aipw,
    balancing_weights,
    ipw,
    naive_difference,
    propensity_scores,
    regression_adjustment,
)
from causal.designs.obs_propensity import single_threaded
from causal.designs.obs_types import EffectEstimate
from causal.errors import DesignError, SpecError
from causal.inference.basic import interval

DATASETS = Path(__file__).resolve().parents[1] / "causal" / "data" / "datasets"
EXPERIMENTAL_ATT = 1794.34  # NSW experiment, difference in mean 1978 earnings (Dehejia–Wahba)


def covers(est: EffectEstimate, value: float, alpha: float = 0.05) -> bool:
    ci = interval(est.estimate, est.std_error, alpha=alpha, df=est.df)
    return ci.conf_low <= value <= ci.conf_high


# --- LaLonde / Dehejia–Wahba: NSW treated against CPS controls -------------------------------

DW_COVARIATES = [
    "age", "age2", "age3", "educ", "educ2", "marr", "nodegree", "black", "hisp",
    "re74", "re75", "re74_2", "re75_2", "u74", "u75", "educ_re74",
]  # fmt: skip


@pytest.fixture(scope="module")
def lalonde() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dehejia & Wahba (1999) sample: the 185 NSW treated men and the 15,992 CPS-1 controls,
    with the covariates of their propensity-score specification."""
    nsw = pd.read_csv(DATASETS / "nsw_mixtape.csv")
    cps = pd.read_csv(DATASETS / "cps_mixtape.csv")
    df = pd.concat([nsw[nsw.treat == 1], cps], ignore_index=True)
    assert df.unit_id.is_unique
    df = df.assign(
        age2=df.age**2, age3=df.age**3, educ2=df.educ**2, re74_2=df.re74**2, re75_2=df.re75**2,
        u74=(df.re74 == 0).astype(float), u75=(df.re75 == 0).astype(float),
        educ_re74=df.educ * df.re74,
    )  # fmt: skip
    return df.re78.to_numpy(float), df.treat.to_numpy(int), df[DW_COVARIATES].to_numpy(float)


def test_vendored_cps_equals_the_causaldata_package():
    cps_mixtape = pytest.importorskip("causaldata.cps_mixtape")
    package = cps_mixtape.load_pandas().data
    assert set(package.data_id) == {"CPS1"}
    ours = pd.read_csv(DATASETS / "cps_mixtape.csv")
    nsw = pd.read_csv(DATASETS / "nsw_mixtape.csv")
    assert list(ours.columns) == list(nsw.columns)
    assert ours.unit_id.tolist() == list(range(446, 446 + len(package)))
    for column in package.columns.drop("data_id"):
        assert np.array_equal(ours[column].to_numpy(float), package[column].to_numpy(float))


def test_lalonde_naive_difference_is_minus_8497_52(lalonde):
    # NSW treated mean minus CPS-1 mean of 1978 earnings: −$8,497.52 (Dehejia & Wahba 1999;
    # Cunningham, The Mixtape, ch. 5), to the cent.
    y, d, X = lalonde
    est = naive_difference(y, d, X, DW_COVARIATES, estimand="ATT")
    assert round(est.estimate, 2) == -8497.52
    assert (est.n_units, est.n_treated) == (16_177, 185)
    assert not covers(est, EXPERIMENTAL_ATT)


def test_lalonde_ipw_att_recovers_the_experimental_benchmark(lalonde):
    # The published specification: a logit propensity on the Dehejia–Wahba terms; Hájek
    # weights e/(1 - e) for the controls; defaults otherwise (no propensity reaches 0.99, so
    # the bounds rule moves nothing). Gives $1,763 (SE 771).
    y, d, X = lalonde
    est = ipw(y, d, X, DW_COVARIATES, estimand="ATT")
    assert est.details["propensity_bounds"]["n_above_upper"] == 0
    assert abs(est.estimate - EXPERIMENTAL_ATT) < 700
    assert covers(est, EXPERIMENTAL_ATT)
    assert est.details["weights"]["ess_treated"] == pytest.approx(185)


def test_lalonde_aipw_att_recovers_the_experimental_benchmark(lalonde):
    # Logit propensity and a linear outcome model on the same terms, 5-fold cross-fitting:
    # $1,523 (SE 813).
    y, d, X = lalonde
    est = aipw(y, d, X, DW_COVARIATES, estimand="ATT", seed=0)
    assert est.details["learners"] == {"outcome": "linear", "propensity": "logistic"}
    assert abs(est.estimate - EXPERIMENTAL_ATT) < 700
    assert covers(est, EXPERIMENTAL_ATT)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outcome", "propensity"),
    [("gradient_boosting", "logistic"), ("gradient_boosting", "logistic_cv"),
     ("linear", "logistic_cv")],
)  # fmt: skip
def test_lalonde_aipw_att_with_other_learners(lalonde, outcome, propensity):
    # Measured: 1,515 (874), 1,466 (738), 1,421 (704); boosted outcome models stop early above
    # 10,000 units (scikit-learn's default), without it the first two were 1,404 and 1,537.
    y, d, X = lalonde
    est = aipw(
        y, d, X, DW_COVARIATES, estimand="ATT", outcome_learner=outcome,
        propensity_learner=propensity, seed=0,
    )  # fmt: skip
    assert abs(est.estimate - EXPERIMENTAL_ATT) < 700
    assert covers(est, EXPERIMENTAL_ATT)


def test_lalonde_weighting_balances_the_covariates(lalonde):
    _, d, X = lalonde
    before = balance_check(X, d, names=DW_COVARIATES)
    ps = propensity_scores(d, X, names=DW_COVARIATES)
    after = balance_check(
        X, d, names=DW_COVARIATES, weights=balancing_weights(ps, d, estimand="ATT"),
        estimand="ATT",
    )  # fmt: skip
    rows = {r["covariate"]: r for r in after.table}
    # 84% of the NSW men are black against 7% of the CPS men (measured SMD 2.4).
    assert rows["black"]["smd_before"] > 1.5
    assert abs(rows["black"]["smd_after"]) < 0.1
    assert before.status == "warn"
    # The point of Dehejia & Wahba's specification: the logit on these terms balances each of
    # them (measured: largest |SMD| after weighting 0.07, black).
    assert after.status == "pass"
    assert all(abs(r["smd_after"]) < 0.1 for r in after.table)
    overlap = overlap_check(ps, d)
    assert overlap.status == "warn"  # most CPS men have propensities near zero
    assert sum(r["control"] for r in overlap.table) == int((d == 0).sum())


# --- IHDP surface B: ATT = 4.0 by construction ------------------------------------------------


def _ihdp_covers(seed: int) -> bool:
    dgps = pytest.importorskip("econml.data.dgps")
    y, t, x, true_te = dgps.ihdp_surface_B(random_state=seed)
    assert true_te[t == 1].mean() == pytest.approx(4.0)  # the sample ATT is 4 exactly
    x = x[:, 1:]  # column 0 is econml's intercept
    est = aipw(
        y, t, x, estimand="ATT", outcome_learner="gradient_boosting",
        propensity_learner="logistic_cv", folds=5, seed=seed,
    )  # fmt: skip
    return covers(est, 4.0)


def test_ihdp_aipw_att_covers_4_first_two_draws():
    # The first two draws of the 10-draw calibration below (both cover; 5 s).
    assert _ihdp_covers(0) and _ihdp_covers(1)


@pytest.mark.slow
def test_ihdp_aipw_att_covers_4_in_9_of_10_draws():
    # Measured: 9 of 10 (draw 2 misses: 3.67, SE 0.11), 30 s.
    assert sum(_ihdp_covers(seed) for seed in range(10)) >= 9


# --- simulation with known effects and confounding -------------------------------------------


def _simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confounding through x1 (raises both treatment and outcome), effect 1 + 1.5 x1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    d = (rng.random(n) < expit(-0.5 + 0.8 * x[:, 0] + 0.4 * x[:, 1])).astype(int)
    y0 = 1 + 2 * x[:, 0] + x[:, 1] + rng.normal(size=n)
    return y0 + d * (1 + 1.5 * x[:, 0]), d, x


@pytest.fixture(scope="module")
def truth() -> dict[str, float]:
    """Population effects: ATE = 1; ATT, ATC = 1 + 1.5 E[x1 | D], by Monte Carlo (SE < 0.001)."""
    x1, x2 = np.random.default_rng(12345).normal(size=(2, 4_000_000))
    e = expit(-0.5 + 0.8 * x1 + 0.4 * x2)
    return {
        "ATE": 1.0,
        "ATT": 1 + 1.5 * float(np.sum(e * x1) / e.sum()),
        "ATC": 1 + 1.5 * float(np.sum((1 - e) * x1) / (1 - e).sum()),
    }


ESTIMATORS = {
    "regression": lambda y, d, x, estimand: regression_adjustment(y, d, x, estimand=estimand),
    "ipw": lambda y, d, x, estimand: ipw(y, d, x, estimand=estimand),
    "aipw": lambda y, d, x, estimand: aipw(y, d, x, estimand=estimand, seed=0),
}


def test_naive_difference_is_biased_by_confounding(truth):
    y, d, x = _simulate(4_000, seed=0)
    est = naive_difference(y, d, x)
    assert abs(est.estimate - truth["ATE"]) > 3 * est.std_error


DRAWS = 20


@pytest.fixture(scope="module")
def repeated_fits() -> dict[tuple[str, str], list[EffectEstimate]]:
    """Every estimator and estimand on 20 simulated datasets of 1,000 units (~5 s)."""
    fits: dict[tuple[str, str], list[EffectEstimate]] = {}
    for seed in range(DRAWS):
        y, d, x = _simulate(1_000, seed=seed)
        for name, fit in ESTIMATORS.items():
            for estimand in ("ATE", "ATT", "ATC"):
                fits.setdefault((name, estimand), []).append(fit(y, d, x, estimand))
    return fits


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimators_cover_the_estimand_they_target(truth, repeated_fits, name):
    # One draw can miss by chance (9 intervals per draw); 20 draws cannot all be lucky.
    # Spurious failure: P(fewer than 15 of 20 covers at 95%) = 0.0003 per estimand.
    assert truth["ATT"] - truth["ATE"] > 0.5 and truth["ATE"] - truth["ATC"] > 0.35
    for estimand in ("ATE", "ATT", "ATC"):
        fits = repeated_fits[name, estimand]
        assert all(f.estimand == estimand for f in fits)
        hits = sum(covers(f, truth[estimand]) for f in fits)
        assert hits >= 15, (estimand, hits)
        # The mean over draws sits on its own estimand, away from the other two.
        mean = np.mean([f.estimate for f in fits])
        margin = 4 * np.mean([f.std_error for f in fits]) / np.sqrt(DRAWS)
        assert abs(mean - truth[estimand]) < margin, (estimand, mean)
        others = [v for k, v in truth.items() if k != estimand]
        assert all(abs(mean - v) > margin for v in others), (estimand, mean)


def test_additive_regression_targets_none_of_the_estimands(truth, repeated_fits):
    # y ~ d + X weights effects by the conditional variance of d: with heterogeneous
    # effects its coefficient is not the ATE, ATT or ATC (which is why we interact).
    means = []
    for seed in range(5):
        y, d, x = _simulate(1_000, seed=seed)
        means.append(regression_adjustment(y, d, x, interacted=False).estimate)
    se = np.mean([f.std_error for f in repeated_fits["regression", "ATE"]]) / np.sqrt(5)
    assert all(abs(np.mean(means) - v) > 3 * se for v in truth.values())


@pytest.mark.slow
def test_coverage_over_100_simulated_datasets(truth):
    # Measured on these 100 draws: 90-97 covers per estimator and estimand.
    fits: dict[tuple[str, str], list[EffectEstimate]] = {}
    for seed in range(100):
        y, d, x = _simulate(2_000, seed=1_000 + seed)
        for name, fit in ESTIMATORS.items():
            for estimand in truth:
                fits.setdefault((name, estimand), []).append(fit(y, d, x, estimand))
    for (name, estimand), runs in fits.items():
        hits = sum(covers(f, truth[estimand]) for f in runs)
        assert hits >= 88, (name, estimand, hits)  # P(< 88 of 100 | 95%) = 0.001
        # Mean SE against the sampling SD (known to ~7% from 100 draws). Measured: 0.93-1.02,
        # except IPW for the ATE / ATC, 0.78 / 0.80: 1/e weights give heavy tails (kurtosis 5)
        # that a few of these draws hit; over 400 draws the IPW ATE ratio is 0.93. Leaving out
        # the logit's estimation would inflate the IPW SEs 1.5-2.2 times.
        ratio = np.mean([f.std_error for f in runs]) / np.std([f.estimate for f in runs], ddof=1)
        assert 0.7 < ratio < 1.3, (name, estimand, ratio)


# --- agreement with peers and by-hand computations -------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
def test_additive_regression_equals_dowhy_backdoor_linear_regression():
    dowhy = pytest.importorskip("dowhy")
    y, d, x = _simulate(2_000, seed=3)
    names = ["x1", "x2"]
    frame = pd.DataFrame(x, columns=names).assign(d=d.astype(bool), y=y)
    model = dowhy.CausalModel(data=frame, treatment="d", outcome="y", common_causes=names)
    identified = model.identify_effect(proceed_when_unidentifiable=True)
    theirs = model.estimate_effect(identified, method_name="backdoor.linear_regression").value
    ours = regression_adjustment(y, d, x, names, interacted=False)
    assert ours.estimate == pytest.approx(theirs, rel=1e-8, abs=1e-8)


def test_regression_hc1_se_equals_statsmodels():
    y, d, x = _simulate(1_000, seed=4)
    ours = regression_adjustment(y, d, x, interacted=False)
    fit = sm.OLS(y, sm.add_constant(np.column_stack([d, x]))).fit(cov_type="HC1")
    assert ours.estimate == pytest.approx(fit.params[1], rel=1e-10)
    assert ours.std_error == pytest.approx(fit.bse[1], rel=1e-10)
    assert ours.df == fit.df_resid
    # Interacted, centred at the treated: with the means held fixed it is statsmodels' HC1.
    xc = x - x[d == 1].mean(axis=0)
    design = sm.add_constant(np.column_stack([d, xc, xc * d[:, None]]))
    fit = sm.OLS(y, design).fit(cov_type="HC1")
    ours = regression_adjustment(y, d, x, estimand="ATT")
    assert ours.estimate == pytest.approx(fit.params[1], rel=1e-10)
    assert ours.details["se_fixed_means"] == pytest.approx(fit.bse[1], rel=1e-10)


def test_lalonde_regression_equals_statsmodels_qr(lalonde):
    # The raw Dehejia–Wahba design has condition number ~2e10: solved stably, our estimate
    # agrees with statsmodels' QR solver to 1e-10 (dowhy, via a pseudo-inverse, is 2e-7 off).
    y, d, X = lalonde
    ours = regression_adjustment(y, d, X, DW_COVARIATES, interacted=False)
    fit = sm.OLS(y, sm.add_constant(np.column_stack([d, X]))).fit(method="qr")
    assert ours.estimate == pytest.approx(fit.params[1], rel=1e-10)


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
def test_interacted_regression_se_equals_a_by_hand_influence_function(estimand):
    # Independent route: one OLS per arm, imputation of both potential outcomes over S, and
    # the influence function of mean_S(m1 - m0) including the sampling of S's covariates.
    y, d, x = _simulate(1_500, seed=5)
    n = len(y)
    s = {"ATE": np.ones(n), "ATT": d * 1.0, "ATC": 1.0 - d}[estimand]
    z = np.column_stack([np.ones(n), x])
    influence = np.zeros(n)
    fitted = {}
    for arm in (0, 1):
        rows = d == arm
        beta = np.linalg.lstsq(z[rows], y[rows], rcond=None)[0]
        fitted[arm] = z @ beta
        bread = np.linalg.inv(z[rows].T @ z[rows] / n)
        zbar = z[s == 1].mean(axis=0)
        sign = 1 if arm else -1
        influence += sign * (z @ bread @ zbar) * rows * (y - fitted[arm])
    tau = float(np.mean((fitted[1] - fitted[0])[s == 1]))
    influence += s * (fitted[1] - fitted[0] - tau) / s.mean()
    se = np.sqrt(np.sum(influence**2) / n**2 * n / (n - 2 * z.shape[1]))
    ours = regression_adjustment(y, d, x, estimand=estimand)
    assert ours.estimate == pytest.approx(tau, rel=1e-10)
    assert ours.std_error == pytest.approx(se, rel=1e-10)
    assert ours.std_error > ours.details["se_fixed_means"]


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
def test_ipw_equals_weighted_least_squares_with_a_statsmodels_logit(estimand):
    y, d, x = _simulate(1_500, seed=6)
    e = sm.Logit(d, sm.add_constant(x)).fit(disp=0).predict()
    w = {"ATE": d / e + (1 - d) / (1 - e), "ATT": d + (1 - d) * e / (1 - e),
         "ATC": d * (1 - e) / e + (1 - d)}[estimand]  # fmt: skip
    wls = sm.WLS(y, sm.add_constant(d.astype(float)), weights=w).fit()
    ours = ipw(y, d, x, estimand=estimand)
    assert ours.estimate == pytest.approx(wls.params[1], rel=1e-7)
    assert propensity_scores(d, x) == pytest.approx(e, rel=1e-7)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_ipw_m_estimation_se_matches_the_bootstrap(estimand):
    # Measured (n = 1,000, 300 draws): M-estimation 0.116 / 0.129 against bootstrap 0.118 /
    # 0.122; ignoring the logit's estimation would give 0.255 / 0.225.
    y, d, x = _simulate(1_000, seed=7)
    ours = ipw(y, d, x, estimand=estimand)
    rng = np.random.default_rng(1)
    draws = []
    for _ in range(200):
        i = rng.integers(0, len(y), len(y))
        draws.append(ipw(y[i], d[i], x[i], estimand=estimand).estimate)
    assert ours.std_error == pytest.approx(np.std(draws, ddof=1), rel=0.15)
    assert "M-estimation" in ours.details["variance"]


def test_details_are_json_safe_and_record_weights_rules_learners():
    import json

    y, d, x = _simulate(600, seed=8)
    for est in (
        naive_difference(y, d, x),
        regression_adjustment(y, d, x),
        ipw(y, d, x, estimand="ATT", rule="trim", bounds=(0.05, 0.95)),
        aipw(y, d, x, estimand="ATC", folds=3, seed=1),
    ):
        details = json.loads(json.dumps(dict(est.details)))
        assert "learners" in details
        if est.estimator in ("ipw", "aipw"):
            assert {"ess_treated", "ess_control"} <= set(details["weights"])
            assert details["propensity_bounds"]["rule"] in ("clip", "trim")


def test_trim_drops_units_on_the_side_the_estimand_weights():
    y, d, x = _simulate(2_000, seed=9)
    ps = propensity_scores(d, x)
    est = ipw(y, d, x, estimand="ATT", rule="trim", bounds=(0.1, 0.9))
    bounds = est.details["propensity_bounds"]
    # Under the ATT only high propensities inflate weights (controls get e / (1 - e)).
    assert bounds["bounds_apply_to"] == "upper"
    assert bounds["n_trimmed"] == int((ps > 0.9).sum()) > 0
    assert est.details["n_used"] == len(y) - bounds["n_trimmed"]


# --- errors ---------------------------------------------------------------------------------


def test_constant_treatment_is_a_design_error():
    y, _, x = _simulate(100, seed=10)
    for fit in (naive_difference, regression_adjustment, ipw, aipw):
        with pytest.raises(DesignError, match="treatment is constant"):
            fit(y, np.ones(100, dtype=int), x)


def test_separation_names_the_covariate():
    y, d, x = _simulate(500, seed=11)
    rng = np.random.default_rng(0)
    flag = (rng.random(500) < 0.2) * d  # only treated units ever have the flag
    X = np.column_stack([x, flag])
    with pytest.raises(DesignError, match=r"covariate 'vip' separates .*vip > 0 are treated"):
        ipw(y, d, X, ["x1", "x2", "vip"])
    with pytest.raises(DesignError, match="'vip'"):
        propensity_scores(d, X, names=["x1", "x2", "vip"])
    # Two covariates that separate only together are named together.
    sep = (x[:, 0] + x[:, 1] > 0).astype(int)
    with pytest.raises(DesignError, match=r"covariates 'x1', 'x2' together separate"):
        propensity_scores(sep, np.column_stack([x, rng.normal(size=500)]),
                          names=["x1", "x2", "noise"])  # fmt: skip


def test_no_overlap_is_a_design_error():
    _, _, x = _simulate(400, seed=12)
    d = (x[:, 0] + x[:, 1] > 0).astype(int)
    with pytest.raises(DesignError, match="no overlap"):
        propensity_scores(d, x, learner="gradient_boosting")
    assert overlap_check(np.array([0.1, 0.2, 0.7, 0.9]), np.array([0, 0, 1, 1])).status == "fail"


def test_unknown_learner_names_list_the_known_ones():
    with pytest.raises(SpecError, match="linear, lasso, gradient_boosting, random_forest"):
        outcome_learner("xgboost", seed=0)
    with pytest.raises(SpecError, match="logistic, logistic_cv, lasso, gradient_boosting"):
        propensity_learner("probit", seed=0)
    y, d, x = _simulate(200, seed=13)
    with pytest.raises(SpecError, match="unknown outcome learner 'ridge'"):
        aipw(y, d, x, outcome_learner="ridge")


def test_learner_names_import_without_scikit_learn():
    code = (
        "import sys; from causal.designs import learners; "
        "assert 'sklearn' not in sys.modules; print(len(learners.OUTCOME_LEARNERS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(len(OUTCOME_LEARNERS))
    assert len(PROPENSITY_LEARNERS) == 4


@pytest.mark.parametrize("name", OUTCOME_LEARNERS)
def test_every_outcome_learner_fits_a_linear_signal(name):
    rng = np.random.default_rng(14)
    x = rng.normal(size=(300, 2))
    y = 3 * x[:, 0] + rng.normal(scale=0.1, size=300)
    with single_threaded():  # as the estimators fit them (OpenMP stalls on a busy machine)
        model = outcome_learner(name, seed=0).fit(x, y)
    assert np.corrcoef(model.predict(x), y)[0, 1] > 0.95


@pytest.mark.parametrize("name", PROPENSITY_LEARNERS)
def test_every_propensity_learner_ranks_by_the_true_score(name):
    rng = np.random.default_rng(15)
    x = rng.normal(size=(400, 2))
    e = expit(1.5 * x[:, 0])
    d = (rng.random(400) < e).astype(int)
    with single_threaded():
        scores = propensity_learner(name, seed=0).fit(x, d).predict_proba(x)[:, 1]
    assert np.corrcoef(scores, e)[0, 1] > 0.8


# --- checks -----------------------------------------------------------------------------------


def test_overlap_check_counts_against_numpy():
    rng = np.random.default_rng(16)
    ps = rng.uniform(0.01, 0.99, 500)
    d = (rng.random(500) < ps).astype(int)
    check = overlap_check(ps, d, bounds=(0.05, 0.95))
    assert [r["treated"] for r in check.table] == np.histogram(ps[d == 1], 20, (0, 1))[0].tolist()
    share = np.mean((ps[d == 0] < 0.05) | (ps[d == 0] > 0.95))
    assert f"{100 * share:.1f}% of untreated" in check.detail
    assert overlap_check(ps, np.zeros(500, dtype=int)).status == "n/a"


def test_balance_check_smd_uses_the_unweighted_pooled_sd():
    rng = np.random.default_rng(17)
    x = rng.normal(size=(400, 1))
    d = (rng.random(400) < expit(x[:, 0])).astype(int)
    w = rng.uniform(0.5, 2.0, 400)
    check = balance_check(x, d, names=["x"], weights=w, estimand="ATE")
    sd = np.sqrt((x[d == 1, 0].var(ddof=1) + x[d == 0, 0].var(ddof=1)) / 2)
    after = (np.average(x[d == 1, 0], weights=w[d == 1])
             - np.average(x[d == 0, 0], weights=w[d == 0])) / sd  # fmt: skip
    assert check.table[0]["smd_after"] == pytest.approx(after, rel=1e-12)
    assert check.status == ("warn" if abs(after) > 0.1 else "pass")
    assert balance_check(np.empty((400, 0)), d, names=[]).status == "n/a"
