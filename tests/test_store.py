"""The store on a real SQLite file and a real PostgreSQL server: migrations, records, jobs, concurrent writers.

Tests that take `any_store` or `database_url` run once on each database.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from db import open_store
from db.store import MIGRATIONS


def _version(store, name="d", hash="h1"):
    return store.add_dataset_version(
        name=name,
        kind="tabular",
        source="test",
        hash=hash,
        path="/x",
        rows=1,
        columns=[{"name": "a", "kind": "numeric"}],
        target="a",
        task="regression",
    )


def test_opening_a_new_file_applies_every_migration(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    tables = set(inspect(store.engine).get_table_names())
    revisions = {p.stem.split("_")[0] for p in (MIGRATIONS / "versions").glob("*.py")}
    with sqlite3.connect(tmp_path / "m.db") as conn:
        (head,) = conn.execute("select version_num from alembic_version").fetchone()
    assert {"datasets", "dataset_versions", "quality_reports", "runs", "metrics", "jobs", "workers"} <= tables
    assert head == max(revisions)


def test_reopening_keeps_data_and_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_store(url)
    dataset, _ = _version(store)
    store.close()
    assert [d.name for d in open_store(url).list_datasets()] == [dataset.name]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_adding_the_same_content_twice_returns_the_same_version(any_store) -> None:
    store = any_store
    _, first = _version(store)
    _, second = _version(store)
    assert first.id == second.id
    assert len(store.list_versions(first.dataset_id)) == 1


def test_records_are_frozen_dataclasses_not_orm_rows(any_store) -> None:
    store = any_store
    dataset, version = _version(store)
    assert type(dataset).__module__ == "db.records"
    assert type(version).__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_creating_a_run_queues_a_training_job_that_one_worker_claims(any_store) -> None:
    store = any_store
    _, version = _version(store)
    run = store.create_run(version_id=version.id, task="regression", target="a", spec={"epochs": 1})
    job = store.claim_job("w1")
    assert (job.run_id, job.kind, job.status) == (run.id, "train", "running")
    assert store.claim_job("w2") is None
    assert store.get_run(run.id).status == "running"


def test_cancelling_a_queued_run_cancels_it_at_once(any_store) -> None:
    store = any_store
    _, version = _version(store)
    run = store.create_run(version_id=version.id, task="regression", target="a", spec={})
    assert store.request_cancel(run.id).status == "cancelled"
    assert store.claim_job("w1") is None


def test_runs_of_a_dead_worker_become_interrupted(any_store) -> None:
    store = any_store
    _, version = _version(store)
    run = store.create_run(version_id=version.id, task="regression", target="a", spec={})
    store.register_worker("w1", host="h", pid=1)
    store.claim_job("w1")
    store.stop_worker("w1")
    assert store.interrupt_orphaned_runs(stale_after_s=60) == [run.id]
    assert store.get_run(run.id).status == "interrupted"


def test_model_versions_count_up_per_model_name(any_store) -> None:
    store = any_store
    _, version = _version(store)
    runs = [store.create_run(version_id=version.id, task="regression", target="a", spec={}) for _ in range(3)]
    numbers = [store.assign_model_version(r.id, model_name="m", export_root="/x") for r in runs[:2]]
    other = store.assign_model_version(runs[2].id, model_name="other", export_root="/x")
    assert (numbers, other) == ([1, 2], 1)


def _at_once(target: Any, args: list[tuple[Any, ...]]) -> list[int | None]:
    """Run `target` in one fresh process per argument tuple, all at once; their exit codes."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    return [p.exitcode for p in procs]


def _claim_all(url: str, worker: str, claimed: Any) -> None:
    """A worker that claims jobs until none is left, and says which it got."""
    store = open_store(url)
    while (job := store.claim_job(worker)) is not None:
        claimed.append((worker, job.id))
    store.close()


def test_workers_claiming_at_once_take_every_job_exactly_once(database_url: str) -> None:
    """On PostgreSQL a claim is SELECT … FOR UPDATE SKIP LOCKED (a SELECT, then an UPDATE, gave one job to two)."""
    store = open_store(database_url)
    _, version = _version(store)
    runs = [store.create_run(version_id=version.id, task="regression", target="a", spec={}) for _ in range(60)]
    claimed = multiprocessing.get_context("spawn").Manager().list()
    assert _at_once(_claim_all, [(database_url, f"w{w}", claimed) for w in range(4)]) == [0, 0, 0, 0]
    taken = list(claimed)
    assert sorted(job for _, job in taken) == sorted({job for _, job in taken}), "a job was claimed twice"
    assert len(taken) == len(runs)
    assert {store.get_run(r.id).status for r in runs} == {"running"}


def _name_models(url: str, run_ids: list[int]) -> None:
    store = open_store(url)
    for run_id in run_ids:
        store.name_model(run_id, names=["churn"], task="regression", export_parent="/x")
    store.close()


def test_runs_finishing_at_once_get_a_version_each(database_url: str) -> None:
    """Choosing a model's next version reads the highest and writes one more: on PostgreSQL, under a lock."""
    store = open_store(database_url)
    _, version = _version(store)
    runs = [store.create_run(version_id=version.id, task="regression", target="a", spec={}).id for _ in range(40)]
    assert _at_once(_name_models, [(database_url, runs[w::4]) for w in range(4)]) == [0, 0, 0, 0]
    assert sorted(store.get_run(r).model_version for r in runs) == list(range(1, 41))


def _add_versions(url: str, writer: int) -> None:
    store = open_store(url)
    for i in range(5):
        _version(store, name="shared", hash=f"{writer}-{i}")
    store.close()


def test_uploads_of_one_new_dataset_at_once_make_one_dataset(database_url: str) -> None:
    assert _at_once(_add_versions, [(database_url, w) for w in range(4)]) == [0, 0, 0, 0]
    store = open_store(database_url)
    (dataset,) = store.list_datasets()
    assert len(store.list_versions(dataset.id)) == 20


def _open(url: str) -> None:
    open_store(url).close()


def test_processes_opening_a_new_database_at_once_migrate_it_once(database_url: str) -> None:
    """A migration lock: a file lock on SQLite, an advisory lock on PostgreSQL."""
    assert _at_once(_open, [(database_url,)] * 4) == [0, 0, 0, 0]
    store = open_store(database_url)
    assert store.list_datasets() == []


def _write_metrics(url: str, run_id: int, writer: int, count: int) -> None:
    store = open_store(url)
    for i in range(count):
        store.record_epoch(run_id, epoch=writer * 1000 + i, logs={"loss": float(i)}, progress={"w": writer})
    store.close()


def test_concurrent_writers_lose_no_writes(database_url: str) -> None:
    url = database_url
    store = open_store(url)
    _, version = _version(store)
    run = store.create_run(version_id=version.id, task="regression", target="a", spec={})
    assert _at_once(_write_metrics, [(url, run.id, w, 60) for w in range(3)]) == [0, 0, 0]
    assert len(store.run_metrics(run.id)) == 180


def test_the_notes_migration_keeps_an_old_english_note_word_for_word(tmp_path: Path) -> None:
    """A database made before notes were catalog keys: its one-sentence note survives the upgrade."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with create_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.exec_driver_sql(
            "insert into datasets (id, name, kind, source, created_at) values (1, 'd', 'tabular', 't', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "insert into dataset_versions (id, dataset_id, hash, note, path, rows, columns, created_at) values "
            "(1, 1, 'h1', 'Dropped 3 rows.', '/x', 1, '[]', '2026-01-01'), "
            "(2, 1, 'h2', '', '/y', 1, '[]', '2026-01-01')"
        )
    store = open_store(url)
    first, second = store.list_versions(1)
    assert (first.notes, second.notes) == ([{"key": "note.text", "params": {"text": "Dropped 3 rows."}}], [])


def test_an_epoch_whose_loss_went_nan_records_its_finite_metrics(any_store) -> None:
    store = any_store
    """NaN used to reach SQLite as NULL and fail the NOT NULL constraint, hiding the run's own message."""
    _, version = _version(store)
    run = store.create_run(version_id=version.id, task="regression", target="a", spec={})
    store.record_epoch(run.id, epoch=0, logs={"loss": float("nan"), "mae": 1.5}, progress={})
    assert [(m.name, m.value) for m in store.run_metrics(run.id)] == [("mae", 1.5)]


def test_each_migration_file_is_named_after_its_revision_so_the_head_is_known_without_alembic() -> None:
    from db.store import MIGRATIONS, _head_revision

    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name[0].isdigit():
            assert f'revision = "{path.name.split("_", 1)[0]}"' in path.read_text(), path.name
    assert _head_revision() == max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
