"""The error gallery: the test examples behind a mistake, and fixing them in one step.

A confusion-matrix cell (or a regression's largest misses) opens the examples behind it: a table's rows, texts
or images. Relabel or drop them as a new dataset version, then train the same spec on it.

Training keeps each test example's position in its dataset version, true answer and prediction
(`models.task.TEST_PREDICTIONS`, beside the run), so the gallery shows the examples as uploaded and a fix names
them exactly. The fix goes through the quality wing (a relabelling, then a drop, each a version with its
note, as the Labeling page makes them) and the new run through the quality gate like any other.
"""

from __future__ import annotations

from typing import Any

from backend import auth, config
from backend.errors import BadInput
from backend.i18n import Message
from backend.jobs.runs import get_run, start_training
from db import Run, Store
from models.task import TEST_PREDICTIONS
from models.tasks import reads_text

# The tasks whose runs keep each test answer.
GALLERY_TASKS = ("classification", "regression", "text-classification", "zero-shot", "image-classification")
IMAGE_COLUMNS = ("file", "original")  # an image as its version holds it: the stored file, its path in the upload
MAX_ROWS = 200


def _as_uploaded(run: Run, rows: Any) -> Any:
    """What the user uploaded for these examples: a table's columns (the answer aside), the text, or the image.

    An image is its stored `file` (relative to the datasets folder, for `data.thumbnail`) and `original` path.
    """
    if reads_text(run.task):
        return rows[[run.evaluation["plan"]["text"]]]
    if run.task == "image-classification":
        return rows[list(IMAGE_COLUMNS)]
    return rows.drop(columns=[run.target], errors="ignore")


def test_rows(
    store: Store, run: Run, *, actual: str | None = None, predicted: str | None = None, limit: int = MAX_ROWS
) -> Any:
    """The run's test examples as uploaded, with `actual`, `predicted` and `confidence` (or `error` for a regression).

    Classifiers (tables, texts, images): the examples of one cell (`actual`, `predicted`; None means any), the most
    confident first. Regression: the largest misses first. `row` is each example's position in the run's dataset
    version; after the answers come a table's columns, a text run's text column, or an image's `IMAGE_COLUMNS`.

    Raises:
        BadInput: the run's task has no gallery, or the run was trained before its test predictions were kept.
    """
    import pandas as pd

    from backend import data

    if run.task not in GALLERY_TASKS:
        raise BadInput("error.gallery.unsupported", run_id=run.id, task=Message.of(f"task.{run.task}"))
    path = config.paths().run_dir(run.id) / TEST_PREDICTIONS
    if not path.is_file():
        raise BadInput("error.gallery.no_predictions", run_id=run.id)
    kept = pd.read_parquet(path)
    if run.task == "regression":
        kept = kept.assign(error=kept["predicted"] - kept["actual"])
        kept = kept.reindex(kept["error"].abs().sort_values(ascending=False, kind="stable").index)
    else:
        if actual is not None:
            kept = kept[kept["actual"] == actual]
        if predicted is not None:
            kept = kept[kept["predicted"] == predicted]
        kept = kept.sort_values("confidence", ascending=False, kind="stable")
    kept = kept.head(limit).reset_index(drop=True)
    version = store.get_version(run.version_id)
    assert version is not None
    rows = data.load_frame(version).iloc[kept["row"].to_numpy()].reset_index(drop=True)
    return pd.concat([kept, _as_uploaded(run, rows)], axis=1)


@auth.guarded("fix", lambda made: f"version {made[0].hash[:8]}, run {made[1].id}")
def fix_and_retrain(
    store: Store, run_id: int | str, *, relabel: dict[int, str] | None = None, drop: list[int] | None = None
) -> tuple[Any, Run]:
    """Relabel and/or drop rows (texts, images) of a run's version, as a new version, and queue the same spec on it.

    Rows are positions, as `test_rows` gives them. Returns the new version and the new run (same task,
    target and spec).

    Raises:
        BadInput: nothing to change, or a fix the data refuses (a label that is not a number for a regression).
    """
    from backend import quality

    run = get_run(store, run_id)
    if not relabel and not drop:
        raise BadInput("error.gallery.nothing_to_fix")
    version = store.get_version(run.version_id)
    assert version is not None
    if relabel:
        version = quality.relabel(store, version=version, labels=relabel)
    if drop:
        version = quality.apply_remedy(store, version=version, action="drop_rows", params={"rows": sorted(drop)})
    again = start_training(
        store,
        version=version,
        target=run.target,
        task=run.task,
        overrides=run.spec,
        override_reason=run.override_reason,
    )
    return version, again


def compared(old: Run, new: Run) -> list[dict[str, Any]]:
    """Each numeric test metric of two runs and its change: what the fix did."""
    rows = []
    for name, before in old.metrics.items():
        after = new.metrics.get(name)
        if isinstance(before, int | float) and isinstance(after, int | float) and name != "test_rows":
            rows.append({"metric": name, "before": before, "after": after, "change": after - before})
    return rows
