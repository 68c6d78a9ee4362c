"""Time-to-event outcomes (churn and retention): Kaplan–Meier curves by arm, the difference in
restricted mean survival time (RMST), the Cox hazard ratio, and churn at named horizons.

Each customer has a ``duration`` (time from the start of the pilot to churn, or to the end of
follow-up) and an ``event`` flag: 1 = churned at ``duration``, 0 = still a customer then
(censored). ``arm`` is 1 for the treated arm, 0 for control.

``lifelines`` does the Kaplan–Meier and Cox fits behind this adapter (imported lazily); its
objects never leave this module: results are :class:`~causal.results.Result` objects and plain
DataFrames. Two quantities come from our own kernels on the Kaplan–Meier event table (in
:mod:`causal.designs.survival_value`), because lifelines does not provide them:

* **the variance of the RMST estimate.** ``lifelines.utils.restricted_mean_survival_time(kmf,
  t, return_variance=True)`` returns ``E[min(T, τ)²] − RMST²`` — the spread of the restricted
  survival time *between customers* (computed by numerical quadrature of a step function), not
  the sampling variance of the estimate, which is about ``n`` times smaller. We use the
  Greenwood-type delta-method variance ``Σ_j A_j² d_j / (n_j (n_j − d_j))`` with
  ``A_j = ∫_{t_j}^τ S(u) du`` (Klein & Moeschberger 1997, §4.5; the formula of R's
  ``survRM2``), and report lifelines' quantity, computed exactly, as
  ``restricted_time_variance_<arm>`` in the details.
* **discounted RMST** ``∫_0^τ S(u) e^{−δu} du`` for the value block (same kernel, δ > 0).

Churn at a horizon, ``1 − S(t)`` with Greenwood's SE, uses the same event table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from causal.checks import CheckResult, guarded
from causal.designs.survival_value import ARMS, event_table, km_at, rmst_from_table
from causal.errors import DataError, DesignError
from causal.results import Result

if TYPE_CHECKING:
    import pandas as pd

ROSSI = Path(__file__).resolve().parent.parent / "data" / "datasets" / "rossi.csv"


# --- validation ----------------------------------------------------------------------------


def _name(values: Any, default: str) -> str:
    name = getattr(values, "name", None)
    return str(name) if name is not None else default


def validate_survival_data(
    duration: Any, event: Any, arm: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float durations, 0/1 events and 0/1 arms (pandas Series keep their names in the
    error messages).

    Examples
    --------
    >>> validate_survival_data([2.0, 3.0], [1, 0], [0, 1])[1]
    array([1, 0])
    >>> validate_survival_data([-1.0, 3.0], [1, 0], [0, 1])
    Traceback (most recent call last):
    causal.errors.DataError: column 'duration': 1 negative duration(s) (smallest -1); ...
    """
    names = (_name(duration, "duration"), _name(event, "event"), _name(arm, "arm"))
    cols = [np.asarray(x, dtype=float).ravel() for x in (duration, event, arm)]
    if len({len(c) for c in cols}) > 1:
        raise DataError(
            f"columns {names}: lengths differ ({[len(c) for c in cols]}); pass one value per "
            "customer in each"
        )
    bad = np.isnan(np.column_stack(cols)).any(axis=1)
    if bad.any():
        which = [n for n, c in zip(names, cols, strict=True) if np.isnan(c).any()]
        raise DataError(
            f"column(s) {which}: {int(bad.sum())} of {len(bad)} rows have missing values; drop "
            "or fill those rows (a customer still active at the end is event 0, not missing)"
        )
    t, e, a = cols
    if not np.isfinite(t).all():
        raise DataError(f"column {names[0]!r}: durations must be finite; cap open follow-up")
    if (t < 0).any():
        raise DataError(
            f"column {names[0]!r}: {int((t < 0).sum())} negative duration(s) (smallest "
            f"{t.min():g}); durations are times since the start — fix or drop those rows"
        )
    for name, col, what in ((names[1], e, "churned"), (names[2], a, "treated")):
        if not np.isin(col, (0.0, 1.0)).all():
            odd = np.unique(col[~np.isin(col, (0.0, 1.0))])[:3].tolist()
            raise DataError(
                f"column {name!r}: values must be 0 or 1 (1 = {what}), found {odd}; recode it"
            )
    for value, label in ((0, "control (0)"), (1, "treated (1)")):
        if not (a == value).any():
            raise DataError(
                f"column {names[2]!r}: the {label} arm is empty; both arms need customers"
            )
    return t, e.astype(int), a.astype(int)


def _check_horizon(t: np.ndarray, a: np.ndarray, horizon: float, *, what: str) -> None:
    """The KM curve is known only up to each arm's longest follow-up."""
    if not (math.isfinite(horizon) and horizon > 0):
        raise DataError(f"{what} horizon must be a positive number, got {horizon!r}")
    for value, arm in enumerate(ARMS):
        longest = float(t[a == value].max())
        if horizon > longest:
            raise DataError(
                f"{what} horizon {horizon:g} is beyond the longest follow-up in the {arm} arm "
                f"({longest:g}); choose a horizon ≤ {longest:g}"
            )


# --- lifelines adapter ---------------------------------------------------------------------


def _lifelines() -> Any:
    try:
        import lifelines
    except ImportError as exc:  # a runtime dependency, but say what to do if it is missing
        raise DesignError(
            "the survival design needs lifelines; install it with `pip install lifelines`"
        ) from exc
    return lifelines


@contextmanager
def _quiet() -> Iterator[None]:
    """lifelines 0.30.0 passes axis positionally (``df.var(0)``), which pandas 3 warns about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Starting with pandas version 4.0")
        yield


def _kmf(t: np.ndarray, e: np.ndarray, *, alpha: float) -> Any:
    lifelines = _lifelines()
    with _quiet():
        return lifelines.KaplanMeierFitter(alpha=alpha).fit(t, e)


def kaplan_meier_by_arm(
    duration: Any, event: Any, arm: Any, *, alpha: float = 0.05
) -> dict[str, pd.DataFrame]:
    """Kaplan–Meier curve of each arm as a tidy table (lifelines' ``KaplanMeierFitter``).

    Columns: ``time``, ``survival``, ``conf_low``, ``conf_high`` (lifelines' log(−log)
    interval at level ``1 − alpha``), ``at_risk`` (just before ``time``), ``events``,
    ``censored``; one row at time 0 and one per distinct duration.

    Examples
    --------
    >>> import pandas as pd
    >>> rossi = pd.read_csv(ROSSI)
    >>> km = kaplan_meier_by_arm(rossi.week, rossi.arrest, rossi.fin)
    >>> round(float(km["treated"].survival.iloc[-1]), 4), list(km)
    (0.7778, ['control', 'treated'])
    """
    import pandas as pd

    t, e, a = validate_survival_data(duration, event, arm)
    out = {}
    for value, label in enumerate(ARMS):
        kmf = _kmf(t[a == value], e[a == value], alpha=alpha)
        ci = kmf.confidence_interval_survival_function_
        table = kmf.event_table.reindex(kmf.survival_function_.index)
        out[label] = pd.DataFrame(
            {
                "time": kmf.survival_function_.index.to_numpy(dtype=float),
                "survival": kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
                "conf_low": ci.iloc[:, 0].to_numpy(dtype=float),
                "conf_high": ci.iloc[:, 1].to_numpy(dtype=float),
                "at_risk": table["at_risk"].to_numpy(dtype=int),
                "events": table["observed"].to_numpy(dtype=int),
                "censored": table["censored"].to_numpy(dtype=int),
            }
        )
    return out


def rmst_difference(
    duration: Any, event: Any, arm: Any, *, horizon: float, alpha: float = 0.05
) -> Result:
    """Difference (treated − control) in restricted mean survival time up to ``horizon``.

    RMST per arm is lifelines' exact step integral of the KM curve; its standard error is the
    Greenwood-type delta method (see the module docstring: lifelines' ``return_variance`` is
    the variance of ``min(T, τ)`` between customers, reported in the details, not of the
    estimate). The arms are independent, so the variances add. ``details["km"]`` keeps each
    arm's event table up to the horizon (for discounting and plots).

    Examples
    --------
    >>> import pandas as pd
    >>> rossi = pd.read_csv(ROSSI)
    >>> r = rmst_difference(rossi.week, rossi.arrest, rossi.fin, horizon=52)
    >>> round(r.details["rmst_control"], 3), round(r.details["rmst_treated"], 3)
    (44.833, 46.875)
    >>> round(r.estimate, 3), round(r.std_error, 3)
    (2.042, 1.213)
    """
    _lifelines()  # a clear error when it is missing
    from lifelines.utils import restricted_mean_survival_time

    t, e, a = validate_survival_data(duration, event, arm)
    _check_horizon(t, a, horizon, what="RMST")
    details: dict[str, Any] = {"horizon": float(horizon), "km": {}}
    for value, label in enumerate(ARMS):
        table = event_table(t[a == value], e[a == value])
        mean = float(
            restricted_mean_survival_time(
                _kmf(t[a == value], e[a == value], alpha=alpha), t=horizon
            )
        )
        _, variance, spread = rmst_from_table(**table, horizon=horizon)
        keep = table["time"] <= horizon
        details["km"][label] = {k: v[keep].tolist() for k, v in table.items()}
        details[f"rmst_{label}"] = details[f"{label}_mean"] = mean
        details[f"se_{label}"] = math.sqrt(variance)
        details[f"restricted_time_variance_{label}"] = spread
        details[f"n_events_{label}"] = int(e[a == value].sum())
    details["variance_method"] = (
        "Greenwood-type delta method, Σ A_j² d_j / (n_j (n_j − d_j)) (Klein & Moeschberger "
        "§4.5, as R survRM2); arms independent"
    )
    return Result.from_estimate(
        "rmst_difference",
        f"difference in restricted mean survival time to {horizon:g}",
        _name(duration, "duration"),
        details["rmst_treated"] - details["rmst_control"],
        math.hypot(details["se_treated"], details["se_control"]),
        n_units=len(t),
        n_treated=int(a.sum()),
        alpha=alpha,
        details=details,
    )


def churn_difference(
    duration: Any,
    event: Any,
    arm: Any,
    *,
    horizons: Mapping[str, float] | Sequence[float],
    alpha: float = 0.05,
) -> tuple[Result, ...]:
    """Churn by each horizon, ``1 − S(t)`` from the KM curve with Greenwood SE, per arm, and
    the difference treated − control (a negative difference: the service keeps customers).

    ``horizons`` maps names to times (``{"3 months": 13, "1 year": 52}``) or is a list of times.

    Examples
    --------
    >>> import pandas as pd
    >>> rossi = pd.read_csv(ROSSI)
    >>> (r,) = churn_difference(rossi.week, rossi.arrest, rossi.fin, horizons={"1 year": 52})
    >>> round(r.details["churn_control"], 4), round(r.estimate, 4)
    (0.3056, -0.0833)
    """
    t, e, a = validate_survival_data(duration, event, arm)
    named = dict(horizons) if isinstance(horizons, Mapping) else {f"t={h:g}": h for h in horizons}
    tables = [event_table(t[a == v], e[a == v]) for v in (0, 1)]
    results = []
    for name, horizon in named.items():
        _check_horizon(t, a, float(horizon), what=f"churn {name!r}")
        details: dict[str, Any] = {"horizon": float(horizon), "horizon_name": name}
        for label, table in zip(ARMS, tables, strict=True):
            surv, var = km_at(table, float(horizon))
            details[f"churn_{label}"] = details[f"{label}_mean"] = 1.0 - surv
            details[f"se_{label}"] = math.sqrt(var)
        results.append(
            Result.from_estimate(
                "churn_difference",
                f"difference in churn by {name} (KM, Greenwood SE)",
                _name(duration, "duration"),
                details["churn_treated"] - details["churn_control"],
                math.hypot(details["se_treated"], details["se_control"]),
                n_units=len(t),
                n_treated=int(a.sum()),
                alpha=alpha,
                details=details,
            )
        )
    return tuple(results)


def cox_hazard_ratio(
    frame: pd.DataFrame,
    *,
    duration: str,
    event: str,
    treatment: str,
    covariates: Sequence[str] = (),
    alpha: float = 0.05,
) -> Result:
    """Cox proportional-hazards coefficient of ``treatment`` (log hazard ratio), adjusted for
    ``covariates``, with lifelines' ``CoxPHFitter`` (Efron's method for tied times, as R's
    ``coxph``). The hazard ratio and its interval are in ``details``; the proportional-hazards
    check (lifelines' ``proportional_hazard_test``, Kaplan–Meier time transform as R's
    ``cox.zph``) is the diagnostic.

    Examples
    --------
    >>> import pandas as pd
    >>> rossi = pd.read_csv(ROSSI)
    >>> r = cox_hazard_ratio(rossi, duration="week", event="arrest", treatment="fin",
    ...                      covariates=["age", "race", "wexp", "mar", "paro", "prio"])
    >>> round(r.estimate, 3), round(r.std_error, 3), round(r.details["hazard_ratio"], 3)
    (-0.379, 0.191, 0.684)
    """
    import pandas as pd

    columns = [duration, event, treatment, *covariates]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"column {missing[0]!r} is not in the data (columns: {list(frame.columns)}); pass "
            "the name of the matching column"
        )
    if len(set(columns)) < len(columns):
        raise DataError(f"columns {columns}: a column is used twice; list each once")
    data = frame[columns].copy()  # never touch the caller's frame
    for col in covariates:
        if not pd.api.types.is_numeric_dtype(data[col]):  # booleans count as numeric
            raise DataError(
                f"covariate {col!r} is not numeric ({data[col].dtype}); encode it as 0/1 columns"
            )
    bad = data.isna().any(axis=1)
    if bad.any():
        which = [c for c in columns if data[c].isna().any()]
        raise DataError(
            f"column(s) {which}: {int(bad.sum())} of {len(data)} rows have missing values; drop "
            "or fill those rows"
        )
    t, e, a = validate_survival_data(data[duration], data[event], data[treatment])
    data[duration], data[event], data[treatment] = t, e, a
    data[list(covariates)] = data[list(covariates)].astype(float)
    lifelines = _lifelines()
    from lifelines.exceptions import ConvergenceError

    with _quiet():
        try:
            cph = lifelines.CoxPHFitter(alpha=alpha).fit(data, duration, event)
        except ConvergenceError as exc:  # collinear or constant covariates, complete separation
            reason = str(exc).strip().splitlines()[0]
            raise DesignError(
                f"the Cox model of {duration!r} on {[treatment, *covariates]} did not converge "
                f"({reason}); drop constant or collinear covariates"
            ) from exc
    summary = cph.summary
    coef = float(summary.loc[treatment, "coef"])
    se = float(summary.loc[treatment, "se(coef)"])
    result = Result.from_estimate(
        "cox_ph",
        f"log hazard ratio of {treatment} (Cox, Efron ties)",
        duration,
        coef,
        se,
        n_units=len(data),
        n_treated=int(a.sum()),
        alpha=alpha,
    )
    details = {
        "hazard_ratio": math.exp(coef),
        "hr_conf_low": math.exp(result.conf_low),
        "hr_conf_high": math.exp(result.conf_high),
        "concordance": float(cph.concordance_index_),
        "log_likelihood": float(cph.log_likelihood_),
        "n_events": int(e.sum()),
        "ties": "efron",
        "covariates": list(covariates),
        "coefficients": [
            {
                "term": str(k),
                "coef": float(r["coef"]),
                "std_error": float(r["se(coef)"]),
                "p_value": float(r["p"]),
            }
            for k, r in summary.iterrows()
        ],
    }
    check = guarded("proportional_hazards", _ph_check, cph, data, treatment)
    return replace(result, details=details, diagnostics=(check,))


def _ph_check(cph: Any, data: pd.DataFrame, treatment: str) -> CheckResult:
    """Schoenfeld-residual test per term; warn when any term's hazard ratio drifts in time."""
    from lifelines.statistics import proportional_hazard_test

    with _quiet():
        test = proportional_hazard_test(cph, data, time_transform="km").summary
    rows = [
        {"term": str(k), "statistic": float(r["test_statistic"]), "p_value": float(r["p"])}
        for k, r in test.iterrows()
    ]
    flagged = [r for r in rows if r["p_value"] < 0.05]
    p_treat = next(r["p_value"] for r in rows if r["term"] == treatment)
    if not flagged:
        return CheckResult(
            "proportional_hazards",
            "pass",
            f"no term's hazard ratio changes detectably over time ({treatment}: p = {p_treat:.2g})",
            rows,
        )
    names = ", ".join(f"{r['term']} (p = {r['p_value']:.2g})" for r in flagged)
    advice = (
        "the hazard ratio of the treatment is an average over time; prefer the RMST difference"
        if any(r["term"] == treatment for r in flagged)
        else "the treatment's ratio looks constant; consider stratifying on the flagged terms"
    )
    return CheckResult("proportional_hazards", "warn", f"non-proportional: {names}; {advice}", rows)
