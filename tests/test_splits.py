"""The random cut the families and the data checks share (`models.splits`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from models.splits import cut, cut_frame, three_way


def _labelled(rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=rows), "label": rng.choice(["no", "yes", "maybe"], rows)})


def test_class_codes_cut_the_same_rows_as_the_labels_they_stand_for() -> None:
    frame = _labelled()
    kept, off = train_test_split(frame, test_size=0.15, random_state=42, stratify=frame["label"])
    codes = pd.factorize(frame["label"], sort=True)[0]
    assert [a.tolist() for a in cut(len(frame), 0.15, 42, strata=codes)] == [kept.index.tolist(), off.index.tolist()]


def test_a_class_too_rare_to_stratify_gets_an_unstratified_cut() -> None:
    frame = _labelled().assign(label=lambda f: f["label"].where(f.index > 0, "once"))
    kept, off = cut_frame(frame, 0.15, 42, by=frame["label"])
    plain_kept, plain_off = train_test_split(frame, test_size=0.15, random_state=42)
    assert (kept.index.tolist(), off.index.tolist()) == (plain_kept.index.tolist(), plain_off.index.tolist())


def test_three_way_parts_hold_every_row_once_in_the_shares_asked_with_the_classes_in_proportion() -> None:
    frame = _labelled(1000).assign(position=range(1000))
    parts = three_way(frame, test_split=0.15, validation_split=0.15, seed=42, by=frame["label"])
    positions = [p["position"].tolist() for p in parts]
    assert ([len(p) for p in positions], sorted(sum(positions, []))) == ([700, 150, 150], list(range(1000)))
    share = frame["label"].value_counts(normalize=True)
    for part in parts:  # stratified: each class within one row of its share of the part
        counts = part["label"].value_counts()
        assert ((counts - share * len(part)).abs().round(6) <= 1).all(), counts
    assert all(p.index.tolist() == list(range(len(p))) for p in parts)


@pytest.mark.parametrize("rows", [2, 3, 7, 40, 101, 1000, 4099])
@pytest.mark.parametrize("share", [0.1, 0.15, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("classes", [None, 1, 2, 3, 7, 60])
def test_cut_picks_the_rows_scikit_learn_picks_or_refuses_as_it_does(
    rows: int, share: float, classes: int | None
) -> None:
    """Runs stored before `cut` stopped calling scikit-learn must keep their test rows: the same rows, in the
    same order, on balanced, skewed and too-rare classes alike."""
    rng = np.random.default_rng(rows * 31 + (classes or 0))
    strata = None if classes is None else rng.zipf(1.6, rows) % classes
    positions = np.arange(rows)
    for seed in (0, 42, 1234):
        try:
            expected = train_test_split(positions, test_size=share, random_state=seed, stratify=strata)
        except ValueError:
            try:
                expected = train_test_split(positions, test_size=share, random_state=seed)
            except ValueError:
                with pytest.raises(ValueError):
                    cut(rows, share, seed, strata=strata)
                continue
        got = cut(rows, share, seed, strata=strata)
        assert [a.tolist() for a in got] == [a.tolist() for a in expected], (seed, strata)
