"""Run history in SQL: schema, migrations, and a store that returns plain records."""

from db.records import Dataset, DatasetVersion, Decision, Job, Metric, QualityReport, Run, RunSummary, Worker
from db.store import Store, open_store

__all__ = [
    "Dataset",
    "DatasetVersion",
    "Decision",
    "Job",
    "Metric",
    "QualityReport",
    "Run",
    "RunSummary",
    "Store",
    "Worker",
    "open_store",
]
