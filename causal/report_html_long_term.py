"""HTML pieces of value over time (A/B ``long_term`` block) and of the ``clv`` design, built
from ``results.json`` (escaped, no estimation)."""

from __future__ import annotations

from html import escape
from typing import Any

from causal.narrative import money, percent
from causal.report_html import METHODS, _table, badge
from causal.results import ExperimentResults

METHODS.update(
    {
        "bg_nbd_gamma_gamma": (
            "BG/NBD + Gamma–Gamma",
            "Repeat purchases follow a Poisson process while a customer is active; after each "
            "purchase the customer may drop out (BG/NBD). Spend per purchase varies around a "
            "customer-specific mean (Gamma–Gamma). Both fitted by maximum likelihood on the "
            "calibration period; the lifetime value is the expected discounted margin over the "
            "horizon. Interval: parametric bootstrap of the parameters plus the sampling of "
            "customers.",
            "Customers buy at steady (latent) rates, drop out only right after a purchase, "
            "never come back, and spend independently of how often they buy.",
            "Fader, Hardie & Lee (2005), Marketing Science 24(2) and JMR 42(4).",
        )
    }
)


def long_term_headline_html(res: ExperimentResults) -> str:
    """The long-horizon money and the payback in one sentence, under the pilot's headline."""
    from causal.narrative_long_term import long_term_sentence

    block = (res.long_term or {}).get("service_value")
    if not block:
        return ""
    return f'<div class="causal"><p class="big">{escape(long_term_sentence(block))}</p></div>'


def service_value_html(res: ExperimentResults) -> str:
    """Short-term, predicted long-term and lifetime money side by side, with assumptions."""
    money_block = (res.long_term or {}).get("service_value")
    if not money_block:
        return (
            "<p>The value of the service over time needs a value block with a gross margin; "
            "the spec has none.</p>"
        )
    cur = money_block["currency"]
    rows = []
    for item in money_block["lines"]:
        rows.append(
            [
                item["label"],
                money(item["per_customer"], cur, precise=True),
                f"{money(item['conf_low'], cur, precise=True)} to "
                f"{money(item['conf_high'], cur, precise=True)}",
                money(item["total"], cur),
                item["assumption"],
            ]
        )
    clv = (res.long_term or {}).get("clv")
    if clv and not clv.get("identified", True):
        label = f"Lifetime value, next {clv['horizon_months']} months (BG/NBD + Gamma–Gamma)"
        rows.append([label, "not estimated", "", "", clv["reason"]])
    level = f"{money_block['conf_level']:.0%}"
    table = _table(
        [
            "Gross profit",
            "Per treated customer",
            f"{level} CI",
            f"Total ({money_block['population']:,} customers)",
            "Assumes",
        ],
        rows,
    )
    return table + payback_sentence_html(res)


def payback_sentence_html(res: ExperimentResults) -> str:
    """One sentence: when the service pays for itself, with the interval."""
    block = ((res.long_term or {}).get("service_value") or {}).get("payback")
    if not block:
        return "<p>No cost per treated customer in the spec, so no payback period.</p>"
    cur = (res.long_term or {})["service_value"]["currency"]
    cost = money(block["cost_per_customer"], cur, precise=True)
    last = block["last_time"]
    if block["months"] is None:
        text = (
            f"The cumulative gross profit per treated customer does not reach its cost of {cost} "
            f"within the {last:g} months the estimates cover."
        )
    else:
        latest = f"{block['latest']:.1f}" if block["latest"] is not None else f"more than {last:g}"
        text = (
            f"<strong>Payback after {block['months']:.1f} months</strong> (95% interval "
            f"{block['earliest']:.1f} to {latest} months): when the discounted cumulative "
            f"gross profit per treated customer reaches its cost of {cost}."
        )
    return f'<p>{text}</p><p class="small">{escape(block["method"])}.</p>'


def horizons_html(res: ExperimentResults) -> str:
    """Effect at each horizon: pointwise CI, simultaneous band, increment, units followed."""
    block = (res.long_term or {}).get("horizons")
    if not block:
        return ""
    unit = block["time_unit"]
    rows = [
        [
            f"{r['horizon']:g} {unit}s",
            f"{r['total']:,.2f}",
            f"{r['total_conf_low']:,.2f} to {r['total_conf_high']:,.2f}",
            f"{r['band_low']:,.2f} to {r['band_high']:,.2f}" if block["cumulative"] else "",
            f"{r['increment']:,.2f} (SE {r['increment_std_error']:,.2f})",
            f"{r['n_treated'] + r['n_control']:,}",
        ]
        for r in block["table"]
    ]
    note = (
        f'<p class="small">{escape(block["estimator"])}. The band covers every horizon at once '
        f"(sup-t critical value {block['critical_value']:.2f}). A customer counts at a horizon "
        "only once followed that long, so later horizons rest on the earliest enrolees.</p>"
    )
    return (
        _table(
            [
                "Since treatment",
                "Effect (cumulative)",
                "95% CI",
                "Simultaneous band",
                "Added in the period",
                "Customers followed",
            ],
            rows,
        )
        + note
    )


def surrogate_html(res: ExperimentResults) -> str:
    """The surrogate index's prediction, the short-term effects it rests on, and validation."""
    block = (res.long_term or {}).get("surrogate")
    if not block:
        return ""
    long = block["long_term"]
    rows = [
        [
            "Predicted long-term effect (surrogate index)",
            f"{long['estimate']:,.2f}",
            f"{long['conf_low']:,.2f} to {long['conf_high']:,.2f}",
        ]
    ]
    for item in block.get("short_term", []):
        rows.append(
            [
                f"Short-term effect on {item['outcome']}",
                f"{item['estimate']:,.3f}",
                f"{item['conf_low']:,.3f} to {item['conf_high']:,.3f}",
            ]
        )
    html = _table(["Quantity", "Estimate", "95% CI"], rows)
    contributions = block.get("contributions")
    if contributions:
        crow = [
            [
                c["term"],
                _num(c.get("short_term_effect"), ",.3f"),
                _num(c.get("coefficient"), ",.2f"),
                f"{_num(c['contribution'], ',.2f')} (SE {_num(c['contribution_se'], ',.2f')})",
            ]
            for c in contributions
        ]
        html += (
            "<p>How much of the predicted effect comes through each signal: the short-term "
            "effect times the index's coefficient (predictive, not causal; a covariate row "
            "collects chance imbalance between the arms).</p>"
        )
        html += _table(["Signal", "Short-term effect", "Coefficient", "Contribution"], crow)
    return html + validation_html(res)


def validation_html(res: ExperimentResults) -> str:
    """Past experiments: predicted against actual long-term effect, and the check."""
    block = ((res.long_term or {}).get("surrogate") or {}).get("validation") or {}
    rows = [
        [
            str(r["experiment"]),
            f"{r['surrogate_estimate']:,.2f} (SE {r['surrogate_se']:,.2f})",
            f"{r['actual']:,.2f} (SE {r['actual_se']:,.2f})",
            f"{r['difference']:,.2f} (SE {r['difference_se']:,.2f})",
        ]
        for r in block.get("table") or []
    ]
    if not rows:
        return "<p>No past experiments in the historical data, so surrogacy is not checked.</p>"
    html = _table(["Past experiment", "Predicted from surrogates", "Actual", "Difference"], rows)
    share = block.get("share_explained")
    if share:
        html += (
            f"<p>The surrogates explain {percent(share['estimate'])} of the past experiments' "
            f"long-term effects (95% CI {percent(share['conf_low'])} to "
            f"{percent(share['conf_high'])}).</p>"
        )
    check = res.check("surrogacy_validation")
    if check is not None:
        html += f'<div class="causal"><p>{badge(check.status)} {escape(check.detail)}</p></div>'
    return html


def nps_html(res: ExperimentResults) -> str:
    """NPS by arm and the difference in points, and what it is worth through the index."""
    items = (res.long_term or {}).get("nps") or []
    html = ""
    for item in items:
        t, c = item["treated"], item["control"]
        rows = [
            [
                "Treated",
                f"{t['n']:,}",
                percent(t["promoters"]),
                percent(t["detractors"]),
                f"{t['nps']:+.1f} (SE {t['std_error']:.1f})",
            ],
            [
                "Control",
                f"{c['n']:,}",
                percent(c["promoters"]),
                percent(c["detractors"]),
                f"{c['nps']:+.1f} (SE {c['std_error']:.1f})",
            ],
        ]
        html += _table(["Arm", "Answers", "Promoters", "Detractors", "NPS"], rows)
        html += (
            f"<p>NPS difference <strong>{item['difference']:+.1f} points</strong> (95% CI "
            f"{item['conf_low']:+.1f} to {item['conf_high']:+.1f}).</p>"
        )
        html += _worth_html(item)
    return html


def csat_html(res: ExperimentResults) -> str:
    """Share of satisfied customers by arm and the difference in points."""
    html = ""
    for item in (res.long_term or {}).get("csat") or []:
        html += (
            f"<p>Satisfied ({escape(item['column'])} ≥ {item['satisfied_from']:g}): "
            f"{percent(item['treated_share'])} of {item['n_treated']:,} treated against "
            f"{percent(item['control_share'])} of {item['n_control']:,} controls, a difference "
            f"of <strong>{item['difference']:+.1f} points</strong> (95% CI "
            f"{item['conf_low']:+.1f} to {item['conf_high']:+.1f}).</p>"
        )
        html += _worth_html(item)
    return html


def _worth_html(item: dict[str, Any]) -> str:
    """What a satisfaction change is worth in long-term revenue through the (linear) index."""
    worth = item.get("worth_in_revenue")
    if not worth:
        return ""
    return (
        f"<p>Through the surrogate index, the change in {escape(item['column'])} is "
        f"worth {worth['estimate']:,.2f} of long-term revenue per treated customer "
        f"(95% CI {worth['conf_low']:,.2f} to {worth['conf_high']:,.2f}).</p>"
    )


def clv_parameters_html(res: ExperimentResults) -> str:
    """Fitted BG/NBD and Gamma–Gamma parameters with standard errors."""
    details = res.headline().details
    rows = []
    for model, label in (("bgnbd", "BG/NBD"), ("gamma_gamma", "Gamma–Gamma")):
        fit = details[model]
        for name, value in fit["params"].items():
            rows.append([label, name, f"{value:,.4g}", f"{fit['std_errors'][name]:,.3g}"])
        rows.append([label, "log-likelihood", f"{fit['log_likelihood']:,.2f}", ""])
    return _table(["Model", "Parameter", "Estimate", "SE"], rows)


def clv_summary_html(res: ExperimentResults) -> str:
    """Lifetime value per customer and across customers."""
    details = res.headline().details
    cur_rows: list[list[Any]] = []
    clv = details["clv"]
    cur_rows.append(
        [
            f"Mean {clv['horizon_months']}-month CLV per customer",
            f"{clv['estimate']:,.2f}",
            f"{clv['conf_low']:,.2f} to {clv['conf_high']:,.2f}",
        ]
    )
    diff = details.get("difference")
    if diff:
        cur_rows.append(
            [
                "Difference between the groups (lifetime value of the service)",
                f"{diff['estimate']:,.2f}",
                f"{diff['conf_low']:,.2f} to {diff['conf_high']:,.2f}",
            ]
        )
    customers = details["customers"]
    q = customers["clv_quantiles"]
    cur_rows.append(["Median customer", f"{q['0.5']:,.2f}", ""])
    cur_rows.append(["90th percentile customer", f"{q['0.9']:,.2f}", ""])
    cur_rows.append(
        [
            "Share of value in the top 10% of customers",
            percent(customers["clv_top_decile_share"]),
            "",
        ]
    )
    cur_rows.append(
        ["Mean probability still active", percent(customers["mean_probability_alive"]), ""]
    )
    note = f'<p class="small">Interval: {escape(clv["method"])}.</p>'
    return _table(["Quantity", "Estimate", "95% CI"], cur_rows) + note


def _num(x: float | None, spec: str) -> str:
    return "" if x is None else format(x, spec)
