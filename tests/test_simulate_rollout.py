"""Tests of the staggered remote-support roll-out simulator: reproducibility, table shapes, that
the stated truth is what the simulated Y(1) - Y(0) averages to, the ramp and cohort pattern of
the effect, parallel trends of Y(0), and that a single-dummy TWFE misses the truth."""

from __future__ import annotations

import inspect
import itertools

import duckdb
import numpy as np
import pandas as pd
import pytest

from causal.errors import SpecError
from causal.simulate import SIMULATORS, SimulatedPilot, simulate, write_tables
from causal.simulate_rollout import (
    EARLY_SHARE,
    PLATEAU_EVENT_MONTH,
    remote_support_rollout,
    truth_tables,
)

TABLES = ("stores", "rollout", "store_months")
WAVES = (10, 14, 18, 22)
PANEL_QUERY = """
SELECT m.store, s.region, m.month_index, m.month, m.revenue,
       COALESCE(r.support_start_month, 0) AS first_treated
FROM store_months AS m
JOIN stores AS s ON s.store = m.store
JOIN rollout AS r ON r.region = s.region
ORDER BY m.store, m.month_index
"""


def panel(pilot: SimulatedPilot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stores x months) revenue, each store's first treated month (0 = never) and region."""
    stores = pilot.tables["stores"].merge(pilot.tables["rollout"], on="region", how="left")
    sm = pilot.tables["store_months"]
    y = sm.revenue.to_numpy().reshape(len(stores), -1)
    first = stores.support_start_month.fillna(0).to_numpy().astype(int)
    return y, first, stores.region.to_numpy()


def twfe(y: np.ndarray, first: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Single-dummy TWFE on a balanced panel (two-way demeaning is exact here) and its
    region-clustered standard error."""
    t = np.arange(1, y.shape[1] + 1)
    d = ((first[:, None] > 0) & (t[None, :] >= first[:, None])).astype(float)

    def within(a: np.ndarray) -> np.ndarray:
        return a - a.mean(1, keepdims=True) - a.mean(0, keepdims=True) + a.mean()

    yt, dt = within(y), within(d)
    beta = (dt * yt).sum() / (dt * dt).sum()
    score = (dt * (yt - beta * dt)).sum(axis=1)
    clusters = pd.Series(score).groupby(region).sum().to_numpy()
    return float(beta), float(np.sqrt((clusters**2).sum()) / (dt * dt).sum())


def callaway_santanna(y: np.ndarray, first: np.ndarray) -> float:
    """Callaway–Sant'Anna 'simple' ATT with never-treated controls, long differences to g-1."""
    num = den = 0.0
    never = y[first == 0]
    for g in np.unique(first[first > 0]):
        cohort = y[first == g]
        for t in range(g, y.shape[1] + 1):
            gap = (cohort[:, t - 1] - cohort[:, g - 2]).mean()
            att = gap - (never[:, t - 1] - never[:, g - 2]).mean()
            num, den = num + len(cohort) * att, den + len(cohort)
    return num / den


@pytest.fixture(scope="module")
def pilot() -> SimulatedPilot:
    return remote_support_rollout(seed=0)


@pytest.fixture(scope="module")
def null_pilot() -> SimulatedPilot:
    return remote_support_rollout(seed=0, plateau=0.0)


def test_same_seed_gives_identical_tables_and_truth(pilot):
    again = remote_support_rollout(seed=0)
    for name in TABLES:
        pd.testing.assert_frame_equal(pilot.tables[name], again.tables[name])
    assert pilot.truth == again.truth
    assert pilot.description == again.description


def test_different_seed_gives_different_data(pilot):
    other = remote_support_rollout(seed=1)
    assert not pilot.tables["store_months"].equals(other.tables["store_months"])
    assert pilot.truth != other.truth


def test_tables_have_the_documented_shape(pilot):
    stores, rollout, sm = (pilot.tables[name] for name in TABLES)
    assert list(stores.columns) == ["store", "region", "opened_year", "floor_area_m2"]
    assert list(rollout.columns) == ["region", "support_start_month"]
    assert list(sm.columns) == ["store", "month_index", "month", "revenue"]
    assert stores.shape == (600, 4) and rollout.shape == (12, 2) and sm.shape == (600 * 30, 4)
    assert stores.store.tolist() == list(range(1, 601))
    assert rollout.region.is_unique and set(stores.region) == set(rollout.region)
    # 3 of 12 regions never treated; every wave has a region; the starts are the waves.
    starts = rollout.support_start_month
    assert starts.isna().sum() == 3 and set(starts.dropna()) == set(WAVES)
    assert pd.api.types.is_integer_dtype(starts)
    assert not sm.isna().any().any() and not stores.isna().any().any()
    assert not sm.duplicated(["store", "month_index"]).any()
    assert sm.store.is_monotonic_increasing
    assert sm.month_index.tolist()[:30] == list(range(1, 31))
    assert pd.api.types.is_datetime64_dtype(sm.month)
    assert (sm.month.dt.day == 1).all()
    assert sm.month.iloc[0] == pd.Timestamp("2023-01-01")
    assert ((sm.month.dt.year - 2023) * 12 + sm.month.dt.month == sm.month_index).all()
    assert (sm.revenue > 0).all() and 5_000 < sm.revenue.median() < 100_000
    assert stores.opened_year.between(1990, 2022).all() and (stores.floor_area_m2 > 0).all()


def test_the_specs_sql_builds_the_panel(pilot):
    con = duckdb.connect()
    for name, df in pilot.tables.items():
        con.register(name, df)
    df = con.execute(PANEL_QUERY).df()
    y, first, _ = panel(pilot)
    assert len(df) == y.size
    np.testing.assert_array_equal(df.revenue.to_numpy().reshape(y.shape), y)
    np.testing.assert_array_equal(df.first_treated.to_numpy().reshape(y.shape)[:, 0], first)


def test_null_rollout_has_zero_truth(null_pilot):
    assert null_pilot.truth["revenue"] == 0.0
    assert null_pilot.truth["revenue_relative"] == 0.0
    assert all(v == 0.0 for v in null_pilot.truth.values())


def test_only_treated_cells_change_and_by_the_ramp(pilot, null_pilot):
    y1, first, _ = panel(pilot)
    y0, first0, _ = panel(null_pilot)
    np.testing.assert_array_equal(first, first0)
    event = np.where(first[:, None] > 0, np.arange(1, 31)[None, :] - first[:, None], -99)
    treated = event >= 0
    np.testing.assert_array_equal(y1[~treated], y0[~treated])  # no anticipation, no spill-over
    tau = np.where(treated, y1 / y0 - 1, np.nan)
    assert (tau[treated] > 0).all()
    # Each store's effect relative to its own first month follows the ramp exactly: flat in
    # months 0..2, linear growth to the plateau at month 9, flat after.
    first_month = tau[np.arange(len(tau)), np.maximum(first, 1) - 1]
    for e in range(30 - min(WAVES) + 1):
        growth = np.clip((e - 2) / (PLATEAU_EVENT_MONTH - 2), 0, 1)
        expected = (EARLY_SHARE + (1 - EARLY_SHARE) * growth) / EARLY_SHARE
        np.testing.assert_allclose((tau / first_month[:, None])[event == e], expected, rtol=1e-9)
    # The first three months are small (about 1%), the plateau about 8%.
    early = tau[(event >= 0) & (event <= 2)]
    late = tau[event >= PLATEAU_EVENT_MONTH]
    assert 0.005 < early.mean() < 0.02 and 0.06 < late.mean() < 0.12


def test_truth_event_path_ramps_up(pilot):
    path = [pilot.truth[f"revenue_e{e}"] for e in range(21)]
    assert "revenue_e21" not in pilot.truth and "revenue_e-1" not in pilot.truth
    assert max(path[:3]) < 0.2 * min(path[PLATEAU_EVENT_MONTH:])
    assert all(a < b for a, b in itertools.pairwise(path[2:10]))
    assert 0.04 < pilot.truth["revenue_relative"] < 0.09


def test_earlier_waves_have_larger_plateaus(pilot, null_pilot):
    y1, first, _ = panel(pilot)
    y0, _, _ = panel(null_pilot)
    # Month 30 is event month 20, 16, 12 and 8 of the waves: all but the last on the plateau.
    lifts = [np.mean(y1[first == g, -1] / y0[first == g, -1] - 1) for g in WAVES]
    assert all(a > b for a, b in itertools.pairwise(lifts))
    assert lifts[0] > 0.1 and lifts[-1] < 0.05  # plateaus 12% .. 4%


def test_truth_aggregations_are_cohort_size_weighted(pilot):
    _, first, _ = panel(pilot)
    sizes = pd.Series(first[first > 0]).value_counts()
    att_gt = truth_tables(pilot.truth)["att_gt"]
    assert len(att_gt) == sum(31 - g for g in WAVES)
    att_gt["n"] = att_gt.cohort.map(sizes)
    weighted = att_gt.att * att_gt.n
    assert pilot.truth["revenue"] == pytest.approx(weighted.sum() / att_gt.n.sum(), rel=1e-12)
    by_e = weighted.groupby(att_gt.event_time).sum() / att_gt.n.groupby(att_gt.event_time).sum()
    event = truth_tables(pilot.truth)["event"].set_index("event_time").att
    pd.testing.assert_series_equal(event, by_e, check_names=False, rtol=1e-12)


def test_truth_matches_the_simulated_differences():
    # Truth is E[Y(1) - Y(0)] given the stores' parameters; the realised differences of a
    # coupled null run average to it up to the multiplicative noise of Y(0).
    size = {"n_stores": 20_000, "n_months": 24, "seed": 3}
    y1, first, _ = panel(on := remote_support_rollout(**size))
    y0, _, _ = panel(remote_support_rollout(plateau=0.0, **size))
    gain = y1 - y0
    att_gt = truth_tables(on.truth)["att_gt"]
    realised = np.array(
        [gain[first == g, t - 1].mean() for g, t in att_gt[["cohort", "month_index"]].values]
    )
    np.testing.assert_allclose(realised, att_gt.att, rtol=0.03)
    treated = (first[:, None] > 0) & (np.arange(1, 25)[None, :] >= first[:, None])
    assert gain[treated].mean() == pytest.approx(on.truth["revenue"], rel=0.01)
    assert gain[treated].sum() / y0[treated].sum() == pytest.approx(
        on.truth["revenue_relative"], rel=0.01
    )


def test_untreated_outcomes_have_parallel_trends():
    # Pre-period gaps between each wave and the never-treated regions have no trend on average
    # over seeds, although the waves differ in level (roll-out follows region revenue).
    slopes, levels = [], []
    for seed in range(20):
        y, first, _ = panel(remote_support_rollout(seed=seed, plateau=0.0))
        never = y[first == 0].mean(axis=0)
        for g in WAVES:
            gap = y[first == g].mean(axis=0)[: g - 1] - never[: g - 1]
            slopes.append(np.polyfit(np.arange(1, g), gap, 1)[0])
            levels.append(gap.mean())
    slopes = np.array(slopes)
    scale = np.mean(y)
    assert abs(slopes.mean()) < 3 * slopes.std() / np.sqrt(slopes.size)
    assert abs(slopes.mean()) < 0.001 * scale  # under 0.1% of revenue per month
    assert np.mean(levels) > 0.02 * scale  # treated regions are the stronger ones


def test_staggered_did_recovers_the_truth_and_twfe_does_not():
    errors = []
    for seed in range(12):
        on = remote_support_rollout(seed=seed)
        y, first, _ = panel(on)
        errors.append(callaway_santanna(y, first) - on.truth["revenue"])
    errors = np.array(errors)
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(errors.size)
    # At the default size a single-dummy TWFE lands several standard errors (clustered by
    # region, the level of assignment) below the truth: it uses early waves, whose effect is
    # still growing, as controls for later ones.
    for seed in range(3):
        on = remote_support_rollout(seed=seed)
        beta, se = twfe(*panel(on))
        assert on.truth["revenue"] - beta > 2.5 * se
        assert beta < 0.6 * on.truth["revenue"]


def test_small_and_edge_configurations_work():
    one = remote_support_rollout(n_stores=2, n_regions=2, n_months=2, waves=(2,), seed=5)
    assert one.tables["store_months"].shape == (4, 4)
    assert one.truth["revenue_relative"] == pytest.approx(0.08 * EARLY_SHARE, rel=0.7)
    every = remote_support_rollout(share_never=0.0, waves=[5, 6], n_months=8)
    assert every.tables["rollout"].support_start_month.notna().all()
    # Integral floats and command-line strings are accepted.
    text = remote_support_rollout(n_stores=6e1, n_months=12.0, waves="8, 10")
    assert text.tables["store_months"].shape == (720, 4)
    assert set(text.tables["rollout"].support_start_month.dropna()) == {8, 10}
    single = remote_support_rollout(n_stores=60, n_months=12, waves=9)
    assert set(single.tables["rollout"].support_start_month.dropna()) == {9}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_stores": 11}, "n_stores"),
        ({"n_stores": 600.5}, "n_stores"),
        ({"n_regions": 1}, "n_regions"),
        ({"n_regions": True}, "n_regions"),
        ({"n_months": 1}, "n_months"),
        ({"n_months": 20}, "waves"),
        ({"waves": ()}, "waves"),
        ({"waves": (1, 10)}, "waves"),
        ({"waves": (14, 10)}, "waves"),
        ({"waves": (10, 10)}, "waves"),
        ({"waves": "ten"}, "waves"),
        ({"waves": None}, "waves"),
        ({"share_never": 1.0}, "share_never"),
        ({"share_never": -0.1}, "share_never"),
        ({"share_never": "25%"}, "share_never"),
        ({"share_never": 0.75}, "share_never"),
        ({"plateau": -0.01}, "plateau"),
        ({"plateau": float("inf")}, "plateau"),
        ({"plateau": "8%"}, "plateau"),
    ],
)
def test_bad_parameters_raise_spec_error_naming_them(params, name):
    with pytest.raises(SpecError, match=f"^{name}[ =]") as info:
        remote_support_rollout(**params)
    assert "\n" not in str(info.value)


def test_registry_runs_the_simulator_with_its_parameters():
    assert "remote_support_rollout" in SIMULATORS
    # The lazy registry wrapper repeats the signature: it must not drift from the real one.
    assert inspect.signature(SIMULATORS["remote_support_rollout"]) == inspect.signature(
        remote_support_rollout
    )
    via = simulate("remote_support_rollout", seed=1)
    direct = remote_support_rollout(seed=1)
    for name in TABLES:
        pd.testing.assert_frame_equal(via.tables[name], direct.tables[name])
    assert via.truth == direct.truth
    small = simulate("remote_support_rollout", seed=1, n_stores=50, n_months=24, waves=[12])
    assert small.tables["store_months"].shape == (1200, 4)
    with pytest.raises(SpecError, match="n_customers"):
        simulate("remote_support_rollout", seed=1, n_customers=10)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_tables_round_trip(pilot, tmp_path, fmt):
    paths = write_tables(pilot, tmp_path / "out", fmt=fmt)
    assert set(paths) == set(TABLES)
    for name, path in paths.items():
        if fmt == "csv":
            back = pd.read_csv(path, parse_dates=["month"] if name == "store_months" else False)
        else:
            back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(back, pilot.tables[name], check_dtype=False)
