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
