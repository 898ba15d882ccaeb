"""Metrics on held-out examples, from an exported model's outputs. scikit-learn does the arithmetic; no TensorFlow."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

CURVE_POINTS = 200
SCATTER_POINTS = 500
CALIBRATION_BINS = 10
HISTOGRAM_BINS = 30


def _downsampled(*arrays: np.ndarray) -> list[list[float]]:
    """At most CURVE_POINTS points of a curve, its last point kept."""
    step = max(1, len(arrays[0]) // CURVE_POINTS)
    return [np.concatenate([a[::step], a[-1:]]).tolist() if len(a) else [] for a in arrays]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> tuple[float, dict]:
    """Top-label ECE: how far the confidence of the predicted class is from how often it is right, weighted over
    equal-width confidence bins; and the bins (mean confidence, accuracy, count) for the reliability chart."""
    confidence, right = p.max(axis=1), (p.argmax(axis=1) == y).astype("float64")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    filled = count > 0
    mean_confidence = np.bincount(which, weights=confidence, minlength=bins)[filled] / count[filled]
    accuracy = np.bincount(which, weights=right, minlength=bins)[filled] / count[filled]
    ece = float(np.sum(np.abs(accuracy - mean_confidence) * count[filled]) / max(len(y), 1))
    table = {"confidence": mean_confidence.tolist(), "accuracy": accuracy.tolist(), "count": count[filled].tolist()}
    return ece, table


def gains(positive: np.ndarray, score: np.ndarray) -> dict[str, list[float]]:
    """Cumulative gain and lift: the share of all positives among the top share of cases by score."""
    order = np.argsort(-score, kind="stable")
    found = np.cumsum(positive[order]) / max(int(positive.sum()), 1)
    share = np.arange(1, len(order) + 1) / max(len(order), 1)
    pick = np.unique(np.linspace(0, len(order) - 1, min(len(order), 100)).astype(int))
    return {"share": share[pick].tolist(), "gain": found[pick].tolist(), "lift": (found[pick] / share[pick]).tolist()}


def classification(y_true: list[str], probabilities: np.ndarray, classes: list[str]) -> tuple[dict, dict]:
    """Scalar metrics and the curves/tables behind them, for class names `y_true`.

    The scores are scikit-learn's on these predictions (a test holds them to 1e-6): accuracy, macro F1, log
    loss, ROC AUC and average precision (of the second class for two, macro one-vs-rest for more), the Brier
    score, and a `per_class` table of precision, recall, F1 and support; plus the top-label expected
    calibration error (`ece`). The details hold the confusion matrix, ROC and precision-recall curves, the
    reliability bins and, for two classes, cumulative gain and lift, and `test_scores` (arrays: each test
    case's label and score, which the engine keeps beside the run for choosing a threshold, not in the DB).
    """
    index = {c: i for i, c in enumerate(classes)}
    known = np.array([t in index for t in y_true])
    y = np.array([index.get(t, -1) for t in y_true])[known]
    p = np.clip(probabilities[known].astype("float64"), 1e-7, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    scores: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "f1_macro": float(skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
        "log_loss": float(skm.log_loss(y, p, labels=labels)),
        "roc_auc": None,
        "average_precision": None,
        "brier": None,
        "ece": None,
        "test_rows": int(len(y)),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
    }
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    present = sorted(set(y.tolist()))
    details: dict[str, Any] = {}
    if len(y):
        scores["ece"], details["calibration"] = expected_calibration_error(y, p)
        if len(classes) == 2:
            scores["brier"] = float(skm.brier_score_loss(y == 1, p[:, 1]))
        else:
            scores["brier"] = float(skm.brier_score_loss(y, p, labels=labels))
    if len(present) >= 2:
        if len(classes) == 2:
            scores["roc_auc"] = float(skm.roc_auc_score(y, p[:, 1]))
            scores["average_precision"] = float(skm.average_precision_score(y == 1, p[:, 1]))
            details["gains"] = gains((y == 1).astype("float64"), p[:, 1])
            details["test_scores"] = {"label": (y == 1).astype("int8"), "score": p[:, 1].astype("float32")}
        else:
            scores["roc_auc"] = float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels))
            onehot = np.eye(len(classes))[y]
            scores["average_precision"] = float(
                np.mean([skm.average_precision_score(onehot[:, i], p[:, i]) for i in present])
            )
        for i in present if len(classes) > 2 else [1]:
            fpr, tpr, _ = skm.roc_curve(y == i, p[:, i])
            fpr_points, tpr_points = _downsampled(fpr, tpr)
            roc.append({"class": classes[i], "fpr": fpr_points, "tpr": tpr_points})
            precision_curve, recall_curve, _ = skm.precision_recall_curve(y == i, p[:, i])
            precision_points, recall_points = _downsampled(precision_curve, recall_curve)
            pr.append({"class": classes[i], "precision": precision_points, "recall": recall_points})
    majority = int(np.bincount(y, minlength=len(classes)).argmax()) if len(y) else 0
    details |= {
        "classes": classes,
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels).tolist(),
        "roc": roc,
        "pr": pr,
        "baseline": {"accuracy": float(np.mean(y == majority)) if len(y) else 0.0, "rule": "majority class"},
    }
    return scores, details


def by_decile(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict[str, float]]:
    """The error in each tenth of the cases, ordered by the true value: where the model is off, and which way."""
    if len(y_true) < 10:
        return []
    order = np.argsort(y_true, kind="stable")
    return [
        {
            "low": float(y_true[part].min()),
            "high": float(y_true[part].max()),
            "mae": float(np.mean(np.abs(y_true[part] - y_pred[part]))),
            "bias": float(np.mean(y_pred[part] - y_true[part])),
        }
        for part in np.array_split(order, 10)
    ]


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[dict, dict]:
    """RMSE, MAE and R² (scikit-learn's), and the details behind them: a sample of (actual, predicted), the
    residuals' histogram, the error by decile of the true value, and the trivial baseline (the mean)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    scores = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
        "test_rows": int(len(y_true)),
    }
    rng = np.random.default_rng(0)
    pick = rng.choice(len(y_true), size=min(SCATTER_POINTS, len(y_true)), replace=False)
    mean = float(y_true.mean()) if len(y_true) else 0.0
    residual = y_true - y_pred
    counts, edges = np.histogram(residual, bins=HISTOGRAM_BINS) if len(y_true) else (np.array([]), np.array([]))
    details = {
        "actual": y_true[pick].tolist(),
        "predicted": y_pred[pick].tolist(),
        "residuals": {"counts": counts.tolist(), "edges": edges.tolist()},
        "deciles": by_decile(y_true, y_pred),
        "baseline": {
            "rmse": float(np.sqrt(np.mean((y_true - mean) ** 2))) if len(y_true) else 0.0,
            "rule": "predict the mean",
        },
    }
    return scores, details
