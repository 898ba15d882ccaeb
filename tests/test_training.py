"""Training through a real worker process: results, curves, export, cancel, and kill-then-resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from db import open_store
from tests import factories


def _store(home: Path):
    """The home's store: MODELDECK_DATABASE_URL where a test set it (PostgreSQL), else the home's SQLite file."""
    return open_store(os.environ.get("MODELDECK_DATABASE_URL") or f"sqlite:///{home / 'modeldeck.db'}")


_wait_for = factories.wait_for


def test_a_two_epoch_run_succeeds_with_test_metrics(churn_run) -> None:
    info = factories.cli_json(churn_run["home"], "runs", "show", str(churn_run["run_id"]))
    assert (info["status"], info["epochs_done"], info["device"]) == ("succeeded", 2, "CPU")
    assert set(info["metrics"]) == factories.CLASSIFIER_METRICS
    assert info["metrics"]["test_rows"] == 36  # 15% of 240 rows, held out
    assert (info["model_name"], info["model_version"]) == ("churn", 1)
    assert info["throughput"] > 0
    assert {"tensorflow", "keras", "python"} <= set(info["environment"])
    assert {d["id"] for d in info["diagnostics"]} <= {"not_learning", "overfitting", "worse_than_baseline"}


def test_curves_are_recorded_per_epoch(churn_run) -> None:
    metrics = _store(churn_run["home"]).run_metrics(churn_run["run_id"])
    names = {m.name for m in metrics}
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= names
    assert sorted({m.epoch for m in metrics}) == [0, 1]


def test_run_folder_holds_spec_checkpoint_free_export_and_tensorboard(churn_run) -> None:
    run_dir = churn_run["home"] / "runs" / str(churn_run["run_id"])
    assert json.loads((run_dir / "spec.json").read_text())["epochs"] == 2
    assert (run_dir / "export" / "churn" / "1" / "saved_model.pb").is_file()
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))


_PLAIN_TF = """
import sys
class Block:  # ModelDeck's packages must not be needed to load and run the export
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("backend", "models", "db", "dashboard"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import json, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rows = json.loads(sys.argv[2])
inputs = {}
for name, spec in fn.structured_input_signature[1].items():
    values = [r[name] for r in rows]
    inputs[name] = tf.constant(np.array(values, dtype=object if spec.dtype == tf.string else "float32")
                               .astype(str if spec.dtype == tf.string else "float32").reshape(-1, 1))
out = fn(**inputs)
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}, default=bytes.decode))
"""


def test_plain_tensorflow_loads_the_export_and_matches_modeldeck(churn_run, tmp_path) -> None:
    rows = factories.churn_frame(rows=5, seed=9).drop(columns=["churn"]).to_dict("records")
    export = churn_run["home"] / "runs" / str(churn_run["run_id"]) / "export" / "churn" / "1"
    plain = subprocess.run(
        [sys.executable, "-c", _PLAIN_TF, str(export), json.dumps(rows)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    outputs = json.loads(plain.stdout.strip().splitlines()[-1])
    ours = factories.cli_json(churn_run["home"], "predict", str(churn_run["run_id"]), "--row", json.dumps(rows))
    assert set(outputs) == {"probabilities", "label", "classes"}
    assert outputs["label"] == [p["label"] for p in ours["predictions"]]
    for probs, classes, mine in zip(outputs["probabilities"], outputs["classes"], ours["predictions"], strict=True):
        assert dict(zip(classes, probs, strict=True)) == pytest.approx(mine["probabilities"], abs=1e-6)


def test_the_signature_takes_raw_columns_and_names_its_outputs(churn_run) -> None:
    pb = churn_run["home"] / "runs" / str(churn_run["run_id"]) / "export" / "churn" / "1" / "saved_model.pb"
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    signature = model.meta_graphs[0].signature_def["serving_default"]
    assert set(signature.inputs) == {"tenure", "plan", "charges"}
    assert signature.inputs["plan"].dtype == 7  # DT_STRING: categories go in as raw text
    assert set(signature.outputs) == {"probabilities", "label", "classes"}


def test_regression_predictions_come_back_in_original_units(price_run) -> None:
    rows = factories.price_frame(rows=20, seed=5)
    csv = price_run["home"] / "rows.csv"
    rows.drop(columns=["price"]).to_csv(csv, index=False)
    out = factories.cli_json(price_run["home"], "predict", str(price_run["run_id"]), "--input", str(csv))
    values = [p["value"] for p in out["predictions"]]
    assert len(values) == 20
    assert 100 < sum(values) / len(values) < 100_000  # dollars, not standardised log-units
    assert set(price_run["metrics"]) == {"rmse", "mae", "r2", "test_rows"}


def test_eval_on_a_labelled_file_reports_metrics(churn_run) -> None:
    out = factories.cli_json(churn_run["home"], "eval", str(churn_run["run_id"]), "--input", str(churn_run["csv"]))
    assert (out["run_id"], out["task"]) == (churn_run["run_id"], "classification")
    assert out["metrics"]["test_rows"] == 240
    assert 0 <= out["metrics"]["accuracy"] <= 1


def test_a_cancel_stops_a_running_job_by_itself_without_its_process_being_ended(
    tmp_path, database_url, monkeypatch
) -> None:
    """On each database: the worker, the CLI and this test share the history through MODELDECK_DATABASE_URL.

    The cancel travels through the history to the training process, which stops at its next step (the reporter's
    test sees that mid-epoch) and ends the run itself: the worker never has to end the process (it would after
    `CANCEL_GRACE_S`, and say so in its log). No time is asserted: how long that takes is the machine's."""
    monkeypatch.setenv("MODELDECK_DATABASE_URL", database_url)
    home = tmp_path
    run_id = factories.queue_big_run(home, epochs=200, batch_size=16)
    log = tmp_path / "worker.log"
    worker = factories.start_worker(home, log=log)
    try:
        store = _store(home)
        _wait_for(
            lambda: store.get_run(run_id).status == "running" and store.get_run(run_id).progress,
            120,
            "the run to start",
        )
        factories.cli_json(home, "runs", "cancel", str(run_id))
        run = _wait_for(lambda: (r := store.get_run(run_id)).status != "running" and r, 120, "the cancel")
        assert (run.status, run.export_path, run.error) == ("cancelled", None, None)
        assert run.epochs_done < 200
    finally:
        worker.terminate()
        worker.wait(30)
    said = log.read_text()
    assert f"run={run_id} finished: cancelled" in said and "ignored the cancel" not in said, said[-2000:]


def test_a_killed_worker_leaves_a_run_that_resumes_from_its_last_epoch(tmp_path, database_url, monkeypatch) -> None:
    """Killed mid-run, even while a backup was being written (its half-written file is left behind), the run
    resumes from its last finished epoch; on each database."""
    monkeypatch.setenv("MODELDECK_DATABASE_URL", database_url)
    home = tmp_path
    run_id = factories.queue_big_run(home, epochs=6, batch_size=64)
    store = _store(home)
    worker = factories.start_worker(home)
    try:
        done_before = _wait_for(
            lambda: store.get_run(run_id).epochs_done >= 2 and store.get_run(run_id).epochs_done, 180, "two epochs"
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its training child die without a word
        worker.wait(30)
    backup = home / "runs" / str(run_id) / "checkpoints" / "backup.npz"
    backup.with_name("backup.npz.partial").write_bytes(backup.read_bytes()[:1000])
    second = factories.start_worker(home)  # on start it marks the dead worker's run interrupted
    try:
        _wait_for(lambda: store.get_run(run_id).status == "interrupted", 60, "the run to be marked interrupted")
        factories.cli_json(home, "runs", "resume", str(run_id))
        run = _wait_for(
            lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r,
            240,
            "the resumed run to finish",
        )
    finally:
        second.terminate()
        second.wait(30)
    assert run.status == "succeeded", run.error
    assert run.progress["first_epoch"] >= done_before
    assert sorted({m.epoch for m in store.run_metrics(run_id) if m.name == "loss"}) == list(range(6))


def _state_and_parent(stat: Path) -> tuple[str, str]:
    """A process's state letter and parent pid, from its /proc/PID/stat (the name in parentheses may hold spaces)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return fields[0], fields[1]


def _alive(pid: int) -> bool:
    try:
        return _state_and_parent(Path(f"/proc/{pid}/stat"))[0] != "Z"
    except FileNotFoundError:
        return False


def _children_with_tensorflow(pid: int) -> list[int]:
    """Live child processes of `pid` that have TensorFlow's library loaded."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = _state_and_parent(stat)
            loaded = parent == str(pid) and state != "Z" and "tensorflow" in (stat.parent / "maps").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile
        if loaded:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads process state from Linux's /proc")
def test_the_worker_keeps_a_child_with_tensorflow_imported_for_the_next_job(tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(tmp_path, "data", "add", str(csv), "--target", "churn")
    worker = factories.start_worker(tmp_path)
    try:
        [waiting] = _wait_for(lambda: _children_with_tensorflow(worker.pid), 120, "a child with TensorFlow imported")
        # below the dashboard and the server, which share the cores (MODELDECK_JOB_NICE, 10 by default)
        assert os.getpriority(os.PRIO_PROCESS, waiting) == os.getpriority(os.PRIO_PROCESS, worker.pid) + 10
        out = factories.cli_json(tmp_path, "train", "churn", "--epochs", "1", "--set", "architecture=mlp", "--wait")
        assert out["status"] == "succeeded"
        _wait_for(lambda: not _alive(waiting), 30, "the job's child to exit with its job")
        [following] = _wait_for(lambda: _children_with_tensorflow(worker.pid), 120, "a child for the next job")
        assert following != waiting  # one process per job
    finally:
        worker.terminate()
        worker.wait(30)
    _wait_for(lambda: not _alive(following), 30, "the waiting child to stop with the worker")


def test_a_niceness_that_is_not_one_is_refused_in_one_line(tmp_path) -> None:
    result = factories.cli(tmp_path, "worker", env={"MODELDECK_JOB_NICE": "low"})
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "error: MODELDECK_JOB_NICE='low' is not a niceness from 0 to 19. Set it to how far below the dashboard runs "
        "are scheduled (10 by default; 0 for the same priority).",
    )


def test_the_gpu_settings_train_on_the_cpu_when_forced(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MODELDECK_FORCE_DEVICE", "gpu")  # mixed precision + MirroredStrategy, as on a GPU box
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(tmp_path, "data", "add", str(csv), "--target", "churn")
    out = factories.cli_json(tmp_path, "train", "churn", "--epochs", "1", "--set", "architecture=mlp", "--wait")
    info = factories.cli_json(tmp_path, "runs", "show", str(out["run_id"]))
    assert out["status"] == "succeeded"
    assert info["device"] == "CPU (GPU settings forced)"
    assert {k: info["environment"][k] for k in ("precision", "strategy")} == {
        "precision": "mixed_float16",
        "strategy": "mirrored",
    }
    assert 0 <= out["metrics"]["accuracy"] <= 1


def test_run_again_reproduces_the_metrics_and_curves_exactly_on_the_cpu(churn_run, tmp_path) -> None:
    home, first = tmp_path / "home", churn_run["run_id"]
    shutil.copytree(churn_run["home"], home)  # paths in the DB are relative to the home: the copy is complete
    again = factories.cli_json(home, "runs", "again", str(first), "--wait")
    store = _store(home)
    original, repeat = store.get_run(first), store.get_run(again["run_id"])
    assert (repeat.status, repeat.version_id, repeat.spec) == ("succeeded", original.version_id, original.spec)
    assert repeat.metrics == original.metrics
    assert [(m.name, m.epoch, m.value) for m in store.run_metrics(repeat.id)] == [
        (m.name, m.epoch, m.value) for m in store.run_metrics(original.id)
    ]
    assert repeat.model_version == original.model_version + 1  # a new version of the same model


def test_shuffled_labels_get_a_plain_words_diagnosis(tmp_path) -> None:
    frame = factories.churn_frame()
    frame["churn"] = frame["churn"].sample(frac=1.0, random_state=1).to_numpy()  # no relation left to learn
    csv = tmp_path / "shuffled.csv"
    frame.to_csv(csv, index=False)
    home = tmp_path / "home"
    factories.cli_json(home, "data", "add", str(csv), "--name", "shuffled", "--target", "churn")
    result = factories.cli_json(home, "train", "shuffled", "--epochs", "3", "--set", "architecture=mlp", "--wait")
    info = factories.cli_json(home, "runs", "show", str(result["run_id"]))
    assert info["status"] == "succeeded"
    assert {"not_learning", "worse_than_baseline"} & {d["id"] for d in info["diagnostics"]}


def test_a_learning_rate_of_ten_is_diagnosed_as_exploding(tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    home = tmp_path / "home"
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    factories.cli(
        home, "train", "churn", "--epochs", "3", "--set", "learning_rate=10", "--set", "architecture=mlp", "--wait"
    )
    info = factories.cli_json(home, "runs", "show", "1")
    assert (info["status"], [d["id"] for d in info["diagnostics"]][:1]) == ("succeeded", ["exploding"])
