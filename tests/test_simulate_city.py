"""Tests of the city free-delivery simulator: reproducibility, table shapes, that the stated
truth is exactly the simulated Y(1) - Y(0), and that donors reproduce the pilot city while the
plain donor average does not."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import nnls

from causal.errors import SpecError
from causal.simulate import SIMULATORS, SimulatedPilot, simulate, write_tables
from causal.simulate_city import city_free_delivery

TABLES = ("city_weeks", "cities")
CITY_WEEK_COLUMNS = ["city", "week", "week_start", "revenue", "orders", "population", "region"]
CITY_COLUMNS = ["city", "region", "population", "treated"]


def revenue_matrix(pilot: SimulatedPilot) -> tuple[np.ndarray, np.ndarray]:
    """(cities x weeks) revenue in the order of the ``cities`` table, and the treated mask."""
    wide = pilot.tables["city_weeks"].pivot(index="city", columns="week", values="revenue")
    cities = pilot.tables["cities"]
    return wide.loc[cities.city].to_numpy(), cities.treated.to_numpy() == 1


def simplex_weights(y: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """Least squares of ``y`` on the columns of ``donors`` with weights >= 0 summing to 1.

    NNLS on the system augmented by a heavily weighted row of ones enforces the sum.
    """
    heavy = 1e3 * y.mean()
    a = np.vstack([donors, np.full(donors.shape[1], heavy)])
    w, _ = nnls(a, np.append(y, heavy), maxiter=20 * donors.shape[1])
    return w


def fits(y: np.ndarray, donors: np.ndarray, pre: np.ndarray) -> dict[str, float]:
    """Pre-period fit errors and post-period biases of synthetic control and plain DiD, all
    relative to the treated city's mean revenue in the same period."""
    w = simplex_weights(y[pre], donors[:, pre].T)
    sc = w @ donors
    gap = y - donors.mean(axis=0)  # DiD: treated minus the plain donor average
    post = ~pre
    return {
        "weight_sum": float(w.sum()),
        "sc_rmspe": float(np.sqrt(np.mean((y[pre] - sc[pre]) ** 2)) / y[pre].mean()),
        "did_rmspe": float(np.sqrt(np.mean((gap[pre] - gap[pre].mean()) ** 2)) / y[pre].mean()),
        "sc_bias": float((y[post] - sc[post]).mean() / y[post].mean()),
        "did_bias": float((gap[post].mean() - gap[pre].mean()) / y[post].mean()),
    }


@pytest.fixture(scope="module")
def pilot() -> SimulatedPilot:
    return city_free_delivery(seed=0)


@pytest.fixture(scope="module")
def null_pilot() -> SimulatedPilot:
    return city_free_delivery(seed=0, effect=0.0)


def test_same_seed_gives_identical_tables_and_truth(pilot):
    again = city_free_delivery(seed=0)
    for name in TABLES:
        pd.testing.assert_frame_equal(pilot.tables[name], again.tables[name])
    assert pilot.truth == again.truth
    assert pilot.description == again.description


def test_different_seed_gives_different_data(pilot):
    other = city_free_delivery(seed=1)
    assert not pilot.tables["city_weeks"].equals(other.tables["city_weeks"])
    assert pilot.truth != other.truth


def test_tables_have_the_documented_shape(pilot):
    cw, cities = pilot.tables["city_weeks"], pilot.tables["cities"]
    assert list(cw.columns) == CITY_WEEK_COLUMNS
    assert list(cities.columns) == CITY_COLUMNS
    assert cw.shape == (40 * 104, 7) and cities.shape == (40, 4)
    for df in (cw, cities):
        assert not df.isna().any().any()
    assert not cw.duplicated(["city", "week"]).any()
    assert cities.city.is_unique and set(cw.city) == set(cities.city)
    assert cities.treated.tolist() == [1] + [0] * 39
    assert cities.city.iloc[0] == "city_01"
    assert cw.week.min() == 1 and cw.week.max() == 104
    assert pd.api.types.is_integer_dtype(cw.week) and pd.api.types.is_integer_dtype(cw.orders)
    assert pd.api.types.is_datetime64_dtype(cw.week_start)
    assert (cw.week_start.dt.day_of_week == 0).all()  # Mondays
    assert (cw.week_start - pd.to_timedelta(7 * (cw.week - 1), unit="D")).nunique() == 1
    assert (cw.revenue > 0).all() and (cw.orders > 0).all()
    # City attributes in the weekly table are the ones of the cities table.
    merged = cw.merge(cities, on="city", suffixes=("", "_c"))
    assert (merged.population == merged.population_c).all()
    assert (merged.region == merged.region_c).all()


def test_null_pilot_has_zero_truth(null_pilot):
    assert null_pilot.truth == {"revenue": 0.0, "revenue_total": 0.0, "revenue_relative": 0.0}


@pytest.mark.parametrize("n_treated", [1, 3])
def test_truth_is_exactly_the_revenue_difference_to_the_null_run(n_treated):
    effect, start = 0.06, 79
    on = city_free_delivery(seed=4, effect=effect, n_treated=n_treated)
    off = city_free_delivery(seed=4, effect=0.0, n_treated=n_treated)
    y1, treated = revenue_matrix(on)
    y0, _ = revenue_matrix(off)
    post = np.arange(1, 105) >= start
    # Only the treated cities' post weeks change, and by the ramped lift exactly.
    np.testing.assert_array_equal(y1[~treated], y0[~treated])
    np.testing.assert_array_equal(y1[:, ~post], y0[:, ~post])
    lift = effect * np.minimum(1.0, (np.arange(start, 105) - start + 1) / 4)
    ratio = y1[treated][:, post] / y0[treated][:, post]
    np.testing.assert_allclose(ratio, np.broadcast_to(1 + lift, ratio.shape), rtol=1e-12)
    diff = y1[treated][:, post] - y0[treated][:, post]
    assert on.truth["revenue"] == pytest.approx(diff.mean(), rel=1e-12)
    assert on.truth["revenue_total"] == pytest.approx(diff.sum(), rel=1e-12)
    assert on.truth["revenue_relative"] == pytest.approx(
        diff.mean() / y0[treated][:, post].mean(), rel=1e-12
    )
    assert 0.04 < on.truth["revenue_relative"] < effect  # the ramp weeks pull it below 6%
    # Orders are coupled draws: the same for untreated cells, never fewer under the lift.
    o1 = on.tables["city_weeks"].orders.to_numpy()
    o0 = off.tables["city_weeks"].orders.to_numpy()
    assert (o1 >= o0).all() and (o1 > o0).any()
    changed = on.tables["city_weeks"].loc[o1 != o0]
    assert changed.city.isin(on.tables["cities"].city[:n_treated]).all()
    assert (changed.week >= start).all()


def test_donors_reproduce_the_pilot_city_but_their_average_does_not(null_pilot):
    y, treated = revenue_matrix(null_pilot)
    pre = np.arange(1, 105) < 79
    fit = fits(y[treated][0], y[~treated], pre)
    assert fit["weight_sum"] == pytest.approx(1.0, abs=1e-6)
    assert fit["sc_rmspe"] < 0.03
    assert fit["did_rmspe"] > 2 * fit["sc_rmspe"]


def test_plain_did_is_clearly_more_biased_than_synthetic_control():
    # With no effect both estimates should be 0: their post-period errors are the biases.
    pre = np.arange(1, 105) < 79
    sc, did = [], []
    for seed in range(10):
        y, treated = revenue_matrix(city_free_delivery(seed=seed, effect=0.0))
        fit = fits(y[treated][0], y[~treated], pre)
        assert fit["sc_rmspe"] < 0.03
        sc.append(abs(fit["sc_bias"]))
        did.append(fit["did_bias"])
    assert np.mean(did) > 2 * np.mean(sc)
    assert np.mean(did) > 0.03  # the pilot city outgrows the donor average


def test_every_pilot_city_is_reproduced_by_donors():
    y, treated = revenue_matrix(city_free_delivery(seed=2, n_treated=3, effect=0.0))
    pre = np.arange(1, 105) < 79
    for row in y[treated]:
        assert fits(row, y[~treated], pre)["sc_rmspe"] < 0.03


def test_small_configurations_work():
    pilot = city_free_delivery(n_cities=3, n_weeks=2, treatment_week=2, n_treated=2, seed=5)
    assert pilot.tables["city_weeks"].shape == (6, 7)
    assert pilot.truth["revenue_relative"] == pytest.approx(0.06 / 4)
    # Integral floats are accepted, as YAML or command-line values may arrive as 1e1.
    assert city_free_delivery(n_cities=1e1, n_weeks=20.0, treatment_week=15).tables[
        "cities"
    ].shape == (10, 4)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_cities": 2}, "n_cities"),
        ({"n_cities": 2.5}, "n_cities"),
        ({"n_weeks": 1}, "n_weeks"),
        ({"treatment_week": 1}, "treatment_week"),
        ({"treatment_week": 105}, "treatment_week"),
        ({"n_weeks": 50}, "treatment_week"),
        ({"n_treated": 0}, "n_treated"),
        ({"n_treated": 40}, "n_treated"),
        ({"n_treated": True}, "n_treated"),
        ({"effect": -1.0}, "effect"),
        ({"effect": float("nan")}, "effect"),
        ({"effect": "6%"}, "effect"),
    ],
)
def test_bad_parameters_raise_spec_error_naming_them(params, name):
    with pytest.raises(SpecError, match=f"^{name} ") as info:
        city_free_delivery(**params)
    assert "\n" not in str(info.value)


def test_registry_runs_the_simulator_with_its_parameters():
    assert "city_free_delivery" in SIMULATORS
    # The lazy registry wrapper repeats the signature: it must not drift from the real one.
    assert inspect.signature(SIMULATORS["city_free_delivery"]) == inspect.signature(
        city_free_delivery
    )
    via = simulate("city_free_delivery", seed=1)
    direct = city_free_delivery(seed=1)
    for name in TABLES:
        pd.testing.assert_frame_equal(via.tables[name], direct.tables[name])
    assert via.truth == direct.truth
    small = simulate("city_free_delivery", seed=1, n_cities=8, n_weeks=20, treatment_week=15)
    assert small.tables["city_weeks"].shape == (160, 7)
    with pytest.raises(SpecError, match="n_customers"):
        simulate("city_free_delivery", seed=1, n_customers=10)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_tables_round_trip(pilot, tmp_path, fmt):
    paths = write_tables(pilot, tmp_path / "out", fmt=fmt)
    assert set(paths) == set(TABLES)
    for name, path in paths.items():
        assert path == tmp_path / "out" / f"{name}.{fmt}" and path.exists()
        if fmt == "csv":
            dates = ["week_start"] if name == "city_weeks" else False
            back = pd.read_csv(path, parse_dates=dates)
        else:
            back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(back, pilot.tables[name], check_dtype=False)
