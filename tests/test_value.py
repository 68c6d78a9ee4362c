"""Value block: money lines are exact linear transforms of the effect's interval."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from causal.results import Result
from causal.value import line, value_block


def effect(estimate=10.0, se=2.0, df=math.inf, outcome="revenue"):
    crit = stats.norm.ppf(0.975) if math.isinf(df) else stats.t.ppf(0.975, df)
    return Result(
        "lin",
        "ATE",
        outcome,
        estimate,
        se,
        estimate - crit * se,
        estimate + crit * se,
        0.0,
        1000,
        500,
        details={"df": df},
    )


def test_margin_population_and_costs():
    v = value_block(
        effect(), gross_margin=0.4, population=50_000, cost_per_treated_unit=1.5, fixed_cost=20_000
    )
    assert line(v, "incremental_revenue")["estimate"] == pytest.approx(500_000)
    assert line(v, "gross_profit_per_unit")["estimate"] == pytest.approx(4.0)
    assert line(v, "cost")["estimate"] == 95_000
    net = line(v, "net_value")
    assert net["estimate"] == pytest.approx(200_000 - 95_000)
    assert net["std_error"] == pytest.approx(50_000 * 0.4 * 2.0)
    r = effect()
    assert net["conf_low"] == pytest.approx(50_000 * 0.4 * r.conf_low - 95_000)
    roi = line(v, "roi")
    assert roi["estimate"] == pytest.approx(105_000 / 95_000)
    assert roi["conf_high"] == pytest.approx(net["conf_high"] / 95_000)
    assert v["break_even_profit_per_unit"] == pytest.approx(95_000 / 50_000)


def test_probability_roi_positive_is_the_normal_tail_of_net_value():
    v = value_block(effect(), gross_margin=0.5, population=1000, cost_per_treated_unit=4.0)
    # net per unit = 0.5 * 10 - 4 = 1, SE 0.5 * 2 = 1: P(net > 0) = Phi(1)
    assert v["probability_roi_positive"] == pytest.approx(stats.norm.cdf(1.0))


def test_t_degrees_of_freedom_carry_into_the_probability():
    v = value_block(effect(df=20), gross_margin=0.5, population=1000, cost_per_treated_unit=4.0)
    assert v["probability_roi_positive"] == pytest.approx(stats.t.cdf(1.0, 20))


def test_profit_outcome_instead_of_margin_and_default_population():
    v = value_block(effect(), profit=effect(3.0, 1.0, outcome="profit"))
    assert v["population"] == 1000
    assert line(v, "gross_profit")["estimate"] == pytest.approx(3000)
    assert "roi" not in [item["name"] for item in v["lines"]]
    assert v["roi_defined"] is False


def test_negative_effect_keeps_interval_ordered():
    v = value_block(effect(-10.0), gross_margin=0.3, population=100)
    net = line(v, "net_value")
    assert net["conf_low"] < net["estimate"] < net["conf_high"] < 0


def test_exactly_one_profit_source():
    with pytest.raises(ValueError, match="exactly one"):
        value_block(effect(), profit=effect(), gross_margin=0.3)
