"""Faults, with nothing lost: a model version truncated on disk is refused (and said why) while the others serve."""

from __future__ import annotations

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
