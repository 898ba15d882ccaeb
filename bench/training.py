"""Training engine vs plain `model.fit`, on the same generated data, in the same run.

Prints samples per second of both and their ratio (target: at least 0.95), and the time from
submitting a run to its first metric in the DB with a worker already running (what a user waits for
between "Start" and the first point of the curve). Each side runs in a fresh process, alternately,
ROUNDS times, and the best of each counts: this machine's speed drifts by 10-20% from minute to minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROUNDS = 2
ROWS = 60_000
EPOCHS = 4
BATCH = 64


def make_data(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(10)})
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["plan"] = rng.choice(["basic", "plus", "premium"], rows)
    score = frame["x0"] - 0.5 * frame["x1"] + (frame["plan"] == "basic") + rng.normal(0, 0.5, rows)
    frame["label"] = np.where(score > 0.5, "yes", "no")
    return frame


def plain_fit(frame: pd.DataFrame) -> float:
    """The same network and input pipeline, trained by a bare `model.fit`: samples per second."""
    import keras

    from backend.datasets import _normalise, profile
    from models import tabular
    from models.spec import make_spec

    frame, _ = _normalise(frame)
    spec = make_spec("balanced", {"epochs": EPOCHS, "batch_size": BATCH, "early_stopping": False})
    keras.utils.set_random_seed(spec.seed)
    train, val, _ = tabular.split(frame, target="label", task="classification", spec=spec)
    plan = tabular.make_plan(
        train, columns=[c.to_dict() for c in profile(frame)], target="label", task="classification", spec=spec
    )
    x = tabular.raw_inputs(train, plan)
    space = tabular.feature_space(plan, spec, x)
    train_ds = tabular.dataset(
        x, tabular.encode_target(train["label"], plan), space, batch_size=BATCH, shuffle_seed=spec.seed
    )
    val_ds = tabular.dataset(
        tabular.raw_inputs(val, plan),
        tabular.encode_target(val["label"], plan),
        space,
        batch_size=1024,
        shuffle_seed=None,
    ).cache()
    net = tabular.network(int(space.get_encoded_features().shape[-1]), plan, spec)
    tabular.compile_network(net, plan, spec)
    started = time.perf_counter()
    net.fit(train_ds, validation_data=val_ds, epochs=EPOCHS, verbose=0, shuffle=False)  # tf.data shuffles
    return len(train) * EPOCHS / (time.perf_counter() - started)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "--home", str(home), *args], capture_output=True, text=True, check=True
    )


def engine_fit(frame: pd.DataFrame, home: Path) -> tuple[float, float]:
    """The engine: a worker job with callbacks and DB writes. Returns (samples/s, seconds to first metric)."""
    from db import open_store

    csv = home / "bench.csv"
    frame.to_csv(csv, index=False)
    cli(home, "data", "add", str(csv), "--target", "label")
    worker = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "--home", str(home), "worker"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        while not store.live_workers(stale_after_s=30):
            time.sleep(0.2)
        submitted = time.perf_counter()
        out = cli(
            home,
            "train",
            "bench",
            "--epochs",
            str(EPOCHS),
            "--set",
            f"batch_size={BATCH}",
            "--set",
            "early_stopping=false",
            "--json",
        )
        run_id = int(out.stdout.split('"run_id": ')[1].split(",")[0])
        while not store.run_metrics(run_id):
            time.sleep(0.05)
        first_metric = time.perf_counter() - submitted
        while store.get_run(run_id).status in ("queued", "running"):
            time.sleep(0.2)
        run = store.get_run(run_id)
        assert run.status == "succeeded", run.error
        return float(run.progress["samples_per_s"]), first_metric
    finally:
        worker.terminate()
        worker.wait(30)


def plain_fit_in_child(home: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.training", "plain"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:] == ["plain"]:
        print(plain_fit(make_data()))
        return
    frame = make_data()
    engine, plain, first_metric = [], [], []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            rate, first = engine_fit(frame, Path(tmp))
            engine.append(rate)
            first_metric.append(first)
            plain.append(plain_fit_in_child(Path(tmp)))
    print(f"tabular MLP, {ROWS:,} rows, {EPOCHS} epochs, batch {BATCH}, CPU; best of {ROUNDS} alternating rounds")
    print(f"  plain model.fit      {max(plain):12,.0f} samples/s   (rounds: {', '.join(f'{p:,.0f}' for p in plain)})")
    print(f"  ModelDeck engine     {max(engine):12,.0f} samples/s   (rounds: {', '.join(f'{e:,.0f}' for e in engine)})")
    print(f"  ratio engine/plain   {max(engine) / max(plain):12.3f}   (target >= 0.95)")
    print(f"  Start -> first metric {min(first_metric):10.1f} s    (worker already running; includes TF import)")


if __name__ == "__main__":
    main()
