"""Deleting a dataset, a run or a model: what depends on it is listed first, nothing a stage needs goes, only an
admin may, the records go all at once (on SQLite and PostgreSQL) and the folders after them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from backend import auth, config, jobs, serving
from backend.errors import Forbidden, InvalidState
from tests import factories

ADMIN = auth.Actor("ada", "admin", "test")
EDITOR = auth.Actor("ed", "editor", "test")


def _finished_run(store: Any, version: Any, *, model: str = "churn") -> Any:
    """A run that made a version of `model`, with a folder on disk, as a worker leaves it."""
    run = store.create_run(version_id=version.id, task="classification", target="churn", spec={}, queue=False)
    store.name_model(run.id, names=[model], task="classification", export_parent=f"runs/{run.id}/export")
    folder = config.paths().run_dir(run.id)
    (folder / "export").mkdir(parents=True)
    (folder / "spec.json").write_text("{}")
    return store.update_run(run.id, status="succeeded")


def _dataset(store: Any, name: str = "churn", frame: pd.DataFrame | None = None) -> tuple[Any, Any]:
    if frame is None:
        return factories.add_frame(store, factories.churn_frame(), name=name)
    return factories.add_frame(store, frame, name=name, target="price")


def test_deleting_a_dataset_lists_and_takes_its_runs_models_use_cases_and_folders(any_store: Any) -> None:
    store = any_store
    dataset, version = _dataset(store)
    first, second = _finished_run(store, version), _finished_run(store, version)
    store.add_use_case(title="Who leaves?", description="", audience="", model_name="churn", run_id=second.id)
    other, other_version = _dataset(store, "prices", factories.price_frame())
    kept = _finished_run(store, other_version, model="prices")

    found = jobs.deletion_plan(store, "dataset", "churn")
    assert (found.runs, found.models, found.use_cases, found.staged, found.active) == (
        [first.id, second.id],
        ["churn v1", "churn v2"],
        ["Who leaves?"],
        [],
        [],
    )
    data_folder = config.paths().resolve(version.path).parent
    assert set(found.folders) == {config.paths().run_dir(first.id), config.paths().run_dir(second.id), data_folder}

    with auth.acting_as(EDITOR), pytest.raises(Forbidden):
        jobs.delete(store, "dataset", "churn")
    assert store.get_run(first.id) is not None, "a refused deletion changes nothing"
    with auth.acting_as(ADMIN):
        jobs.delete(store, "dataset", "churn")

    assert [d.name for d in store.list_datasets()] == ["prices"]
    assert (store.get_run(first.id), store.get_run(second.id), store.use_cases(hidden=True)) == (None, None, [])
    assert not any(f.exists() for f in found.folders)
    assert store.get_run(kept.id) is not None and config.paths().run_dir(kept.id).exists()
    assert config.paths().resolve(other_version.path).exists() and other.name == "prices"
    (entry,) = [e for e in store.audit_log() if e.action == "delete"]
    assert (entry.actor, entry.target) == ("ada", "dataset churn")


def test_nothing_a_stage_holds_or_a_worker_runs_is_deleted(store: Any) -> None:
    _, version = _dataset(store)
    run = _finished_run(store, version)
    with auth.acting_as(ADMIN):
        serving.promote(store, "churn", 1, stage="production", reason="live")
        with pytest.raises(InvalidState) as staged:
            jobs.delete(store, "model", "churn")
        queued = store.create_run(version_id=version.id, task="classification", target="churn", spec={})
        with pytest.raises(InvalidState) as active:
            jobs.delete(store, "run", str(queued.id))
    assert str(staged.value) == (
        "churn cannot be deleted: churn v1 (production) still holds a stage. Roll the stage back or promote another "
        "version first."
    )
    assert (
        str(active.value) == f"run {queued.id} cannot be deleted while runs {queued.id} are queued or running: "
        "cancel them first."
    )
    assert store.get_run(run.id) is not None and config.paths().run_dir(run.id).exists()


def test_the_same_content_under_two_names_keeps_its_folder_for_the_other(store: Any) -> None:
    _, first = _dataset(store, "churn")
    _, second = _dataset(store, "churn-copy")  # the same bytes: the same content-addressed folder
    assert first.path == second.path
    with auth.acting_as(ADMIN):
        jobs.delete(store, "dataset", "churn")
    assert config.paths().resolve(second.path).exists()


def test_deleting_a_model_takes_every_version_its_stage_history_and_request_log(store: Any) -> None:
    _, version = _dataset(store)
    runs = [_finished_run(store, version) for _ in range(2)]
    with auth.acting_as(ADMIN):
        serving.promote(store, "churn", 1, stage="staging", reason="try")
        serving.promote(store, "churn", 2, stage="staging", reason="try the other")
        serving.rollback(store, "churn", stage="staging", reason="back")
        serving.promote(store, "churn", 2, stage="staging", reason="again")
        with pytest.raises(InvalidState):
            jobs.delete(store, "model", "churn")
    with store.engine.begin() as conn:  # the stage taken away by hand, as if the model had never been staged
        conn.exec_driver_sql("delete from model_stages")
    with auth.acting_as(ADMIN):
        gone = jobs.delete(store, "model", "churn")
    assert gone.runs == [r.id for r in runs] and store.model_versions("churn") == []
    assert store.stage_history("churn") == []


def test_the_cli_shows_what_would_go_and_deletes_with_yes(home: Path) -> None:
    csv = home / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    shown = factories.cli(home, "delete", "dataset", "churn")
    still = factories.cli_json(home, "data", "list")
    done = factories.cli_json(home, "delete", "dataset", "churn", "--yes")
    after = factories.cli_json(home, "data", "list")
    assert shown.returncode == 0 and shown.stdout.splitlines()[0] == "deleting dataset churn would take:"
    assert shown.stdout.splitlines()[-1] == "run again with --yes to delete"
    assert len(still["datasets"]) == 1 and done["deleted"] is True and after["datasets"] == []


def test_the_admin_page_shows_what_goes_and_deletes_once_the_admin_is_sure(store: Any) -> None:
    from streamlit.testing.v1 import AppTest

    _, version = _dataset(store)
    run = _finished_run(store, version)
    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/admin.py").run()
    plan = [m.value for m in at.markdown if m.value.startswith("It takes with it")]
    [delete] = [b for b in at.button if b.label == "Delete"]
    assert not at.exception and delete.disabled
    assert plan == [f"It takes with it: runs {run.id}; model versions churn v1; use cases —; 2 folders on disk."]
    at.checkbox(key="sure_dataset_churn").check().run()
    [delete] = [b for b in at.button if b.label == "Delete"]
    delete.click().run()
    assert not at.exception and store.list_datasets() == [] and store.get_run(run.id) is None
