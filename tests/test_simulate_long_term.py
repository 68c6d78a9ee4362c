"""Tests of the long-term warranty simulator: reproducibility, table layouts, the data cut, that
surrogacy holds exactly (and fails by the stated amount when violated), that the truth is the
expected effect, and parameter checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causal.errors import SpecError
from causal.simulate import SimulatedPilot
from causal.simulate_long_term import (
    SURROGATES,
    _enrolment_days,
    extended_warranty_long_term,
    past_effect_scales,
)

COVARIATES = ["segment", "region", "tenure_months", "prior_year_revenue"]
MONTHS = [f"revenue_m{m}" for m in range(1, 13)]


@pytest.fixture(scope="module")
def pilot() -> SimulatedPilot:
    return extended_warranty_long_term(n_pilot=20_000, n_historical=40_000, seed=11)


def test_same_seed_same_tables_and_other_seed_differs():
    a = extended_warranty_long_term(n_pilot=500, n_historical=2_000, seed=5)
    b = extended_warranty_long_term(n_pilot=500, n_historical=2_000, seed=5)
    c = extended_warranty_long_term(n_pilot=500, n_historical=2_000, seed=6)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert a.truth == b.truth
    assert not a.tables["pilot_signals"].equals(c.tables["pilot_signals"])


def test_table_layouts(pilot):
    t = pilot.tables
    assert list(t["pilot_customers"]) == [
        "customer_id",
        "treated",
        "assigned_at",
        "segment",
        "region",
        "tenure_months",
        "prior_year_revenue",
    ]
    assert list(t["pilot_monthly"]) == ["customer_id", "month", "orders", "revenue"]
    assert list(t["pilot_signals"]) == ["customer_id", *SURROGATES]
    assert list(t["historical"]) == [
        "customer_id",
        "experiment_id",
        "treated",
        *COVARIATES,
        *SURROGATES,
        *MONTHS,
        "revenue_12m",
    ]
    customers = t["pilot_customers"]
    assert len(customers) == 20_000 and customers["customer_id"].is_unique
    assert set(customers["treated"]) == {0, 1}
    assert abs(customers["treated"].mean() - 0.5) < 0.02
    assert set(customers["segment"]) == {"bronze", "silver", "gold"}
    signals = t["pilot_signals"]
    assert signals["nps_score"].between(0, 10).all() and signals["csat"].between(1, 5).all()
    assert signals["support_contacts_q1"].between(0, 9).all()
    assert (signals[list(SURROGATES)].notna()).all().all()
    assert set(customers["customer_id"]).isdisjoint(t["historical"]["customer_id"])


def test_data_cut_and_staggered_enrolment(pilot):
    customers = pilot.tables["pilot_customers"]
    start = pd.Timestamp("2026-01-05")
    days = (customers["assigned_at"] - start).dt.days
    assert days.min() == 0 and days.max() == 29
    monthly = pilot.tables["pilot_monthly"]
    observed = monthly.groupby("customer_id")["month"].agg(["min", "max", "count"])
    observed = observed.join(customers.set_index("customer_id")["assigned_at"])
    assert (observed["min"] == 1).all() and (observed["count"] == observed["max"]).all()
    cut = start + pd.DateOffset(months=4) + pd.Timedelta(days=15)
    complete = {
        a: sum(a + pd.DateOffset(months=i) <= cut for i in range(1, 13))
        for a in observed["assigned_at"].unique()
    }
    expected = observed["assigned_at"].map(complete)
    assert (observed["max"] == expected).all()
    assert set(observed["max"]) == {3, 4}  # month 4: customers enrolled in the first 15 days
    late = observed.loc[observed["max"] == 4, "assigned_at"]
    assert late.max() == start + pd.Timedelta(days=15)
    assert 0.45 < len(late) / len(observed) < 0.6
    # months 1..3 add up to the first-quarter revenue signal
    q1 = monthly[monthly["month"] <= 3].groupby("customer_id")["revenue"].sum()
    signals = pilot.tables["pilot_signals"].set_index("customer_id")
    np.testing.assert_allclose(q1.loc[signals.index], signals["revenue_q1"], atol=1e-9)


@pytest.mark.parametrize("start", ["2025-11-05", "2026-01-31", "2025-12-30", "2024-01-29"])
def test_three_months_complete_for_everybody_at_any_start(start):
    p = extended_warranty_long_term(n_pilot=3_000, n_historical=1_000, start_date=start, seed=1)
    counts = p.tables["pilot_monthly"].groupby("customer_id")["month"].max()
    assert counts.min() == 3 and counts.max() <= 4 and len(counts) == 3_000
    assert 28 <= _enrolment_days(pd.Timestamp(start)) <= 30


def test_historical_sample(pilot):
    h = pilot.tables["historical"]
    np.testing.assert_allclose(h[MONTHS].sum(axis=1), h["revenue_12m"], atol=1e-6)
    np.testing.assert_allclose(h[MONTHS[:3]].sum(axis=1), h["revenue_q1"], atol=1e-6)
    exp = h["experiment_id"]
    assert sorted(exp.dropna().unique()) == ["past_1", "past_2", "past_3", "past_4"]
    assert exp.isna().mean() == pytest.approx(0.6)  # 4 x 10% in experiments
    assert (h.loc[exp.isna(), "treated"] == 0).all()
    arms = h[exp.notna()].groupby("experiment_id")["treated"].agg(["sum", "count"])
    assert (arms["sum"] == 2_000).all() and (arms["count"] == 4_000).all()
    assert past_effect_scales(4).tolist() == [0.5, 1.0, 1.5, 2.0]
    past = [pilot.truth[f"past_{k}_revenue_12m"] for k in range(1, 5)]
    assert np.all(np.diff(past) > 0) and past[0] > 0


def test_truth_shape_and_unit_truth(pilot):
    t = pilot.truth
    cum = [t[f"revenue_cum_m{m}"] for m in range(1, 13)]
    assert np.all(np.diff(cum) > 0)
    assert t["revenue_3m"] == cum[2] and t["revenue_12m"] == cum[11]
    assert t["revenue_12m"] > 5 * t["revenue_3m"] > 0
    # the lagged part: months 6..12 carry most of the effect
    assert cum[11] - cum[4] > 0.6 * cum[11]
    assert t["nps_score"] > 0.9 and t["support_contacts_q1"] < 0
    u = pilot.unit_truth
    assert u["true_effect_revenue_12m"].mean() == pytest.approx(t["revenue_12m"], abs=1e-9)
    assert u["true_effect_revenue_3m"].mean() == pytest.approx(t["revenue_3m"], abs=1e-9)


def test_truth_is_the_expected_effect_on_a_large_pilot():
    """The exact expected effect agrees with a difference in means over 200,000 customers."""
    p = extended_warranty_long_term(n_pilot=200_000, n_historical=1_000, seed=2)
    d = p.tables["pilot_customers"]["treated"].to_numpy()
    signals = p.tables["pilot_signals"]
    outcomes = {"revenue_12m": p.unit_truth["hindsight_revenue_12m"].to_numpy()}
    outcomes |= {s: signals[s].to_numpy(dtype=float) for s in SURROGATES}
    for name, y in outcomes.items():
        diff = y[d == 1].mean() - y[d == 0].mean()
        se = np.sqrt(y[d == 1].var() / d.sum() + y[d == 0].var() / (1 - d).sum())
        assert abs(diff - p.truth[name]) < 4 * se, name


def _late_revenue_regression(p: SimulatedPilot) -> tuple[float, float]:
    """OLS of months 4..12 revenue on the signals, covariates and treatment (past experiments):
    the treatment coefficient and its (HC1) standard error."""
    from causal.inference import ols_robust

    h = p.tables["historical"]
    h = h[h["experiment_id"].notna()]
    X = pd.get_dummies(h[["segment", "tenure_months", "prior_year_revenue"]], dtype=float)
    X = pd.concat([X, h[list(SURROGATES)].astype(float), h["treated"].astype(float)], axis=1)
    y = h[MONTHS[3:]].sum(axis=1).to_numpy()
    fit = ols_robust(y, X.to_numpy(), names=tuple(X.columns), cov_type="HC1")
    return float(fit.params[-1]), float(np.sqrt(fit.cov[-1, -1]))


def test_surrogacy_holds_exactly_and_violation_adds_a_direct_effect():
    kwargs = {"n_pilot": 200, "n_historical": 100_000, "seed": 4}
    held = extended_warranty_long_term(**kwargs)
    coef, se = _late_revenue_regression(held)
    assert abs(coef) < 3 * se  # E[Y_4..12 | S, X, T] does not depend on T
    broken = extended_warranty_long_term(**kwargs, surrogacy_violation=5.0)
    coef, se = _late_revenue_regression(broken)
    assert abs(coef - 9 * 5.0) < 3 * se  # 5 EUR a month for months 4..12
    # The violation moves only months 4..12 and adds exactly 9 x 5 EUR to every truth.
    for name in ("pilot_signals", "pilot_customers"):
        pd.testing.assert_frame_equal(held.tables[name], broken.tables[name])
    for key, value in held.truth.items():
        if key.endswith("revenue_12m"):
            assert broken.truth[key] == pytest.approx(value + 45.0)
        elif key in SURROGATES or key in ("revenue_3m", "revenue_cum_m3"):
            assert broken.truth[key] == pytest.approx(value)


def test_effect_scale_zero_means_no_effect_in_the_pilot_only():
    p = extended_warranty_long_term(n_pilot=500, n_historical=2_000, effect_scale=0.0)
    assert all(p.truth[k] == 0 for k in ("revenue_12m", "revenue_3m", *SURROGATES))
    assert p.truth["past_1_revenue_12m"] > 0


def test_no_past_experiments():
    p = extended_warranty_long_term(n_pilot=500, n_historical=2_000, n_past_experiments=0)
    assert p.tables["historical"]["experiment_id"].isna().all()
    assert not any(k.startswith("past_") for k in p.truth)


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("n_pilot", 10, "n_pilot must be a whole number >= 200"),
        ("n_pilot", 2_000.5, "n_pilot"),
        ("n_historical", True, "n_historical"),
        ("n_past_experiments", 9, "n_past_experiments must be a whole number from 0 to 8"),
        ("n_past_experiments", -1, "n_past_experiments"),
        ("treated_share", 1.0, "treated_share"),
        ("treated_share", float("nan"), "treated_share"),
        ("surrogacy_violation", -1.0, "surrogacy_violation must be a number of EUR per month"),
        ("effect_scale", 4.0, "effect_scale must be a number in"),
        ("start_date", "not a date", "start_date is not a date"),
        ("start_date", None, "start_date is not a date"),
    ],
)
def test_bad_parameters(param, value, match):
    kwargs = {"n_pilot": 500, "n_historical": 2_000} | {param: value}
    with pytest.raises(SpecError, match=match):
        extended_warranty_long_term(**kwargs)


def test_integral_float_sizes_are_accepted():
    p = extended_warranty_long_term(n_pilot=500.0, n_historical=2e3)
    assert len(p.tables["pilot_customers"]) == 500 and len(p.tables["historical"]) == 2_000
