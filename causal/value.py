"""Money: incremental revenue and gross profit, cost, net value and ROI, each with an interval.

With a known gross margin, known costs and a known population, every quantity here is a linear
function of the per-unit effect. Its interval is therefore the estimator's own interval pushed
through that function. That is the delta method, and it is exact here, so it keeps the
estimator's coverage, including its Student-t degrees of freedom. The probability that ROI > 0
is ``P(net value > 0)`` under the normal approximation to the estimate (equivalently, the
posterior probability under a flat prior). It is not a p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from causal.results import Result

METHOD = (
    "delta method: each line is a linear function of the per-unit effect, so its interval "
    "is the estimator's interval transformed exactly (margin, costs and population known)"
)


@dataclass(frozen=True)
class ValueLine:
    """One money quantity with its interval."""

    name: str
    label: str
    estimate: float
    std_error: float
    conf_low: float
    conf_high: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def value_block(
    revenue: Result,
    *,
    profit: Result | None = None,
    gross_margin: float | None = None,
    population: int | None = None,
    cost_per_treated_unit: float = 0.0,
    fixed_cost: float = 0.0,
    currency: str = "EUR",
    population_label: str = "Rolled out to {n} units",
    cost_saving: Result | None = None,
    combined: Result | None = None,
    retention: Result | None = None,
    total: Result | None = None,
) -> dict[str, Any]:
    """Turn a per-unit revenue effect into money for the population the service would reach.

    Parameters
    ----------
    revenue
        Per-unit effect on revenue (an ATE Result).
    profit, gross_margin
        Exactly one: a per-unit effect on gross profit, or the margin applied to ``revenue``.
    population
        Units the service would reach; defaults to the pilot's units.
    cost_per_treated_unit, fixed_cost
        Costs of serving ``population`` units.
    currency
        Label only.
    population_label
        How the report names the population, with ``{n}`` for its size.
    cost_saving, combined
        Optional, together: the effect on a cost outcome per unit (a decrease is money saved)
        and the same estimator's effect on ``margin × revenue − cost`` per unit, whose interval
        carries the covariance of the two; net value and ROI then count both.
    retention, total
        Optional, together: money per unit from extra retained time, and the per-unit total of
        gross profit, cost saved and retention (a bootstrap over units, so its interval carries
        their covariance); net value and ROI then count the total.

    Returns
    -------
    dict
        ``lines`` (per-unit and total revenue, gross profit, cost, net value, ROI), the
        probability that ROI > 0, the break-even gross profit per unit and the method.

    Examples
    --------
    >>> r = Result("lin", "ATE", "revenue", 10.0, 2.0, 6.08, 13.92, 1e-6, 1000, 500)
    >>> v = value_block(r, gross_margin=0.5, population=10_000, cost_per_treated_unit=2.0)
    >>> [line["estimate"] for line in v["lines"] if line["name"] == "net_value"]
    [30000.0]
    """
    if (profit is None) == (gross_margin is None):
        raise ValueError("give exactly one of profit or gross_margin")
    n = int(population or revenue.n_units)
    cost = n * cost_per_treated_unit + fixed_cost
    if profit is None:
        profit_scale, profit_base, profit_source = (
            gross_margin,
            revenue,
            f"gross margin {gross_margin:.1%}",
        )
    else:
        profit_scale, profit_base, profit_source = 1.0, profit, f"outcome {profit.outcome!r}"

    lines = [
        _line("incremental_revenue_per_unit", "Incremental revenue per unit", revenue, 1.0),
        _line("incremental_revenue", "Incremental revenue", revenue, n),
        _line(
            "gross_profit_per_unit", "Incremental gross profit per unit", profit_base, profit_scale
        ),
        _line("gross_profit", "Incremental gross profit", profit_base, n * profit_scale),
    ]
    if (cost_saving is None) != (combined is None):
        raise ValueError("give cost_saving and combined together")
    if cost_saving is not None:
        lines += [
            _line("cost_saved_per_unit", "Cost saved per unit", cost_saving, -1.0),
            _line("cost_saved", "Cost saved", cost_saving, -float(n)),
            _line(
                "total_value_per_unit",
                "Gross profit and cost saved per unit, together",
                combined,
                1.0,
            ),
        ]
        profit_scale, profit_base = 1.0, combined
        profit_source += f" plus the saving on {cost_saving.outcome!r}"
    if (retention is None) != (total is None):
        raise ValueError("give retention and total together")
    if retention is not None:
        lines = [line for line in lines if line.name != "total_value_per_unit"]
        lines += [
            _line(
                "retained_margin_per_unit",
                "Margin from customers kept longer, per unit",
                retention,
                1.0,
            ),
            _line("retained_margin", "Margin from customers kept longer", retention, float(n)),
            _line("total_value_per_unit", "All parts together, per unit", total, 1.0),
        ]
        profit_scale, profit_base = 1.0, total
        profit_source += " plus the margin of customers kept longer"
    net_label = (
        "Net value (gross profit − cost)"
        if cost_saving is None and retention is None
        else "Net value (all parts − cost of the service)"
    )
    lines += [
        ValueLine("cost", "Cost of the service", cost, 0.0, cost, cost),
        _line("net_value", net_label, profit_base, n * profit_scale, -cost),
    ]
    net = lines[-1]
    if cost > 0:
        lines.append(
            _line(
                "roi",
                "Return on investment (net value / cost)",
                profit_base,
                n * profit_scale / cost,
                -1.0,
            )
        )
    prob_positive = _probability_positive(net, profit_base)
    return {
        "currency": currency,
        "estimator": revenue.estimator,
        "revenue_outcome": revenue.outcome,
        "profit_source": profit_source,
        "population": n,
        "population_label": population_label,
        "cost_per_treated_unit": cost_per_treated_unit,
        "fixed_cost": fixed_cost,
        "conf_level": revenue.conf_level,
        "lines": [line.to_dict() for line in lines],
        "probability_roi_positive": prob_positive,
        "break_even_profit_per_unit": cost / n,
        "roi_defined": cost > 0,
        "method": METHOD,
    }


def line(value: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The line called ``name`` of a value block.

    Examples
    --------
    >>> line({"lines": [{"name": "cost", "estimate": 1.0}]}, "cost")["estimate"]
    1.0
    """
    return next(item for item in value["lines"] if item["name"] == name)


def _line(name: str, label: str, base: Result, scale: float, shift: float = 0.0) -> ValueLine:
    lo, hi = sorted((shift + scale * base.conf_low, shift + scale * base.conf_high))
    return ValueLine(
        name, label, shift + scale * base.estimate, abs(scale) * base.std_error, lo, hi
    )


def _probability_positive(net: ValueLine, base: Result) -> float:
    if not net.std_error > 0:
        return float(net.estimate > 0)
    from scipy import stats  # lazy: report notebooks import this module only to draw

    df = base.details.get("df", math.inf)
    dist = stats.t(df) if df is not None and math.isfinite(df) else stats.norm()
    return float(dist.cdf(net.estimate / net.std_error))
