"""The first quality checks and the gate they form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend import i18n as messages
from backend.errors import QualityGateBlocked
from backend.jobs import runs
from backend.quality import gate as quality
from tests import factories


def _by_id(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, dict]:
    return {c.id: c for c in quality.run_checks(frame, target=target, task=task)}


def test_a_clean_dataset_raises_no_blocker_or_warning() -> None:
    checks = quality.run_checks(factories.churn_frame(), target="churn", task="classification")
    assert [c.id for c in checks if not c.passed] == []
    assert quality.gate_passed(checks)


def test_too_few_rows_blocks() -> None:
    check = _by_id(factories.churn_frame(rows=10), "churn", "classification")["too_few_rows"]
    assert (check.severity, check.passed, check.message) == (
        "blocker",
        False,
        "10 rows; at least 30 are needed.",
    )


def test_a_single_class_target_blocks() -> None:
    frame = factories.churn_frame().assign(churn="no")
    check = _by_id(frame, "churn", "classification")["too_few_classes"]
    assert (check.passed, check.message) == (
        False,
        "Target 'churn' has only 1 class; a classifier needs at least 2.",
    )


def test_a_class_with_a_single_row_blocks() -> None:
    frame = factories.churn_frame()
    frame.loc[0, "churn"] = "maybe"
    check = _by_id(frame, "churn", "classification")["too_few_classes"]
    assert (check.passed, check.message) == (False, "Classes with fewer than 2 rows (1): maybe.")


def test_a_text_target_for_regression_blocks() -> None:
    check = _by_id(factories.churn_frame(), "churn", "regression")["target_usable"]
    assert (check.severity, check.passed) == ("blocker", False)


def test_no_target_blocks() -> None:
    assert _by_id(factories.churn_frame(), None, None)["target_usable"].message == "No target column chosen."


def test_duplicate_rows_are_counted() -> None:
    frame = factories.churn_frame()
    frame = pd.concat([frame, frame.head(3)], ignore_index=True)
    check = _by_id(frame, "churn", "classification")["duplicate_rows"]
    assert (check.passed, check.evidence["duplicates"], check.message) == (
        False,
        3,
        "3 rows (1.2%) are exact copies of another row.",
    )


def test_mostly_empty_columns_are_a_warning_not_a_blocker() -> None:
    frame = factories.churn_frame()
    frame.loc[5:120, "charges"] = None
    checks = _by_id(frame, "churn", "classification")
    assert (checks["missing_values"].passed, checks["missing_values"].params["names"]) == (False, "charges")
    assert checks["missing_values"].evidence["missing_by_column"] == {"charges": 116}
    assert quality.gate_passed(list(checks.values()))


def test_constant_columns_are_noted() -> None:
    check = _by_id(factories.churn_frame().assign(country="NL"), "churn", "classification")["constant_columns"]
    assert (check.severity, check.evidence) == ("info", {"columns": ["country"]})


def test_every_check_message_exists_in_both_languages() -> None:
    frames = [
        (factories.churn_frame(rows=10).assign(churn="x"), "churn", "classification"),
        (factories.churn_frame(), None, None),
        (factories.churn_frame(), "churn", "regression"),
    ]
    for frame, target, task in frames:
        for check in quality.run_checks(frame, target=target, task=task):
            for lang in ("en", "zh"):
                text = messages.render(lang, check.key, **check.params)
                assert text != check.key and "{" not in text


def test_training_is_refused_while_a_blocker_fails(store) -> None:
    _, version = factories.add_frame(store, factories.churn_frame(rows=10))
    with pytest.raises(QualityGateBlocked, match=r"The quality gate blocks training: 10 rows; at least 30"):
        runs.start_training(store, version=version)
    assert store.list_runs() == []


def test_an_override_reason_lets_training_start_and_is_stored(store) -> None:
    _, version = factories.add_frame(store, factories.churn_frame(rows=10))
    run = runs.start_training(store, version=version, override_reason="  smoke test of the pipeline ")
    assert (run.status, run.override_reason) == ("queued", "smoke test of the pipeline")


def test_the_quality_report_is_recorded(store) -> None:
    _, version = factories.add_frame(store, factories.churn_frame())
    report = quality.check_version(store, version=version)
    assert quality.Report.of(store.latest_quality_report(version.id, "churn")) == report
    assert report.passed is True


def _texts_only() -> pd.DataFrame:
    words = "the coffee was warm and the service quick but the cake was dry and sweet".split()
    rng = np.random.default_rng(0)
    return pd.DataFrame({"text": [" ".join(rng.choice(words, 12)) for _ in range(300)]})


def test_a_text_file_without_a_target_passes_the_gate_for_text_generation(store) -> None:
    """Generation learns the texts themselves: "No target column chosen" blocked it before."""
    frame = _texts_only()
    generation = quality.run_checks(frame, target=None, task="text-generation", kind="text")
    classification = quality.run_checks(frame, target=None, task="text-classification", kind="text")
    assert [c.id for c in quality.blockers(generation)] == []
    assert [c.id for c in quality.blockers(classification)] == ["target_usable"]
    _, version = factories.add_frame(store, frame, name="texts", target=None)
    assert runs.start_training(store, version=version, task="text-generation").status == "queued"


def test_the_target_checks_a_task_can_skip_are_checks_that_exist() -> None:
    names = {check.__name__ for checks in quality.CHECKS_BY_KIND.values() for check in checks}
    assert quality.TARGET_CHECKS <= names
