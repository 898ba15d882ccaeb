"""The error gallery: the test rows behind a mistake, and fixing them in one step.

A confusion-matrix cell (or a regression's largest misses) opens the rows behind it; relabel or drop them as
a new dataset version, then train the same spec on it.

A table run's training keeps each test row's position in its dataset version, true answer and prediction
(`models.task.TEST_PREDICTIONS`, beside the run), so the gallery shows the rows as uploaded and a fix names
them exactly. The fix goes through the quality wing (a relabelling, then a drop, each a version with its
note, as the Labeling page makes them) and the new run through the quality gate like any other.
"""

from __future__ import annotations

from typing import Any

from backend import config
from backend.errors import BadInput
from backend.jobs.runs import get_run, start_training
from db import Run, Store
from models.task import TEST_PREDICTIONS

MAX_ROWS = 200


def test_rows(
    store: Store, run: Run, *, actual: str | None = None, predicted: str | None = None, limit: int = MAX_ROWS
) -> Any:
    """The run's test rows as uploaded, with `actual`, `predicted` and `confidence` (or `error` for a regression).

    Classification: the rows of one cell (`actual`, `predicted`; None means any), the most confident first.
    Regression: the largest misses first. `row` is each row's position in the run's dataset version.

    Raises:
        BadInput: the run is not a table run, or was trained before its test predictions were kept.
    """
    import pandas as pd

    from backend import data

    path = config.paths().run_dir(run.id) / TEST_PREDICTIONS
    if run.task not in ("classification", "regression"):
        raise BadInput("error.gallery.not_table", run_id=run.id)
    if not path.is_file():
        raise BadInput("error.gallery.no_predictions", run_id=run.id)
    kept = pd.read_parquet(path)
    if run.task == "classification":
        if actual is not None:
            kept = kept[kept["actual"] == actual]
        if predicted is not None:
            kept = kept[kept["predicted"] == predicted]
        kept = kept.sort_values("confidence", ascending=False, kind="stable")
    else:
        kept = kept.assign(error=kept["predicted"] - kept["actual"])
        kept = kept.reindex(kept["error"].abs().sort_values(ascending=False, kind="stable").index)
    kept = kept.head(limit)
    version = store.get_version(run.version_id)
    assert version is not None
    rows = data.load_frame(version).iloc[kept["row"].to_numpy()].reset_index(drop=True)
    shown = kept.drop(columns=["row"]).reset_index(drop=True)
    inputs = rows.drop(columns=[run.target], errors="ignore")
    return pd.concat([kept[["row"]].reset_index(drop=True), shown, inputs], axis=1)


def fix_and_retrain(
    store: Store, run_id: int | str, *, relabel: dict[int, str] | None = None, drop: list[int] | None = None
) -> tuple[Any, Run]:
    """Relabel and/or drop rows of a run's version, as a new version, and queue the same spec on it.

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
