"""What the dashboard needs beyond datasets, quality and runs.

It provides one store, the worker's health, the playground form and the runs table. No TensorFlow here (the
dashboard imports this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend import config, data
from backend.jobs import column_name, has_live_worker
from db import Run, Store, open_store
from models.columns import read_date as read_date  # the dashboard's date fields read and write dates
from models.columns import write_date as write_date

MAX_OPTIONS = 50


def open_default_store() -> Store:
    return open_store(config.database_url())


def worker_alive(store: Store) -> bool:
    return has_live_worker(store)


def served_version(store: Store, run: Run) -> tuple[str | None, int | None]:
    """What the Playground calls for a run's model: its `production` label when one is set, else the run's version.

    Returns:
        The label (or None) and the version it names now.
    """
    stage = "production"  # the model registry's stage (backend/serving/registry.py), read from the store: no server
    live = store.current_stages().get(run.model_name, {}).get(stage) if run.model_name else None
    return (stage, live) if live is not None else (None, run.model_version)


def dataset_label(store: Store, run: Run) -> str:
    version = store.get_version(run.version_id)
    dataset = store.find_dataset(version.dataset_id) if version else None
    return f"{dataset.name if dataset else '?'} @ {version.hash[:8] if version else '?'}"


def playground_fields(store: Store, run: Run) -> list[dict[str, Any]]:
    """One form field per model input, with a default: the median number, the commonest category, the latest date.

    A date field knows how its column writes dates (`order`); free text is typed; a number that is only ever 0 or 1
    is a flag (kind "flag", a switch). A field's `label` is the name the run gives the column, else the column's
    name as uploaded (model inputs need ASCII-safe names, people read the original), written as words when it was
    written as an identifier.
    """
    version = store.get_version(run.version_id)
    assert version is not None
    frame = data.load_frame(version)
    features = run.evaluation.get("features", {})
    fields = []
    for col in version.columns:
        name = col["name"]
        if name == run.target:
            continue
        label = column_name(run, name, str(col.get("original", name)))
        if name in features.get("numeric", []):
            values = pd.to_numeric(frame[name], errors="coerce").dropna()
            median = float(values.median()) if len(values) else 0.0
            integral = bool(len(values) and (values == values.round()).all())
            if integral and set(values.unique()) == {0, 1}:
                fields.append({"name": name, "label": label, "kind": "flag", "default": int(round(median))})
                continue
            fields.append(
                {
                    "name": name,
                    "label": label,
                    "kind": "numeric",
                    "default": median,
                    "integer": integral,
                    "min": float(values.min()) if len(values) else None,
                    "max": float(values.max()) if len(values) else None,
                }
            )
        elif name in features.get("date", []):
            order = run.evaluation.get("plan", {}).get("dates", {}).get(name, "ymd")
            days = [d for d in (read_date(v, order) for v in frame[name].dropna().head(5000)) if d]
            fields.append(
                {
                    "name": name,
                    "label": label,
                    "kind": "date",
                    "order": order,
                    "default": max(days) if days else None,  # the latest: what a new case looks like
                }
            )
        elif name in features.get("text", []):
            fields.append({"name": name, "label": label, "kind": "text", "default": ""})
        elif name in features.get("categorical", []) + features.get("hashed", []):
            options = frame[name].dropna().astype(str).value_counts().index[:MAX_OPTIONS].tolist()
            fields.append(
                {
                    "name": name,
                    "label": label,
                    "kind": "categorical",
                    "options": options,
                    "default": options[0] if options else "",
                }
            )
    return fields


@dataclass(frozen=True)
class Example:
    """A real row of a run's dataset, for the playground.

    What to fill in, what really happened, and which of its inputs the row leaves empty (the form shows a
    stand-in there, and says so).
    """

    values: dict[str, Any]
    actual: str | None  # the row's target as written, None when the row has none
    empty: list[str]


def _actual(frame: pd.DataFrame, target: str | None, position: int) -> str | None:
    if target is None or target not in frame.columns:
        return None
    value = frame[target].iloc[position]
    if pd.isna(value):
        return None
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def example_row(store: Store, run: Run, index: int) -> Example:
    """A real row of the dataset, the `index`-th (wrapping round), to fill the playground form."""
    version = store.get_version(run.version_id)
    assert version is not None
    frame = data.load_frame(version)
    position = index % len(frame)
    row = frame.iloc[position]
    values = {k: (None if pd.isna(v) else v) for k, v in row.items() if k != run.target}
    empty = [str(k) for k, v in values.items() if v is None]
    return Example(values=values, actual=_actual(frame, run.target, position), empty=empty)


def _frame_and_roles(store: Store, run: Run) -> tuple[pd.DataFrame, dict[str, str | None]]:
    version = store.get_version(run.version_id)
    assert version is not None
    return data.load_frame(version), data.roles(version.columns)


def example_text(store: Store, run: Run, index: int) -> tuple[str, str | None]:
    """A real text of the dataset, to fill the playground, and its label."""
    frame, roles = _frame_and_roles(store, run)
    present = np.flatnonzero(frame[roles["text"]].notna().to_numpy())
    if not len(present):
        return "", None
    position = int(present[index % len(present)])
    return str(frame[roles["text"]].iloc[position]), _actual(frame, run.target, position)


def example_image(store: Store, run: Run, index: int) -> tuple[bytes, str | None]:
    """The original bytes of a real image of the dataset, to try the model on, and its label."""
    frame, _ = _frame_and_roles(store, run)
    position = index % len(frame)
    image = (config.paths().datasets / str(frame["file"].iloc[position])).read_bytes()
    return image, _actual(frame, run.target, position)


def known_users(store: Store, run: Run, limit: int = 500) -> list[str]:
    """The users with the most ratings first: the ones a recommendation demo is most telling for."""
    frame, roles = _frame_and_roles(store, run)
    return frame[roles["user"]].astype(str).value_counts().index[:limit].tolist()


def _name_column(frame: pd.DataFrame, roles: dict[str, str | None]) -> str | None:
    taken = set(roles.values())
    return next(
        (c for c in frame.columns if c.lower() in ("title", "name", "item_name", "product") and c not in taken), None
    )


def item_names(store: Store, run: Run) -> dict[str, str]:
    """Item id -> a readable name (a title or name column), where the data has one."""
    frame, roles = _frame_and_roles(store, run)
    column = _name_column(frame, roles)
    if column is None:
        return {}
    pairs = frame[[roles["item"], column]].dropna().drop_duplicates(roles["item"])
    return dict(zip(pairs[roles["item"]].astype(str), pairs[column].astype(str), strict=True))


def _user_rows(store: Store, run: Run, user: str) -> tuple[pd.DataFrame, dict[str, str | None]]:
    frame, roles = _frame_and_roles(store, run)
    return frame[frame[roles["user"]].astype(str) == user], roles


def user_ratings(store: Store, run: Run, user: str) -> dict[str, Any]:
    """Every item the user has in the data, with its rating (None without a rating column).

    The model never recommends what the user had in its training rows, so a recommended item found here was
    held out for evaluation: the Playground shows its real rating beside the prediction.
    """
    rows, roles = _user_rows(store, run, user)
    ratings = rows[roles["rating"]].tolist() if roles["rating"] else [None] * len(rows)
    return dict(zip(rows[roles["item"]].astype(str), ratings, strict=True))


def user_history(store: Store, run: Run, user: str, limit: int = 10) -> pd.DataFrame:
    """What a user rated in the data, best first: columns item (its name where known) and rating."""
    rows, roles = _user_rows(store, run, user)
    if roles["rating"]:
        rows = rows.sort_values(roles["rating"], ascending=False)
    names = item_names(store, run)
    items = [names.get(i, i) for i in rows[roles["item"]].astype(str).head(limit)]
    ratings = rows[roles["rating"]].head(limit).tolist() if roles["rating"] else [None] * len(items)
    return pd.DataFrame({"item": items, "rating": ratings})


def image_thumbnails(store: Store, run: Run, rows: list[int], *, size: int = 128) -> list[bytes]:
    """PNG thumbnails of the images at these row positions of the run's image version."""
    version = store.get_version(run.version_id)
    assert version is not None
    files = data.load_frame(version)["file"].astype(str)
    return [data.thumbnail(config.paths().datasets, files.iloc[row], size=size) for row in rows]


HISTORY_METRICS = ("accuracy", "f1_macro", "roc_auc", "rmse", "r2", "ndcg_at_k", "perplexity")


def runs_table(store: Store, **page: Any) -> tuple[list[dict[str, Any]], int]:
    """A page of the run history as table rows, and how many runs match.

    `page` is `Store.run_summaries`'s paging, sorting and filters: done in SQL, fast at any number of runs.
    """
    summaries, total = store.run_summaries(**page)
    rows = []
    for run in summaries:
        m = run.metrics
        rows.append(
            {
                "run": run.id,
                "dataset": f"{run.dataset} @ {run.version_hash[:8]}",
                "task": run.task,
                "status": run.status,
                **{name: m.get(name) for name in HISTORY_METRICS},
                "epochs": run.epochs_done,
                "duration_s": round(run.duration_s, 1),
                "device": run.device,
                "spec": ", ".join(
                    f"{k}={v}"
                    for k, v in run.spec.items()
                    if k in ("architecture", "hidden_units", "epochs", "batch_size", "learning_rate", "dropout")
                ),
                "model": f"{run.model_name}/{run.model_version}"
                if run.model_name and run.status == "succeeded"
                else "",
                "override": run.override_reason or "",
                "created": run.created_at.strftime("%Y-%m-%d %H:%M"),
            }
        )
    return rows, total
