"""The words a run's classes and input columns are shown by.

A model's classes are what its data said ("great", "other", "1"), and its inputs are column names
(`monthly_spend`): a stakeholder reads "Loves it" and "Monthly spend". A run carries display names for both
(`Run.names`: {"classes": {value: name}, "columns": {column: name}}), edited on the Playground. They change only
what a page shows: the export, the server's answers and every stored metric keep the data's own values.
"""

from __future__ import annotations

import re
from typing import Any

from backend import auth
from backend.errors import BadInput, NotFound
from db import Run, Store

MAX_NAME = 80
UNKNOWN = {"classes": "error.names.unknown_class", "columns": "error.names.unknown_column"}
_WORDS = re.compile(r"[A-Z]+\d*(?![a-z])|[A-Z]?[a-z]+\d*|\d+")


def humanise(name: str) -> str:
    """A column name as a label people read.

    `monthly_spend` and `MonthlySpend` become "Monthly spend", `customerID` "Customer ID". A name that is not
    written like an identifier (`城市`, "Monthly spend") is left as it is.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-. ]*", name) or " " in name.strip():
        return name
    words = _WORDS.findall(name)
    if not words:
        return name
    shown = [w if (w.isupper() and len(w) > 1) else w.lower() for w in words]
    return " ".join(shown)[0].upper() + " ".join(shown)[1:]


def given(run: Run, part: str, key: Any) -> str | None:
    """The display name a user gave this class or column (`part`: "classes" or "columns"), None if none."""
    return (run.names or {}).get(part, {}).get(str(key))


def class_name(run: Run, value: Any) -> str:
    """How a class of the run's model is shown: its display name, else the value itself."""
    return given(run, "classes", value) or str(value)


def column_name(run: Run, column: str, original: str | None = None) -> str:
    """How an input column (or the target) is shown: its display name, else the uploaded name written as words."""
    return given(run, "columns", column) or humanise(original or column)


@auth.guarded("name", lambda run: f"run {run.id}", audited="rename_run")
def rename(
    store: Store,
    run_id: int,
    *,
    classes: dict[str, str] | None = None,
    columns: dict[str, str] | None = None,
) -> Run:
    """Set the display names of a run's classes and columns; an empty name goes back to the default.

    Raises:
        NotFound: no such run.
        BadInput: a class or column the run does not have, a name too long, or two classes given one name.
    """
    run = store.get_run(int(run_id))
    if run is None:
        raise NotFound("error.runs.no_run", run_id=run_id)
    names = {part: dict((run.names or {}).get(part, {})) for part in ("classes", "columns")}
    known = {
        "classes": {str(c) for c in run.evaluation.get("classes") or []},
        "columns": {c for cols in run.evaluation.get("features", {}).values() for c in cols} | {run.target or ""},
    }
    for part, given in (("classes", classes or {}), ("columns", columns or {})):
        for key, name in given.items():
            if str(key) not in known[part]:
                raise BadInput(UNKNOWN[part], name=key)
            name = " ".join(str(name).split())
            if len(name) > MAX_NAME:
                raise BadInput("error.names.too_long", name=name[:20], most=MAX_NAME)
            if name and name != str(key):
                names[part][str(key)] = name
            else:
                names[part].pop(str(key), None)
    shown = [names["classes"].get(c, c) for c in sorted(known["classes"])]
    twice = sorted({s for s in shown if shown.count(s) > 1})
    if twice:
        raise BadInput("error.names.same_name", name=twice[0])
    return store.update_run(run.id, names=names)
