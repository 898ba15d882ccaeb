"""What every quality check shares, and the three checks every kind of data runs first.

Shared: the result a check returns, the one-click fix (remedy) it may offer, how it names things in a message,
and the trainer's split. The three first checks: enough rows, a usable target, enough examples of each class.

A result's message is rendered from the catalog (`backend/i18n`), so the CLI's English and the dashboard's
Chinese come from one place; `key` and `params` let a reader render it in their own language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from backend import i18n
from models.spec import TabularSpec
from models.splits import cut

MIN_ROWS = 30
MIN_ROWS_PER_CLASS = 2
EXAMPLES = 10  # example rows shown per check
MAX_REMEDY_ROWS = 1_000  # a fix that names rows is offered only for this many rows or fewer (it is stored)


Severity = Literal["blocker", "warning", "info"]


@dataclass(frozen=True)
class Remedy:
    """A one-click fix a check offers: a `fixes.py` action and its parameters (e.g. the rows to drop)."""

    action: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As stored and printed: `{"action": …, "params": {…}}`, without `params` when there are none."""
        return {"action": self.action, "params": dict(self.params)} if self.params else {"action": self.action}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Remedy:
        """The remedy `to_dict` wrote."""
        return cls(data["action"], dict(data.get("params") or {}))


@dataclass(frozen=True)
class CheckResult:
    """What one check found: passed or not, why (a catalog key and its parameters), evidence, and fixes.

    The plain-language explanation and the suggested fix are in the catalog as `check.<id>.why` and
    `check.<id>.fix`; `alternatives` are other one-click fixes the user may prefer (fill in rather than drop).
    """

    id: str
    severity: Severity
    passed: bool
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedy: Remedy | None = None
    alternatives: tuple[Remedy, ...] = ()

    @property
    def message(self) -> str:
        """The one-line finding in English (the CLI's words)."""
        return self.text("en")

    def text(self, lang: str) -> str:
        """The one-line finding in `lang`."""
        return i18n.render(lang, self.key, **self.params)

    def to_dict(self) -> dict[str, Any]:
        """As stored with the report and printed by `modeldeck data check --json`."""
        out: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity,
            "passed": self.passed,
            "message": self.message,
            "key": self.key,
            "params": dict(self.params),
            "evidence": dict(self.evidence),
        }
        if self.remedy is not None:
            out["remedy"] = self.remedy.to_dict()
        if self.alternatives:
            out["alternatives"] = [a.to_dict() for a in self.alternatives]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """The result `to_dict` wrote (a stored report)."""
        return cls(
            id=data["id"],
            severity=data["severity"],
            passed=data["passed"],
            key=data["key"],
            params=data.get("params") or {},
            evidence=data.get("evidence") or {},
            remedy=Remedy.from_dict(data["remedy"]) if data.get("remedy") else None,
            alternatives=tuple(Remedy.from_dict(a) for a in data.get("alternatives") or ()),
        )


@dataclass(frozen=True, eq=False)
class Context:
    """What a check looks at: the rows, the column to predict (if chosen) and the task.

    `progress(done, total)` hears how far a slow check is (those that run the pretrained text model).
    """

    frame: pd.DataFrame
    target: str | None = None
    task: str | None = None
    progress: Callable[[int, int], None] | None = None


Check = Callable[[Context], CheckResult]


def result(
    id: str,
    severity: Severity,
    passed: bool,
    outcome: str,
    evidence: dict[str, Any] | None = None,
    *,
    remedy: Remedy | None = None,
    alternatives: list[Remedy] | None = None,
    **params: Any,
) -> CheckResult:
    """One check's result, its message `check.<id>.<outcome>` filled with `params`."""
    return CheckResult(
        id=id,
        severity=severity,
        passed=passed,
        key=f"check.{id}.{outcome}",
        params=params,
        evidence=evidence or {},
        remedy=remedy,
        alternatives=tuple(alternatives or ()),
    )


def remedy(action: str, **params: Any) -> Remedy:
    """A one-click fix: the `fixes.py` action and its parameters."""
    return Remedy(action, params)


def drop_rows(rows: np.ndarray | list[int]) -> Remedy | None:
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
) -> CheckResult | None:
    """The failing result for classes with fewer than `minimum` rows (None when there are none).

    Its evidence holds their first `examples` rows, and its fix drops them.
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
def too_few_rows(ctx: Context) -> CheckResult:
    frame = ctx.frame
    n = len(frame)
    ok = n >= MIN_ROWS
    return result("too_few_rows", "blocker", ok, "ok" if ok else "fail", {"rows": n}, rows=n, min=MIN_ROWS)


def target_usable(ctx: Context) -> CheckResult:
    frame, target, task = ctx.frame, ctx.target, ctx.task
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


def too_few_classes(ctx: Context) -> CheckResult:
    frame, target, task = ctx.frame, ctx.target, ctx.task
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
