"""The observational design from spec to results: identification, estimators, checks.

Order: validate the table → find the adjustment set (dowhy on the spec's graph, or the listed
confounders) → every estimator on every outcome → overlap and balance → refuters and
sensitivity on the primary outcome → agreement between estimators. dowhy and econml are
imported only here, through their adapters, and only when the spec needs them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from causal.checks import CheckResult, guarded
from causal.data.dataset import query_table
from causal.designs.obs_frame import ObsFrame, build_frame
from causal.designs.obs_types import EffectEstimate
from causal.errors import DesignError
from causal.progress import progress
from causal.results import Result
from causal.spec import Spec

PRIMARY_PREFERENCE = ("aipw", "dr_learner", "linear_dml", "regression", "ipw")


def run_observational(spec: Spec, table: pd.DataFrame | None = None) -> dict:
    """Everything the observational report needs, as parts of ``ExperimentResults``."""
    table = table if table is not None else query_table(spec)
    frame, adjustment, graph, checks = prepare(spec, table)
    X, names = frame.matrix(adjustment)
    # The textbook logit first: separation or no overlap at all stops the run with the reason
    # (every weighting estimator would fail or mislead), before minutes of machine learning.
    ps = _propensity(spec, frame, X, names)
    primary_outcome = spec.value.outcome if spec.value else spec.outcomes[0].column
    jobs = [(o.column, name) for o in spec.outcomes for name in spec.estimator_names]
    results = []
    for column, name in progress(jobs, desc="observational estimators", total=len(jobs)):
        try:
            estimate = ESTIMATORS[name](frame.outcome(column), frame.d, X, names, frame, spec)
        except DesignError as exc:
            if name == "naive_difference":
                raise
            checks.append(CheckResult(f"estimator {name} on {column}", "n/a", str(exc)))
            continue
        results.append(_to_result(estimate, name, column, adjustment, spec.alpha))
    primary = _primary(spec, results, primary_outcome)
    checks += _design_checks(spec, frame, X, names, ps)
    robustness, results = _robustness(spec, frame, X, names, adjustment, graph, results, primary)
    return {
        "results": results,
        "checks": checks + robustness,
        "primary": primary,
        "population_default": _population(frame, spec.design.estimand),
        "fingerprint": frame.fingerprint,
        "n_rows": len(frame.table),
    }


def prepare(spec: Spec, table: pd.DataFrame) -> tuple[ObsFrame, tuple[str, ...], object, list]:
    """Validate the table and the graph, and find the adjustment set (also ``causal validate``)."""
    from causal.designs.obs_graph import resolve_graph

    design = spec.design
    graph = resolve_graph(spec, list(table.columns))
    columns = [*design.confounders, *graph.observed_adjustment_candidates, *design.effect_modifiers]
    columns = tuple(
        dict.fromkeys(c for c in columns if c not in (spec.treatment, *_outcomes(spec)))
    )
    frame = build_frame(
        table,
        unit=spec.unit,
        treatment=spec.treatment,
        outcomes={o.column: o.kind for o in spec.outcomes},
        columns=columns,
    )
    adjustment, checks = _identify(spec, frame, graph)
    return frame, adjustment, graph, checks


def _outcomes(spec: Spec) -> list[str]:
    return [o.column for o in spec.outcomes]


# --- identification ------------------------------------------------------------------------------


def _identify(spec: Spec, frame: ObsFrame, graph) -> tuple[tuple[str, ...], list[CheckResult]]:
    """The adjustment set, and a check saying where it came from."""
    design = spec.design
    if design.graph is None:
        adjustment = tuple(design.confounders)
        text = (
            f"no graph given: adjusting for the {len(adjustment)} listed confounders "
            f"({', '.join(adjustment)}), assumed to block every backdoor path"
        )
        return adjustment, [CheckResult("identification", "pass", text)]
    from causal.designs.obs_dowhy import check_adjustment, identify

    found = {
        o: identify(frame.table, treatment=frame.treatment, outcome=o, graph=graph.graph)
        for o in frame.outcomes
    }
    minimal = tuple(dict.fromkeys(c for f in found.values() for c in f.adjustment_set))
    # Listed confounders that the graph does not need are kept when the larger set is still
    # valid: pre-treatment predictors of the outcome sharpen the estimate (and let a linear
    # outcome model use a column in a second form, e.g. spend and its logarithm).
    extra = tuple(c for c in design.confounders if c not in minimal)
    adjustment, note = minimal, None
    if extra:
        try:
            for o in frame.outcomes:
                check_adjustment(graph.graph, frame.treatment, o, (*minimal, *extra))
            adjustment = (*minimal, *extra)
            note = CheckResult(
                "graph_vs_confounders",
                "pass",
                f"the graph needs {', '.join(minimal) or 'nothing'}; the listed "
                f"{', '.join(extra)} keep the set valid and are adjusted for as well",
            )
        except DesignError as exc:
            note = CheckResult(
                "graph_vs_confounders",
                "warn",
                f"listed confounders {', '.join(extra)} are not all safe to adjust for under "
                f"the graph ({exc}); only the graph's set is used",
            )
    missing = [c for c in minimal if design.confounders and c not in design.confounders]
    if missing and note is None:
        note = CheckResult(
            "graph_vs_confounders",
            "warn",
            f"the graph also needs {', '.join(missing)}, which the confounder list omits",
        )
    rows = [
        {"outcome": o, "adjustment_set": ", ".join(f.adjustment_set) or "(none)"}
        for o, f in found.items()
    ]
    text = (
        "backdoor criterion on the spec's graph (dowhy): adjusting for "
        f"{', '.join(minimal) or 'nothing'} identifies the effect"
    )
    checks = [CheckResult("identification", "pass", text, rows)]
    return adjustment, checks + ([note] if note else [])


# --- estimators ----------------------------------------------------------------------------------

Fit = Callable[[np.ndarray, np.ndarray, np.ndarray, list[str], ObsFrame, Spec], EffectEstimate]


def _naive(y, d, X, names, frame, spec) -> EffectEstimate:
    from causal.designs.obs_estimators import naive_difference

    return naive_difference(y, d, estimand=spec.design.estimand)


def _regression(y, d, X, names, frame, spec) -> EffectEstimate:
    from causal.designs.obs_estimators import regression_adjustment

    return regression_adjustment(y, d, X, names=names, estimand=spec.design.estimand)


def _ipw(y, d, X, names, frame, spec) -> EffectEstimate:
    from causal.designs.obs_estimators import ipw

    design = spec.design
    return ipw(
        y,
        d,
        X,
        names=names,
        estimand=design.estimand,
        bounds=design.propensity_bounds,
        rule=design.propensity_rule,
    )


def _aipw(y, d, X, names, frame, spec) -> EffectEstimate:
    from causal.designs.obs_estimators import aipw

    design = spec.design
    return aipw(
        y,
        d,
        X,
        names=names,
        estimand=design.estimand,
        outcome_learner=design.outcome_learner,
        propensity_learner=design.propensity_learner,
        folds=design.folds,
        seed=spec.seed,
        bounds=design.propensity_bounds,
        rule=design.propensity_rule,
    )


def _double_ml(method: str) -> Fit:
    def fit(y, d, X, names, frame, spec) -> EffectEstimate:
        from causal.designs.obs_econml import fit_double_ml

        design = spec.design
        modifiers, modifier_names = frame.matrix(design.effect_modifiers)
        return fit_double_ml(
            y,
            d,
            X,
            method=method,
            estimand=design.estimand,
            effect_modifiers=modifiers if modifier_names else None,
            modifier_names=modifier_names,
            modifier_groups={c: frame.table[c].to_numpy() for c in design.effect_modifiers},
            outcome_learner=design.outcome_learner,
            propensity_learner=design.propensity_learner,
            folds=design.folds,
            seed=spec.seed,
            alpha=spec.alpha,
        )

    return fit


ESTIMATORS: dict[str, Fit] = {
    "naive_difference": _naive,
    "regression": _regression,
    "ipw": _ipw,
    "aipw": _aipw,
    "linear_dml": _double_ml("linear_dml"),
    "dr_learner": _double_ml("dr_learner"),
    "causal_forest": _double_ml("causal_forest"),
}


def _to_result(est: EffectEstimate, name: str, outcome: str, adjustment, alpha: float) -> Result:
    """The spec's estimator ``name`` (the estimate's own label may be longer) as a Result."""
    details = dict(est.details)
    if name != "naive_difference":
        details.setdefault("adjustment_set", list(adjustment))
    return Result.from_estimate(
        name,
        est.estimand,
        outcome,
        est.estimate,
        est.std_error,
        n_units=est.n_units,
        n_treated=est.n_treated,
        alpha=alpha,
        df=est.df,
        details=details,
    )


# --- checks --------------------------------------------------------------------------------------


def _propensity(spec: Spec, frame: ObsFrame, X: np.ndarray, names: list[str]):
    """In-sample logistic propensity on the adjustment set (None when nothing is adjusted)."""
    from causal.designs.obs_estimators import propensity_scores

    if X.shape[1] == 0:
        return None
    return propensity_scores(frame.d, X, names=names, learner="logistic", seed=spec.seed)


def _design_checks(spec: Spec, frame: ObsFrame, X: np.ndarray, names: list[str], ps) -> list:
    """Overlap and balance, from a plain logistic propensity on the adjustment set."""
    from causal.designs.obs_checks import balance_check, overlap_check
    from causal.designs.obs_estimators import balancing_weights

    design = spec.design
    d = frame.d
    if ps is None:
        reason = "nothing is adjusted for, so there is no propensity model"
        return [
            CheckResult("overlap", "n/a", reason),
            CheckResult("covariate_balance", "n/a", reason),
        ]
    weights = balancing_weights(
        ps,
        d,
        estimand=design.estimand,
        bounds=design.propensity_bounds,
        rule=design.propensity_rule,
    )
    return [
        guarded("overlap", overlap_check, ps, d, bounds=design.overlap_bounds),
        guarded(
            "covariate_balance",
            balance_check,
            X,
            d,
            names=names,
            weights=weights,
            threshold=design.balance_threshold,
            estimand=design.estimand,
        ),
    ]


def _robustness(spec, frame, X, names, adjustment, graph, results, primary):
    """Agreement, refuters, sensitivity and E-values; the sensitivity contour goes into the
    primary outcome's regression result."""
    from causal.designs.obs_robustness import (
        agreement_check,
        e_value_check,
        refutation_check,
        sensitivity_analysis,
    )

    outcome = primary["outcome"]
    design = spec.design
    checks = [agreement_check(results, outcome)]
    if design.refuters:
        checks.append(
            guarded(
                "refutation",
                refutation_check,
                frame,
                outcome=outcome,
                graph=graph.graph,
                adjustment=adjustment,
                refuters=tuple(design.refuters),
                simulations=design.refuter_simulations,
                seed=spec.seed,
            )
        )
    try:
        check, payload = sensitivity_analysis(
            frame.outcome(outcome),
            frame.d,
            X,
            names=names,
            treatment=frame.treatment,
            benchmarks=_benchmarks(design, names),
            alpha=spec.alpha,
        )
    except Exception as exc:  # a check never crashes the report
        check, payload = CheckResult("sensitivity", "n/a", f"could not run: {exc}"), None
    checks.append(check)
    if payload is not None:
        results = [
            r.with_details(sensitivity=payload)
            if (r.outcome, r.estimator) == (outcome, "regression")
            else r
            for r in results
        ]
    kinds = {o.column: o.kind for o in spec.outcomes}
    checks.append(
        guarded("e_value", e_value_check, results, kinds, frame=frame, primary=primary["estimator"])
    )
    return checks, results


def _benchmarks(design, names: list[str]) -> tuple[str, ...]:
    """Benchmark covariates for Cinelli–Hazlett bounds: the spec's, mapped to matrix names."""
    chosen = design.sensitivity_benchmarks or ()
    mapped = [n for c in chosen for n in names if n == c or n.startswith(f"{c}[")]
    return tuple(mapped)


# --- helpers -------------------------------------------------------------------------------------


def _primary(spec: Spec, results: list[Result], outcome: str) -> dict[str, str]:
    if spec.primary is not None:
        ran = {(r.outcome, r.estimator) for r in results}
        if (spec.primary.outcome, spec.primary.estimator) not in ran:
            raise DesignError(
                f"primary: {spec.primary.estimator} could not run on {spec.primary.outcome!r} "
                "(see the checks); choose another primary estimator"
            )
        return {"outcome": spec.primary.outcome, "estimator": spec.primary.estimator}
    ran = {r.estimator for r in results if r.outcome == outcome}
    name = next((n for n in PRIMARY_PREFERENCE if n in ran), None)
    if name is None:
        raise DesignError(f"no adjusted estimator ran on the primary outcome {outcome!r}")
    return {"outcome": outcome, "estimator": name}


def _population(frame: ObsFrame, estimand: str) -> int:
    n, treated = len(frame.table), frame.n_treated
    return {"ATE": n, "ATT": treated, "ATC": n - treated}[estimand]
