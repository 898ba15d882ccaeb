"""Scoring a whole file: 100,000 table rows through the batch scorer against the export called directly.

1. A scratch home with the telco churn sample and a small network trained on it (`modeldeck train --wait`).
2. 100,000 rows drawn from the sample's rows (with replacement, the target left out).
3. The baseline: the exported `serving_default` signature called directly in this process, 8,192 rows a call
   (`serving.Predictor.raw`).
4. The batch scorer (backend/scoring.py) through a real inference server (`python -m backend.serving`) over
   REST, as the dashboard scores a file; and through the export in this process, as `modeldeck predict
   --output` does. Each throughput is the best of three, measured in this run.

The issue's target: the scorer at least 0.8x the baseline's rows per second. Printed, never asserted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROWS = 100_000
REPEATS = 3
TARGET = 0.8
ROOT = Path(__file__).resolve().parent.parent


def _cli(home: Path, *args: str) -> dict[str, Any]:
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "--home", str(home), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return dict(json.loads(done.stdout))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _best(what: Callable[[], Any]) -> float:
    """The fastest of `REPEATS` calls, in seconds."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        what()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    import pandas as pd

    from backend import scoring, serving

    # 1. the model
    home = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    added = _cli(home, "data", "add", "sample:telco-churn")
    trained = _cli(home, "train", added["name"], "--epochs", "3", "--set", "architecture=mlp", "--wait")
    shown = _cli(home, "runs", "show", str(trained["run_id"]))
    model, version = shown["model_name"], shown["model_version"]
    export = home / "runs" / str(trained["run_id"]) / "export" / model / str(version)

    # 2. the rows
    sample = pd.read_parquet(next((home / "datasets").glob("*/data.parquet")))
    rows = sample.drop(columns=[added["target"]]).sample(ROWS, replace=True, random_state=0).reset_index(drop=True)
    print(f"model: {model} v{version} on {len(sample.columns) - 1} columns; {ROWS:,} rows", flush=True)

    # 3. the baseline
    predictor = serving.Predictor(export)
    predictor.raw(rows.head(100))  # the first call traces
    direct = _best(lambda: predictor.raw(rows))

    # 4. the scorer: in this process, and through the inference server
    here = _best(lambda: scoring.score(rows, predict=predictor.raw))
    rest, grpc = _free_port(), _free_port()
    url = f"http://127.0.0.1:{rest}"
    command = [sys.executable, "-m", "backend.serving", "--home", str(home), "--port", str(rest)]
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen(
        [*command, "--grpc-port", str(grpc)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not serving.is_up(url) and time.monotonic() < deadline:
            time.sleep(0.3)
        httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
        served = scoring.served(model, version=version, base_url=url)
        scoring.score(rows.head(100), predict=served)  # the server loads the model
        remote = _best(lambda: scoring.score(rows, predict=served))
    finally:
        server.terminate()
        server.wait(30)

    print(f"  the signature called directly:      {ROWS / direct:>12,.0f} rows/s  (baseline)")
    for name, seconds in (("scorer, export in this process", here), ("scorer, inference server (REST)", remote)):
        ratio = direct / seconds
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"  {name + ':':<35} {ROWS / seconds:>12,.0f} rows/s  {ratio:.2f}x ({verdict} {TARGET}x)")


if __name__ == "__main__":
    main()
