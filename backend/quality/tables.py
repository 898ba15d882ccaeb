"""Quality checks on tables.

Each takes the frame, the target column (or None) and the task, and returns one result made by
`common.result()`.

Leaves first: thresholds, helpers (sampling, what a column is, the trainer's split, one-column
scores), then the checks, then `CHECKS` with the blockers first. Everything is vectorised over rows; the
checks that fit models (leakage, label errors, drift) work on a seeded sample and say so in the evidence
(`sampled_rows`). `example_rows` in the evidence are row positions (`frame.iloc`), at most `EXAMPLES`.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from backend import data
from backend.quality.common import (
    EXAMPLES,
    MAX_REMEDY_ROWS,
    MIN_ROWS,
    Check,
    CheckResult,
    Context,
    Severity,
    drop_rows,
    listed,
    remedy,
    result,
    share,
    target_usable,
    too_few_classes,
    too_few_rows,
    trainer_split,
)
from models.spec import TabularSpec

MISSING_WARN_SHARE = 0.2
SEED = 0  # every sample and fold assignment in here, so a report is reproducible
KIND_SAMPLE = 4_000  # values looked at to tell what a text column holds (free text, codes, numbers)
NEAR_CONSTANT_SHARE = 0.99  # one value in at least this share of the non-missing rows
ID_MIN_ROWS = 20  # with fewer rows, "every value distinct" says nothing
ID_DISTINCT_SHARE = 0.99
HIGH_CARD_VALUES = 1_000
HIGH_CARD_SHARE = 0.5
HIGH_CARD_MIN_VALUES = 50  # "half the values distinct" means little in a 40-row table
MIXED_MIN_NUMBER_SHARE = 0.2  # a text column is "mixed" when at least this share parses as numbers
OUTLIER_IQR = 3.0  # outside [Q1 - 3 IQR, Q3 + 3 IQR]: Tukey's "far out"
OUTLIER_MAX_SHARE = 0.02  # more than this beyond the fences is a long tail, not outliers
IMBALANCE_RATIO = 0.1  # smallest class under 10% of the largest…
IMBALANCE_SHARE = 0.05  # …or under 5% of the rows (and under half of a fair share, for many classes)
LEAK_SCORE = 0.98  # one column alone scores this (balanced accuracy or R², out of fold): a leak
LEAK_SAMPLE = 50_000
# Relative to the data: a column gives the answer away too when its score alone is at least LEAK_FLOOR
# (classification: balanced accuracy; regression: R²) and LEAK_MARGIN above a quick model on every other column,
# and those columns add less than LEAK_ADDED to it. An honest strong column (a contract, a tenure) leaves the
# others something to add; a copy of the answer recorded after the fact leaves them nothing.
LEAK_FLOOR = {"classification": 0.75, "regression": 0.5}
LEAK_MARGIN = 0.15
LEAK_ADDED = 0.02
LEAK_MODEL_ROWS = 10_000  # rows the model on the other columns sees (out of fold)
LEAK_BINS = 64  # a numeric column is cut into this many quantile bins, like a depth-6 tree
LEAK_MAX_CLASSES = 50  # the most common classes are told apart; the rest count as one
FOLDS = 5
LABEL_SAMPLE = 20_000
LABEL_CELLS = 600_000  # …fewer rows for a wide table, so that its quick model takes no longer…
LABEL_MIN_SAMPLE = 5_000  # …but never fewer than these
LABEL_MIN_ROWS = 500  # below this the quick model's probabilities are too rough to accuse a label
LABEL_MIN_PER_CLASS = 10  # classes with fewer rows (in the sample) are left out of the label check…
LABEL_MAX_CLASSES = 20  # …and so are all but the most common ones (the model grows a tree per class)
LABEL_MIN_CONFIDENCE = 0.8  # a suspect's suggested class must have at least this probability
LABEL_WARN_SHARE = 0.03  # fewer suspects than this share is noise most real data has: reported, not a warning
LABEL_BINS = 63  # the quick model's bins per column (and most categories it treats as such)
DRIFT_SAMPLE = 20_000  # rows per side of the split: enough to tell a gap of DRIFT_EFFECT from chance many times over
DRIFT_EFFECT = 0.1  # KS statistic or total variation distance
DRIFT_ALPHA = 0.01  # family-wise: divided by the number of columns compared (Bonferroni)
DRIFT_TOP = 20  # categories compared one by one; the rest are pooled as "other"

_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_DECIMAL = re.compile(r"^[-+]?\d*[.,]\d+$")
_ID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"  # UUID
    r"|^[0-9a-fA-F]{8,}$"  # hex digest
    r"|^(?=.*\d)[A-Za-z0-9][A-Za-z0-9_\-#/:.]{1,39}$"  # a code with a digit and no spaces: CUST-00123, 7590-VHVEG
)


def _plain(value: Any) -> Any:
    """A cell as JSON can hold it (evidence is stored and printed as JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value if isinstance(value, int | str | bool) else str(value)


# -- helpers: samples, what a column holds ---------------------------------------------------------------
def _sample_positions(n: int, size: int) -> np.ndarray:
    """Sorted positions of a seeded sample of `size` of `n` rows (all rows when there are few)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(SEED).choice(n, size, replace=False))


def _sample_rows(frame: pd.DataFrame, size: int = KIND_SAMPLE) -> pd.DataFrame:
    """A seeded sample of rows (one `take` for all columns, much cheaper than one per column)."""
    return frame if len(frame) <= size else frame.iloc[_sample_positions(len(frame), size)]


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _is_free_text(some: pd.Series) -> bool:
    """The rule `datasets.profile` uses for kind "text" (long, mostly distinct strings).

    `some` is a sample of the column's non-missing values.
    """
    if _is_numeric(some) or not len(some):
        return False
    values = some.astype(str)
    return bool(values.str.len().mean() >= 40 and values.nunique() > 0.5 * len(values))


def _looks_like_ids(col: pd.Series, some: pd.Series, distinct_rows: Callable[[], int]) -> bool:
    """Whether the column holds identifiers: almost every value distinct, and not measurements or words.

    The values are counters (integers in sequence) or codes (UUID, hex, CUST-00123). `some` is a sample of
    the non-missing values from distinct rows: the cheap tests run on it, and the full count of distinct values
    only for columns that pass them. Copies of whole rows repeat their identifier too, so "almost every value
    distinct" is judged against `distinct_rows()`, the number of rows that are not copies of another.
    """
    if len(some) < ID_MIN_ROWS or some.nunique() < ID_DISTINCT_SHARE * len(some):
        return False
    if _is_numeric(col):
        if not bool((some % 1 == 0).all()):
            return False  # a measured quantity, not a counter
        values = col.dropna()
        if not bool((values % 1 == 0).all()):
            return False
        span = float(values.max()) - float(values.min()) + 1
        in_sequence = values.is_monotonic_increasing or values.is_monotonic_decreasing or span <= 2 * len(values)
        if not in_sequence:
            return False
    else:
        text = some.astype(str).str.strip()
        code_like = text.str.fullmatch(_ID) & ~text.str.match(_DATE) & ~text.str.fullmatch(_DECIMAL)
        if code_like.mean() < 0.95:
            return False
        values = col.dropna()
    return bool(values.nunique() >= ID_DISTINCT_SHARE * min(len(values), distinct_rows()))


def _roles(frame: pd.DataFrame, target: str | None, distinct_rows: Callable[[], int] | None = None) -> dict[str, str]:
    """Each feature column (not the target) as "numeric", "categorical", "text" (free text) or "id".

    `distinct_rows` is the number of rows that are not copies of another, when the caller already knows it.
    """
    sample = _sample_rows(frame).drop_duplicates()
    distinct_rows = distinct_rows or functools.cache(lambda: len(frame) - len(_duplicate_rows(frame)))
    roles = {}
    for name in frame.columns:
        if name == target:
            continue
        col, some = frame[name], sample[name].dropna()
        if _looks_like_ids(col, some, distinct_rows):
            roles[str(name)] = "id"
        elif _is_numeric(col):
            roles[str(name)] = "numeric"
        else:
            roles[str(name)] = "text" if _is_free_text(some) else "categorical"
    return roles


def _labelled(frame: pd.DataFrame, target: str | None, task: str | None) -> tuple[np.ndarray, pd.Series] | None:
    """Row positions with a target, and their target; None when there is nothing to learn.

    The target is class names as text for classification and numbers for regression, with index 0…n-1.
    Nothing to learn means no target, one class, or text for regression.
    """
    if target is None or target not in frame.columns or task not in ("classification", "regression"):
        return None
    col = frame[target]
    present = col.notna().to_numpy()
    positions = np.flatnonzero(present)
    y = col if present.all() else col.iloc[positions]
    if task == "classification":
        y = y.astype(str)  # as the trainer names classes
    elif _is_numeric(col):
        y = y.astype("float64")
    else:
        return None
    return (positions, y.reset_index(drop=True)) if y.nunique() >= 2 else None


def _bins(col: pd.Series) -> np.ndarray:
    """A small integer per row that groups equal (or, for many-valued numbers, nearby) values.

    Missing values get a bin of their own. A lookup per bin is a one-column model, like a depth-limited tree.
    """
    if _is_numeric(col):
        values = col.to_numpy(dtype="float64", na_value=np.nan)
        # One sort gives both the distinct count and the quantiles (found several times faster on sorted values).
        ordered = np.sort(values)  # missing (NaN) last
        present = ordered[: np.count_nonzero(~np.isnan(ordered))]
        if np.count_nonzero(present[1:] != present[:-1]) + 1 > LEAK_BINS:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, LEAK_BINS + 1)[1:-1]))
            binned = np.searchsorted(edges, values, side="right")
            return np.where(np.isnan(values), len(edges) + 1, binned)
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes)


def _one_column_score(bins: np.ndarray, y: np.ndarray, folds: np.ndarray, classes: int) -> float:
    """Out-of-fold score of predicting `y` from the bin alone.

    Each fold is predicted by the per-bin majority class (classification: balanced accuracy) or the per-bin
    mean (regression, classes=0: R²) of the other folds; a bin unseen in the other folds gets their overall
    majority or mean.
    """
    # Counts (and sums) per fold and bin in one pass; each fold's lookup is the other folds' total.
    n_bins = int(bins.max()) + 1
    cells = folds * n_bins + bins
    if classes:
        counts = np.bincount(cells * classes + y, minlength=FOLDS * n_bins * classes).reshape(FOLDS, n_bins, classes)
        np.subtract(counts.sum(axis=0), counts, out=counts)  # in place: one such array, however many bins
        unseen = counts.sum(axis=2, keepdims=True) == 0
        np.copyto(counts, counts.sum(axis=1, keepdims=True), where=unseen)
        predicted = counts.argmax(axis=2)[folds, bins]
        recalls = [np.mean(predicted[y == c] == c) for c in range(classes) if np.any(y == c)]
        return float(np.mean(recalls))
    sums, counts = np.bincount(bins, weights=y, minlength=n_bins), np.bincount(bins, minlength=n_bins)
    s = sums - np.bincount(cells, weights=y, minlength=FOLDS * n_bins).reshape(FOLDS, n_bins)
    c = counts - np.bincount(cells, minlength=FOLDS * n_bins).reshape(FOLDS, n_bins)
    fallback = np.array([s[fold].sum() / max(1, c[fold].sum()) for fold in range(FOLDS)])
    predicted = np.where(c > 0, s / np.maximum(c, 1), fallback[:, None])[folds, bins]
    total_ss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - predicted) ** 2).sum()) / total_ss if total_ss > 0 else 0.0


def _quick_inputs(frame: pd.DataFrame, columns: list[str], *, max_categories: int) -> dict[str, np.ndarray]:
    """The quick model's columns, as YDF takes them.

    Numbers as float32 with NaN where missing; text with at most `max_categories` values as categories (codes as
    bytes, b"" where missing), with more as sorted codes, numbers (ISO dates sort in time order).
    """
    inputs: dict[str, np.ndarray] = {}
    for name in columns:
        col = frame[name]
        if _is_numeric(col):
            inputs[name] = col.to_numpy(dtype="float32", na_value=np.nan)
            continue
        codes, uniques = pd.factorize(col, sort=True)
        if len(uniques) <= max_categories:
            # Bytes skip YDF's Python loop over the values; "c" keeps it from warning that they look like numbers.
            inputs[name] = np.where(codes < 0, b"", np.char.add(b"c", codes.astype("S")))
        else:
            inputs[name] = np.where(codes < 0, np.nan, codes).astype("float32")
    return inputs


def _quick_model(
    frame: pd.DataFrame,
    columns: list[str],
    y: np.ndarray,
    folds: np.ndarray,
    classes: int,
    *,
    trees: int,
    depth: int,
    shrinkage: float,
) -> np.ndarray:
    """Out-of-fold predictions of a quick gradient-boosted model (YDF, histogram splits, one thread).

    Each fold's rows are predicted by a model grown on the others: class probabilities (rows x `classes`, the
    classes being the codes 0..classes-1 in `y`) or, with `classes` 0, values.

    YDF, not scikit-learn: as quick, and 0.08 s to import against scikit-learn's 0.6 s, which a check of a small
    table mostly waited for.
    """
    import ydf  # heavy-ish import, only when a check trains

    # Quiet for good: `train(verbose=0)` lowers YDF's global level and restores it after, so with two checks
    # training at once one could restore it mid-way through the other, which then printed "Model trained in …"
    # into the output of `modeldeck train --json`.
    ydf.verbose(0)
    inputs = _quick_inputs(frame, columns, max_categories=LABEL_BINS)
    label = "__label__"
    while label in inputs:
        label += "_"
    target = y.astype("int64") if classes else y.astype("float64")
    out = np.zeros((len(y), classes) if classes else len(y), dtype="float64")
    for fold in range(FOLDS):
        test = folds == fold
        if not test.any():
            continue
        if classes and len(np.unique(target[~test])) < 2:  # one class left: it is certain of it
            out[np.flatnonzero(test), int(target[~test][0])] = 1.0
            continue
        train = {name: values[~test] for name, values in inputs.items()} | {label: target[~test]}
        learner = ydf.GradientBoostedTreesLearner(
            label=label,
            task=ydf.Task.CLASSIFICATION if classes else ydf.Task.REGRESSION,
            num_trees=trees,
            max_depth=depth,
            shrinkage=shrinkage,
            validation_ratio=0.0,
            early_stopping="NONE",
            discretize_numerical_columns=True,
            num_discretized_numerical_bins=LABEL_BINS,
            num_threads=1,  # the gate runs two checks at once, and a worker may be training beside it
            random_seed=SEED,
        )
        model = learner.train(train, verbose=0)
        predicted = np.asarray(model.predict({name: values[test] for name, values in inputs.items()}))
        if not classes:
            out[test] = predicted
            continue
        known = np.array([int(c) for c in model.label_classes()])
        if predicted.ndim == 1:  # two classes: the probability of the second
            predicted = np.c_[1.0 - predicted, predicted]
        rows = np.flatnonzero(test)
        out[np.ix_(rows, known)] = predicted
    return out


def _stratified_folds(y: np.ndarray, seed: int) -> np.ndarray:
    """A fold (0..FOLDS-1) per row, at random, each class spread evenly over the folds."""
    order = np.random.default_rng(seed).permutation(len(y))
    folds = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = order[y[order] == label]
        folds[members] = np.arange(len(members)) % FOLDS
    return folds


def _category_table(col: pd.Series, rest: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Counts of each category in the rest and the test rows (2 x K), and the categories' names.

    The categories are the `DRIFT_TOP` most common values one by one, the others pooled, and missing as a
    category of its own.
    """
    codes, uniques = pd.factorize(col.iloc[np.r_[rest, test]], use_na_sentinel=True)
    codes = np.where(codes < 0, len(uniques), codes)  # missing
    top = np.argsort(-np.bincount(codes), kind="stable")[:DRIFT_TOP]
    index = np.full(len(uniques) + 1, len(top))  # everything else: "other"
    index[top] = np.arange(len(top))
    names = [str(uniques[i]) if i < len(uniques) else "(missing)" for i in top] + ["(other)"]
    side = np.r_[np.zeros(len(rest), dtype=int), np.ones(len(test), dtype=int)]
    table = np.bincount(side * len(names) + index[codes], minlength=2 * len(names)).reshape(2, len(names))
    used = table.sum(axis=0) > 0
    return table[:, used], [n for n, u in zip(names, used, strict=True) if u]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the bits of 64-bit integers so that combined keys rarely collide."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _cell_keys(col: pd.Series) -> np.ndarray:
    """A 64-bit integer per cell, equal for equal values (missing values included) within this column."""
    if _is_numeric(col):
        values = col.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 becomes 0.0
        return np.where(np.isnan(values), np.nan, values).view(np.uint64)  # one NaN bit pattern
    return pd.factorize(col, use_na_sentinel=True)[0].astype(np.int64).view(np.uint64)


def _repeated_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows whose values in `columns` occur in another row too, and a 64-bit key per such row.

    Keys are equal for rows with equal values (unequal rows share one with odds of about 1 in 10^19 a pair).

    Columns are keyed one at a time, numbers first, and after each only the rows whose key so far repeats
    are kept: long text columns are then read for a few candidate rows instead of a million.
    """
    rows = np.arange(len(frame))
    keys = np.zeros(len(frame), dtype=np.uint64)
    for name in sorted(columns, key=lambda c: not _is_numeric(frame[c])):
        col = frame[name] if len(rows) == len(frame) else frame[name].iloc[rows]
        keys = _mix(keys ^ _mix(_cell_keys(col) + np.uint64(0x9E3779B97F4A7C15)))
        repeated = pd.Series(keys).duplicated(keep=False).to_numpy()
        rows, keys = rows[repeated], keys[repeated]
        if not len(rows):
            break
    return rows, keys


def _duplicate_rows(frame: pd.DataFrame) -> np.ndarray:
    """Positions of the rows that copy an earlier row: `np.flatnonzero(frame.duplicated())`, in a fraction of the time.

    Only the rows that `_repeated_rows` finds are compared exactly.
    """
    candidates, _ = _repeated_rows(frame, list(frame.columns))
    return candidates[frame.iloc[candidates].duplicated().to_numpy()]


class _Shared:
    """What several checks compute from the same rows, computed once per report (checks never change the frame).

    Two checks may ask at once from two threads (see `gate.CHECK_THREADS`): one computes, the other waits for it.
    """

    def __init__(self, ctx: Context) -> None:
        self.frame, self.target, self.task = ctx.frame, ctx.target, ctx.task
        self._made: dict[str, Any] = {}
        self._lock = threading.RLock()  # re-entered: `roles` may ask for `duplicates`

    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            return self._made[name]

    @property
    def duplicates(self) -> np.ndarray:
        """`_duplicate_rows` of the frame."""
        return self._once("duplicates", lambda: _duplicate_rows(self.frame))

    @property
    def roles(self) -> dict[str, str]:
        """`_roles` of every column, the target included."""
        distinct_rows = lambda: len(self.frame) - len(self.duplicates)  # noqa: E731
        return self._once("roles", lambda: _roles(self.frame, None, distinct_rows=distinct_rows))

    @property
    def labelled(self) -> tuple[np.ndarray, pd.Series] | None:
        """`_labelled` of the report's target and task."""
        return self._once("labelled", lambda: _labelled(self.frame, self.target, self.task))


_SHARED: weakref.WeakKeyDictionary[Context, _Shared] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _shared(ctx: Context) -> _Shared:
    """The report's shared statistics: made by the first check that asks, kept as long as the context lives."""
    with _SHARED_LOCK:
        if ctx not in _SHARED:
            _SHARED[ctx] = _Shared(ctx)
        return _SHARED[ctx]


def _feature_roles(ctx: Context, target: str | None) -> dict[str, str]:
    """`_roles(ctx.frame, target)`, from the report's shared statistics."""
    return {name: role for name, role in _shared(ctx).roles.items() if name != target}


def _is_constant(col: pd.Series) -> bool:
    """The same as `col.nunique(dropna=False) <= 1`, without counting every distinct value."""
    missing = col.isna().to_numpy()
    if missing.all():
        return True
    return not missing.any() and bool((col == col.iloc[0]).all())


# -- the checks, blockers first ---------------------------------------------------------------------------
def target_leakage(ctx: Context) -> CheckResult:
    """One column that alone predicts the target (out of fold, on a sample) gives the answer away."""
    frame, target, task = ctx.frame, ctx.target, ctx.task
    labelled = _shared(ctx).labelled
    if labelled is None or len(frame.columns) < 2:
        return result("target_leakage", "blocker", True, "na")
    positions, y = labelled
    chosen = _sample_positions(len(positions), LEAK_SAMPLE)
    sample, y = frame.iloc[positions[chosen]], y.iloc[chosen]
    folds = np.random.default_rng(SEED).permutation(len(sample)) % FOLDS
    if task == "classification":
        common = y.value_counts().index[:LEAK_MAX_CLASSES]
        codes = pd.factorize(y.where(y.isin(common), "(other)"))[0]
        encoded, n_classes, metric = codes, int(codes.max()) + 1, "balanced_accuracy"
    else:
        encoded, n_classes, metric = y.to_numpy(dtype="float64"), 0, "r2"
    scores = {
        str(name): round(_one_column_score(_bins(sample[name]), encoded, folds, n_classes), 4)
        for name in sample.columns
        if name != target
    }
    top = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:10])
    leaking = [name for name, score in top.items() if score >= LEAK_SCORE]
    evidence = {"scores": top, "metric": metric, "threshold": LEAK_SCORE, "sampled_rows": len(sample)}
    best, alone = next(iter(top.items()), (None, 0.0))
    if not leaking and best is not None and alone >= LEAK_FLOOR[task or "classification"]:
        rest = [n for n, role in _roles(sample, target).items() if role in ("numeric", "categorical") and n != best]
        alone = _model_score(sample, [best], encoded, folds, n_classes) or 0.0  # the same model for all three
        others = _model_score(sample, rest, encoded, folds, n_classes)
        together = _model_score(sample, [*rest, best], encoded, folds, n_classes)
        evidence["compared"] = {"column": best, "alone": alone, "others": others, "together": together}
        added = None if together is None else together - alone  # what the other columns add to it
        if others is not None and added is not None and alone - others >= LEAK_MARGIN and added < LEAK_ADDED:
            return result(
                "target_leakage",
                "blocker",
                False,
                "relative",
                evidence | {"columns": [best]},
                remedy=remedy("drop_columns", columns=[best]),
                target=target,
                name=best,
                alone=alone,
                others=others,
            )
    if leaking:
        return result(
            "target_leakage",
            "blocker",
            False,
            "fail",
            evidence | {"columns": leaking},
            remedy=remedy("drop_columns", columns=leaking),
            n=len(leaking),
            target=target,
            names=listed(leaking),
        )
    return result("target_leakage", "blocker", True, "ok", evidence, target=target)


def _model_score(
    sample: pd.DataFrame, columns: list[str], y: np.ndarray, folds: np.ndarray, classes: int
) -> float | None:
    """Out-of-fold score of a quick gradient-boosting model on `columns` (None when there are none).

    The folds and the metric are the one-column scores'.
    """
    if not columns:
        return None
    rows = np.arange(min(len(sample), LEAK_MODEL_ROWS))
    y, folds = y[rows], folds[rows]
    scores = _quick_model(sample.iloc[rows], columns, y, folds, classes, trees=50, depth=5, shrinkage=0.1)
    if classes:
        predicted = scores.argmax(axis=1)
        recalls = [np.mean(predicted[y == c] == c) for c in range(classes) if np.any(y == c)]
        return round(float(np.mean(recalls)), 4)
    total_ss = float(((y - y.mean()) ** 2).sum())
    return round(1.0 - float(((y - scores) ** 2).sum()) / total_ss, 4) if total_ss > 0 else 0.0


def missing_values(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
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
            remedy=remedy("drop_columns", columns=heavy),
            alternatives=[
                remedy("impute_missing", columns=heavy),
                remedy("drop_missing_rows", columns=heavy),
            ],
            n=len(heavy),
            share=f"{MISSING_WARN_SHARE:.0%}",
            names=listed(heavy),
        )
    some = len(evidence["missing_by_column"])
    return result("missing_values", "warning", True, "some" if some else "ok", evidence, n=some)


def duplicate_rows(ctx: Context) -> CheckResult:
    frame = ctx.frame
    dup = _shared(ctx).duplicates  # the same rows as `frame.duplicated()`: copies after their first occurrence
    n = len(dup)
    evidence = {"duplicates": n, "example_rows": dup[:EXAMPLES].tolist()}
    if n:
        return result(
            "duplicate_rows",
            "warning",
            False,
            "fail",
            evidence,
            remedy=remedy("drop_duplicate_rows"),
            n=n,
            share=share(n, len(frame)),
        )
    return result("duplicate_rows", "warning", True, "ok", evidence)


def conflicting_labels(ctx: Context) -> CheckResult:
    """Rows that agree in every feature but disagree in the class: at most one of them can be right.

    For a numeric target, equal features with different values are the noise of any measurement, not a conflict.
    """
    frame, target, task = ctx.frame, ctx.target, ctx.task
    labelled = _shared(ctx).labelled
    features = [c for c in frame.columns if c != target]
    if labelled is None or task != "classification" or not features:
        return result("conflicting_labels", "warning", True, "na")
    positions, y = labelled
    labelled_rows = frame if len(positions) == len(frame) else frame.iloc[positions]
    repeated, keys = _repeated_rows(labelled_rows, features)
    pairs = pd.DataFrame({"key": keys, "y": pd.factorize(y.iloc[repeated])[0], "row": positions[repeated]})
    labels_per_key = pairs.groupby("key", sort=False)["y"].transform("nunique").to_numpy()
    clashing = pairs[labels_per_key > 1]
    if clashing.empty:
        return result("conflicting_labels", "warning", True, "ok")
    groups = int(clashing["key"].nunique())
    # Example rows group by group (in the order of each group's first row), so that rows that contradict
    # each other are shown together.
    first = clashing.groupby("key", sort=False)["row"].transform("min")
    examples = clashing.assign(first=first.to_numpy()).sort_values(["first", "row"])["row"].head(EXAMPLES)
    conflicting = np.sort(clashing["row"].to_numpy())
    evidence = {"rows": len(conflicting), "groups": groups, "example_rows": examples.astype(int).tolist()}
    return result(
        "conflicting_labels",
        "warning",
        False,
        "fail",
        evidence,
        remedy=drop_rows(conflicting),
        n=len(conflicting),
        groups=groups,
        target=target,
    )


def id_like_columns(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
    ids = [name for name, role in _feature_roles(ctx, target).items() if role == "id"]
    if not ids:
        return result("id_like_columns", "warning", True, "ok")
    examples = {name: [_plain(v) for v in frame[name].dropna().head(3)] for name in ids}
    return result(
        "id_like_columns",
        "warning",
        False,
        "fail",
        {"columns": ids, "examples": examples, "example_rows": list(range(min(len(frame), 5)))},
        remedy=remedy("drop_columns", columns=ids),
        n=len(ids),
        names=listed(ids),
    )


def mixed_types(ctx: Context) -> CheckResult:
    """Text columns where many values are numbers and others are not ("12", "n/a", "7").

    A sample says which columns to look at; the counts come from all the distinct values of those columns.
    """
    frame = ctx.frame
    columns: dict[str, dict[str, Any]] = {}
    example_rows: list[int] = []
    sample = _sample_rows(frame)
    for name, role in _feature_roles(ctx, None).items():
        if role not in ("categorical", "id"):
            continue
        some = sample[name].dropna()
        if not len(some) or data.parse_numbers(some).notna().mean() < MIXED_MIN_NUMBER_SHARE:
            continue
        counts = frame[name].value_counts()
        values = counts.index.to_series()
        is_number = data.parse_numbers(values).notna().to_numpy()
        formatted = is_number & pd.to_numeric(values, errors="coerce").isna().to_numpy()  # "$1,234.50", "12%"
        numbers, others = int(counts[is_number].sum()), int(counts[~is_number].sum())
        if not others and formatted.any():
            columns[name] = {"numbers": numbers, "other": 0, "number_examples": [str(v) for v in values[formatted][:5]]}
            continue
        if not others or numbers < MIXED_MIN_NUMBER_SHARE * (numbers + others):
            continue
        columns[name] = {
            "numbers": numbers,
            "other": others,
            "number_examples": [str(v) for v in counts[is_number].index[:5]],
            "other_examples": [str(v) for v in counts[~is_number].index[:5]],
        }
        if not example_rows:
            other_values = counts[~is_number].index
            example_rows = np.flatnonzero(frame[name].isin(other_values).to_numpy())[:EXAMPLES].tolist()
    if not columns:
        return result("mixed_types", "warning", True, "ok")
    names = list(columns)
    evidence = {
        "other_by_column": {n: c["other"] for n, c in columns.items()},
        "columns": columns,
        "example_rows": example_rows,
    }
    return result(
        "mixed_types",
        "warning",
        False,
        "fail" if any(c["other"] for c in columns.values()) else "formatted",
        evidence,
        remedy=remedy("coerce_numeric", columns=names),
        n=len(names),
        names=listed(names),
    )


def class_imbalance(ctx: Context) -> CheckResult:
    labelled, task = _shared(ctx).labelled, ctx.task
    if labelled is None or task != "classification":
        return result("class_imbalance", "warning", True, "na")
    counts = labelled[1].value_counts()
    rows, smallest, largest = len(labelled[1]), int(counts.iloc[-1]), int(counts.iloc[0])
    # "Under 5% of the rows" alone would call 25 equal classes (4% each) imbalanced: also under half a fair share.
    rare = smallest / rows < min(IMBALANCE_SHARE, 0.5 / len(counts))
    evidence = {"classes": {str(k): int(v) for k, v in counts.head(50).items()}}
    params: dict[str, Any] = {
        "name": str(counts.index[-1]),
        "smallest": smallest,
        "share": share(smallest, rows),
        "largest_name": str(counts.index[0]),
        "largest": largest,
        "ratio": share(smallest, largest),
    }
    if smallest < IMBALANCE_RATIO * largest or rare:
        return result("class_imbalance", "warning", False, "fail", evidence, **params)
    return result("class_imbalance", "warning", True, "ok", evidence, **params)


def label_errors(ctx: Context) -> CheckResult:
    """Suspected wrong labels, the confident-learning way (Northcutt et al.; cleanlab's confident joint).

    1. Out-of-fold class probabilities from a quick gradient-boosting model, on a seeded sample.
    2. Each class's threshold is the model's average confidence in that class over the rows labelled so.
    3. A row is a suspect when the probability of its own label is under its class's threshold while
       another class clears that class's threshold (the most probable such class is the suggestion).
    """
    frame, target, task = ctx.frame, ctx.target, ctx.task
    labelled = _shared(ctx).labelled
    if labelled is None or task != "classification":
        return result("label_errors", "warning", True, "na")
    columns = [name for name, role in _feature_roles(ctx, target).items() if role in ("numeric", "categorical")]
    if not columns:
        return result("label_errors", "warning", True, "na")
    positions, y = labelled
    chosen = _sample_positions(len(positions), max(LABEL_MIN_SAMPLE, min(LABEL_SAMPLE, LABEL_CELLS // len(columns))))
    rows, y = positions[chosen], y.iloc[chosen]
    counts = y.value_counts()
    kept = y.isin(counts.index[counts >= LABEL_MIN_PER_CLASS][:LABEL_MAX_CLASSES]).to_numpy()
    rows, y = rows[kept], y[kept]
    if len(rows) < LABEL_MIN_ROWS or y.nunique() < 2:
        return result("label_errors", "warning", True, "small", {"sampled_rows": len(rows)}, min=LABEL_MIN_ROWS)

    # 1. Out-of-fold probabilities.
    given, classes = pd.factorize(y, sort=True)
    folds = _stratified_folds(given, SEED)
    proba = _quick_model(frame.iloc[rows], columns, given, folds, len(classes), trees=40, depth=4, shrinkage=0.2)
    # 2. Per-class thresholds: the average self-confidence.
    thresholds = np.array([proba[given == k, k].mean() for k in range(len(classes))])
    # 3. The most probable class among those above their threshold; a suspect when that is not the label.
    # Where labels are uncertain by nature the thresholds sink towards 1/classes and this alone would accuse
    # a quarter of the rows: the suggestion must also be confident outright (`LABEL_MIN_CONFIDENCE`).
    above = np.where(proba >= thresholds, proba, -1.0)
    suggested = above.argmax(axis=1)
    own = proba[np.arange(len(given)), given]
    confident = above.max(axis=1) >= LABEL_MIN_CONFIDENCE
    suspect = confident & (suggested != given) & (own < thresholds[given])
    found = np.flatnonzero(suspect)
    found = found[np.argsort(-proba[found, suggested[found]], kind="stable")]  # most confident first
    suspects = [
        {
            "row": int(rows[i]),
            "given": str(classes[given[i]]),
            "suggested": str(classes[suggested[i]]),
            "confidence": round(float(proba[i, suggested[i]]), 3),
        }
        for i in found[:MAX_REMEDY_ROWS]
    ]
    n = len(found)
    evidence = {
        "suspected_rows": n,
        "share": round(n / len(rows), 4),
        "sampled_rows": len(rows),
        "classes_left_out": int(len(counts) - y.nunique()),
        "thresholds": {str(c): round(float(t), 3) for c, t in zip(classes, thresholds, strict=True)},
        "suspects": suspects,
        "example_rows": [s["row"] for s in suspects[:EXAMPLES]],
    }
    params: dict[str, Any] = {"n": n, "share": share(n, len(rows)), "sampled": len(rows)}
    if n >= LABEL_WARN_SHARE * len(rows):
        return result("label_errors", "warning", False, "fail", evidence, remedy=remedy("review_labels"), **params)
    return result("label_errors", "warning", True, "few" if n else "ok", evidence, **params)


def _ks_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: the largest gap between the two empirical distributions, and its p-value.

    The p-value is the Kolmogorov distribution's with Stephens' small-sample correction (Numerical Recipes'
    `kstwo`): within 20% of scipy's exact one from 20 rows a side (a test).
    """
    from scipy.special import kolmogorov  # 0.1 s to import, against 0.4 s for scipy.stats

    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    gap = np.abs(np.searchsorted(a, both, side="right") / len(a) - np.searchsorted(b, both, side="right") / len(b))
    d = float(gap.max())
    root = np.sqrt(len(a) * len(b) / (len(a) + len(b)))
    return d, float(np.clip(kolmogorov((root + 0.12 + 0.11 / root) * d), 0.0, 1.0))


def _chi2_test(table: np.ndarray) -> float:
    """The p-value of Pearson's chi-squared test of independence on a contingency table.

    With Yates' correction for one degree of freedom, as scipy.stats.chi2_contingency's (a test).
    """
    from scipy.special import chdtrc

    observed = table.astype("float64")
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    dof = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    if dof == 0:
        return 1.0
    if dof == 1:  # Yates: each count moved half a unit (at most) towards its expectation
        diff = expected - observed
        observed = observed + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    return float(chdtrc(dof, ((observed - expected) ** 2 / expected).sum()))


def split_drift(ctx: Context) -> CheckResult:
    """Whether the trainer's test rows look like its training rows, column by column.

    Numbers get a two-sample Kolmogorov-Smirnov test; categories a chi-squared test with the total variation
    distance. Drift is a difference both large enough to matter (`DRIFT_EFFECT`) and too unlikely to be
    chance (`DRIFT_ALPHA`, Bonferroni over the columns compared).
    """
    frame, target, task = ctx.frame, ctx.target, ctx.task
    labelled = _shared(ctx).labelled
    if labelled is None or target is None or len(labelled[0]) < MIN_ROWS:
        return result("split_drift", "warning", True, "na")
    rest, test = trainer_split(frame, target=target, task=task)
    sizes = {"train_rows": len(rest), "test_rows": len(test)}
    rest, test = rest[_sample_positions(len(rest), DRIFT_SAMPLE)], test[_sample_positions(len(test), DRIFT_SAMPLE)]
    roles = _feature_roles(ctx, None) | {target: "numeric" if task == "regression" else "categorical"}
    details: dict[str, dict[str, Any]] = {}
    for name, role in roles.items():
        if role == "numeric":
            a = frame[name].iloc[rest].dropna().to_numpy(dtype="float64")
            b = frame[name].iloc[test].dropna().to_numpy(dtype="float64")
            if len(a) < 2 or len(b) < 2:
                continue
            effect, p_value = _ks_test(a, b)
            summary: dict[str, Any] = {"train_median": _plain(np.median(a)), "test_median": _plain(np.median(b))}
        elif role == "categorical":
            table, values = _category_table(frame[name], rest, test)
            if table.shape[1] < 2:
                continue
            shares = table / table.sum(axis=1, keepdims=True)
            effect = float(0.5 * np.abs(shares[0] - shares[1]).sum())
            p_value = _chi2_test(table)
            changed = np.argsort(-np.abs(shares[0] - shares[1]))[:3]
            summary = {
                "train_shares": {values[i]: round(float(shares[0, i]), 4) for i in changed},
                "test_shares": {values[i]: round(float(shares[1, i]), 4) for i in changed},
            }
        else:
            continue  # identifiers and free text differ row by row by nature
        measure = "ks" if role == "numeric" else "total_variation"
        details[name] = {"measure": measure, "statistic": round(effect, 4), "p_value": float(f"{p_value:.3g}")}
        details[name] |= summary
    alpha = DRIFT_ALPHA / max(1, len(details))
    drifted = [n for n, d in details.items() if d["statistic"] >= DRIFT_EFFECT and d["p_value"] < alpha]
    spec = TabularSpec()
    evidence = {
        "drift_by_column": {n: details[n]["statistic"] for n in drifted},
        "columns": {n: details[n] for n in drifted},
        "split": {"test_split": spec.test_split, "seed": spec.seed, "stratified": task == "classification"},
        **sizes,
        "sampled_rows": len(rest) + len(test),
    }
    if drifted:
        return result("split_drift", "warning", False, "fail", evidence, n=len(drifted), names=listed(drifted))
    return result("split_drift", "warning", True, "ok", evidence, n=len(details))


def high_cardinality(ctx: Context) -> CheckResult:
    """Category columns with very many values (not identifiers, not free text).

    A warning when most values are distinct (the model can only memorise them), a note when there are just
    many.
    """
    frame, target = ctx.frame, ctx.target
    found: dict[str, int] = {}
    mostly_distinct = False
    for name, role in _feature_roles(ctx, target).items():
        if role != "categorical":
            continue
        col = frame[name]
        distinct, present = int(col.nunique()), int(col.notna().sum())
        share_rule = distinct > HIGH_CARD_SHARE * present and distinct >= HIGH_CARD_MIN_VALUES
        if distinct > HIGH_CARD_VALUES or share_rule:
            found[name] = distinct
            mostly_distinct = mostly_distinct or share_rule
    severity: Severity = "warning" if mostly_distinct else "info"
    if not found:
        return result("high_cardinality", "info", True, "ok")
    names = list(found)
    evidence = {"values_by_column": found, "rows": len(frame)}
    return result("high_cardinality", severity, False, "fail", evidence, n=len(names), names=listed(names))


def constant_columns(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
    constant = [str(c) for c in frame.columns if c != target and _is_constant(frame[c])]
    if constant:
        return result(
            "constant_columns",
            "info",
            False,
            "fail",
            {"columns": constant},
            remedy=remedy("drop_columns", columns=constant),
            n=len(constant),
            names=listed(constant),
        )
    return result("constant_columns", "info", True, "ok")


def near_constant_columns(ctx: Context) -> CheckResult:
    """One value in at least 99% of the non-missing rows (columns entirely constant are the check above)."""
    frame, target = ctx.frame, ctx.target
    found: dict[str, dict[str, Any]] = {}
    example_rows: list[int] = []
    sample = _sample_rows(frame)
    for name in frame.columns:
        col = frame[name]
        if name == target or _is_constant(col):
            continue
        some = sample[name].dropna()
        if not len(some) or some.value_counts().iloc[0] < 0.95 * len(some):  # far from 99%: skip the full count
            continue
        counts = col.value_counts()
        if counts.iloc[0] >= NEAR_CONSTANT_SHARE * counts.sum():
            found[str(name)] = {"value": _plain(counts.index[0]), "share": round(counts.iloc[0] / counts.sum(), 4)}
            if not example_rows:
                example_rows = np.flatnonzero((col.notna() & (col != counts.index[0])).to_numpy())[:EXAMPLES].tolist()
    if not found:
        return result("near_constant_columns", "info", True, "ok")
    names = list(found)
    return result(
        "near_constant_columns",
        "info",
        False,
        "fail",
        {"columns": found, "example_rows": example_rows},
        remedy=remedy("drop_columns", columns=names),
        n=len(names),
        share=f"{NEAR_CONSTANT_SHARE:.0%}",
        names=listed(names),
    )


def numeric_outliers(ctx: Context) -> CheckResult:
    """Values far outside the middle half of each numeric column: beyond 3 interquartile ranges of it.

    A column with more than `OUTLIER_MAX_SHARE` of its values out there has a long tail (incomes, mostly-zero
    discounts), not a few exceptions: it is listed as heavy-tailed and not counted.
    """
    frame, target = ctx.frame, ctx.target
    numeric = [name for name, role in _feature_roles(ctx, target).items() if role == "numeric"]
    if not numeric:
        return result("numeric_outliers", "info", True, "ok")
    values = frame[numeric]
    quartiles = values.quantile([0.25, 0.75])
    q1, q3 = quartiles.iloc[0], quartiles.iloc[1]
    spread = q3 - q1
    lower, upper = q1 - OUTLIER_IQR * spread, q3 + OUTLIER_IQR * spread
    measured = spread.index[spread > 0]  # no spread: every value but the common one would be "far"
    outside = values[measured].lt(lower[measured]) | values[measured].gt(upper[measured])
    counts, present = outside.sum(), values[measured].notna().sum()
    heavy = [str(c) for c in measured if counts[c] > OUTLIER_MAX_SHARE * present[c]]
    flagged = [str(c) for c in measured if 0 < counts[c] <= OUTLIER_MAX_SHARE * present[c]]
    if not flagged:
        return result("numeric_outliers", "info", True, "ok", {"heavy_tailed": heavy} if heavy else None)
    columns = {
        name: {
            "count": int(counts[name]),
            "lower": _plain(float(lower[name])),
            "upper": _plain(float(upper[name])),
            "min": _plain(float(values[name].min())),
            "max": _plain(float(values[name].max())),
        }
        for name in flagged
    }
    evidence = {
        "outliers_by_column": {name: c["count"] for name, c in columns.items()},
        "columns": columns,
        "heavy_tailed": heavy,
        "example_rows": np.flatnonzero(outside[flagged].any(axis=1).to_numpy())[:EXAMPLES].tolist(),
    }
    total = int(counts[flagged].sum())
    return result(
        "numeric_outliers", "info", False, "fail", evidence, rows=total, n=len(flagged), names=listed(flagged)
    )


CHECKS: list[Check] = [
    # Blockers: any failing one closes the gate.
    target_usable,
    too_few_rows,
    too_few_classes,
    target_leakage,
    # Warnings.
    missing_values,
    duplicate_rows,
    conflicting_labels,
    id_like_columns,
    mixed_types,
    class_imbalance,
    label_errors,
    split_drift,
    # Notes (high_cardinality is a warning when most values are distinct).
    high_cardinality,
    constant_columns,
    near_constant_columns,
    numeric_outliers,
]
