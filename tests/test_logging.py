"""The long-running roles log one line per event on stderr: time, level, role, then the run or the model."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from backend import jobs
from backend.logs import LEVEL_VARIABLE
from tests import factories

EVENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) (worker|serve) .*")


def _events(text: str) -> list[str]:
    """Our log lines without their timestamps (TensorFlow's start-up noise in the same stream is not ours)."""
    return [line[len("2026-12-03 16:30:01 ") :] for line in text.splitlines() if EVENT.fullmatch(line)]


def _configured(level: str | None, code: str) -> str:
    """stderr of a fresh process that configures logging as `modeldeck worker` does, then runs `code`."""
    env = {k: v for k, v in os.environ.items() if k != LEVEL_VARIABLE} | ({LEVEL_VARIABLE: level} if level else {})
    prelude = "import logging\nfrom backend import logs\nlogs.configure('worker')\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + code], env=env, cwd=factories.ROOT, capture_output=True, text=True, check=True
    )
    return result.stderr


def _losses_frame() -> pd.DataFrame:
    """A regression table whose target is negative: a log scale on it makes the loss NaN, and the run fail."""
    frame = factories.price_frame().rename(columns={"price": "loss"})
    return frame.assign(loss=-frame["loss"])


# -- the format and the level ----------------------------------------------------------------------------------
def test_a_configured_role_writes_one_line_with_time_level_and_role() -> None:
    stderr = _configured(None, "logging.getLogger('backend.jobs.worker').info('run=%s claimed (job %s)', 12, 3)")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO worker run=12 claimed \(job 3\)\n", stderr), stderr


def test_the_level_comes_from_modeldeck_log_level() -> None:
    stderr = _configured("warning", "log = logging.getLogger('x')\nlog.info('routine')\nlog.warning('unusual')")
    assert _events(stderr) == ["WARNING worker unusual"]


def test_an_unknown_level_falls_back_to_info_and_says_so() -> None:
    assert _events(_configured("chatty", "logging.getLogger('x').info('routine')")) == [
        "WARNING worker MODELDECK_LOG_LEVEL=CHATTY is not a level; using INFO. Expected one of: DEBUG, INFO, WARNING, "
        "ERROR",
        "INFO worker routine",
    ]


# -- the worker --------------------------------------------------------------------------------------------------
def test_the_worker_logs_each_job_claimed_started_and_finished(home: Path, store: Any) -> None:
    _, churn = factories.add_frame(store, factories.churn_frame())
    _, losses = factories.add_frame(store, _losses_frame(), name="losses", target="loss")
    jobs.start_training(store, version=churn, overrides={"epochs": 1, "architecture": "mlp"})
    jobs.start_training(store, version=losses, overrides={"epochs": 2, "scale_target": "log", "architecture": "mlp"})
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "--home", str(home), "worker", "--until-idle"],
        cwd=factories.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    normalised = [
        re.sub(r"started as \S+", "started as ID", re.sub(r"pid \d+|in [0-9.]+ s", "#", line))
        for line in _events(result.stderr)
    ]
    failed = store.get_run(2)
    assert normalised == [
        f"INFO worker started as ID (home {home.resolve()}), until the queue is empty",
        "INFO worker run=1 claimed (job 1)",
        f"INFO worker run=1 started classification on dataset 'churn' version {churn.hash[:12]} (child #)",
        "INFO worker run=1 finished: succeeded #",
        "INFO worker run=2 claimed (job 2)",
        f"INFO worker run=2 started regression on dataset 'losses' version {losses.hash[:12]} (child #)",
        f"ERROR worker run=2 finished: failed #: {failed.error}",
        "INFO worker stopping (the queue is empty)",
    ]
    assert (store.get_run(1).status, failed.status) == ("succeeded", "failed")


# -- the inference server ----------------------------------------------------------------------------------------
def test_serve_logs_where_it_listens_what_it_serves_and_each_model_it_loads(churn_run: Any, tmp_path: Path) -> None:
    home = (tmp_path / "home").resolve()  # a copy: the server writes its request log into its home's database
    shutil.copytree(churn_run["home"], home)
    rest, grpc = factories.free_ports(2)
    command = [sys.executable, "-m", "backend.cli", "--home", str(home), "serve"]
    command += ["--port", str(rest), "--grpc-port", str(grpc)]
    log = tmp_path / "serve.log"
    with factories.running(command, log=log, urls=[f"http://127.0.0.1:{rest}/healthz"]):
        rows = factories.churn_frame(rows=2, seed=3).drop(columns=["churn"]).to_dict("records")
        response = httpx.post(f"http://127.0.0.1:{rest}/v1/models/churn:predict", json={"instances": rows}, timeout=60)
        assert response.status_code == 200, response.text
    assert [re.sub(r"in [0-9.]+ s", "in # s", line) for line in _events(log.read_text())] == [
        f"INFO serve listening on http://127.0.0.1:{rest} (REST) and 127.0.0.1:{grpc} (gRPC); "
        f"models under {home / 'runs'}: churn (version 1)",
        f"INFO serve model=churn version=1 loaded in # s from {home / 'runs/1/export/churn/1'}",
        "INFO serve stopped",
    ]
