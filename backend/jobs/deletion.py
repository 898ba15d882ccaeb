"""Deleting a dataset, a run or a model: what depends on it is listed first, and nothing a stage needs goes.

`plan` says what a deletion would take with it: the runs (and a search's trials), the model versions they made,
the use cases made from them, and the folders on disk. It is refused while a version it would take holds a stage
(production or staging: roll the stage back or promote another version first), or while one of its runs is
queued or running (cancel it first). `delete` is an admin's, and is recorded in the audit log.

The records go in one transaction, so a failure leaves them all; the folders go after it, and a folder that cannot
be removed is left behind (and said), never a record pointing at a missing folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from backend import auth, config, data
from backend.errors import BadInput, InvalidState, NotFound
from db import Run, Store

KINDS = ("dataset", "run", "model")  # what can be deleted


@dataclass(frozen=True)
class Plan:
    """What deleting `kind` `name` takes with it, and what stops it."""

    kind: str
    name: str
    runs: list[int]
    models: list[str]  # "churn v3"
    use_cases: list[str]
    folders: list[Path]
    staged: list[str] = field(default_factory=list)  # "churn v3 (production)": blockers
    active: list[int] = field(default_factory=list)  # runs queued or running: blockers
    dataset_id: int | None = None
    model_name: str | None = None

    @property
    def blocked(self) -> bool:
        return bool(self.staged or self.active)


def _data_folder(recorded: str) -> Path:
    """A version's content-addressed folder, from the path recorded for it (its data file's, `…/data.parquet`)."""
    path = config.paths().resolve(recorded)
    return path.parent if path.suffix else path


def _runs_with_trials(store: Store, runs: list[Run]) -> list[Run]:
    """The runs and every trial of a search among them (a search's trials go with it)."""
    ids = {r.id for r in runs}
    trials = [r for r in store.runs_of() if r.parent_id in ids and r.id not in ids]
    return sorted([*runs, *trials], key=lambda r: r.id)


def _plan(store: Store, kind: str, name: str, runs: list[Run], **target: object) -> Plan:
    paths = config.paths()
    runs = _runs_with_trials(store, runs)
    versions = {(r.model_name, r.model_version) for r in runs if r.model_name and r.model_version}
    stages = store.current_stages()
    staged = sorted(
        f"{model} v{version} ({stage})"
        for model, held in stages.items()
        for stage, version in held.items()
        if (model, version) in versions
    )
    ids = {r.id for r in runs}
    use_cases = [u.title for u in store.use_cases(hidden=True) if u.run_id in ids]
    folders = [paths.run_dir(r.id) for r in runs if paths.run_dir(r.id).exists()]
    return Plan(
        kind=kind,
        name=name,
        runs=sorted(ids),
        models=sorted(f"{m} v{v}" for m, v in versions),
        use_cases=use_cases,
        folders=folders,
        staged=staged,
        active=[r.id for r in runs if r.status in ("queued", "running")],
        **target,  # type: ignore[arg-type]
    )


def plan(store: Store, kind: str, name: str) -> Plan:
    """What deleting a dataset (by name or id), a run (by id) or a model (by name) would take with it.

    Raises:
        BadInput: an unknown kind.
        NotFound: no such dataset, run or model.
    """
    if kind == "dataset":
        dataset, _ = data.resolve(store, name)
        folders = {str(v.path) for v in store.list_versions(dataset.id)}
        found = _plan(store, kind, dataset.name, store.runs_of(dataset_id=dataset.id), dataset_id=dataset.id)
        data_folders = sorted({_data_folder(p) for p in folders})
        return Plan(**{**found.__dict__, "folders": [*found.folders, *data_folders]})
    if kind == "run":
        run = store.get_run(int(name)) if str(name).isdigit() else None
        if run is None:
            raise NotFound("error.runs.no_run", run_id=name)
        return _plan(store, kind, f"run {run.id}", [run])
    if kind == "model":
        runs = store.runs_of(model_name=name)
        if not runs:
            raise NotFound("error.delete.no_model", name=name)
        return _plan(store, kind, name, runs, model_name=name)
    raise BadInput("error.delete.bad_kind", kind=kind, kinds=", ".join(KINDS))


@auth.guarded("delete", lambda done: f"{done.kind} {done.name}", audited="delete")
def delete(store: Store, kind: str, name: str) -> Plan:
    """Delete a dataset, a run or a model with what depends on it (admins only); returns what went.

    Raises:
        Forbidden: the current actor is not an admin.
        InvalidState: a version it would take holds a stage, or one of its runs is queued or running.
        NotFound, BadInput: as `plan`.
    """
    found = plan(store, kind, name)
    if found.staged:
        raise InvalidState("error.delete.staged", what=found.name, staged=", ".join(found.staged))
    if found.active:
        raise InvalidState("error.delete.active", what=found.name, runs=", ".join(map(str, found.active)))
    store.delete_records(run_ids=found.runs, dataset_id=found.dataset_id, model_name=found.model_name)
    still_used = {_data_folder(p) for p in store.version_paths()}
    for folder in found.folders:
        if folder not in still_used:  # the same content under another dataset's name keeps its folder
            shutil.rmtree(folder, ignore_errors=True)
    return found
