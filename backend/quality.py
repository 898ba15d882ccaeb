"""Quality checks on a dataset version: the gate before training.

Each check returns a dict that the CLI prints as JSON and the dashboard renders:
`id`, `severity` (blocker | warning | info), `passed`, `message` (one line), `explanation` (plain
words for a stakeholder), `evidence` (counts and examples) and `fix` (what to do about it).
A failing blocker closes the gate: training is refused unless the user types an override reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from backend.datasets import load_frame
from db import DatasetVersion, QualityReport, Store

MIN_ROWS = 30
MIN_ROWS_PER_CLASS = 2
MISSING_WARN_SHARE = 0.2


def _check(
    id: str,
    severity: str,
    passed: bool,
    message: str,
    explanation: str,
    fix: str,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "severity": severity,
        "passed": passed,
        "message": message,
        "explanation": explanation,
        "fix": fix,
        "evidence": evidence or {},
    }


# Each check takes the frame, the target column (or None) and the task, and returns one result.
def too_few_rows(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    n = len(frame)
    return _check(
        "too_few_rows",
        "blocker",
        n >= MIN_ROWS,
        f"{n} rows; at least {MIN_ROWS} are needed." if n < MIN_ROWS else f"{n} rows.",
        "A model learns from examples; with very few rows it can only memorise them, and the test "
        "split would be too small to say how well it works.",
        f"Collect more data: at least {MIN_ROWS} rows, ideally thousands.",
        {"rows": n},
    )


def target_usable(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    fix = "Pick another target column on the Data page, or fill in the missing targets and upload again."
    if target is None:
        return _check(
            "target_usable",
            "blocker",
            False,
            "No target column chosen.",
            "The model needs to know which column to predict.",
            "Pick the target on the Data page.",
        )
    col = frame[target]
    present = col.dropna()
    if present.empty:
        return _check(
            "target_usable",
            "blocker",
            False,
            f"Target '{target}' is empty in every row.",
            "There is nothing to learn from: no row says what the answer is.",
            fix,
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(col):
        return _check(
            "target_usable",
            "blocker",
            False,
            f"Target '{target}' is not numeric, so it cannot be predicted as a number.",
            "Regression predicts a quantity, such as a price.",
            "Choose classification for this column, or pick a numeric target.",
        )
    missing = int(col.isna().sum())
    return _check(
        "target_usable",
        "warning" if missing else "blocker",
        missing == 0,
        f"Target '{target}' is missing in {missing} rows; they will be left out of training."
        if missing
        else f"Target '{target}' is usable.",
        "Rows without a known answer cannot teach the model anything.",
        fix,
        {"missing": missing},
    )


def too_few_classes(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    if target is None or task != "classification":
        return _check("too_few_classes", "blocker", True, "Not a classification target.", "", "")
    counts = frame[target].dropna().astype(str).value_counts()
    rare = {str(k): int(v) for k, v in counts.items() if v < MIN_ROWS_PER_CLASS}
    ok = len(counts) >= 2 and not rare
    if len(counts) < 2:
        message = f"Target '{target}' has {len(counts)} class; a classifier needs at least 2."
    elif rare:
        message = f"{len(rare)} classes have fewer than {MIN_ROWS_PER_CLASS} rows: {', '.join(list(rare)[:5])}."
    else:
        message = f"{len(counts)} classes, the smallest with {int(counts.min())} rows."
    return _check(
        "too_few_classes",
        "blocker",
        ok,
        message,
        "To learn to tell classes apart the model needs several examples of each, and the test split needs some too.",
        "Collect more examples of the rare classes, merge them into a broader class, or drop them.",
        {"classes": {str(k): int(v) for k, v in counts.head(50).items()}},
    )


def missing_values(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    share = frame.isna().mean()
    heavy = {str(c): round(float(v), 4) for c, v in share.items() if v > MISSING_WARN_SHARE and c != target}
    any_missing = {str(c): int(v) for c, v in frame.isna().sum().items() if v > 0}
    return _check(
        "missing_values",
        "warning",
        not heavy,
        f"{len(heavy)} columns are more than {MISSING_WARN_SHARE:.0%} empty: {', '.join(list(heavy)[:5])}."
        if heavy
        else f"{len(any_missing)} columns have some missing values."
        if any_missing
        else "No missing values.",
        "Empty cells are filled with a typical value (the median, or an 'unknown' category) so the "
        "model can use the row, but a mostly empty column carries little information.",
        "Drop columns that are mostly empty, or collect the missing values.",
        {"missing_by_column": any_missing, "heavy": heavy},
    )


def duplicate_rows(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    dup = frame.duplicated()
    n = int(dup.sum())
    return _check(
        "duplicate_rows",
        "warning",
        n == 0,
        f"{n} rows ({n / max(1, len(frame)):.1%}) are exact copies of another row." if n else "No duplicate rows.",
        "Copies can land in both the training and the test split, which makes the model look better than it is.",
        "Remove the duplicate rows (keep the first of each).",
        {"duplicates": n, "examples": frame[dup].head(5).index.tolist()},
    )


def constant_columns(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    constant = [str(c) for c in frame.columns if c != target and frame[c].nunique(dropna=False) <= 1]
    return _check(
        "constant_columns",
        "info",
        not constant,
        f"{len(constant)} columns have the same value in every row: {', '.join(constant[:5])}."
        if constant
        else "No constant columns.",
        "A column that never changes cannot help tell rows apart.",
        "Drop these columns; they are ignored in training either way.",
        {"columns": constant},
    )


CHECKS: list[Callable[[pd.DataFrame, str | None, str | None], dict[str, Any]]] = [
    too_few_rows,
    target_usable,
    too_few_classes,
    missing_values,
    duplicate_rows,
    constant_columns,
]


def run_checks(frame: pd.DataFrame, *, target: str | None, task: str | None) -> list[dict[str, Any]]:
    return [check(frame, target, task) for check in CHECKS]


def gate_passed(checks: list[dict[str, Any]]) -> bool:
    return not any(c["severity"] == "blocker" and not c["passed"] for c in checks)


def blockers(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in checks if c["severity"] == "blocker" and not c["passed"]]


def check_version(
    store: Store, *, version: DatasetVersion, target: str | None = None, task: str | None = None
) -> QualityReport:
    """Run the checks on a version (its chosen target and task unless given) and record the report."""
    target = target if target is not None else version.target
    task = task if task is not None else version.task
    checks = run_checks(load_frame(version), target=target, task=task)
    return store.add_quality_report(version_id=version.id, target=target, passed=gate_passed(checks), checks=checks)
