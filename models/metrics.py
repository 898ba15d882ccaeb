"""Metrics on held-out examples, from an exported model's outputs. scikit-learn does the arithmetic; no TensorFlow."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

CURVE_POINTS = 200
SCATTER_POINTS = 500


def classification(y_true: list[str], probabilities: np.ndarray, classes: list[str]) -> tuple[dict, dict]:
    """Scalar metrics and the curves/tables behind them, for class names `y_true`."""
    index = {c: i for i, c in enumerate(classes)}
    known = np.array([t in index for t in y_true])
    y = np.array([index.get(t, -1) for t in y_true])[known]
    p = np.clip(probabilities[known].astype("float64"), 1e-7, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    labels = list(range(len(classes)))
    scores: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "f1_macro": float(skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
        "log_loss": float(skm.log_loss(y, p, labels=labels)),
        "roc_auc": None,
        "test_rows": int(len(y)),
    }
    roc: list[dict[str, Any]] = []
    present = sorted(set(y.tolist()))
    if len(present) >= 2:
        if len(classes) == 2:
            scores["roc_auc"] = float(skm.roc_auc_score(y, p[:, 1]))
        else:
            scores["roc_auc"] = float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels))
        for i in present if len(classes) > 2 else [1]:
            fpr, tpr, _ = skm.roc_curve(y == i, p[:, i])
            step = max(1, len(fpr) // CURVE_POINTS)
            roc.append({"class": classes[i], "fpr": fpr[::step].tolist() + [1.0], "tpr": tpr[::step].tolist() + [1.0]})
    majority = int(np.bincount(y, minlength=len(classes)).argmax()) if len(y) else 0
    details = {
        "classes": classes,
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels).tolist(),
        "roc": roc,
        "baseline": {"accuracy": float(np.mean(y == majority)) if len(y) else 0.0, "rule": "majority class"},
    }
    return scores, details


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[dict, dict]:
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
    details = {
        "actual": y_true[pick].tolist(),
        "predicted": y_pred[pick].tolist(),
        "baseline": {
            "rmse": float(np.sqrt(np.mean((y_true - mean) ** 2))) if len(y_true) else 0.0,
            "rule": "predict the mean",
        },
    }
    return scores, details
