"""From a score to a decision: what each threshold earns on the test rows, and an export that decides.

A binary classifier gives a probability; a business acts on a yes or a no. With the value of a true positive
(a churner kept) and the costs of a false positive (an offer to someone who would have stayed) and of a false
negative (a churner missed), each threshold has an expected profit on the held-out test rows. `profit_curve`
computes it at every threshold that changes a decision (the test scores themselves), exactly, from the
confusion counts there. `export_with_threshold` wraps a run's export in one whose `serving_default` also
returns `decision` (the second class when its probability is at least the threshold, else the first) and
`threshold`, with the threshold a constant in the graph: plain TensorFlow and a stock TF Serving return the
decision with no ModelDeck code.

Profit is relative to acting on nobody, per 1,000 cases: acting on a case that turns out positive gains the
value of a true positive and avoids the cost of missing it. ROI is that profit over the cost of the actions
taken (each flagged case costs what a false positive costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Beside a run: each test case's label (1: the second class) and score; for more classes, its class index
# (`label`) and every class's probability (`probabilities`).
TEST_SCORES = "test_scores.npz"
MAX_POINTS = 1001  # thresholds shown on the curve; the best one is searched over every test score


@dataclass(frozen=True)
class Costs:
    """What the outcomes of a binary decision are worth, in one currency."""

    value_tp: float  # gained by acting on a case that is positive
    cost_fp: float  # lost by acting on a case that is negative (the cost of the action)
    cost_fn: float  # lost by not acting on a case that is positive
    currency: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"value_tp": self.value_tp, "cost_fp": self.cost_fp, "cost_fn": self.cost_fn, "currency": self.currency}


def counts_at(labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion counts when a case is positive at `score >= threshold`, for each threshold."""
    order = np.sort(scores)
    positives = np.sort(scores[labels == 1])
    flagged = len(order) - np.searchsorted(order, thresholds, side="left")
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")
    fp = flagged - tp
    return {"tp": tp, "fp": fp, "fn": len(positives) - tp, "tn": len(order) - len(positives) - fp}


def profit(counts: dict[str, np.ndarray], costs: Costs, cases: int) -> dict[str, np.ndarray]:
    """Expected profit per 1,000 cases against acting on nobody, and the return on the actions taken."""
    gain = counts["tp"] * (costs.value_tp + costs.cost_fn) - counts["fp"] * costs.cost_fp
    spent = (counts["tp"] + counts["fp"]) * costs.cost_fp
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(spent > 0, gain / np.where(spent > 0, spent, 1), np.nan)
    return {"profit_per_1000": gain * 1000.0 / max(cases, 1), "roi": roi}


def profit_curve(labels: np.ndarray, scores: np.ndarray, costs: Costs) -> dict[str, Any]:
    """Profit and confusion counts over thresholds, and the best threshold (searched over every test score).

    Args:
        labels: 1 for the positive (second) class, 0 otherwise, per test case.
        scores: the probability of the positive class, per test case.
        costs: what each outcome is worth.
    """
    labels, scores = np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    candidates = np.unique(np.concatenate([scores, [1.0 + 1e-9]]))  # above every score: act on nobody
    everything = profit(counts_at(labels, scores, candidates), costs, len(scores))
    best = int(np.argmax(everything["profit_per_1000"]))  # ties: the lowest threshold, flagging the most
    shown = candidates[np.unique(np.linspace(0, len(candidates) - 1, min(len(candidates), MAX_POINTS)).astype(int))]
    shown = np.union1d(shown, [candidates[best], 0.5])
    counts = counts_at(labels, scores, shown)
    curve = profit(counts, costs, len(scores))
    return {
        "threshold": shown.tolist(),
        "profit_per_1000": curve["profit_per_1000"].tolist(),
        "roi": [None if np.isnan(r) else float(r) for r in curve["roi"]],
        **{name: values.tolist() for name, values in counts.items()},
        "best": float(min(candidates[best], 1.0)),
        "cases": len(scores),
    }


def at_threshold(labels: np.ndarray, scores: np.ndarray, costs: Costs, threshold: float) -> dict[str, Any]:
    """Profit, ROI and confusion counts at one threshold."""
    labels, scores = np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    counts = counts_at(labels, scores, np.array([threshold]))
    result = profit(counts, costs, len(scores))
    roi = float(result["roi"][0])
    return {
        "threshold": float(threshold),
        "expected_profit": float(result["profit_per_1000"][0]),  # per 1,000 cases
        "roi": None if np.isnan(roi) else roi,
        "confusion": {name: int(values[0]) for name, values in counts.items()},
    }


# -- more than two classes: a cost matrix ---------------------------------------------------------------------
@dataclass(frozen=True)
class CostMatrix:
    """What deciding each class costs when each class is the true one: `matrix[actual][decided]`, one currency.

    A negative cost is a gain. The decision for a case is the class with the least expected cost under the
    model's probabilities (`p @ matrix`), which is the most probable class only when every mistake costs alike.
    """

    classes: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]
    currency: str = ""

    def array(self) -> np.ndarray:
        return np.asarray(self.matrix, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "matrix": [list(r) for r in self.matrix], "currency": self.currency}


def least_cost(probabilities: np.ndarray, costs: CostMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Each case's decision (a class index) and its expected cost under the probabilities."""
    expected = np.asarray(probabilities, dtype=np.float64) @ costs.array()
    decided = expected.argmin(axis=1)
    return decided, expected[np.arange(len(decided)), decided]


def cost_outcome(labels: np.ndarray, probabilities: np.ndarray, costs: CostMatrix) -> dict[str, Any]:
    """What deciding by least expected cost costs on the test cases, against deciding the most probable class.

    Returns `expected_cost` and `plain_cost` (per 1,000 cases, the realised cost of each rule on the test
    cases), `saving` (plain minus expected) and `confusion` (actual x decided counts under the cost rule).
    """
    labels = np.asarray(labels, dtype=np.int64)
    matrix, size = costs.array(), len(costs.classes)
    decided, _ = least_cost(probabilities, costs)
    plain = np.asarray(probabilities).argmax(axis=1)
    per_1000 = 1000.0 / max(len(labels), 1)
    cost = float(matrix[labels, decided].sum() * per_1000)
    plain_cost = float(matrix[labels, plain].sum() * per_1000)
    confusion = np.bincount(labels * size + decided, minlength=size * size).reshape(size, size)
    return {
        "expected_cost": cost,
        "plain_cost": plain_cost,
        "saving": plain_cost - cost,
        "confusion": confusion.tolist(),
    }


def export_with_costs(source: Path, target: Path, *, costs: CostMatrix) -> None:
    """Write `source`'s export again at `target` with `decision` (the least expected cost class) and
    `expected_cost` outputs, the cost matrix a constant in the graph (the rest unchanged)."""
    import tensorflow as tf

    class Decided(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="decided")
            self.model = tf.saved_model.load(str(source))
            serve = self.model.signatures["serving_default"]
            _, signature = serve.structured_input_signature
            matrix = tf.constant(costs.array(), tf.float32)

            @tf.function(input_signature=[signature], autograph=False)
            def decide(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
                out = dict(serve(**inputs))
                expected = tf.matmul(out["probabilities"], matrix)
                decided = tf.argmin(expected, axis=1, output_type=tf.int32)
                out["decision"] = tf.gather(out["classes"], decided, batch_dims=1)
                out["expected_cost"] = tf.reduce_min(expected, axis=1)
                return out

            self.serving_default = decide

    module = Decided()
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serving_default})


def export_with_threshold(source: Path, target: Path, *, threshold: float) -> None:
    """Write `source`'s export again at `target` with `decision` and `threshold` outputs (the rest unchanged)."""
    import tensorflow as tf

    class Decided(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="decided")
            self.model = tf.saved_model.load(str(source))
            serve = self.model.signatures["serving_default"]
            _, signature = serve.structured_input_signature
            cut = tf.constant(threshold, tf.float32)

            @tf.function(input_signature=[signature], autograph=False)
            def decide(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
                out = dict(serve(**inputs))
                positive = out["probabilities"][:, 1] >= cut
                out["decision"] = tf.where(positive, out["classes"][:, 1], out["classes"][:, 0])
                out["threshold"] = tf.fill(tf.shape(positive), cut)
                return out

            self.serving_default = decide

    module = Decided()
    signatures = {"serving_default": module.serving_default}
    tf.saved_model.save(module, str(target), signatures=signatures)


def main(argv: list[str]) -> None:
    """`python -m models.decision SOURCE TARGET THRESHOLD|COSTS_JSON`: the export rewrite, in a process of its own
    so that callers without TensorFlow (the dashboard) can ask for it. COSTS_JSON is `CostMatrix.to_dict()`."""
    import json

    source, target, how = argv
    if how.lstrip().startswith("{"):
        given = json.loads(how)
        matrix = tuple(tuple(float(v) for v in row) for row in given["matrix"])
        costs = CostMatrix(tuple(given["classes"]), matrix, given.get("currency", ""))
        export_with_costs(Path(source), Path(target), costs=costs)
    else:
        export_with_threshold(Path(source), Path(target), threshold=float(how))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
