"""The uplift report's pieces (plots_uplift, report_html_uplift, the shared report_html hooks)
on a small hand-made results.json: fast, and every field the runner writes is exercised."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from causal import plots, plots_uplift
from causal import report_html as view
from causal import report_html_uplift as uplift_view
from causal.report_index import collect
from causal.results import ExperimentResults

N_CUSTOMERS, N_EVALUATED = 2_000, 600


def _stat(estimate: float, se: float) -> dict[str, float]:
    return {
        "estimate": estimate,
        "std_error": se,
        "conf_low": estimate - 1.96 * se,
        "conf_high": estimate + 1.96 * se,
    }


def _learner(name: str, qini: float, *, bins: int = 5) -> dict[str, Any]:
    x = np.linspace(0, N_EVALUATED, 21)
    curve = (x * (1 - x / N_EVALUATED) * qini * 2 + x * 0.05).round(3).tolist()
    rows = []
    for b in range(1, bins + 1):
        predicted = 0.12 - 0.03 * (b - 1)
        observed = None if b == 3 else predicted + 0.01
        rows.append(
            {
                "bin": b,
                "n": N_EVALUATED // bins,
                "n_treated": 60,
                "n_control": 60,
                "predicted_uplift": predicted,
                "observed_uplift": observed,
                "std_error": None if observed is None else 0.03,
                "conf_low": None if observed is None else observed - 0.06,
                "conf_high": None if observed is None else observed + 0.06,
            }
        )
    return {
        "estimator": name,
        "estimand": "Qini coefficient",
        "outcome": "purchased",
        **_stat(qini, 0.015),
        "conf_level": 0.95,
        "p_value": 0.001,
        "n_units": N_EVALUATED,
        "n_treated": 300,
        "diagnostics": [],
        "details": {
            "auuc": _stat(qini * 0.8, 0.012),
            "bootstrap_replications": 200,
            "bins": rows,
            "qini_curve": {"x": x.tolist(), "y": curve},
            "uplift_curve": {"x": x.tolist(), "y": [2 * v for v in curve]},
            "mean_predicted_uplift": 0.05,
            "fit_seconds": 1.23,
            "evaluated_on": "holdout",
        },
    }


def _policy() -> dict[str, Any]:
    share = np.linspace(0, 1, 11)
    est = 0.6 * share * (1 - 1.8 * share)
    return {
        "learner": "dr_learner",
        "rule": "treat customers whose predicted uplift × 30 EUR exceeds the contact cost of "
        "2.5 EUR (uplift above 0.08333)",
        "budget": None,
        "n_evaluated": N_EVALUATED,
        "n_targeted": 150,
        "share_targeted": 0.25,
        "per_customer": {
            "policy": _stat(0.45, 0.15),
            "treat_all": _stat(-1.03, 0.32),
            "policy_vs_treat_all": _stat(1.48, 0.28),
        },
        "average_effect": _stat(0.049, 0.011),
        "profit_curve": {
            "share": share.round(10).tolist(),
            "estimate": est.tolist(),
            "conf_low": (est - 0.2).tolist(),
            "conf_high": (est + 0.2).tolist(),
        },
        "profile": [
            {
                "feature": "support_tickets_12m",
                "targeted": 2.07,
                "others": 0.70,
                "smd": 1.38,
                "sentence": "Targeted customers have higher support_tickets_12m: 2.07 on average "
                "against 0.703 for the others.",
            },
            {
                "feature": "segment = <b>pro</b>",
                "targeted": 0.45,
                "others": 0.2,
                "smd": 0.5,
                "sentence": "45% of targeted customers have segment = <b>pro</b>, against 20% "
                "of the others.",
            },
        ],
        "priced": True,
        "n_customers": N_CUSTOMERS,
        "n_targeted_all": 498,
    }


def _value_line(name: str, label: str, stat: dict[str, float], shift: float = 0.0):
    return {
        "name": name,
        "label": label,
        "estimate": shift + N_CUSTOMERS * stat["estimate"],
        "std_error": N_CUSTOMERS * stat["std_error"],
        "conf_low": shift + N_CUSTOMERS * stat["conf_low"],
        "conf_high": shift + N_CUSTOMERS * stat["conf_high"],
    }


def uplift_results_dict(*, priced: bool = True) -> dict[str, Any]:
    """A results.json of an uplift run, shaped as causal.designs.uplift_run writes it."""
    learners = [_learner("s_learner", 0.04), _learner("dr_learner", 0.09)]
    learners.append(_learner("causal_forest", 0.08))
    pol = _policy()
    pol["priced"] = priced
    learners[1]["details"]["policy"] = pol
    per, cost = pol["per_customer"], 2.5 * 0.25 * N_CUSTOMERS
    value = {
        "currency": "EUR",
        "estimator": "dr_learner",
        "population": N_CUSTOMERS,
        "population_label": "Targeting {n} customers",
        "conf_level": 0.95,
        "lines": [
            _value_line("gross_profit", "Incremental gross profit", per["policy"], cost),
            {
                "name": "cost",
                "label": "Cost of the contacts",
                "estimate": cost,
                "std_error": 0.0,
                "conf_low": cost,
                "conf_high": cost,
            },
            _value_line("net_value", "Net value of the policy", per["policy"]),
            _value_line("treat_all_net_value", "Net value of treating everyone", per["treat_all"]),
            _value_line("policy_vs_treat_all", "Policy minus everyone", per["policy_vs_treat_all"]),
        ],
        "roi_defined": False,
        "method": "doubly robust policy value on the evaluation customers",
    }
    money = {"value_per_unit": 30.0, "cost_per_contact": 2.5, "currency": "EUR"}
    return {
        "schema_version": 1,
        "experiment": {
            "name": "tiny_targeting",
            "title": "Whom to call <script>alert(1)</script>",
            "question": "Which customers should get the call?",
            "design": "uplift",
            "design_settings": {
                "kind": "uplift",
                "features": ["support_tickets_12m", "segment"],
                "categorical": ["segment"],
                "learners": ["s_learner", "dr_learner", "causal_forest"],
                "policy_learner": "dr_learner",
                "planned_treated_share": 0.5,
                "evaluation": "holdout",
                "holdout_share": 0.3,
                "folds": 3,
                "bins": 5,
                "bootstrap_replications": 200,
                "money": money if priced else None,
            },
            "unit": "customer_id",
            "treatment": "treated",
            "outcomes": [{"column": "purchased", "kind": "binary", "label": "Bought"}],
            "alpha": 0.05,
            "spec_path": "experiments/tiny_targeting.yaml",
            "spec_hash": "0" * 64,
            "artifacts": ["uplift_scores.parquet"],
        },
        "primary": {"outcome": "purchased", "estimator": "dr_learner"},
        "results": learners,
        "segments": [],
        "power": [],
        "value": value if priced else None,
        "checks": [
            {"name": "sample_ratio", "status": "pass", "detail": "50% treated", "table": []},
            {"name": "learner_comparison", "status": "pass", "detail": "3 learners", "table": []},
        ],
        "provenance": {
            "created_at": "2026-11-23T18:03:17+00:00",
            "data_fingerprint": "f" * 64,
            "n_rows": N_CUSTOMERS,
            "seed": 1,
        },
    }


def uplift_results(*, priced: bool = True) -> ExperimentResults:
    return ExperimentResults.from_dict(uplift_results_dict(priced=priced))


@pytest.fixture
def res() -> ExperimentResults:
    return uplift_results()


# --- headline -----------------------------------------------------------------------------------


def test_headline_is_the_policy_value_not_the_qini(res):
    html = view.headline_html(res)  # the generic entry point hands uplift runs over
    net = next(line for line in res.value["lines"] if line["name"] == "net_value")
    assert f'id="headline-net-value" data-value="{net["estimate"]!r}"' in html
    assert "headline-effect" not in html
    assert "Contacting everyone instead would lose money" in html
    assert "Targeting beats contacting everyone by €2,960" in html
    assert "contacts 498 of 2,000 customers (24.9%)" in html
    assert "ranks customers better than random targeting" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_headline_without_money_is_in_outcome_units():
    html = view.headline_html(uplift_results(priced=False))
    assert 'id="headline-policy-value" data-value="0.45"' in html
    assert "45.0 pts" in html and "€" not in html


def test_headline_says_when_the_ranking_is_no_better_than_random():
    data = uplift_results_dict()
    head = data["results"][1]
    head["conf_low"], head["conf_high"] = -0.01, 0.05
    data["value"]["lines"][4].update(conf_low=-10.0, conf_high=5_000.0)
    html = view.headline_html(ExperimentResults.from_dict(data))
    assert "cannot be told apart from random targeting" in html
    assert "The data cannot tell targeting from contacting everyone" in html


# --- tables and sentences -----------------------------------------------------------------------


def test_learner_table_marks_the_policy_learner(res):
    html = uplift_view.learners_html(res)
    for name in ("S-learner", "DR-learner", "Causal forest"):
        assert name in html
    assert "<strong>DR-learner</strong> (policy)" in html
    assert "0.09" in html and "200 stratified bootstrap draws" in html


def test_bins_table_shows_missing_observed_uplift_as_na(res):
    html = uplift_view.bins_html(res)
    assert html.count("<tr>") == 6  # header and five bins
    assert "n/a" in html and "Predicted uplift (pts)" in html


def test_money_table_scales_per_customer_to_all_customers(res):
    html = uplift_view.money_html(res)
    assert "All 2,000 customers" in html
    assert "€0.45" in html and "€900" in html  # 0.45 per customer x 2,000
    assert "-€2,060" in html  # contacting everyone: -1.03 x 2,000
    assert "Treat customers whose predicted uplift × 30 EUR" in html


def test_targeted_sentences_are_escaped(res):
    html = uplift_view.targeted_html(res)
    assert html.count("<li>") == 2
    assert "&lt;b&gt;pro&lt;/b&gt;" in html and "<b>pro</b>" not in html


def test_scored_file_lists_the_columns_of_the_file(res, tmp_path):
    import pandas as pd

    pd.DataFrame({"customer_id": [1], "predicted_uplift": [0.1], "extra": [1]}).to_parquet(
        tmp_path / "uplift_scores.parquet"
    )
    html = uplift_view.scored_file_html(res, tmp_path)
    assert "<code>extra</code>" in html and "<code>treat</code>" not in html
    html = uplift_view.scored_file_html(res, tmp_path / "elsewhere")
    assert "<code>treat</code>" in html and "next to results.json" in html


def test_methods_do_not_mix_up_designs(res):
    import causal.report_html_obs  # noqa: F401  (adds the observational dr_learner entry)

    uplift = view.methods_html(res)
    assert "DR-learner (econml DRLearner)" in uplift and "S-learner" in uplift
    observational = ExperimentResults.from_dict(
        {**uplift_results_dict(), "experiment": {"design": "observational"}}
    )
    assert "DR-learner (econml)" in view.methods_html(observational)
    assert "DRLearner" not in view.methods_html(observational)
    assert "Athey & Wager" in uplift_view.evaluation_methods_html(res)


def test_generic_value_table_reads_an_uplift_value_block(res):
    html = view.value_html(res)
    assert "Net value of the policy" in html and "ROI" not in html


def test_index_row_names_the_qini(tmp_path):
    folder = tmp_path / "tiny_targeting"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(uplift_results_dict()), encoding="utf-8")
    (row,) = collect(tmp_path)
    assert row.effect.startswith("Qini coefficient for purchased: 0.09")
    assert row.net_value.startswith("€900")


# --- plots ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draw",
    [
        plots_uplift.qini_plot,
        plots_uplift.uplift_curve_plot,
        plots_uplift.bins_plot,
        plots_uplift.calibration_plot,
        plots_uplift.profit_plot,
    ],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("priced", [True, False], ids=["priced", "unpriced"])
def test_every_plot_is_labelled(draw, priced):
    fig = draw(uplift_results(priced=priced))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title(loc="left") and ax.get_xlabel() and ax.get_ylabel()
    assert plots.figure_html(fig, alt="a plot").startswith('<img alt="a plot"')


def test_curves_have_every_learner_and_random_targeting(res):
    ax = plots_uplift.qini_plot(res).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "random targeting" in labels
    assert any(label.startswith("DR-learner") and "policy" in label for label in labels)
    assert sum(label.startswith(("S-learner", "Causal forest")) for label in labels) == 2


def test_profit_plot_marks_the_cut_off(res):
    ax = plots_uplift.profit_plot(res).axes[0]
    xs = [line.get_xdata() for line in ax.get_lines()]
    assert any(len(x) == 2 and x[0] == x[1] == pytest.approx(25.0) for x in xs)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "policy: top 25%" in texts and "everyone" in texts and "no one" in texts


def test_plots_survive_bins_without_observed_uplift():
    data = uplift_results_dict()
    for b in data["results"][1]["details"]["bins"]:
        b.update(observed_uplift=None, conf_low=None, conf_high=None)
    res = ExperimentResults.from_dict(copy.deepcopy(data))
    assert isinstance(plots_uplift.bins_plot(res), Figure)
    assert isinstance(plots_uplift.calibration_plot(res), Figure)
