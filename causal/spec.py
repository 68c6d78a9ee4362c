"""Experiment specs: frozen pydantic models, YAML loading with located errors, JSON Schema.

A spec (``experiments/NAME.yaml``) says what was changed, for whom, what was measured, where
the data live and how money is counted. :func:`load_spec` turns the file into a validated,
frozen :class:`Spec` or raises :class:`~causal.errors.SpecError` with the file, line and field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from causal.designs.registry import (
    AVAILABLE_DESIGNS,
    DEFAULT_ESTIMATORS,
    ESTIMATORS,
    NEEDS_COVARIATES,
    PLANNED_DESIGNS,
    RELATIVE_ESTIMATORS,
)
from causal.errors import SpecError
from causal.spec_checks import _check_clv, _check_cost_outcome, _check_retention, _check_uplift
from causal.spec_designs import ABTestDesign, DidDesign, SyntheticControlDesign
from causal.spec_engine import EngineSpec
from causal.spec_help import _allowed_keys, _line_of, _suggest
from causal.spec_long_term import ClvDesign, LongTerm
from causal.spec_observational import ObservationalDesign
from causal.spec_tracking import Tracking
from causal.spec_uplift import UpliftDesign

DESIGNS = AVAILABLE_DESIGNS

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HORIZON = r"^\d+(\.\d+)?\s*(day|week|month|year)s?$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Intervention(_Model):
    """The service change being evaluated and what it costs."""

    name: str = Field(description="Short name of the service change, e.g. extended_warranty_offer.")
    description: str = Field("", description="One or two sentences a manager would recognise.")
    start_date: date = Field(description="When treated units first received the service.")
    cost_per_treated_unit: float = Field(
        0.0, ge=0, description="Variable cost per treated unit, in the value currency."
    )
    fixed_cost: float = Field(0.0, ge=0, description="One-off cost of the roll-out.")


class Outcome(_Model):
    """One measured outcome of the analysis table."""

    column: str = Field(pattern=_IDENTIFIER, description="Column of the analysis table.")
    kind: Literal["continuous", "binary", "count", "cost", "time_to_event"] = Field(
        "continuous",
        description="cost: money spent per unit (a decrease is value); time_to_event: the "
        "column is a duration, censored where the 'event' column is 0.",
    )
    event: str | None = Field(
        None, pattern=_IDENTIFIER, description="time_to_event: 0/1 column, 1 = the event happened."
    )
    rmst_horizon: float | None = Field(
        None, gt=0, description="time_to_event: horizon of the restricted mean survival time."
    )
    churn_horizons: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list, description="time_to_event: times at which churn is compared."
    )
    direction: Literal["increase", "decrease"] | None = Field(
        None,
        description="Which way is good (default: decrease for a cost, increase otherwise).",
    )
    horizon: str | None = Field(
        None, pattern=_HORIZON, description="Time after treatment it covers, e.g. '12 months'."
    )
    label: str | None = Field(None, description="Human-readable name for the report.")

    @property
    def display(self) -> str:
        return self.label or self.column

    @property
    def good_direction(self) -> str:
        return self.direction or ("decrease" if self.kind == "cost" else "increase")

    @model_validator(mode="after")
    def _time_to_event_fields(self) -> Outcome:
        survival = (self.event, self.rmst_horizon)
        if self.kind == "time_to_event" and None in survival:
            raise ValueError(
                f"{self.column}: a time_to_event outcome needs 'event' (the 0/1 event column) "
                "and 'rmst_horizon' (the horizon of the restricted mean survival time)"
            )
        if self.kind != "time_to_event" and (survival != (None, None) or self.churn_horizons):
            raise ValueError(
                f"{self.column}: event, rmst_horizon and churn_horizons belong to kind "
                "time_to_event"
            )
        return self

    @model_validator(mode="after")
    def _cost_goes_down(self) -> Outcome:
        if self.kind == "cost" and self.direction == "increase":
            raise ValueError(
                f"{self.column}: a cost outcome is good when it goes down; its direction "
                "'increase' contradicts kind 'cost' (drop direction, or use kind continuous)"
            )
        return self


Design = Annotated[
    ABTestDesign
    | SyntheticControlDesign
    | DidDesign
    | ObservationalDesign
    | UpliftDesign
    | ClvDesign,
    Field(discriminator="kind"),
]


class Source(_Model):
    """A data silo: a CSV / Parquet / DuckDB file, or a table of the bundled simulator."""

    path: str | None = Field(None, description="File path, relative to the spec's folder.")
    format: Literal["csv", "parquet", "duckdb"] | None = Field(
        None, description="Inferred from the file extension when omitted."
    )
    table: str | None = Field(
        None, description="Table inside a DuckDB file, or the simulator's table name."
    )
    simulator: str | None = Field(
        None, description="Name of a bundled simulator (causal.simulate)."
    )
    params: dict[str, int | float | str] = Field(
        default_factory=dict, description="Simulator parameters (the spec's seed is added)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.path is None) == (self.simulator is None):
            raise ValueError("give either 'path' (a file) or 'simulator' (bundled data), not both")
        if self.simulator is not None and self.table is None:
            raise ValueError("a simulator source needs 'table' (which simulated table to use)")
        if self.simulator is None and self.params:
            raise ValueError("'params' only applies to simulator sources")
        return self


class DataSpec(_Model):
    """Where the data live and the SQL that joins them into one analysis table."""

    sources: dict[Annotated[str, Field(pattern=_IDENTIFIER)], Source] = Field(
        min_length=1, description="Named sources; each becomes a DuckDB view of that name."
    )
    query: str | None = Field(
        None, description="SQL joining the views into one row per unit (default: the only view)."
    )

    @model_validator(mode="after")
    def _query_needed(self) -> DataSpec:
        if self.query is None and len(self.sources) > 1:
            raise ValueError("several sources need a 'query' that joins them into one table")
        return self


class Retention(_Model):
    """Extra retained time (a time_to_event outcome's RMST gain) × margin per period."""

    outcome: str = Field(description="A time_to_event outcome (its duration column).")
    margin_per_period: float = Field(
        gt=0, description="Margin one customer brings per period of the duration's unit."
    )
    periods_per_year: float = Field(
        365.25, gt=0, description="Periods of the duration in a year (days: 365.25)."
    )
    annual_discount_rate: float = Field(0.0, ge=0, lt=1)
    bootstrap_replications: int = Field(
        500, ge=100, le=20_000, description="Bootstrap over units for the total's interval."
    )


class ValueSpec(_Model):
    """How effects become money."""

    currency: str = Field("EUR", min_length=1, max_length=5)
    outcome: str = Field(description="Revenue outcome (an outcomes[].column) turned into money.")
    gross_margin: float | None = Field(
        None, gt=0, le=1, description="Gross margin applied to the revenue effect."
    )
    profit_outcome: str | None = Field(
        None, description="Alternatively, an outcome column that already measures gross profit."
    )
    population: int | None = Field(
        None, gt=0, description="Units the service would reach at roll-out (default: pilot units)."
    )
    cost_outcome: str | None = Field(
        None,
        description="An outcome of kind cost whose decrease is money saved (A/B design), counted "
        "beside the gross profit from revenue.",
    )
    retention: Retention | None = Field(
        None, description="Money from extra retained time (A/B design, time_to_event outcome)."
    )

    @model_validator(mode="after")
    def _one_margin(self) -> ValueSpec:
        if (self.gross_margin is None) == (self.profit_outcome is None):
            raise ValueError("give exactly one of 'gross_margin' or 'profit_outcome'")
        return self


class Primary(_Model):
    outcome: str
    estimator: str


class ReportSpec(_Model):
    notebook: str | None = Field(
        None, description="Notebook template: a name in notebooks/ or a path (default: design)."
    )


class Spec(_Model):
    """A validated, frozen experiment spec."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="Slug; the report folder.")
    title: str
    question: str = Field(description="The business question the experiment answers.")
    intervention: Intervention
    design: Design
    unit: str = Field(pattern=_IDENTIFIER, description="Unit id column (unique per row).")
    treatment: str | None = Field(
        None,
        pattern=_IDENTIFIER,
        description="0/1 treatment column (A/B and observational designs; DiD per unit-period).",
    )
    outcomes: list[Outcome] = Field(min_length=1)
    covariates: list[Annotated[str, Field(pattern=_IDENTIFIER)]] = Field(
        default_factory=list, description="Pre-period covariates for adjustment and balance."
    )
    segments: list[Annotated[str, Field(pattern=_IDENTIFIER)]] = Field(
        default_factory=list, description="Columns to break the effect down by (Holm-corrected)."
    )
    data: DataSpec
    value: ValueSpec | None = None
    estimators: list[str] | None = Field(None, description="Estimators to run (default: all).")
    primary: Primary | None = Field(
        None, description="Headline outcome and estimator (default: value outcome, best estimator)."
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="1 - confidence level of intervals.")
    long_term: LongTerm | None = Field(
        None, description="Horizons, surrogate index and NPS: value beyond the pilot's window."
    )
    tracking: Tracking | None = Field(
        None, description="How `causal track` looks at the running pilot (ab_test design)."
    )
    report: ReportSpec = Field(default_factory=ReportSpec)
    engine: EngineSpec = Field(
        default_factory=EngineSpec, description="Where the SQL runs: duckdb (default) or spark."
    )
    seed: int = Field(0, ge=0)

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        kind = self.design.kind
        if kind in ("ab_test", "observational", "uplift") and self.treatment is None:
            raise ValueError("treatment: required field is missing (the 0/1 treatment column)")
        if kind == "did" and (self.treatment is None) == (self.design.first_treated is None):
            raise ValueError(
                "did: give either design.first_treated (first treated period per unit) or "
                "treatment (0/1 per unit-period), not both and not neither"
            )
        if kind == "did" and self.segments:
            raise ValueError("segments are not used by the did design")
        if kind == "synthetic_control" and (self.covariates or self.segments):
            raise ValueError(
                f"covariates and segments are not used by the {kind} design; use design.predictors"
            )
        if kind == "observational" and (self.covariates or self.segments):
            raise ValueError(
                "covariates and segments are not used by the observational design; list "
                "design.confounders (adjusted for) and design.effect_modifiers (CATE bins)"
            )
        if kind == "uplift":
            _check_uplift(self)
        if kind == "clv":
            _check_clv(self)
        if self.tracking is not None and kind != "ab_test":
            raise ValueError(f"tracking: `causal track` follows ab_test pilots, not {kind}")
        if self.long_term is not None and kind != "ab_test":
            raise ValueError(
                f"long_term: horizons, surrogate index and NPS work with the ab_test design, "
                f"not {kind}"
            )
        known = ESTIMATORS[kind]
        for name in self.estimators or ():
            if name not in known:
                raise ValueError(f"estimators: unknown estimator {name!r}{_suggest(name, known)}")
            if name in NEEDS_COVARIATES and not self.covariates:
                raise ValueError(
                    f"estimators: {name!r} adjusts for pre-period covariates; "
                    "list them under 'covariates' or drop it"
                )
        columns = [o.column for o in self.outcomes]
        if len(set(columns)) != len(columns):
            raise ValueError("outcomes: each column may appear once")
        if self.value is not None and self.value.cost_outcome is not None:
            _check_cost_outcome(self)
        if self.value is not None and self.value.retention is not None:
            _check_retention(self)
        if self.value is not None:
            for field in ("outcome", "profit_outcome", "cost_outcome"):
                col = getattr(self.value, field)
                if col is not None and col not in columns:
                    raise ValueError(f"value.{field}: {col!r} is not one of the outcomes {columns}")
        if self.primary is not None:
            if self.primary.outcome not in columns:
                raise ValueError(f"primary.outcome: {self.primary.outcome!r} not in {columns}")
            if self.primary.estimator not in self.estimator_names:
                raise ValueError(
                    f"primary.estimator: {self.primary.estimator!r} is not run; "
                    f"run: {list(self.estimator_names)}"
                )
            if self.value is not None and self.primary.estimator in RELATIVE_ESTIMATORS:
                raise ValueError(
                    f"primary.estimator: {self.primary.estimator!r} is a ratio and cannot be "
                    "turned into money; choose an absolute one (e.g. lin or difference_in_means)"
                )
        return self

    @property
    def path(self) -> Path | None:
        """The file the spec was loaded from (None when built in code)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """Folder that relative data paths are resolved against."""
        return self._path.parent if self._path is not None else Path.cwd()

    @property
    def estimator_names(self) -> tuple[str, ...]:
        if self.estimators:
            return tuple(self.estimators)
        if self.design.kind == "uplift":
            return tuple(self.design.learners)
        defaults = DEFAULT_ESTIMATORS[self.design.kind]
        if self.design.kind == "observational" and self.design.effect_modifiers:
            return (*defaults, "causal_forest")
        return tuple(n for n in defaults if self.covariates or n not in NEEDS_COVARIATES)

    def outcome(self, column: str) -> Outcome:
        return next(o for o in self.outcomes if o.column == column)

    def spec_hash(self) -> str:
        """SHA-256 of the validated spec's canonical JSON (independent of YAML layout)."""
        # The engine changes where the SQL runs, not the analysis: same hash on DuckDB and Spark.
        canonical = json.dumps(self.model_dump(mode="json", exclude={"engine"}), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def with_engine(spec: Spec, kind: str | None, master: str | None = None) -> Spec:
    """The spec with its engine replaced (the CLI's ``--engine`` / ``--spark-master``).

    Examples
    --------
    >>> spec = load_spec("experiments/lalonde_nsw_experiment.yaml")
    >>> with_engine(spec, "spark").engine.kind
    'spark'
    """
    if kind is None and master is None:
        return spec
    settings = spec.engine.model_dump()
    if kind is not None and kind != settings["kind"]:
        settings = {"kind": kind}
    if master is not None:
        settings["master"] = master
    try:
        engine = EngineSpec(**settings)
    except ValidationError as exc:
        raise SpecError(f"--engine/--spark-master: {exc.errors()[0]['msg']}") from None
    copy = spec.model_copy(update={"engine": engine})
    copy._path = spec._path
    return copy


def json_schema() -> dict[str, Any]:
    """JSON Schema of the spec, for editors' autocompletion.

    Examples
    --------
    >>> json_schema()["title"]
    'Spec'
    """
    return Spec.model_json_schema()


def load_spec(path: str | Path) -> Spec:
    """Read, parse and validate an experiment spec.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    Spec
        Frozen and validated; ``spec.path`` remembers the file.

    Raises
    ------
    SpecError
        One line naming the file, line and field of the first problem.

    Examples
    --------
    >>> spec = load_spec("experiments/extended_warranty_pilot.yaml")
    >>> spec.design.kind
    'ab_test'
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found; give the path of an experiments/*.yaml file")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"{where}: YAML syntax error: {exc.problem or exc}; fix the file") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of spec fields at the top level")
    _check_design_kind(raw, path, node)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe(exc, path, node)) from None
    spec._path = path.resolve()
    return spec


def _check_design_kind(raw: dict[str, Any], path: Path, node: yaml.Node | None) -> None:
    design = raw.get("design")
    kind = design.get("kind") if isinstance(design, dict) else None
    if kind is None or kind in AVAILABLE_DESIGNS:
        return
    where = f"{path}:{_line_of(node, ('design', 'kind'))}"
    if kind in PLANNED_DESIGNS:
        raise SpecError(
            f"{where}: design.kind {kind!r} is planned but not available yet; "
            f"available: {', '.join(AVAILABLE_DESIGNS)}"
        )
    known = AVAILABLE_DESIGNS + PLANNED_DESIGNS
    raise SpecError(f"{where}: design.kind: unknown design {kind!r}{_suggest(kind, known)}")


def _describe(exc: ValidationError, path: Path, node: yaml.Node | None) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    # Drop pydantic's discriminator tag from the location: users never wrote it.
    loc = tuple(
        p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "design" and p in DESIGNS)
    )
    field = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(Spec, loc[:-1])
        what = f"unknown key {loc[-1]!r}{_suggest(str(loc[-1]), allowed)}"
    elif first["type"] == "missing":
        what = "required field is missing"
    else:
        msg = re.sub(r"^(Value|Assertion) error, ", "", first["msg"])
        shown = first.get("input")
        what = msg if isinstance(shown, dict | list) or shown is None else f"{msg} (got {shown!r})"
    more = f" (+{len(errors) - 1} more problems)" if len(errors) > 1 else ""
    line = _line_of(node, loc)
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {field}: {what}{more}"
