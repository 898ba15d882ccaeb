"""The body of a training job. It runs in a child process of the worker, never in the dashboard.

Steps: load the version → split → plan the preprocessing → build under the device strategy → fit
with early stopping, backups and the reporter → export → evaluate the export on the test split.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.config import Paths
from db import Run, Store

log = logging.getLogger(__name__)


def model_name_for(dataset_name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", dataset_name.lower()).strip("-") or "model"


def environment() -> dict[str, Any]:
    import keras
    import numpy
    import sklearn
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def task_data(store: Store, *, paths: Paths, run: Run) -> Any:
    """The run's dataset version as a family receives it: the table (images with their bytes) and the roles."""
    from backend import data
    from models.task import ROW, TaskData

    version = store.get_version(run.version_id)
    assert version is not None
    frame = data.load_frame(version)
    if "file" in frame.columns and run.task == "image-classification":
        root = paths.datasets.resolve()
        frame = frame.assign(image=[(root / f).read_bytes() for f in frame["file"].astype(str)])
    if run.task in ("classification", "regression"):  # the rows' positions, so evaluation can name them
        frame = frame.assign(**{ROW: range(len(frame))})
    roles: dict[str, str | None] = {**data.roles(version.columns), "target": run.target}

    def progress(phase: str, fraction: float) -> None:
        store.update_run(run.id, progress={"phase": phase, "fraction": round(fraction, 4)})

    return TaskData(frame=frame, roles=roles, columns=version.columns, task=run.task, progress=progress)


def train(store: Store, *, paths: Paths, run: Run) -> tuple[str, dict[str, Any]]:
    import importlib

    import keras
    import tensorflow as tf

    from backend.jobs import diagnostics
    from models import devices
    from models.task import Choice
    from models.tasks import spec_from_dict, task_info

    run_dir = paths.run_dir(run.id)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = spec_from_dict(run.spec, task=run.task)

    # 1. Reproducible: one seed for everything, deterministic ops on the CPU; a fresh graph for each run (a
    #    search trains its trials one after another in one process).
    keras.backend.clear_session()
    (run_dir / "spec.json").write_text(json.dumps(run.spec, indent=2))
    keras.utils.set_random_seed(spec.seed)
    tf.config.experimental.enable_op_determinism()
    setup = devices.detect()
    store.update_run(run.id, device=setup.device, environment={**environment(), **setup.to_dict()})

    # 2. Data and preprocessing, by the task's family: the same split every time (so a resumed run continues
    #    on the same rows), adapted on the training part only, before the precision policy (it stays float32).
    family = importlib.import_module(task_info(run.task).family)
    batch = spec.batch_size * setup.replicas
    try:
        prepared = family.prepare(task_data(store, paths=paths, run=run), spec=spec, batch_size=batch)
    except ValueError as exc:  # the family's words for data it cannot train on
        return "failed", {"error": str(exc).splitlines()[0][:500]}
    # 3-4. Model and fit: one family's, or each candidate's and the best of them.
    strategy = devices.apply(setup)
    selection: dict[str, Any] = {}
    if isinstance(prepared, Choice):  # architecture=auto: each candidate trains; the best on validation wins
        prepared, fitted, selection = choose(
            store, run, spec, prepared, run_dir=run_dir, batch=batch, strategy=strategy
        )
    else:
        (run_dir / "plan.json").write_text(json.dumps(prepared.plan, indent=2, default=str))
        fitted = fit(store, run, spec, prepared, run_dir=run_dir, batch=batch, strategy=strategy)
    if fitted.outcome is not None:
        return fitted.outcome
    net, curves, trained = fitted.model, fitted.curves, fitted.progress

    # 5. Export in TensorFlow Serving's layout, then evaluate what was exported (plain TensorFlow, raw inputs).
    version = store.get_version(run.version_id)
    dataset = store.find_dataset(version.dataset_id) if version else None
    assert dataset is not None
    base = model_name_for(dataset.name)  # a name another task holds gets the task added (`churn-regression`)
    name, version_number = store.name_model(
        run.id, names=[base, f"{base}-{run.task}"], task=run.task, export_parent=paths.relative(run_dir / "export")
    )
    export_dir = run_dir / "export" / name / str(version_number)
    store.update_run(run.id, progress=(trained or {}) | {"phase": "exporting"})  # what the page says after 100%
    if fitted.exported is not None:
        export_dir.parent.mkdir(parents=True, exist_ok=True)
        fitted.exported.rename(export_dir)
    else:
        prepared.export(net, export_dir)
    store.update_run(run.id, progress=(trained or {}) | {"phase": "evaluating"})
    scores, details = prepared.evaluate(export_dir)
    if "test_scores" in details:  # each test case's score: for choosing a threshold later (backend/jobs/decisions.py)
        import numpy as np

        from models.decision import TEST_SCORES

        np.savez_compressed(run_dir / TEST_SCORES, **details.pop("test_scores"))
    if "test_predictions" in details:  # each test row's answer: the Evaluation page's gallery (jobs/gallery.py)
        import pandas as pd

        from models.task import TEST_PREDICTIONS

        pd.DataFrame(details.pop("test_predictions")).to_parquet(run_dir / TEST_PREDICTIONS, index=False)
    details["plan"] = prepared.plan
    if selection:
        details["selection"] = selection
    details["diagnostics"] = diagnostics.diagnose(
        curves,
        task=run.task,
        classes=len(prepared.plan.get("classes", [])),
        metrics=scores,
        baseline=details.get("baseline", {}),
        learning_rate=spec.learning_rate,
        trees=prepared.plan.get("architecture") == "gbt",
    )
    return "succeeded", {"metrics": scores, "evaluation": details, "progress": trained}


@dataclass
class Fitted:
    """A trained model with its curves and final progress, or `outcome`: why the run ends here instead."""

    model: Any = None
    curves: dict[str, list[float]] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    outcome: tuple[str, dict[str, Any]] | None = None
    exported: Path | None = None  # a candidate's export, already written: moved into place, not written again


def fit(store: Store, run: Run, spec: Any, prepared: Any, *, run_dir: Path, batch: int, strategy: Any) -> Fitted:
    """Train one family's model: in one call (trees), or Keras' fit with the engine's callbacks (networks)."""
    if prepared.fit is not None:  # trees: no network, no epochs; one call grows them (seconds on a table)
        model, curves = prepared.fit()
        if store.cancel_requested(run.id):
            return Fitted(outcome=("cancelled", {}))
        return Fitted(model, curves, record_curves(store, run, curves))
    assert prepared.build is not None
    with strategy.scope():  # built under the strategy, so its variables live on every replica
        net = prepared.build()
    # The reporter writes curves and progress to the DB and carries a cancel request in.
    reporter, callbacks = fit_callbacks(
        store, run, spec, run_dir=run_dir, train_examples=prepared.train_examples, batch=batch
    )
    history = net.fit(
        prepared.train,
        validation_data=prepared.validation,
        epochs=spec.epochs,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
    if reporter.stopped_by_request:
        return Fitted(outcome=("cancelled", {}))
    if reporter.nan_epoch is not None:
        error = (
            f"The loss became NaN or infinite in epoch {reporter.nan_epoch}. Lower the "
            "learning_rate (e.g. 0.0001) or check the data for extreme values."
        )
        return Fitted(outcome=("failed", {"error": error}))
    curves = {k: [float(v) for v in values] for k, values in history.history.items()}
    return Fitted(net, curves, reporter.progress(0) | {"fraction": 1.0})  # before export and evaluation


def choose(
    store: Store, run: Run, spec: Any, choice: Any, *, run_dir: Path, batch: int, strategy: Any
) -> tuple[Any, Fitted, dict[str, Any]]:
    """Train every candidate family on the same split; the one whose export scores best on validation wins.

    Each candidate is exported and scored on the validation rows (what is served is what is judged); a
    candidate that fails (a loss gone NaN) drops out. When the choice allows, the average of the two best
    exports is a candidate too (`models/ensemble.py`). The run keeps the winner's curves. Returns the winner's
    family data, its fit and the selection (metric, each candidate's score, the winner); a fit whose `outcome`
    ends the run instead when it is cancelled or every candidate fails.
    """
    import shutil

    scores: dict[str, float] = {}
    failures: dict[str, str] = {}
    trained: dict[str, tuple[Any, Fitted]] = {}
    for name, candidate in choice.candidates.items():
        folder = run_dir / "candidates" / name  # its own backups and logs: a resumed run must not mix them
        fitted = fit(store, run, spec, candidate, run_dir=folder, batch=batch, strategy=strategy)
        if fitted.outcome is not None and fitted.outcome[0] == "cancelled":
            return None, fitted, {}
        if fitted.outcome is not None:
            failures[name] = fitted.outcome[1].get("error", "")
            continue
        fitted.exported = folder / "export"
        candidate.export(fitted.model, fitted.exported)
        scores[name] = candidate.validate(fitted.exported)
        trained[name] = (candidate, fitted)
    if not trained:
        error = "; ".join(f"{name}: {error}" for name, error in failures.items())
        return None, Fitted(outcome=("failed", {"error": error})), {}
    ranked = sorted(scores, key=scores.__getitem__)
    if choice.ensemble and len(ranked) >= 2:
        trained["ensemble"] = _ensemble(ranked[:2], trained, folder=run_dir / "candidates" / "ensemble")
        scores["ensemble"] = trained["ensemble"][0].validate(trained["ensemble"][1].exported)
    winner = min(scores, key=scores.__getitem__)
    prepared, fitted = trained[winner]
    for name, (_, other) in trained.items():  # only the winner's export is kept
        if name != winner and other.exported is not None and other.exported.exists():
            shutil.rmtree(other.exported)
    store.clear_metrics(run.id)  # the curves shown are the winner's
    fitted.progress = fitted.progress | record_curves(store, run, fitted.curves)  # its speed kept: samples_per_s
    (run_dir / "plan.json").write_text(json.dumps(prepared.plan, indent=2, default=str))
    selection = {"metric": choice.metric, "scores": scores, "winner": winner, "failed": failures}
    return prepared, fitted, selection


def _ensemble(members: list[str], trained: dict[str, tuple[Any, Fitted]], *, folder: Path) -> tuple[Any, Fitted]:
    """The average of two trained candidates' exports, as a candidate: the best member's plan, curves and scoring."""
    from dataclasses import replace

    from models import ensemble

    best, best_fit = trained[members[0]]
    ensemble.export([trained[m][1].exported for m in members], folder / "export")  # type: ignore[misc]
    plan = best.plan | {"architecture": "ensemble", "members": members}
    return replace(best, plan=plan), Fitted(best_fit.model, best_fit.curves, exported=folder / "export")


CURVE_POINTS = 100  # a forest's curves are kept at this many points at most (one per tree is up to thousands)


def record_curves(store: Store, run: Run, curves: dict[str, list[float]]) -> dict[str, Any]:
    """A family's curves (one value per step, e.g. per tree) written as epochs; returns the final progress."""
    steps = max((len(values) for values in curves.values()), default=0)
    stride = max(1, -(-steps // CURVE_POINTS))
    progress: dict[str, Any] = {"epoch": max(steps - 1, 0), "epochs": steps, "fraction": 1.0}
    for step in sorted({*range(stride - 1, steps, stride), steps - 1} - {-1}):
        logs = {name: values[step] for name, values in curves.items() if step < len(values)}
        store.record_epoch(run.id, epoch=step, logs=logs, progress=progress)
    return progress


def fit_callbacks(
    store: Store, run: Run, spec: Any, *, run_dir: Path, train_examples: int, batch: int
) -> tuple[Any, list[Any]]:
    """The reporter, which says how the fit ended, and the engine's callbacks for one run's `fit`.

    The callbacks are, in order: the backup, the reporter (curves and progress to the DB, a cancel request in),
    the learning-rate schedule, TensorBoard scalars and early stopping.
    """
    import keras

    from models.callbacks import Backup, EpochSummaries, Reporter, Writes

    writes = Writes()  # the epoch-end writes, off the training thread, in the order of the callbacks below
    reporter = Reporter(
        on_epoch=lambda epoch, logs, progress: store.record_epoch(run.id, epoch=epoch, logs=logs, progress=progress),
        on_progress=lambda progress: store.update_run(run.id, progress=progress),
        should_stop=lambda: (
            store.cancel_requested(run.id)
            or (
                run.parent_id is not None and store.cancel_requested(run.parent_id)
            )  # a search's cancel stops its trial
            or os.getppid() == 1
        ),
        epochs=spec.epochs,
        steps_per_epoch=-(-train_examples // batch),
        batch_size=batch,
        writes=writes,
    )
    callbacks: list[keras.callbacks.Callback] = [  # no synchronous batch hook: the steps stay pipelined
        Backup(  # first, so an epoch the DB shows as done is backed up
            run_dir / "checkpoints",
            writes=writes,
            on_restore=lambda epoch, logs: store.record_epoch(  # the epoch a kill left backed up but not recorded
                run.id, epoch=epoch, logs=logs, progress=run.progress
            ),
        ),
        reporter,
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(2, spec.patience // 2)),
        EpochSummaries(run_dir / "tensorboard", writes=writes),
    ]
    if spec.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience, restore_best_weights=True)
        )
    return reporter, callbacks
