"""The model registry: a model's versions, and which of them holds a stage (staging, production).

A model is a name (one per dataset and task, `backend/jobs/training.py`); each successful run adds a version.
Promoting a version to a stage records who, when and why; the latest change per stage applies. Rolling back
gives the stage to the version that held it before the current one, as a change of its own, so the history
keeps every step. The stages are TensorFlow Serving's version labels: the inference server answers
`/v1/models/NAME/labels/production` (REST) and `version_label` (gRPC) with them, read through `StageLabels`.

No TensorFlow here: the CLI and the dashboard use this module.
"""

from __future__ import annotations

import getpass
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from backend import auth
from backend.errors import BadInput, NotFound
from db import ModelVersion, StageChange, Store

STAGES = ("production", "staging")
PRODUCTION = "production"
LABELS_TTL_SECONDS = 1.0  # how stale the server's view of the stages may be: a promotion reaches it this fast


# -- what the registry reports ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    """A model as the registry lists it: its task and data, its versions and which holds each stage."""

    name: str
    task: str
    dataset: str
    versions: list[int]  # the highest first
    stages: dict[str, int]  # stage -> version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelDetail:
    """One model: every version (with the run that made it and its test metrics), its stages and their history."""

    model: Model
    versions: list[ModelVersion]
    history: list[StageChange]  # the latest first

    def previous_holder(self, stage: str) -> int | None:
        """The version a rollback of `stage` would give it back to, or None when no earlier version held it."""
        return _previous_holder(self.history, stage)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.model.to_dict(),
            "versions": [
                {
                    "version": v.version,
                    "run_id": v.run_id,
                    "task": v.task,
                    "dataset": v.dataset,
                    "metrics": {k: m for k, m in v.metrics.items() if isinstance(m, int | float)},
                    "stages": [stage for stage, held in self.model.stages.items() if held == v.version],
                    "created_at": v.created_at.isoformat(timespec="seconds"),
                }
                for v in self.versions
            ],
            "history": [change_dict(c) for c in self.history],
        }


def change_dict(change: StageChange) -> dict[str, Any]:
    """A stage change as JSON (for `--json` and the dashboard's tables)."""
    return {
        "model": change.model_name,
        "version": change.version,
        "stage": change.stage,
        "action": change.action,
        "by": change.assigned_by,
        "why": change.reason,
        "at": change.created_at.isoformat(timespec="seconds"),
    }


# -- reading ---------------------------------------------------------------------------------------------------
def _group(found: list[ModelVersion]) -> dict[str, list[ModelVersion]]:
    grouped: dict[str, list[ModelVersion]] = {}
    for version in found:
        grouped.setdefault(version.model_name, []).append(version)
    return grouped


def _model(name: str, versions: list[ModelVersion], stages: dict[str, int]) -> Model:
    newest = versions[0]
    return Model(name, newest.task, newest.dataset, [v.version for v in versions], dict(sorted(stages.items())))


def models(store: Store) -> list[Model]:
    """Every model with at least one version, by name."""
    stages = store.current_stages()
    return [_model(name, found, stages.get(name, {})) for name, found in _group(store.model_versions()).items()]


def _known(store: Store, name: str) -> list[ModelVersion]:
    found = store.model_versions(name)
    if not found:
        names = sorted(_group(store.model_versions())) or ["(none yet: train a model first)"]
        raise NotFound("error.registry.unknown_model", name=name, names=", ".join(names))
    return found


def show(store: Store, name: str) -> ModelDetail:
    """A model's versions, stages and stage history.

    Raises:
        NotFound: No version of that model exists.
    """
    found = _known(store, name)
    return ModelDetail(_model(name, found, store.current_stages().get(name, {})), found, store.stage_history(name))


def stage_version(store: Store, name: str, stage: str = PRODUCTION) -> int | None:
    """The version of a model that holds a stage now, or None."""
    return store.current_stages().get(name, {}).get(stage)


# -- changing ----------------------------------------------------------------------------------------------------
def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise BadInput("error.registry.unknown_stage", stage=stage, stages=", ".join(STAGES))


def _holders(history: list[StageChange], stage: str) -> list[int]:
    """The versions that held a stage, oldest first, as a stack: a promotion pushes, a rollback pops.

    `history` is the model's stage changes, the latest first (`Store.stage_history`).
    """
    stack: list[int] = []
    for change in reversed(history):
        if change.stage != stage:
            continue
        if change.action == "rollback" and stack:
            stack.pop()
        else:
            stack.append(change.version)
    return stack


def _previous_holder(history: list[StageChange], stage: str) -> int | None:
    holders = _holders(history, stage)
    return holders[-2] if len(holders) > 1 else None


@auth.guarded("promote", lambda c: f"{c.model_name} v{c.version} {c.stage}")
def promote(
    store: Store, name: str, version: int, *, stage: str, reason: str = "", assigned_by: str | None = None
) -> StageChange:
    """Give a model's version a stage (`staging` or `production`); the server answers the label with it at once.

    Raises:
        BadInput: The stage is unknown, or the version already holds it.
        NotFound: No such model or version.
    """
    _check_stage(stage)
    versions = [v.version for v in _known(store, name)]
    if version not in versions:
        shown = ", ".join(map(str, versions))
        raise NotFound("error.registry.unknown_version", name=name, version=version, versions=shown)
    if stage_version(store, name, stage) == version:
        raise BadInput("error.registry.already_holds", name=name, version=version, stage=stage)
    return store.add_stage_change(
        name,
        version=version,
        stage=stage,
        action="promote",
        assigned_by=assigned_by or getpass.getuser(),
        reason=reason.strip(),
    )


@auth.guarded("promote", lambda c: f"{c.model_name} v{c.version} {c.stage}")
def rollback(store: Store, name: str, *, stage: str, reason: str = "", assigned_by: str | None = None) -> StageChange:
    """Give a stage back to the version that held it before the current one.

    Raises:
        BadInput: The stage is unknown, or no earlier version held it.
        NotFound: No such model.
    """
    _check_stage(stage)
    _known(store, name)
    earlier = _previous_holder(store.stage_history(name), stage)
    if earlier is None:
        raise BadInput("error.registry.nothing_to_roll_back", name=name, stage=stage)
    return store.add_stage_change(
        name,
        version=earlier,
        stage=stage,
        action="rollback",
        assigned_by=assigned_by or getpass.getuser(),
        reason=reason.strip(),
    )


# -- the inference server's view -----------------------------------------------------------------------------------
class StageLabels:
    """The stages as the inference server reads them: model -> label -> version, re-read at most once per TTL.

    The store opens on first use (a server over exports alone never touches the database), and a database that
    cannot be read counts as no labels, logged by the caller's error path rather than failing every request.
    """

    def __init__(self, open_store: Callable[[], Store], ttl_seconds: float = LABELS_TTL_SECONDS) -> None:
        """Creates the view; nothing is read yet.

        Args:
            open_store: Opens the store holding the stages (called once, on first use).
            ttl_seconds: How old the cached stages may be before a lookup reads them again.
        """
        self._open_store = open_store
        self._store: Store | None = None
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._stages: dict[str, dict[str, int]] = {}
        self._read_at = float("-inf")

    def current(self) -> dict[str, dict[str, int]]:
        """Model name -> stage -> version, at most `ttl_seconds` old."""
        with self._lock:
            if time.monotonic() - self._read_at >= self._ttl:
                if self._store is None:
                    self._store = self._open_store()
                self._stages = self._store.current_stages()
                self._read_at = time.monotonic()
            return self._stages

    def version(self, name: str, label: str) -> int | None:
        """The version a model's label points at now, or None."""
        return self.current().get(name, {}).get(label)

    def pinned(self) -> set[tuple[str, int]]:
        """The (model, version) pairs some stage needs: the server keeps them loaded."""
        return {(name, version) for name, stages in self.current().items() for version in stages.values()}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
