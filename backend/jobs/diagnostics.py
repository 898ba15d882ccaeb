"""Plain-words diagnostics of a finished run, from its curves and test metrics (no TensorFlow here).

Each finding is `{"id", "severity", "params"}`; its words are `diagnosis.<id>` in the message catalog.
"""

from __future__ import annotations

import math
from typing import Any

from models.tasks import task_info

STUCK_SHARE = 0.95  # a loss within 5% of ln(classes) is what guessing scores
OVERFIT_RISE = 0.10  # validation loss 10% above its best while training loss still falls
OVERFIT_CLIMB = 0.03, 3  # or 3% above it after climbing for 3 epochs in a row (what early stopping cuts short)
BASELINE_MARGIN = 0.005
EXPLODED = 3.0  # a classifier's loss this many times what guessing scores, or a loss that ends this far above its start


def _finding(id: str, severity: str, **params: Any) -> dict[str, Any]:
    return {"id": id, "severity": severity, "params": params}


def diagnose(
    curves: dict[str, list[float]],
    *,
    task: str,
    classes: int,
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    learning_rate: float | None = None,
    trees: bool = False,
) -> list[dict[str, Any]]:
    """What a newcomer should know about a run: exploding or stuck, overfitting, or beaten by a trivial rule."""
    findings = []
    loss, val_loss = curves.get("loss", []), curves.get("val_loss", [])
    chance = math.log(classes) if task_info(task).classifier and classes >= 2 else None
    # 1. Exploding: far above what guessing scores, or ending far above where it started (too big a step).
    exploded = bool(loss) and (
        (chance is not None and loss[-1] > EXPLODED * chance) or (len(loss) >= 2 and loss[-1] > EXPLODED * loss[0])
    )
    if exploded:
        findings.append(
            _finding("exploding", "warning", first=round(loss[0], 4), last=round(loss[-1], 4), lr=learning_rate or 0)
        )
    # 2. Stuck near chance: the loss of a classifier that spreads its bets evenly is ln(classes).
    elif chance is not None and loss and loss[-1] >= STUCK_SHARE * chance:
        findings.append(_finding("not_learning", "warning", loss=round(loss[-1], 4), chance=round(chance, 4)))
    # 3. Overfitting: validation loss rising from its best while the training loss keeps falling.
    if len(val_loss) >= 3 and len(loss) == len(val_loss):
        best = min(range(len(val_loss)), key=val_loss.__getitem__)
        share, epochs = OVERFIT_CLIMB
        tail = val_loss[-epochs - 1 :]
        climbed = len(val_loss) - 1 - best >= epochs and all(b > a for a, b in zip(tail, tail[1:], strict=False))
        rose = val_loss[-1] > val_loss[best] * (1 + OVERFIT_RISE) or (
            climbed and val_loss[-1] > val_loss[best] * (1 + share)
        )
        if best < len(val_loss) - 1 and rose and loss[-1] < loss[best]:
            overfitting = "overfitting_trees" if trees else "overfitting"  # each family's own remedies
            findings.append(_finding(overfitting, "warning", best=best + 1, epochs=len(val_loss)))
    # 4. A trivial rule does as well: the majority class, or the mean.
    if task_info(task).classifier and "accuracy" in metrics and "accuracy" in baseline:
        if metrics["accuracy"] <= baseline["accuracy"] + BASELINE_MARGIN:
            findings.append(
                _finding(
                    "worse_than_baseline",
                    "warning",
                    model=metrics["accuracy"],
                    baseline=baseline["accuracy"],
                    rule="majority",
                )
            )
    if task == "regression" and "rmse" in metrics and "rmse" in baseline and metrics["rmse"] >= baseline["rmse"]:
        findings.append(
            _finding("worse_than_baseline_reg", "warning", model=metrics["rmse"], baseline=baseline["rmse"])
        )
    if task == "recommendation" and metrics.get("ndcg_at_k") is not None and "ndcg_at_k" in baseline:
        if metrics["ndcg_at_k"] <= baseline["ndcg_at_k"]:
            findings.append(
                _finding(
                    "worse_than_popularity",
                    "warning",
                    model=metrics["ndcg_at_k"],
                    baseline=baseline["ndcg_at_k"],
                    k=metrics.get("k", 10),
                )
            )
    if task == "text-generation" and "perplexity" in metrics and "perplexity" in baseline:
        if metrics["perplexity"] >= baseline["perplexity"]:
            findings.append(
                _finding("worse_than_unigram", "warning", model=metrics["perplexity"], baseline=baseline["perplexity"])
            )
    return findings
