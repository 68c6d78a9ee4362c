"""Data layer: sources of every kind joined in DuckDB, validation of the analysis table."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from causal.data.dataset import fingerprint, load_dataset, validate_table
from causal.errors import DataError
from causal.spec import Spec

CRM = pd.DataFrame(
    {"customer_id": [3, 1, 2, 4], "treated": [1, 0, 1, 0], "segment": ["a", "b", "a", "b"]}
)
ORDERS = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 3, 4, 4],
        "amount": [10.0, 5, 7, 9, 1, 2],
        "category": ["x", "y", "x", "y", "x", "x"],
    }
)
MARGINS = pd.DataFrame({"category": ["x", "y"], "margin": [0.5, 0.25]})
QUERY = """
SELECT c.customer_id, c.treated, c.segment, SUM(o.amount) AS revenue,
       SUM(o.amount * m.margin) AS profit
FROM crm c JOIN orders o USING (customer_id) JOIN margins m USING (category)
GROUP BY ALL
"""


def make_spec(sources, query=QUERY, **extra):
    return Spec.model_validate(
        {
            "name": "t",
            "title": "t",
            "question": "q",
            "intervention": {"name": "s", "start_date": "2025-01-01"},
            "design": {"kind": "ab_test"},
            "unit": "customer_id",
            "treatment": "treated",
            "outcomes": [{"column": "revenue"}, {"column": "profit"}],
            "data": {"sources": sources, "query": query},
            **extra,
        }
    )


def silos(tmp_path):
    CRM.to_csv(tmp_path / "crm.csv", index=False)
    ORDERS.to_parquet(tmp_path / "orders.parquet")
    with duckdb.connect(str(tmp_path / "finance.duckdb")) as con:
        con.register("m", MARGINS)
        con.execute("CREATE TABLE margins AS SELECT * FROM m")
    return {
        "crm": {"path": str(tmp_path / "crm.csv")},
        "orders": {"path": str(tmp_path / "orders.parquet")},
        "margins": {"path": str(tmp_path / "finance.duckdb")},
    }


def test_csv_parquet_and_duckdb_silos_join_into_one_sorted_table(tmp_path):
    ds = load_dataset(make_spec(silos(tmp_path)))
    assert ds.table.customer_id.tolist() == [1, 2, 3, 4]
    assert ds.table.revenue.tolist() == [15.0, 7.0, 9.0, 3.0]
    assert ds.table.profit.tolist() == pytest.approx([6.25, 3.5, 2.25, 1.5])
    assert ds.n_treated == 2


def test_relative_paths_resolve_against_the_spec_folder(tmp_path):
    sources = silos(tmp_path)
    sources = {k: {"path": v["path"].rsplit("/", 1)[1]} for k, v in sources.items()}
    spec = make_spec(sources)
    spec._path = tmp_path / "spec.yaml"
    assert load_dataset(spec).n_units == 4


def test_duckdb_source_with_named_table(tmp_path):
    sources = silos(tmp_path)
    sources["fin"] = {"path": sources.pop("margins")["path"], "table": "margins"}
    spec = make_spec(sources, query=QUERY.replace("JOIN margins m", "JOIN fin m"))
    assert load_dataset(spec).n_units == 4


def test_missing_source_file_names_source_and_path(tmp_path):
    with pytest.raises(DataError, match=r"data source 'crm': file not found: .*nowhere\.csv"):
        load_dataset(make_spec({"crm": {"path": str(tmp_path / "nowhere.csv")}}, query=None))


def test_sql_error_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"DuckDB rejected the SQL"):
        load_dataset(make_spec(silos(tmp_path), query="SELECT nope FROM crm"))


def test_simulator_source_shares_one_world_across_tables():
    from causal.simulate import ANALYSIS_QUERY

    sources = {
        t: {"simulator": "extended_warranty_pilot", "table": t, "params": {"n_customers": 500}}
        for t in ("crm", "erp_orders", "finance_margins")
    }
    spec = make_spec(sources, query=ANALYSIS_QUERY, seed=3)
    spec = spec.model_copy(
        update={"outcomes": [spec.outcomes[0].model_copy(update={"column": "revenue_12m"})]}
    )
    ds = load_dataset(spec)
    assert ds.n_units == 500 and ds.table.customer_id.is_unique


def test_fingerprint_changes_with_any_value():
    t = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    u = t.copy()
    u.loc[1, "b"] = 0.2500001
    assert fingerprint(t) == fingerprint(t.copy()) != fingerprint(u)


def base_table(n=10):
    return pd.DataFrame(
        {"id": range(n), "d": [0, 1] * (n // 2), "y": np.arange(n, dtype=float), "x": 1.0}
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.iloc[0:0], "analysis table is empty"),
        (
            lambda t: t.drop(columns="d"),
            "column 'd' named in the spec is not in the analysis table",
        ),
        (lambda t: t.assign(d=[1, 2] * 5), "treatment column 'd' must be 0/1"),
        (lambda t: t.assign(d="A"), "treatment column 'd' must be 0/1"),
        (lambda t: t.assign(d=1), "has only the value 1"),
        (
            lambda t: t.assign(d=[0, 1, None, 1, 0, 1, 0, 1, 0, 1]),
            "treatment column 'd' has 1 missing",
        ),
        (lambda t: t.assign(y="high"), "outcome (continuous) column 'y' must be numeric"),
        (lambda t: t.assign(id=[0, 0, 1, 1, 2, 3, 4, 5, 6, 7]), "not unique: 2 ids"),
        (lambda t: t.assign(x="z"), "covariate column 'x' must be numeric"),
    ],
)
def test_validation_errors(mutate, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_table(
            mutate(base_table()),
            unit="id",
            treatment="d",
            outcomes={"y": "continuous"},
            covariates=("x",),
        )


def test_binary_and_count_outcomes_are_checked():
    t = base_table()
    with pytest.raises(DataError, match="binary outcome 'y' must be 0/1"):
        validate_table(t, unit="id", treatment="d", outcomes={"y": "binary"})
    with pytest.raises(DataError, match="count outcome 'y'"):
        validate_table(t.assign(y=t.y - 3), unit="id", treatment="d", outcomes={"y": "count"})


def test_booleans_are_accepted_and_missing_values_counted():
    t = base_table().assign(d=[False, True] * 5)
    t.loc[[1, 2], "y"] = np.nan
    ds = validate_table(
        t, unit="id", treatment="d", outcomes={"y": "continuous"}, covariates=("x",)
    )
    assert ds.table.d.dtype == "int64"
    assert dict(ds.missing) == {"y": 2, "x": 0}


def test_validation_does_not_mutate_the_callers_table():
    t = base_table().assign(d=[False, True] * 5)
    before = t.copy()
    validate_table(t, unit="id", treatment="d", outcomes={"y": "continuous"})
    pd.testing.assert_frame_equal(t, before)


def test_sql_the_engine_cannot_finish_is_not_called_a_rejection():
    """A disk or memory failure is not the user's SQL: the message says where to look."""
    from causal.data.engine import DuckDBEngine

    engine = DuckDBEngine()
    with pytest.raises(DataError, match=r"^DuckDB failed while running the SQL: .*disk space"):
        # an explicit error raised at run time, as a full disk would be
        engine.query("SELECT error('IO Error: Could not write file')")
