"""Every task, end to end through the CLI and a real worker: train on tiny generated data, export a
SavedModel that plain TensorFlow runs on raw inputs, and predict from the command line."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import factories

TINY = {  # a minute or less per task on a laptop CPU
    "text-classification": ["--set", "architecture=bag", "--set", "epochs=3", "--set", "sequence_length=16"],
    "image-classification": ["--set", "epochs=3", "--set", "image_size=16", "--set", "filters=8,16"],
    "text-generation": [
        "--set",
        "epochs=1",
        "--set",
        "block_size=16",
        "--set",
        "n_layer=1",
        "--set",
        "n_embd=32",
        "--set",
        "n_head=2",
        "--set",
        "max_new_tokens=12",
    ],
    "recommendation": ["--set", "epochs=3", "--set", "embedding_dim=8", "--set", "top_k=5"],
}
METRICS = {
    "text-classification": factories.CLASSIFIER_METRICS,
    "image-classification": factories.CLASSIFIER_METRICS,
    "text-generation": {"perplexity", "test_tokens"},
    "recommendation": {"rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "k", "test_users", "test_rows"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One home with a text, an image and a ratings dataset, and a finished run of every task on them."""
    root = tmp_path_factory.mktemp("tasks")
    home = root / "home"
    (root / "reviews.csv").write_bytes(factories.csv_bytes(factories.reviews_frame(rows=300)))
    (root / "ratings.csv").write_bytes(factories.csv_bytes(factories.ratings_frame()))
    (root / "shapes.zip").write_bytes(factories.shapes_zip())
    factories.cli_json(home, "data", "add", str(root / "reviews.csv"), "--target", "score")
    factories.cli_json(home, "data", "add", str(root / "ratings.csv"))
    factories.cli_json(home, "data", "add", str(root / "shapes.zip"))
    datasets = {
        "text-classification": "reviews",
        "image-classification": "shapes",
        "text-generation": "reviews",
        "recommendation": "ratings",
    }
    worker = factories.start_worker(home)
    try:
        queued = {
            task: factories.cli_json(home, "train", name, "--task", task, *TINY[task])["run_id"]
            for task, name in datasets.items()
        }
        runs = {task: factories.finished_run(home, run_id) for task, run_id in queued.items()}
    finally:
        factories.stop_process(worker)
    return {"home": home, "root": root, "runs": runs}


def _export(trained: dict[str, Any], task: str) -> Path:
    info = trained["runs"][task]
    return trained["home"] / "runs" / str(info["run_id"]) / "export" / info["model_name"] / str(info["model_version"])


PLAIN_TF = """
import base64, json, sys
sys.modules.update({name: None for name in ("backend", "models", "db", "dashboard")})  # no ModelDeck code
import tensorflow as tf
export, signature, inputs = json.loads(sys.stdin.read())
fn = tf.saved_model.load(export).signatures[signature]
specs = fn.structured_input_signature[1]
raw = lambda v: base64.b64decode(v["b64"]) if isinstance(v, dict) else v
out = fn(**{k: tf.constant([raw(v) for v in vs], dtype=specs[k].dtype) for k, vs in inputs.items()})
text = lambda b: b.decode("utf-8", "replace")
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}, default=text))
"""


def _plain_tf(export_dir: Path, signature: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run a signature in a fresh interpreter that cannot import ModelDeck: plain TensorFlow only."""
    request = json.dumps([str(export_dir), signature, inputs])
    done = subprocess.run([sys.executable, "-c", PLAIN_TF], input=request, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


@pytest.mark.parametrize("task", list(TINY))
def test_each_task_trains_through_the_worker_and_reports_its_metrics(trained: dict[str, Any], task: str) -> None:
    info = trained["runs"][task]
    assert (info["status"], info["task"], info["error"]) == ("succeeded", task, None)
    assert set(info["metrics"]) == METRICS[task]
    assert (info["device"], info["epochs_done"] >= 1, info["throughput"] > 0) == ("CPU", True, True)


def test_the_text_classifier_export_takes_raw_strings(trained: dict[str, Any]) -> None:
    out = _plain_tf(
        _export(trained, "text-classification"), "serving_default", {"text": ["Lovely fresh tea.", "Awful."]}
    )
    assert (len(out["label"]), out["classes"][0], len(out["probabilities"][0])) == (2, ["great", "other"], 2)


def test_the_image_classifier_export_takes_encoded_image_bytes(trained: dict[str, Any]) -> None:
    png, jpeg = _b64(factories.shape_image("disc", 99)), _b64(factories.shape_image("hbars", 98, fmt="JPEG"))
    out = _plain_tf(_export(trained, "image-classification"), "serving_default", {"image": [png, jpeg]})
    assert (len(out["label"]), sorted(out["classes"][0])) == (2, ["disc", "hbars", "vbars"])


def test_the_generator_export_continues_a_prompt_and_is_deterministic_at_temperature_zero(trained) -> None:
    export = _export(trained, "text-generation")
    default = _plain_tf(export, "serving_default", {"prompt": ["The tea"]})
    settings = {
        "prompt": ["The tea"] * 2,
        "max_new_tokens": [12] * 2,
        "temperature": [0.0] * 2,
        "top_k": [0] * 2,
        "top_p": [1.0] * 2,
        "seed": [1, 2],
    }
    greedy = _plain_tf(export, "generate", settings)
    assert isinstance(default["text"][0], str)
    assert greedy["text"][0] == greedy["text"][1]  # different seeds, same text: greedy ignores the seed


def test_the_recommender_export_returns_top_k_items_and_falls_back_for_a_new_user(trained) -> None:
    out = _plain_tf(_export(trained, "recommendation"), "serving_default", {"user": ["u1", "someone-new"]})
    assert ([len(items) for items in out["items"]], out["known"]) == ([5, 5], [True, False])


def test_predict_on_the_command_line_speaks_each_task(trained: dict[str, Any]) -> None:
    home, root, runs = trained["home"], trained["root"], trained["runs"]
    folder = root / "to-tag"
    folder.mkdir(exist_ok=True)
    (folder / "one.png").write_bytes(factories.shape_image("vbars", 7))
    text = factories.cli_json(
        home, "predict", str(runs["text-classification"]["run_id"]), "--row", '{"text": "Tasty!"}'
    )
    image = factories.cli_json(home, "predict", str(runs["image-classification"]["run_id"]), "--input", str(folder))
    row = '{"prompt": "The", "temperature": 0, "max_new_tokens": 5}'
    generated = factories.cli_json(home, "predict", str(runs["text-generation"]["run_id"]), "--row", row)
    recommended = factories.cli_json(home, "predict", str(runs["recommendation"]["run_id"]), "--row", '{"user": "u2"}')
    assert set(text["predictions"][0]) == {"label", "probabilities"}
    assert [(p["file"], set(p)) for p in image["predictions"]] == [("one.png", {"file", "label", "probabilities"})]
    assert set(generated["predictions"][0]) == {"text"}
    assert (len(recommended["predictions"][0]["items"]), recommended["predictions"][0]["known_user"]) == (5, True)


def test_a_task_that_does_not_fit_the_data_is_refused_in_one_line(trained: dict[str, Any]) -> None:
    proc = factories.cli(trained["home"], "train", "ratings", "--task", "image-classification")
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        "error: 'ratings' is ratings data, which trains recommendation; not image-classification. "
        "Pick one of those, or change the data kind on the Data page.",
    )


def test_the_playground_knows_which_recommended_items_were_held_out(trained: dict[str, Any], monkeypatch) -> None:
    """Recommended items the user rated can only be held-out ones: the Playground shows their real rating."""
    from backend import playground
    from db import open_store

    monkeypatch.setenv("MODELDECK_HOME", str(trained["home"]))
    store = open_store(f"sqlite:///{trained['home'] / 'modeldeck.db'}")
    run = store.get_run(trained["runs"]["recommendation"]["run_id"])
    expected = factories.ratings_frame().query("user_id == 'u1'")
    assert playground.user_ratings(store, run, "u1") == dict(zip(expected["item_id"], expected["rating"], strict=True))


@pytest.mark.parametrize("task", list(TINY))
def test_each_export_stores_each_weight_once(trained: dict[str, Any], task: str) -> None:
    stored, used = factories.stored_and_used(_export(trained, task))
    assert stored == used > 0


@pytest.mark.parametrize("fixture", ["churn_run", "price_run"])
def test_a_table_export_stores_each_weight_once(request: pytest.FixtureRequest, fixture: str) -> None:
    run = request.getfixturevalue(fixture)
    shown = factories.cli_json(run["home"], "runs", "show", str(run["run_id"]))
    export = run["home"] / "runs" / str(run["run_id"]) / "export" / shown["model_name"] / str(shown["model_version"])
    stored, used = factories.stored_and_used(export)
    assert stored == used > 0
