"""The one callback through which training talks to the outside world.

It forwards `(epoch, logs)` to a plain function after each epoch, reports progress within an epoch
(throttled by time: batch callbacks run synchronously, so a DB write per batch would slow training),
and stops training when `should_stop()` says so, which is how a cancel reaches `model.stop_training`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras


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
        self.first_epoch: int | None = None  # above 0 when training resumed from a backup
        self._epoch = 0
        self._last = 0.0
        self._started = 0.0
        self._epoch_started = 0.0
        self._samples = 0

    def progress(self, step: int) -> dict[str, Any]:
        """Where training is, how fast it goes, and how long it has left (at the current pace)."""
        elapsed = time.monotonic() - self._started
        epoch_elapsed = time.monotonic() - self._epoch_started
        rate = self._samples / elapsed if elapsed > 0 else 0.0
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
            "samples_per_s": round(rate, 1),
            "first_epoch": self.first_epoch,
        }

    def _poll(self) -> None:
        if self.should_stop():
            self.stopped_by_request = True
            self.model.stop_training = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = self._last = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
        self._epoch = epoch
        self._epoch_started = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._samples += self.batch_size
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.on_progress(self.progress(batch + 1))
            self._poll()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float) or hasattr(v, "__float__")}
        logs.pop("learning_rate", None)
        self._epoch = epoch + 1
        self.on_epoch(epoch, logs, self.progress(0))
        self._poll()
