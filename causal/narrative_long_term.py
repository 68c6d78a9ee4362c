"""Plain sentences about the value of a service over time (CLI and report headline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from causal.narrative import money


def long_term_sentence(service_value: Mapping[str, Any]) -> str:
    """The predicted long-term money (else the pilot's), net of cost, and the payback period,
    in one sentence.

    Examples
    --------
    >>> block = {"currency": "EUR", "population": 1000, "conf_level": 0.95,
    ...          "lines": [{"label": "Predicted, 12 months", "per_customer": 6.0,
    ...                     "conf_low": 5.0, "conf_high": 7.0}],
    ...          "payback": {"months": 8.0, "earliest": 6.0, "latest": 11.0,
    ...                      "cost_per_customer": 4.0, "last_time": 12.0}}
    >>> text = long_term_sentence(block)
    >>> text.split(" for ")[0]
    'Predicted, 12 months: net €2,000 (95% CI €1,000 to €3,000)'
    >>> text.split(";")[1]
    ' it pays back after 8.0 months (95% CI 6.0 to 11.0).'
    """
    cur = service_value["currency"]
    n = int(service_value["population"])
    by_name = {line.get("name"): line for line in service_value["lines"]}
    last = by_name.get("long_term") or by_name.get("short_term") or service_value["lines"][0]
    payback = service_value.get("payback")
    cost = payback["cost_per_customer"] if payback else 0.0
    net = [(last[k] - cost) * n for k in ("per_customer", "conf_low", "conf_high")]
    level = f"{service_value['conf_level']:.0%}"
    text = (
        f"{last['label']}: net {money(net[0], cur)} ({level} CI {money(net[1], cur)} to "
        f"{money(net[2], cur)}) for {n:,} customers after their cost of {money(cost * n, cur)}"
    )
    if not payback:
        return text + "."
    if payback["months"] is None:
        return text + f"; it does not pay back within {payback['last_time']:g} months."
    latest = (
        f"{payback['latest']:.1f}"
        if payback["latest"] is not None
        else f"beyond {payback['last_time']:g}"
    )
    return (
        text + f"; it pays back after {payback['months']:.1f} months ({level} CI "
        f"{payback['earliest']:.1f} to {latest})."
    )
