"""The task registry: one frozen record per task, and everything else derives from it.

A task is what a user asks for ("classification", "text-generation", …). Its record says which model family
trains it, with which spec, on which kind of data, where its answer comes from, what a hyperparameter search
tries by default, and how the Playground and the Evaluation page show it. The CLI's and the Training page's
task lists, the engine's family lookup, the search spaces and the page dispatch all read this registry, so a
new task is one `register(TaskInfo(...))`. No TensorFlow here: the dashboard reads it through the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from models.spec import (
    GptSpec,
    ImageSpec,
    RecommenderSpec,
    SearchSpec,
    SpecError,
    TabularSpec,
    TextSpec,
    TrainingSpec,
    ZeroShotSpec,
    build_spec,
    rebuild_spec,
)

KINDS = ("tabular", "text", "images", "ratings")  # the kinds of data a task trains on
TARGETS = ("column", "optional", "label", "rating", "none")
PLAYGROUNDS = ("form", "text", "image", "prompt", "user", "query")
CHARTS = ("classifier", "text_mistakes", "image_mistakes", "regression", "ranking", "generation")


@dataclass(frozen=True)
class TaskInfo:
    """Everything ModelDeck knows about one task."""

    name: str  # as the CLI, the DB and the catalog (`task.<name>`) spell it
    family: str  # the module whose `prepare(data, spec=, batch_size=)` trains it (see models/task.py)
    spec: type[TrainingSpec]  # its hyperparameters, presets and rules
    kind: str  # the kind of data it trains on (KINDS); the first task registered for a kind is its default
    # Its answer: a "column" the user picks, or an "optional" one (scored where the data has it), the "label" of
    # the image folders, the "rating" column, or "none".
    target: str
    playground: str  # the Playground's input (PLAYGROUNDS)
    charts: tuple[str, ...]  # the Evaluation page's views, in order (CHARTS)
    classifier: bool = False  # answers with a class and the probability of each class
    trains: bool = True  # False: the model is built from the data (zero-shot, a search index), no training rows needed
    also_on: tuple[str, ...] = ()  # other kinds it is offered on, after their own tasks (search: a table's texts)
    roles: tuple[str, ...] = ()  # columns the data must have, found by name: "text", "user", "item"
    search_space: Mapping[str, str] = field(default_factory=dict)  # KEY -> "LOW:HIGH" | "A|B", searched by default
    searched: str = ""  # the family a search tunes where the spec says architecture=auto: search_space is its
    # Another space where the spec's `architecture` names a family of its own (trees tune trees' knobs).
    architecture_spaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    sampling: Mapping[str, Any] = field(default_factory=dict)  # generation settings and their defaults

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("kind", self.kind, KINDS),
            ("target", self.target, TARGETS),
            ("playground", self.playground, PLAYGROUNDS),
        ):
            if value not in allowed:
                raise SpecError(f"Task '{self.name}': {name} '{value}' is not one of {', '.join(allowed)}.")
        if any(kind not in KINDS or kind == self.kind for kind in self.also_on):
            raise SpecError(f"Task '{self.name}': also_on names kinds other than its own, of {', '.join(KINDS)}.")
        unknown = [c for c in self.charts if c not in CHARTS]
        if unknown:
            raise SpecError(
                f"Task '{self.name}': unknown charts {', '.join(unknown)}. Use some of {', '.join(CHARTS)}."
            )
        object.__setattr__(self, "search_space", MappingProxyType(dict(self.search_space)))
        spaces = {name: MappingProxyType(dict(space)) for name, space in self.architecture_spaces.items()}
        object.__setattr__(self, "architecture_spaces", MappingProxyType(spaces))
        object.__setattr__(self, "sampling", MappingProxyType(dict(self.sampling)))

    @property
    def needs_target(self) -> bool:
        """Whether the user must pick the column to predict."""
        return self.target == "column"


TASKS: dict[str, TaskInfo] = {}


def register(info: TaskInfo) -> TaskInfo:
    """Add a task (or replace one of the same name); every list of tasks includes it from now on."""
    TASKS[info.name] = info
    return info


_TABLE_SPACE = {"learning_rate": "0.0001:0.01", "dropout": "0:0.5", "hidden_units": "64|128|256,128"}
_TREE_SPACE = {"num_trees": "100|300|600", "max_depth": "4|6|8", "shrinkage": "0.03:0.3", "min_examples": "2|5|20"}
for _info in (
    TaskInfo(
        name="classification",
        family="models.tabular",
        spec=TabularSpec,
        kind="tabular",
        target="column",
        classifier=True,
        search_space=_TABLE_SPACE,
        searched="mlp",
        architecture_spaces={"gbt": _TREE_SPACE},
        playground="form",
        charts=("classifier",),
    ),
    TaskInfo(
        name="regression",
        family="models.tabular",
        spec=TabularSpec,
        kind="tabular",
        target="column",
        search_space=_TABLE_SPACE,
        searched="mlp",
        architecture_spaces={"gbt": _TREE_SPACE},
        playground="form",
        charts=("regression",),
    ),
    TaskInfo(
        name="text-classification",
        family="models.text",
        spec=TextSpec,
        kind="text",
        target="column",
        roles=("text",),
        classifier=True,
        search_space={"learning_rate": "0.0003:0.01", "embedding_dim": "32|64|128", "dropout": "0:0.5"},
        searched="bag",
        playground="text",
        charts=("classifier", "text_mistakes"),
    ),
    TaskInfo(
        name="image-classification",
        family="models.vision",
        spec=ImageSpec,
        kind="images",
        target="label",
        classifier=True,
        search_space={"learning_rate": "0.0003:0.003", "dropout": "0:0.5"},
        playground="image",
        charts=("classifier", "image_mistakes"),
    ),
    TaskInfo(
        name="text-generation",
        family="models.gpt",
        spec=GptSpec,
        kind="text",
        target="none",
        roles=("text",),
        search_space={"learning_rate": "0.0003:0.003", "n_embd": "64|128"},
        sampling={"temperature": 0.8, "top_k": 40, "top_p": 0.95, "seed": 0},
        playground="prompt",
        charts=("generation",),
    ),
    TaskInfo(
        name="zero-shot",
        family="models.zeroshot",
        spec=ZeroShotSpec,
        kind="text",
        target="optional",
        roles=("text",),
        classifier=True,
        trains=False,
        playground="text",
        charts=("classifier", "text_mistakes"),
    ),
    TaskInfo(
        name="semantic-search",
        family="models.search",
        spec=SearchSpec,
        kind="text",
        also_on=("tabular",),  # a catalogue with prices and categories is a table with a text column
        target="none",
        roles=("text",),
        trains=False,
        playground="query",
        charts=(),
    ),
    TaskInfo(
        name="recommendation",
        family="models.recommend",
        spec=RecommenderSpec,
        kind="ratings",
        target="rating",
        roles=("user", "item"),
        search_space={"learning_rate": "0.001:0.01", "embedding_dim": "8|16|32|64", "l2": "0.00001:0.001"},
        playground="user",
        charts=("ranking",),
    ),
):
    register(_info)


def task_info(task: str) -> TaskInfo:
    """The record of a task.

    Raises:
        SpecError: no such task.
    """
    if task not in TASKS:
        raise SpecError(f"Unknown task '{task}'. Expected one of: {', '.join(TASKS)}.")
    return TASKS[task]


def tasks_for_kind(kind: str) -> tuple[str, ...]:
    """The tasks made for a kind of data, its default first (for a table: what its target can be predicted as)."""
    return tuple(name for name, info in TASKS.items() if info.kind == kind)


def tasks_offered(kind: str) -> tuple[str, ...]:
    """Every task a kind of data can train: its own (`tasks_for_kind`), then those offered on it too (`also_on`)."""
    return tasks_for_kind(kind) + tuple(name for name, info in TASKS.items() if kind in info.also_on)


def reads_text(task: str) -> bool:
    """Whether a task's model takes one text and answers with a class (its export's input is `text`)."""
    info = TASKS.get(task)
    return info is not None and info.playground == "text" and info.classifier


def classifiers() -> tuple[str, ...]:
    """The tasks that answer with a class."""
    return tuple(name for name, info in TASKS.items() if info.classifier)


def make_spec(
    preset: str = "balanced", overrides: dict[str, Any] | None = None, *, task: str = "classification"
) -> Any:
    """A spec for a task from a preset and KEY=VALUE overrides (values may be strings, as on the command line)."""
    return build_spec(task_info(task).spec, preset, overrides, task=task)


def spec_from_dict(data: dict[str, Any], *, task: str = "classification") -> Any:
    """Rebuild the spec stored with a run."""
    return rebuild_spec(task_info(task).spec, data)
