"""Gradient-boosted trees: the export is plain TensorFlow (no ydf, no custom op) and predicts what YDF predicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import ensemble, trees
from models.spec import TabularSpec
from models.task import TaskData
from tests import factories
from tests.factories import churn_frame

# A fresh interpreter that never imports ydf: it serves the export with TensorFlow alone and prints the outputs.
_SERVE = """
import json, sys
import numpy as np, tensorflow as tf
assert "ydf" not in sys.modules
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
inputs = json.load(open(sys.argv[2]))
tensors = {k: tf.constant(np.array(v, dtype=np.float32 if k in inputs["numeric"] else object).reshape(-1, 1))
           for k, v in inputs["columns"].items()}
out = serve(**tensors)
print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if v.dtype != tf.string}))
assert "ydf" not in sys.modules
"""


def _table(task: str, rows: int = 1200) -> tuple[pd.DataFrame, list[dict], str]:
    frame = churn_frame(rows=rows)
    rng = np.random.default_rng(5)
    frame["region"] = rng.choice([f"r{i}" for i in range(30)], rows)  # a category with many rare values
    frame.loc[rng.random(rows) < 0.05, "charges"] = np.nan  # missing numbers take the `missing` branch
    frame.loc[rng.random(rows) < 0.05, "plan"] = None  # missing categories: YDF's out-of-dictionary item
    target = "churn" if task == "classification" else "tenure"
    kinds = {"tenure": "numeric", "charges": "numeric", "plan": "categorical", "region": "categorical"}
    kinds["churn"] = "categorical"
    columns = [{"name": n, "kind": k} for n, k in kinds.items()]
    if task == "regression":
        frame = frame.drop(columns=["churn"])
        columns = [c for c in columns if c["name"] != "churn"]
    return frame, columns, target


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_compiled_export_predicts_what_ydf_predicts_in_plain_tensorflow(task: str, tmp_path: Path) -> None:
    frame, columns, target = _table(task)
    data = TaskData(frame=frame, roles={"target": target}, columns=columns, task=task)
    prepared = trees.prepare(data, spec=TabularSpec(architecture="gbt", num_trees=60))
    assert prepared.fit is not None
    model, curves = prepared.fit()
    prepared.export(model, tmp_path / "export")

    test = frame.sample(200, random_state=1).drop(columns=[target]).reset_index(drop=True)
    test.loc[:4, "plan"] = "a plan nobody has"  # unseen categories
    test.loc[5:9, ["tenure", "charges"]] = np.nan  # and rows with every number missing
    columns_in = trees.tree_inputs(test, _plan_of(prepared))
    (tmp_path / "inputs.json").write_text(
        json.dumps({"columns": {k: v.tolist() for k, v in columns_in.items()}, "numeric": ["tenure", "charges"]})
    )
    served = subprocess.run(
        [sys.executable, "-c", _SERVE, str(tmp_path / "export"), str(tmp_path / "inputs.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    outputs = json.loads(served.stdout.strip().splitlines()[-1])
    expected = np.asarray(model.predict(columns_in))
    if task == "classification":
        got = np.asarray(outputs["probabilities"])[:, 1]  # YDF predicts P(second class) for two classes
    else:
        got = np.asarray(outputs["value"])
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert len(curves["loss"]) == len(curves["val_loss"]) >= 1


def _plan_of(prepared) -> trees.tabular.Plan:
    return trees.tabular.Plan.from_dict(prepared.plan)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One home, one worker: a gbt run and a run on the tables' default (auto), as `runs show` reports them."""
    root = tmp_path_factory.mktemp("trees")
    home = root / "home"
    churn_frame().to_csv(root / "churn.csv", index=False)
    factories.cli_json(home, "data", "add", str(root / "churn.csv"), "--name", "churn", "--target", "churn")
    worker = factories.start_worker(home)
    try:
        gbt = factories.cli_json(home, "train", "churn", "--set", "architecture=gbt", "--set", "num_trees=40")
        auto = factories.cli_json(home, "train", "churn", "--epochs", "3")
        shown = {name: factories.finished_run(home, run["run_id"]) for name, run in (("gbt", gbt), ("auto", auto))}
    finally:
        factories.stop_process(worker)
    return {"home": home, **shown}


def test_a_gbt_run_trains_through_the_worker_and_predicts_like_any_table_model(runs: dict[str, Any]) -> None:
    info = runs["gbt"]
    assert (info["status"], info["spec"]["architecture"]) == ("succeeded", "gbt"), info
    assert info["metrics"]["accuracy"] > 0.6 and 0 < info["epochs_done"] <= 40  # one curve point per tree
    rows = churn_frame(rows=3, seed=4).drop(columns=["churn"]).to_dict("records")
    out = factories.cli_json(runs["home"], "predict", str(info["run_id"]), "--row", json.dumps(rows))
    assert [set(p["probabilities"]) for p in out["predictions"]] == [{"no", "yes"}] * 3


def test_the_default_for_tables_trains_trees_a_network_and_a_linear_model_and_keeps_the_best(runs) -> None:
    info = runs["auto"]
    selection = info["selection"]
    assert (info["status"], info["spec"]["architecture"], set(selection["scores"])) == (
        "succeeded",
        "auto",
        {"gbt", "mlp", "linear", "ensemble"},  # and the average of the two best
    )
    assert selection["winner"] == min(selection["scores"], key=selection["scores"].get)
    assert selection["metric"] == "log_loss" and info["epochs_done"] >= 1  # the winner's curves
    exports = list((runs["home"] / "runs" / str(info["run_id"])).rglob("saved_model.pb"))
    assert len(exports) == 1, exports  # the losers' exports are gone


def test_the_average_of_two_exports_serves_their_mean_in_plain_tensorflow(tmp_path: Path) -> None:
    frame, columns, target = _table("classification", rows=600)
    data = TaskData(frame=frame, roles={"target": target}, columns=columns, task="classification")
    folders = []
    for depth in (2, 5):  # two different forests
        prepared = trees.prepare(data, spec=TabularSpec(architecture="gbt", num_trees=20, max_depth=depth))
        assert prepared.fit is not None
        prepared.export(prepared.fit()[0], tmp_path / str(depth))
        folders.append(tmp_path / str(depth))
    ensemble.export(folders, tmp_path / "average")
    rows = trees.tabular.raw_inputs(frame.head(50), _plan_of(prepared))
    served = [
        tf.saved_model.load(str(f)).signatures["serving_default"](**rows) for f in [*folders, tmp_path / "average"]
    ]
    np.testing.assert_allclose(
        served[2]["probabilities"], (served[0]["probabilities"] + served[1]["probabilities"]) / 2, atol=1e-6
    )
    best = np.asarray(served[2]["classes"])[0][np.argmax(served[2]["probabilities"], axis=1)]
    assert np.asarray(served[2]["label"]).tolist() == best.tolist()
