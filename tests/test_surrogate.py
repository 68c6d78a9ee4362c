"""Tests of the surrogate index: hand computations, the bootstrap SE against an analytic
variance, the long-term warranty simulator (coverage of the 12-month truth, the 3-month effect
outside the interval, validation passing under surrogacy and warning when it fails), the
validation on hand-made past experiments, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from causal.designs.surrogate import SurrogateIndexResult, surrogate_index
from causal.errors import DataError, DesignError, SpecError
from causal.inference import ols_robust, welch_difference
from causal.simulate_long_term import SURROGATES, extended_warranty_long_term

COVARIATES = ["segment", "tenure_months", "prior_year_revenue", "region"]


def pilot_frames(**params):
    p = extended_warranty_long_term(**params)
    experiment = p.tables["pilot_customers"].merge(p.tables["pilot_signals"], on="customer_id")
    return p, p.tables["historical"], experiment


def fit_pilot(historical, experiment, **kwargs) -> SurrogateIndexResult:
    return surrogate_index(
        historical,
        experiment,
        surrogates=list(SURROGATES),
        long_outcome="revenue_12m",
        covariates=COVARIATES,
        **kwargs,
    )


@pytest.fixture(scope="module")
def warranty():
    p, historical, experiment = pilot_frames(seed=0)
    return p, experiment, fit_pilot(historical, experiment)


# --- On the simulator ---------------------------------------------------------------------


def test_interval_covers_12_month_truth_and_excludes_3_month_effect(warranty):
    p, experiment, res = warranty
    lt = res.long_term
    assert lt.estimator == "surrogate_index" and lt.estimand == "ATE"
    assert lt.outcome == "revenue_12m" and lt.n_units == len(experiment)
    assert lt.conf_low <= p.truth["revenue_12m"] <= lt.conf_high
    # The 3-month effect, true and estimated from the observed months 1..3, lies far below.
    monthly = p.tables["pilot_monthly"]
    q1 = monthly[monthly["month"] <= 3].groupby("customer_id")["revenue"].sum()
    y3 = q1.loc[experiment["customer_id"]].to_numpy()
    est_3m = welch_difference(y3, experiment["treated"].to_numpy())
    for effect in (
        p.truth["revenue_3m"],
        est_3m.difference,
        est_3m.difference + 2 * est_3m.std_error,
    ):
        assert effect < lt.conf_low
    # Interval is normal with the bootstrap SE.
    assert lt.conf_high - lt.estimate == pytest.approx(1.959964 * lt.std_error, rel=1e-5)
    assert lt.details["bootstrap_replications"] == 200


def test_checks_pass_and_index_fit_diagnostics(warranty):
    _, _, res = warranty
    status = {c.name: c.status for c in res.long_term.diagnostics}
    assert status == {
        "surrogate_index_fit": "pass",
        "surrogate_overlap": "pass",
        "surrogacy_validation": "pass",
    }
    fit = res.index_fit
    assert fit["n_rows"] == 32_000  # 24,000 outside experiments + 4 x 2,000 controls
    assert 0.4 < fit["oof_r2"] < 0.8
    # The linear index recovers the simulator's coefficient per NPS point (EUR over 12 months):
    # 60 EUR x 0.025 orders x (0.3 + 0.6 + 7 months).
    assert fit["coefficients"]["nps_score"] == pytest.approx(60 * 0.025 * 7.9, rel=0.1)
    v = res.validation
    assert [r["experiment"] for r in v.table] == ["past_1", "past_2", "past_3", "past_4"]
    assert v.share_explained["conf_low"] <= 1 <= v.share_explained["conf_high"]
    assert "cannot be proven" in v.check.detail


def test_short_term_results_and_contributions(warranty):
    p, experiment, res = warranty
    assert [r.outcome for r in res.short_term] == list(SURROGATES)
    nps = res.short_term[3]
    assert nps.conf_low <= p.truth["nps_score"] <= nps.conf_high
    d = experiment["treated"].to_numpy()
    w = welch_difference(experiment["nps_score"].to_numpy(float), d)
    assert nps.estimate == pytest.approx(w.difference) and nps.std_error == pytest.approx(
        w.std_error
    )
    total = sum(c["contribution"] for c in res.contributions)
    assert total == pytest.approx(res.long_term.estimate, abs=1e-10)
    by_term = {c["term"]: c for c in res.contributions}
    assert list(by_term) == [*SURROGATES, "covariate imbalance"]
    nps_part = by_term["nps_score"]
    assert nps_part["contribution"] == pytest.approx(
        nps_part["coefficient"] * nps_part["short_term_effect"], rel=1e-12
    )
    assert nps_part["contribution"] > 0.4 * res.long_term.estimate  # NPS carries most of it
    assert 0 < nps_part["contribution_se"] < nps_part["contribution"] / 5


def test_to_dict_is_json_safe_and_reproducible(warranty):
    _, _, res = warranty
    data = res.to_dict()
    text = json.dumps(data, allow_nan=False)

    def plain(obj):
        if isinstance(obj, dict):
            return all(isinstance(k, str) and plain(v) for k, v in obj.items())
        if isinstance(obj, list):
            return all(plain(v) for v in obj)
        return obj is None or type(obj) in (str, int, float, bool)

    assert plain(json.loads(text)) and plain(data)
    assert "sklearn" not in text and "LinearRegression" not in text
    assert res.summary().startswith("surrogate_index · ATE on revenue_12m")
    assert set(res.plot_data()) == {"estimates", "validation", "contributions"}
    assert len(res.tidy()) == 1 + len(SURROGATES)


def test_same_seed_same_result():
    _, historical, experiment = pilot_frames(n_pilot=1_000, n_historical=3_000, seed=3)
    a = fit_pilot(historical, experiment, bootstrap_replications=30, seed=9)
    b = fit_pilot(historical, experiment, bootstrap_replications=30, seed=9)
    assert a.to_dict() == b.to_dict()
    c = fit_pilot(historical, experiment, bootstrap_replications=30, seed=10)
    assert c.long_term.std_error != a.long_term.std_error
    assert c.long_term.estimate == a.long_term.estimate


@pytest.mark.parametrize("seed", [0, 1])
def test_validation_warns_when_surrogacy_is_violated(seed):
    """3 EUR a month of direct effect (27 EUR over months 4..12) bypassing the signals."""
    p, historical, experiment = pilot_frames(seed=seed, surrogacy_violation=3.0)
    res = fit_pilot(historical, experiment, bootstrap_replications=100, seed=seed)
    check = res.validation.check
    assert check.status == "warn"
    assert "cannot be proven" in check.detail and "biased" in check.detail
    share = res.validation.share_explained
    assert share["conf_high"] < 1 and share["stable"]
    assert res.validation.p_value < 1e-6
    assert all(r["difference"] > 0 for r in res.validation.table)
    # ... and the estimate misses the direct effect: the truth is above the interval.
    assert res.long_term.conf_high < p.truth["revenue_12m"]


# --- Hand computations --------------------------------------------------------------------


def exact_linear_case(seed: int = 0, n_hist: int = 2_000, n_exp: int = 1_000):
    """Historical Y exactly linear in two surrogates and two covariates (no noise)."""
    rng = np.random.default_rng(seed)

    def frame(n, d):
        f = pd.DataFrame(
            {
                "treated": d,
                "s1": rng.normal(size=n) + 0.8 * d,
                "s2": rng.poisson(2.0, size=n) - 0.3 * d,
                "x": rng.normal(size=n),
                "tier": rng.choice(["a", "b", "c"], size=n),
            }
        )
        return f

    hist = frame(n_hist, np.zeros(n_hist, dtype=int))
    beta = {"s1": 3.0, "s2": -1.5, "x": 0.5, "tier=b": 4.0, "tier=c": -2.0}
    hist["y"] = (
        2.0
        + beta["s1"] * hist["s1"]
        + beta["s2"] * hist["s2"]
        + beta["x"] * hist["x"]
        + beta["tier=b"] * (hist["tier"] == "b")
        + beta["tier=c"] * (hist["tier"] == "c")
    )
    exp = frame(n_exp, rng.permutation(np.repeat([0, 1], n_exp // 2)))
    return hist, exp, beta


def test_exact_linear_index_matches_hand_computation():
    hist, exp, beta = exact_linear_case()
    res = surrogate_index(
        hist, exp, surrogates=["s1", "s2"], long_outcome="y", covariates=["x", "tier"],
        bootstrap_replications=50,
    )  # fmt: skip
    d = exp["treated"].to_numpy() == 1
    diff = {
        "s1": exp["s1"][d].mean() - exp["s1"][~d].mean(),
        "s2": exp["s2"][d].mean() - exp["s2"][~d].mean(),
        "x": exp["x"][d].mean() - exp["x"][~d].mean(),
        "tier=b": (exp["tier"] == "b")[d].mean() - (exp["tier"] == "b")[~d].mean(),
        "tier=c": (exp["tier"] == "c")[d].mean() - (exp["tier"] == "c")[~d].mean(),
    }
    by_hand = sum(beta[k] * diff[k] for k in beta)
    assert res.long_term.estimate == pytest.approx(by_hand, abs=1e-9)
    total = sum(c["contribution"] for c in res.contributions)
    assert total == pytest.approx(res.long_term.estimate, abs=1e-10)
    parts = {c["term"]: c for c in res.contributions}
    for name in ("s1", "s2"):
        assert parts[name]["coefficient"] == pytest.approx(beta[name], abs=1e-9)
        assert parts[name]["contribution"] == pytest.approx(beta[name] * diff[name], abs=1e-9)
        # An exact index is the same in every bootstrap refit: no model error at all.
        assert parts[name]["coefficient_se"] < 1e-9
    imbalance = sum(beta[k] * diff[k] for k in ("x", "tier=b", "tier=c"))
    assert parts["covariate imbalance"]["contribution"] == pytest.approx(imbalance, abs=1e-9)
    assert res.index_fit["oof_r2"] == pytest.approx(1.0, abs=1e-12)
    # Only the experiment's sampling is left in the SE: the Welch SE of the index.
    index = exp["s1"] * 3.0 - 1.5 * exp["s2"] + 0.5 * exp["x"]
    index += 4.0 * (exp["tier"] == "b") - 2.0 * (exp["tier"] == "c")
    welch = welch_difference(index.to_numpy(), d.astype(int))
    assert res.long_term.std_error == pytest.approx(welch.std_error, rel=0.25)


def test_bootstrap_se_includes_the_index_estimation_error():
    """Noisy, small historical sample: bootstrap variance ~ Welch variance of the index plus
    the sandwich variance of the coefficients along the surrogate differences."""
    rng = np.random.default_rng(1)
    n_hist, n_exp = 400, 4_000
    hist = pd.DataFrame({"s": rng.normal(size=n_hist)})
    hist["y"] = 1.0 + 2.0 * hist["s"] + rng.normal(scale=4.0, size=n_hist)
    d = np.repeat([0, 1], n_exp // 2)
    exp = pd.DataFrame({"treated": d, "s": rng.normal(size=n_exp) + 1.0 * d})
    res = surrogate_index(
        hist, exp, surrogates=["s"], long_outcome="y", bootstrap_replications=400, seed=2
    )
    X = np.column_stack([np.ones(n_hist), hist["s"]])
    ols = ols_robust(hist["y"].to_numpy(), X, names=("const", "s"), cov_type="HC1")
    ds = exp["s"][d == 1].mean() - exp["s"][d == 0].mean()
    model_var = ds**2 * ols.cov[1, 1]
    sampling_var = welch_difference(ols.params[1] * exp["s"].to_numpy(), d).std_error ** 2
    analytic = np.sqrt(model_var + sampling_var)
    assert model_var > sampling_var  # the model error dominates here
    assert res.long_term.std_error == pytest.approx(analytic, rel=0.15)
    assert res.long_term.estimate == pytest.approx(ols.params[1] * ds, rel=1e-9)


def past_experiment_case(direct: float, seed: int = 0, n_obs: int = 3_000, n_exp: int = 2_000):
    """y = 2 s + noise for the untreated; experiment 'p1' raises s by 1 and y by ``direct``."""
    rng = np.random.default_rng(seed)
    exp_id = np.array([None] * n_obs + ["p1"] * n_exp, dtype=object)
    treated = np.r_[np.zeros(n_obs, dtype=int), np.repeat([0, 1], n_exp // 2)]
    s = rng.normal(size=n_obs + n_exp) + treated
    y = 2.0 * s + direct * treated + rng.normal(size=n_obs + n_exp)
    hist = pd.DataFrame({"experiment_id": exp_id, "treated": treated, "s": s, "y": y})
    d = np.repeat([0, 1], 500)
    new = pd.DataFrame({"treated": d, "s": rng.normal(size=1_000) + 0.5 * d})
    return hist, new


def test_validation_on_hand_made_past_experiment():
    hist, new = past_experiment_case(direct=0.0)
    res = surrogate_index(hist, new, surrogates=["s"], long_outcome="y", bootstrap_replications=50)
    (row,) = res.validation.table
    assert row["experiment"] == "p1" and row["n_units"] == 2_000 and row["n_treated"] == 1_000
    assert row["surrogate_estimate"] == pytest.approx(2.0, abs=0.15)
    assert row["actual"] == pytest.approx(2.0, abs=0.2)
    assert row["difference"] == pytest.approx(row["actual"] - row["surrogate_estimate"])
    assert res.validation.check.status == "pass"
    assert res.validation.df == 1


def test_treated_rows_of_past_experiments_stay_out_of_the_index():
    hist, new = past_experiment_case(direct=5.0)
    res = surrogate_index(hist, new, surrogates=["s"], long_outcome="y", bootstrap_replications=50)
    # Fitted on untreated rows only, the slope is 2; the treated arm's +5 would pull it up.
    assert res.index_fit["coefficients"]["s"] == pytest.approx(2.0, abs=0.05)
    assert res.index_fit["n_rows"] == 4_000
    (row,) = res.validation.table
    assert row["difference"] == pytest.approx(5.0, abs=0.3)
    assert row["z"] > 5
    assert res.validation.check.status == "warn"
    assert res.validation.share_explained["estimate"] == pytest.approx(2 / 7, abs=0.05)


def test_validation_not_applicable_without_past_experiments():
    hist, new = past_experiment_case(direct=0.0)
    skipped = surrogate_index(
        hist, new, surrogates=["s"], long_outcome="y", experiment_id=None,
        bootstrap_replications=20,
    )  # fmt: skip
    assert skipped.validation.check.status == "n/a"
    assert "experiment_id=None" in skipped.validation.check.detail
    plain = hist.drop(columns=["experiment_id"])
    absent = surrogate_index(
        plain, new, surrogates=["s"], long_outcome="y", bootstrap_replications=20
    )
    assert absent.validation.check.status == "n/a"
    assert "no past experiments" in absent.validation.check.detail
    assert "untested assumption" in absent.validation.check.detail
    json.dumps(absent.to_dict(), allow_nan=False)


def test_other_learner_has_no_contributions():
    hist, new = past_experiment_case(direct=0.0, n_obs=300, n_exp=300)
    res = surrogate_index(
        hist, new, surrogates=["s"], long_outcome="y", learner="lasso",
        bootstrap_replications=20, folds=3,
    )  # fmt: skip
    assert res.contributions is None and "learner='linear'" in res.contributions_note
    assert res.long_term.estimate == pytest.approx(1.0, abs=0.3)
    assert res.validation.check.status in ("pass", "warn")
    assert "coefficients" not in res.index_fit


def test_fit_and_overlap_checks_warn():
    rng = np.random.default_rng(3)
    hist = pd.DataFrame({"s": rng.uniform(0, 1, 500), "y": rng.normal(size=500)})
    new = pd.DataFrame({"treated": np.repeat([0, 1], 100), "s": rng.uniform(0, 2, 200)})
    res = surrogate_index(hist, new, surrogates=["s"], long_outcome="y", bootstrap_replications=20)
    status = {c.name: c.status for c in res.long_term.diagnostics}
    assert status["surrogate_index_fit"] == "warn" and status["surrogate_overlap"] == "warn"


# --- Bad inputs ---------------------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    hist = pd.DataFrame({"s": rng.normal(size=100), "x": rng.normal(size=100)})
    hist["y"] = hist["s"] + rng.normal(size=100)
    new = pd.DataFrame(
        {"treated": np.repeat([0, 1], 20), "s": rng.normal(size=40), "x": rng.normal(size=40)}
    )
    return hist, new


def run(hist, new, **kwargs):
    args = {"surrogates": ["s"], "long_outcome": "y", "bootstrap_replications": 20} | kwargs
    return surrogate_index(hist, new, **args)


def test_small_valid_case_runs(small):
    assert np.isfinite(run(*small).long_term.std_error)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda h, n: (h.drop(columns="s"), n), DataError,
         "surrogate 's' is not a column of the historical data"),
        (lambda h, n: (h, n.drop(columns="s")), DataError,
         "surrogate 's' is not a column of the experiment data"),
        (lambda h, n: (h.drop(columns="y"), n), DataError,
         "long outcome 'y' is not a column of the historical data"),
        (lambda h, n: (h.assign(y=np.nan), n), DataError, "missing in every historical row"),
        (lambda h, n: (h, n.assign(treated=n["treated"] * 2)), DataError,
         r"'treated' in the experiment data must be 0/1, found values \['0', '2'\]"),
        (lambda h, n: (h, n.assign(treated=n["treated"].where(n.index > 0))), DataError,
         "treatment column 'treated' has 1 missing values in the experiment"),
        (lambda h, n: (h, n.drop(columns="treated")), DataError,
         "treatment column 'treated' is not a column of the experiment"),
        (lambda h, n: (h, n.assign(treated=0)), DesignError,
         "the experiment's treated arm has 0 units"),
        (lambda h, n: (h, n.assign(treated=np.r_[1, np.zeros(39, dtype=int)])), DesignError,
         "the experiment's treated arm has 1 units"),
        (lambda h, n: (h, n.assign(s=n["s"].where(n.index >= 3))), DataError,
         "surrogate 's' has 3 missing values in the experiment data"),
        (lambda h, n: (h.assign(s=h["s"].where(h.index != 7)), n), DataError,
         "surrogate 's' has 1 missing value in the historical data"),
        (lambda h, n: (h.assign(s=h["s"].astype(str)), n), DataError,
         "surrogate 's' in the historical data must be numeric"),
        (lambda h, n: (h.iloc[:8], n), DataError,
         "the historical data have 8 untreated rows with the long outcome"),
        (lambda h, n: (h.assign(treated=2), n), DataError,
         "treatment column 'treated' in the historical data must be 0/1"),
    ],
)  # fmt: skip
def test_bad_data(small, change, error, match):
    hist, new = change(*small)
    with pytest.raises(error, match=match):
        run(hist, new)


def test_bad_covariates(small):
    hist, new = small
    with pytest.raises(DataError, match="covariate 'z' is not a column of the historical data"):
        run(hist, new, covariates=["z"])
    with pytest.raises(DataError, match="covariate 'x' has 2 missing values in the experiment"):
        run(hist, new.assign(x=new["x"].where(new.index > 1)), covariates=["x"])
    tiers = hist.assign(tier="a"), new.assign(tier=np.where(new.index < 5, "zz", "a"))
    with pytest.raises(DataError, match="covariate 'tier' takes values in the experiment"):
        run(*tiers, covariates=["tier"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learner": "ridge"}, "unknown outcome learner 'ridge'; known outcome learners: linear"),
        ({"folds": 1}, "folds must be a whole number >= 2"),
        ({"bootstrap_replications": 5}, "bootstrap_replications must be a whole number >= 20"),
        ({"alpha": 0.7}, r"alpha must be a number in \(0, 0.5\)"),
        ({"surrogates": []}, "surrogates is empty"),
        ({"surrogates": "s"}, "surrogates must be a list of column names"),
        ({"surrogates": ["s", "s"]}, "names a column twice"),
        ({"covariates": ["s"]}, "column 's' is listed in two roles"),
    ],
)
def test_bad_settings(small, kwargs, match):
    with pytest.raises(SpecError, match=match):
        run(*small, **kwargs)


def test_inputs_are_not_mutated(small):
    hist, new = small
    before = hist.copy(), new.copy()
    run(hist, new, covariates=["x"])
    pd.testing.assert_frame_equal(hist, before[0])
    pd.testing.assert_frame_equal(new, before[1])
