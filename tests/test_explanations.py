"""Why a model said what it said (issue 15 §3): permutation importance and occlusion, through the export.

One home holds a gradient-boosted-trees run on a table whose target is decided by one planted column, and a text
classifier whose labels are decided by sentiment words; both train once for the module through a real worker.
The backend's explanations run the exports in this process (`local_predict`); the Playground's go through the
real inference server, as a user's do.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend import jobs
from backend.errors import BadInput
from db import open_store
from tests import factories
from tests.test_pages import one, open_page, use_home, values

PLANTED = "signal"  # the one column the table's target depends on


def planted_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A table whose target is `signal > 0.5`; `noise` and `colour` carry nothing."""
    rng = np.random.default_rng(seed)
    signal = rng.uniform(0, 1, rows).round(3)
    return pd.DataFrame(
        {
            PLANTED: signal,
            "noise": rng.normal(0, 1, rows).round(3),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "target": np.where(signal > 0.5, "yes", "no"),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{home, table, text}: the home and the runs' ids (trees on the planted table, a text classifier)."""
    root = tmp_path_factory.mktemp("explain")
    home = root / "home"
    planted_frame().to_csv(root / "planted.csv", index=False)
    (root / "reviews.csv").write_bytes(factories.csv_bytes(factories.reviews_frame(rows=300)))
    factories.cli_json(home, "data", "add", str(root / "planted.csv"), "--target", "target")
    factories.cli_json(home, "data", "add", str(root / "reviews.csv"), "--target", "score")
    worker = factories.start_worker(home)
    try:
        trees = ["--set", "architecture=gbt", "--set", "num_trees=30", "--override", "a planted column, on purpose"]
        words = ["--task", "text-classification", "--set", "architecture=bag", "--set", "epochs=10"]
        words += ["--set", "ngrams=1", "--set", "sequence_length=16"]
        queued = {
            "table": factories.cli_json(home, "train", "planted", *trees)["run_id"],
            "text": factories.cli_json(home, "train", "reviews", *words)["run_id"],
        }
        runs = {name: factories.finished_run(home, run_id) for name, run_id in queued.items()}
    finally:
        factories.stop_process(worker)
    assert {name: info["status"] for name, info in runs.items()} == {"table": "succeeded", "text": "succeeded"}
    return {"home": home, **queued}


@pytest.fixture
def store(trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_home(monkeypatch, trained["home"])
    s = open_store(f"sqlite:///{trained['home'] / 'modeldeck.db'}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def predictors(trained: dict[str, Any]) -> dict[str, jobs.Predict]:
    """Each run's export, loaded in this process."""
    export = trained["home"] / "runs" / "{}" / "export"
    found = {}
    for name in ("table", "text"):
        (folder,) = Path(str(export).format(trained[name])).iterdir()
        found[name] = jobs.local_predict(folder / "1")
    return found


@pytest.fixture(scope="module")
def serving(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real inference server over the home's exports; its REST URL once /healthz answers."""
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    log = tmp_path_factory.mktemp("serving") / "server.log"
    with factories.running(factories.serve_command(trained["home"], rest, grpc), log=log, urls=[f"{url}/healthz"]):
        yield url


# -- tables ------------------------------------------------------------------------------------------------
def test_the_explained_split_is_the_one_the_run_trained_on(trained: dict[str, Any], store: Any) -> None:
    from backend.jobs import explanations  # the split is the module's own; the door hands on what pages use
    from models import tabular
    from models.tasks import spec_from_dict

    run = store.get_run(trained["table"])
    spec = spec_from_dict(run.spec, task=run.task)
    ours = explanations.split_rows(planted_frame(), run)
    theirs = tabular.split(planted_frame(), target="target", task="classification", spec=spec)
    assert [part.to_dict("list") for part in ours] == [part.to_dict("list") for part in theirs]


def test_permutation_importance_ranks_the_planted_column_first_and_is_kept(trained: dict[str, Any], store: Any) -> None:
    found = jobs.feature_importance(store, trained["table"])

    drops = {c.column: c.drop for c in found.columns}
    assert (found.metric, found.repeats, found.columns[0].column) == ("roc_auc", 3, PLANTED)
    assert drops[PLANTED] > 0.3 and abs(drops["noise"]) < 0.05 and abs(drops["colour"]) < 0.05, drops
    assert jobs.saved_importance(store.get_run(trained["table"])) == found  # kept: the next request reads it


def test_one_prediction_the_planted_feature_pushes_most_and_the_pushes_add_up_in_sign(
    trained: dict[str, Any], store: Any, predictors: dict[str, jobs.Predict]
) -> None:
    run = store.get_run(trained["table"])
    row = {PLANTED: 0.05, "noise": 1.5, "colour": "red"}
    found = jobs.explain_row(store, run, row, predict=predictors["table"])

    assert (found.explained, found.contributions[0].column, found.contributions[0].value) == ("yes", PLANTED, 0.05)
    assert found.contributions[0].change < -0.5  # a low signal lowered the chance of "yes"
    assert np.sign(sum(c.change for c in found.contributions)) == np.sign(found.score - found.typical)
    assert [c.column for c in found.contributions if abs(c.change) > 0.05] == [PLANTED]


def test_the_typical_case_is_the_training_median_and_commonest_category(trained: dict[str, Any], store: Any) -> None:
    from backend.jobs import explanations

    run = store.get_run(trained["table"])
    train, _, _ = explanations.split_rows(planted_frame(), run)
    assert jobs.reference_row(store, run) == {
        PLANTED: pytest.approx(train[PLANTED].median()),
        "noise": pytest.approx(train["noise"].median()),
        "colour": train["colour"].value_counts().index[0],
    }


def test_a_row_without_every_input_is_refused_in_one_line(trained: dict[str, Any], store: Any) -> None:
    run = store.get_run(trained["table"])
    with pytest.raises(BadInput, match=r"^No value for: noise, colour\. Fill in every field, then predict again\.$"):
        jobs.explain_row(store, run, {PLANTED: 0.5}, predict=lambda rows: [])


def test_importance_of_a_run_whose_export_is_gone_says_so(
    trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained["home"], home, ignore=shutil.ignore_patterns("explanations.json"))
    shutil.rmtree(home / "runs" / str(trained["table"]) / "export")
    use_home(monkeypatch, home)
    s = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        with pytest.raises(BadInput, match=rf"^Run {trained['table']}'s exported model is missing from "):
            jobs.feature_importance(s, trained["table"])
        shutil.rmtree(home / "datasets")
        with pytest.raises(BadInput, match=rf"^The data run {trained['table']} trained on is gone"):
            jobs.reference_row(s, s.get_run(trained["table"]))
    finally:
        s.close()


# -- texts and images --------------------------------------------------------------------------------------
def test_text_occlusion_highlights_the_planted_sentiment_word(
    trained: dict[str, Any], store: Any, predictors: dict[str, jobs.Predict]
) -> None:
    run = store.get_run(trained["text"])
    found = jobs.explain_text(run, "The tea arrived and it was really delicious", predict=predictors["text"])

    strongest = max(found.words, key=lambda w: abs(w.change))
    assert (found.explained, strongest.text, strongest.change > 0.1) == ("great", "delicious", True)
    assert [w.text for w in found.words] == "The tea arrived and it was really delicious".split()


def test_a_long_text_is_dropped_in_runs_of_words_and_an_empty_one_is_refused(
    trained: dict[str, Any], store: Any, predictors: dict[str, jobs.Predict]
) -> None:
    run = store.get_run(trained["text"])
    found = jobs.explain_text(run, " ".join(["tea"] * 130), predict=predictors["text"])
    assert (found.per_piece, len(found.words)) == (3, 44)
    with pytest.raises(BadInput, match=r"^The text has no words to explain\."):
        jobs.explain_text(run, "  \n ", predict=predictors["text"])


def _square_image() -> bytes:
    """A 32×32 black picture with a white 8×8 square in its top-left corner."""
    from PIL import Image

    pixels = np.zeros((32, 32), dtype=np.uint8)
    pixels[:8, :8] = 255
    out = io.BytesIO()
    Image.fromarray(pixels, "L").save(out, "PNG")
    return out.getvalue()


def _square_detector(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stand-in image classifier: the brighter the top-left corner, the surer it is of "square"."""
    from PIL import Image

    found = []
    for row in rows:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(row["image"]["b64"]))).convert("L"))
        p = float(pixels[:8, :8].mean() / 255)
        found.append({"probabilities": [p, 1 - p], "classes": ["square", "empty"], "label": "square"})
    return found


def test_image_occlusion_maps_each_patch_of_the_grid(trained: dict[str, Any], store: Any) -> None:
    run = dataclasses.replace(store.get_run(trained["text"]), task="image-classification")
    found = jobs.explain_image(run, _square_image(), predict=_square_detector)

    assert (found.explained, len(found.grid), {len(row) for row in found.grid}) == ("square", 8, {8})
    covering = {(i, j) for i, row in enumerate(found.grid) for j, v in enumerate(row) if v > 0}
    assert covering == {(0, 0), (0, 1), (1, 0), (1, 1)}  # the 4-pixel patches over the square
    with pytest.raises(BadInput, match=r"^This file is not an image that can be read\."):
        jobs.explain_image(run, b"not an image", predict=_square_detector)


def test_a_text_model_has_no_table_explanations(trained: dict[str, Any], store: Any) -> None:
    with pytest.raises(BadInput, match=rf"^Run {trained['text']} is a Text classification model; feature importance"):
        jobs.feature_importance(store, trained["text"])


# -- pages ------------------------------------------------------------------------------------------------
def test_the_playground_says_why_next_to_a_table_prediction(
    trained: dict[str, Any], serving: str, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_SERVING_URL", serving)
    at = open_page("views/playground.py")
    one(at.selectbox, "Model").select(trained["table"]).run()
    one(at.number_input, "Signal").set_value(0.05)  # the column `signal`, its label written as a word
    one(at.button, "Predict").click().run()

    assert not at.exception and values(at.error) == []
    assert "Why this prediction" in values(at.subheader)
    lines = [v for v in values(at.markdown) if v.startswith("- **")]
    assert lines[0].startswith("- **Signal = 0\\.05** lowered the chance of yes by "), lines  # as the form names it


def test_the_playground_highlights_the_words_of_a_text_prediction(
    trained: dict[str, Any], serving: str, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELDECK_SERVING_URL", serving)
    at = open_page("views/playground.py")
    one(at.selectbox, "Model").select(trained["text"]).run()
    at.text_area[0].input("The box arrived <b>and</b> it was stale")
    one(at.button, "Predict").click().run()

    assert not at.exception and values(at.error) == []
    highlighted = next(v for v in values(at.markdown) if v.startswith('<div style="line-height: 2">'))
    assert ">stale</span>" in highlighted and "&lt;b&gt;and&lt;/b&gt;" in highlighted  # escaped, not bold


def test_the_evaluation_page_charts_the_kept_importance(
    trained: dict[str, Any], store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs.feature_importance(store, trained["table"])  # kept, or computed now
    at = open_page("views/evaluation.py")
    one(at.selectbox, "Run").select(trained["table"]).run()

    assert not at.exception and "What the model relies on" in values(at.subheader)
    assert any(v.startswith("- Shuffling **Signal** costs ") and "ROC AUC" in v for v in values(at.markdown))
