"""The task registry is the one home of what ModelDeck knows about a task: every list derives from it."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterator

import pytest

from backend import cli, i18n, jobs
from backend.jobs import tuning
from models.spec import SpecError, TabularSpec, preset_defaults
from models.tasks import (
    TASKS,
    TaskInfo,
    classifiers,
    make_spec,
    reads_text,
    register,
    task_info,
    tasks_for_kind,
    tasks_offered,
)

TOY = TaskInfo(
    name="toy-scoring",
    family="models.tabular",
    spec=TabularSpec,
    kind="tabular",
    target="column",
    search_space={"dropout": "0:0.3"},
    playground="form",
    charts=("regression",),
)


@pytest.fixture
def toy_task() -> Iterator[TaskInfo]:
    register(TOY)
    yield TOY
    TASKS.pop(TOY.name)


def test_a_new_task_added_through_the_registry_alone_is_listed_everywhere(
    toy_task: TaskInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    listed_by_cli = "toy-scoring" in capsys.readouterr().out
    assert (listed_by_cli, jobs.tasks_for("tabular"), jobs.default_space("toy-scoring")) == (
        True,
        ("classification", "regression", "toy-scoring", "semantic-search"),  # a table's own tasks first
        {"dropout": "0:0.3"},
    )
    assert make_spec("fast", task="toy-scoring") == make_spec("fast", task="classification")


def test_the_eight_tasks_and_their_kinds() -> None:
    assert {kind: tasks_for_kind(kind) for kind in ("tabular", "text", "images", "ratings")} == {
        "tabular": ("classification", "regression"),
        "text": ("text-classification", "text-generation", "zero-shot", "semantic-search"),
        "images": ("image-classification",),
        "ratings": ("recommendation",),
    }
    assert tasks_offered("tabular") == ("classification", "regression", "semantic-search")  # a catalogue's texts
    assert classifiers() == ("classification", "text-classification", "image-classification", "zero-shot")
    assert [t for t in TASKS if reads_text(t)] == ["text-classification", "zero-shot"]


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_names_a_family_a_catalog_entry_and_a_searchable_space(task: str) -> None:
    info = task_info(task)
    fields = {f.name: f for f in dataclasses.fields(info.spec)}
    defaults = preset_defaults(info.spec, "balanced")
    assert importlib.util.find_spec(info.family) is not None
    assert f"task.{task}" in i18n.EN
    assert [name for name in info.search_space if name not in fields] == []
    assert tuning.parse_space(dict(info.search_space), defaults=defaults) or not info.trains


def test_an_unknown_task_or_a_bad_record_is_refused() -> None:
    with pytest.raises(SpecError, match=r"Unknown task 'forecast'\. Expected one of: classification, regression"):
        task_info("forecast")
    with pytest.raises(SpecError, match=r"Task 'x': playground 'slider' is not one of form, text"):
        dataclasses.replace(TOY, name="x", playground="slider")
    with pytest.raises(SpecError, match=r"Task 'x': also_on names kinds other than its own"):
        dataclasses.replace(TOY, name="x", also_on=("tabular",))
