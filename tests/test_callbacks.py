"""The reporter: progress from a watcher thread, cancel, and NaN detection, on tiny in-process fits."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.callbacks import EpochSummaries, Reporter


def _model(learning_rate: float = 0.01) -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate), loss="mse")
    return model


def _data(rows: int = 256, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 4)).astype("float32") * scale
    return x, (x.sum(axis=1, keepdims=True) * scale).astype("float32")


class Slow(keras.callbacks.Callback):
    """Makes each step take a while, so the watcher gets to look in mid-epoch."""

    async_safe = True

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        time.sleep(0.01)


def _reporter(**overrides) -> tuple[Reporter, dict[str, list]]:
    seen: dict[str, list] = {"epochs": [], "progress": []}
    values = {
        "on_epoch": lambda epoch, logs, progress: seen["epochs"].append((epoch, sorted(logs))),
        "on_progress": seen["progress"].append,
        "should_stop": lambda: False,
        "epochs": 2,
        "steps_per_epoch": 16,
        "batch_size": 16,
        "every_s": 0.05,
    } | overrides
    return Reporter(**values), seen


def test_epochs_are_forwarded_with_their_logs_and_progress_comes_from_the_watcher() -> None:
    reporter, seen = _reporter()
    x, y = _data()
    _model().fit(x, y, batch_size=16, epochs=2, callbacks=[reporter, Slow()], verbose=0)
    assert seen["epochs"] == [(0, ["loss"]), (1, ["loss"])]
    assert seen["progress"], "the watcher reported nothing within an epoch"
    assert all(0 <= p["step"] <= 16 and p["samples_per_s"] >= 0 for p in seen["progress"])
    assert reporter.progress(0)["samples_per_s"] > 0
    assert not reporter._watcher.is_alive()


def test_a_cancel_request_stops_training_mid_epoch() -> None:
    reporter, seen = _reporter(should_stop=lambda: True, epochs=50)
    x, y = _data()
    history = _model().fit(x, y, batch_size=16, epochs=50, callbacks=[reporter, Slow()], verbose=0)
    assert (reporter.stopped_by_request, len(history.history["loss"]) <= 2) == (True, True)


def test_an_exploding_loss_stops_training_and_names_the_epoch() -> None:
    reporter, _ = _reporter(epochs=20)
    x, y = _data(scale=1e3)
    history = _model(learning_rate=10.0).fit(x, y, batch_size=16, epochs=20, callbacks=[reporter], verbose=0)
    assert reporter.nan_epoch == len(history.history["loss"]) == 1


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from the TensorBoard event files in `folder`."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


def test_epoch_summaries_write_tensorboards_train_and_validation_curves(tmp_path) -> None:
    x, y = _data()
    history = _model().fit(
        x, y, validation_split=0.25, batch_size=16, epochs=2, callbacks=[EpochSummaries(tmp_path)], verbose=0
    )
    train, validation = _scalars(tmp_path / "train"), _scalars(tmp_path / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]
    assert [v for _, v in train["epoch_loss"]] == pytest.approx(history.history["loss"])
    assert [v for _, v in validation["epoch_loss"]] == pytest.approx(history.history["val_loss"])
    assert "epoch_learning_rate" in train and "epoch_learning_rate" not in validation
