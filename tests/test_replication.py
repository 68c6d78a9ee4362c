"""Replication of published numbers on the published data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.weightstats import CompareMeans

from causal.pipeline import analyse
from causal.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "causal" / "data" / "datasets" / "nsw_mixtape.csv"


def test_vendored_nsw_equals_the_causaldata_package():
    nsw_mixtape = pytest.importorskip(
        "causaldata.nsw_mixtape", reason="causaldata is in the test extra; `make test` installs it"
    )
    package = nsw_mixtape.load_pandas().data.drop(columns="data_id")
    ours = pd.read_csv(VENDORED).drop(columns="unit_id")
    assert list(ours.columns) == list(package.columns)
    for column in package.columns:
        assert np.array_equal(ours[column].to_numpy(float), package[column].to_numpy(float)), column


def test_nsw_difference_in_mean_1978_earnings_is_1794_34():
    # Dehejia & Wahba (1999); Cunningham, The Mixtape, ch. 5: $1,794.34 (tolerance: 1 cent).
    res = analyse(load_spec(ROOT / "experiments" / "lalonde_nsw_experiment.yaml"))
    r = res.find(outcome="re78", estimator="difference_in_means")
    assert round(r.estimate, 2) == 1794.34
    assert (r.n_units, r.n_treated) == (445, 185)
    # Welch SE and interval agree with statsmodels on the same data.
    data = pd.read_csv(VENDORED)
    cm = CompareMeans.from_data(data.re78[data.treat == 1], data.re78[data.treat == 0])
    assert r.std_error == pytest.approx(cm.std_meandiff_separatevar, rel=1e-10)
    assert (r.conf_low, r.conf_high) == pytest.approx(cm.tconfint_diff(usevar="unequal"), rel=1e-10)
    assert res.headline().estimate == r.estimate
    assert next(c for c in res.checks if c.name == "sample_ratio").status == "n/a"
