"""Effects over horizons and NPS: exact agreement with Welch and statsmodels, coverage by
simulation, bootstrap agreement, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from causal.designs.horizons import horizon_effects, sup_t_critical_value
from causal.designs.nps import bootstrap_nps_se, nps_difference
from causal.errors import DataError
from causal.inference import welch_difference


def _pilot(rng, n=600, effects=(1.0, 2.5, 4.0, 6.0), followup_share=0.5):
    """Cumulative outcome at 1..4 months; half the units are followed only 3 months."""
    d = rng.integers(0, 2, n)
    monthly = rng.gamma(2.0, 5.0, (n, 4)) + d[:, None] * np.diff(effects, prepend=0.0)
    y = monthly.cumsum(axis=1)
    followup = np.where(rng.random(n) < followup_share, 3.0, 4.0)
    y[followup < 4, 3] = np.nan
    return y, d, followup


def test_each_horizon_is_welch_on_the_units_followed_that_long():
    y, d, f = _pilot(np.random.default_rng(1))
    fx = horizon_effects(y, d, horizons=[1, 2, 3, 4], followup=f)
    for j in range(4):
        keep = f >= j + 1
        w = welch_difference(y[keep, j], d[keep])
        assert fx.estimate[j] == pytest.approx(w.difference, abs=1e-12)
        assert fx.std_error[j] == pytest.approx(w.std_error, rel=1e-12)
    assert fx.n_treated[3] + fx.n_control[3] == int((f >= 4).sum())


def test_joint_covariance_equals_statsmodels_stacked_cluster_robust():
    y, d, f = _pilot(np.random.default_rng(2), n=300)
    fx = horizon_effects(y, d, horizons=[1, 2, 3, 4], followup=f)
    rows = [
        {"unit": i, "h": f"h{j}", "y": y[i, j], "d": d[i]}
        for i in range(len(d))
        for j in range(4)
        if f[i] >= j + 1
    ]
    stacked = pd.DataFrame(rows)
    fit = smf.ols("y ~ 0 + C(h) + C(h):d", stacked).fit(
        cov_type="cluster", cov_kwds={"groups": stacked["unit"], "use_correction": False}
    )
    names = [f"C(h)[h{j}]:d" for j in range(4)]
    np.testing.assert_allclose(fit.params[names].to_numpy(), fx.estimate, atol=1e-10)
    # statsmodels' CR0 has no small-sample factor; ours scales each arm's block by m / (m - 1)
    # (m = units of the arm seen at both horizons) so the diagonal is Welch's.
    raw = np.zeros((4, 4))
    for arm in (0, 1):
        seen = np.column_stack([(f >= j + 1) & (d == arm) for j in range(4)]).astype(float)
        both = seen.T @ seen
        resid = np.where(seen > 0, y - np.nanmean(np.where(seen > 0, y, np.nan), axis=0), 0.0)
        raw += (resid / seen.sum(axis=0)).T @ (resid / seen.sum(axis=0))
        assert both.min() > 1
    np.testing.assert_allclose(fit.cov_params().loc[names, names].to_numpy(), raw, rtol=1e-9)
    seen_any = fx.covariance / raw
    assert np.all((seen_any > 1) & (seen_any < 1.02))


def test_running_totals_of_per_period_columns_equal_the_cumulative_columns():
    rng = np.random.default_rng(3)
    y, d, _ = _pilot(rng, followup_share=0.0)
    per_period = np.diff(y, axis=1, prepend=0.0)
    cum = horizon_effects(y, d, horizons=[1, 2, 3, 4])
    inc = horizon_effects(per_period, d, horizons=[1, 2, 3, 4], cumulative=False)
    total, total_se = inc.running_totals()
    np.testing.assert_allclose(total, cum.estimate, atol=1e-10)
    np.testing.assert_allclose(total_se, cum.std_error, rtol=1e-10)
    step, step_se = cum.increments()
    np.testing.assert_allclose(step, inc.estimate, atol=1e-10)
    np.testing.assert_allclose(step_se, inc.std_error, rtol=1e-10)


def test_simultaneous_band_covers_the_whole_true_curve_about_95_percent():
    rng = np.random.default_rng(4)
    truth = np.array([1.0, 2.5, 4.0, 6.0])
    covered = pointwise_all = 0
    reps = 400
    for _ in range(reps):
        y, d, f = _pilot(rng, n=400, effects=truth)
        fx = horizon_effects(y, d, horizons=[1, 2, 3, 4], followup=f, band_draws=20_000)
        dev = np.abs(fx.estimate - truth) / fx.std_error
        covered += bool(np.all(dev <= fx.critical_value))
        pointwise_all += bool(np.all(dev <= 1.96))
    assert 0.92 <= covered / reps <= 0.98
    assert pointwise_all / reps < covered / reps  # pointwise intervals under-cover the curve


def test_sup_t_critical_value_between_pointwise_and_bonferroni():
    cov = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.8], [0.6, 0.8, 1.0]])
    crit = sup_t_critical_value(cov)
    assert 1.96 < crit < 2.394  # Bonferroni for three: 2.394
    assert sup_t_critical_value(np.ones((3, 3))) == pytest.approx(1.96, abs=0.01)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("beyond", r"5 is beyond the longest follow-up \(4\)"),
        ("gap", r"rev_3m: 1 units followed for 3 or longer have no value"),
        ("order", r"increasing order"),
        ("few", r"only 1 treated units are followed for 4 months"),
    ],
)
def test_bad_horizons_give_clear_errors(change, message):
    y, d, f = _pilot(np.random.default_rng(5), n=60)
    horizons = [1, 2, 3, 4]
    if change == "beyond":
        y = np.column_stack([y, y[:, 3]])
        horizons = [1, 2, 3, 4, 5]
    if change == "gap":
        y[0, 2] = np.nan
    if change == "order":
        horizons = [1, 3, 2, 4]
    if change == "few":
        f = np.where(d == 1, 3.0, f)
        f[np.flatnonzero(d == 1)[0]] = 4.0
        y[f >= 4, 3] = 1.0
    columns = [f"rev_{h}m" for h in horizons]
    with pytest.raises(DataError, match=message):
        horizon_effects(y, d, horizons=horizons, followup=f, columns=columns)


def test_nps_standard_error_matches_the_bootstrap_to_two_decimals():
    rng = np.random.default_rng(6)
    n = 20_000
    d = rng.integers(0, 2, n)
    # Treated answer a little higher: more promoters, fewer detractors.
    probs0 = np.array([3, 2, 2, 3, 4, 5, 6, 10, 15, 25, 25], dtype=float)
    probs1 = probs0 * np.linspace(0.8, 1.2, 11)
    s = np.where(
        d == 1,
        rng.choice(11, n, p=probs1 / probs1.sum()),
        rng.choice(11, n, p=probs0 / probs0.sum()),
    )
    res = nps_difference(s.astype(float), d)
    boot = bootstrap_nps_se(s, d, replications=400_000, seed=7)
    assert round(res.std_error, 2) == round(boot, 2) or abs(res.std_error - boot) < 0.005
    assert res.conf_low < res.difference < res.conf_high


def test_nps_interval_covers_the_true_difference_in_simulation():
    rng = np.random.default_rng(8)
    p0, p1 = (0.40, 0.25), (0.48, 0.20)  # promoters, detractors
    truth = 100 * ((p1[0] - p1[1]) - (p0[0] - p0[1]))
    hits = 0
    for _ in range(400):
        d = rng.integers(0, 2, 1000)
        u = rng.random(1000)
        prom = np.where(d == 1, p1[0], p0[0])
        det = np.where(d == 1, p1[1], p0[1])
        s = np.where(u < prom, 10.0, np.where(u < prom + det, 2.0, 7.0))
        res = nps_difference(s, d)
        hits += res.conf_low <= truth <= res.conf_high
    assert 0.92 <= hits / 400 <= 0.98


def test_nps_rejects_answers_outside_zero_to_ten():
    with pytest.raises(DataError, match=r"nps_score: 1 answers are not whole numbers from 0 to 10"):
        nps_difference(np.array([10, 9, 11.0, 3]), np.array([1, 0, 1, 0]), column="nps_score")


def test_csat_share_difference_equals_statsmodels_wald_interval():
    from statsmodels.stats.proportion import confint_proportions_2indep

    from causal.designs.nps import satisfied_share_difference

    rng = np.random.default_rng(9)
    d = rng.integers(0, 2, 3000)
    s = np.where(d == 1, rng.integers(2, 6, 3000), rng.integers(1, 6, 3000)).astype(float)
    res = satisfied_share_difference(s, d, satisfied_from=4)
    sat1, sat0 = int((s[d == 1] >= 4).sum()), int((s[d == 0] >= 4).sum())
    lo, hi = confint_proportions_2indep(
        sat1, int((d == 1).sum()), sat0, int((d == 0).sum()), method="wald", compare="diff"
    )
    assert res["conf_low"] == pytest.approx(100 * lo, rel=1e-9)
    assert res["conf_high"] == pytest.approx(100 * hi, rel=1e-9)
