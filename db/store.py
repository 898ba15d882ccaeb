"""The store: every read and write of run history goes through here and returns frozen records.

SQLite is the default (a file under MODELDECK_HOME); any SQLAlchemy URL works. On SQLite every write
transaction starts with `BEGIN IMMEDIATE`: deferred transactions lose writes when several worker
processes write at once, immediate ones queue on `busy_timeout` instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from db import records
from db.schema import (
    ApiKeyRow,
    AuditRow,
    DatasetRow,
    DatasetVersionRow,
    DecisionRow,
    JobRow,
    MetricRow,
    ModelStageRow,
    QualityReportRow,
    RequestLogRow,
    RunRow,
    SessionRow,
    UseCaseRow,
    UserRow,
    WorkerRow,
)

R = TypeVar("R")
MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """Naive UTC, because SQLite's DATETIME keeps no zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def _record(cls: type[R], row: Any) -> R:
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: getattr(row, n) for n in names if hasattr(row, n)})


BUSY_SECONDS = float(os.environ.get("MODELDECK_DB_BUSY_S", "30"))  # how long a write waits for another's lock


class DatabaseBusy(Exception):
    """The database stayed locked by another process for longer than `BUSY_SECONDS`: nothing was written."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(f"{url} stayed locked for {seconds:g} s")
        self.url, self.seconds = url, seconds


class DatabaseFull(OSError):
    """The disk under the database is full: nothing was written; writes work again once space returns.

    An OSError with ENOSPC, as a full disk is anywhere else, so code that knows nothing of the database sees it.
    """

    def __init__(self, url: str) -> None:
        super().__init__(errno.ENOSPC, f"the disk under {url} is full")
        self.url = url


_LOCKED = ("database is locked", "database table is locked", "lock timeout", "could not obtain lock")
_FULL = ("database or disk is full", "no space left on device", "could not extend file", "disk quota exceeded")


@contextlib.contextmanager
def _busy_is_said(engine: Engine) -> Iterator[None]:
    """A lock held past the timeout becomes `DatabaseBusy`, a full disk `DatabaseFull` (rolled back whole)."""
    try:
        yield
    except OperationalError as exc:
        said = str(exc.orig).lower()
        if any(words in said for words in _LOCKED):
            raise DatabaseBusy(engine.url.render_as_string(hide_password=True), BUSY_SECONDS) from exc
        if any(words in said for words in _FULL):
            raise DatabaseFull(engine.url.render_as_string(hide_password=True)) from exc
        raise


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("modeldeck_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _head_revision() -> str:
    """The newest revision, read from the migration files' names (`0005_decisions.py` is "0005")."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _at_head(engine: Engine) -> bool:
    """Whether the database is already at the newest revision: one query, without loading alembic."""
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("select version_num from alembic_version").scalar() == _head_revision()
    except DBAPIError:  # a new database: no version table yet
        return False


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision (alembic loads only when there is something to do)."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# Keys of PostgreSQL advisory locks: any two numbers, fixed, that no other program on the database uses.
MIGRATION_LOCK = 0x6D6F_6465_6C64_0001  # held while the schema is brought up to date
MODEL_VERSIONS_LOCK = 0x6D6F_6465_6C64_0002  # held (per transaction) while a model's next version is chosen
DATASETS_LOCK = 0x6D6F_6465_6C64_0003  # held (per transaction) while a dataset is found or made


@contextlib.contextmanager
def _migration_lock(engine: Engine, url: str) -> Iterator[None]:
    """Two processes opening a fresh database at once must not both create the tables.

    SQLite: a lock file beside the database. PostgreSQL: a session advisory lock, held on a connection of its own
    while the other one migrates (every process opening the database waits for it, then finds it at the head).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                conn.commit()
        return
    if not url.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(url.removeprefix("sqlite:///") + ".lock")
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def open_store(url: str) -> Store:
    """Open (and migrate) the database at a SQLAlchemy URL."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine)
    with _migration_lock(engine, url):
        migrate(engine)
    return Store(engine)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(modeldeck_write=True)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction: commit on success, roll back on error, always close."""
        with _busy_is_said(self.engine), Session(self._write_engine, expire_on_commit=False) as s, s.begin():
            if self.engine.dialect.name == "postgresql":  # as SQLite's busy_timeout: wait so long for a lock, no more
                s.execute(text(f"SET LOCAL lock_timeout = '{int(BUSY_SECONDS * 1000)}ms'"))
            yield s

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with _busy_is_said(self.engine), Session(self.engine) as session, session.begin():
            yield session

    def _one_at_a_time(self, session: Session, key: int) -> None:
        """Make this write transaction the only one past this point until it ends.

        SQLite's write transactions already are (BEGIN IMMEDIATE takes the database's one write lock). PostgreSQL's
        are not: two could read the same highest version and both write the next. An advisory lock per transaction
        makes them take turns, and goes with the commit or the rollback.
        """
        if self.engine.dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(key)))

    def close(self) -> None:
        self.engine.dispose()

    # -- datasets ---------------------------------------------------------------------------------
    def add_dataset_version(
        self,
        *,
        name: str,
        kind: str,
        source: str,
        hash: str,
        path: str,
        rows: int,
        columns: list[dict[str, Any]],
        target: str | None,
        task: str | None,
        parent_id: int | None = None,
        notes: list[dict[str, Any]] | None = None,
    ) -> tuple[records.Dataset, records.DatasetVersion]:
        """Record a version of dataset `name`, creating the dataset on first use.

        Adding the same content twice returns the existing version.
        """
        with self._write() as s:
            self._one_at_a_time(s, DATASETS_LOCK)  # two uploads of a new dataset name: one dataset, two versions
            ds = s.scalar(select(DatasetRow).where(DatasetRow.name == name))
            if ds is None:
                ds = DatasetRow(name=name, kind=kind, source=source, created_at=utcnow())
                s.add(ds)
                s.flush()
            ver = s.scalar(
                select(DatasetVersionRow).where(DatasetVersionRow.dataset_id == ds.id, DatasetVersionRow.hash == hash)
            )
            if ver is None:
                ver = DatasetVersionRow(
                    dataset_id=ds.id,
                    hash=hash,
                    parent_id=parent_id,
                    notes=notes or [],
                    path=path,
                    rows=rows,
                    columns=columns,
                    target=target,
                    task=task,
                    created_at=utcnow(),
                )
                s.add(ver)
                s.flush()
            return _record(records.Dataset, ds), _record(records.DatasetVersion, ver)

    def list_datasets(self) -> list[records.Dataset]:
        with self._read() as s:
            rows = s.scalars(select(DatasetRow).order_by(DatasetRow.id))
            return [_record(records.Dataset, r) for r in rows]

    def find_dataset(self, ref: str | int) -> records.Dataset | None:
        """A dataset by id or by name."""
        with self._read() as s:
            row = None
            if isinstance(ref, int) or str(ref).isdigit():
                row = s.get(DatasetRow, int(ref))
            if row is None:
                row = s.scalar(select(DatasetRow).where(DatasetRow.name == str(ref)))
            return None if row is None else _record(records.Dataset, row)

    def set_dataset_kind(self, dataset_id: int, *, kind: str) -> None:
        with self._write() as s:
            s.execute(update(DatasetRow).where(DatasetRow.id == dataset_id).values(kind=kind))

    def get_version(self, version_id: int) -> records.DatasetVersion | None:
        with self._read() as s:
            row = s.get(DatasetVersionRow, version_id)
            return None if row is None else _record(records.DatasetVersion, row)

    def list_versions(self, dataset_id: int) -> list[records.DatasetVersion]:
        with self._read() as s:
            rows = s.scalars(
                select(DatasetVersionRow)
                .where(DatasetVersionRow.dataset_id == dataset_id)
                .order_by(DatasetVersionRow.id)
            )
            return [_record(records.DatasetVersion, r) for r in rows]

    def set_version_target(self, version_id: int, *, target: str | None, task: str | None) -> None:
        """The target and task are a choice about a version, not part of its content."""
        with self._write() as s:
            s.execute(
                update(DatasetVersionRow).where(DatasetVersionRow.id == version_id).values(target=target, task=task)
            )

    # -- quality ----------------------------------------------------------------------------------
    def add_quality_report(
        self, *, version_id: int, target: str | None, passed: bool, checks: list[dict[str, Any]]
    ) -> records.QualityReport:
        with self._write() as s:
            row = QualityReportRow(
                version_id=version_id, target=target, passed=passed, checks=checks, created_at=utcnow()
            )
            s.add(row)
            s.flush()
            return _record(records.QualityReport, row)

    def latest_quality_report(self, version_id: int, target: str | None) -> records.QualityReport | None:
        with self._read() as s:
            row = s.scalar(
                select(QualityReportRow)
                .where(QualityReportRow.version_id == version_id, QualityReportRow.target == target)
                .order_by(QualityReportRow.id.desc())
                .limit(1)
            )
            return None if row is None else _record(records.QualityReport, row)

    # -- runs and jobs ----------------------------------------------------------------------------
    def create_run(
        self,
        *,
        version_id: int,
        task: str,
        target: str | None,
        spec: dict[str, Any],
        override_reason: str | None = None,
        parent_id: int | None = None,
        names: dict[str, Any] | None = None,
        queue: bool = True,
    ) -> records.Run:
        """A new run, queued for training in the same transaction (a search trains its trials itself)."""
        with self._write() as s:
            now = utcnow()
            run = RunRow(
                version_id=version_id,
                task=task,
                target=target,
                spec=spec,
                status="queued" if queue else "running",
                override_reason=override_reason,
                parent_id=parent_id,
                environment={},
                progress={},
                metrics={},
                evaluation={},
                names=names or {},
                created_at=now,
            )
            s.add(run)
            s.flush()
            if queue:
                s.add(JobRow(kind="train", run_id=run.id, status="queued", created_at=now))
            s.flush()
            return _record(records.Run, run)

    def get_run(self, run_id: int) -> records.Run | None:
        with self._read() as s:
            row = s.get(RunRow, run_id)
            return None if row is None else _record(records.Run, row)

    def list_runs(
        self, *, version_ids: list[int] | None = None, parent_id: int | None = None, limit: int = 500
    ) -> list[records.Run]:
        """Newest first; with `parent_id`, the trials of that search."""
        with self._read() as s:
            q = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
            if version_ids is not None:
                q = q.where(RunRow.version_id.in_(version_ids))
            if parent_id is not None:
                q = q.where(RunRow.parent_id == parent_id)
            return [_record(records.Run, r) for r in s.scalars(q)]

    def runs_with_status(self, status: str) -> list[records.Run]:
        """Every run with this status, oldest first (the worker looks for runs waiting for disk space)."""
        with self._read() as s:
            q = select(RunRow).where(RunRow.status == status).order_by(RunRow.id)
            return [_record(records.Run, r) for r in s.scalars(q)]

    def run_summaries(
        self,
        *,
        offset: int = 0,
        limit: int = 50,
        sort: str = "id",
        descending: bool = True,
        status: str | None = None,
        task: str | None = None,
        dataset_id: int | None = None,
        top_level: bool = True,
        ids: list[int] | None = None,
    ) -> tuple[list[records.RunSummary], int]:
        """A page of runs for a history table, sorted and filtered in SQL, and how many runs match in all.

        `sort` is a column ("id", "created_at", "duration_s", "epochs_done", "status", "task") or a metric
        name, sorted by its value in the metrics JSON (runs without it last). `top_level` leaves out the
        trials of a search. Only the columns a table shows are read: never the evaluation details.
        """
        columns = {
            "id": RunRow.id,
            "created_at": RunRow.created_at,
            "duration_s": RunRow.duration_s,
            "epochs_done": RunRow.epochs_done,
            "status": RunRow.status,
            "task": RunRow.task,
        }
        key = columns.get(sort, RunRow.metrics[sort].as_float())
        order = [key.is_(None), key.desc() if descending else key.asc(), RunRow.id.desc()]
        fields = (
            RunRow.id,
            DatasetRow.name,
            DatasetRow.id,
            DatasetVersionRow.hash,
            RunRow.task,
            RunRow.status,
            RunRow.metrics,
            RunRow.spec,
            RunRow.epochs_done,
            RunRow.duration_s,
            RunRow.device,
            RunRow.model_name,
            RunRow.model_version,
            RunRow.override_reason,
            RunRow.parent_id,
            RunRow.created_at,
        )
        joined = select(*fields).join(DatasetVersionRow, RunRow.version_id == DatasetVersionRow.id)
        joined = joined.join(DatasetRow, DatasetVersionRow.dataset_id == DatasetRow.id)
        conditions = []
        if status is not None:
            conditions.append(RunRow.status == status)
        if task is not None:
            conditions.append(RunRow.task == task)
        if dataset_id is not None:
            conditions.append(DatasetVersionRow.dataset_id == dataset_id)
        if top_level:
            conditions.append(RunRow.parent_id.is_(None))
        if ids is not None:
            conditions.append(RunRow.id.in_(ids))
        with self._read() as s:
            total = s.scalar(
                select(func.count(RunRow.id))
                .join(DatasetVersionRow, RunRow.version_id == DatasetVersionRow.id)
                .where(*conditions)
            )
            rows = s.execute(joined.where(*conditions).order_by(*order).offset(offset).limit(limit))
            return [records.RunSummary(*row) for row in rows], int(total or 0)

    def best_runs(self, metric: str, *, higher_is_better: bool, limit: int = 20) -> list[records.RunSummary]:
        """Each dataset's best finished run by a metric: a leaderboard, one row per dataset, best first."""
        value = RunRow.metrics[metric].as_float()
        best = func.max(value) if higher_is_better else func.min(value)
        with self._read() as s:
            per_dataset = (
                select(DatasetVersionRow.dataset_id.label("dataset_id"), best.label("best"))
                .join(RunRow, RunRow.version_id == DatasetVersionRow.id)
                .where(RunRow.status == "succeeded", value.is_not(None))
                .group_by(DatasetVersionRow.dataset_id)
                .subquery()
            )
            ids = s.scalars(
                select(func.max(RunRow.id))
                .join(DatasetVersionRow, RunRow.version_id == DatasetVersionRow.id)
                .join(per_dataset, per_dataset.c.dataset_id == DatasetVersionRow.dataset_id)
                .where(RunRow.status == "succeeded", value == per_dataset.c.best)
                .group_by(DatasetVersionRow.dataset_id)
            ).all()
        found, _ = self.run_summaries(
            ids=list(ids), sort=metric, descending=higher_is_better, limit=limit, top_level=False
        )
        return found

    def metric_curves(
        self, run_ids: list[int], names: tuple[str, ...] = ("loss", "val_loss")
    ) -> dict[int, dict[str, list[tuple[int, float]]]]:
        """Curves of several runs in one query: run id -> metric name -> (epoch, value) in epoch order."""
        with self._read() as s:
            rows = s.execute(
                select(MetricRow.run_id, MetricRow.name, MetricRow.epoch, MetricRow.value)
                .where(MetricRow.run_id.in_(run_ids), MetricRow.name.in_(names))
                .order_by(MetricRow.run_id, MetricRow.name, MetricRow.epoch)
            )
            curves: dict[int, dict[str, list[tuple[int, float]]]] = {}
            for run_id, name, epoch, value in rows:
                curves.setdefault(run_id, {}).setdefault(name, []).append((epoch, value))
            return curves

    def update_run(self, run_id: int, *, only_if_status: str | None = None, **values: Any) -> records.Run:
        """Set fields of a run; with `only_if_status`, only while the run still has that status."""
        with self._write() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise KeyError(run_id)
            if only_if_status is not None and row.status != only_if_status:
                return _record(records.Run, row)
            for key, value in values.items():
                setattr(row, key, value)
            s.flush()
            return _record(records.Run, row)

    def record_epoch(self, run_id: int, *, epoch: int, logs: dict[str, float], progress: dict[str, Any]) -> None:
        """One epoch's metrics and the run's progress, in one transaction (re-recording replaces)."""
        with self._write() as s:
            rows = s.scalars(select(MetricRow).where(MetricRow.run_id == run_id, MetricRow.epoch == epoch))
            existing = {row.name: row for row in rows}  # one query: an epoch is recorded once, unless resumed
            for name, value in logs.items():
                if not math.isfinite(value):
                    continue  # a loss gone NaN is the callback's to report; a chart and SQLite's NOT NULL need numbers
                if name in existing:
                    existing[name].value = float(value)
                else:
                    s.add(MetricRow(run_id=run_id, epoch=epoch, name=name, value=float(value)))
            s.execute(update(RunRow).where(RunRow.id == run_id).values(epochs_done=epoch + 1, progress=progress))

    def clear_metrics(self, run_id: int) -> None:
        """Forget a run's curves (a run that chose among several models keeps only the winner's)."""
        with self._write() as s:
            s.execute(delete(MetricRow).where(MetricRow.run_id == run_id))
            s.execute(update(RunRow).where(RunRow.id == run_id).values(epochs_done=0))

    def run_metrics(self, run_id: int) -> list[records.Metric]:
        with self._read() as s:
            rows = s.scalars(select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.epoch))
            return [records.Metric(epoch=r.epoch, name=r.name, value=r.value) for r in rows]

    def assign_model_version(self, run_id: int, *, model_name: str, export_root: str) -> int:
        """Give a run the next version number of `model_name` (TensorFlow Serving's `<name>/<N>`)."""
        with self._write() as s:
            self._one_at_a_time(s, MODEL_VERSIONS_LOCK)
            newest = s.scalar(select(func.max(RunRow.model_version)).where(RunRow.model_name == model_name))
            version = (newest or 0) + 1
            s.execute(
                update(RunRow)
                .where(RunRow.id == run_id)
                .values(model_name=model_name, model_version=version, export_path=export_root)
            )
            return version

    def name_model(self, run_id: int, *, names: list[str], task: str, export_parent: str) -> tuple[str, int]:
        """Give a run the first of `names` no run of another task holds, and that name's next version.

        A classifier and a regressor on the same data must not share a name: their signatures differ, so a
        client of one would get the other's answers. The choice and the version are one transaction, so two
        runs finishing at once get two versions (or two names). When every name is taken, the last gets a
        number (`churn-regression-2`). The export root is `<export_parent>/<name>`.
        """
        candidates = list(names) + [f"{names[-1]}-{n}" for n in range(2, 1000)]
        with self._write() as s:
            self._one_at_a_time(s, MODEL_VERSIONS_LOCK)
            for name in candidates:
                others = s.scalar(select(func.count(RunRow.id)).where(RunRow.model_name == name, RunRow.task != task))
                if not others:
                    break
            newest = s.scalar(select(func.max(RunRow.model_version)).where(RunRow.model_name == name))
            version = (newest or 0) + 1
            s.execute(
                update(RunRow)
                .where(RunRow.id == run_id)
                .values(model_name=name, model_version=version, export_path=f"{export_parent}/{name}")
            )
            return name, version

    def model_versions(self, model_name: str | None = None) -> list[records.ModelVersion]:
        """Every version of every model (or of one) made by a finished run, by name, the highest version first."""
        query = (
            select(
                RunRow.model_name,
                RunRow.model_version,
                RunRow.id,
                RunRow.task,
                DatasetRow.name,
                RunRow.metrics,
                RunRow.created_at,
            )
            .join(DatasetVersionRow, RunRow.version_id == DatasetVersionRow.id)
            .join(DatasetRow, DatasetVersionRow.dataset_id == DatasetRow.id)
            .where(RunRow.model_name.is_not(None), RunRow.model_version.is_not(None), RunRow.status == "succeeded")
            .order_by(RunRow.model_name, RunRow.model_version.desc())
        )
        if model_name is not None:
            query = query.where(RunRow.model_name == model_name)
        with self._read() as s:
            return [records.ModelVersion(*row) for row in s.execute(query)]

    def add_stage_change(
        self, model_name: str, *, version: int, stage: str, action: str, assigned_by: str, reason: str
    ) -> records.StageChange:
        with self._write() as s:
            row = ModelStageRow(
                model_name=model_name,
                version=version,
                stage=stage,
                action=action,
                assigned_by=assigned_by,
                reason=reason,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _record(records.StageChange, row)

    def stage_history(self, model_name: str | None = None) -> list[records.StageChange]:
        """Stage changes (of one model, or of all), the latest first."""
        query = select(ModelStageRow).order_by(ModelStageRow.id.desc())
        if model_name is not None:
            query = query.where(ModelStageRow.model_name == model_name)
        with self._read() as s:
            return [_record(records.StageChange, r) for r in s.scalars(query)]

    def current_stages(self) -> dict[str, dict[str, int]]:
        """Model name -> stage -> the version holding it now (the latest change per model and stage), one query."""
        latest = select(func.max(ModelStageRow.id)).group_by(ModelStageRow.model_name, ModelStageRow.stage)
        with self._read() as s:
            rows = s.execute(
                select(ModelStageRow.model_name, ModelStageRow.stage, ModelStageRow.version).where(
                    ModelStageRow.id.in_(latest)
                )
            )
            stages: dict[str, dict[str, int]] = {}
            for name, stage, version in rows:
                stages.setdefault(name, {})[stage] = version
            return stages

    def add_decision(
        self,
        run_id: int,
        *,
        threshold: float | None,
        costs: dict[str, Any],
        outcome: dict[str, Any],
        chosen_by: str,
        reason: str,
    ) -> records.Decision:
        with self._write() as s:
            row = DecisionRow(
                run_id=run_id,
                threshold=threshold,
                costs=costs,
                outcome=outcome,
                chosen_by=chosen_by,
                reason=reason,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _record(records.Decision, row)

    def decisions(self, run_id: int) -> list[records.Decision]:
        """A run's decisions, the latest (the one that applies) first."""
        with self._read() as s:
            rows = s.scalars(select(DecisionRow).where(DecisionRow.run_id == run_id).order_by(DecisionRow.id.desc()))
            return [_record(records.Decision, r) for r in rows]

    def add_use_case(
        self, *, title: str, description: str, audience: str, model_name: str, run_id: int
    ) -> records.UseCase:
        with self._write() as s:
            now = utcnow()
            row = UseCaseRow(
                title=title,
                description=description,
                audience=audience,
                model_name=model_name,
                run_id=run_id,
                hidden=False,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return _record(records.UseCase, row)

    def update_use_case(self, use_case_id: int, **values: Any) -> records.UseCase | None:
        """Change a use case's title, description, audience or `hidden`; None when there is no such use case."""
        with self._write() as s:
            row = s.get(UseCaseRow, use_case_id)
            if row is None:
                return None
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            s.flush()
            return _record(records.UseCase, row)

    def use_cases(self, *, hidden: bool = False) -> list[records.UseCase]:
        """The use cases in the order they were made, the hidden ones only when asked for."""
        query = select(UseCaseRow).order_by(UseCaseRow.id)
        if not hidden:
            query = query.where(UseCaseRow.hidden.is_(False))
        with self._read() as s:
            return [_record(records.UseCase, r) for r in s.scalars(query)]

    # -- the inference server's request log --------------------------------------------------------------
    def add_requests(self, entries: list[dict[str, Any]], *, keep_per_model: int) -> None:
        """Log a batch of served requests (RequestLogRow's fields); each model keeps its newest `keep_per_model`."""
        if not entries:
            return
        with self._write() as s:
            s.execute(insert(RequestLogRow), entries)
            for name in sorted({e["model_name"] for e in entries}):
                oldest_kept = s.scalar(
                    select(RequestLogRow.id)
                    .where(RequestLogRow.model_name == name)
                    .order_by(RequestLogRow.id.desc())
                    .offset(keep_per_model - 1)
                    .limit(1)
                )
                if oldest_kept is not None:
                    s.execute(
                        delete(RequestLogRow).where(RequestLogRow.model_name == name, RequestLogRow.id < oldest_kept)
                    )

    def logged_requests(
        self, model_name: str, *, version: int | None = None, limit: int = 20_000
    ) -> list[records.LoggedRequest]:
        """A model's logged requests (of one version, or of all), the newest `limit`, oldest first."""
        query = select(RequestLogRow).where(RequestLogRow.model_name == model_name)
        if version is not None:
            query = query.where(RequestLogRow.version == version)
        with self._read() as s:
            rows = list(s.scalars(query.order_by(RequestLogRow.id.desc()).limit(limit)))
            return [_record(records.LoggedRequest, r) for r in reversed(rows)]

    def request_cancel(self, run_id: int) -> records.Run:
        """Ask the worker to stop a run; a queued run is cancelled on the spot.

        The run's jobs, then the run, are locked as they are read (a claim takes them in that order too): a worker
        claiming the job at the same moment either gets it first, and is asked to stop, or finds it cancelled.
        """
        with self._write() as s:
            s.execute(select(JobRow.id).where(JobRow.run_id == run_id).with_for_update())
            run = s.get(RunRow, run_id, with_for_update=True)
            if run is None:
                raise KeyError(run_id)
            s.execute(
                update(JobRow)
                .where(JobRow.run_id == run_id, JobRow.status.in_(("queued", "running")))
                .values(cancel_requested=True)
            )
            if run.status in ("queued", "interrupted"):
                run.status = "cancelled"
                run.finished_at = utcnow()
                s.execute(
                    update(JobRow)
                    .where(JobRow.run_id == run_id, JobRow.status == "queued")
                    .values(status="cancelled", finished_at=utcnow())
                )
            s.flush()
            return _record(records.Run, run)

    def cancel_requested(self, run_id: int) -> bool:
        with self._read() as s:
            return bool(
                s.scalar(
                    select(func.count())
                    .select_from(JobRow)
                    .where(JobRow.run_id == run_id, JobRow.status == "running", JobRow.cancel_requested)
                )
            )

    def requeue_run(self, run_id: int) -> records.Run:
        """Queue an interrupted run again; training resumes from its last completed epoch."""
        with self._write() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise KeyError(run_id)
            run.status = "queued"
            run.error = None
            s.add(JobRow(kind="train", run_id=run_id, status="queued", created_at=utcnow()))
            s.flush()
            return _record(records.Run, run)

    def claim_job(self, worker_id: str) -> records.Job | None:
        """Atomically take the oldest queued job: two workers never take the same one.

        SQLite: the write transaction holds the database's write lock. PostgreSQL: the row is locked as it is read,
        and a job another worker has locked is skipped (FOR UPDATE SKIP LOCKED), so workers never wait on each other.
        """
        with self._write() as s:
            oldest = select(JobRow).where(JobRow.status == "queued").order_by(JobRow.id).limit(1)
            job = s.scalar(oldest.with_for_update(skip_locked=True))
            if job is None:
                return None
            now = utcnow()
            job.status, job.worker_id, job.claimed_at = "running", worker_id, now
            s.execute(
                update(RunRow)
                .where(RunRow.id == job.run_id)
                .values(status="running", started_at=func.coalesce(RunRow.started_at, now))
            )
            s.flush()
            return _record(records.Job, job)

    def finish_job(self, job_id: int, *, status: str) -> None:
        with self._write() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(status=status, finished_at=utcnow()))

    def register_worker(self, worker_id: str, *, host: str, pid: int) -> None:
        with self._write() as s:
            now = utcnow()
            s.add(WorkerRow(id=worker_id, host=host, pid=pid, started_at=now, heartbeat_at=now, stopped=False))

    def heartbeat(self, worker_id: str) -> None:
        with self._write() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=utcnow()))

    def stop_worker(self, worker_id: str) -> None:
        with self._write() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(stopped=True))

    def live_workers(self, *, stale_after_s: float) -> list[records.Worker]:
        cutoff = utcnow() - timedelta(seconds=stale_after_s)
        with self._read() as s:
            rows = s.scalars(select(WorkerRow).where(~WorkerRow.stopped, WorkerRow.heartbeat_at >= cutoff))
            return [_record(records.Worker, r) for r in rows]

    def interrupt_orphaned_runs(self, *, stale_after_s: float) -> list[int]:
        """Mark runs whose worker stopped or went silent as `interrupted`; returns their ids."""
        cutoff = utcnow() - timedelta(seconds=stale_after_s)
        with self._write() as s:
            alive = select(WorkerRow.id).where(~WorkerRow.stopped, WorkerRow.heartbeat_at >= cutoff)
            jobs = list(s.scalars(select(JobRow).where(JobRow.status == "running", JobRow.worker_id.not_in(alive))))
            for job in jobs:
                job.status, job.finished_at = "interrupted", utcnow()
                s.execute(
                    update(RunRow)
                    .where(RunRow.id == job.run_id, RunRow.status == "running")
                    .values(status="interrupted", error="The worker running this run stopped. Resume it.")
                )
            return [j.run_id for j in jobs]

    # -- deleting ---------------------------------------------------------------------------------------------------
    def runs_of(self, *, dataset_id: int | None = None, model_name: str | None = None) -> list[records.Run]:
        """Every run on a dataset's versions, or every run that made a version of a model (search trials too)."""
        query = select(RunRow).order_by(RunRow.id)
        if dataset_id is not None:
            versions = select(DatasetVersionRow.id).where(DatasetVersionRow.dataset_id == dataset_id)
            query = query.where(RunRow.version_id.in_(versions))
        if model_name is not None:
            query = query.where(RunRow.model_name == model_name)
        with self._read() as s:
            return [_record(records.Run, r) for r in s.scalars(query)]

    def delete_records(
        self, *, run_ids: list[int], dataset_id: int | None = None, model_name: str | None = None
    ) -> None:
        """Delete runs (with their curves, jobs, decisions, use cases), then a dataset (with its versions and
        reports) or a model's stage history and request log, in one transaction: all of it, or nothing.
        """
        with self._write() as s:
            trials = select(RunRow.id).where(RunRow.parent_id.in_(run_ids))
            s.execute(delete(RunRow).where(RunRow.id.in_(trials)))
            s.execute(delete(RunRow).where(RunRow.id.in_(run_ids)))
            if dataset_id is not None:
                s.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id))
            if model_name is not None:
                s.execute(delete(ModelStageRow).where(ModelStageRow.model_name == model_name))
                s.execute(delete(RequestLogRow).where(RequestLogRow.model_name == model_name))

    def version_paths(self) -> set[str]:
        """The data folder of every dataset version left: a folder another dataset still uses is kept."""
        with self._read() as s:
            return set(s.scalars(select(DatasetVersionRow.path)))

    # -- the inference server's API keys ---------------------------------------------------------------------------
    def add_api_key(self, *, name: str, prefix: str, digest: str, created_by: str) -> records.ApiKey | None:
        """Keep a new key's digest; None when a key (live or revoked: its record stays) already has this name."""
        with self._write() as s:
            if s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.name == name)) is not None:
                return None
            row = ApiKeyRow(name=name, prefix=prefix, digest=digest, created_by=created_by, created_at=utcnow())
            s.add(row)
            s.flush()
            return _record(records.ApiKey, row)

    def api_keys(self) -> list[records.ApiKey]:
        with self._read() as s:
            return [_record(records.ApiKey, r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke_api_key(self, name: str) -> records.ApiKey | None:
        """Revoke the key with this name (None when there is none); revoking twice keeps the first time."""
        with self._write() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            if row is None:
                return None
            row.revoked_at = row.revoked_at or utcnow()
            s.flush()
            return _record(records.ApiKey, row)

    def live_key_digests(self) -> set[str]:
        with self._read() as s:
            return set(s.scalars(select(ApiKeyRow.digest).where(ApiKeyRow.revoked_at.is_(None))))

    # -- accounts, sessions and the audit log ------------------------------------------------------------------------
    def add_user(self, *, name: str, role: str, password_hash: str) -> records.User | None:
        """A new account; None when one already has this name."""
        with self._write() as s:
            if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                return None
            row = UserRow(name=name, role=role, password_hash=password_hash, created_at=utcnow())
            s.add(row)
            s.flush()
            return _record(records.User, row)

    def users(self) -> list[records.User]:
        with self._read() as s:
            return [_record(records.User, r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def credentials(self, name: str) -> tuple[records.User, str] | None:
        """An enabled account and its password hash, to check a sign-in; None when there is no such account."""
        with self._read() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name, UserRow.disabled_at.is_(None)))
            return None if row is None else (_record(records.User, row), row.password_hash)

    def update_user(self, name: str, **values: Any) -> records.User | None:
        """Change an account (its role, its password hash, `disabled_at`); a disabled one loses its sessions."""
        with self._write() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                return None
            for key, value in values.items():
                setattr(row, key, value)
            if values.get("disabled_at") is not None or "password_hash" in values:
                s.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            s.flush()
            return _record(records.User, row)

    def add_session(self, user_id: int, *, token_digest: str, expires_at: datetime) -> None:
        with self._write() as s:
            s.add(SessionRow(user_id=user_id, token_digest=token_digest, created_at=utcnow(), expires_at=expires_at))

    def session_user(self, token_digest: str) -> records.User | None:
        """The enabled account a live (unexpired) session belongs to, or None."""
        with self._read() as s:
            row = s.scalar(
                select(UserRow)
                .join(SessionRow, SessionRow.user_id == UserRow.id)
                .where(
                    SessionRow.token_digest == token_digest,
                    SessionRow.expires_at > utcnow(),
                    UserRow.disabled_at.is_(None),
                )
            )
            return None if row is None else _record(records.User, row)

    def end_session(self, token_digest: str) -> None:
        with self._write() as s:
            s.execute(delete(SessionRow).where(SessionRow.token_digest == token_digest))
            s.execute(delete(SessionRow).where(SessionRow.expires_at <= utcnow()))  # and forget the expired

    def add_audit(self, **entry: Any) -> None:
        """One change: `actor`, `role`, `action`, `target`, `source` and `detail` (the time is now)."""
        with self._write() as s:
            s.add(AuditRow(at=utcnow(), **entry))

    def audit_log(self, *, limit: int = 1000, offset: int = 0) -> list[records.AuditEntry]:
        """Changes, the latest first."""
        with self._read() as s:
            rows = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).offset(offset).limit(limit))
            return [_record(records.AuditEntry, r) for r in rows]


def default_url(home: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(home).resolve() / 'modeldeck.db'}"
