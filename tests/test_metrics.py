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


def test_each_segment_metric_equals_scikit_learns_on_its_rows_and_the_worst_comes_first() -> None:
    y, p, names = _predictions(2, rows=900)
    rng = np.random.default_rng(3)
    region = rng.choice(["north", "south", "east"], len(y))
    score = p[:, 1].astype("float64")
    score[region == "east"] = rng.uniform(size=(region == "east").sum())  # no better than chance there
    actual = np.array(y, dtype=object)
    predicted = np.where(score >= 0.5, "c1", "c0").astype(object)
    found = metrics.segments(
        metrics.segment_groups(region), actual, predicted, regression=False, positive=("c1", score)
    )
    assert found["metric"] == "roc_auc" and found["segments"][0]["segment"] == "east"
    for entry in found["segments"]:
        rows = region == entry["segment"]
        assert entry["rows"] == rows.sum()
        assert entry["roc_auc"] == pytest.approx(skm.roc_auc_score(actual[rows] == "c1", score[rows]), abs=1e-6)
        assert entry["accuracy"] == pytest.approx(skm.accuracy_score(actual[rows], predicted[rows]), abs=1e-6)
        f1 = skm.f1_score(actual[rows], predicted[rows], average="macro", zero_division=0)
        assert entry["f1_macro"] == pytest.approx(f1, abs=1e-6)
        for name in ("roc_auc", "accuracy", "f1_macro", "positive_rate"):
            low, high = entry["interval"][name]
            assert low <= entry[name] <= high and high - low < 0.25
    assert [e["roc_auc"] for e in found["segments"]] == sorted(e["roc_auc"] for e in found["segments"])


def test_the_bootstrap_auc_and_f1_of_each_resample_equal_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, (5, 300))
    score = rng.integers(0, 20, (5, 300)) / 20  # many ties
    want = [skm.roc_auc_score(label[i], score[i]) for i in range(5)]
    np.testing.assert_allclose(metrics._auc_rows(label.astype("float64"), score), want, atol=1e-9)
    actual, predicted = rng.choice(["a", "b", "c"], (5, 300)), rng.choice(["a", "b", "c", "d"], (5, 300))
    classes = np.array(["a", "b", "c", "d"])
    want = [skm.f1_score(actual[i], predicted[i], average="macro", labels=classes, zero_division=0) for i in range(5)]
    np.testing.assert_allclose(metrics._f1_macro_rows(actual, predicted, classes), want, atol=1e-9)


def test_regression_segments_cut_a_number_into_equal_ranges_and_pool_small_ones() -> None:
    rng = np.random.default_rng(1)
    size = rng.lognormal(3, 1, 2000)
    actual = size * 2 + rng.normal(0, 1, 2000) * (1 + (size > np.quantile(size, 0.8)) * 9)  # worse on big ones
    predicted = size * 2
    groups = metrics.segment_groups(size)
    assert len(set(groups)) == metrics.SEGMENT_BINS
    low, high = (float(x) for x in min(groups, key=lambda g: float(g[1:].split(",")[0]))[1:-1].split(","))
    assert low == float(f"{size.min():.4g}") and high < np.quantile(size, 0.21), "named by the values inside"
    found = metrics.segments(groups, actual, predicted, regression=True)
    worst = found["segments"][0]
    largest = max(set(groups), key=lambda g: float(g[1:].split(",")[0]))
    assert found["metric"] == "rmse" and worst["segment"] == largest
    rows = groups == worst["segment"]
    assert worst["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(actual[rows], predicted[rows])), abs=1e-6)
    assert worst["r2"] == pytest.approx(skm.r2_score(actual[rows], predicted[rows]), abs=1e-6)
    plans = np.array(["basic"] * 500 + ["plus"] * 495 + ["rare"] * 3 + ["odd"] * 2, dtype=object)
    assert set(metrics.segment_groups(plans)) == {"basic", "plus", metrics.OTHER}
    assert set(metrics.segment_groups(plans[:-2])) == {"basic", "plus", "rare"}, "one small segment keeps its name"
    with_gaps = metrics.segment_groups(np.where(np.arange(1000) % 10 == 0, None, plans).astype(object))
    assert (with_gaps == metrics.MISSING).sum() == 100


def test_eval_json_returns_every_classification_metric_on_the_test_split_and_on_an_input_file(churn_run) -> None:
    shown = factories.cli_json(churn_run["home"], "eval", str(churn_run["run_id"]))
    scored = factories.cli_json(churn_run["home"], "eval", str(churn_run["run_id"]), "--input", str(churn_run["csv"]))
    for result in (shown, scored):
        m = result["metrics"]
        assert {"average_precision", "ece", "brier", "roc_auc", "per_class"} <= set(m), sorted(m)
        assert set(m["per_class"]) == {"no", "yes"} and 0 <= m["ece"] <= 1 and 0 <= m["brier"] <= 1


def test_eval_by_a_column_slices_the_test_split_and_an_input_file(churn_run, price_run) -> None:
    run, home = str(churn_run["run_id"]), churn_run["home"]
    shown = factories.cli_json(home, "eval", run, "--by", "plan")["metrics"]
    found = shown["segments"]
    assert found["column"] == "plan" and found["metric"] == "roc_auc"
    assert {e["segment"] for e in found["segments"]} == {"basic", "plus", "premium"}
    assert sum(e["rows"] for e in found["segments"]) == shown["test_rows"] == found["overall"]["rows"]
    assert found["overall"]["accuracy"] == pytest.approx(shown["accuracy"], abs=1e-6)
    assert found["overall"]["roc_auc"] == pytest.approx(shown["roc_auc"], abs=1e-6)
    worst_first = [e["roc_auc"] for e in found["segments"] if e["roc_auc"] is not None]
    assert worst_first == sorted(worst_first)

    scored = factories.cli_json(home, "eval", run, "--input", str(churn_run["csv"]), "--by", "charges")["metrics"]
    ranges = scored["segments"]["segments"]
    assert len(ranges) == metrics.SEGMENT_BINS and sum(e["rows"] for e in ranges) == scored["test_rows"]
    assert scored["segments"]["overall"]["accuracy"] == pytest.approx(scored["accuracy"], abs=1e-6)

    prices = factories.cli_json(price_run["home"], "eval", str(price_run["run_id"]), "--by", "city")["metrics"]
    assert prices["segments"]["metric"] == "rmse"
    assert prices["segments"]["overall"]["rmse"] == pytest.approx(prices["rmse"], rel=1e-6)
    text = factories.cli(price_run["home"], "eval", str(price_run["run_id"]), "--by", "city").stdout
    assert "by city (worst rmse first; 95% bootstrap intervals):" in text and "north (" in text

    wrong = factories.cli(home, "eval", run, "--by", "colour")
    assert wrong.returncode == 2 and "no column 'colour'" in wrong.stderr and "plan" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_the_tolerance_band_counts_predictions_within_units_or_a_share_of_the_truth(price_run) -> None:
    actual, predicted = np.array([100.0, 200.0, 50.0, 80.0]), np.array([105.0, 170.0, 50.0, 100.0])
    units = metrics.within_tolerance(actual, predicted, 10, relative=False)
    assert (units["inside"], units["share_below"], units["share_above"]) == (2, 0.25, 0.25)
    share = metrics.within_tolerance(actual, predicted, 0.2, relative=True)  # ±20, ±40, ±10, ±16
    assert share["inside"] == 3 and share["share_above"] == 0.25

    home, run = price_run["home"], str(price_run["run_id"])
    shown = factories.cli_json(home, "eval", run, "--tolerance", "15%")["metrics"]["tolerance_band"]
    assert shown["relative"] and shown["tolerance"] == pytest.approx(0.15)
    assert shown["rows"] == price_run["metrics"]["test_rows"]
    text = factories.cli(home, "eval", run, "--tolerance", "500").stdout
    assert "tolerance_band:" in text and "share_inside:" in text
    for bad in ("-5", "ten", "0%"):
        done = factories.cli(home, "eval", run, "--tolerance", bad)
        assert done.returncode == 2 and "is not a positive number" in done.stderr, done.stderr
