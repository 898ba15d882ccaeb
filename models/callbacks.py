"""The engine's callbacks: the reporter, per-epoch TensorBoard scalars, and the backup a killed run resumes from.

The reporter is the one way training talks to the outside world. It forwards `(epoch, logs)` to a plain
function after each epoch, reports progress within an epoch (throttled by time), and stops training when
`should_stop()` says so, which is how a cancel reaches `model.stop_training`.

Speed: a callback with a batch hook makes Keras run batch hooks on the training thread and turn every
batch's logs into Python numbers, a device sync per step, unless it says `async_safe`. So none of these
callbacks has a batch hook: the reporter's watcher thread wakes once a second and reads the optimizer's step
counter. For the same reason TensorBoard's logs come from `EpochSummaries`, not from Keras' TensorBoard
callback: even with per-epoch summaries, that callback slowed each epoch of the bench's MLP by 17-25% on a
2-core CPU (fits interleaved in one process), while writing the same scalars once per epoch costs about 1%.
And `Backup` does what Keras' `BackupAndRestore` does at a seventh of its cost per epoch (its docstring).

What is left at each epoch's end, writing the backup file, the DB record and the TensorBoard scalars, took
13-15 ms of the training thread's time for the bench's MLP, whose epoch takes 0.3-0.4 s on a 2-core CPU. Given
a `Writes`, the callbacks hand those writes to one background thread, in order, and the training thread only
copies the variables for the backup: 4-5 ms in all, much of it waiting for Python's lock while the writes run.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class Writes:
    """Runs the callbacks' epoch-end writes on one background thread, one after another in the order they were
    handed over, while the training thread goes on with the next epoch. Each callback that hands writes over
    waits for them all as training ends, before it cleans up. A write that fails drops the ones after it and
    fails the fit, with its own error, at the next hand-over or at the end of training.

    Order is what keeps a kill harmless: the backup of an epoch is handed over before its DB record, so an epoch
    the DB shows as done is always backed up. A kill loses at most the writes still queued, each one whole: the
    backup is renamed into place and the DB record is one transaction."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None  # the write that failed; every one after it is dropped
        self._raised = False

    def submit(self, write: Callable[[], object]) -> None:
        self._raise_error()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modeldeck-writes", daemon=True)
            self._thread.start()
        self._queue.put(write)

    def _run(self) -> None:
        while (write := self._queue.get()) is not None:
            if self._error is None:  # after a failure, the rest are dropped: they would build on it
                try:
                    write()
                except BaseException as exc:  # noqa: BLE001 (handed to the training thread, which raises it)
                    self._error = exc

    def wait(self) -> None:
        """Until every write handed over so far is done; raises the error of one that failed."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None and not self._raised:  # once, so that a later wait goes on
            self._raised = True
            raise self._error


def _write(writes: Writes | None, write: Callable[[], object]) -> None:
    """Hand `write` to the background thread, or without one, write now."""
    if writes is None:
        write()
    else:
        writes.submit(write)


def _wait(writes: Writes | None) -> None:
    if writes is not None:
        writes.wait()


def epoch_logs(logs: dict[str, Any] | None) -> dict[str, float]:
    """An epoch's metrics as they are recorded: numbers only, without the learning rate (a schedule's, not a
    metric)."""
    numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float) or hasattr(v, "__float__")}
    numbers.pop("learning_rate", None)
    return numbers


class Reporter(keras.callbacks.Callback):
    def __init__(
        self,
        *,
        on_epoch: Callable[[int, dict[str, float], dict[str, Any]], None],
        on_progress: Callable[[dict[str, Any]], object],
        should_stop: Callable[[], bool],
        epochs: int,
        steps_per_epoch: int,
        batch_size: int,
        every_s: float = 1.0,
        writes: Writes | None = None,
    ) -> None:
        super().__init__()
        self.on_epoch, self.on_progress, self.should_stop = on_epoch, on_progress, should_stop
        self.writes = writes
        self.epochs, self.steps, self.batch_size, self.every_s = epochs, steps_per_epoch, batch_size, every_s
        self.stopped_by_request = False
        self.nan_epoch: int | None = None  # the epoch whose loss was NaN or infinite, if one was
        self.first_epoch: int | None = None  # above 0 when training resumed from a backup
        self._epoch = 0
        self._started = 0.0
        self._epoch_started = 0.0
        self._first_iteration = 0  # the optimizer's step counter when this fit started (a resume restores it)
        self._epoch_iteration = 0
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def _iterations(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def progress(self, step: int) -> dict[str, Any]:
        """Where training is, how fast it goes, and how long it has left (at the current pace)."""
        now = time.monotonic()
        elapsed, epoch_elapsed = now - self._started, now - self._epoch_started
        samples = (self._epoch_iteration + step - self._first_iteration) * self.batch_size
        done_steps = self._epoch * self.steps + step
        total_steps = self.epochs * self.steps
        # This epoch's pace once it has steps, the whole fit's before that: an estimate from the first epoch on.
        step_time = epoch_elapsed / step if step else (elapsed / done_steps if done_steps else 0.0)
        return {
            "epoch": self._epoch,
            "epochs": self.epochs,
            "step": step,
            "steps": self.steps,
            "fraction": min(1.0, done_steps / max(1, total_steps)),
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(step_time * (total_steps - done_steps), 1) if step_time else None,
            "samples_per_s": round(samples / elapsed, 1) if elapsed > 0 else 0.0,
            "first_epoch": self.first_epoch,
        }

    def _poll(self) -> None:
        if self.should_stop():
            self.stopped_by_request = True
            self.model.stop_training = True

    def _watch(self) -> None:
        """Once a second while the fit runs: progress within the epoch, and a cancel request in."""
        while not self._stop.wait(self.every_s):
            if self.first_epoch is None:
                continue
            step = min(self.steps, max(0, self._iterations() - self._epoch_iteration))
            self.on_progress(self.progress(step))
            self._poll()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = time.monotonic()
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="modeldeck-reporter", daemon=True)
        self._watcher.start()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        _wait(self.writes)  # every epoch in the DB before `fit` returns

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_iteration = self._iterations()
        if self.first_epoch is None:  # after Backup has restored the counter on a resume
            self.first_epoch, self._first_iteration = epoch, self._epoch_iteration
        self._epoch = epoch
        self._epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = epoch_logs(logs)
        self._epoch_iteration = self._iterations()
        self._epoch = epoch + 1
        progress = self.progress(0)
        _write(self.writes, lambda: self.on_epoch(epoch, logs, progress))
        if not math.isfinite(logs.get("loss", 0.0)):
            self.nan_epoch = epoch + 1
            self.model.stop_training = True
        self._poll()


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars once per epoch, in the layout of Keras' TensorBoard callback: `train/` and
    `validation/` runs with `epoch_<metric>` tags, so each metric's two curves share a chart."""

    def __init__(self, log_dir: Path, *, writes: Writes | None = None) -> None:
        super().__init__()
        self.log_dir, self.writes = log_dir, writes
        self._writers: dict[str, Any] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        _write(self.writes, self._open)  # the first writers of a process take 20-50 ms to open

    def _open(self) -> None:
        self._writers = {run: tf.summary.create_file_writer(str(self.log_dir / run)) for run in ("train", "validation")}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {name: float(value) for name, value in (logs or {}).items()}
        if "learning_rate" not in logs and getattr(self.model, "optimizer", None) is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        _write(self.writes, lambda: self._scalars(epoch, logs))

    def _scalars(self, epoch: int, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            run, tag = ("validation", name[len("val_") :]) if name.startswith("val_") else ("train", name)
            with self._writers[run].as_default(step=epoch):  # the default writer is the calling thread's
                tf.summary.scalar(f"epoch_{tag}", value)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        _write(self.writes, self._close)
        _wait(self.writes)

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()


class Backup(keras.callbacks.Callback):
    """After each epoch, the model's and the optimizer's variables and the epoch count, in one file; a fit that
    finds the file restores them and starts after that epoch, so a run whose worker was killed resumes where
    it was. The file is removed when the fit ends.

    Keras' `BackupAndRestore` does the same through an HDF5 weights file and a JSON file, written in place:
    15-20 ms per epoch for the bench's MLP and text model and 36-51 ms for its CNN, where this takes 2-9 ms,
    and a kill during the write tore the file. Here the file is written beside the last one and renamed over
    it, so a kill at any moment leaves a whole backup, the last one or the one before.

    The backup holds its epoch's metrics too. The record of an epoch is written after its backup, so a kill
    between the two leaves an epoch that is backed up but not recorded; a resumed fit starts after it, and hands
    its metrics to `on_restore(epoch, logs)` (re-recording an epoch that was recorded changes nothing)."""

    def __init__(
        self,
        folder: Path,
        *,
        writes: Writes | None = None,
        on_restore: Callable[[int, dict[str, float]], object] | None = None,
    ) -> None:
        super().__init__()
        self.writes, self.on_restore = writes, on_restore
        self.path = folder / "backup.npz"
        self.partial = folder / "backup.npz.partial"  # the next backup while it is written

    def _variables(self) -> list[Any]:
        return [*self.model.weights, *self.model.optimizer.variables]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self.path.exists():
            return
        if not self.model.optimizer.built:  # its slots exist only after the first step otherwise
            self.model.optimizer.build(self.model.trainable_variables)
        variables = self._variables()
        with np.load(self.path) as saved:
            values = [saved[f"v{i}"] for i in range(sum(name.startswith("v") for name in saved.files))]
            epoch = int(saved["epoch"])
            logs = json.loads(str(saved["logs"])) if "logs" in saved.files else None  # older backups had none
        if [value.shape for value in values] != [tuple(variable.shape) for variable in variables]:
            raise ValueError(
                f"The backup {self.path} does not fit this run's model. Delete it to train from the start."
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        self.model._initial_epoch = epoch  # where `fit` starts; Keras' BackupAndRestore sets the same attribute
        if logs is not None and self.on_restore is not None:
            self.on_restore(epoch - 1, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {f"v{i}": keras.ops.convert_to_numpy(variable) for i, variable in enumerate(self._variables())}
        values["logs"] = np.array(json.dumps(epoch_logs(logs)))
        _write(self.writes, lambda: self._save(epoch + 1, values))

    def _save(self, epoch: int, values: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.partial.open("wb") as file:
            np.savez(file, epoch=np.int64(epoch), **values)
        os.replace(self.partial, self.path)  # atomic: a reader sees the old file or the new one, never half of one

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        _wait(self.writes)
        self.path.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)
