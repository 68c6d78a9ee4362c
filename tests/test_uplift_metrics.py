"""Uplift metrics: agreement with scikit-uplift, known answers, the vectorised bootstrap, the
binned calibration table and input validation."""

from __future__ import annotations

import numpy as np
import pytest

from causal.designs import uplift_metrics as um
from causal.errors import DesignError

# sklift calls sklearn's deprecated stable_cumsum on every curve.
pytestmark = pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated")

# Hand-computed example: Qini (0,0) (1,1) (2,1) (3,-1) (4,0), area 1; perfect area 3.
Y4, T4, S4 = [1, 0, 1, 0], [1, 1, 0, 0], [0.9, 0.5, 0.4, 0.1]


def simulate(seed, n=600, *, scores="continuous", outcome="binary", share=0.5, base=0.3):
    rng = np.random.default_rng(seed)
    t = (rng.random(n) < share).astype(int)
    t[:2] = [0, 1]  # both arms present
    x = rng.normal(size=n)
    score = {"continuous": x, "rounded": np.round(x, 1), "constant": np.full(n, 0.25)}[scores]
    effect = 0.2 * (x > 0) - 0.05
    if outcome == "binary":
        y = (rng.random(n) < base + t * effect).astype(int)
    else:
        y = rng.normal(size=n) + 0.5 * x + t * effect * 3
    return y, score, t


@pytest.fixture
def sklift(monkeypatch):
    """sklift.metrics.metrics; its binary-outcome check lifted so continuous y can be compared
    (the formulas themselves are general)."""
    metrics = pytest.importorskip(
        "sklift.metrics.metrics", reason="scikit-uplift is a test extra (pip install scikit-uplift)"
    )
    monkeypatch.setattr(metrics, "check_is_binary", lambda array: None)
    return metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scores", ["continuous", "rounded", "constant"])
@pytest.mark.parametrize("outcome", ["binary", "continuous"])
@pytest.mark.parametrize("share", [0.5, 0.12])
def test_agrees_with_sklift(sklift, seed, scores, outcome, share):
    y, s, t = simulate(seed, scores=scores, outcome=outcome, share=share)
    assert um.qini_coefficient(y, s, t) == pytest.approx(sklift.qini_auc_score(y, s, t), abs=1e-9)
    assert um.uplift_auc(y, s, t) == pytest.approx(sklift.uplift_auc_score(y, s, t), abs=1e-9)
    pairs = [
        (um.qini_curve(y, s, t), sklift.qini_curve(y, s, t)),
        (um.uplift_curve(y, s, t), sklift.uplift_curve(y, s, t)),
        (um.perfect_qini_curve(y, t), sklift.perfect_qini_curve(y, t, negative_effect=True)),
        (um.perfect_uplift_curve(y, t), sklift.perfect_uplift_curve(y, t)),
    ]
    for ours, theirs in pairs:
        for a, b in zip(ours, theirs, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_sklift_binary_check_is_the_only_reason_continuous_y_is_patched():
    metrics = pytest.importorskip("sklift.metrics.metrics", reason="scikit-uplift is a test extra")
    y, s, t = simulate(0, outcome="continuous")
    with pytest.raises(ValueError):  # "not binary", or a broadcasting error
        metrics.qini_auc_score(y, s, t)
    assert np.isfinite(um.qini_coefficient(y, s, t))


def test_hand_computed_example():
    x, q = um.qini_curve(Y4, S4, T4)
    assert x.tolist() == [0, 1, 2, 3, 4] and q.tolist() == [0, 1, 1, -1, 0]
    assert um.perfect_qini_curve(Y4, T4)[1].tolist() == [0, 1, 1, 0]
    assert um.qini_coefficient(Y4, S4, T4) == pytest.approx(1 / 3)  # (1 - 0) / (3 - 0)
    # uplift: (0,0) (1,1) (2,1) (3,-1.5) (4,0): area 0.5; perfect (0,0) (1,1) (2,2) (3,1.5) (4,0)
    assert um.uplift_curve(Y4, S4, T4)[1].tolist() == [0, 1, 1, -1.5, 0]
    assert um.uplift_auc(Y4, S4, T4) == pytest.approx(0.5 / 4.5)


def test_ties_enter_together():
    x, q = um.qini_curve([1, 0, 1, 0, 1], [0.5, 0.5, 0.2, 0.2, 0.2], [1, 0, 1, 0, 1])
    assert x.tolist() == [0, 2, 5]
    assert q.tolist() == [0, 1 - 0 * 1, 3 - 0 * 3 / 2]


def persuadables():
    """Treated: 30 persuadables (y=1, effect 1), 20 sure-nothings; control: 25 sure-nothings,
    25 sleeping dogs (y=1, effect -1). Score = true individual effect."""
    t = np.r_[np.ones(50), np.zeros(50)]
    y = np.r_[np.ones(30), np.zeros(20), np.zeros(25), np.ones(25)]
    effect = np.r_[np.ones(30), np.zeros(45), -np.ones(25)]
    return y, effect, t


def test_true_effect_score_gives_qini_one_and_reversed_is_negative():
    y, effect, t = persuadables()
    assert um.qini_coefficient(y, effect, t) == pytest.approx(1.0, abs=1e-12)
    assert um.qini_coefficient(y, -effect, t) < -0.2
    assert um.uplift_auc(y, -effect, t) < 0 < um.uplift_auc(y, effect, t)


def test_good_score_reversed_gives_negative_coefficients():
    y, s, t = simulate(3, n=4000)
    assert um.qini_coefficient(y, s, t) > 0.05
    assert um.qini_coefficient(y, -s, t) < -0.05
    assert um.uplift_auc(y, -s, t) < 0 < um.uplift_auc(y, s, t)


@pytest.mark.parametrize("outcome", ["binary", "continuous"])
def test_constant_weights_change_nothing(outcome):
    y, s, t = simulate(4, scores="rounded", outcome=outcome)
    for fn in (um.qini_coefficient, um.uplift_auc):
        assert fn(y, s, t, weights=np.full(y.size, 2.0)) == pytest.approx(fn(y, s, t), abs=1e-12)
    x2, q2 = um.qini_curve(y, s, t, weights=np.full(y.size, 2.0))
    x1, q1 = um.qini_curve(y, s, t)
    np.testing.assert_allclose(x2, 2 * x1)
    np.testing.assert_allclose(q2, 2 * q1)


@pytest.mark.parametrize("outcome", ["binary", "continuous"])
def test_integer_weights_equal_duplicated_rows(outcome):
    y, s, t = simulate(5, n=300, scores="rounded", outcome=outcome, share=0.3)
    w = np.random.default_rng(0).integers(0, 4, y.size)
    w[:2] = 1
    rows = np.repeat(np.arange(y.size), w)
    for fn in (um.qini_coefficient, um.uplift_auc):
        assert fn(y, s, t, weights=w) == pytest.approx(fn(y[rows], s[rows], t[rows]), abs=1e-10)
    for fn in (um.qini_curve, um.uplift_curve):
        for a, b in zip(fn(y, s, t, weights=w), fn(y[rows], s[rows], t[rows]), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-9)
    for fn in (um.perfect_qini_curve, um.perfect_uplift_curve):
        for a, b in zip(fn(y, t, weights=w), fn(y[rows], t[rows]), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-9)


def test_constant_outcome_gives_nan_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(um.qini_coefficient(np.zeros(10), np.arange(10.0), np.tile([0, 1], 5)))


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_contains_the_estimate():
    y, s, t = simulate(6, n=1500)
    a = um.bootstrap_metrics(y, s, t, replications=200, seed=3)
    assert a == um.bootstrap_metrics(y, s, t, replications=200, seed=3)
    assert a != um.bootstrap_metrics(y, s, t, replications=200, seed=4)
    assert a["replications"] == 200
    for key, fn in (("qini", um.qini_coefficient), ("auuc", um.uplift_auc)):
        assert set(a[key]) == {"estimate", "std_error", "conf_low", "conf_high"}
        assert a[key]["estimate"] == fn(y, s, t)
        assert a[key]["conf_low"] < a[key]["estimate"] < a[key]["conf_high"]
        assert a[key]["std_error"] > 0


@pytest.mark.parametrize("seed", range(4))
def test_bootstrap_interval_covers_zero_under_the_null(seed):
    rng = np.random.default_rng(100 + seed)
    n = 2000
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.3).astype(float)
    s = rng.normal(size=n)
    out = um.bootstrap_metrics(y, s, t, replications=200, seed=seed)
    for key in ("qini", "auuc"):
        assert out[key]["conf_low"] < 0 < out[key]["conf_high"]


def naive_draws(y, s, t, w, replications, seed):
    """The same replicates as rows duplicated by their multiplicities, one loop per replicate."""
    rng = np.random.default_rng(seed)
    treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    out = []
    for _ in range(replications):
        counts = um._draw_counts(rng, treated, control, y.size)
        if w is None:
            rows = np.repeat(np.arange(y.size), counts.astype(int))
            args, kw = (y[rows], s[rows], t[rows]), {}
        else:
            args, kw = (y, s, t), {"weights": w * counts}
        out.append((um.qini_coefficient(*args, **kw), um.uplift_auc(*args, **kw)))
    return np.array(out).T


@pytest.mark.parametrize("outcome", ["binary", "continuous"])
@pytest.mark.parametrize("weighted", [False, True])
def test_vectorised_bootstrap_equals_naive_loop(monkeypatch, outcome, weighted):
    # base rate 0.5 so that sklift's CR > TN switch goes both ways across replicates
    y, s, t = simulate(7, n=80, scores="rounded", outcome=outcome, base=0.5)
    w = np.random.default_rng(1).uniform(0.5, 2, y.size) if weighted else None
    expected = naive_draws(y, s, t, w, 40, seed=11)
    got = um._bootstrap_draws(*um._validate(y, s, t, w), 40, 11)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    monkeypatch.setattr(um, "_MEMORY_BUDGET", 1)  # one replicate per chunk: same numbers
    np.testing.assert_allclose(um._bootstrap_draws(*um._validate(y, s, t, w), 40, 11), got)


def test_bootstrap_switches_perfect_uplift_ordering_across_replicates():
    y, _, t = simulate(7, n=80, scores="rounded", base=0.5)
    rng = np.random.default_rng(11)
    treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    counts = np.stack([um._draw_counts(rng, treated, control, y.size) for _ in range(40)])
    cr, tn = um._cr_tn(y.astype(float), t.astype(float), None)
    by_y = counts @ cr > counts @ tn
    assert by_y.any() and not by_y.all()


# --- uplift_by_bin --------------------------------------------------------------------------

COLUMNS = [
    "bin",
    "n",
    "n_treated",
    "n_control",
    "predicted_uplift",
    "observed_uplift",
    "std_error",
    "conf_low",
    "conf_high",
]


def test_uplift_by_bin_recovers_a_known_effect():
    rng = np.random.default_rng(8)
    n = 60_000
    t = rng.integers(0, 2, n)
    s = rng.random(n)
    y = (rng.random(n) < 0.2 + 0.3 * t * (s > 0.5)).astype(float)
    table = um.uplift_by_bin(y, s, t)
    assert list(table.columns) == COLUMNS
    assert table["bin"].tolist() == list(range(1, 11))
    assert (table["n"] == n // 10).all()
    assert (table["n_treated"] + table["n_control"] == table["n"]).all()
    assert table["predicted_uplift"].is_monotonic_decreasing
    top, bottom = table.iloc[:5], table.iloc[5:]
    assert np.abs(top["observed_uplift"] - 0.3).max() < 0.05
    assert np.abs(bottom["observed_uplift"]).max() < 0.04
    assert ((top["conf_low"] < 0.3) & (top["conf_high"] > 0.3)).sum() >= 4
    assert ((bottom["conf_low"] < 0) & (bottom["conf_high"] > 0)).sum() >= 4


def test_uplift_by_bin_welch_standard_error_and_weights():
    rng = np.random.default_rng(9)
    y, s, t = rng.normal(size=200), rng.normal(size=200), rng.integers(0, 2, 200)
    table = um.uplift_by_bin(y, s, t, bins=4, alpha=0.1)
    first = np.argsort(-s)[:50]
    yt, yc = y[first][t[first] == 1], y[first][t[first] == 0]
    se = np.sqrt(yt.var(ddof=1) / yt.size + yc.var(ddof=1) / yc.size)
    row = table.iloc[0]
    assert row["observed_uplift"] == pytest.approx(yt.mean() - yc.mean())
    assert row["std_error"] == pytest.approx(se)
    assert row["conf_high"] - row["observed_uplift"] == pytest.approx(1.6448536 * se)
    assert row["predicted_uplift"] == pytest.approx(s[first].mean())
    weighted = um.uplift_by_bin(y, s, t, bins=4, alpha=0.1, weights=np.full(200, 3.0))
    np.testing.assert_allclose(weighted[COLUMNS[4:]], table[COLUMNS[4:]], rtol=1e-12)


def test_uplift_by_bin_keeps_ties_in_one_bin():
    rng = np.random.default_rng(10)
    s = rng.integers(0, 7, 1000).astype(float)  # 7 distinct scores for 10 bins
    t = rng.integers(0, 2, 1000)
    y = rng.random(1000)
    table = um.uplift_by_bin(y, s, t)
    assert table["n"].sum() == 1000 and len(table) <= 7
    # each distinct score forms exactly one bin, whose mean score is that score
    assert sorted(table["predicted_uplift"]) == sorted(np.unique(s))
    constant = um.uplift_by_bin(y, np.zeros(1000), t)
    assert len(constant) == 1 and constant["n"].item() == 1000


def test_uplift_by_bin_missing_arm_gives_nan():
    s = np.arange(40.0)
    t = np.r_[np.tile([0, 1], 15), np.ones(10)]  # the 10 highest scores are all treated
    table = um.uplift_by_bin(np.arange(40.0) % 3, s, t, bins=4)
    assert table["n_control"].iloc[0] == 0
    assert np.isnan(table[["observed_uplift", "std_error", "conf_low"]].iloc[0]).all()
    assert table["observed_uplift"].iloc[1:].notna().all()


# --- thin_curve -----------------------------------------------------------------------------


def test_thin_curve_keeps_ends():
    x, q = um.qini_curve(*simulate(0, n=5000))
    xs, qs = um.thin_curve(x, q, max_points=50)
    assert xs.size <= 50 and (xs[0], xs[-1], qs[-1]) == (x[0], x[-1], q[-1])
    assert np.all(np.diff(xs) > 0)
    short = um.thin_curve([0, 1, 2], [0, 5, 3])
    assert [a.tolist() for a in short] == [[0, 1, 2], [0, 5, 3]]
    with pytest.raises(DesignError, match="max_points"):
        um.thin_curve(x, q, max_points=1)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1, 0, 1], [0.1, 0.2], [1, 0, 1]), {}, r"lengths differ \(y 3, score 2, treatment 3\)"),
        (([1, 0], [0.1, np.nan], [1, 0]), {}, "score has 1 non-finite"),
        (([1, np.inf], [0.1, 0.2], [1, 0]), {}, "y has 1 non-finite"),
        (([1, 0], [0.1, 0.2], [1, 2]), {}, "treatment must be 0/1"),
        (([1, 0], [0.1, 0.2], [1, 1]), {}, "the held-out data has no control units"),
        (([1, 0], [0.1, 0.2], [0, 0]), {}, "the held-out data has no treated units"),
        (([1, 0], [0.1, 0.2], [1, 0]), {"weights": [1, -1]}, "weights must be non-negative"),
        (([1, 0], [0.1, 0.2], [1, 0]), {"weights": [0, 1]}, "no treated units"),
        (([1, 0], [0.1, 0.2], [1, 0]), {"weights": [1, 1, 1]}, "lengths differ"),
        (([1, 0], ["a", "b"], [1, 0]), {}, "score must be numeric"),
        (([], [], []), {}, "no treated units"),
    ],
)
def test_validation_errors(args, kwargs, message):
    for fn in (um.qini_curve, um.qini_coefficient, um.uplift_auc, um.bootstrap_metrics):
        with pytest.raises(DesignError, match=message):
            fn(*args, **kwargs)


def test_option_errors():
    y, s, t = simulate(0, n=50)
    with pytest.raises(DesignError, match="replications"):
        um.bootstrap_metrics(y, s, t, replications=1)
    with pytest.raises(DesignError, match="alpha"):
        um.bootstrap_metrics(y, s, t, alpha=1.5)
    with pytest.raises(DesignError, match="bins"):
        um.uplift_by_bin(y, s, t, bins=0)
    with pytest.raises(DesignError, match=r"lengths differ \(y 50, treatment 49\)"):
        um.perfect_qini_curve(y, t[:-1])
