"""Confidence sequences for a monitored pilot and the per-look statistics that feed them.

The A/A and power calibration over thousands of simulated pilots is in
tests/test_sequential_calibration.py (marked ``calibration``).
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from causal.data.dataset import validate_table
from causal.designs import abtest
from causal.designs.sequential import (
    COVARIATE_COLUMNS,
    KEEP_RUNNING,
    NEGATIVE,
    NO_EFFECT,
    OUTCOME_COLUMNS,
    POSITIVE,
    anytime_p_value,
    asymptotic_cs,
    cs_margin,
    decision,
    difference_at_look,
    optimal_rho2,
    sample_ratio_at_look,
)
from causal.designs.track_stats import (
    check_units_stable,
    look_statistics,
    look_statistics_sql,
)
from causal.errors import DataError, DesignError

# --- the formula --------------------------------------------------------------------------------


def test_cs_equals_hand_computation():
    """Half-width σ̂ sqrt(2(nρ²+1)/(n²ρ²) log(sqrt(nρ²+1)/α)), ρ² from Lambert W₋₁, by hand."""
    alpha, planned, n, var, est = 0.05, 12_000, 3_000, 2.5, 0.4
    # W₋₁(z) solves w e^w = z with w ≤ −1: find it by bisection instead of scipy's lambertw
    z = -(alpha**2) * math.exp(alpha**2 - 1)
    w = optimize.brentq(lambda w: w * math.exp(w) - z, -50, -1)
    rho2 = (-w - 1) / planned
    assert optimal_rho2(planned, alpha=alpha) == pytest.approx(rho2, rel=1e-12)
    half = math.sqrt(var) * math.sqrt(
        2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )
    low, high = asymptotic_cs(est, var, n, alpha=alpha, planned_n=planned)
    assert (float(low), float(high)) == pytest.approx((est - half, est + half), rel=1e-12)


def test_rho_makes_the_cs_narrowest_at_the_planned_size():
    planned, alpha = 12_000, 0.05

    def width(log_rho2):
        r = math.exp(log_rho2)
        v = planned * r + 1
        return math.sqrt(2 * v / (planned**2 * r) * math.log(math.sqrt(v) / alpha))

    best = optimize.minimize_scalar(
        width, bounds=(-20, 0), method="bounded", options={"xatol": 1e-10}
    )
    opt = math.log(optimal_rho2(planned, alpha=alpha))
    # the minimum is flat: the optimiser finds ρ² to ~1e-3, the width around it tells more
    assert best.x == pytest.approx(opt, abs=2e-3)
    assert width(opt) < min(width(opt - 1e-3), width(opt + 1e-3))
    # GrowthBook's closed form (first-order Lambert expansion) is a hair wider at t*
    gb = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / planned
    ratio = width(math.log(gb)) / width(math.log(optimal_rho2(planned, alpha=alpha)))
    assert 1.0 < ratio < 1.0001


def test_cs_contains_fixed_ci_and_shrinks_with_n():
    n = np.array([400, 1_000, 4_000, 12_000, 50_000])
    margin = cs_margin(n, planned_n=12_000)
    assert np.all(np.diff(margin) < 0)
    # relative to the fixed CI's 1.96/sqrt(n), always wider by at least sqrt(-2 log α)/1.96
    ratio = margin * np.sqrt(n) / stats.norm.ppf(0.975)
    assert np.all(ratio >= math.sqrt(-2 * math.log(0.05)) / stats.norm.ppf(0.975))
    assert ratio.argmin() == 3  # narrowest, relative to the CI, at the planned size

    rng = np.random.default_rng(1)
    y = rng.normal(size=4_000)
    d = rng.integers(0, 2, 4_000)
    looks = [1_000, 2_000, 4_000]
    frame = pd.DataFrame([_arm_sums(y[:k], d[:k]) for k in looks])
    est = difference_at_look(frame, planned_n=4_000)
    assert np.all(est.cs_low < est.conf_low) and np.all(est.cs_high > est.conf_high)
    assert np.all(np.diff(est.cs_high - est.cs_low) < 0)


def test_difference_matches_abtest_welch_and_cuped():
    rng = np.random.default_rng(3)
    n = 3_000
    x = rng.gamma(2.0, 10.0, n)
    d = rng.integers(0, 2, n)
    y = 5 + 0.8 * x + 2.0 * d + rng.normal(0, 4 + 2 * d, n)
    table = pd.DataFrame({"id": range(n), "d": d, "x": x, "y": y})
    ds = validate_table(
        table, unit="id", treatment="d", outcomes={"y": "continuous"}, covariates=("x",)
    )
    sums = _arm_sums(y, d, x)
    plain = difference_at_look(sums, planned_n=n)
    ref = abtest.difference_in_means(ds, "y")
    assert plain.estimate == pytest.approx(ref.estimate, rel=1e-10)
    assert plain.std_error == pytest.approx(ref.std_error, rel=1e-10)
    # per-unit variance n·SE² = s1²/p1 + s0²/p0
    p1 = d.mean()
    sigma2 = y[d == 1].var(ddof=1) / p1 + y[d == 0].var(ddof=1) / (1 - p1)
    assert plain.variance_per_unit == pytest.approx(sigma2, rel=1e-10)

    adj = difference_at_look(sums, planned_n=n, cuped=True)
    ref_c = abtest.cuped(ds, "y")
    assert adj.estimate == pytest.approx(ref_c.estimate, rel=1e-9)
    assert adj.std_error == pytest.approx(ref_c.std_error, rel=1e-9)
    assert adj.theta == pytest.approx(ref_c.details["theta"]["x"], rel=1e-9)
    # the covariate explains most of the outcome: a much narrower CS
    assert (adj.cs_high - adj.cs_low) < 0.6 * (plain.cs_high - plain.cs_low)


def test_anytime_p_value_is_dual_to_the_cs():
    rng = np.random.default_rng(5)
    est = rng.normal(0, 1, 2_000)
    se = rng.uniform(0.05, 1.0, 2_000)
    n = rng.integers(100, 50_000, 2_000)
    var = se**2 * n
    low, high = asymptotic_cs(est, var, n, planned_n=10_000)
    p = anytime_p_value(est, se, n, planned_n=10_000)
    excludes = (low > 0) | (high < 0)
    assert excludes.any() and (~excludes).any()
    np.testing.assert_array_equal(p < 0.05, excludes)


def test_looks_with_too_few_units_are_nan():
    frame = pd.DataFrame(
        [
            {"n_0": 1, "n_1": 0, "sum_y_0": 1.0, "sum_y_1": 0.0, "sum_y2_0": 1.0, "sum_y2_1": 0.0},
            {"n_0": 3, "n_1": 3, "sum_y_0": 3.0, "sum_y_1": 6.0, "sum_y2_0": 5.0, "sum_y2_1": 14.0},
        ]
    )
    est = difference_at_look(frame, planned_n=100)
    assert np.isnan(est.estimate[0]) and np.isnan(est.cs_low[0])
    assert est.estimate[1] == pytest.approx(1.0)
    assert list(decision(est)) == [KEEP_RUNNING, KEEP_RUNNING]


# --- decisions ----------------------------------------------------------------------------------


def _look(mean1: float, n_per_arm: int, *, planned: float, sd: float = 1.0):
    """Arm sums of two arms with means ``mean1`` vs 0 and standard deviation ``sd``."""
    ss = sd**2 * (n_per_arm - 1)
    return difference_at_look(
        {
            "n_0": n_per_arm,
            "n_1": n_per_arm,
            "sum_y_0": 0.0,
            "sum_y_1": mean1 * n_per_arm,
            "sum_y2_0": ss,
            "sum_y2_1": ss + n_per_arm * mean1**2,
        },
        planned_n=planned,
    )


def test_decisions_on_constructed_cases():
    assert decision(_look(0.5, 500, planned=10_000)) == POSITIVE
    assert decision(_look(-0.5, 500, planned=10_000)) == NEGATIVE
    assert decision(_look(0.01, 500, planned=10_000)) == KEEP_RUNNING
    assert decision(_look(0.01, 5_000, planned=10_000)) == NO_EFFECT
    # past the planned size a clear effect still reads as an effect
    assert decision(_look(0.5, 5_000, planned=10_000)) == POSITIVE
    # a guardrail (complaints): an increase is harmful
    assert decision(_look(0.5, 500, planned=10_000), direction="decrease") == NEGATIVE
    assert decision(_look(-0.5, 500, planned=10_000), direction="decrease") == POSITIVE
    # planned_n given at the decision overrides the look's
    assert decision(_look(0.01, 500, planned=10_000), planned_n=1_000) == NO_EFFECT
    with pytest.raises(DesignError, match="direction"):
        decision(_look(0.5, 500, planned=10_000), direction="up")  # type: ignore[arg-type]


def test_decisions_vectorised_and_a_fixed_ci_that_would_have_stopped():
    # z = 2.5 at the look: the fixed CI excludes 0, the CS does not (keep running)
    look = _look(2.5 * math.sqrt(2 / 2_000), 2_000, planned=10_000)
    assert look.conf_low > 0 and look.cs_low < 0 < look.cs_high
    assert decision(look) == KEEP_RUNNING
    several = difference_at_look(
        pd.concat([_as_row(_look(m, 500, planned=1)) for m in (0.5, -0.5, 0.0)]),
        planned_n=10_000,
    )
    assert list(decision(several)) == [POSITIVE, NEGATIVE, KEEP_RUNNING]


def test_to_result_reports_the_cs_and_sample_ratio():
    look = _look(0.3, 800, planned=4_000)
    r = look.to_result("revenue")
    assert (r.conf_low, r.conf_high) == (look.cs_low, look.cs_high)
    assert r.details["fixed_conf_low"] == look.conf_low and r.n_units == 1_600
    assert r.estimator == "sequential_difference_in_means" and r.p_value == look.p_value_anytime
    frame = look.to_frame()
    assert frame.shape[0] == 1 and frame["planned_n"].iloc[0] == 4_000
    assert sample_ratio_at_look({"n_0": 800, "n_1": 800}).status == "pass"
    assert sample_ratio_at_look({"n_0": [100, 1_000], "n_1": [100, 1_200]}).status == "fail"
    assert sample_ratio_at_look({"n_0": 0, "n_1": 0}).status == "n/a"


def test_cuped_needs_covariate_sums_that_vary():
    with pytest.raises(DesignError, match="sum_x_0"):
        difference_at_look(_as_row(_look(0.1, 100, planned=1)), planned_n=1_000, cuped=True)
    rng = np.random.default_rng(8)
    d = np.tile([0, 1], 20)
    x = np.r_[np.full(6, 5.0), rng.normal(5, 2, 34)]  # the first six units share one value
    y = x + d + rng.normal(size=40)
    frame = pd.DataFrame([_arm_sums(y[:k], d[:k], x[:k]) for k in (2, 6, 40)])
    est = difference_at_look(frame, planned_n=40, cuped=True)
    plain = difference_at_look(frame, planned_n=40)
    assert np.isnan(est.estimate[0])  # one unit per arm
    assert est.theta[1] == 0 and est.estimate[1] == pytest.approx(plain.estimate[1])
    assert est.theta[2] == pytest.approx(1.0, abs=0.2)
    with pytest.raises(DesignError, match="does not vary"):
        difference_at_look(frame.iloc[:2], planned_n=40, cuped=True)


# --- per-look statistics: numpy == SQL == naive pandas --------------------------------------


def _pilot(seed: int = 0, n: int = 400, days: int = 12):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-03-01")
    day = rng.integers(0, days + 2, n)  # some units join after the last look
    units = pd.DataFrame(
        {
            "customer": [f"c{i:04d}" for i in rng.permutation(n)],  # string ids, not sorted
            "group": rng.integers(0, 2, n),
            "assigned": start + pd.to_timedelta(day, "D"),
            "pre_spend": rng.gamma(2.0, 10.0, n).round(2),
        }
    )
    owner = rng.integers(0, n, 3 * n)
    delay = rng.integers(0, 8, owner.size)  # same day as assignment included
    events = pd.DataFrame(
        {
            "customer": units["customer"].to_numpy()[owner],
            "at": units["assigned"].to_numpy()[owner] + pd.to_timedelta(delay, "D").to_numpy(),
            "amount": rng.gamma(2.0, 5.0, owner.size).round(2),
        }
    )
    looks = pd.date_range(start + pd.Timedelta(days=1), periods=days - 1, freq="D")
    return units, events, looks


COLS = {
    "unit": "customer",
    "arm": "group",
    "assigned_at": "assigned",
    "covariate": "pre_spend",
    "event_unit": "customer",
    "event_time": "at",
    "value": "amount",
}


def _naive(units: pd.DataFrame, events: pd.DataFrame, looks) -> pd.DataFrame:
    rows = []
    for look in looks:
        u = units[units["assigned"] <= look]
        y = events[events["at"] <= look].groupby("customer")["amount"].sum()
        u = u.assign(y=u["customer"].map(y).fillna(0.0), x=u["pre_spend"])
        row = {"look": look}
        for a in (0, 1):
            g = u[u["group"] == a]
            row |= {
                f"n_{a}": len(g),
                f"sum_y_{a}": g["y"].sum(),
                f"sum_y2_{a}": (g["y"] ** 2).sum(),
                f"sum_x_{a}": g["x"].sum(),
                f"sum_x2_{a}": (g["x"] ** 2).sum(),
                f"sum_xy_{a}": (g["x"] * g["y"]).sum(),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def test_look_statistics_numpy_sql_and_naive_agree():
    units, events, looks = _pilot()
    fast = look_statistics(units, events, looks, **COLS)
    naive = _naive(units, events, looks)
    con = duckdb.connect()
    con.register("units_v", units)
    con.register("events_v", events)
    con.register("looks_v", pd.DataFrame({"look": looks}))
    sql = con.execute(look_statistics_sql("units_v", "events_v", "looks_v", **COLS)).df()
    cols = [*OUTCOME_COLUMNS, *COVARIATE_COLUMNS]
    assert list(fast.columns) == ["look", *cols]
    np.testing.assert_allclose(fast[cols].to_numpy(float), naive[cols].to_numpy(float), rtol=1e-9)
    np.testing.assert_allclose(sql[cols].to_numpy(float), naive[cols].to_numpy(float), rtol=1e-9)
    assert (pd.to_datetime(sql["look"]).to_numpy() == fast["look"].to_numpy()).all()
    # the events on the assignment day and units after the last look are in the example
    assert fast["n_0"].iloc[-1] + fast["n_1"].iloc[-1] < len(units)
    # and the statistics feed the CS directly
    est = difference_at_look(fast, planned_n=len(units), cuped=True)
    assert est.estimate.shape == (len(looks),) and np.isfinite(est.cs_low[-1])


def test_look_statistics_without_covariate_and_with_numpy_arrays():
    units, events, looks = _pilot(seed=2, n=150, days=6)
    arrays_u = {c: units[c].to_numpy() for c in units}
    arrays_e = {c: events[c].to_numpy() for c in events}
    cols = {k: v for k, v in COLS.items() if k != "covariate"}
    fast = look_statistics(arrays_u, arrays_e, looks.to_numpy(), **cols)
    assert "sum_x_0" not in fast.columns
    naive = _naive(units, events, looks)
    keep = [c for c in fast.columns if c != "look"]
    np.testing.assert_allclose(fast[keep].to_numpy(float), naive[keep].to_numpy(float), rtol=1e-9)
    assert set(fast.attrs["timings_s"]) == {"validate", "index", "bucket", "accumulate"}


# --- errors -------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    units, events, looks = _pilot(seed=4, n=100, days=5)
    early = events.copy()
    assigned = units.set_index("customer")["assigned"]
    early.loc[[3, 5], "at"] = assigned.loc[early.loc[[3, 5], "customer"]].to_numpy() - pd.Timedelta(
        days=1
    )
    stranger = pd.concat([events, events.iloc[:1].assign(customer="nobody")])
    cases = [
        (
            units.assign(assigned=units["assigned"].where(units.index != 7)),
            events,
            looks,
            "assignment time 'assigned' is missing for 1 units",
        ),
        (units, early, looks, r"2 events are dated before .* \(assignment after the outcome"),
        (units, events, [pd.Timestamp("2024-12-31"), *looks], "before the pilot started"),
        (units, events, looks[::-1], "strictly increasing"),
        (units, stranger, looks, "1 events belong to units not in the units table"),
        (pd.concat([units, units.iloc[:1]]), events, looks, "duplicate ids"),
        (units.assign(group=units["group"] + 1), events, looks, "must be 0"),
        (units, events.assign(amount=np.nan), looks, "have no 'amount'"),
    ]
    for u, e, lk, pattern in cases:
        with pytest.raises(DataError, match=pattern) as info:
            look_statistics(u, e, lk, **COLS)
        assert "\n" not in str(info.value)  # one line, for the CLI
    with pytest.raises(DataError, match="identifier"):
        look_statistics_sql("u", "e", "l", value="amount; DROP TABLE u")


def test_check_units_stable():
    assert check_units_stable(["a", "b"], ["a", "b", "c", "d"]) == 2
    assert check_units_stable([1, 2, 3], [3, 2, 1]) == 0
    with pytest.raises(DataError, match=r"2 unit\(s\) seen at the previous look disappeared"):
        check_units_stable([1, 2, 3, 4], [1, 4])


# --- helpers ------------------------------------------------------------------------------------


def _arm_sums(y: np.ndarray, d: np.ndarray, x: np.ndarray | None = None) -> dict[str, float]:
    out = {}
    for a in (0, 1):
        ya = y[d == a]
        out |= {f"n_{a}": len(ya), f"sum_y_{a}": ya.sum(), f"sum_y2_{a}": (ya**2).sum()}
        if x is not None:
            xa = x[d == a]
            out |= {
                f"sum_x_{a}": xa.sum(),
                f"sum_x2_{a}": (xa**2).sum(),
                f"sum_xy_{a}": (xa * ya).sum(),
            }
    return out


def _as_row(look) -> pd.DataFrame:
    """Arm sums that reproduce ``look`` (rebuilt from its means and variance)."""
    n0, n1 = look.n_control, look.n_treated
    var = look.std_error**2 / (1 / n0 + 1 / n1)  # equal variances in these constructed looks
    return pd.DataFrame(
        [
            {
                "n_0": n0,
                "n_1": n1,
                "sum_y_0": look.control_mean * n0,
                "sum_y_1": look.treated_mean * n1,
                "sum_y2_0": var * (n0 - 1) + n0 * look.control_mean**2,
                "sum_y2_1": var * (n1 - 1) + n1 * look.treated_mean**2,
            }
        ]
    )
