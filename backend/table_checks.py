"""Quality checks on tables. Each takes the frame, the target column (or None) and the task, and returns
one result made by `result()`: its message is rendered from the catalog (backend/check_messages.py), so
the CLI's English and the dashboard's Chinese come from one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from backend import messages

MIN_ROWS = 30
MIN_ROWS_PER_CLASS = 2
MISSING_WARN_SHARE = 0.2


def result(
    id: str, severity: str, passed: bool, outcome: str, evidence: dict[str, Any] | None = None, **params: Any
) -> dict[str, Any]:
    key = f"check.{id}.{outcome}"
    return {
        "id": id,
        "severity": severity,
        "passed": passed,
        "message": messages.render("en", key, **params),
        "key": key,
        "params": params,
        "evidence": evidence or {},
    }


def _names(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")


# Each check takes the frame, the target column (or None) and the task, and returns one result.
def too_few_rows(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    n = len(frame)
    ok = n >= MIN_ROWS
    return result("too_few_rows", "blocker", ok, "ok" if ok else "fail", {"rows": n}, rows=n, min=MIN_ROWS)


def target_usable(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    if target is None:
        return result("target_usable", "blocker", False, "none")
    col = frame[target]
    if col.dropna().empty:
        return result("target_usable", "blocker", False, "empty", target=target)
    if task == "regression" and not pd.api.types.is_numeric_dtype(col):
        return result("target_usable", "blocker", False, "not_numeric", target=target)
    missing = int(col.isna().sum())
    if missing:
        return result("target_usable", "warning", False, "missing", {"missing": missing}, target=target, n=missing)
    return result("target_usable", "blocker", True, "ok", target=target)


def too_few_classes(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    if target is None or task != "classification":
        return result("too_few_classes", "blocker", True, "na")
    counts = frame[target].dropna().astype(str).value_counts()
    evidence = {"classes": {str(k): int(v) for k, v in counts.head(50).items()}}
    if len(counts) < 2:
        return result("too_few_classes", "blocker", False, "one", evidence, target=target, n=len(counts))
    rare = [str(k) for k, v in counts.items() if v < MIN_ROWS_PER_CLASS]
    if rare:
        return result(
            "too_few_classes",
            "blocker",
            False,
            "rare",
            evidence,
            n=len(rare),
            min=MIN_ROWS_PER_CLASS,
            names=_names(rare),
        )
    return result("too_few_classes", "blocker", True, "ok", evidence, n=len(counts), smallest=int(counts.min()))


def missing_values(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    counts = frame.isna().sum()
    share = counts / max(1, len(frame))
    heavy = [str(c) for c, v in share.items() if v > MISSING_WARN_SHARE and c != target]
    evidence = {"missing_by_column": {str(c): int(v) for c, v in counts.items() if v > 0}}
    if heavy:
        return result(
            "missing_values",
            "warning",
            False,
            "heavy",
            evidence,
            n=len(heavy),
            share=f"{MISSING_WARN_SHARE:.0%}",
            names=_names(heavy),
        )
    some = len(evidence["missing_by_column"])
    return result("missing_values", "warning", True, "some" if some else "ok", evidence, n=some)


def duplicate_rows(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    dup = frame.duplicated()
    n = int(dup.sum())
    evidence = {"duplicates": n, "example_rows": frame.index[dup][:5].tolist()}
    if n:
        return result("duplicate_rows", "warning", False, "fail", evidence, n=n, share=f"{n / len(frame):.1%}")
    return result("duplicate_rows", "warning", True, "ok", evidence)


def constant_columns(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    constant = [str(c) for c in frame.columns if c != target and frame[c].nunique(dropna=False) <= 1]
    if constant:
        return result(
            "constant_columns", "info", False, "fail", {"columns": constant}, n=len(constant), names=_names(constant)
        )
    return result("constant_columns", "info", True, "ok")


CHECKS: list[Callable[[pd.DataFrame, str | None, str | None], dict[str, Any]]] = [
    target_usable,
    too_few_rows,
    too_few_classes,
    missing_values,
    duplicate_rows,
    constant_columns,
]
