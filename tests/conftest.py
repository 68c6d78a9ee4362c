"""Shared fixtures: a small, valid two-source experiment built in a temporary folder."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

BASE_SPEC: dict[str, Any] = {
    "name": "tiny_pilot",
    "title": "Tiny pilot",
    "question": "Did the tiny service change raise spend?",
    "intervention": {
        "name": "tiny_offer",
        "description": "A small offer shown to half of the units.",
        "start_date": "2025-01-01",
        "cost_per_treated_unit": 1.0,
        "fixed_cost": 100.0,
    },
    "design": {"kind": "ab_test", "planned_treated_share": 0.5},
    "unit": "unit_id",
    "treatment": "treated",
    "outcomes": [{"column": "spend", "kind": "continuous", "label": "Spend"}],
    "covariates": ["pre_spend"],
    "data": {
        "sources": {
            "units": {"path": "units.csv"},
            "sales": {"path": "sales.csv"},
        },
        "query": (
            "SELECT u.unit_id, u.treated, u.pre_spend, s.spend\n"
            "FROM units AS u\n"
            "JOIN sales AS s ON s.unit_id = u.unit_id\n"
        ),
    },
    "estimators": ["difference_in_means", "cuped"],
    "seed": 7,
}


def make_tables(n: int = 200, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two silos: ``units`` (id, random 0/1 treatment, covariate) and ``sales`` (outcome)."""
    rng = np.random.default_rng(seed)
    unit_id = np.arange(1, n + 1)
    treated = rng.permutation(np.repeat([0, 1], [n - n // 2, n // 2]))
    pre_spend = np.round(rng.gamma(2.0, 50.0, n), 2)
    spend = np.round(0.8 * pre_spend + 10.0 * treated + rng.normal(0.0, 20.0, n), 2)
    units = pd.DataFrame({"unit_id": unit_id, "treated": treated, "pre_spend": pre_spend})
    sales = pd.DataFrame({"unit_id": unit_id, "spend": spend})
    return units, sales


@dataclass
class Project:
    """A folder holding ``spec.yaml``, ``units.csv`` and ``sales.csv``."""

    root: Path
    spec: dict[str, Any]
    units: pd.DataFrame
    sales: pd.DataFrame

    @property
    def spec_path(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def name(self) -> str:
        return self.spec["name"]

    def write_spec(self, spec: dict[str, Any] | None = None) -> str:
        """Write ``spec`` (default: the current one) as YAML; return the text written."""
        if spec is not None:
            self.spec = spec
        text = yaml.safe_dump(self.spec, sort_keys=False, allow_unicode=True)
        self.spec_path.write_text(text, encoding="utf-8")
        return text

    def write_data(self) -> None:
        self.units.to_csv(self.root / "units.csv", index=False)
        self.sales.to_csv(self.root / "sales.csv", index=False)


@pytest.fixture
def tiny_experiment(tmp_path: Path) -> Project:
    """A valid experiment: 200 units, random 0/1 treatment, numeric outcome and covariate,
    from two CSV sources joined by SQL. Tests mutate ``spec`` / tables and rewrite them."""
    units, sales = make_tables()
    proj = Project(root=tmp_path, spec=copy.deepcopy(BASE_SPEC), units=units, sales=sales)
    proj.write_data()
    proj.write_spec()
    return proj


SPARK_MASTER = "local[2]"


def spark_unavailable() -> str | None:
    """Why the `spark` tests cannot run here, or None. `make test` installs pyspark (the test
    extra includes the spark extra) and CI has Java 17, so there they run."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[test]' brings the spark extra)"
    if shutil.which("java") is None and not __import__("os").environ.get("JAVA_HOME"):
        return "Java 17 is not installed (Spark runs in a JVM)"
    return None


@pytest.fixture(scope="session")
def spark_engine():
    """One local Spark for the whole run (starting it costs 6-15 s)."""
    reason = spark_unavailable()
    if reason:
        pytest.skip(reason)
    from causal.data.spark_engine import SparkEngine

    engine = SparkEngine(master=SPARK_MASTER)
    yield engine
    engine.close()
