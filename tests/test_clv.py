"""Customer lifetime value: BG/NBD + Gamma–Gamma (causal.designs.clv).

Three kinds of truth:
1. Replication of Fader, Hardie & Lee (2005) on the CDNOW 1/10 sample (2,357 customers,
   39-week calibration 1997-01-01..1997-09-30, holdout to 1998-06-30, weeks).
2. Simulation from the model with known parameters (recovery; interval coverage in `slow`).
3. Agreement with the `lifetimes` 0.11.3 package on the same data (skipped when absent).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from causal.designs.clv import (
    BGNBDFit,
    CustomerSummary,
    GammaGammaFit,
    clv_difference,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    mean_clv,
    simulate_bgnbd,
    summarise_transactions,
)
from causal.designs.clv_models import (
    _BGNBDLikelihood,
    _GammaGammaLikelihood,
    cumulative_purchases,
)
from causal.errors import DataError, SpecError

CDNOW = Path(__file__).resolve().parents[1] / "causal" / "data" / "datasets" / "cdnow_sample.csv"
CAL_END, OBS_END = "1997-09-30", "1998-06-30"
TRUE_BG = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
TRUE_GG = (6.0, 4.0, 15.0)
LIFETIMES_REASON = "lifetimes 0.11.3 is the CLV peer (pip install lifetimes==0.11.3)"


@pytest.fixture(scope="module")
def cdnow_log() -> pd.DataFrame:
    return pd.read_csv(CDNOW, dtype={"master_id": str})


@pytest.fixture(scope="module")
def cdnow(cdnow_log) -> CustomerSummary:
    return summarise_transactions(
        cdnow_log,
        customer="customer_id",
        date="date",
        amount="spend",
        calibration_end=CAL_END,
        observation_end=OBS_END,
    )


@pytest.fixture(scope="module")
def cdnow_fits(cdnow) -> tuple[BGNBDFit, GammaGammaFit]:
    return fit_bgnbd(cdnow), fit_gamma_gamma(cdnow)


def _ages(n: int, rng: np.random.Generator) -> np.ndarray:
    """Calibration lengths of a 12-week acquisition cohort observed for 39 weeks (whole days)."""
    return (273 - rng.integers(0, 84, n)) / 7


# --- 1. replication -----------------------------------------------------------------------


def test_cdnow_file_is_the_one_tenth_sample(cdnow_log):
    assert len(cdnow_log) == 6919
    assert cdnow_log["customer_id"].nunique() == 2357
    assert (cdnow_log["date"].min(), cdnow_log["date"].max()) == ("1997-01-01", "1998-06-30")
    # every customer's first purchase is in the first quarter of 1997 (the FHL cohort)
    assert cdnow_log.groupby("customer_id")["date"].min().max() <= "1997-03-31"


def test_cdnow_summary(cdnow):
    # Hardie's summary file (shipped with lifetimes) has these counts: 946 repeat buyers
    # making 2,457 repeat purchases in weeks 1-39, and T = 38.86 for a 1 January buyer.
    assert len(cdnow) == 2357 and cdnow.n_holdout_only == 0
    assert int((cdnow.frequency > 0).sum()) == 946
    assert cdnow.frequency.sum() == 2457
    assert cdnow.T.max() == pytest.approx(272 / 7)
    assert cdnow.duration_holdout == 39.0
    # customer 1: purchases on 1997-01-01, 01-18, 08-02 (calibration) and 12-12 (holdout)
    assert cdnow.frequency[0] == 2 and cdnow.recency[0] == pytest.approx(213 / 7)
    assert cdnow.monetary_value[0] == pytest.approx((29.73 + 14.96) / 2)
    assert cdnow.frequency_holdout[0] == 1


def test_bgnbd_replicates_fhl_2005(cdnow_fits):
    bg, _ = cdnow_fits
    assert bg.converged
    # FHL (2005, Marketing Science), section 5: r = 0.243, α = 4.414, a = 0.793, b = 2.426,
    # LL = −9582.4; tolerances are the published rounding.
    assert abs(bg.r - 0.243) < 0.0005
    assert abs(bg.alpha - 4.414) < 0.0005
    assert abs(bg.a - 0.793) < 0.0005
    assert abs(bg.b - 2.426) < 0.0005
    assert abs(bg.log_likelihood - -9582.4) < 0.05


def test_gamma_gamma_replicates_fhl_2005(cdnow_fits):
    _, gg = cdnow_fits
    assert gg.converged and gg.n_customers == 946 and gg.n_excluded == 0
    # FHL (2005, JMR) and Hardie's note on the Gamma–Gamma model: p = 6.25, q = 3.74,
    # γ = 15.44. Exact mean repeat spends give v = 15.4435; lifetimes' summary file, whose
    # mean spends are rounded to cents, gives 15.4477 (prints 15.45).
    assert abs(gg.p - 6.25) < 0.005
    assert abs(gg.q - 3.74) < 0.005
    assert abs(gg.v - 15.44) < 0.005
    check = gg.diagnostics[0]
    # FHL report a correlation of 0.11 between the number of transactions and their mean value
    assert check.status == "pass" and round(check.table[0]["correlation"], 2) == 0.11


def test_holdout_aggregate_forecast(cdnow, cdnow_fits):
    bg, _ = cdnow_fits
    expected = bg.conditional_expected_purchases(39, cdnow.frequency, cdnow.recency, cdnow.T)
    actual = cdnow.frequency_holdout.sum()
    # 1,882 purchase days (1,959 transactions) in weeks 40-78 against 1,653.4 expected: the
    # model under-forecasts the holdout by 12%. Pinned so a change in either shows up.
    assert actual == 1882
    assert expected.sum() == pytest.approx(1653.4, abs=0.1)
    assert abs(expected.sum() / actual - 1) < 0.15
    # The unconditional (tracking-curve) forecast agrees with the conditional one.
    unconditional = (bg.expected_purchases(cdnow.T + 39) - bg.expected_purchases(cdnow.T)).sum()
    assert unconditional == pytest.approx(1666.7, abs=0.1)


def test_cdnow_clv(cdnow, cdnow_fits):
    bg, gg = cdnow_fits
    clv = customer_lifetime_value(bg, gg, cdnow, horizon_months=12, discount_rate=0.01)
    assert clv.shape == (2357,) and np.all(clv > 0)
    assert clv.mean() == pytest.approx(30.34, abs=0.01)
    res = mean_clv(bg, gg, cdnow, n_draws=100, seed=1)
    assert res.conf_low < res.estimate < res.conf_high
    assert res.sampling_std_error > 0 and res.std_error > res.parameter_std_error
    json.dumps(res.to_dict(), allow_nan=False)
    json.dumps(bg.to_dict(), allow_nan=False)
    json.dumps(gg.to_dict(), allow_nan=False)


# --- numerics -----------------------------------------------------------------------------


def test_likelihood_sums_and_gradients(cdnow):
    rep = cdnow.frequency > 0
    cases = (
        (_BGNBDLikelihood(cdnow.frequency, cdnow.recency, cdnow.T), [0.3, 4.0, 0.9, 2.0]),
        (
            _GammaGammaLikelihood(cdnow.frequency[rep], cdnow.monetary_value[rep]),
            [5.0, 3.0, 14.0],
        ),
    )
    for loglik, theta in cases:
        z = np.log(theta)
        ll, grad = loglik(z)
        # the sufficient-statistic sums equal the per-customer values summed
        each_ll, scores = loglik(z, each=True)
        assert ll == pytest.approx(each_ll.sum(), rel=1e-12)
        np.testing.assert_allclose(grad, scores.sum(axis=0), rtol=1e-10)
        # and the analytic gradient is the derivative
        err = optimize.check_grad(lambda v, f=loglik: f(v)[0], lambda v, f=loglik: f(v)[1], z)
        assert err < 1e-5 * np.linalg.norm(grad)


def test_expected_purchases_against_mpmath_for_heavy_buyers():
    # Euler's transformation keeps the hypergeometric term finite for heavy buyers, where
    # the textbook series has parameters of several hundred.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    theta = np.array([0.243, 4.414, 0.793, 2.426])
    r, alpha, a, b = (mpmath.mpf(float(v)) for v in theta)
    for x, T, t in ((0.0, 0.0, 39.0), (2.0, 38.86, 39.0), (400.0, 30.0, 52.0)):
        z = t / (alpha + T + t)
        exact = (a + b + x - 1) / (a - 1)
        exact *= 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * mpmath.hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        ours = cumulative_purchases(theta, np.array(x), np.array(T), np.array(t))
        assert float(ours) == pytest.approx(float(exact), rel=1e-10)


def test_dates_out_of_order_and_same_day_purchases():
    log = pd.DataFrame(
        {
            "who": ["b", "a", "a", "a", "b", "a"],
            "when": pd.to_datetime(
                ["2024-01-20", "2024-01-15", "2024-01-01", "2024-01-15", "2024-01-06", "2024-01-08"]
            ),
            "spend": [5.0, 2.0, 10.0, 3.0, 7.0, 4.0],
        }
    )
    s = summarise_transactions(
        log, customer="who", date="when", amount="spend", calibration_end="2024-01-29", period="D"
    )
    assert s.customer.tolist() == ["a", "b"]
    # a: first day 01-01, repeat days 01-08 (4) and 01-15 (2 + 3): x = 2, mean 4.5
    assert s.frequency.tolist() == [2.0, 1.0]
    assert s.recency.tolist() == [14.0, 14.0]
    assert s.T.tolist() == [28.0, 23.0]
    assert s.monetary_value.tolist() == [4.5, 5.0]
    reordered = summarise_transactions(
        log.iloc[::-1],
        customer="who",
        date="when",
        amount="spend",
        calibration_end="2024-01-29",
        period="D",
    )
    np.testing.assert_array_equal(reordered.frequency, s.frequency)
    np.testing.assert_array_equal(reordered.monetary_value, s.monetary_value)
    assert log["spend"].tolist()[0] == 5.0  # the caller's frame is not modified


# --- 2. simulation with known truth -------------------------------------------------------


def test_simulation_recovers_parameters_and_clv():
    rng = np.random.default_rng(11)
    s = simulate_bgnbd(4000, **TRUE_BG, T=_ages(4000, rng), spend=TRUE_GG, seed=12)
    bg, gg = fit_bgnbd(s), fit_gamma_gamma(s)
    fitted = np.r_[bg.theta, gg.theta]
    truth = np.r_[list(TRUE_BG.values()), TRUE_GG]
    se_log = np.sqrt(np.r_[np.diag(bg.cov_log), np.diag(gg.cov_log)])
    z = (np.log(fitted) - np.log(truth)) / se_log
    assert np.all(np.abs(z) < 3), z
    # the expected CLV of these customers under the true parameters is inside the interval
    true_clv = customer_lifetime_value(BGNBDFit(**TRUE_BG), GammaGammaFit(*TRUE_GG), s).mean()
    res = mean_clv(bg, gg, s, estimand="customers", n_draws=100, seed=3)
    assert res.conf_low < true_clv < res.conf_high
    assert res.sampling_std_error == 0.0


def test_simulated_holdout_matches_conditional_expectation():
    rng = np.random.default_rng(5)
    s = simulate_bgnbd(20_000, **TRUE_BG, T=_ages(20_000, rng), holdout=26.0, seed=6)
    fit = BGNBDFit(**TRUE_BG)
    expected = fit.conditional_expected_purchases(26.0, s.frequency, s.recency, s.T)
    # the sum of 20,000 customers' holdout purchases: Poisson-like noise of ~1%
    assert s.frequency_holdout.sum() == pytest.approx(expected.sum(), rel=0.03)


def test_clv_difference_detects_higher_spend():
    kw = {**TRUE_BG, "T": 39.0}
    treated = simulate_bgnbd(3000, **kw, spend=(6.0, 4.0, 30.0), seed=21)  # spend doubled
    control = simulate_bgnbd(3000, **kw, spend=TRUE_GG, seed=22)
    d = clv_difference(treated, control, n_draws=100, seed=4)
    assert d.conf_low > 0
    assert d.estimate == pytest.approx(d.treated.estimate - d.control.estimate)
    assert d.treated.seed != d.control.seed  # independent draws between groups
    json.dumps(d.to_dict(), allow_nan=False)


@pytest.mark.slow
def test_interval_coverage():
    """Coverage of the 95% intervals over 200 simulated samples of 4,000 customers (~3 min).

    Checked: parameters 0.92-0.98; CLV "customers" 0.94-0.95, "population" 0.91-0.925 (n = 2,000
    to 6,000): the population interval is a little short — its SE is ~4% under the spread of
    the estimates and the skew of CLV across customers is not in the normal sampling term.
    """
    truth = np.r_[list(TRUE_BG.values()), TRUE_GG]
    bg0, gg0 = BGNBDFit(**TRUE_BG, period="W"), GammaGammaFit(*TRUE_GG)
    big = simulate_bgnbd(
        400_000, **TRUE_BG, T=_ages(400_000, np.random.default_rng(99)), spend=TRUE_GG, seed=98
    )
    population_mean = customer_lifetime_value(bg0, gg0, big).mean()
    reps, n = 200, 4000
    params = np.zeros(7)
    hits = {"customers": 0, "population": 0}
    for k in range(reps):
        rng = np.random.default_rng(1000 + k)
        s = simulate_bgnbd(n, **TRUE_BG, T=_ages(n, rng), spend=TRUE_GG, seed=2000 + k)
        bg, gg = fit_bgnbd(s), fit_gamma_gamma(s)
        se = np.sqrt(np.r_[np.diag(bg.cov_log), np.diag(gg.cov_log)])
        params += np.abs(np.log(np.r_[bg.theta, gg.theta]) - np.log(truth)) / se < 1.96
        truth_here = customer_lifetime_value(bg0, gg0, s).mean()
        for estimand, target in (("customers", truth_here), ("population", population_mean)):
            r = mean_clv(bg, gg, s, estimand=estimand, n_draws=200, seed=k)
            hits[estimand] += r.conf_low <= target <= r.conf_high
    assert np.all((params / reps > 0.90) & (params / reps < 0.99)), params / reps
    assert 0.91 <= hits["customers"] / reps <= 0.99, hits
    assert 0.88 <= hits["population"] / reps <= 0.99, hits


@pytest.mark.slow
def test_population_interval_matches_customer_bootstrap(cdnow):
    """The influence-function sampling term against resampling customers and refitting."""
    rng = np.random.default_rng(5)
    means = []
    for _ in range(400):
        sb = cdnow.subset(rng.integers(0, len(cdnow), len(cdnow)))
        means.append(customer_lifetime_value(fit_bgnbd(sb), fit_gamma_gamma(sb), sb).mean())
    bg, gg = fit_bgnbd(cdnow), fit_gamma_gamma(cdnow)
    ours = mean_clv(bg, gg, cdnow, n_draws=1000, seed=0)
    # checked: customer bootstrap SE 2.80, ours 2.79 (parameters alone 1.58)
    assert ours.std_error == pytest.approx(np.std(means), rel=0.15)


# --- bad input ----------------------------------------------------------------------------


def _log(**changes) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "id": [1, 1, 2, 2],
            "day": ["2024-01-01", "2024-01-10", "2024-01-03", "2024-02-20"],
            "spend": [10.0, 12.0, 8.0, 9.0],
        }
    )
    return base.assign(**changes)


def _summarise(log: pd.DataFrame, **kw):
    opts = {"customer": "id", "date": "day", "amount": "spend", "calibration_end": "2024-01-31"}
    return summarise_transactions(log, **{**opts, **kw})


@pytest.mark.parametrize(
    ("log", "kw", "match"),
    [
        (
            _log(),
            {},
            r"column 'day': 1 transactions are in the future of the calibration end "
            r"2024-01-31 \(latest 2024-02-20\); pass observation_end",
        ),
        (
            _log(),
            {"observation_end": "2024-02-10"},
            r"1 transactions are after the observation "
            r"end 2024-02-10 .*drop them or move observation_end",
        ),
        (
            _log(),
            {"calibration_end": "2023-12-01"},
            r"calibration_end 2023-12-01 is before the "
            r"first transaction in column 'day' \(2024-01-01\)",
        ),
        (
            _log(),
            {"observation_end": "2024-01-15"},
            r"observation_end 2024-01-15 is before "
            r"calibration_end 2024-01-31",
        ),
        (
            _log(day=["2024-01-01", "not a date", "2024-01-03", "2024-01-04"]),
            {},
            r"column 'day': 1 dates cannot be read \(first: 'not a date' at row 1\)",
        ),
        (
            _log(day=["2024-01-01", None, "2024-01-03", "2024-01-04"]),
            {},
            r"column 'day': 1 transactions have no date \(first at row 1\)",
        ),
        (
            _log(day=[20240101, 20240110, 20240103, 20240104]),
            {},
            r"column 'day' holds numbers \(e.g. 20240101\), not dates",
        ),
        (
            _log(spend=[10.0, -12.0, 8.0, 9.0], day=["2024-01-01"] * 4),
            {},
            r"column 'spend': 1 amounts are negative \(first: -12.0 at row 1\); net refunds",
        ),
        (
            _log(spend=[10.0, None, 8.0, 9.0], day=["2024-01-01"] * 4),
            {},
            r"column 'spend': 1 amounts are missing or not numbers",
        ),
        (
            _log(id=[1, None, 2, 2], day=["2024-01-01"] * 4),
            {},
            r"column 'id': 1 transactions have no customer id \(first at row 1\)",
        ),
        (_log(), {"customer": "client"}, r"column 'client' is not in the transaction log"),
        (_log(), {"calibration_end": "soon"}, r"calibration_end 'soon' is not a date"),
    ],
)
def test_bad_transaction_logs(log, kw, match):
    with pytest.raises(DataError, match=match):
        _summarise(log, **kw)


def test_holdout_only_customers_are_counted_not_summarised():
    s = _summarise(_log(id=[1, 1, 2, 3]), observation_end="2024-02-29")
    assert s.customer.tolist() == [1, 2] and s.n_holdout_only == 1


@pytest.mark.parametrize("rate", [-0.01, 1.0, 1.5, float("nan")])
def test_discount_rate_must_be_monthly_in_unit_interval(cdnow, cdnow_fits, rate):
    bg, gg = cdnow_fits
    with pytest.raises(SpecError, match=r"discount_rate must be a monthly rate in \[0, 1\)"):
        customer_lifetime_value(bg, gg, cdnow, discount_rate=rate)


def test_other_clv_options_are_checked(cdnow, cdnow_fits):
    bg, gg = cdnow_fits
    with pytest.raises(SpecError, match="horizon_months must be a whole number"):
        customer_lifetime_value(bg, gg, cdnow, horizon_months=0)
    with pytest.raises(SpecError, match=r"margin must be a share of spend in \(0, 1\]"):
        customer_lifetime_value(bg, gg, cdnow, margin=30)
    with pytest.raises(SpecError, match="estimand 'everyone' is not known"):
        mean_clv(bg, gg, cdnow, estimand="everyone")
    with pytest.raises(Exception, match="needs the summary the models were fitted on"):
        mean_clv(bg, gg, cdnow.subset(cdnow.frequency > 0), n_draws=10)


def test_rfm_table_is_validated():
    frame = pd.DataFrame({"frequency": [1, 0], "recency": [5.0, 0.0], "T": [4.0, 3.0]})
    with pytest.raises(DataError, match=r"need 0 ≤ recency ≤ T"):
        fit_bgnbd(frame)
    with pytest.raises(DataError, match="column 'frequency': repeat purchase counts"):
        CustomerSummary.from_frame(frame.assign(frequency=[1.5, 0]))


# --- 3. agreement with lifetimes ----------------------------------------------------------


@pytest.fixture(scope="module")
def lifetimes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecations raised at lifetimes' import
        return pytest.importorskip("lifetimes", reason=LIFETIMES_REASON)


def test_summary_equals_lifetimes(lifetimes, cdnow_log, cdnow):
    from lifetimes.utils import calibration_and_holdout_data

    log = cdnow_log.assign(date=pd.to_datetime(cdnow_log["date"]))
    # lifetimes' freq="W" rounds dates to calendar weeks; days / 7 is freq="D", multiplier 7
    theirs = calibration_and_holdout_data(
        log,
        "customer_id",
        "date",
        calibration_period_end=CAL_END,
        observation_period_end=OBS_END,
        freq="D",
        freq_multiplier=7,
        monetary_value_col="spend",
    ).sort_index()
    ours = cdnow.to_frame()
    np.testing.assert_array_equal(ours.index, theirs.index)
    for mine, col in (
        ("frequency", "frequency_cal"),
        ("recency", "recency_cal"),
        ("T", "T_cal"),
        ("frequency_holdout", "frequency_holdout"),
        ("duration_holdout", "duration_holdout"),
    ):
        np.testing.assert_array_equal(ours[mine].to_numpy(), theirs[col].to_numpy(), err_msg=col)
    # mean spend: pandas' groupby mean sums with Kahan compensation, we divide a plain sum by
    # x, so 73 of 2,357 values differ in the last bit
    np.testing.assert_allclose(ours["monetary_value"], theirs["monetary_value_cal"], rtol=1e-14)


def test_summary_equals_lifetimes_on_a_messy_log(lifetimes):
    from lifetimes.utils import summary_data_from_transaction_data

    rng = np.random.default_rng(0)
    n = 3000
    log = pd.DataFrame(
        {
            "cust": rng.choice([f"c{i}" for i in range(400)], n),
            "ts": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min"),
            "amount": rng.gamma(2.0, 20.0, n).round(2),
        }
    ).sample(frac=1.0, random_state=1)
    end = "2023-12-31"
    ours = summarise_transactions(
        log, customer="cust", date="ts", amount="amount", calibration_end=end
    ).to_frame()
    theirs = summary_data_from_transaction_data(
        log,
        "cust",
        "ts",
        monetary_value_col="amount",
        observation_period_end=end,
        freq="D",
        freq_multiplier=7,
    ).sort_index()
    np.testing.assert_array_equal(ours.index, theirs.index)
    for col in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[col].to_numpy(), theirs[col].to_numpy(), err_msg=col)
    # same-day amounts are summed in a different order: equal to rounding
    np.testing.assert_allclose(ours["monetary_value"], theirs["monetary_value"], rtol=1e-12)


def test_fits_and_predictions_agree_with_lifetimes(lifetimes, cdnow, cdnow_fits):
    bg, gg = cdnow_fits
    x, t_x, T, m = cdnow.frequency, cdnow.recency, cdnow.T, cdnow.monetary_value
    their_bg = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    rep = x > 0
    their_gg = lifetimes.GammaGammaFitter().fit(x[rep], m[rep])
    for ours, theirs in ((bg, their_bg), (gg, their_gg)):
        for name, value in ours.params.items():
            assert value == pytest.approx(
                their_bg.params_[name] if ours is bg else their_gg.params_[name], rel=1e-3
            ), name
        # lifetimes' off-diagonal variances are scaled θ_j² instead of θ_i θ_j: compare SEs
        their_se = theirs.standard_errors_
        for name, se in ours.std_errors.items():
            assert se == pytest.approx(their_se[name], rel=1e-2), name
    # predictions at lifetimes' own parameters, to floating-point agreement
    same_bg = BGNBDFit(**their_bg.params_.to_dict(), period="W")
    same_gg = GammaGammaFit(**their_gg.params_.to_dict())
    for t in (1.0, 39.0, 104.0):
        np.testing.assert_allclose(
            same_bg.conditional_expected_purchases(t, x, t_x, T),
            their_bg.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
            rtol=1e-9,
        )
    np.testing.assert_allclose(
        same_bg.expected_purchases(np.array([1.0, 10.0, 39.0, 78.0])),
        their_bg.expected_number_of_purchases_up_to_time(np.array([1.0, 10.0, 39.0, 78.0])),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        same_bg.probability_alive(x, t_x, T),
        their_bg.conditional_probability_alive(x, t_x, T),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        same_gg.conditional_expected_spend(x, m),
        their_gg.conditional_expected_average_profit(pd.Series(x), pd.Series(m)),
        rtol=1e-12,
    )
    their_clv = their_gg.customer_lifetime_value(
        their_bg,
        pd.Series(x),
        pd.Series(t_x),
        pd.Series(T),
        pd.Series(m),
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    ours_clv = customer_lifetime_value(
        same_bg, same_gg, cdnow, horizon_months=12, discount_rate=0.01
    )
    np.testing.assert_allclose(ours_clv, their_clv.to_numpy(), rtol=1e-9)
    # log-likelihoods: lifetimes reports the mean in rescaled time, so compare at equal θ
    assert bg.log_likelihood == pytest.approx(-9582.43, abs=0.01)
    assert gg.log_likelihood == pytest.approx(-their_gg._negative_log_likelihood_ * 946, rel=1e-8)
    assert math.isfinite(their_bg._negative_log_likelihood_)
