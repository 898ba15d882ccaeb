"""Plain, frozen records: what the store hands out. ORM rows never leave db/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Dataset:
    id: int
    name: str
    kind: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    dataset_id: int
    hash: str
    parent_id: int | None
    notes: list[dict[str, Any]]  # what the reader or a fix noticed: catalog keys and parameters
    path: str
    rows: int
    columns: list[dict[str, Any]]
    target: str | None
    task: str | None
    created_at: datetime


@dataclass(frozen=True)
class QualityReport:
    id: int
    version_id: int
    target: str | None
    passed: bool
    checks: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True)
class Run:
    id: int
    version_id: int
    task: str
    target: str | None
    spec: dict[str, Any]
    status: str
    override_reason: str | None
    device: str | None
    environment: dict[str, Any]
    progress: dict[str, Any]
    metrics: dict[str, Any]
    evaluation: dict[str, Any]
    epochs_done: int
    error: str | None
    model_name: str | None
    model_version: int | None
    export_path: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    parent_id: int | None  # the hyperparameter search this run is a trial of
    names: dict[str, Any]  # how its classes and columns are shown: {"classes": {value: name}, "columns": {...}}


@dataclass(frozen=True)
class RunSummary:
    """A run as a history table lists it: no curves, no evaluation details, its dataset's name at hand."""

    id: int
    dataset: str
    dataset_id: int
    version_hash: str
    task: str
    status: str
    metrics: dict[str, Any]
    spec: dict[str, Any]
    epochs_done: int
    duration_s: float
    device: str | None
    model_name: str | None
    model_version: int | None
    override_reason: str | None
    parent_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Decision:
    """How a run's model decides (the latest one applies): a threshold for two classes, a cost matrix for more."""

    id: int
    run_id: int
    threshold: float | None  # None: the costs hold a cost matrix
    costs: dict[str, Any]
    outcome: dict[str, Any]
    chosen_by: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class StageChange:
    """A model version given a stage (by a promotion or a rollback): who, when, why. The latest per stage applies."""

    id: int
    model_name: str
    version: int
    stage: str
    action: str  # promote | rollback
    assigned_by: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class ModelVersion:
    """A model's version as the registry lists it: the run that made it, its task, data and test metrics."""

    model_name: str
    version: int
    run_id: int
    task: str
    dataset: str
    metrics: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class UseCase:
    """A use case card: what a model does for whom, in business words, and the run it was made from."""

    id: int
    title: str
    description: str
    audience: str
    model_name: str
    run_id: int
    hidden: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LoggedRequest:
    """A request the inference server answered, as logged: sampled (`weight` requests like it) and bounded."""

    id: int
    model_name: str
    version: int
    signature: str
    created_at: datetime
    latency_ms: float
    status: str  # ok | error
    rows: int
    weight: int
    inputs: list[dict[str, Any]]  # the first rows' inputs
    outputs: list[dict[str, Any]]  # their outputs


@dataclass(frozen=True)
class Metric:
    epoch: int
    name: str
    value: float


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    run_id: int
    status: str
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Worker:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped: bool


@dataclass(frozen=True)
class ApiKey:
    """An inference server API key as listed: never the key itself, which is shown once when made."""

    id: int
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class User:
    """A local account as listed: never its password hash."""

    id: int
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    source: str
    detail: dict[str, Any]
