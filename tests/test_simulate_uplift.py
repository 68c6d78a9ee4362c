"""Tests of the remote-support targeting simulator: reproducibility, table shapes, randomisation,
the latent type shares, that each type reacts to the offer as stated, that the per-customer truth
averages to the stated truth, parameter checks, and that it runs through the registry, the
engine and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from causal.errors import SpecError
from causal.simulate import SIMULATORS, SimulatedPilot, simulate
from causal.simulate_uplift import (
    BASELINE,
    BASKET_MEAN,
    EFFECT,
    SEGMENTS,
    TYPES,
    UPLIFT_QUERY,
    _draw_features,
    _type_scores,
    remote_support_targeting,
)

N = 20_000
FEATURES = [
    "segment",
    "region",
    "age",
    "tenure_months",
    "device_age_months",
    "n_devices",
    "support_tickets_12m",
    "pre_revenue_12m",
    "app_user",
    "email_open_rate",
    "distance_to_store_km",
]
CRM_COLUMNS = ["customer_id", *FEATURES, "treated", "assigned_at"]
ORDER_COLUMNS = ["customer_id", "purchased_90d", "revenue_90d"]
UNIT_TRUTH_COLUMNS = [
    "customer_id",
    "customer_type",
    "true_uplift_purchased_90d",
    "true_uplift_revenue_90d",
    "baseline_purchase",
]
SHARE_KEYS = [f"share_{t}" for t in TYPES]


@pytest.fixture(scope="module")
def pilot() -> SimulatedPilot:
    return remote_support_targeting(n_customers=N, seed=20250901)


@pytest.fixture(scope="module")
def joined(pilot: SimulatedPilot) -> pd.DataFrame:
    return (
        pilot.tables["crm"]
        .merge(pilot.tables["orders_90d"], on="customer_id", validate="1:1")
        .merge(pilot.unit_truth, on="customer_id", validate="1:1")
    )


def expected_shares(dnd_share: float) -> np.ndarray:
    rest = np.array([0.35, 0.20, 0.20]) / 0.75 * (1 - dnd_share)
    return np.append(rest, dnd_share)


def test_same_seed_same_pilot_and_different_seed_differs() -> None:
    a = remote_support_targeting(n_customers=2_000, seed=5)
    b = remote_support_targeting(n_customers=2_000, seed=5)
    c = remote_support_targeting(n_customers=2_000, seed=6)
    for name in ("crm", "orders_90d"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.unit_truth, b.unit_truth)
    assert a.truth == b.truth
    assert a.description == b.description
    assert not a.tables["crm"].equals(c.tables["crm"])
    assert not a.tables["orders_90d"].equals(c.tables["orders_90d"])
    assert a.truth["revenue_90d"] != c.truth["revenue_90d"]


def test_table_schemas(pilot: SimulatedPilot) -> None:
    crm, orders = pilot.tables["crm"], pilot.tables["orders_90d"]
    assert sorted(pilot.tables) == ["crm", "orders_90d"]
    assert list(crm.columns) == CRM_COLUMNS
    assert list(orders.columns) == ORDER_COLUMNS
    assert list(pilot.unit_truth.columns) == UNIT_TRUTH_COLUMNS
    ids = np.arange(1, N + 1)
    for df in (crm, orders, pilot.unit_truth):
        assert len(df) == N
        np.testing.assert_array_equal(df["customer_id"].to_numpy(), ids)
    assert set(crm["segment"]) == set(SEGMENTS)
    assert crm["region"].nunique() == 5
    assert set(crm["treated"]) == {0, 1} and set(crm["app_user"]) == {0, 1}
    assert (crm["assigned_at"] == pd.Timestamp("2025-09-01")).all()
    assert crm["email_open_rate"].between(0, 1).all() and (crm["pre_revenue_12m"] > 0).all()
    assert set(orders["purchased_90d"]) == {0, 1}
    assert crm["treated"].dtype == np.int64 and orders["purchased_90d"].dtype == np.int64
    # Revenue comes only with a purchase.
    assert ((orders["revenue_90d"] > 0) == (orders["purchased_90d"] == 1)).all()
    assert set(pilot.unit_truth["customer_type"]) == set(TYPES)
    assert set(pilot.truth) == {"purchased_90d", "revenue_90d", *SHARE_KEYS}
    assert all(isinstance(v, float) for v in pilot.truth.values())


def test_treatment_is_a_fair_coin_independent_of_features(pilot: SimulatedPilot) -> None:
    crm = pilot.tables["crm"]
    share = crm["treated"].mean()
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / N)
    x = pd.get_dummies(crm[FEATURES], columns=["segment", "region"], dtype=float)
    t = crm["treated"].to_numpy() == 1
    for col in x:
        a, b = x[col].to_numpy()[t], x[col].to_numpy()[~t]
        smd = (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)
        assert abs(smd) < 0.05, col
    # The type is independent of the arm too.
    types = pilot.unit_truth["customer_type"]
    for name in TYPES:
        diff = (types[t] == name).mean() - (types[~t] == name).mean()
        assert abs(diff) < 0.03, name


def test_treated_share_is_honoured() -> None:
    crm = remote_support_targeting(n_customers=N, treated_share=0.3, seed=2).tables["crm"]
    assert abs(crm["treated"].mean() - 0.3) < 4 * np.sqrt(0.21 / N)


@pytest.mark.parametrize("dnd_share", [0.25, 0.0, 0.5])
def test_type_shares_match_the_intended_ones(dnd_share: float) -> None:
    p = remote_support_targeting(n_customers=N, dnd_share=dnd_share, seed=3)
    realised = np.array([p.truth[k] for k in SHARE_KEYS])
    counted = p.unit_truth["customer_type"].value_counts(normalize=True)
    np.testing.assert_allclose(realised, [counted.get(t, 0.0) for t in TYPES], atol=1e-12)
    target = expected_shares(dnd_share)
    se = np.sqrt(target * (1 - target) / N)
    assert np.all(np.abs(realised - target) <= 4 * se + 1e-12), (realised, target)
    assert realised.sum() == pytest.approx(1.0)
    if dnd_share == 0.0:
        assert p.truth["share_do_not_disturb"] == 0.0
        assert p.unit_truth["true_uplift_purchased_90d"].min() >= 0


def test_each_type_reacts_as_stated(joined: pd.DataFrame) -> None:
    for k, name in enumerate(TYPES):
        group = joined[joined["customer_type"] == name]
        y1 = group.loc[group["treated"] == 1, "purchased_90d"]
        y0 = group.loc[group["treated"] == 0, "purchased_90d"]
        se = np.sqrt(y1.var() / len(y1) + y0.var() / len(y0))
        assert abs(y1.mean() - y0.mean() - EFFECT[k]) < 4 * se + 0.005, name
        assert abs(y0.mean() - BASELINE[k]) < 4 * np.sqrt(BASELINE[k] / len(y0)) + 0.005, name


def test_difference_in_means_recovers_the_truth(
    pilot: SimulatedPilot, joined: pd.DataFrame
) -> None:
    assert pilot.truth["purchased_90d"] == pytest.approx(0.35 * 0.20 - 0.25 * 0.10)
    t = joined["treated"] == 1
    for outcome in ("purchased_90d", "revenue_90d"):
        y1, y0 = joined.loc[t, outcome], joined.loc[~t, outcome]
        se = np.sqrt(y1.var() / len(y1) + y0.var() / len(y0))
        assert abs(y1.mean() - y0.mean() - pilot.truth[outcome]) < 4 * se, outcome
    # The untreated purchase rate is the mean baseline probability.
    y0 = joined.loc[~t, "purchased_90d"]
    base = joined.loc[~t, "baseline_purchase"].mean()
    assert abs(y0.mean() - base) < 4 * np.sqrt(base * (1 - base) / len(y0))


def test_unit_truth_is_consistent_with_truth(pilot: SimulatedPilot, joined: pd.DataFrame) -> None:
    ut = pilot.unit_truth
    assert ut["true_uplift_purchased_90d"].mean() == pytest.approx(
        pilot.truth["purchased_90d"], abs=1e-12
    )
    assert ut["true_uplift_revenue_90d"].mean() == pytest.approx(
        pilot.truth["revenue_90d"], abs=1e-9
    )
    basket = BASKET_MEAN[joined["segment"].map({s: i for i, s in enumerate(SEGMENTS)})]
    np.testing.assert_allclose(
        joined["true_uplift_revenue_90d"], joined["true_uplift_purchased_90d"] * basket
    )
    tau = ut["true_uplift_purchased_90d"]
    assert tau.between(EFFECT.min(), EFFECT.max()).all()
    assert ut["baseline_purchase"].between(BASELINE.min(), BASELINE.max()).all()
    # Heterogeneous: both helped and harmed customers, a wide spread around a small average.
    assert tau.min() < -0.05 and tau.max() > 0.15 and tau.std() > 0.05
    # The revenue per purchase follows the segment's mean basket.
    buyers = joined[joined["purchased_90d"] == 1]
    per_segment = buyers.groupby("segment")["revenue_90d"].mean()
    for i, seg in enumerate(SEGMENTS):
        assert per_segment[seg] == pytest.approx(BASKET_MEAN[i], rel=0.15)


def test_no_effect_at_effect_scale_zero(pilot: SimulatedPilot) -> None:
    null = remote_support_targeting(n_customers=N, seed=20250901, effect_scale=0.0)
    assert null.truth["purchased_90d"] == 0.0 and null.truth["revenue_90d"] == 0.0
    assert (null.unit_truth["true_uplift_purchased_90d"] == 0).all()
    assert (null.unit_truth["true_uplift_revenue_90d"] == 0).all()
    # Same customers, types and untreated outcomes: only the effect is switched off.
    pd.testing.assert_frame_equal(null.tables["crm"], pilot.tables["crm"])
    pd.testing.assert_series_equal(
        null.unit_truth["customer_type"], pilot.unit_truth["customer_type"]
    )
    untreated = pilot.tables["crm"]["treated"] == 0
    pd.testing.assert_frame_equal(
        null.tables["orders_90d"][untreated], pilot.tables["orders_90d"][untreated]
    )
    y = null.tables["orders_90d"]["purchased_90d"]
    t = null.tables["crm"]["treated"] == 1
    se = np.sqrt(y[t].var() / t.sum() + y[~t].var() / (~t).sum())
    assert abs(y[t].mean() - y[~t].mean()) < 4 * se


def test_noise_features_play_no_role() -> None:
    features = _draw_features(np.random.default_rng(0), 1_000)
    shuffled = dict(features)
    rng = np.random.default_rng(1)
    for name in ("age", "region", "distance_to_store_km"):
        shuffled[name] = rng.permutation(features[name])
    np.testing.assert_array_equal(_type_scores(features), _type_scores(shuffled))
    for name in ("support_tickets_12m", "pre_revenue_12m", "email_open_rate", "tenure_months"):
        changed = dict(features)
        changed[name] = rng.permutation(features[name])
        assert not np.array_equal(_type_scores(features), _type_scores(changed)), name


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"treated_share": 0.0}, "treated_share must be a number strictly between 0 and 1"),
        ({"treated_share": 1.0}, "treated_share"),
        ({"treated_share": -0.2}, "treated_share"),
        ({"treated_share": "half"}, "treated_share"),
        ({"dnd_share": 1.0}, r"dnd_share .* in \[0, 1\)"),
        ({"dnd_share": 1.5}, "dnd_share"),
        ({"dnd_share": -0.1}, "dnd_share"),
        ({"dnd_share": float("nan")}, "dnd_share"),
        ({"effect_scale": -1.0}, r"effect_scale must be a number in \[0, 2.5\]"),
        ({"effect_scale": 3.0}, "effect_scale"),
        ({"n_customers": 10}, "n_customers must be a whole number >= 100"),
        ({"n_customers": 500.5}, "n_customers"),
        ({"n_customers": True}, "n_customers"),
        ({"start_date": "not a date"}, "start_date is not a date"),
        ({"start_date": None}, "start_date"),
    ],
)
def test_bad_parameters_raise_spec_error(params: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        remote_support_targeting(**params)


def test_integral_float_customers_are_accepted() -> None:
    assert len(remote_support_targeting(n_customers=200.0).tables["crm"]) == 200


def test_runs_through_the_registry() -> None:
    assert "remote_support_targeting" in SIMULATORS
    p = simulate("remote_support_targeting", seed=1, n_customers=500)
    assert len(p.tables["crm"]) == 500 and len(p.unit_truth) == 500
    direct = remote_support_targeting(seed=1, n_customers=500)
    pd.testing.assert_frame_equal(p.tables["orders_90d"], direct.tables["orders_90d"])
    with pytest.raises(SpecError, match="dnd_share"):
        simulate("remote_support_targeting", seed=1, bogus=1)


def test_uplift_query_and_engine(pilot: SimulatedPilot) -> None:
    from causal.data.engine import DuckDBEngine
    from causal.spec import Source

    con = duckdb.connect()
    try:
        for name, df in pilot.tables.items():
            con.register(name, df)
        table = con.execute(UPLIFT_QUERY).df()
    finally:
        con.close()
    assert len(table) == N
    assert list(table.columns) == [*CRM_COLUMNS, "purchased_90d", "revenue_90d"]

    engine = DuckDBEngine()
    try:
        for name in ("crm", "orders_90d"):
            source = Source(
                simulator="remote_support_targeting", table=name, params={"n_customers": 300}
            )
            engine.register(name, source, base_dir=Path("."), seed=4)
        out = engine.query(UPLIFT_QUERY)
    finally:
        engine.close()
    assert len(out) == 300 and out["customer_id"].is_unique


def test_cli_writes_unit_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from causal.cli import main

    out = tmp_path / "targeting"
    code = main(
        ["simulate", "remote_support_targeting", "--out", str(out), "--param", "n_customers=300"]
    )
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "crm.csv",
        "orders_90d.csv",
        "truth.json",
        "unit_truth.csv",
    ]
    unit = pd.read_csv(out / "unit_truth.csv")
    assert list(unit.columns) == UNIT_TRUTH_COLUMNS and len(unit) == 300
    truth = json.loads((out / "truth.json").read_text())
    assert unit["true_uplift_purchased_90d"].mean() == pytest.approx(truth["purchased_90d"])
