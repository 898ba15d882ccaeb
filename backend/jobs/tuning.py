"""Hyperparameter search as a job: keras-tuner proposes each trial, and every trial is a run of its own.

The tuner uses random search or Bayesian optimisation. A trial's run has the search as its `parent_id`, and its
own curves, export and metrics. The best trial's model is therefore usable whatever happens to the search
afterwards: a cancel keeps the finished trials, and a search resumed after its worker died reloads the oracle's
state from the run folder and goes on where it stopped.

The search itself is a run too: its spec is the base spec plus `search` ({method, trials, space}); its
metrics are the best trial's; its evaluation lists the trials (for the parallel-coordinates view).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Protocol

from backend.config import Paths
from backend.errors import BadInput, disk_full
from backend.jobs import training
from db import Run, Store
from db.store import utcnow

METHODS = ("random", "bayesian")
OBJECTIVE = "val_loss"  # the lowest validation loss a trial reached: comparable across trials (same split)


def parse_space(space: dict[str, str], *, defaults: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"learning_rate": "0.0001:0.01", "hidden_units": "64|128,64"}` -> typed search dimensions.

    A range of whole numbers is an integer range; a float range spanning 10x or more is searched on a
    log scale; `a|b|c` is a choice.

    Raises:
        BadInput: an unknown hyperparameter or a range that is not `LOW:HIGH` with LOW < HIGH.
    """
    dims: dict[str, dict[str, Any]] = {}
    for name, text in space.items():
        if name not in defaults:
            raise BadInput("error.search.unknown_hyperparameter", name=name, defaults=", ".join(defaults))
        if "|" in text:
            dims[name] = {"kind": "choice", "values": [v.strip() for v in text.split("|") if v.strip()]}
            continue
        low, sep, high = text.partition(":")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            lo = hi = math.nan
        if not sep or not lo < hi:
            raise BadInput("error.search.bad_range", name=name, text=text)
        integer = isinstance(defaults[name], int) and not isinstance(defaults[name], bool) and lo.is_integer()
        log = not integer and lo > 0 and hi / lo >= 10
        dims[name] = {"kind": "int" if integer else "float", "low": lo, "high": hi, "log": log}
    return dims


def _hyperparameters(dims: dict[str, dict[str, Any]]) -> Any:
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for name, d in dims.items():
        if d["kind"] == "choice":
            hp.Choice(name, d["values"])
        elif d["kind"] == "int":
            hp.Int(name, int(d["low"]), int(d["high"]))
        else:
            hp.Float(name, d["low"], d["high"], sampling="log" if d["log"] else "linear")
    return hp


def _oracle(search: dict[str, Any], *, seed: int, folder: str) -> Any:
    import keras_tuner as kt

    kind = kt.oracles.BayesianOptimizationOracle if search["method"] == "bayesian" else kt.oracles.RandomSearchOracle
    oracle = kind(
        objective=kt.Objective("score", direction="min"),
        max_trials=search["trials"],
        hyperparameters=_hyperparameters(search["dims"]),
        seed=seed,
    )
    oracle._set_project_dir(folder, "oracle")  # keras-tuner's own persistence: what a resumed search reloads
    if (Path(folder) / "oracle" / "oracle.json").is_file():
        oracle.reload()
    return oracle


def best_validation_loss(store: Store, run_id: int) -> float:
    values = [m.value for m in store.run_metrics(run_id) if m.name == OBJECTIVE and math.isfinite(m.value)]
    return min(values) if values else math.inf


def summary(store: Store, search_id: int) -> list[dict[str, Any]]:
    """One row per trial, oldest first: run id, status, the searched values, the objective and the metrics."""
    search = store.get_run(search_id)
    assert search is not None
    names = list(search.spec.get("search", {}).get("dims", {}))
    rows = []
    for trial in reversed(store.list_runs(parent_id=search_id)):
        rows.append(
            {
                "run": trial.id,
                "status": trial.status,
                **{name: trial.spec.get(name) for name in names},
                OBJECTIVE: best_validation_loss(store, trial.id),
                **{k: v for k, v in trial.metrics.items() if isinstance(v, int | float) and k != "test_rows"},
            }
        )
    return rows


def _typed(values: dict[str, Any], *, task: str) -> dict[str, Any]:
    """A trial's spec with each value in its field's type: the tuner hands choices back as text ("300")."""
    from models.spec import SpecError
    from models.tasks import spec_from_dict

    try:
        return dict(spec_from_dict(values, task=task).to_dict())
    except SpecError:  # the trial fails with the spec's own message when it trains
        return values


class InlineTrials:
    """A search's trials trained one after another in this process (the local worker's child)."""

    slots = 1

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._ended: list[int] = []

    def start(self, store: Store, run: Run) -> None:
        started = time.monotonic()
        try:
            status, result = training.train(store, paths=self.paths, run=run)
        except Exception as exc:  # one bad trial (e.g. a diverging learning rate) does not end the search
            if disk_full(exc):  # a full disk does: the search stops for space, and goes on once there is some
                store.update_run(run.id, status="failed", finished_at=utcnow(), error="The disk is full.")
                raise
            status, result = "failed", {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
        store.update_run(run.id, status=status, finished_at=utcnow(), duration_s=time.monotonic() - started, **result)
        self._ended.append(run.id)

    def wait(self, _store: Store) -> list[int]:
        ended, self._ended = self._ended, []
        return ended


class Trials(Protocol):
    """Where a search's trials train: `InlineTrials` here, or `cluster.RayTrials` as Ray tasks, `slots` at once."""

    slots: int

    def start(self, store: Store, run: Run) -> None:
        """Start training a trial's run (which records how it ended)."""

    def wait(self, store: Store) -> list[int]:
        """Block until a started trial has ended; the run ids of those that have."""
        ...


def search(store: Store, *, paths: Paths, run: Run, trials: Trials | None = None) -> tuple[str, dict[str, Any]]:
    """The body of a search job: propose, train and score trials until `trials` are done or a cancel.

    `trials` says where they train (default: one after another in this process); with more than one slot, the
    oracle proposes the next trial before the last has ended, as keras-tuner's parallel tuning does.
    """
    runner = trials or InlineTrials(paths)
    spec = dict(run.spec)
    settings = spec.pop("search")
    folder = str(paths.run_dir(run.id))
    oracle = _oracle(settings, seed=int(spec.get("seed", 42)), folder=folder)
    for stale in store.list_runs(parent_id=run.id):  # trials the last worker was training when it died
        if stale.status in ("queued", "running"):
            store.update_run(stale.id, status="interrupted", finished_at=utcnow())

    def done() -> list[Run]:
        return [t for t in store.list_runs(parent_id=run.id) if t.status == "succeeded"]

    training_now: dict[int, Any] = {}  # trial run id -> keras-tuner's trial
    exhausted, proposed = False, 0
    while True:
        while (
            not exhausted
            and len(training_now) < runner.slots
            and len(done()) + len(training_now) < settings["trials"]
            and not store.cancel_requested(run.id)
        ):
            proposed += 1
            trial = oracle.create_trial(f"modeldeck-{proposed}")  # one id per trial in flight
            if trial.status == "STOPPED":  # the oracle has nothing left to try (a small space)
                exhausted = True
                break
            child = store.create_run(
                version_id=run.version_id,
                task=run.task,
                target=run.target,
                spec=_typed({**spec, **trial.hyperparameters.values}, task=run.task),
                override_reason=run.override_reason,
                parent_id=run.id,
                queue=False,
            )
            training_now[child.id] = trial
            runner.start(store, store.update_run(child.id, started_at=utcnow()))
        if not training_now:
            break
        for trial_run in runner.wait(store):
            trial = training_now.pop(trial_run)
            trial_status = store.get_run(trial_run)
            score = best_validation_loss(store, trial_run)
            succeeded = trial_status is not None and trial_status.status == "succeeded"
            trial.status = "COMPLETED" if succeeded and math.isfinite(score) else "FAILED"
            if trial.status == "COMPLETED":
                oracle.update_trial(trial.trial_id, {"score": score})
            oracle.end_trial(trial)
        finished = len(done())
        store.update_run(
            run.id, progress={"fraction": min(1.0, finished / settings["trials"]), "trials_done": finished}
        )
    trials_done = done()
    if not trials_done:
        return ("cancelled", {}) if store.cancel_requested(run.id) else ("failed", {"error": "No trial succeeded."})
    best = min(trials_done, key=lambda t: best_validation_loss(store, t.id))
    evaluation = {"search": {"best_run": best.id, "objective": OBJECTIVE, "trials": summary(store, run.id)}}
    status = "cancelled" if store.cancel_requested(run.id) else "succeeded"
    values = {"metrics": best.metrics, "evaluation": evaluation, "epochs_done": best.epochs_done, "device": best.device}
    return status, values
