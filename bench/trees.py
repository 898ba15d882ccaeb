"""Gradient-boosted trees on the sample tables against scikit-learn's HistGradientBoosting, and the compiled
export's latency beside YDF's own.

1. Quality: for each sample table, the GBT family (`architecture=gbt`, its defaults) and
   HistGradientBoosting (its defaults; categories as pandas categoricals, natively) train on the same training
   rows (the family's split: HistGradientBoosting gets the training and validation rows, as its own early
   stopping splits them again) and are scored on the same test rows: ROC AUC (two classes), macro one-vs-rest
   ROC AUC (more) or R². The target is the issue's: within 0.01 of HistGradientBoosting on every table.
2. The default for tables (`architecture=auto`: trees, a network, a linear model and the average of the two
   best, chosen on the validation rows), trained as a user trains it (`modeldeck train NAME --wait` on the
   sample, in a scratch home), scored on the same test rows against the same HistGradientBoosting, and against
   the trivial baseline (ROC AUC 0.5, or R² 0: the training mean). Its targets: within 0.01 of
   HistGradientBoosting, and above the trivial baseline, on every table.
3. Latency: the exported SavedModel (plain TensorFlow) against YDF's `predict`, one row and 1,000 rows, warm,
   the median of 50 calls each, on the churn sample's model. Both run on this 2-core CPU in this process.

`python -m bench.trees [quality] [auto] [latency]` runs some parts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SAMPLES = ["breast-cancer", "wine", "telco-churn", "diamonds", "penguins"]
MARGIN = 0.01


def _task_data(name: str) -> Any:
    """A sample as a run gets it: stored by the data wing (its column names made safe, its profile) in a
    scratch home, then read back."""
    from backend import config, data
    from db import open_store
    from models.task import TaskData

    home = Path(tempfile.mkdtemp(prefix="bench-trees-"))
    os.environ["MODELDECK_HOME"] = str(home)
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    _, version = data.add_sample(store, paths=config.paths(), sample=name)
    target, task = version.target, version.task or ""
    return TaskData(frame=data.load_frame(version), roles={"target": target}, columns=version.columns, task=task)


def _score(task: str, classes: list[str], y: pd.Series, predicted: np.ndarray) -> float:
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "regression":
        return float(r2_score(y.astype("float64"), predicted))
    if len(classes) == 2:
        return float(roc_auc_score((y.astype(str) == classes[1]).astype(int), predicted[:, 1]))
    return float(roc_auc_score(y.astype(str), predicted, multi_class="ovr", labels=classes))


def _hist_gradient_boosting(task: str, train: pd.DataFrame, test: pd.DataFrame, plan: Any) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    names = plan.numeric + plan.categorical + plan.hashed

    def features(rows: pd.DataFrame) -> pd.DataFrame:
        x = rows[names].copy()
        for name in plan.categorical + plan.hashed:
            x[name] = pd.Categorical(
                x[name].astype("string"), categories=sorted(train[name].dropna().astype(str).unique())
            )
        return x

    if task == "regression":
        model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
        return model.fit(features(train), train[plan.target].astype("float64")).predict(features(test))
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(features(train), train[plan.target].astype(str))
    assert list(model.classes_) == plan.classes
    return model.predict_proba(features(test))


def quality() -> None:
    from models import tabular, trees
    from models.spec import TabularSpec
    from models.task import call_batched

    print(
        f"{'sample':<14} {'metric':<8} {'GBT':>7} {'HistGB':>7} {'GBT - HistGB':>13}  {'train s':>7}  within {MARGIN}"
    )
    for name in SAMPLES:
        data = _task_data(name)
        spec = TabularSpec(architecture="gbt")
        task = "regression" if data.task == "regression" else "classification"
        target = data.roles["target"]
        train, val, test = tabular.split(data.frame, target=target, task=task, spec=spec)
        prepared = trees.prepare(data, spec=spec)
        plan = tabular.Plan.from_dict(prepared.plan)
        start = time.perf_counter()
        assert prepared.fit is not None
        model, _ = prepared.fit()
        seconds = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            prepared.export(model, Path(folder) / "export")
            import tensorflow as tf

            serve = tf.saved_model.load(str(Path(folder) / "export")).signatures["serving_default"]
            outputs = call_batched(serve, 8192, **trees.export_inputs(test, plan))
        ours = outputs["value"] if task == "regression" else outputs["probabilities"]
        theirs = _hist_gradient_boosting(task, pd.concat([train, val]), test, plan)
        metric = "R²" if task == "regression" else "ROC AUC"
        a, b = _score(task, plan.classes, test[target], ours), _score(task, plan.classes, test[target], theirs)
        ok = "yes" if a >= b - MARGIN else "NO"
        print(f"{name:<14} {metric:<8} {a:>7.4f} {b:>7.4f} {a - b:>+13.4f}  {seconds:>7.1f}  {ok}", flush=True)


def _cli(home: Path, *args: str) -> dict[str, Any]:
    env = os.environ | {"MODELDECK_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "backend.cli", "--home", str(home), *args, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(done.stdout)


def auto() -> None:
    from models import tabular
    from models.spec import TabularSpec

    print(f"{'sample':<14} {'metric':<8} {'auto':>7} {'HistGB':>7} {'auto - HistGB':>14} {'trivial':>8}  winner")
    for name in SAMPLES:
        data = _task_data(name)
        home = Path(tempfile.mkdtemp(prefix="bench-auto-"))
        _cli(home, "data", "add", f"sample:{name}", "--name", name)
        start = time.perf_counter()
        run = _cli(home, "train", name, "--wait")
        seconds = time.perf_counter() - start
        shown = _cli(home, "runs", "show", str(run["run_id"]))
        spec = TabularSpec()
        task = "regression" if data.task == "regression" else "classification"
        target = data.roles["target"]
        train, val, test = tabular.split(data.frame, target=target, task=task, spec=spec)
        plan = tabular.make_plan(train, columns=data.columns, target=target, task=task, spec=spec)
        theirs = _score(
            task, plan.classes, test[target], _hist_gradient_boosting(task, pd.concat([train, val]), test, plan)
        )
        ours = run["metrics"]["r2" if task == "regression" else "roc_auc"]
        trivial = 0.0 if task == "regression" else 0.5
        ok = ours >= theirs - MARGIN and ours > trivial
        winner = shown["selection"]["winner"]
        metric = "R²" if task == "regression" else "ROC AUC"
        print(
            f"{name:<14} {metric:<8} {ours:>7.4f} {theirs:>7.4f} {ours - theirs:>+14.4f} {trivial:>8.1f}  {winner}"
            f" ({seconds:.0f} s){'' if ok else '  MISSED'}",
            flush=True,
        )


def _median_ms(fn: Any, calls: int = 50) -> float:
    fn()  # warm: tracing, caches
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def latency() -> None:
    import tensorflow as tf

    from models import tabular, trees
    from models.spec import TabularSpec

    data = _task_data("telco-churn")
    spec = TabularSpec(architecture="gbt")
    prepared = trees.prepare(data, spec=spec)
    plan = tabular.Plan.from_dict(prepared.plan)
    assert prepared.fit is not None
    model, _ = prepared.fit()
    rows = data.frame.sample(1000, replace=True, random_state=0)
    with tempfile.TemporaryDirectory() as folder:
        prepared.export(model, Path(folder) / "export")
        serve = tf.saved_model.load(str(Path(folder) / "export")).signatures["serving_default"]
        print(f"churn GBT: {model.num_trees()} trees; median of 50 warm calls")
        print(f"{'rows':>6} {'export ms':>10} {'YDF ms':>8} {'export / YDF':>13}")
        for n in (1, 1000):
            raw = trees.tree_inputs(rows.head(n), plan)
            tensors = {k: tf.constant(v) for k, v in trees.export_inputs(rows.head(n), plan).items()}
            ours = _median_ms(lambda tensors=tensors: serve(**tensors))
            theirs = _median_ms(lambda raw=raw: model.predict(raw))
            print(f"{n:>6} {ours:>10.2f} {theirs:>8.2f} {ours / theirs:>13.2f}", flush=True)


def main() -> None:
    everything = {"quality": quality, "auto": auto, "latency": latency}
    for part in [a for a in sys.argv[1:] if a in everything] or list(everything):
        everything[part]()


if __name__ == "__main__":
    main()
