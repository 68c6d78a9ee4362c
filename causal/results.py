"""The Result contract shared by every estimator, and results.json (de)serialisation."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from causal.checks import CheckResult, worst

if TYPE_CHECKING:  # pandas is imported where frames are built: report kernels start faster
    import pandas as pd

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Result:
    """One estimate with its uncertainty.

    Every estimator returns this: a point estimate, its standard error, a confidence interval
    at the spec's level, a two-sided p-value against zero, the sample sizes, the checks that
    belong to this estimate, and ``details`` (JSON-safe extras such as arm means).

    Examples
    --------
    >>> r = Result("difference_in_means", "ATE", "y", 2.0, 1.0, 0.04, 3.96, 0.045, 100, 50)
    >>> print(r.summary().splitlines()[0])
    difference_in_means · ATE on y: 2 (SE 1, 95% CI 0.04 to 3.96, p = 0.045)
    """

    estimator: str
    estimand: str
    outcome: str
    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    p_value: float
    n_units: int
    n_treated: int
    diagnostics: tuple[CheckResult, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    conf_level: float = 0.95

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))
        object.__setattr__(self, "diagnostics", tuple(self.diagnostics))

    @classmethod
    def from_estimate(
        cls,
        estimator: str,
        estimand: str,
        outcome: str,
        estimate: float,
        std_error: float,
        *,
        n_units: int,
        n_treated: int,
        alpha: float,
        df: float = math.inf,
        details: Mapping[str, Any] | None = None,
    ) -> Result:
        """A Result with the Wald interval and p-value of ``estimate`` and ``std_error``
        (Student-t with ``df`` when finite, else normal) at level ``1 - alpha``.

        Examples
        --------
        >>> r = Result.from_estimate("ipw", "ATT", "y", 1.96, 1.0, n_units=10, n_treated=4,
        ...                          alpha=0.05)
        >>> round(r.p_value, 3), round(r.conf_low, 3)
        (0.05, 0.0)
        """
        from causal.inference import interval  # scipy: imported where a Result is computed

        ci = interval(estimate, std_error, alpha=alpha, df=df)
        return cls(
            estimator=estimator,
            estimand=estimand,
            outcome=outcome,
            estimate=float(estimate),
            std_error=float(std_error),
            conf_low=ci.conf_low,
            conf_high=ci.conf_high,
            p_value=ci.p_value,
            n_units=int(n_units),
            n_treated=int(n_treated),
            details=details or {},
            conf_level=1 - alpha,
        )

    def with_details(self, **extra: Any) -> Result:
        """A copy with ``extra`` added to ``details`` (results are frozen).

        Examples
        --------
        >>> r = Result("dim", "ATE", "y", 2.0, 1.0, 0.04, 3.96, 0.045, 100, 50)
        >>> dict(r.with_details(note="x").details)
        {'note': 'x'}
        """
        return replace(self, details={**self.details, **extra})

    def tidy(self) -> pd.DataFrame:
        """One row with the contract's columns."""
        import pandas as pd

        return pd.DataFrame(
            [{k: v for k, v in self.to_dict().items() if k not in ("diagnostics", "details")}]
        )

    def plot_data(self) -> dict[str, pd.DataFrame]:
        """Tidy frames for plotting: the estimate with its interval, and arm means if known."""
        import pandas as pd

        frames = {
            "estimate": self.tidy()[["estimator", "outcome", "estimate", "conf_low", "conf_high"]]
        }
        if "control_mean" in self.details and "treated_mean" in self.details:
            frames["arms"] = pd.DataFrame(
                {
                    "arm": ["control", "treated"],
                    "mean": [self.details["control_mean"], self.details["treated_mean"]],
                }
            )
        return frames

    def summary(self) -> str:
        """A short text summary (returned, never printed)."""
        level = f"{self.conf_level:.0%}"
        lines = [
            f"{self.estimator} · {self.estimand} on {self.outcome}: {_fmt(self.estimate)} "
            f"(SE {_fmt(self.std_error)}, {level} CI {_fmt(self.conf_low)} to "
            f"{_fmt(self.conf_high)}, p = {_fmt_p(self.p_value)})",
            f"n = {self.n_units} ({self.n_treated} treated)",
        ]
        lines += [f"[{c.status}] {c.name}: {c.detail}" for c in self.diagnostics]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.summary()) + "</pre>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "estimand": self.estimand,
            "outcome": self.outcome,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "conf_low": self.conf_low,
            "conf_high": self.conf_high,
            "conf_level": self.conf_level,
            "p_value": self.p_value,
            "n_units": self.n_units,
            "n_treated": self.n_treated,
            "diagnostics": [c.to_dict() for c in self.diagnostics],
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        values = {k: data[k] for k in ("estimator", "estimand", "outcome", "n_units", "n_treated")}
        for key in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            values[key] = math.nan if data[key] is None else float(data[key])
        return cls(
            **values,
            conf_level=data.get("conf_level", 0.95),
            diagnostics=tuple(CheckResult.from_dict(c) for c in data.get("diagnostics", ())),
            details=data.get("details", {}),
        )


@dataclass(frozen=True)
class ExperimentResults:
    """Everything ``causal run`` learned: the content of ``results.json``."""

    experiment: Mapping[str, Any]
    results: tuple[Result, ...]
    primary: Mapping[str, str]
    checks: tuple[CheckResult, ...] = ()
    segments: tuple[Result, ...] = ()
    power: tuple[Mapping[str, Any], ...] = ()
    value: Mapping[str, Any] | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    # Horizons, surrogate index, NPS and the value of the service over time (A/B designs with
    # a long_term block); None otherwise.
    long_term: Mapping[str, Any] | None = None
    # Every look of a tracked pilot (`causal track`); None otherwise.
    tracking: Mapping[str, Any] | None = None
    # Files written beside results.json (e.g. the uplift design's scored customers), by file
    # name; not part of results.json, whose experiment block lists their names.
    artifacts: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def headline(self) -> Result:
        """The primary outcome's primary estimate."""
        for r in self.results:
            if r.outcome == self.primary["outcome"] and r.estimator == self.primary["estimator"]:
                return r
        raise KeyError(f"no result for primary {dict(self.primary)}")

    def find(self, *, outcome: str, estimator: str) -> Result:
        return next(r for r in self.results if r.outcome == outcome and r.estimator == estimator)

    def get(self, *, outcome: str, estimator: str) -> Result | None:
        """Like :meth:`find`, but None when that estimator did not run on ``outcome``."""
        return next(
            (r for r in self.results if r.outcome == outcome and r.estimator == estimator), None
        )

    def check(self, name: str) -> CheckResult | None:
        """The design check called ``name``, or None when it was not run."""
        return next((c for c in self.checks if c.name == name), None)

    @property
    def worst_status(self) -> str:
        return worst(self.checks)

    def tidy(self) -> pd.DataFrame:
        import pandas as pd

        return pd.concat([r.tidy() for r in self.results], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "experiment": dict(self.experiment),
            "primary": dict(self.primary),
            "results": [r.to_dict() for r in self.results],
            "segments": [r.to_dict() for r in self.segments],
            "power": [dict(p) for p in self.power],
            "value": None if self.value is None else dict(self.value),
            "long_term": None if self.long_term is None else dict(self.long_term),
            "tracking": None if self.tracking is None else dict(self.tracking),
            "checks": [c.to_dict() for c in self.checks],
            "provenance": dict(self.provenance),
        }

    def to_json(self) -> str:
        return json.dumps(_json_safe(self.to_dict()), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentResults:
        return cls(
            experiment=data["experiment"],
            results=tuple(Result.from_dict(r) for r in data["results"]),
            primary=data["primary"],
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks", ())),
            segments=tuple(Result.from_dict(r) for r in data.get("segments", ())),
            power=tuple(data.get("power", ())),
            value=data.get("value"),
            provenance=data.get("provenance", {}),
            long_term=data.get("long_term"),
            tracking=data.get("tracking"),
        )


def load_results(path: str | Path) -> ExperimentResults:
    """Read a ``results.json`` written by ``causal run``.

    Examples
    --------
    >>> import tempfile
    >>> from causal.pipeline import analyse
    >>> from causal.spec import load_spec
    >>> res = analyse(load_spec("experiments/lalonde_nsw_experiment.yaml"))
    >>> path = Path(tempfile.mkdtemp()) / "results.json"
    >>> _ = path.write_text(res.to_json())
    >>> round(load_results(path).headline().estimate, 2)
    1794.34
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        from causal.errors import ReportError

        raise ReportError(
            f"{path}: results.json format version {version!r}, but this causal reads version "
            f"{SCHEMA_VERSION}; re-run `causal run` on the experiment's spec to rebuild it"
        )
    return ExperimentResults.from_dict(data)


def results_for_notebook(results_path: str | Path, spec_path: str | Path) -> ExperimentResults:
    """The report notebooks' input: ``results_path`` when it exists, else the spec analysed in
    memory (nothing written), so a notebook opened in JupyterLab runs with its defaults even
    before any ``causal run``.

    Examples
    --------
    >>> res = results_for_notebook("no/such/results.json",
    ...                            "experiments/lalonde_nsw_experiment.yaml")
    >>> res.primary["outcome"]
    're78'
    """
    if Path(results_path).is_file():
        return load_results(results_path)
    from causal.pipeline import analyse
    from causal.spec import load_spec

    return analyse(load_spec(spec_path))


def _json_safe(obj: Any) -> Any:
    """NaN/inf become null (JSON has no such numbers); numpy scalars become Python ones."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.4g}"


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.0001" if p < 1e-4 else f"{p:.3g}"
