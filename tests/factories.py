"""Tiny, seeded data and helpers that build real state (files, DB rows, trained runs) for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend import config, datasets

ROOT = Path(__file__).resolve().parent.parent


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


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def add_frame(store: Any, frame: pd.DataFrame, *, name: str = "churn", target: str | None = "churn") -> Any:
    """Store a frame as a dataset version; returns (dataset, version)."""
    return datasets.add_frame(store, paths=config.paths(), frame=frame, name=name, source="test", target=target)


def cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `modeldeck --home HOME ARGS…` in a fresh process, as a user would."""
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def cli_json(home: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    result = cli(home, *args, "--json", timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def start_worker(home: Path) -> subprocess.Popen[bytes]:
    """A real `modeldeck worker` process, in its own process group."""
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "--home", str(home), "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def big_churn_csv(folder: Path, rows: int = 20_000) -> Path:
    """Enough rows that an epoch takes a noticeable moment, for cancel and resume tests."""
    path = folder / "big.csv"
    churn_frame(rows=rows, seed=1).to_csv(path, index=False)
    return path
