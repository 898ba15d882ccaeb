"""Run history at scale: 10,000 runs and 1,000,000 curve points in the database, and how fast it answers.

A generator writes such a database (SQLite, through the app's migrations and schema; about a minute, cached
under `$MODELDECK_HOME/bench/history-*/`): five datasets, runs of every table task with realistic metrics,
specs and evaluation details (curves, a confusion matrix, ROC points: several kB each), fifty epochs of
loss and val_loss per run. Then, each timed on a warm page cache as the median of a few tries:

- `modeldeck runs list --json --limit 50` in a fresh process, as a user types it (target: under 1 s);
- the Evaluation page and the Compare page rendered by Streamlit's AppTest (target: under 1.5 s each).

The issue's comparison: MLflow's UI needs about a minute at 500 runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

RUNS = 10_000
EPOCHS = 50  # x 2 curves = 100 points per run, 1,000,000 in all
DATASETS = ("telco-churn", "diamonds", "penguins", "reviews", "wine")
ROOT = Path(__file__).resolve().parent.parent


def _evaluation(rng: np.random.Generator, task: str) -> dict[str, Any]:
    curve = np.sort(rng.random(200)).round(4).tolist()
    details: dict[str, Any] = {"rows": {"train": 7000, "validation": 1500, "test": 1500}, "plan": {"target": "y"}}
    if task == "classification":
        details |= {"classes": ["no", "yes"], "confusion_matrix": [[900, 100], [150, 350]]}
        details["roc"] = [{"class": "yes", "fpr": curve, "tpr": curve}]
        details["pr"] = [{"class": "yes", "precision": curve, "recall": curve}]
    else:
        details |= {"actual": curve, "predicted": curve}
    return details


def generate(home: Path, runs: int = RUNS, seed: int = 0) -> None:
    """Write the history database under `home` (through migrations), in bulk inserts."""
    from sqlalchemy import insert

    from db import open_store
    from db.schema import DatasetRow, DatasetVersionRow, JobRow, MetricRow, RunRow

    rng = np.random.default_rng(seed)
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    start = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    with store._write() as s:  # the bench's own bulk load: the store has no bulk API, and needs none
        for i, name in enumerate(DATASETS, start=1):
            s.execute(
                insert(DatasetRow), [{"id": i, "name": name, "kind": "tabular", "source": "", "created_at": start}]
            )
            s.execute(
                insert(DatasetVersionRow),
                [
                    {
                        "id": i,
                        "dataset_id": i,
                        "hash": f"{i:064x}",
                        "notes": [],
                        "path": f"datasets/{i}/data.parquet",
                        "rows": 10_000,
                        "columns": [],
                        "target": "y",
                        "task": "classification",
                        "created_at": start,
                    }
                ],
            )
        run_rows, job_rows = [], []
        for run_id in range(1, runs + 1):
            version = int(rng.integers(1, len(DATASETS) + 1))
            task = "regression" if DATASETS[version - 1] == "diamonds" else "classification"
            accuracy = float(rng.uniform(0.6, 0.95))
            metrics = (
                {"rmse": float(rng.uniform(500, 900)), "mae": float(rng.uniform(300, 500)), "r2": accuracy}
                if task == "regression"
                else {
                    "accuracy": accuracy,
                    "f1_macro": accuracy - 0.02,
                    "roc_auc": accuracy + 0.03,
                    "log_loss": 1 - accuracy,
                }
            )
            created = start + timedelta(minutes=7 * run_id)
            run_rows.append(
                {
                    "id": run_id,
                    "version_id": version,
                    "task": task,
                    "target": "y",
                    "spec": {
                        "epochs": EPOCHS,
                        "learning_rate": float(rng.choice([1e-3, 3e-3])),
                        "seed": int(rng.integers(5)),
                    },
                    "status": "succeeded" if rng.random() < 0.9 else "failed",
                    "environment": {},
                    "progress": {},
                    "metrics": metrics,
                    "evaluation": _evaluation(rng, task),
                    "epochs_done": EPOCHS,
                    "model_name": DATASETS[version - 1],
                    "model_version": run_id,
                    "created_at": created,
                    "started_at": created,
                    "finished_at": created + timedelta(seconds=40),
                    "duration_s": float(rng.uniform(5, 90)),
                }
            )
            job_rows.append({"kind": "train", "run_id": run_id, "status": "succeeded", "created_at": created})
        s.execute(insert(RunRow), run_rows)
        s.execute(insert(JobRow), job_rows)
        points = np.arange(EPOCHS)
        for first in range(1, runs + 1, 500):
            batch = []
            for run_id in range(first, min(first + 500, runs + 1)):
                loss = (1.0 / (1 + points * rng.uniform(0.05, 0.2))).round(5)
                batch += [
                    {"run_id": run_id, "epoch": int(e), "name": "loss", "value": float(v)}
                    for e, v in zip(points, loss, strict=True)
                ]
                batch += [
                    {"run_id": run_id, "epoch": int(e), "name": "val_loss", "value": float(v) + 0.05}
                    for e, v in zip(points, loss, strict=True)
                ]
            s.execute(insert(MetricRow), batch)
    store.close()


def history_home(runs: int = RUNS) -> Path:
    """The cached bench home with the generated database, made on first use."""
    folder = Path(os.environ.get("MODELDECK_HOME", ROOT / ".modeldeck")).resolve() / "bench" / f"history-{runs}-v1"
    if not (folder / "done").exists():
        print(f"  generating {runs:,} runs and {runs * EPOCHS * 2:,} curve points in {folder} ...", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "modeldeck.db").unlink(missing_ok=True)
        generate(folder, runs)
        (folder / "done").write_text("")
    return folder


def _median_s(fn: Any, tries: int = 5) -> float:
    fn()  # warm: the page cache, Streamlit's imports
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _cli_list(home: Path) -> None:
    env = os.environ | {"MODELDECK_HOME": str(home)}
    command = [sys.executable, "-m", "backend.cli", "--home", str(home), "runs", "list", "--json", "--limit", "50"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert len(json.loads(out.stdout)["runs"]) == 50


def _page(home: Path, page: str) -> Any:
    from streamlit.testing.v1 import AppTest

    def render() -> None:
        os.environ["MODELDECK_HOME"] = str(home)
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
        at.switch_page(page).run()
        assert not at.exception, at.exception

    return render


def main() -> None:
    home = history_home()
    print(f"run history: {RUNS:,} runs, {RUNS * EPOCHS * 2:,} curve points (SQLite), median of 5 warm tries")
    print(f"  {'':<44} {'seconds':>8}  target")
    listed = _median_s(lambda: _cli_list(home))
    print(
        f"  {'modeldeck runs list --json --limit 50':<44} {listed:>8.2f}  < 1.0 s {'met' if listed < 1 else 'MISSED'}"
    )
    for page in ("views/evaluation.py", "views/compare.py"):
        seconds = _median_s(_page(home, page))
        print(f"  {page + ' (AppTest render)':<44} {seconds:>8.2f}  < 1.5 s {'met' if seconds < 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
