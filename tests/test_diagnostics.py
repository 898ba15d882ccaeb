"""Diagnostics in plain words: a run that only guesses, one that overfits, one a trivial rule beats."""

from __future__ import annotations

import math

from backend import i18n as messages
from backend.jobs.diagnostics import diagnose


def _ids(findings: list[dict]) -> list[str]:
    return [f["id"] for f in findings]


def test_a_loss_stuck_at_ln_of_the_classes_is_not_learning() -> None:
    # The reference material's run: loss 2.3025 every epoch on 10 classes, presented as a success.
    curves = {"loss": [2.3026, 2.3025, 2.3025], "val_loss": [2.3026, 2.3026, 2.3025]}
    findings = diagnose(
        curves, task="classification", classes=10, metrics={"accuracy": 0.1}, baseline={"accuracy": 0.1}
    )
    assert _ids(findings) == ["not_learning", "worse_than_baseline"]
    assert findings[0]["params"] == {"loss": 2.3025, "chance": round(math.log(10), 4)}


def test_validation_loss_rising_while_training_loss_falls_is_overfitting() -> None:
    curves = {"loss": [0.6, 0.4, 0.3, 0.2, 0.1], "val_loss": [0.55, 0.45, 0.5, 0.6, 0.7]}
    findings = diagnose(curves, task="classification", classes=2, metrics={"accuracy": 0.9}, baseline={"accuracy": 0.6})
    assert findings == [{"id": "overfitting", "severity": "warning", "params": {"best": 2, "epochs": 5}}]


def test_a_text_run_whose_validation_loss_climbs_until_early_stopping_ends_it_is_overfitting() -> None:
    """The reviews sample's shape: the best epoch, then three of climbing validation loss, 5% above the best."""
    curves = {
        "loss": [0.62, 0.45, 0.29, 0.18, 0.11, 0.06],
        "val_loss": [0.571, 0.489, 0.487, 0.493, 0.501, 0.511],
    }
    findings = diagnose(curves, task="text-classification", classes=2, metrics={}, baseline={})
    assert findings == [{"id": "overfitting", "severity": "warning", "params": {"best": 3, "epochs": 6}}]
    wobbling = {"loss": curves["loss"], "val_loss": [0.571, 0.489, 0.487, 0.501, 0.493, 0.499]}  # no climb
    assert diagnose(wobbling, task="text-classification", classes=2, metrics={}, baseline={}) == []


def test_trees_that_overfit_are_told_the_trees_remedies() -> None:
    curves = {"loss": [0.6, 0.4, 0.3, 0.2, 0.1], "val_loss": [0.55, 0.45, 0.5, 0.6, 0.7]}
    findings = diagnose(curves, task="regression", classes=0, metrics={}, baseline={}, trees=True)
    assert [f["id"] for f in findings] == ["overfitting_trees"]
    for lang in ("en", "zh"):
        text = messages.render(lang, "diagnosis.overfitting_trees", **findings[0]["params"])
        assert "max_depth" in text and "dropout" not in text.lower()


def test_a_healthy_run_has_no_findings() -> None:
    curves = {"loss": [0.6, 0.4, 0.3], "val_loss": [0.58, 0.42, 0.33]}
    assert (
        diagnose(curves, task="classification", classes=2, metrics={"accuracy": 0.9}, baseline={"accuracy": 0.6}) == []
    )


def test_a_regression_worse_than_the_mean_is_reported() -> None:
    findings = diagnose(
        {"loss": [1.0, 1.0]}, task="regression", classes=0, metrics={"rmse": 12.0}, baseline={"rmse": 10.0}
    )
    assert _ids(findings) == ["worse_than_baseline_reg"]


def test_every_finding_reads_in_both_languages() -> None:
    findings = diagnose(
        {"loss": [0.7, 0.69, 0.69, 0.69], "val_loss": [0.5, 0.6, 0.7, 0.8]},
        task="classification",
        classes=2,
        metrics={"accuracy": 0.5},
        baseline={"accuracy": 0.5},
    )
    findings += diagnose({"loss": [1.0]}, task="regression", classes=0, metrics={"rmse": 2.0}, baseline={"rmse": 1.0})
    findings += diagnose({"loss": [1.0, 9.0]}, task="regression", classes=0, metrics={}, baseline={}, learning_rate=10)
    findings += diagnose(
        {"loss": [1.0]},
        task="recommendation",
        classes=0,
        metrics={"ndcg_at_k": 0.1, "k": 10},
        baseline={"ndcg_at_k": 0.2},
    )
    findings += diagnose(
        {"loss": [1.0]}, task="text-generation", classes=0, metrics={"perplexity": 9.0}, baseline={"perplexity": 8.0}
    )
    assert [f["id"] for f in findings] == [
        "not_learning",
        "overfitting",
        "worse_than_baseline",
        "worse_than_baseline_reg",
        "exploding",
        "worse_than_popularity",
        "worse_than_unigram",
    ]
    for finding in findings:
        for lang in ("en", "zh"):
            text = messages.render(lang, f"diagnosis.{finding['id']}", **finding["params"])
            assert "{" not in text and not text.startswith("diagnosis.")


def test_a_loss_far_above_guessing_is_exploding_not_stuck() -> None:
    findings = diagnose(
        {"loss": [0.9, 400.0, 912.4]}, task="text-classification", classes=2, metrics={}, baseline={}, learning_rate=10
    )
    assert findings == [{"id": "exploding", "severity": "warning", "params": {"first": 0.9, "last": 912.4, "lr": 10}}]
