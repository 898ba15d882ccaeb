"""Runs on a Ray cluster (`MODELDECK_EXECUTOR=ray`): a real local head with two CPUs, real `modeldeck worker`s.

The worker claims from the history as ever, and each run trains in a Ray task; a search's trials train as Ray
tasks too, two at once here. Cancel and resume go through the history, as with the local worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.errors import BadInput
from db import open_store
from tests import factories, ray_head


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    (port,) = factories.free_ports(1)
    with ray_head.head(port, cpus=2) as address:
        yield address


@pytest.fixture
def ray_home(tmp_path: Path, ray_address: str) -> dict[str, Any]:
    """A home with the churn table, and the environment of a worker on the test's Ray head."""
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(tmp_path, "data", "add", str(csv), "--target", "churn")
    env = {"MODELDECK_EXECUTOR": "ray", "MODELDECK_RAY_ADDRESS": ray_address}
    return {"home": tmp_path, "env": env, "store": open_store(f"sqlite:///{tmp_path / 'modeldeck.db'}")}


def _worker(ray_home: dict[str, Any], *args: str) -> subprocess.Popen[bytes]:
    return factories.start_worker(ray_home["home"], *args, env=ray_home["env"], log=ray_home["home"] / "worker.log")


def _finished(store: Any, run_id: int, timeout: float) -> Any:
    return factories.wait_for(
        lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed", "cancelled", "interrupted") and r,
        timeout,
        f"run {run_id} to end",
    )


def test_a_run_trains_in_a_ray_task_and_lands_in_the_history_as_a_local_one(ray_home: dict[str, Any]) -> None:
    home, store = ray_home["home"], ray_home["store"]
    worker = _worker(ray_home)
    try:
        run_id = factories.cli_json(home, "train", "churn", "--epochs", "2", "--set", "architecture=mlp")["run_id"]
        run = _finished(store, run_id, 240)
    finally:
        factories.stop_process(worker)
    log = (home / "worker.log").read_text()
    assert run.status == "succeeded", f"{run.error}\n{log[-3000:]}"
    assert "on the Ray cluster at 127.0.0.1" in log and f"run={run_id} started" in log and "Ray task" in log
    assert sorted({m.epoch for m in store.run_metrics(run_id) if m.name == "val_loss"}) == [0, 1]
    assert run.export_path and (home / run.export_path).is_dir()  # in the shared home, where the dashboard looks
    out = factories.cli_json(home, "predict", str(run_id), "--row", '{"tenure": 3, "plan": "basic", "charges": 80}')
    assert out["predictions"][0]["label"] in ("yes", "no")


def test_a_search_on_ray_trains_its_trials_at_once(ray_home: dict[str, Any]) -> None:
    home, store = ray_home["home"], ray_home["store"]
    worker = _worker(ray_home)
    try:
        args = ["--trials", "4", "--epochs", "3", "--parallel", "2", "--search", "learning_rate=0.0005:0.05"]
        search_id = factories.cli_json(home, "tune", "churn", *args)["run_id"]
        search = _finished(store, search_id, 420)
    finally:
        factories.stop_process(worker)
    trials = sorted(store.list_runs(parent_id=search_id), key=lambda t: t.id)
    assert (search.status, [t.status for t in trials]) == ("succeeded", ["succeeded"] * 4), search.error
    overlapping = [
        (a.id, b.id)
        for a in trials
        for b in trials
        if a.id < b.id and a.started_at < b.finished_at and b.started_at < a.finished_at
    ]
    assert overlapping, [(t.id, t.started_at, t.finished_at) for t in trials]  # two trained at the same time
    best = search.evaluation["search"]["best_run"]
    assert best in [t.id for t in trials] and search.metrics == store.get_run(best).metrics


def test_a_cancel_reaches_a_run_on_ray(ray_home: dict[str, Any]) -> None:
    home, store = ray_home["home"], ray_home["store"]
    run_id = factories.queue_big_run(home, epochs=200, batch_size=16)
    worker = _worker(ray_home)
    try:
        factories.wait_for(lambda: store.get_run(run_id).progress, 180, "the run to report progress")
        factories.cli_json(home, "runs", "cancel", str(run_id))
        run = _finished(store, run_id, 30)
    finally:
        factories.stop_process(worker)
    assert (run.status, run.export_path) == ("cancelled", None)


def test_a_killed_worker_takes_its_ray_task_with_it_and_the_run_resumes(ray_home: dict[str, Any]) -> None:
    home, store = ray_home["home"], ray_home["store"]
    run_id = factories.queue_big_run(home, epochs=6, batch_size=64)
    worker = _worker(ray_home)
    try:
        done_before = factories.wait_for(lambda: store.get_run(run_id).epochs_done >= 2 and 2, 240, "two epochs")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    epochs_then = store.get_run(run_id).epochs_done
    time.sleep(6)  # several epochs' time: a task that outlived its worker would record more
    assert store.get_run(run_id).epochs_done == epochs_then
    second = _worker(ray_home, "--resume-interrupted")  # marks the dead worker's run interrupted, queues it again
    try:
        run = factories.wait_for(
            lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r, 300, "the resumed run"
        )
    finally:
        factories.stop_process(second)
    assert run.status == "succeeded", run.error
    assert run.progress["first_epoch"] >= done_before
    assert sorted({m.epoch for m in store.run_metrics(run_id) if m.name == "loss"}) == list(range(6))


def test_a_run_asking_for_more_gpus_than_the_cluster_has_fails_in_one_line(ray_home: dict[str, Any]) -> None:
    home, store = ray_home["home"], ray_home["store"]
    run_id = factories.cli_json(home, "train", "churn", "--epochs", "1", "--set", "gpus=1")["run_id"]
    worker = _worker(ray_home)
    try:
        run = _finished(store, run_id, 120)
    finally:
        factories.stop_process(worker)
    assert (run.status, run.error) == (
        "failed",
        f"Run {run_id} asks for 1 GPU(s) and the Ray cluster has 0. Train it with gpus=0, or add GPU nodes to the "
        "cluster.",
    )


def test_a_worker_without_a_cluster_says_so_in_one_line(tmp_path: Path) -> None:
    (port,) = factories.free_ports(1)
    env = {"MODELDECK_EXECUTOR": "ray", "MODELDECK_RAY_ADDRESS": f"127.0.0.1:{port}"}
    result = factories.cli(tmp_path, "worker", env=env, timeout=180)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: No Ray cluster answers at 127.0.0.1:{port}: Connection refused."), (
        result.stderr
    )
    assert "Traceback" not in result.stderr and "ray start --head" in result.stderr


def test_an_unknown_executor_is_refused_in_one_line(tmp_path: Path) -> None:
    result = factories.cli(tmp_path, "worker", env={"MODELDECK_EXECUTOR": "dask"})
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "error: Unknown executor 'dask' in MODELDECK_EXECUTOR. Use local (the default) or ray.",
    )


def test_a_cluster_of_several_machines_needs_a_history_they_all_reach(
    ray_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from backend.jobs import cluster

    cluster.connect(ray_address)
    try:
        assert cluster.check(tmp_path, "sqlite:///x.db") == 1  # one machine: SQLite will do, and it sees the home
        real = ray.nodes()
        monkeypatch.setattr(ray, "nodes", lambda: real * 2)
        with pytest.raises(BadInput, match=r"^The Ray cluster has 2 machines, and the history is a SQLite file"):
            cluster.check(tmp_path, "sqlite:///x.db")
    finally:
        ray.shutdown()
