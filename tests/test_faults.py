"""Faults, with nothing lost: a model version truncated on disk is refused (and said why) while the others serve;
a database locked past its timeout is a clear, retryable error that leaves nothing half-written."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from db import open_store
from tests import factories


@pytest.fixture(scope="module")
def truncated(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server over a copy of the churn home whose version 2 lost the end of its saved_model.pb (a full disk, a
    copy cut short); version 1 holds production."""
    home = tmp_path_factory.mktemp("truncated") / "home"
    shutil.copytree(churn_run["home"], home)
    factories.add_version(home, churn_run["run_id"])
    graph = next(home.glob("runs/*/export/churn/2/saved_model.pb"))
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 3])
    rest_port, grpc_port = factories.free_ports(2)
    log = tmp_path_factory.mktemp("truncated-serving") / "server.log"
    process = factories.start_process(factories.serve_command(home, rest_port, grpc_port), log=log)
    rest = f"http://127.0.0.1:{rest_port}"
    try:
        factories.wait_until_up(process, [f"{rest}/healthz"], log=log, timeout_s=factories.STARTUP_S)
        yield rest, log
        assert process.poll() is None, "the server stopped"
    finally:
        factories.stop_process(process)


def _predict(rest: str, path: str) -> httpx.Response:
    return httpx.post(f"{rest}/v1/models/{path}:predict", json={"instances": [factories.CHURN_ROW]}, timeout=60)


def test_a_truncated_version_is_refused_with_why_and_the_others_serve(truncated: tuple[str, Path]) -> None:
    rest, log = truncated
    broken = _predict(rest, "churn/versions/2")
    assert broken.status_code == 404, broken.text
    assert broken.json()["error"].startswith("Model churn version 2 at ")
    assert "cannot be loaded (" in broken.json()["error"]
    assert broken.json()["error"].endswith("); export it again, or ask for another version.")
    assert _predict(rest, "churn/versions/1").status_code == 200
    assert _predict(rest, "churn").status_code == 200, "the latest that loads answers: version 1"
    assert _predict(rest, "churn/labels/production").status_code == 200
    status = httpx.get(f"{rest}/v1/models/churn", timeout=30).json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("2", "END"), ("1", "AVAILABLE")]
    assert status[0]["status"]["error_code"] == "UNKNOWN" and status[0]["status"]["error_message"]
    assert "model=churn version=2 failed to load" in log.read_text()


def test_the_models_page_says_which_version_the_server_cannot_load(
    truncated: tuple[str, Path], churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from streamlit.testing.v1 import AppTest

    rest, _ = truncated
    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    factories.add_version(home, churn_run["run_id"])
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)
    monkeypatch.setenv("MODELDECK_SERVING_URL", rest)
    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/models.py").run()
    [error] = [e.value for e in at.error]
    assert error.startswith("The inference server cannot load version 2: ")
    assert error.endswith("It answers with the other versions; export this one again, or delete its run.")


def test_a_version_loading_is_no_problem_on_the_models_page(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A new version is LOADING while the one before it answers for the latest: nothing to warn about."""
    from streamlit.testing.v1 import AppTest

    from backend import serving

    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    factories.add_version(home, churn_run["run_id"])
    ok = {"error_code": "OK", "error_message": ""}
    states = [{"version": "2", "state": "LOADING", "status": ok}, {"version": "1", "state": "AVAILABLE", "status": ok}]
    monkeypatch.setattr(serving, "model_status", lambda *_args, **_kwargs: {"model_version_status": states})
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)
    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/models.py").run()
    assert not at.exception and [e.value for e in at.error] == []


# -- a database locked past its timeout ------------------------------------------------------------------------
def test_a_database_locked_past_the_timeout_is_a_clear_retryable_error_and_nothing_is_half_written(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock longer than MODELDECK_DB_BUSY_S: the command says so in one line,
    exits 6, and the dataset it was adding is not there, in part or whole."""
    import sqlite3
    import subprocess

    csv = home / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "list")  # the database, made and migrated
    holder = sqlite3.connect(home / "modeldeck.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a stuck writer
    try:
        env = {**os.environ, "MODELDECK_HOME": str(home), "MODELDECK_DB_BUSY_S": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "backend.cli", "--home", str(home), "data", "add", str(csv), "--target", "churn"],
            capture_output=True,
            text=True,
            env=env,
            cwd=factories.ROOT,
            timeout=120,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (done.returncode, done.stderr.strip()) == (
        6,
        "error: The run history stayed locked by another process for 1 s (a long write, or a stuck process); "
        "nothing was written. Try again in a moment.",
    )
    assert factories.cli_json(home, "data", "list")["datasets"] == [], "nothing half-written"
    again = factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    assert again["rows"] == 240, "once the lock is gone, the same command works"


def test_a_postgresql_lock_held_past_the_timeout_is_the_same_clear_error(
    postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from db import DatabaseBusy, open_store
    from db import store as store_module

    monkeypatch.setattr(store_module, "BUSY_SECONDS", 0.5)
    url = postgres.new_database()
    store = open_store(url)
    _, version = factories.add_frame(store, factories.churn_frame(), name="churn")
    run = store.create_run(version_id=version.id, task="classification", target="churn", spec={})
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as holder:
        holder.execute("SELECT id FROM runs WHERE id = %s FOR UPDATE", (run.id,))  # a writer that holds the row
        with pytest.raises(DatabaseBusy):
            store.update_run(run.id, status="cancelled")
    assert store.get_run(run.id).status == "queued"
    store.close()


# -- kill -9, in turn, while a run trains and requests flow ----------------------------------------------------
def _children(pid: int) -> dict[str, int]:
    """The ui's processes by role (`ui.ROLES`), from /proc."""
    from backend import ui

    found = {}
    for child in factories.children_of(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:  # gone since
            continue
        found[ui.role_of([w.decode() for w in command])] = child
    return found


def _niceness(pid: int) -> set[int]:
    """The nice value of each of a process's threads."""
    return {int(stat.read_text().rsplit(")", 1)[1].split()[16]) for stat in Path(f"/proc/{pid}/task").glob("*/stat")}


def _cpus(pid: int) -> set[frozenset[int]]:
    """The CPUs each of a process's threads may run on."""
    return {frozenset(os.sched_getaffinity(int(task.name))) for task in Path(f"/proc/{pid}/task").iterdir()}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the ui's processes in Linux's /proc")
def test_each_process_killed_in_turn_comes_back_the_run_resumes_and_the_database_is_intact(
    churn_run: dict[str, Any], tmp_path: Path
) -> None:
    import signal
    import sqlite3
    import threading

    from db import open_store

    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)  # churn v1 is exported: the requests have a model to call
    csv = factories.big_churn_csv(home)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    args = ["--epochs", "8", "--set", "early_stopping=false", "--set", "batch_size=64", "--set", "architecture=mlp"]
    run_id = int(factories.cli_json(home, "train", "big", *args)["run_id"])
    answered: list[int] = []
    stop = threading.Event()

    def requests() -> None:
        while not stop.is_set():
            try:
                answered.append(_predict(rest, "churn/versions/1").status_code)
            except httpx.HTTPError:
                answered.append(0)
            time.sleep(0.05)

    log = tmp_path / "ui.log"
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    everywhere = frozenset(os.sched_getaffinity(0))
    kept = frozenset({max(everywhere)}) if len(everywhere) > 1 else None  # kept from the background work
    env = {"MODELDECK_SERVING_CPUS": str(max(everywhere))} if kept else {}
    with factories.running_ui(home, log=log, env=env) as (ui, url, rest, scoring):
        flow = threading.Thread(target=requests, daemon=True)
        flow.start()
        try:
            factories.wait_for(lambda: store.get_run(run_id).epochs_done >= 2, 240, "two epochs")
            base = os.getpriority(os.PRIO_PROCESS, ui.pid)
            niceness = {role: _niceness(pid) for role, pid in _children(ui.pid).items()}
            alone = {role: os.getsid(pid) == pid for role, pid in _children(ui.pid).items()}
            cpus = {role: _cpus(pid) for role, pid in _children(ui.pid).items()}
            for role in ("worker", "inference server", "dashboard", "scoring server"):
                before = _children(ui.pid)[role]
                os.kill(before, signal.SIGKILL)
                newer = lambda r=role, b=before: (p := _children(ui.pid).get(r)) not in (None, b) and p  # noqa: E731
                assert factories.wait_for(newer, 60, f"a new {role}") != before
            niceness_after = {role: _niceness(pid) for role, pid in _children(ui.pid).items()}
            alone_after = {role: os.getsid(pid) == pid for role, pid in _children(ui.pid).items()}
            cpus_after = {role: _cpus(pid) for role, pid in _children(ui.pid).items()}
            factories.wait_for(lambda: _answers(f"{url}/_stcore/health"), 120, "the dashboard to answer again")
            factories.wait_for(lambda: _answers(f"{scoring}/v1/models"), 120, "the scoring server to answer again")
            served_after = len(answered)
            factories.wait_for(lambda: 200 in answered[served_after:], 120, "the server to answer again")
            run = factories.wait_for(
                lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed", "cancelled") and r,
                300,
                "the run to finish",
            )
        finally:
            stop.set()
            flow.join(10)
    store.close()
    assert run.status == "succeeded", run.error
    background = {"worker": {base}, "scoring server": {base + 10}, "inference server": {base}, "dashboard": {base}}
    assert niceness == niceness_after == background, "every thread of the scoring server below, restarted too"
    sessions = {"worker": False, "scoring server": False, "inference server": True, "dashboard": False}
    assert alone == alone_after == sessions, "the inference server in a session (a scheduling group) of its own"
    if kept:  # MODELDECK_SERVING_CPUS: every thread of the server on its CPU, of the background work on the rest
        places = {"inference server": {kept}, "dashboard": {everywhere}}
        assert cpus == cpus_after == places | {"worker": {everywhere - kept}, "scoring server": {everywhere - kept}}
    assert run.progress.get("first_epoch", 0) >= 1, "resumed from an epoch, not from the start"
    assert 200 in answered and not [c for c in answered if c >= 500], "no 5xx, only refused connections"
    with sqlite3.connect(home / "modeldeck.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    text = log.read_text()
    assert "the worker stopped (exit -9): starting it again" in text
    assert "queued again, to resume from its last epoch" in text


# -- a full disk -------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB filesystem of its own (tmpfs) for MODELDECK_HOME; skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_an_upload_onto_a_full_disk_is_refused_whole_and_works_once_space_returns(small_disk: Path) -> None:
    import subprocess

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    big = pd.DataFrame(rng.random((150_000, 8)), columns=[f"x{i}" for i in range(8)])
    big["y"] = rng.random(150_000)
    csv = small_disk.parent / "big.csv"  # the file itself is not on the small disk
    big.to_csv(csv, index=False)
    home = small_disk / "home"
    full = factories.cli(home, "data", "add", str(csv), "--target", "y")
    assert full.returncode == 2, full.stderr
    assert full.stderr.strip() == (
        f"error: The disk under {home / 'datasets'} is full: nothing of this was stored. Free some space (or move "
        "MODELDECK_HOME to a larger disk), then add it again."
    )
    assert factories.cli_json(home, "data", "list")["datasets"] == []
    assert [p.name for p in (home / "datasets").iterdir()] == [], "no half-written folder left behind"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    added = factories.cli_json(home, "data", "add", str(csv), "--target", "y")
    assert added["rows"] == 150_000


def _queue_wide_run(home: Path, folder: Path, env: dict[str, str] | None = None) -> int:
    """A queued 8-epoch run whose backups are about 2 MB (the churn table's CSV kept in `folder`, off the disk)."""
    csv = folder / "big.csv"
    factories.churn_frame(rows=4000, seed=1).to_csv(csv, index=False)
    assert factories.cli(home, "data", "add", str(csv), "--target", "churn", env=env).returncode == 0
    settings = ["--set", "architecture=mlp", "--set", "hidden_units=256,256", "--set", "early_stopping=false"]
    started = factories.cli(home, "train", "big", "--epochs", "8", *settings, "--json", env=env)
    return int(json.loads(started.stdout)["run_id"])


def _fill(disk: Path) -> Path:
    """Fill all but about 20 KB of `disk`: the next backup does not fit. Returns the filler file.

    The run may be writing a backup meanwhile and take space between a look at what is free and the write (a
    clean run once failed so), so the filler grows in steps of whole pages, at most 1 MB, with a fresh look at
    what is free before each."""
    page = 4096
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        while (room := (shutil.disk_usage(disk).free - 20_000) // page * page) > 0:
            try:
                f.write(b"\0" * min(room, 1 << 20))
            except OSError as error:  # no space: the run took it first; look again
                if error.errno != errno.ENOSPC:
                    raise
    return filler


def _make_room(disk: Path, filler: Path) -> None:
    """Space returns: the filler goes, and the disk grows past the room a stopped run waits for."""
    import subprocess

    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=400m", str(disk)], check=True)


def test_a_disk_that_fills_during_training_stops_the_run_in_a_line_and_it_goes_on_once_space_returns(
    small_disk: Path, tmp_path: Path
) -> None:
    """The run's folder is on a small disk that fills between two epochs: the next checkpoint cannot be written.
    The run stops as interrupted, keeps its last whole checkpoint, and says why; the worker queues it again by
    itself once the disk has room, and it goes on from that epoch. The history is on another disk here."""
    home = small_disk / "home"
    env = {"MODELDECK_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}"}
    run_id = _queue_wide_run(home, tmp_path, env)
    store = open_store(env["MODELDECK_DATABASE_URL"])
    worker = factories.start_worker(home, env=env)
    try:
        factories.wait_for(lambda: store.get_run(run_id).epochs_done >= 2, 180, "two epochs")
        filler = _fill(small_disk)
        run = factories.wait_for(lambda: (r := store.get_run(run_id)).status != "running" and r, 120, "the stop")
        assert run.status == "interrupted", run.error
        assert run.error == (
            f"The disk under {home / 'runs' / str(run_id)} is full: training stopped after epoch {run.epochs_done}, "
            "which is kept. Free some space (or move MODELDECK_HOME to a larger disk): the run then goes on from "
            f"there by itself, or with `modeldeck runs resume {run_id}`."
        )
        stopped_at = run.epochs_done
        _make_room(small_disk, filler)
        run = factories.wait_for(
            lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r, 240, "the run to go on"
        )
    finally:
        factories.stop_process(worker)
    assert run.status == "succeeded", run.error
    assert run.progress["first_epoch"] == stopped_at
    assert sorted({m.epoch for m in store.run_metrics(run_id) if m.name == "loss"}) == list(range(8))


def test_with_the_history_on_the_full_disk_too_the_run_s_end_is_written_once_space_returns(small_disk: Path) -> None:
    """The SQLite history shares the small disk: neither the checkpoint nor the run's end can be written. The
    worker keeps trying (it does not die, and does not lose how the run ended), records it once space returns,
    and the run goes on; the database is intact."""
    import sqlite3

    home = small_disk / "home"
    run_id = _queue_wide_run(home, small_disk.parent)
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    log = small_disk.parent / "worker.log"  # off the small disk, so the worker's words are kept
    worker = factories.start_worker(home, log=log)
    try:
        factories.wait_for(lambda: store.get_run(run_id).epochs_done >= 2, 180, "two epochs")
        filler = _fill(small_disk)
        factories.wait_for(lambda: "cannot write to the history" in log.read_text(), 120, "the worker to wait")
        assert store.get_run(run_id).status == "running" and worker.poll() is None
        _make_room(small_disk, filler)
        run = factories.wait_for(
            lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r, 300, "the run to go on"
        )
    finally:
        factories.stop_process(worker)
    assert run.status == "succeeded", f"{run.error}\n{log.read_text()[-3000:]}"
    assert sorted({m.epoch for m in store.run_metrics(run_id) if m.name == "loss"}) == list(range(8))
    store.close()
    with sqlite3.connect(home / "modeldeck.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
