"""Tabular classification and regression with gradient-boosted trees (YDF), served as plain TensorFlow.

Trees beat networks on most business tables (Grinsztajn et al., 2022). YDF grows them natively on numbers and
categories, missing values included; `models/forest.py` compiles the trained forest into standard TensorFlow
ops, so the export loads and serves like the network's: the same raw-column inputs and named outputs.
The split and the plan (which columns, the classes) are the network family's (`models/tabular.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import derived, forest, tabular
from models.spec import TabularSpec
from models.task import Prepared, TaskData

# YDF reports the binomial log-likelihood loss as twice the log loss (the others as they are); the curves show
# the log loss, as a network's do, so the two families' curves and diagnoses read alike.
_LOSS_SCALE = {"BINOMIAL_LOG_LIKELIHOOD": 0.5}


def tree_inputs(frame: pd.DataFrame, plan: tabular.Plan) -> dict[str, np.ndarray]:
    """The columns YDF grows trees on: float32 numbers with NaN, strings with "" where missing, and the numbers
    that date and text columns become (`models/derived.py`, the ops the export runs), one column each."""
    inputs: dict[str, np.ndarray] = {}
    for name in plan.numeric:
        inputs[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy("float32")
    for name in plan.categorical + plan.hashed:
        inputs[name] = frame[name].astype("string").fillna("").to_numpy(dtype=object).astype(str)
    return inputs | derived.derive_frame(frame, plan.dates, plan.texts)


def export_inputs(rows: pd.DataFrame, plan: tabular.Plan) -> dict[str, np.ndarray]:
    """The export's [N, 1] inputs, numbers missing as NaN: the trees route a missing value themselves."""
    numbers = {n: pd.to_numeric(rows[n], errors="coerce").to_numpy("float32").reshape(-1, 1) for n in plan.numeric}
    return tabular.raw_inputs(rows, plan) | numbers


def _learner(plan: tabular.Plan, spec: TabularSpec) -> Any:
    import ydf

    return ydf.GradientBoostedTreesLearner(
        label=plan.target,
        task=ydf.Task.CLASSIFICATION if plan.task == "classification" else ydf.Task.REGRESSION,
        num_trees=spec.num_trees,
        max_depth=spec.max_depth,
        shrinkage=spec.shrinkage,
        min_examples=spec.min_examples,
        random_seed=spec.seed,
    )


def curves(model: Any) -> dict[str, list[float]]:
    """Training and validation loss (and accuracy) after each tree, as a network's history per epoch."""
    out: dict[str, list[float]] = {"loss": [], "val_loss": []}
    for entry in model.training_logs():
        for prefix, evaluation in (("", entry.training_evaluation), ("val_", entry.evaluation)):
            scale = _LOSS_SCALE.get(getattr(evaluation, "loss_name", None) or "", 1.0)
            if evaluation.loss is not None:
                out[f"{prefix}loss"].append(float(evaluation.loss) * scale)
            if evaluation.accuracy is not None:
                out.setdefault(f"{prefix}accuracy", []).append(float(evaluation.accuracy))
    return {name: values for name, values in out.items() if values}


def prepare(data: TaskData, *, spec: TabularSpec) -> Prepared:
    """Split and plan as the network family does; `fit` grows the trees, `export` compiles them."""
    target = data.roles["target"]
    assert target is not None
    task = "regression" if data.task == "regression" else "classification"
    train_rows, val_rows, test_rows = tabular.split(data.frame, target=target, task=task, spec=spec)
    plan = tabular.make_plan(train_rows, columns=data.columns, target=target, task=task, spec=spec)

    def labelled(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        y = rows[target].astype(str) if task == "classification" else rows[target].astype("float64")
        return tree_inputs(rows, plan) | {target: y.to_numpy()}

    def fit() -> tuple[Any, dict[str, list[float]]]:
        model = _learner(plan, spec).train(labelled(train_rows), valid=labelled(val_rows), verbose=0)
        if task == "classification" and [str(c) for c in model.label_classes()] != plan.classes:
            raise ValueError(f"The trees' classes {model.label_classes()} differ from the plan's {plan.classes}.")
        return model, curves(model)

    def export_model(model: Any, path: Path) -> None:
        forest.export(model, path, signature=tabular.signature(plan), derive=plan.derived())

    def columns(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        return export_inputs(rows, plan)

    def evaluate(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        return tabular.score_export(path, columns(test_rows), plan, rows=(train_rows, val_rows, test_rows))

    def validate(path: Path) -> float:
        return tabular.validation_loss(path, columns(val_rows), plan, val_rows)

    return Prepared.in_one_call(
        plan=plan.to_dict() | {"architecture": "gbt"},
        fit=fit,
        export=export_model,
        evaluate=evaluate,
        train_examples=len(train_rows),
        validate=validate,
    )
