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
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf


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
    ) -> None:
        super().__init__()
        self.on_epoch, self.on_progress, self.should_stop = on_epoch, on_progress, should_stop
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
        step_time = epoch_elapsed / step if step else 0.0
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

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_iteration = self._iterations()
        if self.first_epoch is None:  # after Backup has restored the counter on a resume
            self.first_epoch, self._first_iteration = epoch, self._epoch_iteration
        self._epoch = epoch
        self._epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float) or hasattr(v, "__float__")}
        logs.pop("learning_rate", None)
        self._epoch_iteration = self._iterations()
        self._epoch = epoch + 1
        self.on_epoch(epoch, logs, self.progress(0))
        if not math.isfinite(logs.get("loss", 0.0)):
            self.nan_epoch = epoch + 1
            self.model.stop_training = True
        self._poll()


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars once per epoch, in the layout of Keras' TensorBoard callback: `train/` and
    `validation/` runs with `epoch_<metric>` tags, so each metric's two curves share a chart."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = log_dir
        self._writers: dict[str, Any] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._writers = {run: tf.summary.create_file_writer(str(self.log_dir / run)) for run in ("train", "validation")}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        if getattr(self.model, "optimizer", None) is not None:  # the rate a schedule or ReduceLROnPlateau set
            logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        for name, value in logs.items():
            run, tag = ("validation", name[len("val_") :]) if name.startswith("val_") else ("train", name)
            with self._writers[run].as_default(step=epoch):
                tf.summary.scalar(f"epoch_{tag}", float(value))
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()


class Backup(keras.callbacks.Callback):
    """After each epoch, the model's and the optimizer's variables and the epoch count, in one file; a fit that
    finds the file restores them and starts after that epoch, so a run whose worker was killed resumes where
    it was. The file is removed when the fit ends.

    Keras' `BackupAndRestore` does the same through an HDF5 weights file and a JSON file, written in place:
    15-20 ms per epoch for the bench's MLP and text model and 36-51 ms for its CNN, where this takes 2-9 ms,
    and a kill during the write tore the file. Here the file is written beside the last one and renamed over
    it, so a kill at any moment leaves a whole backup, the last one or the one before."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
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
            values = [saved[f"v{i}"] for i in range(len(saved.files) - 1)]
            epoch = int(saved["epoch"])
        if [value.shape for value in values] != [tuple(variable.shape) for variable in variables]:
            raise ValueError(
                f"The backup {self.path} does not fit this run's model. Delete it to train from the start."
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        self.model._initial_epoch = epoch  # where `fit` starts; Keras' BackupAndRestore sets the same attribute

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {f"v{i}": keras.ops.convert_to_numpy(variable) for i, variable in enumerate(self._variables())}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.partial.open("wb") as file:
            np.savez(file, epoch=np.int64(epoch + 1), **values)
        os.replace(self.partial, self.path)  # atomic: a reader sees the old file or the new one, never half of one

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.path.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)
