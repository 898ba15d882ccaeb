"""How a classifier decides: a threshold for two classes, a cost matrix for more; stored and put in the export.

A threshold's profit on the test rows is shown at every threshold; a cost matrix's decision is the class of
least expected cost, compared on the test rows with deciding the most probable class.

Choosing a threshold records it with the run's model version (the costs, what it earns, who, when, why) and
rewrites the version's export so that its `serving_default` also returns `decision` and `threshold`
(`models/decision.py`): the inference server, the Playground, `modeldeck predict` and any TensorFlow that
loads the export apply the same threshold. The export as trained is kept beside the run (`undecided/`), so a
later choice starts from it, not from a wrapped wrapper. The rewrite runs in a process of its own: callers
(the dashboard) need no TensorFlow.
"""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from backend import auth, config
from backend.errors import BadInput
from backend.jobs.runs import exported_model
from db import Decision, Run, Store
from models.decision import TEST_SCORES, CostMatrix, Costs, at_threshold, cost_outcome, profit_curve

UNDECIDED = "undecided"  # the export as trained, kept the first time a threshold is chosen


def costs(value_tp: float, cost_fp: float, cost_fn: float, currency: str = "") -> Costs:
    """The business values, checked: none negative, not all zero.

    Raises:
        BadInput: a value is negative or every value is zero.
    """
    values = {"value_tp": value_tp, "cost_fp": cost_fp, "cost_fn": cost_fn}
    negative = [name for name, value in values.items() if not value >= 0]  # NaN is refused too
    if negative:
        raise BadInput("error.decide.negative", names=", ".join(negative))
    if not any(values.values()):
        raise BadInput("error.decide.all_zero")
    return Costs(float(value_tp), float(cost_fp), float(cost_fn), currency.strip())


def cost_matrix(classes: list[str], matrix: list[list[float]], currency: str = "") -> CostMatrix:
    """A multiclass model's costs, checked: one row and one column per class, numbers, not all zero.

    Raises:
        BadInput: the matrix is not square over the classes, holds something that is not a number, or is all zero.
    """
    size = len(classes)
    if len(matrix) != size or any(len(row) != size for row in matrix):
        shape = f"{len(matrix)} x {max((len(r) for r in matrix), default=0)}"
        raise BadInput("error.decide.matrix_shape", shape=shape, size=size, classes=", ".join(classes))
    try:
        values = tuple(tuple(float(v) for v in row) for row in matrix)
    except (TypeError, ValueError):
        raise BadInput("error.decide.matrix_number") from None
    if not all(np.isfinite(values).ravel()):
        raise BadInput("error.decide.matrix_number")
    if not any(any(row) for row in values):
        raise BadInput("error.decide.matrix_zero")
    return CostMatrix(tuple(classes), values, currency.strip())


def test_probabilities(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """A classifier of three or more classes: its test cases' class indices and probabilities, as training kept them.

    Raises:
        BadInput: the run is not such a classifier, or it was trained before its probabilities were kept.
    """
    classes = run.evaluation.get("classes", [])
    if not run.task.endswith("classification") or len(classes) < 3:
        raise BadInput("error.decide.not_multiclass", run_id=run.id, classes=len(classes))
    path = config.paths().run_dir(run.id) / TEST_SCORES
    if not path.is_file():
        raise BadInput("error.decide.no_scores", run_id=run.id)
    with np.load(path) as kept:
        if "probabilities" not in kept:
            raise BadInput("error.decide.no_scores", run_id=run.id)
        return kept["label"], kept["probabilities"]


def cost_check(store: Store, run_id: int | str, costs: CostMatrix) -> dict[str, Any]:
    """What deciding by least expected cost costs on the run's test rows, against the most probable class."""
    run, _ = exported_model(store, run_id)
    labels, probabilities = test_probabilities(run)
    _same_classes(run, costs)
    return cost_outcome(labels, probabilities, costs)


def _same_classes(run: Run, costs: CostMatrix) -> None:
    if list(costs.classes) != list(run.evaluation["classes"]):
        raise BadInput("error.decide.matrix_classes", classes=", ".join(run.evaluation["classes"]))


@auth.guarded("decide", lambda d: f"run {d.get('run_id', '?')}", audited="decide_costs")
def decide_costs(
    store: Store, run_id: int | str, costs: CostMatrix, *, chosen_by: str | None = None, reason: str = ""
) -> dict[str, Any]:
    """Store a multiclass model's cost matrix and apply it: its export then decides by least expected cost.

    Raises:
        BadInput: the run is not a classifier of three or more classes, or the matrix is not over its classes.
    """
    run, export_dir = exported_model(store, run_id)
    outcome = cost_check(store, run.id, costs)
    _apply(run, export_dir, json.dumps(costs.to_dict()))
    who = chosen_by or getpass.getuser()
    stored = store.add_decision(
        run.id, threshold=None, costs=costs.to_dict(), outcome=outcome, chosen_by=who, reason=reason
    )
    return describe(run, stored)


def test_scores(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """A binary classifier's test labels and scores, as its training kept them.

    Raises:
        BadInput: the run is not a two-class classifier, or it was trained before scores were kept.
    """
    classes = run.evaluation.get("classes", [])
    if not run.task.endswith("classification") or len(classes) != 2:
        raise BadInput("error.decide.not_binary", run_id=run.id, classes=len(classes))
    path = config.paths().run_dir(run.id) / TEST_SCORES
    if not path.is_file():
        raise BadInput("error.decide.no_scores", run_id=run.id)
    with np.load(path) as kept:
        return kept["label"], kept["score"]


def curve(store: Store, run_id: int | str, costs: Costs) -> dict[str, Any]:
    """Profit per 1,000 cases and confusion counts over thresholds on the run's test rows, the best marked."""
    run, _ = exported_model(store, run_id)
    labels, scores = test_scores(run)
    return profit_curve(labels, scores, costs) | {"classes": run.evaluation["classes"]}


def current(store: Store, run: Run) -> Decision | None:
    """The threshold that applies to a run's model, if one was chosen."""
    found = store.decisions(run.id)
    return found[0] if found else None


@auth.guarded("decide", lambda d: f"run {d.get('run_id', '?')}", audited="decide_threshold")
def decide(
    store: Store,
    run_id: int | str,
    costs: Costs,
    *,
    threshold: float | None = None,
    chosen_by: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Choose a threshold (the most profitable on the test rows when none is given), store it and apply it.

    Raises:
        BadInput: the run cannot take a threshold, or the threshold is outside [0, 1].
    """
    run, export_dir = exported_model(store, run_id)
    labels, scores = test_scores(run)
    if threshold is None:
        threshold = profit_curve(labels, scores, costs)["best"]
    elif not 0 <= threshold <= 1:
        raise BadInput("error.decide.threshold_range", threshold=threshold)
    outcome = at_threshold(labels, scores, costs, threshold)
    _apply(run, export_dir, threshold)
    who = chosen_by or getpass.getuser()
    stored = store.add_decision(
        run.id, threshold=threshold, costs=costs.to_dict(), outcome=outcome, chosen_by=who, reason=reason
    )
    return describe(run, stored)


def describe(run: Run, decision: Decision) -> dict[str, Any]:
    """A decision as the CLI prints it and the pages show it."""
    classes = run.evaluation.get("classes", ["", ""])
    if decision.threshold is None:  # a cost matrix
        return {
            "run_id": run.id,
            "model_name": run.model_name,
            "model_version": run.model_version,
            "threshold": None,
            "costs": decision.costs,
            **{key: decision.outcome[key] for key in ("expected_cost", "plain_cost", "saving", "confusion")},
            "chosen_by": decision.chosen_by,
            "reason": decision.reason,
            "chosen_at": decision.created_at.isoformat(timespec="seconds"),
        }
    return {
        "run_id": run.id,
        "model_name": run.model_name,
        "model_version": run.model_version,
        "threshold": decision.threshold,
        "positive": classes[1],
        "costs": decision.costs,
        **{key: decision.outcome[key] for key in ("expected_profit", "roi", "confusion")},
        "chosen_by": decision.chosen_by,
        "reason": decision.reason,
        "chosen_at": decision.created_at.isoformat(timespec="seconds"),
    }


def _apply(run: Run, export_dir: Path, how: float | str) -> None:
    """Rewrite the run's export with the threshold (or the cost matrix, as JSON) in its graph.

    The folders are swapped, so a reader never sees half an export.
    """
    undecided = config.paths().run_dir(run.id) / UNDECIDED
    if not undecided.exists():
        copying = undecided.with_name(f".{UNDECIDED}.partial")
        shutil.rmtree(copying, ignore_errors=True)
        shutil.copytree(export_dir, copying)
        copying.rename(undecided)
    staging, old = (export_dir.with_name(f".{export_dir.name}.{part}") for part in ("deciding", "old"))
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    given = how if isinstance(how, str) else repr(float(how))
    command = [sys.executable, "-m", "models.decision", str(undecided), str(staging), given]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise RuntimeError(f"Writing the export with {given} failed:\n{done.stderr[-2000:]}")
    export_dir.rename(old)
    staging.rename(export_dir)
    shutil.rmtree(old, ignore_errors=True)
