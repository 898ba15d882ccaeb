"""Where a model is weaker: every test metric per segment of a column, and a regression's tolerance band.

Segments get bootstrap 95% intervals. A table run keeps each test row's position in its dataset version, true
answer and prediction (`models.task.TEST_PREDICTIONS`), so any column of the version, the ones the model did not
use included, can slice its test rows: a category by its values, a many-valued number by equal-count ranges. Rows
the user brings (`modeldeck eval RUN --input FILE --by COLUMN`) are sliced the same way by `score_labelled`.
"""

from __future__ import annotations

from typing import Any

from backend import config
from backend.errors import BadInput
from db import Run, Store
from models.task import TEST_PREDICTIONS

KINDS = ("categorical", "numeric", "boolean")  # free text, dates and identifiers make no segments a person reads


def columns(store: Store, run: Run) -> list[str]:
    """The columns of the run's dataset version that can slice its test rows, as the profile typed them."""
    version = store.get_version(run.version_id)
    if version is None:
        return []
    rows = max(version.rows, 1)
    return [
        c["name"]
        for c in version.columns
        if c["name"] != run.target and c["kind"] in KINDS and (c["kind"] == "numeric" or c["unique"] <= rows / 2)
    ]


def positive_scores(classes: list[str], predicted: Any, confidence: Any) -> tuple[str, Any] | None:
    """For two classes, the second (the positive one) and each row's probability of it; None for more.

    The probability comes from the kept prediction and its confidence: the two probabilities add up to one.
    """
    import numpy as np

    if len(classes) != 2:
        return None
    positive = classes[1]
    confidence = np.asarray(confidence, dtype="float64")
    return positive, np.where(np.asarray(predicted) == positive, confidence, 1 - confidence)


def by_column(store: Store, run: Run, column: str) -> dict[str, Any]:
    """Every test metric per segment of `column` (see `models.metrics.segments`), with `column` added.

    Raises:
        BadInput: the run is not a table run, kept no test predictions, or its version has no such column.
    """
    import pandas as pd

    from backend import data
    from models import metrics

    if run.task not in ("classification", "regression"):
        raise BadInput("error.segments.not_table", run_id=run.id)
    path = config.paths().run_dir(run.id) / TEST_PREDICTIONS
    if not path.is_file():
        raise BadInput("error.gallery.no_predictions", run_id=run.id)
    version = store.get_version(run.version_id)
    assert version is not None
    frame = data.load_frame(version)
    if column not in frame.columns:
        raise BadInput("error.segments.no_column", column=column, listed=", ".join(columns(store, run)))
    kept = pd.read_parquet(path)
    groups = metrics.segment_groups(frame[column].iloc[kept["row"].to_numpy()])
    if run.task == "regression":
        found = metrics.segments(groups, kept["actual"].to_numpy(), kept["predicted"].to_numpy(), regression=True)
    else:
        positive = positive_scores(run.evaluation.get("classes", []), kept["predicted"], kept["confidence"])
        actual, predicted = kept["actual"].to_numpy(dtype=object), kept["predicted"].to_numpy(dtype=object)
        found = metrics.segments(groups, actual, predicted, regression=False, positive=positive)
    return {"column": column} | found


def parse_tolerance(given: str) -> tuple[float, bool]:
    """A tolerance as a person writes it: "250" (in the target's units) or "10%" (of the true value).

    Raises:
        BadInput: it is not a positive number, with or without a percent sign.
    """
    text = given.strip()
    relative = text.endswith("%")
    try:
        value = float(text.rstrip("%").strip())
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise BadInput("error.eval.bad_tolerance", given=given)
    return (value / 100 if relative else value), relative


def tolerance_band(run: Run, tolerance: float, *, relative: bool) -> dict[str, Any]:
    """A regression run's share of test predictions within the band (see `models.metrics.within_tolerance`).

    Raises:
        BadInput: the run is not a table regression, or kept no test predictions.
    """
    import pandas as pd

    from models import metrics

    if run.task != "regression":
        raise BadInput("error.eval.tolerance_not_regression", run_id=run.id)
    path = config.paths().run_dir(run.id) / TEST_PREDICTIONS
    if not path.is_file():
        raise BadInput("error.gallery.no_predictions", run_id=run.id)
    kept = pd.read_parquet(path)
    return metrics.within_tolerance(kept["actual"], kept["predicted"], tolerance, relative=relative)
