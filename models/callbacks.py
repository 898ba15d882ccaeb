"""The one callback through which training talks to the outside world.

It forwards `(epoch, logs)` to a plain function after each epoch, reports progress within an epoch
(throttled by time), and stops training when `should_stop()` says so, which is how a cancel reaches
`model.stop_training`.

Speed: a callback with a batch hook makes Keras run batch hooks on the training thread and turn every
batch's logs into Python numbers, a device sync per step, unless it says `async_safe`. So the reporter
has no batch hook at all: a watcher thread wakes once a second and reads the optimizer's step counter.
`async_safe()` marks the stock checkpoint callback, whose batch hooks do nothing with per-epoch saves.
For the same reason TensorBoard's logs come from `EpochSummaries`, not from Keras' TensorBoard callback:
even with per-epoch summaries, that callback slowed each epoch of the bench's MLP by 17-25% on a 2-core
CPU (fits interleaved in one process), while writing the same scalars once per epoch costs about 1%.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf


def async_safe(callback: keras.callbacks.Callback) -> keras.callbacks.Callback:
    """Let Keras run this callback's batch hook off the training thread (see the module docstring)."""
    callback.async_safe = True
    return callback


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
        if self.first_epoch is None:  # after BackupAndRestore has restored the counter on a resume
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
