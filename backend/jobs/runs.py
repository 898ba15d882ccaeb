"""Runs: start training, watch it, cancel or resume it. Flat, keyword-only functions over the store."""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend import auth, config
from backend.errors import BadInput, InvalidState, NotFound, QualityGateBlocked
from backend.i18n import Message
from backend.jobs import names, tuning
from backend.jobs.worker import has_live_worker, reap_dead_workers
from db import DatasetVersion, Run, RunSummary, Store
from models.spec import SpecError, TabularSpec, TrainingSpec, ZeroShotSpec, preset_defaults
from models.tasks import TASKS, make_spec, task_info, tasks_offered

FINISHED = ("succeeded", "failed", "cancelled")


def tasks_for(kind: str) -> tuple[str, ...]:
    """The tasks the Training page offers for a kind of data, the usual one first."""
    return tasks_offered(kind) or tasks_offered("tabular")


def _default_task(offered: tuple[str, ...], *, has_target: bool) -> str:
    """The first task of the kind that can train with what was chosen (a text set without labels generates)."""
    return next((t for t in offered if has_target or not TASKS[t].needs_target), offered[0])


def _task_and_target(
    version: DatasetVersion, *, kind: str, name: str, target: str | None, task: str | None
) -> tuple[str, str | None]:
    """Check that the task fits the data and that the columns it needs are there; the task and its target."""
    from backend import data  # pandas: not for the commands that only read the history

    offered = tasks_for(kind)
    roles = data.roles(version.columns)
    wanted = None if task in (None, "auto") else task
    if wanted is not None and wanted not in TASKS:
        raise BadInput("error.data.unknown_task", task=wanted, tasks=", ".join(TASKS))
    # A table's target decides between classification and regression (search, offered on tables too, needs none).
    if kind == "tabular" and (wanted is None or TASKS[wanted].kind == "tabular"):
        target = target or version.target
        if target is None:
            raise BadInput("error.runs.no_target")
        if wanted is None and target == version.target and version.task in offered:
            return str(version.task), target  # chosen on the Data page already
        wanted = data.checked_task(data.load_frame(version), target, wanted)
    elif wanted is None or TASKS[wanted].kind == "tabular":  # "classification" of texts means their classifier
        wanted = _default_task(offered, has_target=bool(target or version.target))
    assert wanted is not None
    if wanted not in offered:
        raise BadInput("error.runs.kind_cannot_train", name=name, kind=kind, offered=", ".join(offered), wanted=wanted)
    info = task_info(wanted)
    if info.needs_target and kind != "tabular":
        target = target or version.target
        if target is None:
            raise BadInput("error.runs.no_label")
        data.checked_task(data.load_frame(version), target, None)
    if "text" in info.roles and roles["text"] is None:
        raise BadInput("error.runs.no_text_column", name=name)
    if any(roles[r] is None for r in info.roles):
        raise BadInput("error.runs.no_user_item", name=name)
    optional = target or version.target  # scored on it where the data has one
    answer = {"column": target, "optional": optional, "label": "label", "rating": roles["rating"], "none": None}
    return wanted, answer[info.target]


@auth.guarded("train", lambda run: f"run {run.id}")
def start_training(
    store: Store,
    *,
    version: DatasetVersion,
    target: str | None = None,
    task: str | None = None,
    preset: str = "balanced",
    overrides: dict[str, Any] | None = None,
    override_reason: str | None = None,
) -> Run:
    """Queue a training run on a dataset version; a worker picks it up.

    Raises QualityGateBlocked when a blocker fails and no override reason is given.
    """
    return store.create_run(
        **_checked_run(
            store,
            version=version,
            target=target,
            task=task,
            preset=preset,
            overrides=overrides,
            override_reason=override_reason,
        )
    )


def _checked_run(
    store: Store,
    *,
    version: DatasetVersion,
    target: str | None,
    task: str | None,
    preset: str,
    overrides: dict[str, Any] | None,
    override_reason: str | None,
) -> dict[str, Any]:
    """What `create_run` needs, once the task fits the data, the spec is valid and the gate is passed."""
    from backend import quality

    dataset = store.find_dataset(version.dataset_id)
    kind = dataset.kind if dataset is not None else "tabular"
    task, target = _task_and_target(
        version, kind=kind, name=dataset.name if dataset else str(version.id), target=target, task=task
    )
    try:
        spec = make_spec(preset, overrides, task=task)
    except SpecError as exc:
        raise BadInput("error.spec", reason=str(exc)) from None
    if isinstance(spec, ZeroShotSpec) and target:  # scored on the label column: its labels must be classes
        _check_named(version, target, [name for name, _ in spec.classes()])
    column = getattr(spec, "text_column", "")  # a search names the column it searches
    if isinstance(spec, TabularSpec) and (chosen := spec.meaning_column_names()):  # free-text columns by meaning
        texts = [str(c["name"]) for c in version.columns if c["kind"] == "text"]
        if others := [name for name in chosen if name not in texts]:
            raise BadInput("error.runs.not_text_columns", names=", ".join(others), columns=", ".join(texts) or "—")
    if column and column not in (names := [str(c["name"]) for c in version.columns]):
        raise BadInput("error.runs.no_such_text_column", column=column, columns=", ".join(names))
    report = quality.check_version(store, version=version, target=target, task=task)
    blocking = quality.blockers(report.checks)
    reason = (override_reason or "").strip() or None
    if blocking and reason is None:
        raise QualityGateBlocked("error.runs.gate_blocks", blocking=Message(blocking[0].key, dict(blocking[0].params)))
    return {
        "version_id": version.id,
        "task": task,
        "target": target,
        "spec": spec.to_dict(),
        "override_reason": reason if blocking else None,
    }


def _check_named(version: DatasetVersion, target: str, classes: list[str]) -> None:
    from backend import data

    frame = data.load_frame(version)
    labels = sorted(set(frame[target].dropna().astype(str)) - set(classes)) if target in frame.columns else []
    if labels:
        named = ",".join(sorted(set(frame[target].dropna().astype(str))))
        raise BadInput("error.runs.unnamed_labels", target=target, labels=", ".join(labels[:5]), named=named)


@auth.guarded("train", lambda run: f"run {run.id}")
def start_search(
    store: Store,
    *,
    version: DatasetVersion,
    task: str | None = None,
    method: str = "random",
    trials: int = 8,
    space: dict[str, str] | None = None,
    preset: str = "balanced",
    overrides: dict[str, Any] | None = None,
    override_reason: str | None = None,
    parallel: int = 0,
) -> Run:
    """Queue a hyperparameter search: `trials` runs over `space` (the family's default space when None).

    On a Ray cluster, `parallel` trials train at once (0: as many as the cluster holds); the local worker trains
    them one after another.
    """
    if method not in tuning.METHODS:
        raise BadInput("error.runs.unknown_search_method", method=method, methods=", ".join(tuning.METHODS))
    if not 1 <= trials <= 100:
        raise BadInput("error.runs.bad_trials", trials=trials)
    if parallel < 0:
        raise BadInput("error.search.bad_parallel", parallel=parallel)
    run = _checked_run(
        store,
        version=version,
        target=None,
        task=task,
        preset=preset,
        overrides=overrides,
        override_reason=override_reason,
    )
    if not task_info(run["task"]).trains:  # no training, no validation loss to choose a trial by
        raise BadInput("error.search.nothing_trains", task=Message.of(f"task.{run['task']}"))
    if run["spec"].get("architecture") == "auto":  # a search tunes one family, whose knobs the default space holds
        run["spec"] = {**run["spec"], "architecture": task_info(run["task"]).searched}
    chosen = space or default_space(run["task"], run["spec"].get("architecture"))
    dims = tuning.parse_space(chosen, defaults=run["spec"])
    search = {"method": method, "trials": trials, "space": chosen, "dims": dims, "parallel": parallel}
    return store.create_run(**run | {"spec": {**run["spec"], "search": search}})


def default_space(task: str, architecture: str | None = None) -> dict[str, str]:
    """The hyperparameters a search tries by default, as KEY -> "LOW:HIGH" or "A|B".

    The task's space, or its architecture's where that family has one of its own (trees: number, depth...).
    """
    info = task_info(task)
    return dict(info.architecture_spaces.get(architecture or "", info.search_space))


def search_trials(store: Store, *, run_id: int) -> list[dict[str, Any]]:
    """The trials of a search so far, oldest first (see `tuning.summary`)."""
    return tuning.summary(store, run_id)


@auth.guarded("train", lambda run: f"run {run.id}")
def run_again(store: Store, *, run_id: int) -> Run:
    """Queue a new run with the same version, task, target and spec: on a CPU it reproduces the metrics."""
    run = get_run(store, run_id)
    return store.create_run(
        version_id=run.version_id,
        task=run.task,
        target=run.target,
        spec=run.spec,
        override_reason=run.override_reason,
        names=run.names,  # the same classes and columns: the words chosen for them carry over
    )


def exported_model(store: Store, run_id: int | str) -> tuple[Run, Path]:
    """A finished run and the folder of its exported SavedModel (`<model>/<version>/`).

    Raises:
        NotFound: there is no such run.
        BadInput: the run has not exported a model (it has not succeeded).
    """
    run = get_run(store, run_id)
    if run.status != "succeeded" or not run.export_path:
        raise BadInput("error.runs.not_exported", run_id=run.id, run_status=Message.of(f"status.{run.status}"))
    return run, config.paths().resolve(run.export_path) / str(run.model_version)


def get_run(store: Store, run_id: int | str) -> Run:
    """The run with this id (a number, or its text as typed on a command line).

    Raises:
        NotFound: no such run.
    """
    run = store.get_run(int(run_id)) if str(run_id).isdigit() else None
    if run is None:
        raise NotFound("error.runs.no_run", run_id=run_id)
    return run


@auth.guarded("train", lambda run: f"run {run.id}", audited="cancel_run")
def cancel(store: Store, *, run_id: int) -> Run:
    """Cancel a queued or running run: a queued one at once, a running one as soon as its worker sees it.

    Raises:
        InvalidState: the run is already over.
    """
    run = get_run(store, run_id)
    if run.status in FINISHED:
        raise InvalidState("error.runs.nothing_to_cancel", run_id=run_id, run_status=Message.of(f"status.{run.status}"))
    return store.request_cancel(run.id)


@auth.guarded("train", lambda run: f"run {run.id}", audited="resume_run")
def resume(store: Store, *, run_id: int) -> Run:
    """Queue an interrupted run again; it continues from its last completed epoch."""
    reap_dead_workers(store)
    run = get_run(store, run_id)
    if run.status != "interrupted":
        raise InvalidState("error.runs.not_resumable", run_id=run_id, run_status=Message.of(f"status.{run.status}"))
    return store.requeue_run(run.id)


def curves(store: Store, *, run_id: int) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch values of every logged metric: {"loss": [(0, 0.69), …], "val_loss": …}."""
    result: dict[str, list[tuple[int, float]]] = {}
    for m in store.run_metrics(run_id):
        result.setdefault(m.name, []).append((m.epoch, m.value))
    return result


def summarize(run: RunSummary) -> dict[str, Any]:
    """A run as `runs list` prints it and the history table shows it (no evaluation details)."""
    return {
        "run_id": run.id,
        "dataset": run.dataset,
        "dataset_version": run.version_hash[:12],
        "task": run.task,
        "status": run.status,
        "metrics": run.metrics,
        "spec": run.spec,
        "epochs_done": run.epochs_done,
        "duration_s": round(run.duration_s, 2),
        "device": run.device,
        "model_name": run.model_name if run.status == "succeeded" else None,
        "model_version": run.model_version if run.status == "succeeded" else None,
        "override_reason": run.override_reason,
        "created_at": run.created_at.isoformat(timespec="seconds"),
    }


def describe(store: Store, run: Run) -> dict[str, Any]:
    """What `runs show --json` prints."""
    version = store.get_version(run.version_id)
    dataset = store.find_dataset(version.dataset_id) if version else None
    return {
        "run_id": run.id,
        "status": run.status,
        "task": run.task,
        "target": run.target,
        "dataset": dataset.name if dataset else None,
        "dataset_version": version.hash[:12] if version else None,
        "spec": run.spec,
        "metrics": run.metrics,
        "baseline": run.evaluation.get("baseline"),  # the same figures of the trivial rule the run must beat
        "holdout": run.evaluation.get("plan", {}).get("holdout"),  # a recommender's: "latest" ratings or "random"
        "device": run.device,
        "epochs_done": run.epochs_done,
        "throughput": run.progress.get("samples_per_s"),
        "duration_s": round(run.duration_s, 2),
        "error": run.error,
        "diagnostics": run.evaluation.get("diagnostics", []),
        "selection": run.evaluation.get("selection"),  # architecture=auto: each family's validation score
        "override_reason": run.override_reason,
        "model_name": run.model_name if run.status == "succeeded" else None,
        "model_version": run.model_version if run.status == "succeeded" else None,
        "environment": run.environment,
        "created_at": run.created_at.isoformat(timespec="seconds"),
    }


def wait(store: Store, *, run_id: int, timeout_s: float | None = None, poll_s: float = 0.5) -> Run:
    """Block until the run finishes (or is interrupted)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        run = get_run(store, run_id)
        if run.status in (*FINISHED, "interrupted"):
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll_s)


@contextlib.contextmanager
def worker_if_needed(store: Store, *, home: str) -> Iterator[None]:
    """Start a worker for the duration of a waiting command when none is alive.

    It exits once the queue is empty (`--until-idle`): a worker that stays would import TensorFlow into a child
    for a next job that no one is going to send.
    """
    if has_live_worker(store):
        yield
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "--home", home, "worker", "--until-idle"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def in_plain_words(run: Run) -> Message | None:
    """How well a finished model does, in a sentence a manager can repeat (None where there is none).

    Two classes: how many of the test cases of the second class (the one a threshold decides on: "yes", "1")
    it finds, and how often it is right when it flags one. More classes: how often it names the right one,
    against always guessing the most common. Regression: how far off a typical estimate is.
    """
    ev, m = run.evaluation or {}, run.metrics or {}
    target = names.given(run, "columns", run.target) or run.target or ""  # as the sentence reads: no capital
    if run.task == "regression" and m.get("mae") is not None:
        return Message.of("summary.regression", target=target, mae=m["mae"], r2=m.get("r2") or 0.0)
    classes, matrix = ev.get("classes") or [], ev.get("confusion_matrix") or []
    if not matrix:  # any classifier: of a table, of texts or of images
        return None
    if len(classes) == 2:
        missed, caught, wrongly = matrix[1][0], matrix[1][1], matrix[0][1]  # rows: actual; columns: predicted
        flagged = wrongly + caught
        return Message.of(
            "summary.binary",
            target=target,
            positive=names.class_name(run, classes[1]),
            total=caught + missed,
            caught=caught,
            right=caught / flagged if flagged else 0.0,
        )
    total = sum(map(sum, matrix))
    right = sum(matrix[i][i] for i in range(len(matrix)))
    baseline = (ev.get("baseline") or {}).get("accuracy", 0.0)
    return Message.of("summary.classes", target=target, right=right / max(total, 1), baseline=baseline)


REGRESSION_ONLY = frozenset({"scale_target"})  # hyperparameters that only a regression uses


def spec_form(task: str, preset: str) -> list[dict[str, Any]]:
    """The hyperparameters of a task's family as form fields, filled from a preset.

    Each field has `name`, `value`, `type` (bool | int | float | text | list | choice) and, for a choice, its
    `choices`.
    """
    values = preset_values(preset, task=task)
    cls = task_info(task).spec
    shared = {f.name for f in dataclasses.fields(TrainingSpec)}
    fields = []
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name in shared):  # the family's own fields first
        if f.name in REGRESSION_ONLY and task != "regression":
            continue  # it would do nothing here, and "target scaling" on a classifier's form only puzzles
        if f.name in cls.UNUSED:
            continue  # the family ignores it (zero-shot trains nothing: no epochs, no learning rate)
        if f.name == "gpus" and config.executor() != "ray":
            continue  # only a Ray cluster reads it: the local worker uses the machine's GPUs
        value = values[f.name]
        kind = {bool: "bool", int: "int", float: "float", list: "list"}.get(type(value), "text")
        field: dict[str, Any] = {"name": f.name, "value": value, "type": kind}
        if f.name in cls.CHOICES:
            field |= {"type": "choice", "choices": list(cls.CHOICES[f.name])}
        fields.append(field)
    return fields


def tensorboard_command(run: Run) -> str:
    """The shell command that opens the run's TensorBoard logs."""
    logs = config.paths().run_dir(run.id).resolve() / "tensorboard"
    installed = Path(sys.executable).parent / "tensorboard"  # the virtual environment's, when there is one
    program = shlex.quote(str(installed)) if installed.exists() else "tensorboard"
    return f"{program} --logdir {shlex.quote(str(logs))} --port 6006"


def preset_values(preset: str, *, task: str = "classification") -> dict[str, Any]:
    """The hyperparameters of a preset for a task, as the Training page's form shows them."""
    try:
        return preset_defaults(task_info(task).spec, preset)
    except SpecError as exc:
        raise BadInput("error.spec", reason=str(exc)) from None


def latest_run(store: Store, *, version_ids: list[int]) -> Run | None:
    """The newest run on these versions that is not a search's trial (the search shows its trials)."""
    return next((r for r in store.list_runs(version_ids=version_ids, limit=200) if r.parent_id is None), None)
