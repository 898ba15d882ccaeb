"""The inference server: one table row predicted over REST, against the same signature called in this process.

A churn classifier is trained once through the CLI (two epochs; cached under `$MODELDECK_HOME/bench/serving/`)
and version 1 is put in production. Then `python -m backend.serving` serves it, and this bench measures:

- one row through `POST /v1/models/churn/versions/1:predict`, one client, keep-alive: p50 and p95 latency, next
  to the exported `serving_default` called in-process on the same row (the floor: what HTTP, JSON and the
  thread pool add is the difference), and the same row through `/labels/production` (what the label costs);
- 16 concurrent clients, each sending its own requests back to back: errors (any answer but 200, or none),
  throughput and latency under that load.

The issue's target: p50 under 5 ms for one row, no errors with 16 clients. Figures are printed, not asserted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
ROW = {"tenure": 12, "plan": "basic", "charges": 70.5}
TRIES = 500
CLIENTS = 16
PER_CLIENT = 200
STARTUP_S = 120


def churn_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A learnable churn table: churn depends on tenure, plan and charges."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    plan = rng.choice(["basic", "plus", "premium"], rows)
    charges = rng.normal(60, 20, rows).round(2)
    score = -0.05 * tenure + (plan == "basic") * 1.0 + 0.02 * charges + rng.normal(0, 0.5, rows)
    churn = np.where(score > np.median(score), "yes", "no")
    return pd.DataFrame({"tenure": tenure, "plan": plan, "charges": charges, "churn": churn})


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _cli(home: Path, *args: str) -> None:
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "backend.cli", "--home", str(home), *args]
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)


def trained_home() -> Path:
    """A home with one trained churn classifier, version 1 in production (made once, then reused)."""
    home = Path(os.environ.get("MODELDECK_HOME", ".modeldeck")).resolve() / "bench" / "serving"
    if (home / "ready").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    csv = home / "churn.csv"
    churn_frame().to_csv(csv, index=False)
    _cli(home, "data", "add", str(csv), "--target", "churn")
    _cli(home, "train", "churn", "--epochs", "2", "--set", "architecture=mlp", "--wait")
    _cli(home, "models", "promote", "churn", "1", "--stage", "production", "--why", "bench", "--by", "bench")
    (home / "ready").touch()
    return home


def _percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def in_process(home: Path) -> list[float]:
    """The exported signature called in this process on the one row: the floor any server adds to."""
    import tensorflow as tf

    (export,) = sorted(home.glob("runs/*/export/churn/1"))
    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    inputs = {
        name: tf.constant([[value]], dtype=tf.string if isinstance(value, str) else tf.float32)
        for name, value in ROW.items()
    }
    samples = []
    for i in range(TRIES + 20):
        started = time.perf_counter()
        _ = {name: tensor.numpy() for name, tensor in signature(**inputs).items()}
        if i >= 20:  # the first calls trace and warm caches
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def over_rest(url: str) -> list[float]:
    samples = []
    with httpx.Client(timeout=30) as client:
        for i in range(TRIES + 20):
            started = time.perf_counter()
            response = client.post(url, json={"instances": [ROW]})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if i >= 20:
                samples.append(elapsed)
    return samples


def concurrent(url: str) -> tuple[int, int, float, list[float]]:
    """16 clients, each with its own connection; returns (requests, errors, seconds, latencies in ms)."""
    errors = [0] * CLIENTS
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as session:
            start.wait()
            for _ in range(PER_CLIENT):
                began = time.perf_counter()
                try:
                    ok = session.post(url, json={"instances": [ROW]}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[index].append((time.perf_counter() - began) * 1000)
                errors[index] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    return CLIENTS * PER_CLIENT, sum(errors), seconds, [ms for each in latencies for ms in each]


def _wait_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server did not come up:\n{log.read_text()[-3000:]}")


def _line(name: str, samples: list[float], floor: float | None = None) -> str:
    p50, p95 = _percentiles(samples)
    ratio = f"  ({p50 / floor:.1f}x the in-process p50)" if floor else ""
    return f"  {name:<34} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms{ratio}"


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m backend.serving` on `home`, on free loopback ports, once it answers: the process and its URL."""
    rest_port, grpc_port = _free_ports(2)
    command = [sys.executable, "-m", "backend.serving", "--home", str(home)]
    command += ["--port", str(rest_port), "--grpc-port", str(grpc_port)]
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{rest_port}"
    try:
        _wait_up(process, f"{base}/healthz", log)
    except BaseException:
        process.kill()
        raise
    return process, base


def main() -> None:
    home = trained_home()
    process, base = start_server(home, Path(tempfile.mkdtemp(prefix="bench-serving-")) / "server.log")
    try:
        by_version = f"{base}/v1/models/churn/versions/1:predict"
        by_label = f"{base}/v1/models/churn/labels/production:predict"
        floor = in_process(home)
        rest = over_rest(by_version)
        labelled = over_rest(by_label)
        requests, errors, seconds, loaded = concurrent(by_label)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    floor_p50 = _percentiles(floor)[0]
    print(f"one row, {TRIES} requests each, one client (keep-alive):")
    print(_line("in-process serving_default", floor))
    print(_line("REST /versions/1:predict", rest, floor_p50))
    print(_line("REST /labels/production:predict", labelled, floor_p50))
    print(f"{CLIENTS} concurrent clients x {PER_CLIENT} requests (/labels/production):")
    print(f"  errors {errors} of {requests}; {requests / seconds:,.0f} requests/s")
    print(_line("latency under load", loaded, floor_p50))


if __name__ == "__main__":
    main()
