"""What every quality check shares: the result it returns, the one-click fix (remedy) it may offer, how it
names things in a message, the trainer's split, and the three checks every kind of data runs first (enough
rows, a usable target, enough examples of each class).

A result's message is rendered from the catalog (`backend/i18n`), so the CLI's English and the dashboard's
Chinese come from one place; `key` and `params` let a reader render it in their own language.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from backend import i18n
from models.spec import TabularSpec
from models.splits import cut

MIN_ROWS = 30
MIN_ROWS_PER_CLASS = 2
EXAMPLES = 10  # example rows shown per check
MAX_REMEDY_ROWS = 1_000  # a fix that names rows is offered only for this many rows or fewer (it is stored)


def result(
    id: str,
    severity: str,
    passed: bool,
    outcome: str,
    evidence: dict[str, Any] | None = None,
    *,
    remedy: dict[str, Any] | None = None,
    alternatives: list[dict[str, Any]] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """One check's result; `remedy` (a one-click fix: `{"action": …, "params": {…}}`) only when given, and
    `alternatives`, other one-click fixes the user may prefer (e.g. fill in rather than drop).
    """
    key = f"check.{id}.{outcome}"
    out = {
        "id": id,
        "severity": severity,
        "passed": passed,
        "message": i18n.render("en", key, **params),
        "key": key,
        "params": params,
        "evidence": evidence or {},
    }
    if remedy is not None:
        out["remedy"] = remedy
    if alternatives:
        out["alternatives"] = alternatives
    return out


def remedy(action: str, **params: Any) -> dict[str, Any]:
    """A one-click fix as a result carries it: `{"action": …, "params": {…}}` (no `params` when there are none)."""
    return {"action": action, "params": params} if params else {"action": action}


def drop_rows(rows: np.ndarray | list[int]) -> dict[str, Any] | None:
    """The fix that drops these row positions, or None when there are more than MAX_REMEDY_ROWS of them."""
    if len(rows) > MAX_REMEDY_ROWS:
        return None
    return remedy("drop_rows", rows=[int(r) for r in rows])


def listed(items: list[str], limit: int = 5) -> str:
    """The first `limit` items, comma-separated, with an ellipsis when there are more."""
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")


def share(part: float, whole: float) -> str:
    """`part` as a percentage of `whole`, e.g. "12.5%"."""
    return f"{part / max(1, whole):.1%}"


def trainer_split(frame: pd.DataFrame, *, target: str, task: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the (training + validation) rows and of the test rows the trainer will use.

    The first cut of `models.tabular.split` (whose module imports TensorFlow, so it is not imported here): the
    rows with a target, `models.splits.cut` with `TabularSpec`'s defaults, stratified by the target as text for
    classification. A run with another `seed` or `test_split` splits differently. The strata are sorted class
    codes, which pick the same rows as the text (`cut`'s docstring) in a fraction of the time: sorting a
    million strings took a second.
    """
    spec = TabularSpec()
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    strata = pd.factorize(frame[target].iloc[labelled].astype(str), sort=True)[0] if task == "classification" else None
    rest, test = cut(len(labelled), spec.test_split, spec.seed, strata=strata)
    return labelled[rest], labelled[test]


def rare_classes(
    id: str, labels: pd.Series, counts: pd.Series, minimum: int, evidence: dict[str, Any], *, examples: int
) -> dict[str, Any] | None:
    """The failing result for classes with fewer than `minimum` rows (None when there are none), with their
    first `examples` rows as evidence and the fix that drops them.
    """
    rare = counts.index[counts < minimum].astype(str).tolist()
    if not rare:
        return None
    rows = np.flatnonzero(labels.isin(rare).to_numpy(dtype=bool, na_value=False))
    evidence["example_rows"] = rows[:examples].tolist()
    return result(
        id, "blocker", False, "rare", evidence, remedy=drop_rows(rows), n=len(rare), min=minimum, names=listed(rare)
    )


# -- the checks every kind of data runs first ----------------------------------------------------------------
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
        return result(
            "target_usable",
            "warning",
            False,
            "missing",
            {"missing": missing, "example_rows": np.flatnonzero(col.isna().to_numpy())[:EXAMPLES].tolist()},
            remedy=remedy("drop_missing_rows", columns=[target]),
            target=target,
            n=missing,
        )
    return result("target_usable", "blocker", True, "ok", target=target)


def too_few_classes(frame: pd.DataFrame, target: str | None, task: str | None) -> dict[str, Any]:
    if target is None or task != "classification":
        return result("too_few_classes", "blocker", True, "na")
    labels = frame[target].astype(str).where(frame[target].notna())
    counts = labels.value_counts()
    evidence: dict[str, Any] = {"classes": {str(k): int(v) for k, v in counts.head(50).items()}}
    if len(counts) < 2:
        return result("too_few_classes", "blocker", False, "one", evidence, target=target, n=len(counts))
    rare = rare_classes("too_few_classes", labels, counts, MIN_ROWS_PER_CLASS, evidence, examples=EXAMPLES)
    if rare is not None:
        return rare
    return result("too_few_classes", "blocker", True, "ok", evidence, n=len(counts), smallest=int(counts.min()))
