"""Is the model still right? Figures over the inference server's request log (`requestlog.py`).

Per model (and version): requests and errors per time bucket with latency p50 and p95, the distribution of its
predictions, and per input feature the population stability index (PSI) of the logged inputs against the data
the version was trained on. Logged requests carry a weight (a sampled request stands for several), so counts
and percentiles are weighted.

PSI = sum over bins of (a - e) * ln(a / e), where e and a are the shares of the training data and of the logged
inputs in each bin: 10 quantile bins of the training data for a number, the categories for a category (the
commonest `MAX_CATEGORIES`, the rest pooled), an empty bin counted as `EPSILON`. The usual reading: under 0.1
stable, 0.1 to 0.25 moderate, over 0.25 drift (`DRIFT_ALERT`).

No TensorFlow here: the CLI and the dashboard use this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from backend import data
from backend.errors import NotFound
from backend.serving.registry import PRODUCTION, show
from db import LoggedRequest, Store

DRIFT_ALERT = 0.25  # PSI over this: the feature drifted
MODERATE = 0.1  # PSI from this up to DRIFT_ALERT: a moderate shift
BINS = 10  # quantile bins of a numeric feature
MAX_CATEGORIES = 20  # categories compared one by one; the rest are pooled
EPSILON = 1e-4  # the share counted for an empty bin (ln 0 has no value)
MIN_DRIFT_ROWS = 30  # logged examples a feature needs before its PSI can raise the alert
READ_LIMIT = 20_000  # the newest logged requests the figures read
HISTOGRAM_BINS = 20  # bins of a regression's predicted values
DRIFT_KINDS = {"numeric": "numeric", "categorical": "categorical", "hashed": "categorical"}  # features compared


# -- what the figures are ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    """Requests in one stretch of time: how many (weighted), how many failed, and their latency."""

    start: datetime
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Bin:
    """One bin of a feature's PSI: its label (None: the categories pooled as "the rest") and both shares."""

    label: str | None
    expected: float  # share of the training data
    actual: float  # share of the logged inputs


@dataclass(frozen=True)
class FeatureDrift:
    """One input feature's population stability index against the training data, and its reading."""

    feature: str
    kind: str  # numeric | categorical
    psi: float
    level: str  # stable | moderate | drift
    rows: int  # logged examples compared
    bins: list[Bin]


@dataclass(frozen=True)
class Predictions:
    """What the model answered: counts per class (a classifier) or a histogram of values (a regression)."""

    kind: str  # classes | values
    labels: list[str]  # classes, or each bin's lower edge
    counts: list[int]  # weighted
    edges: list[float]  # values: the bins' edges (one more than the counts); classes: []


@dataclass(frozen=True)
class Monitoring:
    """A model's traffic, latency, predictions and input drift, as the Monitoring page and `modeldeck monitor` show."""

    model: str
    version: int | None  # None: every version's requests
    production: int | None  # the version holding production now
    requests: int  # weighted: sampled requests count for the ones they stand for
    logged: int  # rows in the request log
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    bucket: str  # minute | hour | day
    timeline: list[Bucket]
    predictions: Predictions | None  # None: no answer yet, or outputs that are neither classes nor values
    drift_version: int | None  # the version whose training data the inputs are compared with
    drift_run: int | None  # the run that made it
    drift: list[FeatureDrift]  # the highest PSI first
    alert: bool  # some feature with enough examples drifted (PSI over DRIFT_ALERT)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "timeline": [{**asdict(b), "start": b.start.isoformat(timespec="seconds")} for b in self.timeline],
            "threshold": DRIFT_ALERT,
        }


# -- population stability index ----------------------------------------------------------------------------------
def _psi(expected: np.ndarray, actual: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """PSI of two count vectors over the same bins, and the shares it was computed on."""
    e = np.maximum(expected / max(expected.sum(), 1), EPSILON)
    a = np.maximum(actual / max(actual.sum(), 1), EPSILON)
    return float(np.sum((a - e) * np.log(a / e))), expected / max(expected.sum(), 1), actual / max(actual.sum(), 1)


def _edge(value: float) -> str:
    return f"{value:.4g}"


def numeric_psi(expected: Any, actual: Any, bins: int = BINS) -> tuple[float, list[Bin]]:
    """PSI of numbers over the training data's quantile bins (ties merge bins: fewer, never empty by design).

    Args:
        expected: The training data's values (missing and non-numeric ones are left out).
        actual: The logged values.
        bins: Quantile bins wanted.

    Returns:
        The PSI and its bins, labelled `[low, high)`.
    """
    e = pd.to_numeric(pd.Series(expected), errors="coerce").dropna().to_numpy(float)
    a = pd.to_numeric(pd.Series(actual), errors="coerce").dropna().to_numpy(float)
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1])) if len(e) else np.array([])
    e_counts = np.bincount(np.searchsorted(edges, e, side="right"), minlength=len(edges) + 1)
    a_counts = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1)
    psi, e_share, a_share = _psi(e_counts, a_counts)
    bounds = ["-∞", *map(_edge, edges), "∞"]
    labels = [f"[{bounds[i]}, {bounds[i + 1]})" for i in range(len(edges) + 1)]
    return psi, [Bin(label, float(x), float(y)) for label, x, y in zip(labels, e_share, a_share, strict=True)]


def categorical_psi(expected: Any, actual: Any, max_categories: int = MAX_CATEGORIES) -> tuple[float, list[Bin]]:
    """PSI of categories: the training data's commonest `max_categories` one by one, every other value pooled.

    Args:
        expected: The training data's values (missing ones are left out; values compare as text).
        actual: The logged values.
        max_categories: Categories compared one by one.

    Returns:
        The PSI and its bins, the pooled rest (label None) last when there is one.
    """
    e = pd.Series(expected).dropna().astype(str)
    a = pd.Series(actual).dropna().astype(str)
    top = e.value_counts().index[:max_categories].tolist()
    e_counts = [int((e == c).sum()) for c in top]
    a_counts = [int((a == c).sum()) for c in top]
    labels: list[str | None] = list(top)
    rest_e, rest_a = len(e) - sum(e_counts), len(a) - sum(a_counts)
    if rest_e or rest_a:
        labels.append(None)
        e_counts.append(rest_e)
        a_counts.append(rest_a)
    psi, e_share, a_share = _psi(np.array(e_counts, float), np.array(a_counts, float))
    return psi, [Bin(label, float(x), float(y)) for label, x, y in zip(labels, e_share, a_share, strict=True)]


def level(psi: float) -> str:
    """The usual reading of a PSI: stable, moderate or drift."""
    return "drift" if psi > DRIFT_ALERT else "moderate" if psi >= MODERATE else "stable"


# -- the figures ----------------------------------------------------------------------------------------------------
def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value with at least share q of the weight at or below it."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(values[order][min(index, len(values) - 1)])


def _bucket_size(first: datetime, last: datetime) -> str:
    span = (last - first).total_seconds()
    return "minute" if span <= 3 * 3600 else "hour" if span <= 7 * 86400 else "day"


def _timeline(logged: list[LoggedRequest], size: str) -> list[Bucket]:
    frame = pd.DataFrame(
        {
            "at": [r.created_at for r in logged],
            "latency": [r.latency_ms for r in logged],
            "weight": [r.weight for r in logged],
            "error": [r.status != "ok" for r in logged],
        }
    )
    frame["start"] = frame["at"].dt.floor({"minute": "min", "hour": "h", "day": "D"}[size])
    buckets = []
    for start, group in frame.groupby("start", sort=True):
        latency, weight = group["latency"].to_numpy(float), group["weight"].to_numpy(float)
        buckets.append(
            Bucket(
                start=pd.Timestamp(start).to_pydatetime(),
                requests=int(weight.sum()),
                errors=int(weight[group["error"].to_numpy()].sum()),
                p50_ms=_weighted_percentile(latency, weight, 0.5),
                p95_ms=_weighted_percentile(latency, weight, 0.95),
            )
        )
    return buckets


def _predictions(logged: list[LoggedRequest]) -> Predictions | None:
    labels: dict[str, int] = {}
    values: list[tuple[float, int]] = []
    for request in logged:
        for row in request.outputs:
            if "label" in row:
                labels[str(row["label"])] = labels.get(str(row["label"]), 0) + request.weight
            elif isinstance(row.get("value"), int | float):
                values.append((float(row["value"]), request.weight))
    if labels:
        ordered = sorted(labels.items(), key=lambda item: (-item[1], item[0]))
        return Predictions("classes", [c for c, _ in ordered], [n for _, n in ordered], [])
    if values:
        numbers, weights = np.array([v for v, _ in values]), np.array([w for _, w in values])
        counts, edges = np.histogram(numbers, bins=HISTOGRAM_BINS, weights=weights)
        return Predictions("values", [_edge(e) for e in edges[:-1]], [int(c) for c in counts], edges.tolist())
    return None


def _drift(store: Store, run_id: int, logged: list[LoggedRequest]) -> list[FeatureDrift]:
    """Each numeric or categorical input's PSI, the logged inputs of answered requests against the run's data."""
    run = store.get_run(run_id)
    version = store.get_version(run.version_id) if run is not None else None
    if run is None or version is None:
        return []
    features = run.evaluation.get("features", {})
    kinds = {name: DRIFT_KINDS[group] for group in DRIFT_KINDS for name in features.get(group, [])}
    if not kinds:
        return []  # a text, image or ratings model: its inputs are not columns to compare
    inputs = [row for r in logged if r.status == "ok" for row in r.inputs]
    frame = data.load_frame(version)
    found = []
    for name, kind in kinds.items():
        seen = [row[name] for row in inputs if row.get(name) is not None]
        if not seen or name not in frame.columns:
            continue
        compare = numeric_psi if kind == "numeric" else categorical_psi
        psi, bins = compare(frame[name], seen)
        found.append(FeatureDrift(name, kind, psi, level(psi), len(seen), bins))
    return sorted(found, key=lambda f: (-f.psi, f.feature))


def monitor(store: Store, name: str, *, version: int | None = None) -> Monitoring:
    """A model's figures from its logged requests: traffic, latency, predictions and input drift.

    Drift compares the inputs logged for one version with the data of the run that made it: the version asked
    for, else the one in production if it has logged requests, else the version of the newest logged request.

    Args:
        store: The run history.
        name: The model's name.
        version: One version's requests only; None for every version's.

    Returns:
        The figures; with no logged request yet, zero requests and empty lists.

    Raises:
        NotFound: No such model or version.
    """
    detail = show(store, name)
    runs = {v.version: v.run_id for v in detail.versions}
    if version is not None and version not in runs:
        shown = ", ".join(map(str, runs))
        raise NotFound("error.registry.unknown_version", name=name, version=version, versions=shown)
    production = detail.model.stages.get(PRODUCTION)
    logged = store.logged_requests(name, version=version, limit=READ_LIMIT)
    weights = np.array([r.weight for r in logged], float)
    latency = np.array([r.latency_ms for r in logged], float)
    size = _bucket_size(logged[0].created_at, logged[-1].created_at) if logged else "minute"
    drift_version = version
    if drift_version is None:
        answered = {r.version for r in logged}
        drift_version = production if production in answered or not logged else logged[-1].version
    chosen = [r for r in logged if r.version == drift_version]
    drift = _drift(store, runs[drift_version], chosen) if drift_version in runs and chosen else []
    return Monitoring(
        model=name,
        version=version,
        production=production,
        requests=int(weights.sum()),
        logged=len(logged),
        errors=int(sum(r.weight for r in logged if r.status != "ok")),
        p50_ms=_weighted_percentile(latency, weights, 0.5) if logged else None,
        p95_ms=_weighted_percentile(latency, weights, 0.95) if logged else None,
        bucket=size,
        timeline=_timeline(logged, size) if logged else [],
        predictions=_predictions(logged),
        drift_version=drift_version,
        drift_run=runs.get(drift_version) if drift_version is not None else None,
        drift=drift,
        alert=any(f.psi > DRIFT_ALERT and f.rows >= MIN_DRIFT_ROWS for f in drift),
    )
