"""The uplift design from spec to results: learners, held-out evaluation, a priced policy.

Order: validate the table and encode the features → split customers (held-out part, or
cross-fitting folds), seeded and stratified by arm → fit every learner on the training part
and score the evaluation part → nuisance models for the doubly robust scores on the same
split → Qini, AUUC and uplift-by-bin for each learner on evaluation customers only → the
policy learner's targeting rule priced on the evaluation customers → every customer scored for
the CRM. Nothing that judges a learner ever sees the outcomes it was trained on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal.checks import CheckResult
from causal.data.dataset import query_table
from causal.designs.uplift_policy import Pricing
from causal.errors import DataError, DesignError
from causal.progress import progress
from causal.results import Result
from causal.spec import Spec

SCORES_FILE = "uplift_scores.parquet"


@dataclass(frozen=True)
class UpliftData:
    """The validated customers: table (sorted by unit), features as a matrix, y and d."""

    table: pd.DataFrame
    X: np.ndarray
    names: list[str]
    y: np.ndarray
    d: np.ndarray
    fingerprint: str


def run_uplift(spec: Spec, table: pd.DataFrame | None = None) -> dict:
    """Everything the uplift report needs, as parts of ``ExperimentResults``."""
    design = spec.design
    data = prepare(spec, table if table is not None else query_table(spec))
    splits = split_customers(data.d, spec)
    evaluated = np.concatenate([test for _, test in splits])
    scores, timings = _fit_learners(spec, data, splits)
    gamma, e = _nuisance_scores(spec, data, splits)
    weights = None if design.planned_treated_share is not None else _ipw(data.d, e)
    results = [
        _learner_result(spec, data, name, scores[name], evaluated, weights, timings[name])
        for name in design.learners
    ]
    policy_name = _policy_learner(spec, results)
    policy = _policy(spec, data, scores[policy_name], gamma, evaluated, policy_name)
    scored = _scored_file(spec, data, scores[policy_name], evaluated)
    policy |= {"n_customers": len(scored), "n_targeted_all": int(scored["treat"].sum())}
    results = [r.with_details(policy=policy) if r.estimator == policy_name else r for r in results]
    checks = _checks(spec, data, evaluated, results, policy_name, e)
    return {
        "results": results,
        "checks": checks,
        "primary": {"outcome": spec.outcomes[0].column, "estimator": policy_name},
        "population_default": len(data.table),
        "fingerprint": data.fingerprint,
        "n_rows": len(data.table),
        "value": _value_block(spec, policy) if design.money is not None else None,
        "artifacts": {SCORES_FILE: scored},
    }


# --- data ----------------------------------------------------------------------------------------


def prepare(spec: Spec, table: pd.DataFrame) -> UpliftData:
    """Validate the analysis table and encode the features (also used by ``causal validate``)."""
    from causal.designs.obs_frame import build_frame, is_numeric

    design = spec.design
    missing = [c for c in design.features if c not in table.columns]
    if missing:
        raise DataError(
            f"design.features: column {missing[0]!r} is not in the analysis table; columns "
            f"are {', '.join(map(str, table.columns))} — fix the name or add it in data.query"
        )
    for column in design.features:
        if column not in design.categorical and not is_numeric(table[column]):
            levels = ", ".join(repr(v) for v in table[column].dropna().astype(str).unique()[:4])
            raise DataError(
                f"design.features: column {column!r} is not numeric (values such as {levels}) "
                "and has no encoding rule; list it under design.categorical (one indicator "
                "per level) or convert it to a number in data.query"
            )
    table = table.copy()
    for column in design.categorical:  # numeric codes listed as categorical are levels too
        table[column] = table[column].astype("string")
    outcome = spec.outcomes[0]
    frame = build_frame(
        table,
        unit=spec.unit,
        treatment=spec.treatment,
        outcomes={outcome.column: outcome.kind},
        columns=tuple(design.features),
    )
    X, names = frame.matrix(design.features)
    return UpliftData(
        table=frame.table,
        X=X,
        names=names,
        y=frame.outcome(outcome.column),
        d=frame.d,
        fingerprint=frame.fingerprint,
    )


def split_customers(d: np.ndarray, spec: Spec) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded (train, evaluation) index pairs, stratified by arm.

    ``holdout``: one pair, ``holdout_share`` of each arm held out. ``cross_fit``: ``folds``
    pairs whose evaluation parts partition the customers.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> spec = SimpleNamespace(seed=0, design=SimpleNamespace(evaluation="holdout",
    ...                        holdout_share=0.25, folds=3))
    >>> [(len(a), len(b)) for a, b in split_customers(np.array([0, 1] * 8), spec)]
    [(12, 4)]
    """
    design = spec.design
    rng = np.random.default_rng(spec.seed)
    folds = 1 if design.evaluation == "holdout" else design.folds
    fold_of = np.empty(len(d), dtype=np.int64)
    for arm, label in ((1, "treated"), (0, "control")):
        members = rng.permutation(np.flatnonzero(d == arm))
        if design.evaluation == "holdout":
            n_out = round(design.holdout_share * len(members))
            fold_of[members] = np.where(np.arange(len(members)) < n_out, 0, -1)
            n_in = len(members) - n_out
            _require_arm(n_out, label, f"the held-out {design.holdout_share:.0%}")
            _require_arm(n_in, label, "the training part")
        else:
            fold_of[members] = np.arange(len(members)) % folds
            _require_arm(len(members) // folds, label, f"one of the {folds} folds")
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]


def _require_arm(count: int, arm: str, where: str) -> None:
    if count < 1:
        raise DesignError(
            f"{where} has no {arm} customers, so uplift cannot be judged there; the data need "
            f"more {arm} customers (or change design.holdout_share / design.folds)"
        )


# --- learners and nuisances ----------------------------------------------------------------------


def _fit_learners(spec, data: UpliftData, splits) -> tuple[dict, dict]:
    """Out-of-sample scores of every learner on its evaluation customers (NaN elsewhere), and
    in holdout mode also the training customers' in-sample scores for the scored file."""
    from causal.designs.uplift_learners import fit_uplift

    design = spec.design
    scores = {name: np.full(len(data.y), np.nan) for name in design.learners}
    timings = dict.fromkeys(design.learners, 0.0)
    jobs = [(name, k) for name in design.learners for k in range(len(splits))]
    for name, k in progress(jobs, desc="uplift learners", total=len(jobs)):
        train, test = splits[k]
        start = time.perf_counter()
        fitted = fit_uplift(
            name,
            data.y[train],
            data.d[train],
            data.X[train],
            base_learner=design.base_learner,
            treated_share=design.planned_treated_share,
            propensity_learner=design.propensity_learner,
            folds=design.folds,
            seed=spec.seed,
        )
        rows = np.arange(len(data.y)) if design.evaluation == "holdout" else test
        scores[name][rows] = fitted.predict(data.X[rows])
        timings[name] += time.perf_counter() - start
    return scores, timings


def _nuisance_scores(spec, data: UpliftData, splits) -> tuple[np.ndarray, np.ndarray]:
    """Doubly robust effect scores and propensities of the evaluation customers (NaN elsewhere),
    from outcome models per arm and a propensity fitted on each split's training part."""
    from causal.designs.learners import outcome_learner, propensity_learner
    from causal.designs.obs_propensity import single_threaded
    from causal.designs.uplift_policy import dr_scores

    design = spec.design
    gamma = np.full(len(data.y), np.nan)
    e = np.full(len(data.y), np.nan)
    with single_threaded():
        for train, test in splits:
            mu = []
            for arm in (0, 1):
                rows = train[data.d[train] == arm]
                model = outcome_learner(design.base_learner, seed=spec.seed)
                mu.append(model.fit(data.X[rows], data.y[rows]).predict(data.X[test]))
            if design.planned_treated_share is not None:
                e[test] = design.planned_treated_share
            else:
                model = propensity_learner(design.propensity_learner, seed=spec.seed)
                fitted = model.fit(data.X[train], data.d[train])
                e[test] = np.clip(fitted.predict_proba(data.X[test])[:, 1], 0.01, 0.99)
            gamma[test] = dr_scores(data.y[test], data.d[test], mu[0], mu[1], e[test])
    return gamma, e


def _ipw(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.where(d == 1, 1 / e, 1 / (1 - e))


# --- evaluation ----------------------------------------------------------------------------------


def _learner_result(spec, data, name, score, evaluated, weights, seconds) -> Result:
    """The learner's held-out Qini coefficient as a Result; curves and bins in ``details``."""
    from causal.designs.uplift_metrics import (
        bootstrap_metrics,
        qini_curve,
        thin_curve,
        uplift_by_bin,
        uplift_curve,
    )

    design = spec.design
    y, d, s = data.y[evaluated], data.d[evaluated], score[evaluated]
    w = None if weights is None else weights[evaluated]
    boot = bootstrap_metrics(
        y,
        s,
        d,
        weights=w,
        replications=design.bootstrap_replications,
        alpha=spec.alpha,
        seed=spec.seed,
    )
    qini, auuc = boot["qini"], boot["auuc"]
    bins = uplift_by_bin(y, s, d, bins=design.bins, weights=w, alpha=spec.alpha)
    curves = {}
    for key, curve in (("qini_curve", qini_curve), ("uplift_curve", uplift_curve)):
        x, v = thin_curve(*curve(y, s, d, weights=w), max_points=200)
        curves[key] = {"x": x.tolist(), "y": v.tolist()}
    return Result(
        estimator=name,
        estimand="Qini coefficient",
        outcome=spec.outcomes[0].column,
        estimate=qini["estimate"],
        std_error=qini["std_error"],
        conf_low=qini["conf_low"],
        conf_high=qini["conf_high"],
        p_value=_bootstrap_p(qini),
        n_units=len(evaluated),
        n_treated=int(d.sum()),
        conf_level=1 - spec.alpha,
        details={
            "auuc": auuc,
            "bootstrap_replications": boot["replications"],
            "bins": bins.to_dict(orient="records"),
            **curves,
            "mean_predicted_uplift": float(np.mean(s)),
            "fit_seconds": round(seconds, 2),
            "evaluated_on": design.evaluation,
        },
    )


def _bootstrap_p(stat: dict) -> float:
    """Two-sided normal p-value of the bootstrap estimate against 0 (its SE is the bootstrap's)."""
    from causal.inference import interval

    return interval(stat["estimate"], stat["std_error"]).p_value


def _policy_learner(spec, results: list[Result]) -> str:
    if spec.design.policy_learner != "best":
        return spec.design.policy_learner
    return max(results, key=lambda r: r.estimate).estimator


# --- policy --------------------------------------------------------------------------------------


def _pricing(spec) -> Pricing:
    money = spec.design.money
    return Pricing() if money is None else Pricing(money.value_per_unit, money.cost_per_contact)


def _budget(spec, n: int, n_all: int) -> int | None:
    design = spec.design
    if design.budget_share is not None:
        return int(np.floor(design.budget_share * n))
    if design.budget_count is not None:
        return int(np.floor(design.budget_count * n / n_all))
    return None


def _policy(spec, data, score, gamma, evaluated, name) -> dict:
    """The targeting rule applied to the evaluation customers and priced with their DR scores."""
    from causal.designs.uplift_policy import (
        decide,
        policy_values,
        profit_curve,
        segment_profile,
    )

    design = spec.design
    pricing = _pricing(spec)
    s, g = score[evaluated], gamma[evaluated]
    treat = decide(s, pricing=pricing, max_treated=_budget(spec, len(s), len(data.y)))
    values = policy_values(treat, g, pricing=pricing, alpha=spec.alpha)
    ate = policy_values(np.ones_like(treat), g, pricing=Pricing(), alpha=spec.alpha)["treat_all"]
    return {
        "learner": name,
        "rule": _rule_text(spec, pricing),
        "threshold": pricing.threshold,
        "budget": design.budget,
        "n_evaluated": len(s),
        "n_targeted": int(treat.sum()),
        "share_targeted": float(treat.mean()),
        "per_customer": values,
        "average_effect": ate,
        "profit_curve": profit_curve(s, g, pricing=pricing, alpha=spec.alpha),
        "profile": segment_profile(
            data.table.iloc[evaluated],
            treat,
            features=list(design.features),
            categorical=list(design.categorical),
        ),
        "priced": design.money is not None,
    }


def _rule_text(spec, pricing: Pricing) -> str:
    money = spec.design.money
    if money is None:
        rule = "treat customers whose predicted uplift is above 0"
    else:
        rule = (
            f"treat customers whose predicted uplift × {money.value_per_unit:,.4g} "
            f"{money.currency} exceeds the contact cost of {money.cost_per_contact:,.4g} "
            f"{money.currency} (uplift above {pricing.threshold:.4g})"
        )
    budget = spec.design.budget
    return rule + (f", highest first, {budget}" if budget else "")


def _value_block(spec, policy: dict) -> dict:
    """The policy in money over every customer scored, shaped like the other designs' blocks."""
    money = spec.design.money
    per = policy["per_customer"]
    n = policy["n_customers"]
    cost = money.cost_per_contact * policy["share_targeted"] * n

    def line(name, label, stat, shift=0.0, scale=1.0):
        return {
            "name": name,
            "label": label,
            "estimate": shift + scale * n * stat["estimate"],
            "std_error": scale * n * stat["std_error"],
            "conf_low": shift + scale * n * stat["conf_low"],
            "conf_high": shift + scale * n * stat["conf_high"],
        }

    lines = [
        line("gross_profit", "Incremental gross profit of the policy", per["policy"], cost),
        {
            "name": "cost",
            "label": "Cost of the contacts",
            "estimate": cost,
            "std_error": 0.0,
            "conf_low": cost,
            "conf_high": cost,
        },
        line("net_value", "Net value of the policy (vs treating no one)", per["policy"]),
        line("treat_all_net_value", "Net value of treating everyone", per["treat_all"]),
        line("policy_vs_treat_all", "Policy minus treating everyone", per["policy_vs_treat_all"]),
    ]
    return {
        "currency": money.currency,
        "estimator": policy["learner"],
        "population": n,
        "population_label": "Targeting {n} customers",
        "conf_level": 1 - spec.alpha,
        "lines": lines,
        "roi_defined": False,
        "method": "doubly robust policy value on the evaluation customers, scaled to every "
        "customer scored (normal interval of the mean of the scores)",
    }


# --- checks and outputs --------------------------------------------------------------------------


def _checks(spec, data, evaluated, results, policy_name, e) -> list[CheckResult]:
    from causal.designs.abtest import sample_ratio_check

    design = spec.design
    checks = []
    if design.planned_treated_share is not None:
        n_treated = int(data.d.sum())
        checks.append(
            sample_ratio_check(
                n_treated,
                len(data.d) - n_treated,
                planned_share=design.planned_treated_share,
                alpha=0.001,
            )
        )
    else:
        low = float(np.mean((e[evaluated] <= 0.01) | (e[evaluated] >= 0.99)))
        checks.append(
            CheckResult(
                "propensity",
                "warn" if low > 0.05 else "pass",
                f"treatment was not randomised: propensities estimated by "
                f"{design.propensity_learner}; {low:.1%} of evaluation customers at the "
                "clipping bounds [0.01, 0.99]. Qini and AUUC use inverse-propensity weights.",
            )
        )
    best = max(results, key=lambda r: r.estimate)
    text = (
        f"{len(results)} learners judged on {len(evaluated):,} customers they were not "
        f"trained on ({design.evaluation}); best Qini: {best.estimator} "
        f"({best.estimate:.3f}); policy learner: {policy_name}"
    )
    status = "pass"
    if design.policy_learner == "best":
        status = "warn"
        text += " — chosen on the same customers, so its Qini and profit are a little optimistic"
    rows = [
        {
            "learner": r.estimator,
            "qini": r.estimate,
            "conf_low": r.conf_low,
            "conf_high": r.conf_high,
            "auuc": r.details["auuc"]["estimate"],
        }
        for r in results
    ]
    checks.append(CheckResult("learner_comparison", status, text, rows))
    head = next(r for r in results if r.estimator == policy_name)
    if head.conf_low <= 0:
        checks.append(
            CheckResult(
                "targeting_signal",
                "warn",
                f"{policy_name}'s held-out Qini interval includes 0: the data cannot show that "
                "its ranking beats random targeting",
            )
        )
    return checks


def _scored_file(spec, data, score, evaluated: np.ndarray) -> pd.DataFrame:
    """One row per customer: predicted uplift, rank and the policy's decision, for a CRM."""
    from causal.designs.uplift_policy import decide

    pricing = _pricing(spec)
    n = len(score)
    treat = decide(score, pricing=pricing, max_treated=_budget(spec, n, n))
    held_out = np.zeros(n, dtype=bool)
    held_out[evaluated] = True
    out = pd.DataFrame(
        {
            spec.unit: data.table[spec.unit].to_numpy(),
            "predicted_uplift": score,
            "rank": pd.Series(-score).rank(method="first").astype("int64").to_numpy(),
            "treat": treat,
            "scored_out_of_sample": held_out,
        }
    )
    if spec.design.money is not None:
        out["expected_net_value"] = score * pricing.value_per_unit - pricing.cost_per_contact
    return out.sort_values("rank", kind="stable").reset_index(drop=True)
