"""Scoring a trained model on labelled rows the user brings.

This is what `modeldeck eval RUN --input FILE` prints, and what the dashboard can show for an uploaded file. The
held-out test split's metrics are computed by the model's family when it trains (they are the run's `metrics`);
this scores any other labelled table the same way, with `models.metrics`.

The model is run by the caller (`predict`), so this module needs neither TensorFlow nor the inference server:
the CLI passes a local `Predictor`, a page can pass the inference server's client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import BadInput
from db import Run
from models import metrics

SCORABLE = ("classification", "regression", "text-classification")  # tasks whose rows carry their answer


def score_labelled(
    run: Run, frame: pd.DataFrame, *, predict: Callable[[pd.DataFrame], dict[str, np.ndarray]], source: str
) -> dict[str, Any]:
    """The run's metrics on labelled rows (rows without a label are left out).

    Args:
        run: a finished run of a task in `SCORABLE`.
        frame: the rows, with the run's target column holding the true answers.
        predict: the exported model's raw outputs for rows (`classes` and `probabilities`, or `value`).
        source: what the rows are called in messages, e.g. the file's name.

    Raises:
        BadInput: the task cannot be scored on rows, or the rows have no target column.
    """
    if run.task not in SCORABLE:
        raise BadInput("error.eval.not_scorable", task=run.task, run_id=run.id)
    if run.target not in frame.columns:
        raise BadInput("error.eval.no_target_column", source=source, target=run.target)
    frame = frame[frame[run.target].notna()]
    outputs = predict(frame)
    if run.task == "regression":
        scores, _ = metrics.regression(frame[run.target].to_numpy(), outputs["value"])
        return scores
    classes = [c.decode() for c in outputs["classes"][0]] if len(frame) else []
    scores, _ = metrics.classification(frame[run.target].astype(str).tolist(), outputs["probabilities"], classes)
    return scores
