"""Quality checks on a dataset version: the gate before training.

Each check looks at a `Context` (the rows, the target, the task) and returns a `CheckResult`: `id`,
`severity` (blocker | warning | info), `passed`, `key` and `params` (its one-line message in any catalog
language), `evidence` (counts and examples) and the one-click fixes it offers. The plain-language
explanation and the suggested fix live in the message catalog as `check.<id>.why` and `check.<id>.fix`.
A failing blocker closes the gate: training is refused unless the user types an override reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from backend.data import load_frame
from backend.errors import BadInput
from backend.quality import images as image_checks
from backend.quality import ratings as ratings_checks
from backend.quality import tables as table_checks
from backend.quality import texts as text_checks
from backend.quality.common import CheckResult, Context
from db import DatasetVersion, QualityReport, Store
from models.spec import pretrained_installed
from models.tasks import TASKS

# The checks that judge the column to predict: a task that learns from the data alone (text generation) skips them.
TRAINING_CHECKS = frozenset({"too_few_rows", "too_few_images"})  # what only a model that trains needs
TARGET_CHECKS = frozenset(
    {
        "target_usable",
        "too_few_classes",
        "target_leakage",
        "conflicting_labels",
        "conflicting_text_labels",
        "class_imbalance",
        "label_errors",
    }
)

# The checks run on a few threads: they spend most of their time in numpy, pandas and YDF code that lets go of
# the GIL, so a report on two cores takes little more than half as long. The slowest (training a quick
# model) start first, so that they do not finish last.
CHECK_THREADS = min(4, os.cpu_count() or 1)
SLOWEST = frozenset({"label_errors"})
# Run only when asked (`meaning=True`): the pretrained text model embeds every sampled text, minutes on a small CPU.
MEANING_CHECKS = frozenset({"same_meaning"})

CHECKS_BY_KIND = {
    "tabular": table_checks.CHECKS,
    "text": text_checks.CHECKS,
    "ratings": ratings_checks.CHECKS,
    "images": image_checks.CHECKS,
}


@dataclass(frozen=True)
class Report:
    """A version's checks as recorded: whether the gate passed, and every check's result in order."""

    id: int
    version_id: int
    target: str | None
    passed: bool
    checks: tuple[CheckResult, ...]

    @classmethod
    def of(cls, record: QualityReport) -> Report:
        """The report the store recorded (its checks as stored dicts)."""
        checks = tuple(CheckResult.from_dict(c) for c in record.checks)
        return cls(
            id=record.id, version_id=record.version_id, target=record.target, passed=record.passed, checks=checks
        )


def run_checks(
    frame: pd.DataFrame,
    *,
    target: str | None,
    task: str | None,
    kind: str = "tabular",
    meaning: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[CheckResult]:
    """The checks for the kind of data and the task, in order, on a frame; nothing is stored (see `check_version`).

    A task whose registry entry has no target (`target="none"`, e.g. text generation), or an optional one the data
    lacks (zero-shot on unlabelled texts), skips TARGET_CHECKS; one that trains nothing skips TRAINING_CHECKS.
    MEANING_CHECKS run only with `meaning` (`progress(done, total)` hears how far they are).
    """
    context = Context(frame, target, task, progress=progress)
    checks = CHECKS_BY_KIND[kind]
    if not meaning:
        checks = [check for check in checks if check.__name__ not in MEANING_CHECKS]
    elif not meaning_available():
        raise BadInput("error.quality.meaning_needs_model")
    if task in TASKS and (TASKS[task].target == "none" or (TASKS[task].target == "optional" and target is None)):
        checks = [check for check in checks if check.__name__ not in TARGET_CHECKS]
    if task in TASKS and not TASKS[task].trains:  # an 8-question FAQ is a fine search index
        checks = [check for check in checks if check.__name__ not in TRAINING_CHECKS]
    # The checks that report progress run on this thread meanwhile: the caller's progress bar may belong to it.
    here = [check for check in checks if check.__name__ in MEANING_CHECKS]
    slowest_first = sorted(checks, key=lambda check: check.__name__ not in SLOWEST)
    with ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="check") as pool:
        started = {check: pool.submit(check, context) for check in slowest_first if check not in here}
        done = {check: check(context) for check in here}
        return [done[check] if check in done else started[check].result() for check in checks]  # errors raise here


def meaning_available() -> bool:
    """Whether MEANING_CHECKS can run here: the pretrained text model is installed."""
    return pretrained_installed()


def gate_passed(checks: Sequence[CheckResult]) -> bool:
    """Whether no blocker fails: warnings and notes never close the gate."""
    return not blockers(checks)


PENALTY = {"blocker": 30, "warning": 8, "info": 2}


def score(checks: Sequence[CheckResult]) -> int:
    """0-100 at a glance: 100 less 30 per failing blocker, 8 per warning and 2 per note."""
    return max(0, 100 - sum(PENALTY[c.severity] for c in checks if not c.passed))


def blockers(checks: Sequence[CheckResult]) -> list[CheckResult]:
    """The failing checks that close the gate."""
    return [c for c in checks if c.severity == "blocker" and not c.passed]


def check_version(
    store: Store,
    *,
    version: DatasetVersion,
    target: str | None = None,
    task: str | None = None,
    meaning: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Run the checks on a version (its chosen target and task unless given) and record the report."""
    target = target if target is not None else version.target
    task = task if task is not None else version.task
    dataset = store.find_dataset(version.dataset_id)
    kind = dataset.kind if dataset is not None else "tabular"
    checks = run_checks(load_frame(version), target=target, task=task, kind=kind, meaning=meaning, progress=progress)
    record = store.add_quality_report(
        version_id=version.id, target=target, passed=gate_passed(checks), checks=[c.to_dict() for c in checks]
    )
    return Report.of(record)
