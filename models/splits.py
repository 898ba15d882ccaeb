"""Random splits of the rows, shared by the families that split at random and by the data checks that look at
the rows a run will hold out. No TensorFlow here, so that the checks can import it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def cut(rows: int, share: float, seed: int, *, strata: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows kept and of the `share` of them cut off, at random with `seed`: the rows scikit-learn's
    `train_test_split` picks, stratified by `strata` (one label per row), or not where a class is too rare for it.

    The same rows, not just the same kind of split: runs made before this module stopped importing scikit-learn
    (0.7 s of a data check's start-up) must keep their test rows, and a test holds the two to the same answer.
    The shuffle depends only on the row count and each row's index into the sorted classes, so splitting
    positions picks the same rows as splitting the data itself, and strata given as sorted class codes pick
    the same rows as the labels they stand for."""
    if not 0 < share < 1:
        raise ValueError(f"share={share} must be between 0 and 1")
    n_test = math.ceil(share * rows)
    n_train = rows - n_test
    if n_train <= 0:
        raise ValueError(f"{rows} rows leave none to keep after cutting off {share:.0%}")
    if strata is not None:
        try:
            return _stratified(np.asarray(strata), n_train, n_test, np.random.RandomState(seed))
        except _TooRare:
            pass
    permutation = np.random.RandomState(seed).permutation(rows)
    return permutation[n_test:], permutation[:n_test]


class _TooRare(ValueError):
    """A class with one row, or more classes than rows on one side: scikit-learn cannot stratify that."""


def _stratified(
    strata: np.ndarray, n_train: int, n_test: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's `StratifiedShuffleSplit`, one split, step for step (the same draws from `rng`)."""
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    if counts.min() < 2 or min(n_train, n_test) < len(counts):
        raise _TooRare
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    kept_per_class = _approximate_mode(counts, n_train, rng)
    off_per_class = _approximate_mode(counts - kept_per_class, n_test, rng)
    kept: list[np.ndarray] = []
    off: list[np.ndarray] = []
    for members, k, t in zip(by_class, kept_per_class, off_per_class, strict=True):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        kept.append(shuffled[:k])
        off.append(shuffled[k : k + t])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(off))


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` rows each class gives: its share rounded down, the rest to the largest remainders,
    ties broken at random (scikit-learn's `_approximate_mode`)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)


def cut_frame(
    data: pd.DataFrame, share: float, seed: int, *, by: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows kept and the `share` of them cut off (`cut`), in the shuffled order, with their index."""
    kept, off = cut(len(data), share, seed, strata=by)
    return data.iloc[kept], data.iloc[off]


def three_way(
    data: pd.DataFrame, *, test_split: float, validation_split: float, seed: int, by: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows, each part with a fresh index: the test share cut off first with `seed`,
    then from the rest the validation rows, their share of the whole, with `seed + 1`; stratified by `by`."""
    strata = None if by is None else by.to_numpy()
    rest, test = cut(len(data), test_split, seed, strata=strata)
    train, val = cut(
        len(rest), validation_split / (1 - test_split), seed + 1, strata=None if strata is None else strata[rest]
    )

    def part(rows: np.ndarray) -> pd.DataFrame:
        return data.iloc[rows].reset_index(drop=True)

    return part(rest[train]), part(rest[val]), part(test)
