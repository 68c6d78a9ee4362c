"""Adapter over dowhy: backdoor identification, refuters, and dowhy's linear regression.

The only module that imports dowhy, lazily (the import alone takes ~4 s), and dowhy objects
never leave it: callers get an :class:`Identification` and plain JSON-safe dicts.

What dowhy 0.14 does, and how this adapter uses it:

- **Unobserved nodes** are simply graph nodes that are not columns of the data frame (its
  ``CausalModel`` passes ``data.columns`` as the observed nodes). We pass the observed nodes
  explicitly: graph nodes that are columns and not declared unobserved.
- **Non-identification** is not an exception: ``identify_effect_auto`` returns an estimand
  whose ``estimands["backdoor"]`` is ``None`` and whose ``backdoor_variables`` is empty. We
  turn that into a :class:`DesignError` naming the open path.
- **The default backdoor search is exhaustive** (all subsets of the candidates, largest then
  smallest), so its cost doubles with each candidate: 0.3 s for 12, 3 s for 15, and it gives
  up after 100,000 subsets. Above :data:`EXHAUSTIVE_LIMIT` candidates we ask dowhy for its
  minimal d-separator instead (``identify_generalized_adjustment_set``, polynomial).
- **Which set**: dowhy's default among the sets it finds is the one with the fewest
  instruments, then the fewest variables; it breaks ties by Python set order, which changes
  between processes (string hashing is randomised). We apply the same rule and break ties
  alphabetically, so the report does not change from run to run.
- **Refuter seeds**: ``random_state`` is honoured only by the ``permute`` placebo (the
  default placebo draws from numpy's global generator — for a float treatment it draws
  N(0, 0), i.e. all zeros), and an *integer* ``random_state`` makes ``data_subset`` draw the
  same subset in every simulation. We pass a ``numpy.random.RandomState`` and the permute
  placebo.
- dowhy logs a warning for every refuter ("We assume a Normal Distribution..."); the adapter
  silences dowhy's logging and warnings while it runs.
- **Importing dowhy changes how Python displays values**: ``dowhy.causal_model`` calls
  ``sympy.init_printing()`` at import, which replaces ``sys.displayhook`` and, in a notebook,
  registers sympy printers for every int, float, tuple, list, set and dict (plain text, LaTeX
  and PNG). The adapter imports dowhy through :func:`import_dowhy`, which undoes that.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from causal.designs.obs_graph import (
    Graph,
    GraphInput,
    adjustment_candidates,
    format_path,
    parse_graph,
    unblockable_backdoor_path,
    validate_graph,
)
from causal.errors import DataError, DesignError, SpecError

KNOWN_REFUTERS = ("placebo_treatment", "random_common_cause", "data_subset")
EXHAUSTIVE_LIMIT = 12  # candidates above which dowhy's exhaustive backdoor search is skipped
_Z = 1.959963984540054  # two-sided 95% normal quantile used by the refuter verdicts


@dataclass(frozen=True)
class Identification:
    """How the effect of ``treatment`` on ``outcome`` is identified from the graph.

    ``method`` is ``"backdoor"`` (the set satisfies the backdoor criterion) or
    ``"general_adjustment"`` (a valid adjustment set that is not a backdoor set); ``set_rule``
    says which of the valid sets was chosen. ``frontdoor`` and ``instruments`` are the
    alternatives dowhy lists, for information (this toolkit estimates by adjustment only).
    """

    treatment: str
    outcome: str
    adjustment_set: tuple[str, ...]
    method: str
    set_rule: str
    estimand_expression: str
    assumptions: tuple[str, ...]
    identified: bool = True
    other_adjustment_sets: tuple[tuple[str, ...], ...] = ()
    frontdoor: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (tuples become lists)."""
        return {k: _listify(v) for k, v in asdict(self).items()}


def _listify(value: Any) -> Any:
    return [_listify(v) for v in value] if isinstance(value, tuple) else value


# --- identification ------------------------------------------------------------------------------


def identify(
    table: pd.DataFrame, *, treatment: str, outcome: str, graph: Graph | GraphInput
) -> Identification:
    """The adjustment set dowhy finds on ``graph`` for the effect of ``treatment`` on ``outcome``.

    ``graph`` is a validated :class:`~causal.designs.obs_graph.Graph` (its ``unobserved``
    nodes are respected) or a raw edges list / DOT string (then every node must be a column).

    Raises
    ------
    SpecError
        The graph does not fit the table (see :func:`~causal.designs.obs_graph.validate_graph`).
    DesignError
        No set of observed columns identifies the effect (an unobserved confounder).

    Examples
    --------
    >>> t = pd.DataFrame({"x": [0.0], "d": [1], "y": [1.0]})
    >>> identify(t, treatment="d", outcome="y",
    ...          graph=[["x", "d"], ["x", "y"], ["d", "y"]]).adjustment_set
    ('x',)
    """
    g = _checked(table, treatment, outcome, graph)
    observed = [n for n in g.nodes if n in table.columns and n not in g.unobserved]
    candidates = adjustment_candidates(g, treatment=treatment, outcomes=[outcome])
    with _quiet():
        if len(candidates) <= EXHAUSTIVE_LIMIT:
            found, frontdoor = _exhaustive(g, treatment, outcome, observed)
        else:
            found, frontdoor = _minimal_separator(g, treatment, outcome, observed), ()
    if found is None:
        raise DesignError(_not_identified(g, treatment, outcome, observed, frontdoor))
    return found


def _checked(table: pd.DataFrame, treatment: str, outcome: str, graph: Any) -> Graph:
    g = graph if isinstance(graph, Graph) else parse_graph(graph)
    return validate_graph(
        g,
        columns=list(table.columns),
        treatment=treatment,
        outcomes=[outcome],
        unobserved=g.unobserved,
    )


def _exhaustive(g: Graph, treatment: str, outcome: str, observed: list[str]):
    from dowhy.causal_identifier.auto_identifier import (
        BackdoorAdjustment,
        EstimandType,
        identify_effect_auto,
    )

    estimand = identify_effect_auto(
        g.to_networkx(),
        [treatment],
        [outcome],
        observed,
        EstimandType.NONPARAMETRIC_ATE,
        backdoor_adjustment=BackdoorAdjustment.BACKDOOR_DEFAULT,
    )
    instruments = tuple(sorted(estimand.instrumental_variables or ()))
    frontdoor = tuple(sorted(estimand.frontdoor_variables or ()))
    method, prefix = "backdoor", "backdoor"
    sets = _distinct(v for k, v in (estimand.backdoor_variables or {}).items() if k != prefix)
    if not sets:  # dowhy's complete adjustment criterion may still find a set
        method, prefix = "general_adjustment", "general"
        found = (estimand.general_adjustment_variables or {}).items()
        sets = _distinct(v for k, v in found if k.startswith(prefix) and k[len(prefix) :].isdigit())
    if not sets:
        return None, frontdoor
    # dowhy's default rule (fewest instruments, then fewest variables), ties alphabetical.
    chosen = min(sets, key=lambda s: (len(set(s) & set(instruments)), len(s), s))
    rule = (
        "dowhy's default among the valid sets found by exhaustive search: fewest instruments, "
        "then fewest variables (ties broken alphabetically)"
    )
    found = _identification(treatment, outcome, chosen, method, rule, sets, frontdoor, instruments)
    return found, frontdoor


def _minimal_separator(g: Graph, treatment: str, outcome: str, observed: list[str]):
    from dowhy.causal_identifier.auto_identifier import identify_generalized_adjustment_set
    from dowhy.graph import check_valid_backdoor_set, get_instruments

    nxg = g.to_networkx()
    sets = identify_generalized_adjustment_set(nxg, [treatment], [outcome], observed)
    if not sets:
        return None
    chosen = tuple(sorted(sets[0].get_adjustment_variables()))
    backdoor = check_valid_backdoor_set(nxg, [treatment], [outcome], set(chosen))["is_dseparated"]
    no_descendant = not set(chosen) & g.descendants(treatment)
    method = "backdoor" if backdoor and no_descendant else "general_adjustment"
    rule = (
        f"dowhy's minimal d-separator (more than {EXHAUSTIVE_LIMIT} candidate variables: "
        "the exhaustive backdoor search would take too long)"
    )
    instruments = tuple(sorted(get_instruments(nxg, [treatment], [outcome])))
    return _identification(treatment, outcome, chosen, method, rule, [chosen], (), instruments)


def _distinct(sets) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(tuple(sorted(s)) for s in sets if s is not None))


def _identification(treatment, outcome, chosen, method, rule, sets, frontdoor, instruments):
    from dowhy.causal_identifier.auto_identifier import construct_adjustment_estimand

    estimand = construct_adjustment_estimand([treatment], [outcome], list(chosen))
    return Identification(
        treatment=treatment,
        outcome=outcome,
        adjustment_set=tuple(chosen),
        method=method,
        set_rule=rule,
        estimand_expression=str(estimand["estimand"]),
        assumptions=tuple(f"{k}: {v}" for k, v in estimand["assumptions"].items()),
        other_adjustment_sets=tuple(s for s in sets if s != tuple(chosen)),
        frontdoor=frontdoor,
        instruments=instruments,
    )


def _not_identified(
    g: Graph, treatment: str, outcome: str, observed: list[str], frontdoor: tuple[str, ...]
) -> str:
    path = unblockable_backdoor_path(g, treatment, outcome, observed)
    head = f"the effect of {treatment} on {outcome} is not identifiable from this graph: "
    if path:
        hidden = [node for node, _ in path[1:-1]]
        what = "unobserved " + ", ".join(hidden)
        verb = "opens" if len(hidden) == 1 else "open"
        head += f"{what} {verb} a backdoor path {format_path(path)} that no observed set blocks"
    else:
        hidden = ", ".join(g.unobserved) or "none declared"
        head += (
            "no set of observed columns blocks every backdoor path without opening another "
            f"(unobserved nodes: {hidden})"
        )
    if frontdoor:
        head += (
            f" (dowhy finds a front-door set {{{', '.join(frontdoor)}}}, which this toolkit "
            "does not estimate)"
        )
    return head + (
        "; measure a proxy, add a valid adjustment set, or use a design with variation you control"
    )


# --- estimation and refutation -------------------------------------------------------------------


def linear_regression_estimate(
    table: pd.DataFrame, *, treatment: str, outcome: str, adjustment_set: Sequence[str]
) -> float:
    """dowhy's ``backdoor.linear_regression`` estimate: the OLS coefficient of the treatment.

    Examples
    --------
    >>> t = pd.DataFrame({"d": [0, 0, 1, 1], "y": [1.0, 2.0, 4.0, 5.0]})
    >>> round(linear_regression_estimate(t, treatment="d", outcome="y", adjustment_set=[]), 6)
    3.0
    """
    data, names = _dowhy_frame(table, treatment, outcome, adjustment_set)
    with _quiet():
        estimate, _ = _fit_linear(data, names)
        return float(estimate.value)


def refute(
    table: pd.DataFrame,
    *,
    treatment: str,
    outcome: str,
    graph: Graph | GraphInput,
    adjustment_set: Sequence[str],
    refuters: Sequence[str] = KNOWN_REFUTERS,
    simulations: int = 20,
    seed: int,
) -> list[dict[str, Any]]:
    """Run dowhy's refuters on its linear-regression estimate; one JSON-safe row per refuter.

    Each row has ``refuter``, ``original_estimate``, ``std_error`` (of the original),
    ``new_effect`` (mean over the simulations), ``p_value`` (dowhy's), ``simulations``,
    ``passed``, ``rule`` and a plain ``sentence``. Verdicts, with the original standard
    error ``se``:

    - ``placebo_treatment`` (treatment replaced by a random permutation of itself): passes
      when ``|new effect| <= 1.96 se`` — the placebo effect is indistinguishable from zero.
    - ``random_common_cause`` (an independent N(0, 1) column added to the adjustment set) and
      ``data_subset`` (refit on random 80% subsets): pass when the new effect lies inside the
      original 95% interval.

    dowhy's own p-value is reported but not used: with fewer than 100 simulations it is a
    one-sided normal approximation against the spread of the simulations, which is
    degenerate for the random common cause (the simulations barely vary).

    What these refuters can and cannot show: they catch an estimator that finds effects in
    noise or that is fragile to irrelevant changes. None of them can detect an unmeasured or
    omitted confounder — the estimate is re-computed under the same adjustment set.

    Examples
    --------
    >>> refute(pd.DataFrame(), treatment="d", outcome="y", graph=[["d", "y"]],
    ...        adjustment_set=[], refuters=["bootstrap"], seed=1)
    Traceback (most recent call last):
    ...
    causal.errors.SpecError: unknown refuter 'bootstrap'; known refuters: placebo_treatment, \
random_common_cause, data_subset
    """
    unknown = [r for r in refuters if r not in KNOWN_REFUTERS]
    if unknown:
        raise SpecError(
            f"unknown refuter {unknown[0]!r}; known refuters: {', '.join(KNOWN_REFUTERS)}"
        )
    if simulations < 1:
        raise SpecError(f"refuter simulations must be at least 1, got {simulations}")
    g = _checked(table, treatment, outcome, graph)
    data, names = _dowhy_frame(table, treatment, outcome, adjustment_set)
    rows = []
    with _quiet():
        check_adjustment(g, treatment, outcome, adjustment_set)
        estimate, se = _fit_linear(data, names)
        for k, name in enumerate(refuters):
            rng = np.random.RandomState([seed % 2**32, k])
            result = _run_refuter(name, data, estimate, names, simulations, rng)
            rows.append(_row(name, treatment, float(estimate.value), se, result, simulations))
    return rows


def check_adjustment(g: Graph, treatment: str, outcome: str, adjustment: Sequence[str]) -> None:
    """The refuters assume a valid adjustment set; say so when the one given is not."""
    from dowhy.graph import check_valid_backdoor_set

    bad = [a for a in adjustment if a not in g.nodes or a in g.unobserved]
    if bad:
        raise DesignError(f"adjustment set member {bad[0]!r} is not an observed node of the graph")
    blocked = check_valid_backdoor_set(g.to_networkx(), [treatment], [outcome], set(adjustment))
    descendants = set(adjustment) & g.descendants(treatment)
    if descendants or not blocked["is_dseparated"]:
        why = (
            f"it contains {', '.join(sorted(descendants))}, caused by {treatment}"
            if descendants
            else "it leaves a backdoor path open"
        )
        raise DesignError(
            f"the adjustment set ({', '.join(adjustment) or 'empty'}) is not valid for the effect "
            f"of {treatment} on {outcome} under the graph: {why}; use the set from identify()"
        )


def _dowhy_frame(table: pd.DataFrame, treatment: str, outcome: str, adjustment: Sequence[str]):
    """A copy with safe column names (dowhy adds columns named 'placebo' and 'w_random')."""
    columns = [treatment, outcome, *adjustment]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"column {missing[0]!r} is not in the table")
    data = table[columns].copy()
    if data.isna().any().any():
        column = data.columns[data.isna().any()].tolist()[0]
        raise DataError(f"column {column!r} has missing values; dowhy's regression needs none")
    d = data[treatment]
    if not set(pd.unique(d)) <= {0, 1}:  # True == 1 and False == 0 in a set
        raise DataError(f"treatment {treatment!r} must be 0/1 for the refuters")
    names = {"t": "_t", "y": "_y", "x": [f"_x{i}" for i in range(len(adjustment))]}
    data.columns = [names["t"], names["y"], *names["x"]]
    data[names["t"]] = d.astype(int).to_numpy()
    data[names["y"]] = pd.to_numeric(data[names["y"]]).astype(float)
    return data.reset_index(drop=True), names


def _fit_linear(data: pd.DataFrame, names: dict):
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator
    from dowhy.causal_identifier import IdentifiedEstimand
    from dowhy.causal_identifier.auto_identifier import (
        EstimandType,
        construct_adjustment_estimand,
    )

    t, y, x = names["t"], names["y"], list(names["x"])
    estimand = IdentifiedEstimand(
        None,
        treatment_variable=[t],
        outcome_variable=[y],
        estimand_type=EstimandType.NONPARAMETRIC_ATE,
        estimands={"backdoor": construct_adjustment_estimand([t], [y], x)},
        backdoor_variables={"backdoor": x},
        default_backdoor_id="backdoor",
        identifier_method="backdoor",
    )
    estimator = LinearRegressionEstimator(estimand)
    estimator.fit(data)
    estimate = estimator.estimate_effect(
        data, treatment_value=1, control_value=0, target_units="ate"
    )
    se = float(np.ravel(estimate.get_standard_error())[0])
    return estimate, se


def _run_refuter(name, data, estimate, names, simulations, rng):
    common = dict(
        data=data,
        target_estimand=estimate.target_estimand,
        estimate=estimate,
        num_simulations=simulations,
        random_state=rng,
        show_progress_bar=_show_progress(),
        n_jobs=1,
    )
    if name == "placebo_treatment":
        from dowhy.causal_refuters.placebo_treatment_refuter import (
            PlaceboType,
            refute_placebo_treatment,
        )

        return refute_placebo_treatment(
            treatment_names=[names["t"]], placebo_type=PlaceboType.PERMUTE, **common
        )
    if name == "random_common_cause":
        from dowhy.causal_refuters.random_common_cause import refute_random_common_cause

        return refute_random_common_cause(**common)
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset

    return refute_data_subset(subset_fraction=0.8, **common)


def _row(name, treatment, original, se, result, simulations) -> dict[str, Any]:
    new = float(result.new_effect)
    p = (result.refutation_result or {}).get("p_value")
    p = float(np.ravel(p)[0]) if p is not None else None
    lo, hi = original - _Z * se, original + _Z * se
    if name == "placebo_treatment":
        passed = abs(new) <= _Z * se
        rule = "passes when |placebo effect| <= 1.96 x SE of the original estimate"
        what = f"Replacing {treatment} with a random permutation of itself"
        verdict = (
            "indistinguishable from zero, as it should be"
            if passed
            else "not zero: the estimator finds an effect where there is none, so the "
            "original estimate is suspect"
        )
    else:
        passed = lo <= new <= hi
        rule = "passes when the new effect lies inside the original 95% confidence interval"
        what = (
            "Adding a random common cause to the adjustment set"
            if name == "random_common_cause"
            else "Re-estimating on random 80% subsets of the data"
        )
        verdict = (
            "within the original interval: the estimate is stable"
            if passed
            else "outside the original interval: the estimate is fragile"
        )
    sentence = (
        f"{what} gives an average effect of {_fmt(new)} (original {_fmt(original)}, "
        f"{simulations} simulations): {verdict}."
    )
    return {
        "refuter": name,
        "original_estimate": original,
        "std_error": se,
        "new_effect": new,
        "p_value": p if p is not None and math.isfinite(p) else None,
        "simulations": int(simulations),
        "passed": bool(passed),
        "rule": rule,
        "sentence": sentence,
    }


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


# --- plumbing ------------------------------------------------------------------------------------


def _show_progress() -> bool:
    """The rule of :mod:`causal.progress`: bars on an interactive terminal, never in CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


_DISPLAY_FORMATS = ("text/plain", "text/latex", "image/png", "image/svg+xml")


def import_dowhy() -> None:
    """Import dowhy, then undo the display hooks its import installs (see module notes).

    econml imports dowhy too (``econml.dowhy``), so :mod:`causal.designs.obs_econml` calls
    this before importing econml.
    """
    if "dowhy" in sys.modules:
        return
    hook = sys.displayhook
    formatters = _notebook_formatters()
    saved = {k: dict(f.type_printers) for k, f in formatters.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dowhy  # noqa: F401
    sys.displayhook = hook
    for key, formatter in formatters.items():
        formatter.type_printers.clear()
        formatter.type_printers.update(saved[key])


def _notebook_formatters() -> dict[str, Any]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return {}
    found = shell.display_formatter.formatters
    return {k: found[k] for k in _DISPLAY_FORMATS if k in found}


@contextmanager
def _quiet() -> Iterator[None]:
    """Import dowhy cleanly and silence its logging and warnings (one per refuter run)."""
    import_dowhy()
    logger = logging.getLogger("dowhy")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
