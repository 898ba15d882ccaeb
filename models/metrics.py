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
    case's label and score, or for more classes every probability, which the engine keeps beside the run for
    choosing a threshold or a cost matrix, not in the DB).
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
            details["test_scores"] = {"label": y.astype("int32"), "probabilities": p.astype("float32")}
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


# -- segments: every metric per slice of the rows, with a bootstrap interval ----------------------------------
SEGMENT_DRAWS = 200  # bootstrap resamples per segment
SEGMENT_LEVEL = 0.95
SEGMENT_MAX = 20  # segments listed; the smaller rest are pooled as "(other)"
SEGMENT_MIN_ROWS = 10  # a smaller segment is pooled too: its metrics would be noise
SEGMENT_BINS = 5  # a many-valued number is cut into this many equal-count ranges
_DRAW_CELLS = 2_000_000  # resampled positions held at once (draws x rows), so a large segment stays in memory
MISSING, OTHER = "(missing)", "(other)"


def segment_groups(values: Any, bins: int = SEGMENT_BINS) -> np.ndarray:
    """Each row's segment name: its category, or for a many-valued number its range ("[16, 29]", equal counts).

    Missing values are a segment of their own; beyond SEGMENT_MAX segments, or under SEGMENT_MIN_ROWS rows, the
    smaller ones are pooled as "(other)" (when there are two or more of them).
    """
    import pandas as pd

    values = pd.Series(values).reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > bins:
        numbers = values.astype("float64")
        codes = pd.qcut(numbers, bins, duplicates="drop").cat.codes.to_numpy()
        # Each range by the smallest and largest value in it ("[16, 29]"): qcut's own edges start below the data.
        bounds = numbers.groupby(codes).agg(["min", "max"])
        names = {code: f"[{_short(low)}, {_short(high)}]" for code, (low, high) in bounds.iterrows() if code >= 0}
        groups = np.array([names.get(code, MISSING) for code in codes], dtype=object)
    else:
        groups = np.where(values.isna().to_numpy(), MISSING, values.astype(str).to_numpy(dtype=object))
    counts = pd.Series(groups).value_counts()
    kept = set(counts.index[:SEGMENT_MAX][counts.iloc[:SEGMENT_MAX] >= SEGMENT_MIN_ROWS])
    if len(counts) - len(kept) <= 1:  # one small segment alone keeps its name: "(other)" would hide it
        return groups.astype(object)
    return np.where(np.isin(groups, list(kept)), groups, OTHER).astype(object)


def _short(x: float) -> str:
    return f"{x:.4g}"


def _draws(rng: np.random.Generator, n: int, draws: int) -> Any:
    """Bootstrap resamples of n positions, a block of rows of a (draws, n) array at a time."""
    per_block = max(1, _DRAW_CELLS // max(n, 1))
    for start in range(0, draws, per_block):
        yield rng.integers(0, n, size=(min(per_block, draws - start), n))


def _auc_rows(label: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of (resamples, n) arrays: the Mann-Whitney statistic, ties counted half (as sklearn)."""
    from scipy.stats import rankdata

    ranks = rankdata(score, axis=1)
    positives = label.sum(axis=1)
    negatives = label.shape[1] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * label).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives)


def _f1_macro_rows(actual: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Macro F1 of each row of (resamples, n) arrays, over `classes` (those of the whole segment), as sklearn."""
    scores = []
    for k in classes:
        is_actual, is_predicted = actual == k, predicted == k
        tp = (is_actual & is_predicted).sum(axis=1)
        denominator = is_actual.sum(axis=1) + is_predicted.sum(axis=1)
        scores.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
    return np.mean(scores, axis=0)


def _classifier_scores(
    actual: np.ndarray, predicted: np.ndarray, positive: tuple[str, np.ndarray] | None
) -> dict[str, Any]:
    labels = np.unique(np.concatenate([actual, predicted]))
    scores: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(actual, predicted)),
        "f1_macro": float(skm.f1_score(actual, predicted, average="macro", labels=labels, zero_division=0)),
    }
    if positive is not None:
        is_positive = actual == positive[0]
        both = 0 < is_positive.sum() < len(is_positive)
        scores["roc_auc"] = float(skm.roc_auc_score(is_positive, positive[1])) if both else None
        scores["positive_rate"] = float(is_positive.mean())
    return scores


def _regression_scores(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(actual, predicted))),
        "mae": float(skm.mean_absolute_error(actual, predicted)),
        "r2": float(skm.r2_score(actual, predicted)) if len(actual) > 1 and np.ptp(actual) > 0 else None,
    }


def _intervals(
    rng: np.random.Generator,
    actual: np.ndarray,
    predicted: np.ndarray,
    *,
    positive: tuple[str, np.ndarray] | None,
    regression: bool,
    draws: int,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of each segment metric (None where no resample defines it)."""
    samples: dict[str, list[np.ndarray]] = {}
    classes = None if regression else np.unique(np.concatenate([actual, predicted]))
    for rows in _draws(rng, len(actual), draws):
        a, p = actual[rows], predicted[rows]
        if regression:
            error = a - p
            total = ((a - a.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                r2 = np.where(total > 0, 1 - (error**2).sum(axis=1) / total, np.nan)
            block = {"rmse": np.sqrt((error**2).mean(axis=1)), "mae": np.abs(error).mean(axis=1), "r2": r2}
        else:
            assert classes is not None
            block = {"accuracy": (a == p).mean(axis=1), "f1_macro": _f1_macro_rows(a, p, classes)}
            if positive is not None:
                block["roc_auc"] = _auc_rows((a == positive[0]).astype("float64"), positive[1][rows])
                block["positive_rate"] = (a == positive[0]).mean(axis=1)
        for name, values in block.items():
            samples.setdefault(name, []).append(values)
    tail = (1 - SEGMENT_LEVEL) / 2 * 100
    out: dict[str, list[float] | None] = {}
    for name, parts in samples.items():
        values = np.concatenate(parts)
        values = values[np.isfinite(values)]
        out[name] = np.percentile(values, [tail, 100 - tail]).tolist() if len(values) else None
    return out


def segments(
    groups: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    *,
    regression: bool,
    positive: tuple[str, np.ndarray] | None = None,
    draws: int = SEGMENT_DRAWS,
    seed: int = 0,
) -> dict[str, Any]:
    """Every metric per segment, each with a bootstrap 95% interval, the worst segment first.

    Args:
        groups: each row's segment (`segment_groups`).
        actual, predicted: class names, or numbers for a regression.
        regression: whether the rows are a regression's (RMSE, MAE, R²) or a classifier's (accuracy, macro F1).
        positive: for a binary classifier, the positive class and each row's score for it (adds ROC AUC and the
            positive rate).
        draws: bootstrap resamples per segment (rows drawn with replacement within the segment).

    Returns `metric` (the one the order follows), `higher_is_better`, `overall` (every metric on all rows) and
    `segments`: each with `segment`, `rows`, its metrics and `interval` (metric -> [low, high] or None). The
    point values are scikit-learn's on the segment's rows.
    """
    actual = np.asarray(actual, dtype="float64" if regression else object)
    predicted = np.asarray(predicted, dtype="float64" if regression else object)
    if regression:
        metric, higher = "rmse", False
    else:
        metric, higher = ("roc_auc" if positive is not None else "accuracy"), True

    def scores(rows: np.ndarray) -> dict[str, Any]:
        if regression:
            return _regression_scores(actual[rows], predicted[rows])
        chosen = None if positive is None else (positive[0], positive[1][rows])
        return _classifier_scores(actual[rows], predicted[rows], chosen)

    rng = np.random.default_rng(seed)
    listed = []
    for name in sorted(set(groups.tolist()), key=str):
        rows = np.flatnonzero(groups == name)
        chosen = None if positive is None else (positive[0], positive[1][rows])
        interval = _intervals(rng, actual[rows], predicted[rows], positive=chosen, regression=regression, draws=draws)
        listed.append({"segment": str(name), "rows": int(len(rows))} | scores(rows) | {"interval": interval})

    def badness(entry: dict[str, Any]) -> tuple[bool, float]:
        value = entry[metric]
        return value is None, (-value if not higher else value) if value is not None else 0.0

    listed.sort(key=badness)
    overall = {"rows": int(len(actual))} | scores(np.arange(len(actual)))
    return {"metric": metric, "higher_is_better": higher, "overall": overall, "segments": listed}


def within_tolerance(actual: np.ndarray, predicted: np.ndarray, tolerance: float, *, relative: bool) -> dict:
    """The share of predictions within a band around the true value: ± `tolerance` in the target's units, or
    ± that share of the true value (`relative`, e.g. 0.1 for 10%); with the band's under- and over-shoots."""
    actual, predicted = np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
    width = tolerance * np.abs(actual) if relative else np.full(len(actual), float(tolerance))
    error = predicted - actual
    inside = np.abs(error) <= width
    rows = max(len(actual), 1)
    return {
        "tolerance": float(tolerance),
        "relative": relative,
        "rows": int(len(actual)),
        "inside": int(inside.sum()),
        "share_inside": float(inside.sum() / rows),
        "share_below": float((error < -width).sum() / rows),
        "share_above": float((error > width).sum() / rows),
    }
