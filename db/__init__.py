"""Run history in SQL: schema, migrations, and a store that returns plain records."""

from db.records import (
    ApiKey,
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
    Worker,
)
from db.store import Store, open_store

__all__ = [
    "ApiKey",
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
    "Worker",
    "open_store",
]
