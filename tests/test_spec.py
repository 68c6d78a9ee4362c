"""Spec loading: examples load, errors are located and helpful, the schema is exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from causal.errors import SpecError
from causal.spec import json_schema, load_spec

ROOT = Path(__file__).resolve().parents[1]
WARRANTY = ROOT / "experiments" / "extended_warranty_pilot.yaml"
NSW = ROOT / "experiments" / "lalonde_nsw_experiment.yaml"


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def spec_text(**replace):
    text = NSW.read_text().replace("../causal/", str(ROOT / "causal") + "/")
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    "path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_example_spec_loads(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.path == path.resolve()


def test_spec_is_frozen_and_hash_is_stable():
    spec = load_spec(WARRANTY)
    with pytest.raises(ValidationError):
        spec.seed = 1
    assert spec.spec_hash() == load_spec(WARRANTY).spec_hash()
    assert len(spec.spec_hash()) == 64


def test_default_estimators_skip_adjusted_ones_without_covariates(tmp_path):
    text = spec_text(
        **{
            "covariates: [age, educ, black, hisp, marr, nodegree, re74, re75]\n": "",
            "estimators: [difference_in_means, lin, relative_lift]\n": "",
        }
    )
    spec = load_spec(write(tmp_path, text))
    assert spec.estimator_names == ("difference_in_means", "relative_lift")


def test_unknown_key_suggests_the_right_one_with_line(tmp_path):
    text = spec_text(**{"  start_date: 1976-01-01": "  start_date: 1976-01-01\n  fixed_costs: 10"})
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, text))
    line = text.splitlines().index("  fixed_costs: 10") + 1
    assert f"spec.yaml:{line}: intervention.fixed_costs: unknown key" in str(err.value)
    assert "did you mean 'fixed_cost'?" in str(err.value)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(SpecError, match="unknown key 'outcome'; did you mean 'outcomes'"):
        load_spec(write(tmp_path, spec_text() + "outcome: re78\n"))


def test_yaml_syntax_error_has_line_number(tmp_path):
    text = spec_text(**{"unit: unit_id": "unit: [unit_id"})
    with pytest.raises(SpecError, match=r"spec\.yaml:\d+: YAML syntax error"):
        load_spec(write(tmp_path, text))


def test_missing_file():
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec("experiments/does_not_exist.yaml")


def test_planned_design_is_not_available_yet(tmp_path):
    with pytest.raises(
        SpecError, match=r"design\.kind 'survival' is planned but not available yet"
    ):
        load_spec(write(tmp_path, spec_text(**{"kind: ab_test": "kind: survival"})))


def test_unknown_estimator_suggestion(tmp_path):
    text = spec_text(**{"[difference_in_means, lin, relative_lift]": "[difference_in_mean]"})
    with pytest.raises(SpecError, match="did you mean 'difference_in_means'"):
        load_spec(write(tmp_path, text))


def test_missing_required_field_is_named(tmp_path):
    with pytest.raises(SpecError, match="treatment: required field is missing"):
        load_spec(write(tmp_path, spec_text(**{"treatment: treat\n": ""})))


def test_wrong_type_names_field_and_value(tmp_path):
    text = spec_text(**{"start_date: 1976-01-01": "start_date: someday"})
    with pytest.raises(SpecError, match=r"intervention\.start_date: .*'someday'"):
        load_spec(write(tmp_path, text))


def test_lin_without_covariates_is_a_spec_error(tmp_path):
    text = spec_text(**{"covariates: [age, educ, black, hisp, marr, nodegree, re74, re75]\n": ""})
    with pytest.raises(SpecError, match="'lin' adjusts for pre-period covariates"):
        load_spec(write(tmp_path, text))


def test_value_outcome_must_be_an_outcome(tmp_path):
    text = spec_text() + "value:\n  outcome: re75\n  gross_margin: 1.0\n"
    with pytest.raises(SpecError, match=r"value\.outcome: 're75' is not one of the outcomes"):
        load_spec(write(tmp_path, text))


def test_a_ratio_cannot_be_priced(tmp_path):
    text = spec_text(**{"  estimator: difference_in_means": "  estimator: relative_lift"})
    text += "value:\n  outcome: re78\n  gross_margin: 1.0\n"
    with pytest.raises(SpecError, match="is a ratio and cannot be turned into money"):
        load_spec(write(tmp_path, text))


def test_source_needs_path_or_simulator(tmp_path):
    text = spec_text(**{"      path: ": "      simulator: x\n      path: "})
    with pytest.raises(SpecError, match="either 'path'"):
        load_spec(write(tmp_path, text))


def test_json_schema_describes_the_spec():
    schema = json_schema()
    json.dumps(schema)
    assert {"intervention", "design", "outcomes", "data", "value"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
