"""The random cut the families and the data checks share (`models.splits`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from models.splits import cut, cut_frame


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
