"""The error gallery: the test rows, texts or images behind a confusion-matrix cell, as uploaded, the most
confident mistake first; relabelling or dropping them makes a new version and queues the same spec on it."""

from __future__ import annotations

import dataclasses
import io
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from backend import data, jobs
from backend.config import paths
from backend.errors import BadInput
from db import open_store
from tests import factories
from tests import test_pages as pages


@pytest.fixture
def home(churn_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(churn_run["home"], copy)
    pages.use_home(monkeypatch, copy)
    return copy


def test_a_cell_opens_its_test_rows_as_uploaded_the_most_confident_first(home: Path, churn_run) -> None:
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    run = store.get_run(churn_run["run_id"])
    assert run is not None
    every = jobs.gallery_rows(store, run)
    assert len(every) == churn_run["metrics"]["test_rows"]
    wrong = jobs.gallery_rows(store, run, actual="yes", predicted="no")
    matrix = run.evaluation["confusion_matrix"]
    assert len(wrong) == matrix[run.evaluation["classes"].index("yes")][run.evaluation["classes"].index("no")] > 0
    assert wrong["confidence"].is_monotonic_decreasing and set(wrong["actual"]) == {"yes"}
    version = store.get_version(run.version_id)
    assert version is not None
    table = data.load_frame(version)
    first = wrong.iloc[0]
    assert table.iloc[int(first["row"])]["tenure"] == first["tenure"]  # the row as uploaded
    assert table.iloc[int(first["row"])]["churn"] == "yes"
    store.close()


def test_relabelling_rows_makes_a_version_and_queues_the_same_spec_on_it(home: Path, churn_run) -> None:
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    run = jobs.get_run(store, churn_run["run_id"])
    rows = jobs.gallery_rows(store, run, actual="yes", predicted="no")["row"].tolist()[:2]
    version, again = jobs.fix_and_retrain(store, run.id, relabel=dict.fromkeys(rows, "no"), drop=[0])
    relabelled = data.load_frame(version)
    before = data.load_frame(store.get_version(run.version_id))
    assert len(relabelled) == len(before) - 1  # row 0 dropped, after the relabelling
    assert [relabelled.iloc[r - 1]["churn"] for r in rows] == ["no", "no"]
    assert (again.spec, again.task, again.target, again.status) == (run.spec, run.task, run.target, "queued")
    assert data.note_text(version).startswith("Dropped 1 row")
    assert paths().home == home
    with pytest.raises(BadInput, match="Nothing to change"):
        jobs.fix_and_retrain(store, run.id)
    store.close()


def test_the_evaluation_page_fixes_picked_rows_and_starts_the_run(home: Path, churn_run) -> None:
    at = pages.open_page("views/evaluation.py")
    assert "Mistakes, row by row" in pages.values(at.subheader)
    gallery = next(m for m in at.multiselect if m.label == "Rows to fix (by row number)")
    gallery.select(gallery.options[0]).run()
    at.radio[0].set_value("drop").run()
    next(b for b in at.button if b.label.startswith("Save as a new version")).click().run()
    assert not at.exception and pages.values(at.error) == []
    assert pages.values(at.success)[0].startswith("Saved as version")
    assert any("is queued" in text for text in pages.values(at.info))
    listed = factories.cli_json(home, "runs", "list")
    assert listed["total"] == 2


# -- texts and images -------------------------------------------------------------------------------------------
REVIEWS = 300


@pytest.fixture(scope="module")
def classified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{home, zip, text, images}: a home with a text and an image classifier trained by a real worker, the ZIP."""
    root = tmp_path_factory.mktemp("gallery")
    home = root / "home"
    (root / "reviews.csv").write_bytes(factories.csv_bytes(factories.reviews_frame(rows=REVIEWS)))
    (root / "shapes.zip").write_bytes(factories.shapes_zip())
    factories.cli_json(home, "data", "add", str(root / "reviews.csv"), "--target", "score")
    factories.cli_json(home, "data", "add", str(root / "shapes.zip"))
    worker = factories.start_worker(home)
    try:
        words = ["--task", "text-classification", "--set", "architecture=bag", "--set", "epochs=2"]
        words += ["--set", "sequence_length=16"]
        pixels = ["--set", "epochs=2", "--set", "image_size=16", "--set", "filters=8,16"]
        queued = {
            "text": factories.cli_json(home, "train", "reviews", *words)["run_id"],
            "images": factories.cli_json(home, "train", "shapes", *pixels)["run_id"],
        }
        runs = {name: factories.finished_run(home, run_id) for name, run_id in queued.items()}
    finally:
        factories.stop_process(worker)
    assert {name: info["status"] for name, info in runs.items()} == {"text": "succeeded", "images": "succeeded"}
    return {"home": home, "zip": root / "shapes.zip", **queued}


@pytest.fixture
def copied(classified: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the module's home, for tests that make versions and runs."""
    copy = tmp_path / "home"
    shutil.copytree(classified["home"], copy)
    pages.use_home(monkeypatch, copy)
    return copy


@pytest.fixture
def store_of(copied: Path) -> Iterator[Any]:
    s = open_store(f"sqlite:///{copied / 'modeldeck.db'}")
    yield s
    s.close()


def cells(run: Any) -> list[tuple[str, str, int]]:
    """Every cell of a run's confusion matrix: (actual, predicted, count)."""
    classes, matrix = run.evaluation["classes"], run.evaluation["confusion_matrix"]
    return [(a, p, matrix[i][j]) for i, a in enumerate(classes) for j, p in enumerate(classes)]


def largest_cell(run: Any) -> tuple[str, str]:
    actual, predicted, _ = max(cells(run), key=lambda cell: cell[2])
    return actual, predicted


def test_a_text_cell_opens_the_texts_it_counts_as_uploaded_the_most_confident_first(store_of, classified) -> None:
    run = jobs.get_run(store_of, classified["text"])
    uploaded = factories.reviews_frame(rows=REVIEWS)
    for actual, predicted, count in cells(run):
        rows = jobs.gallery_rows(store_of, run, actual=actual, predicted=predicted)
        assert list(rows.columns) == ["row", "actual", "predicted", "confidence", "review"]
        assert (len(rows), set(rows["actual"]) | {actual}, set(rows["predicted"]) | {predicted}) == (
            count,
            {actual},
            {predicted},
        )
        assert rows["confidence"].is_monotonic_decreasing
        assert rows["review"].tolist() == uploaded["review"].iloc[rows["row"]].tolist()  # the text at that position
        assert rows["actual"].tolist() == uploaded["score"].iloc[rows["row"]].tolist()
    assert len(jobs.gallery_rows(store_of, run)) == run.metrics["test_rows"]


def test_an_image_cell_opens_the_images_it_counts_as_uploaded_the_most_confident_first(store_of, classified) -> None:
    run = jobs.get_run(store_of, classified["images"])
    archive = zipfile.ZipFile(io.BytesIO(classified["zip"].read_bytes()))
    index = data.load_frame(store_of.get_version(run.version_id))
    for actual, predicted, count in cells(run):
        rows = jobs.gallery_rows(store_of, run, actual=actual, predicted=predicted)
        assert list(rows.columns) == ["row", "actual", "predicted", "confidence", "file", "original"]
        assert (len(rows), set(rows["actual"]) | {actual}, set(rows["predicted"]) | {predicted}) == (
            count,
            {actual},
            {predicted},
        )
        assert rows["confidence"].is_monotonic_decreasing
        assert rows["file"].tolist() == index["file"].iloc[rows["row"]].tolist()
        for image in rows.to_dict("records"):  # the stored file holds the bytes uploaded under that name and class
            assert (paths().datasets / image["file"]).read_bytes() == archive.read(image["original"])
            assert image["original"].split("/")[0] == image["actual"]
    assert len(jobs.gallery_rows(store_of, run)) == run.metrics["test_rows"]


@pytest.mark.parametrize("kind", ["text", "images"])
def test_relabelling_and_dropping_texts_or_images_makes_versions_and_queues_the_same_spec(
    store_of, classified, kind: str
) -> None:
    run = jobs.get_run(store_of, classified[kind])
    actual, predicted = largest_cell(run)
    first, second = jobs.gallery_rows(store_of, run, actual=actual, predicted=predicted)["row"].tolist()[:2]
    other = next(c for c in run.evaluation["classes"] if c != actual)
    version, again = jobs.fix_and_retrain(store_of, run.id, relabel={first: other}, drop=[second])
    before = data.load_frame(store_of.get_version(run.version_id))
    after = data.load_frame(version)
    relabelled = store_of.get_version(version.parent_id)
    assert (len(after), after[run.target].iloc[first - (second < first)]) == (len(before) - 1, other)
    expected = before.drop(index=second).reset_index(drop=True)
    assert after.drop(columns=[run.target]).equals(expected.drop(columns=[run.target]))  # the rest untouched
    assert (data.note_text(relabelled), data.note_text(version)) == (
        f"Relabelled 1 row of {run.target}.",
        "Dropped 1 row.",
    )
    assert (relabelled.parent_id, again.version_id) == (run.version_id, version.id)
    assert (again.spec, again.task, again.target, again.status) == (run.spec, run.task, run.target, "queued")


def test_a_task_without_a_gallery_says_which_tasks_have_one(store_of, classified) -> None:
    run = dataclasses.replace(jobs.get_run(store_of, classified["text"]), task="text-generation")
    with pytest.raises(BadInput, match=r"is a Text generation model; the error gallery is for classifiers \(of"):
        jobs.gallery_rows(store_of, run)


def open_run(run_id: int, cell: tuple[str, str]) -> Any:
    """The Evaluation page on a run, with a confusion-matrix cell picked."""
    at = pages.open_page("views/evaluation.py")
    pages.one(at.selectbox, "Run").set_value(run_id).run()
    pages.one(at.selectbox, "Actual").set_value(cell[0]).run()
    pages.one(at.selectbox, "Predicted as").set_value(cell[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_evaluation_page_shows_a_cell_s_texts_and_relabels_one(copied: Path, store_of, classified) -> None:
    run = jobs.get_run(store_of, classified["text"])
    cell = largest_cell(run)
    at = open_run(run.id, cell)
    expected = jobs.gallery_rows(store_of, run, actual=cell[0], predicted=cell[1])
    (table,) = [d.value for d in at.dataframe if "review" in d.value.columns]
    pd.testing.assert_frame_equal(table.reset_index(drop=True), expected)
    gallery = pages.one(at.multiselect, "Rows to fix (by row number)")
    gallery.select(expected["row"].iloc[0]).run()
    other = next(c for c in run.evaluation["classes"] if c != cell[0])
    pages.one(at.selectbox, "New label").set_value(other).run()
    next(b for b in at.button if b.label.startswith("Save as a new version")).click().run()
    assert not at.exception and pages.values(at.error) == []
    assert pages.values(at.success)[0].startswith("Saved as version")
    newest = store_of.list_runs()[0]  # newest first
    assert (newest.task, newest.spec, data.note_text(store_of.get_version(newest.version_id))) == (
        run.task,
        run.spec,
        f"Relabelled 1 row of {run.target}.",
    )


def test_the_evaluation_page_shows_a_cell_s_images_and_drops_one(copied: Path, store_of, classified) -> None:
    run = jobs.get_run(store_of, classified["images"])
    cell = largest_cell(run)
    at = open_run(run.id, cell)
    expected = jobs.gallery_rows(store_of, run, actual=cell[0], predicted=cell[1])
    captions = [caption for image in at.get("image") for caption in image.captions]
    shown = [c for c in captions if c.split(": ")[0].isdigit()]  # the gallery's, not the mistakes' above it
    assert sorted(shown) == sorted(  # a grid of six columns lists column by column
        f"{r['row']}: {r['actual']} → {r['predicted']} ({r['confidence']:.0%})" for r in expected.to_dict("records")
    )
    gallery = pages.one(at.multiselect, "Rows to fix (by row number)")
    assert (gallery.options, gallery.placeholder) == ([str(r) for r in expected["row"]], "row numbers under the images")
    gallery.select(expected["row"].iloc[0]).run()
    pages.one(at.radio, "Fix").set_value("drop").run()
    next(b for b in at.button if b.label.startswith("Save as a new version")).click().run()
    assert not at.exception and pages.values(at.error) == []
    newest = store_of.list_runs()[0]  # newest first
    assert (newest.task, newest.spec, store_of.get_version(newest.version_id).rows) == (run.task, run.spec, 89)
