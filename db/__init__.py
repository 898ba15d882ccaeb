"""Run history in SQL: schema, migrations, and a store that returns plain records."""

from db.records import (
    ApiKey,
    AuditEntry,
    Dataset,
    DatasetVersion,
    Decision,
    Job,
    LoggedRequest,
    Metric,
    ModelVersion,
    QualityReport,
    Run,
    RunSummary,
    StageChange,
    UseCase,
    User,
    Worker,
)
from db.store import DatabaseBusy, DatabaseFull, Store, open_store

__all__ = [
    "DatabaseBusy",
    "DatabaseFull",
    "ApiKey",
    "AuditEntry",
    "Dataset",
    "DatasetVersion",
    "Decision",
    "Job",
    "LoggedRequest",
    "Metric",
    "ModelVersion",
    "QualityReport",
    "Run",
    "RunSummary",
    "StageChange",
    "Store",
    "UseCase",
    "User",
    "Worker",
    "open_store",
]
