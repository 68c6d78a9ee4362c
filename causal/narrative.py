"""Plain-language text for reports and the terminal: money formatting and headline sentences.

Kept apart from the estimators (they never format text) and from the notebook (so the sentences
are tested like any other code).
"""

from __future__ import annotations

import math

from causal.results import ExperimentResults, Result
from causal.value import line as value_line

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥"}


def money(amount: float, currency: str = "EUR", *, precise: bool = False) -> str:
    """Format an amount of money for people: ``€1.23M``, ``-$4,560``.

    Examples
    --------
    >>> money(1_234_567, "EUR")
    '€1.23M'
    >>> money(-4560.4, "USD")
    '-$4,560'
    >>> money(1794.3424, "USD", precise=True)
    '$1,794.34'
    """
    if amount is None or not math.isfinite(amount):
        return "n/a"
    symbol = _SYMBOLS.get(currency.upper())
    sign = "-" if amount < 0 else ""
    size = abs(amount)
    if precise:
        body = f"{size:,.2f}"
    elif size >= 1e9:
        body = f"{size / 1e9:.3g}B"
    elif size >= 1e6:
        body = f"{size / 1e6:.3g}M"
    elif size >= 100:
        body = f"{size:,.0f}"
    else:
        body = f"{size:,.2f}"
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"


def percent(x: float, digits: int = 1) -> str:
    """``0.0312`` → ``'3.1%'`` (n/a for missing).

    Examples
    --------
    >>> percent(0.0312)
    '3.1%'
    """
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}%}"


def value_sentence(results: ExperimentResults) -> str:
    """One sentence a manager can read: net value, its interval and the chance it pays.

    Examples
    --------
    >>> from causal.pipeline import analyse
    >>> from causal.spec import load_spec
    >>> res = analyse(load_spec("experiments/lalonde_nsw_experiment.yaml"))
    >>> value_sentence(res)  # no value block: the effect sentence
    'The intervention raised re78 by 1,794 per unit (95% CI 474 to 3,115).'
    """
    value = results.value
    if value is None:
        return effect_sentence(results.headline())
    cur = value["currency"]
    net = value_line(value, "net_value")
    cost = value_line(value, "cost")["estimate"]
    level = f"{value['conf_level']:.0%}"
    text = (
        f"{population_phrase(value)}, the service would bring a net "
        f"{money(net['estimate'], cur)} ({level} CI {money(net['conf_low'], cur)} to "
        f"{money(net['conf_high'], cur)}) after its cost of {money(cost, cur)}"
    )
    if value["roi_defined"]:
        return text + (
            f"; the probability that it pays for itself is "
            f"{_probability(value['probability_roi_positive'])}."
        )
    return text + "."


def population_phrase(value: dict) -> str:
    """How the value block names its population, e.g. 'Rolled out to 400,000 units'.

    Examples
    --------
    >>> population_phrase({"population": 26, "population_label": "Over {n} city-weeks"})
    'Over 26 city-weeks'
    """
    label = value.get("population_label", "Rolled out to {n} units")
    return label.format(n=f"{value['population']:,}")


def effect_sentence(result: Result, *, currency: str | None = None) -> str:
    """Plain sentence for an estimate: direction, size, interval and what the interval says.

    Examples
    --------
    >>> r = Result("lin", "ATE", "revenue_12m", 12.5, 4.0, 4.66, 20.34, 0.002, 40000, 20000)
    >>> effect_sentence(r, currency="EUR")
    'The intervention raised revenue_12m by €12.50 per unit (95% CI €4.66 to €20.34).'
    """
    fmt = (lambda x: money(x, currency, precise=True)) if currency else (lambda x: f"{x:,.4g}")
    level = f"{result.conf_level:.0%}"
    ci = f"({level} CI {fmt(result.conf_low)} to {fmt(result.conf_high)})"
    if result.conf_low > 0:
        verb = "raised"
    elif result.conf_high < 0:
        verb = "lowered"
    else:
        return (
            f"The data cannot tell whether the intervention changed {result.outcome}: the "
            f"estimate is {fmt(result.estimate)} per unit {ci}, an interval that includes 0."
        )
    return f"The intervention {verb} {result.outcome} by {fmt(abs(result.estimate))} per unit {ci}."


def short_headline(results: ExperimentResults) -> str:
    """Compact one-liner for tables: net value with interval, or the headline effect.

    Examples
    --------
    >>> from causal.pipeline import analyse
    >>> from causal.spec import load_spec
    >>> short_headline(analyse(load_spec("experiments/lalonde_nsw_experiment.yaml")))
    're78 1,794 [474, 3,115] · checks: warn'
    """
    status = f"checks: {results.worst_status}"
    if results.value is not None:
        cur = results.value["currency"]
        net = value_line(results.value, "net_value")
        return (
            f"net {money(net['estimate'], cur)} [{money(net['conf_low'], cur)}, "
            f"{money(net['conf_high'], cur)}] · {status}"
        )
    h = results.headline()
    return f"{h.outcome} {h.estimate:,.4g} [{h.conf_low:,.4g}, {h.conf_high:,.4g}] · {status}"


def _probability(p: float) -> str:
    if p > 0.999:
        return "above 99.9%"
    if p < 0.001:
        return "below 0.1%"
    return f"{p:.0%}"
