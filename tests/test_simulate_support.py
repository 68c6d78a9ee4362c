"""Tests of the remote-support pilot simulator: reproducibility, table layouts, that events respect
assignment, churn and the data cut, that the exact truth matches a large Monte Carlo draw and the
estimators on a default draw, the A/A variant, and parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from causal.designs.survival import churn_difference, rmst_difference
from causal.designs.track_stats import look_statistics
from causal.errors import SpecError
from causal.simulate import SimulatedPilot
from causal.simulate_support import (
    METRICS,
    _survival,
    _survival_integrals,
    remote_support_aa,
    remote_support_pilot,
)

START = pd.Timestamp("2026-03-02")


@pytest.fixture(scope="module")
def pilot() -> SimulatedPilot:
    return remote_support_pilot()


@pytest.fixture(scope="module")
def big() -> SimulatedPilot:
    return remote_support_pilot(n_customers=300_000, seed=7)


def _per_customer(p: SimulatedPilot, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's total of ``metric`` over the window (zeros included) and the arm."""
    customers, events = p.tables["customers"], p.tables["support_events"]
    rows = events[events["metric"] == metric]
    total = rows.groupby("customer_id")["value"].sum()
    y = total.reindex(customers["customer_id"], fill_value=0.0).to_numpy()
    return y, customers["treated"].to_numpy()


def _welch(y: np.ndarray, arm: np.ndarray) -> tuple[float, float]:
    a, b = y[arm == 1], y[arm == 0]
    return a.mean() - b.mean(), math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)


def _durations(p: SimulatedPilot) -> pd.DataFrame:
    return p.tables["contracts"].merge(p.tables["customers"][["customer_id", "treated"]])


def test_same_seed_same_tables_and_other_seed_differs():
    a, b = (
        remote_support_pilot(n_customers=800, seed=5),
        remote_support_pilot(n_customers=800, seed=5),
    )
    c = remote_support_pilot(n_customers=800, seed=6)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.unit_truth, b.unit_truth)
    assert a.truth == b.truth
    assert not a.tables["support_events"].equals(c.tables["support_events"])


def test_table_layouts(pilot):
    t = pilot.tables
    assert list(t["customers"]) == [
        "customer_id",
        "treated",
        "assigned_at",
        "segment",
        "tenure_months",
        "devices",
        "pre_period_repair_cost",
        "monthly_margin",
    ]
    assert list(t["support_events"]) == ["customer_id", "event_time", "metric", "value"]
    assert list(t["contracts"]) == ["customer_id", "duration_days", "churned"]
    customers = t["customers"]
    assert len(customers) == 20_000 and customers["customer_id"].is_unique
    assert abs(customers["treated"].mean() - 0.5) < 0.02
    assert set(customers["segment"]) == {"bronze", "silver", "gold"}
    assert customers["devices"].between(1, 6).all() and (customers["monthly_margin"] > 0).all()
    assert (customers["pre_period_repair_cost"] >= 0).all()
    # The covariate is informative: it is what CUPED will use.
    y, _ = _per_customer(pilot, "repair_cost")
    assert np.corrcoef(customers["pre_period_repair_cost"], y)[0, 1] > 0.1
    events = t["support_events"]
    assert set(events["metric"]) == set(METRICS)
    by = events.groupby("metric")["value"]
    assert by.min()["nps"] >= 0 and by.max()["nps"] <= 10
    assert by.min()["csat"] >= 1 and by.max()["csat"] <= 5
    assert set(events.loc[events["metric"] == "first_contact_resolution", "value"]) == {0.0, 1.0}
    assert set(events.loc[events["metric"] == "complaint", "value"]) == {1.0}
    assert (
        events.loc[events["metric"].isin(["repair_cost", "accessory_revenue"]), "value"] > 0
    ).all()
    assert events["event_time"].is_monotonic_increasing
    contracts = t["contracts"]
    assert contracts["duration_days"].between(0, 365).all()
    assert (contracts.loc[contracts["churned"] == 0, "duration_days"] == 365).all()
    assert 0.15 < contracts["churned"].mean() < 0.35


def test_enrolment_grows_and_events_respect_assignment_churn_and_cut(pilot):
    customers = pilot.tables["customers"]
    day = (customers["assigned_at"] - START).dt.days
    assert sorted(day.unique()) == list(range(30))  # every day of the first half enrols
    ev = pilot.tables["support_events"].merge(customers[["customer_id", "assigned_at"]])
    ev = ev.merge(pilot.tables["contracts"])
    since = (ev["event_time"] - ev["assigned_at"]).dt.days
    assert (since >= 0).all()  # never before assignment
    assert (since <= ev["duration_days"]).all()  # nor after churn (dated by day)
    assert ev["event_time"].min() >= START and ev["event_time"].max() == START + pd.Timedelta(
        59, "D"
    )


def test_adoption_is_uniform_over_the_ramp(pilot):
    u, treated = pilot.unit_truth, pilot.tables["customers"]["treated"].to_numpy()
    day = u["adoption_day"].to_numpy()
    assert np.isnan(day[treated == 0]).all()
    assert day[treated == 1].min() >= 0 and day[treated == 1].max() < 30
    assert abs(np.mean(day[treated == 1] < 10) - 1 / 3) < 0.02  # P(using by day s) = s / 30


def test_survival_integrals_are_exact():
    lam = np.array([0.3, 0.45]) / 365
    s0, s1, g = _survival_integrals(lam, hr=0.75, adopt=30, horizon=400)
    np.testing.assert_allclose(s0[:, 365], -np.expm1(-lam * 365) / lam, rtol=1e-13)
    for i, lam_i in enumerate(lam):
        for s in (7, 30, 365):
            for curve, k in ((s1, 1), (g, 2)):
                f = lambda t, k=k, lam_i=lam_i: _survival(lam_i, t, hr=0.75, adopt=30)[k]  # noqa: E731
                exact, _ = integrate.quad(f, 0, s, points=[30] if s > 30 else None, epsabs=1e-12)
                assert curve[i, s] == pytest.approx(exact, rel=1e-10)
    # Immediate use (A = 0): S1 = exp(-λ hr t) from assignment.
    _, s1, _ = _survival_integrals(lam, hr=0.5, adopt=0, horizon=365)
    np.testing.assert_allclose(s1[:, 365], -np.expm1(-0.5 * lam * 365) / (0.5 * lam), rtol=1e-13)


def test_truth_matches_a_large_monte_carlo_draw(big):
    truth, u = big.truth, big.unit_truth
    for metric in ("repair_cost", "accessory_revenue"):
        y, arm = _per_customer(big, metric)
        for a, label in ((0, "control"), (1, "treated")):
            expected = u[f"expected_{metric}_{label}"].to_numpy()[arm == a].mean()
            se = y[arm == a].std() / math.sqrt((arm == a).sum())
            assert abs(y[arm == a].mean() - expected) < 4 * se, (metric, label)
        diff, se = _welch(y, arm)
        assert abs(diff - truth[metric]) < 4 * se
        assert abs(y[arm == 0].mean() - truth[f"{metric}_control"]) < 4 * se
    y, arm = _per_customer(big, "complaint")
    diff, se = _welch(y, arm)
    assert abs(diff - truth["complaint"]) < 4 * se and 0 < truth["complaint"] < 0.01
    # Per answer / per contact: arm means of the answers.
    ev = big.tables["support_events"].merge(big.tables["customers"][["customer_id", "treated"]])
    for metric in ("nps", "csat", "first_contact_resolution"):
        v = ev[ev["metric"] == metric]
        diff, se = _welch(v["value"].to_numpy(), v["treated"].to_numpy())
        assert abs(diff - truth[metric]) < 4 * se, metric
        control = v.loc[v["treated"] == 0, "value"]
        assert abs(control.mean() - truth[f"{metric}_control"]) < 4 * se, metric
    nps = ev[ev["metric"] == "nps"]
    points = {a: 100 * ((g >= 9).mean() - (g <= 6).mean()) for a, g in nps.groupby("treated").value}
    assert points[1] - points[0] == pytest.approx(truth["nps_points"], abs=2.0)
    # Survival: KM RMST and churn by arm against the exact curves.
    d = _durations(big)
    for h in (180, 365):
        r = rmst_difference(d["duration_days"], d["churned"], d["treated"], horizon=h)
        assert abs(r.estimate - truth[f"rmst_difference_{h}"]) < 4 * r.std_error
        assert (
            abs(r.details["rmst_control"] - truth[f"rmst_control_{h}"])
            < 4 * r.details["se_control"]
        )
        (c,) = churn_difference(d["duration_days"], d["churned"], d["treated"], horizons=[h])
        assert abs(c.estimate - truth[f"churn_difference_{h}"]) < 4 * c.std_error
    # Daily looks, as the tracker counts them.
    events = big.tables["support_events"]
    stats = look_statistics(
        big.tables["customers"],
        events[events["metric"] == "repair_cost"],
        pd.date_range(START, periods=60),
        unit="customer_id",
        arm="treated",
        event_unit="customer_id",
        event_time="event_time",
    )
    for k in (10, 30, 45, 60):
        r = stats.iloc[k - 1]
        m1, m0 = r["sum_y_1"] / r["n_1"], r["sum_y_0"] / r["n_0"]
        se = math.sqrt(
            (r["sum_y2_1"] / r["n_1"] - m1**2) / r["n_1"]
            + (r["sum_y2_0"] / r["n_0"] - m0**2) / r["n_0"]
        )
        assert abs(m1 - m0 - truth[f"repair_cost_look_{k}"]) < 4 * se, k


def test_estimators_cover_the_truth_on_a_default_draw(pilot):
    truth = pilot.truth
    d = _durations(pilot)
    r = rmst_difference(d["duration_days"], d["churned"], d["treated"], horizon=365)
    assert r.conf_low < truth["rmst_difference_365"] < r.conf_high
    assert r.conf_low > 0  # a year of follow-up shows the retention effect
    y, arm = _per_customer(pilot, "repair_cost")
    diff, se = _welch(y, arm)
    assert diff - 1.96 * se < truth["repair_cost"] < diff + 1.96 * se
    assert diff + 1.96 * se < 0  # the saving is visible at the cut


def test_truth_shape_at_the_defaults(pilot):
    t = pilot.truth
    assert t["hazard_ratio"] == 0.75 and t["cost_saving_share"] == 0.2
    looks = [t[f"repair_cost_look_{k}"] for k in range(1, 61)]
    assert looks[-1] == pytest.approx(t["repair_cost"], rel=1e-12)
    assert looks[9] > 0.05 * looks[-1]  # early looks show little: slow enrolment and uptake
    assert np.all(np.diff(looks[5:]) < 0)  # the effect builds up
    assert t["repair_cost_60d"] < t["repair_cost"] < 0 < t["accessory_revenue"]
    assert 0 < t["rmst_difference_180"] < t["rmst_difference_365"] and t["churn_difference_365"] < 0
    assert t["retained_margin_365"] > 0 and t["nps"] > 0 and t["nps_points"] > 0
    u = pilot.unit_truth
    effect = u["expected_repair_cost_treated"] - u["expected_repair_cost_control"]
    assert effect.mean() == pytest.approx(t["repair_cost"], rel=1e-12)
    # Adopted users save exactly the share on each repair: the ratio to control is bounded by it.
    assert t["repair_cost"] / t["repair_cost_control"] > -0.2


def test_single_enrolment_day_window_is_the_full_window():
    p = remote_support_pilot(n_customers=2_000, days=40, enrolment_days=1, seed=2)
    assert p.truth["repair_cost_40d"] == pytest.approx(p.truth["repair_cost"], rel=1e-12)
    assert (p.tables["customers"]["assigned_at"] == START).all()


def test_aa_variant_and_zero_parameters_give_zero_truths():
    aa = remote_support_aa(n_customers=2_000, seed=4)
    effects = [
        k
        for k in aa.truth
        if not k.endswith("_control") and "_control_" not in k and k not in ("adoption_share",)
    ]
    assert {aa.truth[k] for k in effects if k != "hazard_ratio"} == {0.0}
    assert aa.truth["hazard_ratio"] == 1.0 and aa.truth["cost_saving_share"] == 0.0
    assert "A/A" in aa.description
    same = remote_support_pilot(
        n_customers=2_000,
        seed=4,
        cost_reduction=0,
        hazard_ratio=1,
        accessory_lift=0,
        experience_scale=0,
    )
    assert same.truth == aa.truth
    pd.testing.assert_frame_equal(same.tables["support_events"], aa.tables["support_events"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_customers": 50}, "n_customers"),
        ({"n_customers": 1.5e3 + 0.5}, "n_customers"),
        ({"days": 0}, "days"),
        ({"days": True}, "days"),
        ({"treated_share": 1.0}, "treated_share"),
        ({"treated_share": "0.5"}, "treated_share"),
        ({"cost_reduction": -0.1}, "cost_reduction"),
        ({"cost_reduction": float("nan")}, "cost_reduction"),
        ({"hazard_ratio": 0}, "hazard_ratio"),
        ({"adoption_days": -1}, "adoption_days"),
        ({"accessory_lift": -0.5}, "accessory_lift"),
        ({"experience_scale": 3}, "experience_scale"),
        ({"enrolment_days": 61}, "enrolment_days"),
        ({"followup_days": 30}, "followup_days"),
        ({"start_date": "not a date"}, "start_date"),
        ({"start_date": None}, "start_date"),
        ({"treated_share": 0.001, "n_customers": 100}, "same arm"),
    ],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(SpecError, match=match):
        remote_support_pilot(**kwargs)


def test_integral_floats_and_short_followup_are_accepted():
    p = remote_support_pilot(n_customers=1e3, days=20.0, followup_days=90, seed=1)
    assert len(p.tables["customers"]) == 1_000
    assert {k for k in p.truth if k.startswith("rmst_difference")} == {"rmst_difference_90"}
    assert p.tables["support_events"]["event_time"].max() <= START + pd.Timedelta(19, "D")
