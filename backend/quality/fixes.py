"""One-click fixes and relabelling.

Versions are immutable: every fix writes a new version whose parent is the version it fixed, with a note of
what changed, and leaves the parent untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from backend import auth, config, data
from backend.errors import BadInput, NotFound
from backend.i18n import Message
from backend.quality import gate
from db import DatasetVersion, Store

REMEDY_ACTIONS = (
    "drop_duplicate_rows",
    "drop_columns",
    "impute_missing",
    "drop_missing_rows",
    "drop_rows",
    "coerce_numeric",
)


# Each action takes the frame and its params and returns the new frame and a note of what it did.
def _drop_duplicate_rows(frame: pd.DataFrame, _params: dict[str, Any]) -> tuple[pd.DataFrame, Message]:
    kept = frame.drop_duplicates(keep="first")
    return kept, Message.counted("note.dropped_duplicates", len(frame) - len(kept))


def _columns(frame: pd.DataFrame, params: dict[str, Any]) -> list[str]:
    columns = list(params.get("columns") or [])
    unknown = [c for c in columns if c not in frame.columns]
    if not columns or unknown:
        raise BadInput("error.fix.unknown_columns", unknown=unknown or columns)
    return columns


def _drop_columns(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, Message]:
    columns = _columns(frame, params)
    return frame.drop(columns=columns), Message.of("note.dropped_columns", columns=", ".join(columns))


def _impute_missing(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, Message]:
    """Numbers get the median, categories the most common value."""
    frame = frame.copy()
    filled = 0
    for name in _columns(frame, params):
        col = frame[name]
        value = col.median() if pd.api.types.is_numeric_dtype(col) else col.mode(dropna=True).iloc[0]
        filled += int(col.isna().sum())
        frame[name] = col.fillna(value)
    return frame, Message.of("note.imputed", filled=filled, columns=", ".join(_columns(frame, params)))


def _drop_missing_rows(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, Message]:
    columns = _columns(frame, params)
    kept = frame.dropna(subset=columns)
    return kept, Message.counted("note.dropped_missing", len(frame) - len(kept), columns=", ".join(columns))


def _drop_rows(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, Message]:
    rows = sorted({int(r) for r in params.get("rows") or [] if 0 <= int(r) < len(frame)})
    if not rows:
        raise BadInput("error.fix.no_rows_to_drop")
    return frame.drop(index=frame.index[rows]), Message.counted("note.dropped_rows", len(rows))


def _coerce_numeric(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, Message]:
    """Columns of numbers with stray text ("n/a", "-"): the text becomes a missing value."""
    frame = frame.copy()
    cleared = 0
    for name in _columns(frame, params):
        numbers = data.parse_numbers(frame[name])  # "$1,234.50" becomes 1234.5, not a missing value
        cleared += int((frame[name].notna() & numbers.isna()).sum())
        frame[name] = numbers
    return (
        frame,
        Message.of("note.coerced", columns=", ".join(_columns(frame, params)), cleared=cleared),
    )


_APPLY = {
    "drop_duplicate_rows": _drop_duplicate_rows,
    "drop_columns": _drop_columns,
    "impute_missing": _impute_missing,
    "drop_missing_rows": _drop_missing_rows,
    "drop_rows": _drop_rows,
    "coerce_numeric": _coerce_numeric,
}


def _new_version(store: Store, version: DatasetVersion, frame: pd.DataFrame, note: Message) -> DatasetVersion:
    dataset = store.find_dataset(version.dataset_id)
    if dataset is None:
        raise NotFound("error.fix.dataset_gone", dataset_id=version.dataset_id)
    if dataset.kind == "images":
        _, new = data.add_image_index(
            store,
            paths=config.paths(),
            index=frame,
            name=dataset.name,
            source=dataset.source,
            parent_id=version.id,
            notes=[note],
        )
        return new
    target = version.target if version.target in frame.columns else None
    _, new = data.add_frame(
        store,
        paths=config.paths(),
        frame=frame.reset_index(drop=True),
        name=dataset.name,
        source=dataset.source,
        target=target,
        task=version.task if target else None,
        parent_id=version.id,
        notes=[note],
    )
    return new


@auth.guarded("fix", lambda v: f"new version {v.hash[:8]}")
def apply_remedy(
    store: Store, *, version: DatasetVersion, action: str, params: Mapping[str, Any] | None = None
) -> DatasetVersion:
    """Apply one fix to a version and store the result as a new version."""
    if action not in _APPLY:
        raise BadInput("error.fix.unknown_fix", action=action, remedy_actions=", ".join(REMEDY_ACTIONS))
    frame, note = _APPLY[action](data.load_frame(version), dict(params or {}))
    return _new_version(store, version, frame, note)


@auth.guarded("fix", lambda v: f"new version {v.hash[:8]}")
def apply_check_fix(store: Store, *, version: DatasetVersion, check_id: str) -> DatasetVersion:
    """The CLI's `data fix DATASET --check ID`: the remedy the quality report suggests for that check."""
    report = gate.check_version(store, version=version)
    check = next((c for c in report.checks if c.id == check_id), None)
    if check is None:
        ids = ", ".join(c.id for c in report.checks)
        raise BadInput("error.fix.no_check", check_id=check_id, ids=ids)
    remedy = check.remedy
    if check.passed or remedy is None or remedy.action not in _APPLY:
        offered = [c.id for c in report.checks if not c.passed and c.remedy is not None and c.remedy.action in _APPLY]
        fixable = ", ".join(offered) or "none"
        raise BadInput("error.fix.no_one_click_fix", check_id=check_id, fixable=fixable)
    return apply_remedy(store, version=version, action=remedy.action, params=remedy.params)


@auth.guarded("label", lambda v: f"new version {v.hash[:8]}")
def relabel(store: Store, *, version: DatasetVersion, labels: dict[int, str]) -> DatasetVersion:
    """New version with the target of the given rows (positions) set to new labels."""
    if version.target is None:
        raise BadInput("error.fix.no_target_to_relabel")
    frame = data.load_frame(version)
    changed = {int(r): str(v) for r, v in labels.items() if 0 <= int(r) < len(frame)}
    changed = {r: v for r, v in changed.items() if str(frame[version.target].iloc[r]) != v}
    if not changed:
        raise BadInput("error.fix.no_label_changed")
    frame = frame.copy()
    column = frame.columns.get_loc(version.target)
    numeric = pd.api.types.is_numeric_dtype(frame[version.target])
    for row, label in changed.items():
        try:
            frame.iloc[row, column] = float(label) if numeric else label
        except ValueError:
            raise BadInput("error.fix.label_not_number", label=label, target=version.target) from None
    note = Message.counted("note.relabelled", len(changed), target=version.target)
    return _new_version(store, version, frame, note)


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return pd.util.hash_pandas_object(frame[columns], index=False)


def compare_versions(old: DatasetVersion, new: DatasetVersion) -> dict[str, Any]:
    """What changed between two versions: columns, rows added and removed, rows relabelled.

    Rows are matched by the content of the columns both versions share, target aside.
    """
    a, b = data.load_frame(old), data.load_frame(new)
    target = old.target if old.target == new.target else None
    shared = (
        ["file"]
        if "file" in a.columns and "file" in b.columns
        else [c for c in a.columns if c in b.columns and c != target]
    )  # an image is its file
    # A column whose type changed (text made numeric) holds the same cells written differently: it is not part
    # of a row's identity, or every row would count as removed and added again. It is listed on its own.
    retyped = [c for c in shared if c != "file" and a[c].dtype.kind != b[c].dtype.kind]
    keys = [c for c in shared if c not in retyped]
    if not keys and len(a) == len(b):  # nothing else to match on: the rows are where they were
        key_a = key_b = pd.Series(range(len(a)))
    else:
        key_a, key_b = _row_keys(a, keys), _row_keys(b, keys)
    counts_a, counts_b = key_a.value_counts(), key_b.value_counts()
    diff = counts_a.sub(counts_b, fill_value=0)
    relabelled = 0
    if target is not None:
        la = pd.DataFrame({"key": key_a, "label": a[target].astype("string")}).drop_duplicates("key")
        lb = pd.DataFrame({"key": key_b, "label": b[target].astype("string")}).drop_duplicates("key")
        both = la.merge(lb, on="key", suffixes=("_old", "_new"))
        relabelled = int((both["label_old"] != both["label_new"]).sum())
    return {
        "rows_before": len(a),
        "rows_after": len(b),
        "rows_removed": int(diff[diff > 0].sum()),
        "rows_added": int(-diff[diff < 0].sum()),
        "rows_relabelled": relabelled,
        "columns_removed": [c for c in a.columns if c not in b.columns],
        "columns_added": [c for c in b.columns if c not in a.columns],
        "columns_retyped": retyped,
    }


def lineage(store: Store, *, dataset_id: int, lang: str = "en") -> list[dict[str, Any]]:
    """Every version of a dataset, oldest first, with its parent and what the fix did (in `lang`)."""
    versions = store.list_versions(dataset_id)
    by_id = {v.id: v for v in versions}
    return [
        {
            "version": v.hash[:12],
            "version_id": v.id,
            "parent": by_id[v.parent_id].hash[:12] if v.parent_id in by_id else None,
            "note": data.note_text(v, lang),
            "rows": v.rows,
            "columns": len(v.columns),
            "created_at": v.created_at.isoformat(timespec="seconds"),
        }
        for v in versions
    ]
