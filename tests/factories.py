"""Tiny, seeded data and helpers that build real state (files, DB rows, trained runs) for tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from backend import config
from backend.data import datasets
from backend.serving import registry
from db import open_store

ROOT = Path(__file__).resolve().parent.parent

# One row of `churn_frame` without its target: what the served churn model answers.
CHURN_ROW = {"tenure": 12, "plan": "basic", "charges": 70.5}

# The keys of a classifier run's metrics (models/metrics.py `classification`).
CLASSIFIER_METRICS = {
    "accuracy",
    "f1_macro",
    "roc_auc",
    "log_loss",
    "average_precision",
    "brier",
    "ece",
    "per_class",
    "test_rows",
}


def churn_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """A learnable classification table: churn depends on tenure, plan and charges."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    plan = rng.choice(["basic", "plus", "premium"], rows)
    charges = rng.normal(60, 20, rows).round(2)
    score = -0.05 * tenure + (plan == "basic") * 1.0 + 0.02 * charges + rng.normal(0, 0.5, rows)
    churn = np.where(score > np.median(score), "yes", "no")
    return pd.DataFrame({"tenure": tenure, "plan": plan, "charges": charges, "churn": churn})


def price_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """A learnable regression table with a skewed, positive target."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(20, 200, rows).round(1)
    city = rng.choice(["north", "south"], rows)
    price = np.exp(0.01 * size + (city == "north") * 0.5 + rng.normal(0, 0.1, rows)) * 1000
    return pd.DataFrame({"size": size, "city": city, "price": price.round(0)})


POSITIVE = ["great", "tasty", "lovely", "fresh", "perfect", "delicious", "excellent", "happy"]
NEGATIVE = ["awful", "stale", "bland", "broken", "terrible", "soggy", "disappointing", "bad"]
FILLER = ["the", "tea", "box", "arrived", "and", "it", "was", "really", "quite", "coffee", "flavour", "price"]


def reviews_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Text data: short reviews whose sentiment words decide the label (great / other)."""
    rng = np.random.default_rng(seed)
    label = rng.choice(["great", "other"], rows)
    texts = []
    for good in label == "great":
        words = list(rng.choice(FILLER, 8)) + list(rng.choice(POSITIVE if good else NEGATIVE, 2))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    return pd.DataFrame({"product": rng.choice(["tea", "coffee"], rows), "review": texts, "score": label})


def ratings_frame(users: int = 40, items: int = 30, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    """Ratings data with taste groups: users like the items of their own group (4–5) and not the others (1–2)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        for item in rng.choice(items, per_user, replace=False):
            liked = user % 3 == item % 3
            rows.append((f"u{user}", f"i{item}", float(rng.integers(4, 6) if liked else rng.integers(1, 3))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


def shape_image(kind: str, seed: int, size: int = 24, fmt: str = "PNG") -> bytes:
    """A grey picture of horizontal bars, vertical bars or a disc, at a random place, with noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 60, (size, size), dtype=np.uint8), "L")
    draw = ImageDraw.Draw(image)
    offset = int(rng.integers(0, size // 4))
    if kind == "disc":
        draw.ellipse([offset, offset, offset + size // 2, offset + size // 2], fill=255)
    for line in range(offset, size, 4) if kind != "disc" else []:
        box = [0, line, size, line + 1] if kind == "hbars" else [line, 0, line + 1, size]
        draw.rectangle(box, fill=255)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def shapes_zip(per_class: int = 30, seed: int = 0) -> bytes:
    """A ZIP of PNGs in one folder per class: hbars/, vbars/, disc/."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for k, kind in enumerate(("hbars", "vbars", "disc")):
            for i in range(per_class):
                archive.writestr(f"{kind}/{i:03d}.png", shape_image(kind, seed * 10_000 + k * 1000 + i))
    return out.getvalue()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def add_frame(store: Any, frame: pd.DataFrame, *, name: str = "churn", target: str | None = "churn") -> Any:
    """Store a frame as a dataset version; returns (dataset, version)."""
    return datasets.add_frame(store, paths=config.paths(), frame=frame, name=name, source="test", target=target)


def cli(
    home: Path, *args: str, timeout: float = 300, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `modeldeck --home HOME ARGS…` in a fresh process, as a user would (typing `stdin`, if given)."""
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "--home", str(home), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    """The first true value `predicate` returns within `timeout` seconds; fails the test naming `what` after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def cli_json(home: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    result = cli(home, *args, "--json", timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def start_worker(
    home: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A real `modeldeck worker` process, in its own process group (its output in `log`, if given)."""
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"} | (env or {})
    out = log.open("ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "--home", str(home), "worker", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def big_churn_csv(folder: Path, rows: int = 20_000) -> Path:
    """Enough rows that an epoch takes a noticeable moment, for cancel and resume tests."""
    path = folder / "big.csv"
    churn_frame(rows=rows, seed=1).to_csv(path, index=False)
    return path


def queue_big_run(home: Path, *, epochs: int, batch_size: int) -> int:
    """A queued run on 20,000 rows without early stopping, so epochs take a noticeable moment."""
    csv = big_churn_csv(home)
    cli_json(home, "data", "add", str(csv), "--target", "churn")
    args = ["--epochs", str(epochs), "--set", "early_stopping=false", "--set", f"batch_size={batch_size}"]
    return int(cli_json(home, "train", "big", "--set", "architecture=mlp", *args)["run_id"])


# -- real servers in subprocesses -------------------------------------------------------------------------------
STARTUP_S = 180.0


def free_ports(count: int) -> list[int]:
    """Ports the OS hands out for port 0, all held open together so that they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_process(
    command: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """A server process in its own session (so stopping it takes its children too), output into `log`."""
    full_env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"} | (env or {})
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until_up(proc: subprocess.Popen[bytes], urls: list[str], *, log: Path, timeout_s: float = STARTUP_S) -> None:
    """Until every URL answers 200; fails the test with the log's tail if the process dies or stays silent."""
    deadline = time.monotonic() + timeout_s
    pending = list(urls)
    while pending:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[3:5]} exited with {proc.returncode} before it was up:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not up after {timeout_s} s ({pending} silent):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(pending[0], timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux's /proc; none elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(int(stat.parent.name))
    return found


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user would; then kill whatever is left in the process's session, and its children that
    have a session of their own (`modeldeck ui`'s inference server)."""
    children = children_of(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(45)
        except subprocess.TimeoutExpired:
            pass
    for pid in (proc.pid, *children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    proc.wait(10)


@contextlib.contextmanager
def running(
    command: list[str], *, log: Path, urls: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process that is up (every URL answers) for the duration of the block."""
    proc = start_process(command, log=log, env=env, cwd=cwd)
    try:
        wait_until_up(proc, urls, log=log)
        yield proc
    finally:
        stop_process(proc)


@contextlib.contextmanager
def running_ui(
    home: Path,
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    ports: tuple[int, int, int, int] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str, str, str]]:
    """A real `modeldeck ui` over `home`, on loopback and free ports, with the home's SQLite history (plus `env`),
    started in `cwd` (where Streamlit reads `.streamlit/secrets.toml`), up for the block: its process, the
    dashboard's URL, the inference server's and the scoring server's."""
    port, serve_port, grpc_port, scoring_port = ports or free_ports(4)
    environ = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"} | (env or {})
    environ.pop("MODELDECK_DATABASE_URL", None)
    command = [sys.executable, "-m", "backend.cli", "--home", str(home), "ui", "--port", str(port)]
    command += ["--serve-port", str(serve_port), "--grpc-port", str(grpc_port), "--host", "127.0.0.1"]
    command += ["--scoring-port", str(scoring_port)]
    url, rest, scoring = (f"http://127.0.0.1:{p}" for p in (port, serve_port, scoring_port))
    urls = [f"{url}/_stcore/health", f"{rest}/v1/models", f"{scoring}/v1/models"]
    with running(command, log=log, env=environ, urls=urls, cwd=cwd) as proc:
        yield proc, url, rest, scoring


def serve_command(home: Path, rest_port: int, grpc_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "backend.serving",
        "--home",
        str(home),
        "--port",
        str(rest_port),
        "--grpc-port",
        str(grpc_port),
    ]


def pipeline_slowdowns(ds: Any) -> list[str]:
    """What would slow a training pipeline in every run: a stateful op in one of its functions (under op
    determinism tf.data then turns the pipeline's prefetch and parallel maps off) and tf.data's autotuner (which
    stalls the start of some epochs)."""
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())
    calls = {"StatefulPartitionedCall", "If", "While"}  # tf.data looks inside these instead
    found = {
        f"stateful op {node.op} in a tf.data function"
        for function in graph.library.function
        for node in function.node_def
        if node.op not in calls and (op := op_def_registry.get(node.op)) is not None and op.is_stateful
    }
    if ds.options().autotune.enabled is not False:
        found.add("tf.data's autotuner is on")
    return sorted(found)


def finished_run(home: Path, run_id: int, timeout: float = 600) -> dict[str, Any]:
    """`runs show --json` of a run once it has ended (succeeded, failed, cancelled or interrupted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = cli_json(home, "runs", "show", str(run_id))
        if info["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return info
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish")


def stored_and_used(export_dir: Path) -> tuple[int, int]:
    """How many values an export's checkpoint stores, and how many the variables its signatures read hold:
    equal when each weight is stored once (keras-team/keras#23553 stores them twice)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(export_dir / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    stored = sum(int(np.prod(shape)) for key, shape in shapes.items() if key != "_CHECKPOINTABLE_OBJECT_GRAPH")
    loaded = tf.saved_model.load(str(export_dir))
    used = {id(v): v for fn in loaded.signatures.values() for v in fn.variables}
    return stored, sum(int(np.prod(v.shape)) for v in used.values())


def add_version(home: Path, run_id: int, *, promote: bool = True) -> None:
    """The next version of the run's model (2, then 3, ...): a run of its own in the store and a copy of the
    export in TensorFlow's layout; version 1 is promoted to production unless `promote` is False."""
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        run = store.get_run(run_id)
        again = store.create_run(
            version_id=run.version_id, task=run.task, target=run.target, spec=run.spec, queue=False
        )
        name, number = store.name_model(
            again.id, names=[run.model_name], task=run.task, export_parent=f"runs/{again.id}/export"
        )
        store.update_run(again.id, status="succeeded", metrics=run.metrics, evaluation=run.evaluation)
        source = home / "runs" / str(run_id) / "export" / run.model_name / str(run.model_version)
        shutil.copytree(source, home / "runs" / str(again.id) / "export" / name / str(number))
        if promote:
            registry.promote(store, name, 1, stage="production", reason="the first", assigned_by="ana")
    finally:
        store.close()
