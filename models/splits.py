"""Random splits of the rows, shared by the families that split at random and by the data checks that look at
the rows a run will hold out. No TensorFlow here, so that the checks can import it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def cut(rows: int, share: float, seed: int, *, strata: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows kept and of the `share` of them cut off, at random with `seed`: scikit-learn's
    `train_test_split`, stratified by `strata` (one label per row), or not where a class is too rare for it.

    The shuffle depends only on the row count and each row's index into the sorted classes, so splitting
    positions picks the same rows as splitting the data itself, and strata given as sorted class codes pick
    the same rows as the labels they stand for."""
    from sklearn.model_selection import train_test_split  # heavy import, only when something splits

    positions = np.arange(rows)
    try:
        kept, off = train_test_split(positions, test_size=share, random_state=seed, stratify=strata)
    except ValueError:  # a class too rare to stratify, or fewer rows cut off than classes
        kept, off = train_test_split(positions, test_size=share, random_state=seed)
    return kept, off


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
