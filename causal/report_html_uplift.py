"""HTML pieces of the uplift (targeting) report, built from ``results.json`` (escaped, no
estimation).

The uplift design's headline Result is the policy learner's held-out Qini coefficient: how
well its ranking beats random targeting. What a reader wants first is what the targeting rule
earns, so the headline here is the policy's value (``details.policy`` of that Result, and the
``value`` block when the spec prices the outcome), with the Qini as the evidence behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from causal.narrative import money
from causal.report_html import STYLE, _table, badge
from causal.results import ExperimentResults, Result
from causal.value import line

LEARNER_NAMES = {
    "s_learner": "S-learner",
    "t_learner": "T-learner",
    "x_learner": "X-learner",
    "dr_learner": "DR-learner",
    "causal_forest": "Causal forest",
}

# What each column of the scored file means (written by causal.designs.uplift_run).
SCORED_COLUMNS = {
    "predicted_uplift": "the policy learner's predicted change in the outcome if contacted",
    "rank": "1 = the customer with the highest predicted uplift",
    "treat": "1 = the policy says contact this customer, 0 = do not",
    "scored_out_of_sample": (
        "true when the customer's score comes from models that never saw them; false for the "
        "customers the models were trained on (their scores are in-sample)"
    ),
    "expected_net_value": "predicted uplift × value per unit − contact cost, per customer",
}


def learner_name(name: str) -> str:
    """Display name of an uplift learner.

    Examples
    --------
    >>> learner_name("dr_learner"), learner_name("my_learner")
    ('DR-learner', 'my_learner')
    """
    return LEARNER_NAMES.get(name, name)


def policy(res: ExperimentResults) -> Mapping[str, Any]:
    """The targeting policy of the primary (policy) learner: ``details.policy`` of the headline."""
    return res.headline().details["policy"]


def is_binary(res: ExperimentResults) -> bool:
    """Whether the modelled outcome is 0/1, so uplift reads as percentage points."""
    outcome = res.primary["outcome"]
    kinds = {o["column"]: o.get("kind") for o in res.experiment.get("outcomes", [])}
    return kinds.get(outcome) == "binary"


def uplift_text(x: float | None, *, binary: bool, unit: bool = True) -> str:
    """An uplift in words: percentage points for a 0/1 outcome, outcome units otherwise
    (``unit=False`` leaves out " pts", for table columns whose header names the unit).

    Examples
    --------
    >>> uplift_text(0.0491, binary=True), uplift_text(-1.25, binary=False)
    ('4.9 pts', '-1.25')
    >>> uplift_text(0.0491, binary=True, unit=False), uplift_text(None, binary=True)
    ('4.9', 'n/a')
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    if not binary:
        return f"{x:,.3g}"
    return f"{100 * x:,.1f}" + (" pts" if unit else "")


# --- headline ------------------------------------------------------------------------------------


def headline_html(res: ExperimentResults) -> str:
    """Title, question, what the policy earns against contacting no one and everyone, who it
    targets, how good its ranking is, and the worst check status.

    With money (a ``value`` block) the big number is the policy's net value for every customer
    scored (``id="headline-net-value"``); without, its gain in the outcome per customer
    (``id="headline-policy-value"``). Each carries its exact value in ``data-value``.
    """
    exp = res.experiment
    head = res.headline()
    pol = policy(res)
    per = pol["per_customer"]
    level = f"{head.conf_level:.0%}"
    parts = [
        STYLE,
        '<div class="causal">',
        f"<h1>{escape(exp['title'])}</h1>",
        f'<p class="question">{escape(exp["question"])}</p>',
    ]
    n = pol["n_customers"]
    if res.value is not None:
        cur = res.value["currency"]
        net = line(res.value, "net_value")
        everyone = line(res.value, "treat_all_net_value")
        versus = line(res.value, "policy_vs_treat_all")
        parts.append(
            f'<p class="big">Targeting earns <strong><span id="headline-net-value" '
            f'data-value="{net["estimate"]!r}">{escape(money(net["estimate"], cur))}</span>'
            f"</strong> net ({level} CI {escape(_range(net, cur))}) across {n:,} customers, "
            "against contacting no one.</p>"
        )
        parts.append(
            f"<p>{escape(_everyone_sentence(everyone, cur, level))} "
            f"{escape(_versus_sentence(versus, cur, level))}</p>"
        )
    else:
        fmt = _outcome_fmt(res)
        gain = per["policy"]
        parts.append(
            f'<p class="big">Targeting changes {escape(head.outcome)} by <strong><span '
            f'id="headline-policy-value" data-value="{gain["estimate"]!r}">'
            f"{escape(fmt(gain['estimate']))}</span></strong> per customer ({level} CI "
            f"{escape(fmt(gain['conf_low']))} to {escape(fmt(gain['conf_high']))}), against "
            "contacting no one.</p>"
        )
        parts.append(
            f"<p>{escape(_versus_sentence(per['policy_vs_treat_all'], None, level, fmt=fmt))}</p>"
        )
    parts.append(f"<p>{escape(who_sentence(res))}</p>")
    parts.append(f"<p>{escape(ranking_sentence(head))}</p>")
    parts.append(f"<p>Design checks: {badge(res.worst_status)}</p></div>")
    return "\n".join(parts)


def who_sentence(res: ExperimentResults, *, top: int = 2) -> str:
    r"""One line on who the policy targets: how many, and the features that set them apart.

    Examples
    --------
    >>> from causal.results import Result
    >>> pol = {"n_customers": 200, "n_targeted_all": 50, "learner": "t_learner",
    ...        "profile": [{"feature": "tickets", "targeted": 2.0, "others": 0.5, "smd": 1.2,
    ...                     "sentence": ""}]}
    >>> r = Result("t_learner", "Qini coefficient", "y", 0.1, 0.02, 0.06, 0.14, 0.0, 60, 30,
    ...            details={"policy": pol})
    >>> res = ExperimentResults({}, (r,), {"outcome": "y", "estimator": "t_learner"})
    >>> print(who_sentence(res).replace("; ", ";\n"))
    The policy contacts 50 of 200 customers (25.0%), ranked by the T-learner;
    they have higher tickets (2 on average against 0.5 for the others).
    """
    pol = policy(res)
    n, k = pol["n_customers"], pol["n_targeted_all"]
    share = k / n if n else math.nan
    text = (
        f"The policy contacts {k:,} of {n:,} customers ({share:.1%}), ranked by the "
        f"{learner_name(pol['learner'])}"
    )
    traits = [_trait(row) for row in pol.get("profile", [])[:top]]
    if traits and 0 < k < n:
        text += "; they have " + " and ".join(traits)
    return text + "."


def ranking_sentence(head: Result) -> str:
    """Whether the policy learner's ranking beats random targeting, from its Qini interval.

    Examples
    --------
    >>> r = Result("dr_learner", "Qini coefficient", "y", 0.093, 0.015, 0.063, 0.12, 0.0,
    ...            6000, 3000)
    >>> ranking_sentence(r)[:60]
    'On 6,000 customers it was not trained on, the DR-learner ran'
    """
    level = f"{head.conf_level:.0%}"
    qini = (
        f"Qini coefficient {_num(head.estimate)}, {level} CI {_num(head.conf_low)} to "
        f"{_num(head.conf_high)}; 0 is random targeting, 1 a perfect ranking"
    )
    if head.conf_low > 0:
        verdict = "ranks customers better than random targeting"
    elif head.conf_high < 0:
        verdict = "ranks customers worse than random targeting"
    else:
        verdict = "cannot be told apart from random targeting"
    return (
        f"On {head.n_units:,} customers it was not trained on, the "
        f"{learner_name(head.estimator)} {verdict} ({qini})."
    )


def _everyone_sentence(stat: Mapping[str, float], cur: str, level: str) -> str:
    ci = f"({level} CI {_range(stat, cur)})"
    if stat["conf_high"] < 0:
        return f"Contacting everyone instead would lose money: {money(stat['estimate'], cur)} {ci}."
    if stat["conf_low"] > 0:
        return f"Contacting everyone would also pay: {money(stat['estimate'], cur)} {ci}."
    return (
        f"Contacting everyone would come to {money(stat['estimate'], cur)} {ci}, which the data "
        "cannot tell from breaking even."
    )


def _versus_sentence(stat, cur: str | None, level: str, *, fmt=None) -> str:
    fmt = fmt or (lambda x: money(x, cur))
    ci = f"({level} CI {fmt(stat['conf_low'])} to {fmt(stat['conf_high'])})"
    if stat["conf_low"] > 0:
        return f"Targeting beats contacting everyone by {fmt(stat['estimate'])} {ci}."
    if stat["conf_high"] < 0:
        return f"Contacting everyone beats targeting by {fmt(-stat['estimate'])} {ci}."
    return (
        f"The data cannot tell targeting from contacting everyone: the difference is "
        f"{fmt(stat['estimate'])} {ci}."
    )


def _trait(row: Mapping[str, Any]) -> str:
    feature = str(row["feature"])
    if " = " in feature:  # a categorical level: shares of customers
        return f"{feature} more often ({row['targeted']:.0%} against {row['others']:.0%})"
    word = "higher" if row["targeted"] >= row["others"] else "lower"
    return (
        f"{word} {feature} ({_num(row['targeted'])} on average against "
        f"{_num(row['others'])} for the others)"
    )


# --- learners and bins ---------------------------------------------------------------------------


def learners_html(res: ExperimentResults) -> str:
    """Every learner on the held-out customers: Qini and AUUC with intervals, fit time."""
    head = res.headline()
    rows = []
    for r in res.results:
        auuc = r.details.get("auuc", {})
        name = escape(learner_name(r.estimator))
        if r.estimator == head.estimator:
            name = f"<strong>{name}</strong> (policy)"
        rows.append(
            [
                name,
                escape(_num(r.estimate)),
                escape(f"{_num(r.conf_low)} to {_num(r.conf_high)}"),
                escape(_num(auuc.get("estimate"))),
                escape(f"{_num(auuc.get('conf_low'))} to {_num(auuc.get('conf_high'))}"),
                escape(f"{r.details.get('fit_seconds', math.nan):,.1f}"),
            ]
        )
    level = f"{head.conf_level:.0%} CI"
    header = ["Learner", "Qini", level, "AUUC", level, "Fit seconds"]
    replications = head.details.get("bootstrap_replications")
    boot = f"{replications:,} stratified bootstrap draws" if replications else "the bootstrap"
    note = (
        f"<p class='small'>Judged on {head.n_units:,} customers none of the learners was "
        f"trained on ({escape(str(head.details.get('evaluated_on', '')))}). Qini and AUUC are "
        "the areas between each curve and random targeting, as a share of a perfect ranking's "
        f"(0 = random, 1 = perfect); intervals are percentiles of {boot}.</p>"
    )
    return _table(header, rows, raw=True) + _div(note)


def bins_html(res: ExperimentResults) -> str:
    """The policy learner's uplift by bin: predicted against observed, with intervals."""
    head = res.headline()
    binary = is_binary(res)
    rows = [
        [
            str(b["bin"]),
            f"{b['n']:,}",
            f"{b['n_treated']:,}",
            f"{b['n_control']:,}",
            uplift_text(b["predicted_uplift"], binary=binary, unit=False),
            uplift_text(b.get("observed_uplift"), binary=binary, unit=False),
            _ci_text(b, binary),
        ]
        for b in head.details.get("bins", [])
    ]
    if not rows:
        return _div("<p>No uplift bins were recorded.</p>")
    unit = " (pts)" if binary else ""
    header = [
        "Bin",
        "Customers",
        "Contacted",
        "Not contacted",
        f"Predicted uplift{unit}",
        f"Observed uplift{unit}",
        f"{head.conf_level:.0%} CI",
    ]
    points = "in percentage points, " if binary else ""
    note = (
        f"<p class='small'>Bin 1 holds the held-out customers with the highest predicted "
        f"uplift. Observed uplift: mean {escape(head.outcome)} of the contacted minus the not "
        f"contacted customers in the bin ({points}normal interval); n/a where an arm is "
        "empty.</p>"
    )
    return _table(header, rows) + _div(note)


def _ci_text(b: Mapping[str, Any], binary: bool) -> str:
    if b.get("observed_uplift") is None or b.get("conf_low") is None:
        return "n/a"
    low = uplift_text(b["conf_low"], binary=binary, unit=False)
    return f"{low} to {uplift_text(b['conf_high'], binary=binary, unit=False)}"


# --- money -------------------------------------------------------------------------------------


def money_html(res: ExperimentResults) -> str:
    """Policy, contacting everyone, and their difference: per customer and for all customers
    scored; the rule, its cut-off and the average effect below."""
    pol = policy(res)
    per = pol["per_customer"]
    n = pol["n_customers"]
    head = res.headline()
    level = f"{head.conf_level:.0%} CI"
    if res.value is not None:
        cur = res.value["currency"]
        unit = (lambda x: money(x, cur, precise=True)), (lambda x: money(x, cur))
    else:
        fmt = _outcome_fmt(res)
        unit = fmt, (lambda x: f"{x:,.0f}")
    one, total = unit
    labels = (
        ("policy", "Targeting (the policy)"),
        ("treat_all", "Contacting everyone"),
        ("policy_vs_treat_all", "Targeting minus contacting everyone"),
    )
    rows = [["Contacting no one (reference)", one(0.0), "", total(0.0), ""]]
    for key, label in labels:
        s = per[key]
        rows.append(
            [
                label,
                one(s["estimate"]),
                f"{one(s['conf_low'])} to {one(s['conf_high'])}",
                total(n * s["estimate"]),
                f"{total(n * s['conf_low'])} to {total(n * s['conf_high'])}",
            ]
        )
    header = ["Policy", "Per customer", level, f"All {n:,} customers", level]
    return _table(header, rows) + _div(_money_note(res, pol))


def _money_note(res: ExperimentResults, pol: Mapping[str, Any]) -> str:
    head = res.headline()
    binary = is_binary(res)
    ate = pol["average_effect"]
    level = f"{head.conf_level:.0%}"
    parts = [f"<p><strong>Rule:</strong> {escape(_sentence(pol['rule']))}"]
    if pol.get("budget"):
        parts.append(f" Budget: {escape(str(pol['budget']))}.")
    parts.append("</p>")
    verb = "raised" if ate["conf_low"] > 0 else "lowered" if ate["conf_high"] < 0 else "changed"
    size = ate["estimate"] if verb != "lowered" else -ate["estimate"]
    average = (
        f"On average the offer {verb} {head.outcome} by {uplift_text(size, binary=binary)} per "
        f"customer ({level} CI {uplift_text(ate['conf_low'], binary=binary, unit=False)} to "
        f"{uplift_text(ate['conf_high'], binary=binary)})"
    )
    money_block = res.experiment.get("design_settings", {}).get("money")
    if money_block:
        cur = money_block["currency"]
        worth = ate["estimate"] * money_block["value_per_unit"]
        cost = money_block["cost_per_contact"]
        average += (
            f", worth {money(worth, cur, precise=True)} per customer against a contact cost of "
            f"{money(cost, cur, precise=True)}"
        )
    parts.append(
        f"<p>{escape(average)}. Targeting contacts only the customers whose predicted gain pays "
        "for the contact.</p>"
    )
    small = [
        f"Priced on the {pol['n_evaluated']:,} held-out customers with doubly robust scores "
        f"(their own outcomes, never seen by the learner), then scaled to all "
        f"{pol['n_customers']:,} customers scored."
    ]
    if res.value is not None:
        cur = res.value["currency"]
        gross, cost = line(res.value, "gross_profit"), line(res.value, "cost")
        small.append(
            f"Targeting's net value is its gross profit of {money(gross['estimate'], cur)} "
            f"({level} CI {_range(gross, cur)}) minus {money(cost['estimate'], cur)} of "
            "contacts."
        )
    else:
        small.append("No money block in the spec: amounts are in units of the outcome.")
    parts.append(f"<p class='small'>{escape(' '.join(small))}</p>")
    return "".join(parts)


# --- who, scored file, methods -------------------------------------------------------------------


def targeted_html(res: ExperimentResults) -> str:
    """Who the policy contacts: the features that differ most from the others, as sentences."""
    pol = policy(res)
    rows = pol.get("profile", [])
    if not rows:
        return _div("<p>The policy contacts everyone or no one, so there is no profile.</p>")
    items = "".join(f"<li>{escape(r['sentence'])}</li>" for r in rows)
    note = (
        f"<p class='small'>The {len(rows)} features that differ most between the "
        f"{pol['n_targeted']:,} contacted and the {pol['n_evaluated'] - pol['n_targeted']:,} other "
        "held-out customers (by standardised mean difference). They describe whom the rule "
        "picks, not why the offer works for them.</p>"
    )
    return _div(f"<ul>{items}</ul>{note}")


def scored_file_html(res: ExperimentResults, folder: str | Path | None = None) -> str:
    """Where the scored customers are and what their columns mean, for the CRM.

    ``folder`` is the report folder; when the file is there its columns are read from it (the
    file's schema only), else the known columns are listed.
    """
    exp = res.experiment
    names = list(exp.get("artifacts", []))
    if not names:
        return _div("<p>This run wrote no scored file.</p>")
    name = names[0]
    pol = policy(res)
    columns = [exp.get("unit", "customer_id"), *SCORED_COLUMNS]
    path = Path(folder) / name if folder is not None else None
    if path is not None and path.is_file():
        columns = _parquet_columns(path) or columns
    descriptions = {exp.get("unit", "customer_id"): "the customer", **SCORED_COLUMNS}
    rows = [[f"<code>{escape(c)}</code>", escape(descriptions.get(c, ""))] for c in columns]
    where = "next to this report" if path is None or path.is_file() else "next to results.json"
    intro = (
        f"<p><code>{escape(name)}</code> ({where}) has one row per customer, "
        f"{pol['n_customers']:,} rows sorted by rank; {pol['n_targeted_all']:,} are marked "
        "<code>treat = 1</code>. "
        "Load it into the CRM to run the campaign; rerun <code>causal run</code> on fresh data "
        "to rescore.</p>"
    )
    return _div(intro) + _table(["Column", "Meaning"], rows, raw=True)


def evaluation_methods_html(res: ExperimentResults) -> str:
    """How learners are judged and the policy priced, and what that assumes."""
    settings = res.experiment.get("design_settings", {})
    head = res.headline()
    randomised = settings.get("planned_treated_share") is not None
    if settings.get("evaluation") == "cross_fit":
        split = (
            f"Customers were split into {settings.get('folds')} folds; every customer was "
            "scored by models fitted on the other folds."
        )
    else:
        split = (
            f"{settings.get('holdout_share', 0):.0%} of the customers in each arm were held out "
            "before any model was fitted; every number in this report about how well a learner "
            "ranks, or what the policy earns, comes from them."
        )
    assignment = (
        "The pilot assigned the offer at random with a known share, so contacted and not "
        "contacted customers are comparable within every group of the features."
        if randomised
        else "The offer was not assigned at random: the comparison rests on no unmeasured "
        "confounding given the features, and Qini and AUUC use inverse-propensity weights."
    )
    value = res.value
    pricing = value["method"] if value else "doubly robust scores averaged over held-out customers"
    items = [
        f"<strong>Held-out evaluation.</strong> {escape(split)}",
        f"<strong>Assignment.</strong> {escape(assignment)}",
        "<strong>Qini and uplift curves.</strong> Customers sorted by predicted uplift, "
        "highest first; the curve adds up the extra outcomes among the top k (contacted minus "
        "not contacted, scaled to the same size). Definitions as scikit-uplift 0.5.1; "
        f"intervals from {head.details.get('bootstrap_replications', 'the')} bootstrap "
        "draws within each arm. Radcliffe (2007); Gutierrez & Gérardy (2017), PMLR 67.",
        f"<strong>Policy value.</strong> {escape(_sentence(pricing))} Each customer's effect "
        "is scored doubly robustly from outcome models fitted on other customers; the rule "
        "was fixed before these scores were computed, so the interval is honest. Athey & "
        "Wager (2021), Econometrica 89(1).",
        "<strong>Assumes:</strong> customers do not affect each other; the customers to be "
        "contacted resemble the pilot's; the offer and its cost stay as in the pilot.",
    ]
    return _div("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


# --- helpers -------------------------------------------------------------------------------------


def _parquet_columns(path: Path) -> list[str] | None:
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception:  # an unreadable file still gets the known columns listed
        return None


def _outcome_fmt(res: ExperimentResults):
    binary = is_binary(res)
    return lambda x: uplift_text(x, binary=binary)


def _range(stat: Mapping[str, float], cur: str) -> str:
    return f"{money(stat['conf_low'], cur)} to {money(stat['conf_high'], cur)}"


def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.3g}"


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _div(html: str) -> str:
    return f'<div class="causal">{html}</div>'
