"""Faults, with nothing lost: a model version truncated on disk is refused (and said why) while the others serve;
a database locked past its timeout is a clear, retryable error that leaves nothing half-written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.test_models_registry import ROW, _second_version


@pytest.fixture(scope="module")
def truncated(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server over a copy of the churn home whose version 2 lost the end of its saved_model.pb (a full disk, a
    copy cut short); version 1 holds production."""
    home = tmp_path_factory.mktemp("truncated") / "home"
    shutil.copytree(churn_run["home"], home)
    _second_version(home, churn_run["run_id"])
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
    return httpx.post(f"{rest}/v1/models/{path}:predict", json={"instances": [ROW]}, timeout=60)


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
    _second_version(home, churn_run["run_id"])
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)
    monkeypatch.setenv("MODELDECK_SERVING_URL", rest)
    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/models.py").run()
    [error] = [e.value for e in at.error]
    assert error.startswith("The inference server cannot load version 2: ")
    assert error.endswith("It answers with the other versions; export this one again, or delete its run.")


# -- a database locked past its timeout ------------------------------------------------------------------------
def test_a_database_locked_past_the_timeout_is_a_clear_retryable_error_and_nothing_is_half_written(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock longer than MODELDECK_DB_BUSY_S: the command says so in one line,
    exits 6, and the dataset it was adding is not there, in part or whole."""
    import sqlite3
    import subprocess
    import sys

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
