"""Every metric a reviewer reads equals scikit-learn's on the same predictions, to 1e-6; ECE (which scikit-learn
lacks) equals its definition written out as a loop."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from models import metrics
from tests import factories


def _predictions(classes: int, rows: int = 700, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(classes)]
    y = rng.integers(0, classes, rows)
    logits = rng.normal(0, 1, (rows, classes)) + 1.5 * np.eye(classes)[y]  # informative, not perfect
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return [names[i] for i in y], p.astype("float32"), names


def _ece_by_hand(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        conf = p.max(axis=1)
        inside = (conf >= low) & ((conf < high) if b < bins - 1 else (conf <= high))
        if inside.any():
            gap = abs(np.mean(p[inside].argmax(axis=1) == y[inside]) - np.mean(conf[inside]))
            total += gap * inside.sum() / len(y)
    return total


@pytest.mark.parametrize("classes", [2, 4])
def test_classification_metrics_equal_scikit_learns(classes: int) -> None:
    truth, probabilities, names = _predictions(classes)
    scores, details = metrics.classification(truth, probabilities, names)
    y = np.array([names.index(t) for t in truth])
    p = np.clip(probabilities.astype("float64"), 1e-7, 1)
    p /= p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "log_loss": skm.log_loss(y, p),
        "ece": _ece_by_hand(y, p),
    }
    if classes == 2:
        expected |= {
            "roc_auc": skm.roc_auc_score(y, p[:, 1]),
            "average_precision": skm.average_precision_score(y, p[:, 1]),
            "brier": skm.brier_score_loss(y, p[:, 1]),
        }
    else:
        onehot = np.eye(classes)[y]
        expected |= {
            "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr"),
            "average_precision": skm.average_precision_score(onehot, p, average="macro"),
            "brier": np.mean(np.sum((p - onehot) ** 2, axis=1)),
        }
    assert {k: scores[k] for k in expected} == pytest.approx(expected, abs=1e-6)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred)
    for i, name in enumerate(names):
        row = scores["per_class"][name]
        assert [row["precision"], row["recall"], row["f1"]] == pytest.approx([precision[i], recall[i], f1[i]], abs=1e-6)
        assert row["support"] == support[i]
    assert details["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert sum(details["calibration"]["count"]) == len(y)
    assert len(details["pr"]) == (1 if classes == 2 else classes)


def test_gain_and_lift_of_a_perfect_ranking_and_of_a_random_one() -> None:
    positive = np.array([1.0] * 20 + [0.0] * 80)
    perfect = metrics.gains(positive, np.linspace(1, 0, 100))
    share = np.array(perfect["share"])
    assert np.allclose(perfect["gain"], np.minimum(share / 0.2, 1.0))
    assert perfect["lift"][0] == pytest.approx(5.0)  # the top 1% are all positives: 5x the 20% base rate
    noise = metrics.gains(positive, np.random.default_rng(0).random(100))
    assert noise["gain"][-1] == 1.0 and noise["lift"][-1] == pytest.approx(1.0)


def test_regression_metrics_equal_scikit_learns_and_the_deciles_cover_every_case() -> None:
    rng = np.random.default_rng(1)
    y = rng.lognormal(3, 1, 500)
    predicted = y * rng.normal(1, 0.1, 500) + 2.0
    scores, details = metrics.regression(y, predicted)
    expected = {
        "rmse": np.sqrt(skm.mean_squared_error(y, predicted)),
        "mae": skm.mean_absolute_error(y, predicted),
        "r2": skm.r2_score(y, predicted),
    }
    assert {k: scores[k] for k in expected} == pytest.approx(expected, abs=1e-6)
    assert sum(details["residuals"]["counts"]) == 500
    deciles = details["deciles"]
    assert len(deciles) == 10 and deciles[0]["low"] == y.min() and deciles[-1]["high"] == y.max()
    assert np.mean([d["mae"] for d in deciles]) == pytest.approx(scores["mae"], rel=1e-9)  # 50 cases in each


def test_eval_json_returns_every_classification_metric_on_the_test_split_and_on_an_input_file(churn_run) -> None:
    shown = factories.cli_json(churn_run["home"], "eval", str(churn_run["run_id"]))
    scored = factories.cli_json(churn_run["home"], "eval", str(churn_run["run_id"]), "--input", str(churn_run["csv"]))
    for result in (shown, scored):
        m = result["metrics"]
        assert {"average_precision", "ece", "brier", "roc_auc", "per_class"} <= set(m), sorted(m)
        assert set(m["per_class"]) == {"no", "yes"} and 0 <= m["ece"] <= 1 and 0 <= m["brier"] <= 1
