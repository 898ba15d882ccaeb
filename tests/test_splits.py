"""The random cut the families and the data checks share (`models.splits`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
