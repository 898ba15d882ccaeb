"""Quality checks on ratings: user, item and rating (or implicit interaction) columns.

Same contract as the table checks (quality/tables.py); the columns are found by name (`data.roles`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from backend import data
from backend.quality.common import (
    Check,
    CheckResult,
    Context,
    drop_rows,
    result,
    too_few_rows,
)

MIN_PER_USER = 5
MIN_PER_ITEM = 5
EXAMPLES = 5


def _roles(frame: pd.DataFrame) -> dict[str, str | None]:
    columns = [
        {"name": c, "kind": "numeric" if pd.api.types.is_numeric_dtype(frame[c]) else "other"} for c in frame.columns
    ]
    return data.roles(columns)


def ratings_columns(ctx: Context) -> CheckResult:
    frame = ctx.frame
    found = _roles(frame)
    missing = [role for role in ("user", "item") if found[role] is None]
    if missing:
        return result("ratings_columns", "blocker", False, "fail", {"found": found}, missing=", ".join(missing))
    return result(
        "ratings_columns",
        "blocker",
        True,
        "ok",
        {"found": found},
        user=found["user"],
        item=found["item"],
        rating=found["rating"] or "—",
    )


def sparse_users_items(ctx: Context) -> CheckResult:
    frame = ctx.frame
    found = _roles(frame)
    if found["user"] is None or found["item"] is None:
        return result("sparse_users_items", "warning", True, "na")
    per_user = frame[found["user"]].value_counts()
    per_item = frame[found["item"]].value_counts()
    few_users, few_items = int((per_user < MIN_PER_USER).sum()), int((per_item < MIN_PER_ITEM).sum())
    evidence = {
        "users": int(len(per_user)),
        "items": int(len(per_item)),
        "ratings_per_user": {f"p{q}": float(per_user.quantile(q / 100)) for q in (5, 50, 95)},
        "ratings_per_item": {f"p{q}": float(per_item.quantile(q / 100)) for q in (5, 50, 95)},
        "density": float(len(frame) / max(1, len(per_user) * len(per_item))),
    }
    if few_users or few_items:
        return result(
            "sparse_users_items",
            "warning",
            False,
            "fail",
            evidence,
            users=few_users,
            items=few_items,
            min_user=MIN_PER_USER,
            min_item=MIN_PER_ITEM,
        )
    return result("sparse_users_items", "warning", True, "ok", evidence, users=len(per_user), items=len(per_item))


def rating_scale(ctx: Context) -> CheckResult:
    frame = ctx.frame
    column = _roles(frame)["rating"]
    if column is None:
        return result("rating_scale", "info", True, "implicit")
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    counts = values.value_counts().sort_index()
    evidence: dict[str, Any] = {"values": {str(k): int(v) for k, v in counts.head(20).items()}}
    return result(
        "rating_scale",
        "info",
        True,
        "ok",
        evidence,
        column=column,
        min=float(values.min()),
        max=float(values.max()),
        distinct=int(values.nunique()),
    )


def duplicate_ratings(ctx: Context) -> CheckResult:
    frame = ctx.frame
    found = _roles(frame)
    if found["user"] is None or found["item"] is None:
        return result("duplicate_ratings", "warning", True, "na")
    dup = frame.duplicated(subset=[found["user"], found["item"]], keep="last")
    rows = np.flatnonzero(dup)
    evidence = {"duplicates": int(len(rows)), "example_rows": rows[:EXAMPLES].tolist()}
    if len(rows):
        return result(
            "duplicate_ratings",
            "warning",
            False,
            "fail",
            evidence,
            n=int(len(rows)),
            remedy=drop_rows(rows),
        )
    return result("duplicate_ratings", "warning", True, "ok", evidence)


CHECKS: list[Check] = [
    ratings_columns,
    too_few_rows,
    sparse_users_items,
    rating_scale,
    duplicate_ratings,
]
