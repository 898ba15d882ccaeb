"""Model specs: presets, KEY=VALUE overrides and the errors for bad values."""

from __future__ import annotations

import pytest

from models.spec import SpecError, TabularSpec, parse_sets
from models.tasks import TASKS, make_spec, spec_from_dict

REQUIRED = {"zero-shot": {"labels": "great,other"}}  # what a task's spec cannot default


def test_the_default_network_is_the_reference_baseline() -> None:
    assert (TabularSpec().hidden_units, TabularSpec().early_stopping) == ((128,), True)


def test_command_line_values_are_coerced_to_the_field_types() -> None:
    spec = make_spec(
        "fast",
        parse_sets(["hidden_units=64,32", "epochs=3", "learning_rate=0.01", "dropout=0.2", "early_stopping=false"]),
    )
    assert (spec.hidden_units, spec.epochs, spec.learning_rate, spec.dropout, spec.early_stopping) == (
        (64, 32),
        3,
        0.01,
        0.2,
        False,
    )


def test_a_spec_round_trips_through_json_dict() -> None:
    spec = make_spec("thorough", {"seed": 7})
    assert spec_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nope": "1"}, r"Unknown hyperparameter 'nope' for classification\. Expected one of: architecture"),
        ({"epochs": "many"}, r"'many' is not a valid value for epochs\. Expected something like epochs=20\."),
        ({"hidden_units": "0"}, r"'0' is not a valid value for hidden_units"),
        ({"dropout": "1.5"}, r"dropout must be in \[0, 1\)"),
        ({"learning_rate": "0"}, r"learning_rate must be above 0 and at most 10"),
        ({"early_stopping": "maybe"}, r"'maybe' is not a valid value for early_stopping"),
    ],
)
def test_bad_values_say_what_is_expected(overrides, message) -> None:
    with pytest.raises(SpecError, match=message):
        make_spec("balanced", overrides)


def test_a_malformed_set_argument_shows_the_form() -> None:
    with pytest.raises(SpecError, match=r"'epochs' is not KEY=VALUE\. Write it like --set learning_rate=0.001\."):
        parse_sets(["epochs"])


def test_an_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(SpecError, match=r"Unknown preset 'huge'\. Expected one of: fast, balanced, thorough\."):
        make_spec("huge")


@pytest.mark.parametrize("task", list(TASKS))
def test_every_preset_of_every_task_round_trips_through_json(task: str) -> None:
    for preset in ("fast", "balanced", "thorough"):
        spec = make_spec(preset, REQUIRED.get(task), task=task)
        assert spec_from_dict(spec.to_dict(), task=task) == spec


def test_each_task_gets_its_family_spec() -> None:
    assert [type(make_spec(overrides=REQUIRED.get(t), task=t)).__name__ for t in TASKS] == [
        "TabularSpec",
        "TabularSpec",
        "TextSpec",
        "ImageSpec",
        "GptSpec",
        "ZeroShotSpec",
        "SearchSpec",
        "RecommenderSpec",
    ]


def test_a_choice_field_lists_its_choices() -> None:
    with pytest.raises(SpecError, match=r"'rnn' is not a valid value for architecture\. Expected one of: auto, bag"):
        make_spec("balanced", {"architecture": "rnn"}, task="text-classification")


def test_a_field_of_another_family_is_refused() -> None:
    with pytest.raises(SpecError, match=r"Unknown hyperparameter 'hidden_units' for text-generation"):
        make_spec("balanced", {"hidden_units": "64"}, task="text-generation")


def test_the_training_form_offers_target_scaling_to_a_regression_only() -> None:
    from backend.jobs import spec_form

    def names(task: str) -> set[str]:
        return {field["name"] for field in spec_form(task, "balanced")}

    assert ("scale_target" in names("regression"), "scale_target" in names("classification")) == (True, False)


def test_the_training_form_asks_for_gpus_only_when_runs_go_to_a_ray_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.jobs import spec_form

    def names() -> set[str]:
        return {field["name"] for field in spec_form("classification", "balanced")}

    assert "gpus" not in names()  # the local worker uses the machine's GPUs whatever a run asks
    monkeypatch.setenv("MODELDECK_EXECUTOR", "ray")
    assert "gpus" in names()
    with pytest.raises(SpecError, match="gpus must be between 0 and 64"):
        make_spec("balanced", {"gpus": "-1"})
