"""Callaway–Sant'Anna from SQL aggregates (did_moments) equals the row path (group_time_effects
+ aggregate, clustered and banded as did_cs_run) to 1e-9; a simulated panel with a known effect;
clear errors on bad panels; and the same numbers on Spark as on DuckDB (marked ``spark``)."""

from __future__ import annotations

import functools
import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal.data.dataset import query_table
from causal.data.engine import DuckDBEngine
from causal.designs import horizons
from causal.designs.did_cs import group_time_effects
from causal.designs.did_cs_aggregate import aggregate
from causal.designs.did_cs_run import _with_band, clustered_cells, cumulative_effects, pretest
from causal.designs.did_moments import CSAggregates, cs_from_aggregates
from causal.errors import DataError, DesignError
from causal.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
BANDED = ("group", "dynamic", "calendar")
KINDS = ("simple", *BANDED)
RTOL = 1e-9
N_BOOT = 199  # the row path's bootstrap is the slow part of these tests; 199 draws suffice
MPDTA_COLS = dict(unit="countyreal", time="year", cohort="first_treat", outcome="lemp")
ROLLOUT_COLS = dict(unit="store", time="month_index", cohort="first_treated", outcome="revenue")
# 16 of the 30 months: the cohorts of months 18 and 22 start after the window, so they count as
# never treated (R did's rule); on Spark, also fewer columns to compile.
WINDOW = "SELECT * FROM rollout WHERE month_index <= 16"


@pytest.fixture(autouse=True)
def fewer_sup_t_draws(monkeypatch):
    """Both paths' Gaussian sup-t (cumulative effects; our unit-clustered bands) with 20,000
    draws instead of 200,000: the same function on both sides, a tenth of the time."""
    monkeypatch.setattr(horizons, "sup_t_critical_value",
                        functools.partial(horizons.sup_t_critical_value, draws=20_000))  # fmt: skip


@pytest.fixture(scope="module")
def frames() -> dict[str, tuple[pd.DataFrame, dict, str]]:
    """The two specs' analysis tables, each with its columns and a coarse cluster column."""
    mpdta = query_table(load_spec(ROOT / "experiments" / "mpdta_minimum_wage.yaml"))
    mpdta["state"] = mpdta["countyreal"] // 1000  # county FIPS codes: state × 1000 + county
    rollout = query_table(load_spec(ROOT / "experiments" / "remote_support_rollout.yaml"))
    return {"mpdta": (mpdta, MPDTA_COLS, "state"), "rollout": (rollout, ROLLOUT_COLS, "region")}


@pytest.fixture(scope="module")
def duck(frames):
    engine = DuckDBEngine()
    for name, (frame, _, _) in frames.items():
        engine._con.register(name, frame)
    yield engine
    engine.close()


def row_path(frame, cols, *, cluster=None, n_boot=N_BOOT, seed=0, **opts):
    """What did_cs_run.fit_callaway_santanna computes, on a plain long frame."""
    effects = group_time_effects(frame, **cols, **opts)
    codes = None
    if cluster:  # did_cs_run: codes in sorted order of the cluster values over the whole table
        per_row, _ = pd.factorize(frame[cluster].to_numpy(), sort=True)
        per_unit = pd.Series(per_row, index=frame[cols["unit"]].to_numpy()).groupby(level=0).first()
        codes = per_unit.loc[effects.units].to_numpy()
        effects = clustered_cells(effects, codes)
    aggs = {"simple": aggregate(effects, "simple", cluster=codes)}
    aggs |= {kind: _with_band(effects, kind, n_boot, seed, codes) for kind in BANDED}
    return effects, aggs, pretest(effects, cluster=codes)


def quietly(fn, *args, **kwargs):
    """Both paths warn alike (dropped units, small cohorts); the tests compare numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def close(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=RTOL,
                               atol=RTOL * _scale(b), err_msg=what)  # fmt: skip


def _scale(values) -> float:
    """Absolute tolerance for numbers near 0 (a pre-period ATT): 1e-9 of the column's size."""
    finite = np.abs(np.asarray(values, float))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def assert_same_as_rows(ours: CSAggregates, effects, aggs, pre, *, bands: bool) -> None:
    tb, ref = ours.effects.table, effects.table
    assert list(tb.columns) == list(ref.columns)
    for column in ("group", "time", "event_time", "post", "n_treated", "n_control", "base_time"):
        assert tb[column].dtype == ref[column].dtype, column
        np.testing.assert_array_equal(tb[column], ref[column], err_msg=column)
    for column in ("att", "std_error", "conf_low", "conf_high"):
        close(tb[column], ref[column], f"att_gt {column}")
    assert ours.n_units == effects.n_units
    assert ours.n_treated == int((effects.group_of_unit > 0).sum())
    for kind in KINDS:
        a, b = ours.aggregations[kind], aggs[kind]
        for name in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            close(getattr(a, name), getattr(b, name), f"{kind} {name}")
        if b.table is None:
            assert a.table is None
            continue
        np.testing.assert_array_equal(a.table["level"], b.table["level"])
        assert a.table["level"].dtype == b.table["level"].dtype
        columns = ["estimate", "std_error", "conf_low", "conf_high"]
        if bands:
            columns += ["band_low", "band_high"]
            close(a.critical_value, b.critical_value, f"{kind} critical value")
        for column in columns:
            close(a.table[column], b.table[column], f"{kind} {column}")
    ours_cum = cumulative_effects(ours.aggregations["dynamic"], seed=3)
    rows_cum = cumulative_effects(aggs["dynamic"], seed=3)
    for key in ("estimate", "std_error"):
        close([r[key] for r in ours_cum], [r[key] for r in rows_cum], f"cumulative {key}")
    # sup_t_critical_value takes square roots of the eigenvalues of a correlation matrix that is
    # singular with fewer clusters than event times: 1e-16 noise there is 1e-8 in the band
    for key in ("band_low", "band_high"):
        np.testing.assert_allclose([r[key] for r in ours_cum], [r[key] for r in rows_cum],
                                   rtol=1e-6, err_msg=f"cumulative {key}")  # fmt: skip
    assert ours.pretest["df"] == pre["df"]
    close([ours.pretest["w"], ours.pretest["p_value"]], [pre["w"], pre["p_value"]], "pretest")


GRID = list(
    itertools.product(
        ("mpdta", "rollout"),
        ("never_treated", "not_yet_treated"),
        ("varying", "universal"),
        (0, 1),
        (False, True),
    )
)


@pytest.mark.parametrize(("data", "control", "base", "anticipation", "coarse"), GRID)
def test_equals_row_path(frames, duck, data, control, base, anticipation, coarse):
    frame, cols, cluster_column = frames[data]
    cluster = cluster_column if coarse else None
    opts = dict(control_group=control, base_period=base, anticipation=anticipation)
    # by unit the bands differ by construction (test_unit_clustered_band_...): no draws here
    n_boot = N_BOOT if coarse else 0
    ours = quietly(cs_from_aggregates, duck, data, **cols, cluster=cluster,
                   bootstrap_replications=n_boot, seed=11, **opts)  # fmt: skip
    rows = quietly(row_path, frame, cols, cluster=cluster, n_boot=n_boot, seed=11, **opts)
    # clustered by a coarse column the bootstrap runs on the same cluster rows: same bands
    assert_same_as_rows(ours, *rows, bands=coarse)
    if coarse:
        kept = frame[cols["unit"]].isin(rows[0].units)  # units treated from the start go
        assert ours.n_clusters == frame.loc[kept, cluster].nunique()
        assert "Rademacher" in ours.details["uniform_band"]


@pytest.mark.parametrize("coarse", [False, True])
def test_sample_rules_as_row_path(frames, duck, coarse):
    """Cohorts starting after the last period count as never treated; without never-treated
    units the not-yet-treated comparison drops the last cohort's periods (R did's rules)."""
    rollout, cols, region = frames["rollout"]
    duck.create_view("rollout_window", WINDOW)
    window = rollout[rollout["month_index"] <= 16]
    cluster = region if coarse else None
    opts = dict(cluster=cluster, n_boot=N_BOOT if coarse else 0)
    ours = quietly(cs_from_aggregates, duck, "rollout_window", **cols, cluster=cluster,
                   bootstrap_replications=opts["n_boot"])  # fmt: skip
    assert set(ours.effects.table["group"]) == {10, 14}  # months 18 and 22: never treated here
    assert_same_as_rows(ours, *quietly(row_path, window, cols, **opts), bands=coarse)
    treated = rollout[rollout["first_treated"] > 0]
    duck._con.register("rollout_treated", treated)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = cs_from_aggregates(duck, "rollout_treated", **cols, cluster=cluster,
                                  control_group="not_yet_treated",
                                  bootstrap_replications=opts["n_boot"])  # fmt: skip
    assert any("no never-treated units: periods from 22.0 on" in str(w.message) for w in caught)
    rows = quietly(row_path, treated, cols, control_group="not_yet_treated", **opts)
    assert_same_as_rows(ours, *rows, bands=coarse)


def test_overlap_guard_as_row_path():
    """dr and ipw refuse a cell that is 99.5% treated (as the row path); reg estimates it."""
    frame = simulated_panel(n=1200, periods=5)
    frame["g"] = np.where(frame["id"] < 5, 0, 4)  # 1195 of 1200 units in cohort 4
    engine = DuckDBEngine()
    engine._con.register("crowded", frame)
    opts = dict(unit="id", time="t", cohort="g", outcome="y")
    for method in ("dr", "ipw"):
        with pytest.raises(DesignError, match="overlap fails for cohort 4 in period 2") as ours:
            quietly(cs_from_aggregates, engine, "crowded", **opts, method=method)
        with pytest.raises(DesignError) as rows:
            quietly(group_time_effects, frame, **opts, method=method)
        assert str(ours.value) == str(rows.value)
    reg = quietly(cs_from_aggregates, engine, "crowded", **opts, method="reg",
                  bootstrap_replications=0)  # fmt: skip
    close(reg.effects.table["att"], group_time_effects(frame, **opts, method="reg").table["att"],
          "reg")  # fmt: skip


def test_unit_clustered_band_is_close_to_the_bootstrap(frames, duck):
    """By unit the band's critical value comes from the exact covariance (Gaussian sup-t), not
    from per-unit multipliers: equal to the row path's bootstrap up to Monte Carlo error."""
    frame, cols, _ = frames["rollout"]
    ours = cs_from_aggregates(duck, "rollout", **cols, bootstrap_replications=999)
    _, aggs, _ = row_path(frame, cols, n_boot=999)
    assert ours.details["uniform_band"].startswith("Gaussian sup-t")
    for kind in BANDED:
        assert ours.aggregations[kind].n_boot == 0
        ours_crit, boot_crit = ours.aggregations[kind].critical_value, aggs[kind].critical_value
        assert ours_crit == pytest.approx(boot_crit, abs=0.15), kind


def test_mpdta_matches_r_did(duck):
    res = cs_from_aggregates(duck, "mpdta", **MPDTA_COLS)
    r_did = {"simple": (-0.03995, 0.01203), "group": (-0.03102, 0.01245),
             "dynamic": (-0.07724, 0.01996), "calendar": (-0.04170, 0.01597)}  # fmt: skip
    for kind, expected in r_did.items():
        agg = res.aggregations[kind]
        assert (agg.estimate, agg.std_error) == pytest.approx(expected, abs=1e-4)


def test_methods_coincide_without_covariates(frames, duck):
    """reg, ipw and dr are one estimator without covariates; only the overlap guard differs."""
    frame, cols, _ = frames["mpdta"]
    base = cs_from_aggregates(duck, "mpdta", **cols, method="reg", bootstrap_replications=0)
    for method in ("ipw", "dr"):
        other = cs_from_aggregates(duck, "mpdta", **cols, method=method, bootstrap_replications=0)
        pd.testing.assert_frame_equal(base.effects.table, other.effects.table)
        rows = group_time_effects(frame, **cols, method=method).table
        close(other.effects.table["att"], rows["att"], method)


# --- known truth by simulation -------------------------------------------------------------------


def simulated_panel(seed: int = 5, n: int = 600, periods: int = 8, effect: float = 2.0):
    """Staggered adoption (cohorts 4, 6, never) with a constant effect and unit, time shocks."""
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 4, 6], size=n, p=[0.4, 0.3, 0.3])
    t = np.arange(1, periods + 1)
    y = rng.normal(10, 3, n)[:, None] + 0.3 * t + rng.normal(size=(n, periods))
    y = y + effect * ((g[:, None] > 0) & (t >= g[:, None]))
    return pd.DataFrame(
        {"id": np.repeat(np.arange(n), periods), "t": np.tile(t, n), "g": np.repeat(g, periods),
         "y": y.ravel(), "site": np.repeat(np.arange(n) % 40, periods)}
    )  # fmt: skip


@pytest.mark.parametrize("cluster", [None, "site"])
def test_simulated_constant_effect_is_recovered(cluster):
    engine = DuckDBEngine()
    engine._con.register("sim", simulated_panel())
    res = cs_from_aggregates(engine, "sim", unit="id", time="t", cohort="g", outcome="y",
                             cluster=cluster, bootstrap_replications=99)  # fmt: skip
    for kind in KINDS:
        agg = res.aggregations[kind]
        assert agg.conf_low < 2.0 < agg.conf_high, (kind, agg.estimate, agg.std_error)
        assert abs(agg.estimate - 2.0) < 0.2
    pre = res.aggregations["dynamic"].table.query("level < 0")
    assert np.all(np.abs(pre["estimate"]) < 3 * pre["std_error"])  # parallel trends hold
    assert res.pretest["p_value"] > 0.001


# --- bad input -----------------------------------------------------------------------------------


def _run_on(frame: pd.DataFrame, **kwargs):
    engine = DuckDBEngine()
    engine._con.register("bad", frame)
    opts = dict(unit="id", time="t", cohort="g", outcome="y") | kwargs
    return cs_from_aggregates(engine, "bad", **opts)


@pytest.fixture
def panel() -> pd.DataFrame:
    return simulated_panel(n=120, periods=7)


def test_duplicate_unit_periods_are_named(panel):
    bad = pd.concat([panel, panel.iloc[[7]]], ignore_index=True)
    with pytest.raises(DataError, match=r"1 units have more than one row in a period.*\(1, 1, 2\)"):
        _run_on(bad)


def test_unbalanced_panel_is_an_error(panel):
    bad = panel.drop(index=[3, 12, 13])  # unit 0 misses one period, unit 1 two
    with pytest.raises(DataError, match="needs a balanced panel; 2 units miss some periods"):
        _run_on(bad)


def test_missing_outcome_is_named(panel):
    bad = panel.assign(y=panel["y"].where(panel.index != 11))
    with pytest.raises(DataError, match=r"outcome column 'y' has 1 missing .*\(1, 5\)"):
        _run_on(bad)
    with pytest.raises(DataError, match="has 1 missing or non-finite"):
        _run_on(panel.assign(y=panel["y"].where(panel.index != 11, np.inf)))


def test_cohort_changing_within_a_unit_is_named(panel):
    bad = panel.copy()
    bad.loc[bad.index[panel["id"] == 4][-1], "g"] = 99
    with pytest.raises(DataError, match=r"column 'g' changes over time for 1 units; .*\(4, "):
        _run_on(bad)


def test_no_never_treated_units(panel):
    treated = panel[panel["g"] > 0]
    with pytest.raises(DesignError, match="no never-treated units"):
        _run_on(treated)
    with pytest.warns(UserWarning, match="no never-treated units: periods from 6.0 on"):
        res = _run_on(treated, control_group="not_yet_treated", bootstrap_replications=0)
    assert set(res.effects.table["group"]) == {4}


def test_bad_columns_and_clusters(panel):
    with pytest.raises(DataError, match="no column 'sales' \\(outcome\\)"):
        _run_on(panel, outcome="sales")
    with pytest.raises(DataError, match="column 'y' \\(outcome\\) must be numeric"):
        _run_on(panel.assign(y=panel["y"].astype(str)))
    moved = panel.assign(site=np.where(panel.index == 9, 99, panel["site"]))
    with pytest.raises(DataError, match="cluster column 'site' changes within 1 units"):
        _run_on(moved, cluster="site")
    with pytest.raises(DesignError, match="unknown control_group"):
        _run_on(panel, control_group="everyone")


# --- Spark: the same SQL, the same numbers -------------------------------------------------------


@pytest.fixture(scope="module")
def spark(frames):
    module = pytest.importorskip("causal.data.spark_engine")
    from conftest import SPARK_MASTER, spark_unavailable

    if reason := spark_unavailable():
        pytest.skip(reason)
    engine = module.SparkEngine(master=SPARK_MASTER)
    for name, (frame, _, _) in frames.items():
        engine.register_frame(name, frame)
    engine.create_view("rollout_window", WINDOW)
    yield engine
    engine.close()


def assert_same_results(a: CSAggregates, b: CSAggregates) -> None:
    pd.testing.assert_frame_equal(a.effects.table, b.effects.table, rtol=RTOL, atol=1e-12,
                                  check_exact=False)  # fmt: skip
    for kind in KINDS:
        x, y = a.aggregations[kind], b.aggregations[kind]
        for name in ("estimate", "std_error", "critical_value", "p_value"):
            close(getattr(x, name), getattr(y, name), f"{kind} {name}")
        if x.table is not None:
            pd.testing.assert_frame_equal(x.table, y.table, rtol=RTOL, atol=1e-12,
                                          check_exact=False)  # fmt: skip
    close([a.pretest["w"]], [b.pretest["w"]], "pretest")


SPARK_CASES = [
    ("rollout", dict(cluster="region", base_period="universal", anticipation=1)),
    ("rollout_window", dict(control_group="not_yet_treated")),
    ("mpdta", dict(control_group="not_yet_treated", anticipation=1, cluster="state")),
    ("mpdta", dict(base_period="universal")),
]


@pytest.mark.spark
@pytest.mark.parametrize(("data", "opts"), SPARK_CASES)
def test_spark_equals_duckdb(spark, duck, frames, data, opts):
    cols = frames[data.removesuffix("_window")][1]
    duck.create_view("rollout_window", WINDOW)
    on_spark = quietly(cs_from_aggregates, spark, data, **cols, bootstrap_replications=N_BOOT,
                       **opts)  # fmt: skip
    on_duck = quietly(cs_from_aggregates, duck, data, **cols, bootstrap_replications=N_BOOT, **opts)
    assert_same_results(on_spark, on_duck)


@pytest.mark.spark
def test_spark_checks_the_panel(spark):
    bad = simulated_panel(n=60, periods=4).drop(index=[5])
    spark.register_frame("bad_panel", bad)
    with pytest.raises(DataError, match="needs a balanced panel; 1 units miss some periods"):
        cs_from_aggregates(spark, "bad_panel", unit="id", time="t", cohort="g", outcome="y")
