"""The engine's callbacks on tiny in-process fits: the reporter (progress from a watcher thread, cancel, NaN
detection), TensorBoard scalars, the backup a resumed fit starts from, and the background thread that writes
them."""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.callbacks import Backup, EpochSummaries, Reporter, Writes


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


def test_the_time_left_is_estimated_from_the_first_epoch_on_even_at_an_epochs_first_step() -> None:
    reporter, seen = _reporter(epochs=3)
    x, y = _data()
    _model().fit(x, y, batch_size=16, epochs=3, callbacks=[reporter, Slow()], verbose=0)
    after_the_first = [p for p in seen["progress"] if p["epoch"] >= 1]
    assert after_the_first and all(p["eta_s"] is not None for p in after_the_first), after_the_first
    assert reporter.progress(0)["eta_s"] is not None, "at the start of an epoch, the fit's pace so far"


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


class Interrupt(keras.callbacks.Callback):
    """Stands for a killed worker: raises as epoch `at` begins, after keeping the state the backup should hold."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.state: list[np.ndarray] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.at:
            self.state = [np.array(v) for v in [*self.model.weights, *self.model.optimizer.variables]]
            raise KeyboardInterrupt


class Begins(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, list[np.ndarray]]] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.seen.append((epoch, [np.array(v) for v in [*self.model.weights, *self.model.optimizer.variables]]))


def _interrupted_fit(folder) -> tuple[Backup, list[np.ndarray]]:
    """A fit killed as its fourth epoch begins, after three epochs' backups."""
    x, y = _data()
    model, backup, interrupt = _model(), Backup(folder), Interrupt(at=3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=5, callbacks=[backup, interrupt], verbose=0)
    return backup, interrupt.state


def _resumed_fit(folder) -> tuple[keras.callbacks.History, Begins]:
    x, y = _data()
    begins = Begins()
    history = _model().fit(x, y, batch_size=16, epochs=5, callbacks=[Backup(folder), begins], verbose=0)
    return history, begins


def test_a_fresh_model_resumes_after_the_last_backed_up_epoch_with_its_weights_and_optimizer(tmp_path) -> None:
    backup, state = _interrupted_fit(tmp_path)
    assert backup.path.is_file()
    history, begins = _resumed_fit(tmp_path)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4
    epoch, restored = begins.seen[0]
    assert epoch == 3
    assert len(restored) == len(state) and all(np.array_equal(a, b) for a, b in zip(restored, state, strict=True))
    assert not backup.path.exists(), "a finished fit leaves no backup behind"


def test_an_epoch_backed_up_but_never_recorded_is_handed_back_when_the_fit_resumes(tmp_path) -> None:
    """A kill after an epoch's backup and before its record: the resumed fit starts after that epoch, so its
    metrics come from the backup (the run's curve would have a hole there)."""
    x, y = _data()
    model, interrupt = _model(), Interrupt(at=3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=5, callbacks=[Backup(tmp_path), interrupt], verbose=0)
    lost = model.history.history["loss"][2]
    handed: list[tuple[int, dict[str, float]]] = []
    backup = Backup(tmp_path, on_restore=lambda epoch, logs: handed.append((epoch, logs)))
    history = _model().fit(x, y, batch_size=16, epochs=5, callbacks=[backup], verbose=0)
    assert handed == [(2, {"loss": pytest.approx(lost)})]
    assert len(history.history["loss"]) == 2  # epochs 3 and 4, as before


def test_a_backup_killed_while_writing_leaves_the_last_one_whole(tmp_path, monkeypatch) -> None:
    backup, state = _interrupted_fit(tmp_path)

    def dies_midway(file, **arrays) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(3)
    monkeypatch.undo()
    _, begins = _resumed_fit(tmp_path)
    epoch, restored = begins.seen[0]
    assert epoch == 3 and all(np.array_equal(a, b) for a, b in zip(restored, state, strict=True))


def test_a_backup_of_another_model_is_refused_with_a_way_out(tmp_path) -> None:
    _interrupted_fit(tmp_path)
    x, y = _data()
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    other.compile(keras.optimizers.SGD(0.01), loss="mse")
    with pytest.raises(ValueError, match="does not fit this run's model. Delete it"):
        other.fit(x, y, epochs=1, callbacks=[Backup(tmp_path)], verbose=0)


def test_writes_leave_the_training_thread_and_are_all_done_when_fit_returns(tmp_path) -> None:
    before = set(threading.enumerate())
    writes = Writes()
    threads: list[tuple[int, str]] = []

    def record(epoch: int, logs: dict, progress: dict) -> None:
        threads.append((epoch, threading.current_thread().name))

    reporter, _ = _reporter(epochs=3, writes=writes, on_epoch=record)
    x, y = _data()
    callbacks = [Backup(tmp_path / "checkpoints", writes=writes), reporter, EpochSummaries(tmp_path, writes=writes)]
    history = _model().fit(x, y, validation_split=0.25, batch_size=16, epochs=3, callbacks=callbacks, verbose=0)
    assert threads == [(0, "modeldeck-writes"), (1, "modeldeck-writes"), (2, "modeldeck-writes")]
    assert [v for _, v in _scalars(tmp_path / "train")["epoch_loss"]] == pytest.approx(history.history["loss"])
    assert not (tmp_path / "checkpoints" / "backup.npz").exists(), "the backup was removed after its last write"
    assert "modeldeck-writes" not in [t.name for t in set(threading.enumerate()) - before], "the writes thread ended"


def test_a_failed_backup_drops_its_epochs_record_and_fails_the_fit_with_its_own_error(tmp_path, monkeypatch) -> None:
    writes = Writes()
    recorded: list[int] = []
    reporter, _ = _reporter(epochs=5, writes=writes, on_epoch=lambda epoch, logs, p: recorded.append(epoch))
    backup = Backup(tmp_path, writes=writes)
    save = backup._save

    def disk_full_at_epoch_2(epoch: int, values: dict) -> None:
        if epoch == 2:
            raise OSError("No space left on device")
        save(epoch, values)

    monkeypatch.setattr(backup, "_save", disk_full_at_epoch_2)
    x, y = _data()
    with pytest.raises(OSError, match="No space left on device"):
        _model().fit(x, y, batch_size=16, epochs=5, callbacks=[backup, reporter], verbose=0)
    writes.wait()
    assert recorded == [0], "an epoch whose backup failed is not recorded as done"
    with np.load(backup.path) as saved:
        assert int(saved["epoch"]) == 1, "the last whole backup stays"
