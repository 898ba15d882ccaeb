"""Scoring a trained model on labelled rows the user brings.

This is what `modeldeck eval RUN --input FILE` prints, and what the dashboard can show for an uploaded file. The
held-out test split's metrics are computed by the model's family when it trains (they are the run's `metrics`);
this scores any other labelled table the same way: with `models.metrics`, or for a recommender with the family's
own `score_interactions` (a file of later ratings, with the baselines when the run's training rows are at hand).

The model is run by the caller (`predict`), so this module needs neither the inference server nor, but for a
recommender (whose family it imports), TensorFlow: the CLI passes a local `Predictor`, a page can pass the
inference server's client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backend.errors import BadInput
from db import Run, Store
from models.tasks import reads_text

if TYPE_CHECKING:  # pandas and NumPy load with the rows, not with the wing: `runs list` never needs them
    import numpy as np
    import pandas as pd

    from models.recommend import Plan

# Tasks whose rows carry their answer (a recommender's: the ratings users gave).
SCORABLE = ("classification", "regression", "text-classification", "zero-shot", "recommendation")


def score_labelled(
    run: Run,
    frame: pd.DataFrame,
    *,
    predict: Callable[..., dict[str, np.ndarray]],
    source: str,
    store: Store | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The run's metrics on labelled rows (rows without a label are left out), per segment of `by` too.

    Args:
        run: a finished run of a task in `SCORABLE`.
        frame: the rows, with the run's target column holding the true answers (a recommender's: its user, item
            and rating columns).
        predict: the exported model's raw outputs for rows (`classes` and `probabilities`, or `value`); for a
            recommender `predict(rows, signature)` runs the named signature (`serving_default` when not named).
        source: what the rows are called in messages, e.g. the file's name.
        store: where the run's dataset is; a recommender's baselines need its training rows.
        by: a column of the rows: its segments' metrics are added under `segments` (see `backend.jobs.segments`).

    Raises:
        BadInput: the task cannot be scored on rows, or the rows lack the columns it needs.
    """
    if run.task not in SCORABLE:
        raise BadInput("error.eval.not_scorable", task=run.task, run_id=run.id)
    if run.task == "recommendation":
        return _score_ratings(run, frame, predict=predict, source=source, store=store)
    if run.target not in frame.columns:
        raise BadInput("error.eval.no_target_column", source=source, target=run.target)
    import numpy as np

    from models import metrics  # scikit-learn: a second's import that `runs list` and the pages need not pay

    if by is not None and (by not in frame.columns or by == run.target):
        raise BadInput("error.eval.no_segment_column", source=source, column=by)
    frame = frame[frame[run.target].notna()]
    column = run.evaluation.get("plan", {}).get("text")
    if reads_text(run.task) and "text" not in frame.columns and column in frame.columns:
        frame = frame.assign(text=frame[column])  # the export reads `text`: the file's column as the run named it
    outputs = predict(frame)
    if run.task == "regression":
        actual, predicted = frame[run.target].to_numpy(dtype="float64"), outputs["value"].reshape(-1)
        scores, _ = metrics.regression(actual, predicted)
        if by is not None:
            found = metrics.segments(metrics.segment_groups(frame[by]), actual, predicted, regression=True)
            scores["segments"] = {"column": by} | found
        return scores
    classes = [c.decode() for c in outputs["classes"][0]] if len(frame) else []
    actual = frame[run.target].astype(str).to_numpy(dtype=object)
    scores, _ = metrics.classification(actual.tolist(), outputs["probabilities"], classes)
    if by is not None:
        from backend.jobs.segments import positive_scores

        probabilities = np.asarray(outputs["probabilities"])
        predicted = np.array(classes, dtype=object)[probabilities.argmax(axis=1)]
        positive = positive_scores(classes, predicted, probabilities.max(axis=1))
        groups = metrics.segment_groups(frame[by])
        found = metrics.segments(groups, actual, predicted, regression=False, positive=positive)
        scores["segments"] = {"column": by} | found
    return scores


def _training_rows(store: Store | None, run: Run, plan: Plan) -> pd.DataFrame | None:
    """The interactions the run trained on, from its dataset version; None when that is gone or has changed."""
    from backend import config
    from backend.jobs.training import task_data
    from models import recommend
    from models.tasks import spec_from_dict

    if store is None or store.get_version(run.version_id) is None:
        return None
    data = task_data(store, paths=config.paths(), run=run)
    return recommend.training_rows(data, plan=plan, spec=spec_from_dict(run.spec, task=run.task))


def _score_ratings(
    run: Run,
    frame: pd.DataFrame,
    *,
    predict: Callable[..., dict[str, np.ndarray]],
    source: str,
    store: Store | None = None,
) -> dict[str, Any]:
    """A recommender's figures on interactions it never saw (see `score_labelled`).

    The figures are those of the run's own evaluation (`models.recommend.score_interactions`), plus how many rows
    were left out for a user (`unknown_user_rows`) or an item (`unknown_item_rows`) the model never trained on,
    and `baseline`: the same figures of the baselines, when the run's training rows are at hand.
    """
    import pandas as pd

    stored = run.evaluation["plan"]  # the file is checked before TensorFlow loads
    user, item = stored["user"], stored["item"]
    rating = None if stored["implicit"] else stored["rating"]
    needed = [c for c in (user, item, rating) if c]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise BadInput(
            "error.eval.missing_columns",
            source=source,
            missing=", ".join(missing),
            run_id=run.id,
            needed=", ".join(needed),
        )
    if frame.empty:
        raise BadInput("error.eval.no_rows", source=source, user=user, item=item)
    if rating and pd.to_numeric(frame[rating], errors="coerce").notna().sum() == 0:
        raise BadInput("error.eval.no_ratings", source=source, rating=rating)

    from models import recommend
    from models.task import TaskData

    plan = recommend.Plan.from_dict(stored)
    rows, *_ = recommend.clean(TaskData(frame, {"user": user, "item": item, "rating": rating}))
    if rows.empty:
        raise BadInput("error.eval.no_rows", source=source, user=user, item=item)
    scored = recommend.score_interactions(
        rows,
        plan=plan,
        rate=lambda r: predict(r, "rating"),
        recommend=lambda r: predict(r, "serving_default"),
        train=_training_rows(store, run, plan),
    )
    if scored.unknown_user_rows == len(rows):
        users = rows["user"].nunique()
        raise BadInput("error.eval.no_known_users", source=source, users=users, run_id=run.id, user=user)
    unknown = {"unknown_user_rows": scored.unknown_user_rows, "unknown_item_rows": scored.unknown_item_rows}
    found = scored.scores | unknown
    return found | ({"baseline": scored.baseline} if scored.baseline else {})
