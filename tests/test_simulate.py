"""Tests of the seeded pilot simulator: reproducibility, table shapes, and that the stated
truth is what a randomised comparison of the simulated data actually recovers."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from causal.errors import SpecError
from causal.simulate import (
    ANALYSIS_QUERY,
    SIMULATORS,
    SimulatedPilot,
    extended_warranty_pilot,
    simulate,
    write_tables,
)

TABLES = ("crm", "erp_orders", "finance_margins")
ANALYSIS_COLUMNS = [
    "customer_id",
    "treated",
    "segment",
    "region",
    "tenure_months",
    "pre_revenue_12m",
    "pre_orders_12m",
    "revenue_3m",
    "revenue_12m",
    "gross_profit_12m",
    "repurchase_12m",
]
OUTCOMES = ["pre_revenue_12m", "revenue_3m", "revenue_12m", "gross_profit_12m", "repurchase_12m"]


def analysis_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        for name, df in tables.items():
            con.register(name, df)
        return con.execute(ANALYSIS_QUERY).df()
    finally:
        con.close()


def diff_in_means(df: pd.DataFrame, col: str) -> tuple[float, float]:
    """Treated minus control mean and its Welch standard error."""
    t, c = df.loc[df.treated == 1, col], df.loc[df.treated == 0, col]
    return t.mean() - c.mean(), float(np.sqrt(t.var() / len(t) + c.var() / len(c)))


@pytest.fixture(scope="module")
def small() -> SimulatedPilot:
    return extended_warranty_pilot(n_customers=3_000, seed=11)


@pytest.fixture(scope="module")
def big() -> tuple[SimulatedPilot, pd.DataFrame]:
    # Big enough that 4 standard errors are about a quarter of the revenue effect.
    pilot = extended_warranty_pilot(n_customers=200_000, seed=2024)
    return pilot, analysis_table(dict(pilot.tables))


def test_same_seed_gives_identical_tables_and_truth():
    a = extended_warranty_pilot(n_customers=2_000, seed=5)
    b = simulate("extended_warranty_pilot", seed=5, n_customers=2_000)
    for name in TABLES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert a.truth == b.truth
    assert a.description == b.description


def test_different_seed_gives_different_tables():
    a = extended_warranty_pilot(n_customers=2_000, seed=5)
    b = extended_warranty_pilot(n_customers=2_000, seed=6)
    assert not a.tables["crm"].equals(b.tables["crm"])
    assert not a.tables["erp_orders"].equals(b.tables["erp_orders"])
    assert a.truth != b.truth


def test_tables_have_the_documented_schema(small):
    assert set(small.tables) == set(TABLES)
    crm, erp, fin = (small.tables[t] for t in TABLES)
    assert list(crm.columns) == [
        "customer_id",
        "segment",
        "region",
        "tenure_months",
        "signup_date",
        "treated",
        "assigned_at",
    ]
    assert list(erp.columns) == ["order_id", "customer_id", "order_date", "category", "amount"]
    assert list(fin.columns) == ["category", "gross_margin"]
    for df, col in [(crm, "customer_id"), (crm, "tenure_months"), (crm, "treated")]:
        assert df[col].dtype == np.int64, col
    for df, col in [(erp, "order_id"), (erp, "customer_id")]:
        assert df[col].dtype == np.int64, col
    for df, col in [(crm, "signup_date"), (crm, "assigned_at"), (erp, "order_date")]:
        assert pd.api.types.is_datetime64_dtype(df[col]), col
    assert crm.customer_id.tolist() == list(range(1, 3_001))
    assert erp.order_id.is_unique and erp.customer_id.isin(crm.customer_id).all()
    assert set(crm.segment) == {"bronze", "silver", "gold"}
    assert crm.region.nunique() == 5
    assert (crm.assigned_at == pd.Timestamp("2025-03-01")).all()
    assert (crm.signup_date < crm.assigned_at).all()
    assert set(erp.category) == set(fin.category)
    assert (erp.amount > 0).all()
    # Orders cover exactly the 12 months either side of the offer.
    assert erp.order_date.min() >= pd.Timestamp("2024-03-01")
    assert erp.order_date.max() < pd.Timestamp("2026-03-01")


def test_segment_shares_and_exact_randomisation():
    pilot = extended_warranty_pilot(n_customers=10_001, treated_share=0.3, seed=3)
    crm = pilot.tables["crm"]
    assert crm.treated.sum() == round(10_001 * 0.3)
    shares = crm.segment.value_counts(normalize=True)
    assert shares["bronze"] == pytest.approx(0.6, abs=0.02)
    assert shares["silver"] == pytest.approx(0.3, abs=0.02)
    assert shares["gold"] == pytest.approx(0.1, abs=0.02)


def test_analysis_query_gives_one_clean_row_per_customer(small):
    tables = dict(small.tables)
    # A customer without any order must still appear, with zeros.
    tables["erp_orders"] = tables["erp_orders"].query("customer_id != 1")
    df = analysis_table(tables)
    assert list(df.columns) == ANALYSIS_COLUMNS
    assert len(df) == 3_000 and df.customer_id.is_unique
    assert not df.isna().any().any()
    first = df.set_index("customer_id").loc[1]
    assert first.pre_orders_12m == 0 and first.revenue_12m == 0 and first.repurchase_12m == 0
    assert set(df.repurchase_12m.unique()) <= {0, 1}
    assert df.repurchase_12m.dtype == np.int64


def test_analysis_query_windows_match_a_pandas_recomputation(small):
    crm, erp, fin = (small.tables[t] for t in TABLES)
    df = analysis_table(dict(small.tables)).set_index("customer_id")
    start = pd.Timestamp("2025-03-01")
    o = erp.merge(fin, on="category")
    months = (o.order_date.dt.year - start.year) * 12 + (o.order_date.dt.month - start.month)
    o = o.assign(k=months, profit=o.amount * o.gross_margin)
    pre, post = o[o.k < 0], o[o.k >= 0]
    expected = pd.DataFrame(
        {
            "pre_revenue_12m": pre.groupby("customer_id").amount.sum(),
            "pre_orders_12m": pre.groupby("customer_id").size(),
            "revenue_3m": post[post.k < 3].groupby("customer_id").amount.sum(),
            "revenue_12m": post.groupby("customer_id").amount.sum(),
            "gross_profit_12m": post.groupby("customer_id").profit.sum(),
            "repurchase_12m": (post[post.k >= 3].groupby("customer_id").size() > 0).astype(int),
        }
    ).reindex(crm.customer_id, fill_value=0)
    expected = expected.fillna(0)
    for col in expected:
        np.testing.assert_allclose(df[col], expected[col], rtol=1e-9, atol=1e-6, err_msg=col)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_difference_in_means_recovers_the_truth(big, outcome):
    pilot, df = big
    dim, se = diff_in_means(df, outcome)
    assert abs(dim - pilot.truth[outcome]) < 4 * se, (outcome, dim, pilot.truth[outcome], se)


def test_truth_is_not_trivially_zero(big):
    pilot, df = big
    assert set(pilot.truth) == set(OUTCOMES)
    for outcome in ("revenue_12m", "gross_profit_12m", "repurchase_12m"):
        assert pilot.truth[outcome] > 0
    # The big pilot must be able to tell the revenue effect from zero, or the recovery test
    # above would pass for any truth near zero.
    dim, se = diff_in_means(df, "revenue_12m")
    assert dim / se > 4
    control_mean = df.loc[df.treated == 0, "revenue_12m"].mean()
    assert 0.02 < pilot.truth["revenue_12m"] / control_mean < 0.05


def test_lag_means_no_effect_in_the_first_three_months(big):
    pilot, df = big
    assert pilot.truth["revenue_3m"] == 0.0
    assert pilot.truth["pre_revenue_12m"] == 0.0
    dim, se = diff_in_means(df, "revenue_3m")
    assert abs(dim) < 4 * se


def test_zero_effect_scale_gives_zero_truth_and_same_control_outcomes():
    off = extended_warranty_pilot(n_customers=5_000, seed=9, effect_scale=0.0)
    on = extended_warranty_pilot(n_customers=5_000, seed=9)
    double = extended_warranty_pilot(n_customers=5_000, seed=9, effect_scale=2.0)
    assert all(v == 0.0 for v in off.truth.values())
    assert on.truth["revenue_12m"] > 0
    # Revenue and profit effects are linear in the rate lift; repurchase is concave in it.
    for outcome in ("revenue_12m", "gross_profit_12m"):
        assert double.truth[outcome] == pytest.approx(2 * on.truth[outcome], rel=1e-12)
    assert on.truth["repurchase_12m"] < double.truth["repurchase_12m"]
    assert double.truth["repurchase_12m"] < 2 * on.truth["repurchase_12m"]
    # The offer only adds orders for treated customers from month 4 on: everything else is
    # the same draw, so effect_scale changes nothing but the effect.
    pd.testing.assert_frame_equal(off.tables["crm"], on.tables["crm"])
    cols = ["customer_id", "order_date", "category", "amount"]
    treated_ids = on.tables["crm"].query("treated == 1").customer_id
    extra = pd.concat([on.tables["erp_orders"][cols], off.tables["erp_orders"][cols]])
    extra = extra.drop_duplicates(keep=False)
    assert len(extra) == len(on.tables["erp_orders"]) - len(off.tables["erp_orders"]) > 0
    assert extra.customer_id.isin(treated_ids).all()
    assert (extra.order_date >= pd.Timestamp("2025-06-01")).all()


def test_paired_individual_effects_average_to_the_truth():
    # With the same seed, effect_scale=0 gives each treated customer's untreated outcome, so
    # on-minus-off is their realised individual effect: a far sharper check than a DiM.
    on_pilot = extended_warranty_pilot(n_customers=40_000, seed=21)
    off_pilot = extended_warranty_pilot(n_customers=40_000, seed=21, effect_scale=0.0)
    on, off = analysis_table(dict(on_pilot.tables)), analysis_table(dict(off_pilot.tables))
    treated = on.treated == 1
    for outcome in ("revenue_12m", "gross_profit_12m", "repurchase_12m", "revenue_3m"):
        effect = (on[outcome] - off[outcome])[treated]
        se = effect.std() / np.sqrt(len(effect))
        assert abs(effect.mean() - on_pilot.truth[outcome]) <= 4 * se + 1e-9, outcome
        if outcome in ("revenue_12m", "gross_profit_12m"):
            assert 4 * se < 0.15 * on_pilot.truth[outcome], outcome  # the check has teeth


def test_pre_period_revenue_predicts_post_period_revenue(big):
    _, df = big
    corr = np.corrcoef(df.pre_revenue_12m, df.revenue_12m)[0, 1]
    assert 0.4 < corr < 0.8


def test_default_pilot_is_fast_enough_and_realistic():
    pilot = extended_warranty_pilot()
    df = analysis_table(dict(pilot.tables))
    assert len(df) == 40_000 and df.treated.sum() == 20_000
    assert 200 < df.loc[df.treated == 0, "revenue_12m"].mean() < 600
    assert "truth" in pilot.description and "months 4-12" in pilot.description


def test_registry_lists_the_simulator():
    assert SIMULATORS["extended_warranty_pilot"] is extended_warranty_pilot


def test_unknown_simulator_name_raises_spec_error():
    with pytest.raises(SpecError, match="no_such_pilot") as info:
        simulate("no_such_pilot", seed=0)
    assert "extended_warranty_pilot" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_parameter_raises_spec_error():
    with pytest.raises(SpecError, match="n_customer'") as info:
        simulate("extended_warranty_pilot", seed=0, n_customer=10)
    assert "n_customers" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "params",
    [
        {"n_customers": 1},
        {"n_customers": 10.5},
        {"treated_share": 0.0},
        {"treated_share": 1.0},
        {"effect_scale": -0.5},
        {"effect_scale": float("nan")},
        {"start_date": "not a date"},
        {"start_date": None},
    ],
)
def test_bad_parameter_values_raise_spec_error(params):
    with pytest.raises(SpecError):
        simulate("extended_warranty_pilot", seed=0, **{"n_customers": 100, **params})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_tables_round_trip(small, tmp_path, fmt):
    paths = write_tables(small, tmp_path / "out", fmt=fmt)
    assert set(paths) == set(TABLES)
    dates = {"crm": ["signup_date", "assigned_at"], "erp_orders": ["order_date"]}
    for name, path in paths.items():
        assert path == tmp_path / "out" / f"{name}.{fmt}" and path.exists()
        if fmt == "csv":
            back = pd.read_csv(path, parse_dates=dates.get(name, False))
        else:
            back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(back, small.tables[name], check_dtype=False)
        for col in dates.get(name, []):
            assert pd.api.types.is_datetime64_dtype(back[col])


def test_write_tables_rejects_unknown_format(small, tmp_path):
    with pytest.raises(SpecError, match="xlsx"):
        write_tables(small, tmp_path, fmt="xlsx")  # type: ignore[arg-type]
