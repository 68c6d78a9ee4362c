"""Survival design (churn and retention): replication on Rossi et al.'s recidivism experiment
(Fox 2002), agreement with lifelines and statsmodels, coverage on simulated churn with known
hazard ratio and RMST, and the errors users meet."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from causal.designs.survival import (
    ROSSI,
    churn_difference,
    cox_hazard_ratio,
    kaplan_meier_by_arm,
    rmst_difference,
    validate_survival_data,
)
from causal.designs.survival_value import (
    event_table,
    km_at,
    retained_time_value,
    rmst_from_table,
)
from causal.errors import DataError, DesignError
from causal.results import _json_safe

lifelines = pytest.importorskip("lifelines")
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.utils import restricted_mean_survival_time  # noqa: E402

COVARIATES = ["age", "race", "wexp", "mar", "paro", "prio"]  # with fin: Fox's seven


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return pd.read_csv(ROSSI)


def _lifelines_kmf(rossi: pd.DataFrame, fin: int, alpha: float = 0.05) -> KaplanMeierFitter:
    arm = rossi[rossi.fin == fin]
    return KaplanMeierFitter(alpha=alpha).fit(arm.week, arm.arrest)


# --- the vendored data -----------------------------------------------------------------------


def test_vendored_rossi_is_lifelines_load_rossi(rossi):
    from lifelines.datasets import load_rossi

    pd.testing.assert_frame_equal(rossi, load_rossi())
    assert rossi.shape == (432, 9) and rossi.fin.sum() == 216 and rossi.arrest.sum() == 114


# --- replication and agreement on Rossi --------------------------------------------------------


def test_kaplan_meier_tables_equal_lifelines(rossi):
    km = kaplan_meier_by_arm(rossi.week, rossi.arrest, rossi.fin, alpha=0.10)
    for fin, label in enumerate(["control", "treated"]):
        kmf = _lifelines_kmf(rossi, fin, alpha=0.10)
        table = km[label]
        np.testing.assert_allclose(table.time, kmf.survival_function_.index, rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            table.survival, kmf.survival_function_.iloc[:, 0], rtol=0, atol=1e-10
        )
        ci = kmf.confidence_interval_survival_function_
        np.testing.assert_allclose(table.conf_low, ci.iloc[:, 0], rtol=0, atol=1e-10)
        np.testing.assert_allclose(table.conf_high, ci.iloc[:, 1], rtol=0, atol=1e-10)
        events = kmf.event_table.reindex(kmf.survival_function_.index)
        np.testing.assert_array_equal(table.at_risk, events.at_risk)
        np.testing.assert_array_equal(table.events, events.observed)
        # our own product-limit kernel agrees with lifelines' curve at every event time
        own = event_table(
            rossi.week[rossi.fin == fin].to_numpy(float), rossi.arrest[rossi.fin == fin].to_numpy()
        )
        for t in own["time"]:
            assert km_at(own, t)[0] == pytest.approx(float(kmf.predict(t)), abs=1e-10)
    assert table.at_risk.iloc[0] == 216 and table.censored.sum() == 216 - 48
    assert km["treated"].survival.iloc[-1] > km["control"].survival.iloc[-1]  # arms not swapped


def test_rmst_at_52_weeks_equals_lifelines(rossi):
    r = rmst_difference(rossi.week, rossi.arrest, rossi.fin, horizon=52)
    ll = [restricted_mean_survival_time(_lifelines_kmf(rossi, fin), t=52) for fin in (0, 1)]
    assert r.details["rmst_control"] == pytest.approx(ll[0], abs=1e-8)
    assert r.details["rmst_treated"] == pytest.approx(ll[1], abs=1e-8)
    assert r.estimate == pytest.approx(ll[1] - ll[0], abs=1e-8)
    assert (round(ll[0], 4), round(ll[1], 4)) == (44.8333, 46.875)
    # Wald interval from the independent arms' SEs
    se = math.hypot(r.details["se_control"], r.details["se_treated"])
    assert r.std_error == pytest.approx(se, rel=1e-12)
    assert r.conf_low == pytest.approx(r.estimate - 1.959963984540054 * se, rel=1e-12)
    assert r.outcome == "week" and r.n_units == 432 and r.n_treated == 216
    json.dumps(_json_safe(r.to_dict()), allow_nan=False)  # event tables in details are JSON


def test_lifelines_variance_is_the_spread_of_restricted_times_not_of_the_rmst(rossi):
    """lifelines' ``return_variance`` is Var(min(T, τ)) between people, by quadrature of the
    step function; the RMST estimate's variance is n times smaller. Rossi has no censoring
    before week 52, so there our Greenwood-type variance is exactly Var(min(T, 52)) / n."""
    r = rmst_difference(rossi.week, rossi.arrest, rossi.fin, horizon=52)
    control = rossi[rossi.fin == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quad's IntegrationWarning on a step function
        _, ll_var = restricted_mean_survival_time(
            _lifelines_kmf(rossi, 0), t=52, return_variance=True
        )
    spread = float(np.var(np.minimum(control.week, 52)))
    assert r.details["restricted_time_variance_control"] == pytest.approx(spread, rel=1e-10)
    assert ll_var == pytest.approx(spread, rel=2e-3)  # quadrature error of lifelines
    assert r.details["se_control"] ** 2 == pytest.approx(spread / len(control), rel=1e-10)
    assert ll_var / r.details["se_control"] ** 2 == pytest.approx(len(control), rel=2e-3)


def _bootstrap_rmst_variance(t, e, horizon, *, reps, seed):
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        i = rng.integers(0, len(t), len(t))
        draws.append(rmst_from_table(**event_table(t[i], e[i]), horizon=horizon)[0])
    return float(np.var(draws, ddof=1))


def test_rmst_variance_matches_the_bootstrap(rossi):
    r = rmst_difference(rossi.week, rossi.arrest, rossi.fin, horizon=52)
    for fin, label in enumerate(["control", "treated"]):
        arm = rossi[rossi.fin == fin]
        boot = _bootstrap_rmst_variance(
            arm.week.to_numpy(float), arm.arrest.to_numpy(), 52, reps=2000, seed=fin
        )
        assert r.details[f"se_{label}"] ** 2 == pytest.approx(boot, rel=0.10)
    # and with heavy censoring (Rossi has none before the horizon)
    rng = np.random.default_rng(7)
    churn, censor = rng.exponential(10.0, 400), rng.uniform(2.0, 20.0, 400)
    t, e = np.minimum(churn, censor), (churn <= censor).astype(int)
    _, var, _ = rmst_from_table(**event_table(t, e), horizon=12.0)
    assert var == pytest.approx(_bootstrap_rmst_variance(t, e, 12.0, reps=2000, seed=3), rel=0.10)


def test_cox_replicates_fox_2002(rossi):
    before = rossi.copy()
    r = cox_hazard_ratio(
        rossi, duration="week", event="arrest", treatment="fin", covariates=COVARIATES
    )
    pd.testing.assert_frame_equal(rossi, before)  # the caller's frame is untouched
    # Fox (2002), appendix, R coxph (Efron ties): fin -0.3794, exp 0.684, SE 0.1914, p 0.047
    assert (round(r.estimate, 4), round(r.std_error, 4)) == (-0.3794, 0.1914)
    assert round(r.details["hazard_ratio"], 3) == 0.684 and round(r.p_value, 3) == 0.047
    assert r.details["hazard_ratio"] < r.details["hr_conf_high"] < 1.0
    # the adapter passes lifelines' numbers through
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ll = lifelines.CoxPHFitter().fit(
            rossi[["week", "arrest", "fin", *COVARIATES]], "week", "arrest"
        )
    assert r.p_value == pytest.approx(float(ll.summary.loc["fin", "p"]), abs=1e-8)
    assert r.details["hr_conf_low"] == pytest.approx(
        float(ll.summary.loc["fin", "exp(coef) lower 95%"]), abs=1e-8
    )
    assert r.details["concordance"] == pytest.approx(0.640, abs=5e-4)
    prio = next(c for c in r.details["coefficients"] if c["term"] == "prio")
    assert (round(prio["coef"], 4), round(prio["std_error"], 4)) == (0.0915, 0.0286)
    # age and wexp violate proportional hazards (as Fox finds), the treatment does not
    (check,) = r.diagnostics
    assert check.status == "warn"
    flagged = {row["term"] for row in check.table if row["p_value"] < 0.05}
    assert flagged == {"age", "wexp"}
    json.dumps(_json_safe(r.to_dict()), allow_nan=False)


def test_churn_difference_equals_km_with_greenwood_se(rossi):
    from statsmodels.duration.survfunc import SurvfuncRight

    res = churn_difference(
        rossi.week, rossi.arrest, rossi.fin, horizons={"quarter": 13, "half year": 26, "year": 52}
    )
    assert [r.details["horizon_name"] for r in res] == ["quarter", "half year", "year"]
    for r in res:
        for fin, label in enumerate(["control", "treated"]):
            arm = rossi[rossi.fin == fin]
            sm = SurvfuncRight(arm.week.to_numpy(float), arm.arrest.to_numpy())
            j = np.searchsorted(sm.surv_times, r.details["horizon"], side="right") - 1
            assert r.details[f"churn_{label}"] == pytest.approx(1 - sm.surv_prob[j], abs=1e-10)
            assert r.details[f"se_{label}"] == pytest.approx(sm.surv_prob_se[j], abs=1e-10)
    year = res[-1]
    assert year.estimate == pytest.approx(
        (1 - 0.7777777777777778) - (1 - 0.6944444444444444), abs=1e-10
    )
    (plain,) = churn_difference(rossi.week, rossi.arrest, rossi.fin, horizons=[10])
    assert plain.details["horizon_name"] == "t=10"


# --- value ------------------------------------------------------------------------------------


def test_retained_time_value_discounting(rossi):
    from scipy.integrate import quad

    r = rmst_difference(rossi.week, rossi.arrest, rossi.fin, horizon=52)
    flat = retained_time_value(r, margin_per_period=25.0, annual_discount_rate=0.0)
    for fin, label in enumerate(["control", "treated"]):
        lifelines_rmst = restricted_mean_survival_time(_lifelines_kmf(rossi, fin), t=52)
        assert flat.arms[label]["discounted_rmst"] == pytest.approx(lifelines_rmst, abs=1e-10)
    assert flat.per_customer == pytest.approx(25.0 * r.estimate, rel=1e-12)
    assert flat.std_error == pytest.approx(25.0 * r.std_error, rel=1e-12)
    assert flat.conf_low == pytest.approx(25.0 * r.conf_low, rel=1e-12)

    disc = retained_time_value(r, margin_per_period=25.0, annual_discount_rate=0.10)
    delta = math.log(1.10) / 52  # a week-52 period is worth 1/1.1 of a week-0 period
    for fin, label in enumerate(["control", "treated"]):
        kmf = _lifelines_kmf(rossi, fin)
        breaks = kmf.survival_function_.index.to_numpy()
        exact, _ = quad(
            lambda u, k=kmf: float(k.predict(u)) * math.exp(-delta * u),
            0,
            52,
            points=breaks[breaks < 52],
            limit=200,
            epsabs=1e-12,
        )
        assert disc.arms[label]["discounted_rmst"] == pytest.approx(exact, abs=1e-8)
    assert 0 < disc.per_customer < flat.per_customer
    assert disc.conf_low < disc.per_customer < disc.conf_high
    line = disc.money_line(population=1000)
    assert line.to_dict()["total"] == pytest.approx(1000 * disc.per_customer)
    json.dumps(disc.to_dict(), allow_nan=False)


# --- simulation with known truth -----------------------------------------------------------------


def _simulate(rng, n, lam0, hr, follow_up):
    arm = np.repeat([0, 1], n)
    churn = rng.exponential(1.0 / np.where(arm == 1, lam0 * hr, lam0))
    censor = rng.uniform(*follow_up, size=2 * n)  # staggered entry: follow-up varies
    return np.minimum(churn, censor), (churn <= censor).astype(int), arm


def test_intervals_cover_the_true_rmst_churn_and_value_differences():
    lam0, hr, tau, half, n, reps = 0.10, 0.6, 12.0, 6.0, 150, 200
    delta = math.log(1.10) / 12  # months, 10% a year
    rmst_true = [(1 - math.exp(-lam * tau)) / lam for lam in (lam0, lam0 * hr)]
    disc_true = [(1 - math.exp(-(lam + delta) * tau)) / (lam + delta) for lam in (lam0, lam0 * hr)]
    churn_true = math.exp(-lam0 * half) - math.exp(-lam0 * hr * half)
    rng = np.random.default_rng(20240501)
    hits = np.zeros(3)
    for _ in range(reps):
        t, e, a = _simulate(rng, n, lam0, hr, (6.0, 24.0))
        r = rmst_difference(t, e, a, horizon=tau)
        (c,) = churn_difference(t, e, a, horizons={"half": half})
        v = retained_time_value(
            r, margin_per_period=1.0, annual_discount_rate=0.10, periods_per_year=12
        )
        hits += [
            r.conf_low <= rmst_true[1] - rmst_true[0] <= r.conf_high,
            c.conf_low <= churn_true <= c.conf_high,
            v.conf_low <= disc_true[1] - disc_true[0] <= v.conf_high,
        ]
    coverage = hits / reps
    assert np.all((coverage >= 0.90) & (coverage <= 0.99)), coverage


def test_cox_recovers_a_known_hazard_ratio():
    rng = np.random.default_rng(11)
    t, e, a = _simulate(rng, 2000, 0.10, 0.6, (6.0, 24.0))
    x = rng.normal(size=len(t))  # a covariate unrelated to churn
    frame = pd.DataFrame({"months": t, "churned": e, "service": a, "x": x})
    r = cox_hazard_ratio(
        frame, duration="months", event="churned", treatment="service", covariates=["x"]
    )
    assert abs(r.estimate - math.log(0.6)) < 3 * r.std_error
    assert r.diagnostics[0].status == "pass"  # hazards are proportional by construction


@pytest.mark.slow
def test_cox_interval_coverage():
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(200):
        t, e, a = _simulate(rng, 150, 0.10, 0.6, (6.0, 24.0))
        frame = pd.DataFrame({"d": t, "e": e, "arm": a})
        r = cox_hazard_ratio(frame, duration="d", event="e", treatment="arm")
        hits += r.conf_low <= math.log(0.6) <= r.conf_high
    assert 0.90 <= hits / 200 <= 0.99


# --- errors ------------------------------------------------------------------------------------


def test_errors_name_the_column_and_what_to_do(rossi):
    t, e, a = rossi.week.copy(), rossi.arrest.copy(), rossi.fin.copy()
    with pytest.raises(DataError, match=r"column 'week': 1 negative duration.*smallest -3"):
        validate_survival_data(t.where(t.index != 5, -3), e, a)
    with pytest.raises(DataError, match=r"column 'arrest': values must be 0 or 1.*\[2\.0\]"):
        rmst_difference(t, e.where(e.index != 0, 2), a, horizon=52)
    with pytest.raises(DataError, match=r"beyond the longest follow-up in the control arm \(52\)"):
        rmst_difference(t, e, a, horizon=60)
    short = t.where(a == 0, np.minimum(t, 40))
    with pytest.raises(DataError, match=r"treated arm \(40\); choose a horizon ≤ 40"):
        churn_difference(short, e, a, horizons=[45])
    with pytest.raises(DataError, match=r"column 'fin': the treated \(1\) arm is empty"):
        kaplan_meier_by_arm(t, e, a * 0)
    missing = t.astype(float).where(~t.index.isin([1, 2, 3]))
    with pytest.raises(DataError, match=r"\['week'\]: 3 of 432 rows have missing values"):
        rmst_difference(missing, e, a, horizon=52)
    with pytest.raises(DataError, match="horizon must be a positive number"):
        rmst_difference(t, e, a, horizon=0)


def test_cox_errors(rossi):
    with pytest.raises(DataError, match=r"column 'weeks' is not in the data"):
        cox_hazard_ratio(rossi, duration="weeks", event="arrest", treatment="fin")
    gaps = rossi.assign(age=rossi.age.where(rossi.index >= 4))
    with pytest.raises(DataError, match=r"\['age'\]: 4 of 432 rows have missing values"):
        cox_hazard_ratio(gaps, duration="week", event="arrest", treatment="fin", covariates=["age"])
    text = rossi.assign(region=np.where(rossi.race == 1, "a", "b"))
    with pytest.raises(DataError, match=r"covariate 'region' is not numeric"):
        cox_hazard_ratio(
            text, duration="week", event="arrest", treatment="fin", covariates=["region"]
        )
    twin = rossi.assign(fin2=rossi.fin)
    with pytest.raises(DesignError, match="did not converge"):
        cox_hazard_ratio(
            twin, duration="week", event="arrest", treatment="fin", covariates=["fin2"]
        )
    r = cox_hazard_ratio(rossi, duration="week", event="arrest", treatment="fin")
    with pytest.raises(DesignError, match="needs the result of rmst_difference"):
        retained_time_value(r, margin_per_period=1.0)
