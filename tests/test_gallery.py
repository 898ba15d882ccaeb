"""The error gallery: the test rows behind a confusion-matrix cell, as uploaded, the most confident mistake
first; relabelling or dropping them makes a new version and queues the same spec on it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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
