"""Fixes and relabels make new, immutable versions with lineage; versions can be compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend import data
from backend.data import datasets
from backend.errors import BadInput
from backend.quality import fixes, gate
from tests import factories


def _version_with_defects(store):
    frame = factories.churn_frame()
    frame = pd.concat([frame, frame.head(4)], ignore_index=True).assign(country="NL")
    frame.loc[10:14, "charges"] = None
    return factories.add_frame(store, frame)[1]


def test_a_fix_makes_a_child_version_and_leaves_the_parent_untouched(store) -> None:
    parent = _version_with_defects(store)
    child = fixes.apply_remedy(store, version=parent, action="drop_duplicate_rows")
    assert (child.parent_id, child.rows, data.note_text(child)) == (
        parent.id,
        240,
        "Dropped 4 duplicate rows (kept the first of each).",
    )
    assert (child.target, child.task) == ("churn", "classification")
    assert len(datasets.load_frame(parent)) == 244


def test_dropping_columns_and_imputing_missing_values(store) -> None:
    parent = _version_with_defects(store)
    dropped = fixes.apply_remedy(store, version=parent, action="drop_columns", params={"columns": ["country"]})
    filled = fixes.apply_remedy(store, version=dropped, action="impute_missing", params={"columns": ["charges"]})
    frame = datasets.load_frame(filled)
    assert "country" not in frame.columns
    assert frame["charges"].isna().sum() == 0
    assert data.note_text(filled) == "Filled 5 missing values in charges (median or most common)."


def test_dropping_rows_with_missing_values(store) -> None:
    parent = _version_with_defects(store)
    child = fixes.apply_remedy(store, version=parent, action="drop_missing_rows", params={"columns": ["charges"]})
    assert (child.rows, data.note_text(child)) == (239, "Dropped 5 rows with missing charges.")


def test_an_unknown_column_or_action_is_refused(store) -> None:
    parent = _version_with_defects(store)
    with pytest.raises(BadInput, match=r"Cannot fix columns \['nope'\]: not in this version"):
        fixes.apply_remedy(store, version=parent, action="drop_columns", params={"columns": ["nope"]})
    with pytest.raises(BadInput, match=r"Unknown fix 'explode'\. Expected one of: drop_duplicate_rows"):
        fixes.apply_remedy(store, version=parent, action="explode")
    assert len(store.list_versions(parent.dataset_id)) == 1


def test_relabelling_makes_a_version_and_compare_counts_the_relabelled_rows(store) -> None:
    parent = factories.add_frame(store, factories.churn_frame())[1]
    frame = datasets.load_frame(parent)
    flips = {r: ("yes" if frame["churn"].iloc[r] == "no" else "no") for r in (3, 7, 11)}
    child = fixes.relabel(store, version=parent, labels=flips)
    assert data.note_text(child) == "Relabelled 3 rows of churn."
    assert fixes.compare_versions(parent, child) == {
        "rows_before": 240,
        "rows_after": 240,
        "rows_removed": 0,
        "rows_added": 0,
        "rows_relabelled": 3,
        "columns_removed": [],
        "columns_added": [],
        "columns_retyped": [],
    }


def test_relabelling_to_the_same_label_changes_nothing(store) -> None:
    parent = factories.add_frame(store, factories.churn_frame())[1]
    same = {0: str(datasets.load_frame(parent)["churn"].iloc[0])}
    with pytest.raises(BadInput, match=r"No label changed: every row already has the label given\."):
        fixes.relabel(store, version=parent, labels=same)


def test_compare_counts_removed_rows_and_columns(store) -> None:
    parent = _version_with_defects(store)
    child = fixes.apply_remedy(store, version=parent, action="drop_duplicate_rows")
    grandchild = fixes.apply_remedy(store, version=child, action="drop_columns", params={"columns": ["country"]})
    diff = fixes.compare_versions(parent, grandchild)
    assert (diff["rows_removed"], diff["rows_added"], diff["columns_removed"]) == (4, 0, ["country"])


def test_lineage_lists_every_version_with_its_parent_and_note(store) -> None:
    parent = _version_with_defects(store)
    child = fixes.apply_remedy(store, version=parent, action="drop_duplicate_rows")
    lineage = fixes.lineage(store, dataset_id=parent.dataset_id)
    assert [(v["version"], v["parent"], v["rows"]) for v in lineage] == [
        (parent.hash[:12], None, 244),
        (child.hash[:12], parent.hash[:12], 240),
    ]


def test_a_column_of_numbers_with_stray_text_is_made_numeric(store) -> None:
    frame = factories.churn_frame()
    frame["charges"] = frame["charges"].astype(str)
    frame.loc[[2, 5, 9], "charges"] = ["n/a", "-", "unknown"]
    parent = factories.add_frame(store, frame)[1]
    child = fixes.apply_check_fix(store, version=parent, check_id="mixed_types")
    charges = datasets.load_frame(child)["charges"]
    assert (pd.api.types.is_numeric_dtype(charges), int(charges.isna().sum())) == (True, 3)
    assert data.note_text(child) == "Made charges numeric; 3 values that were not numbers are now missing."


def test_amounts_written_with_currency_signs_are_read_as_numbers_on_upload(store) -> None:
    """`$175.07` made a category, and "make numeric" turned every amount into a missing value."""
    frame = factories.churn_frame()
    frame["charges"] = [f"${v:,.2f}" for v in frame["charges"] * 100]  # "$3,637.00"
    frame["discount"] = [f"{v:.0%}" for v in np.linspace(0, 0.3, len(frame))]  # "12%"
    version = factories.add_frame(store, frame)[1]
    stored = datasets.load_frame(version)
    assert stored["charges"].round(2).tolist() == (factories.churn_frame()["charges"] * 100).round(2).tolist()
    assert stored["discount"].max() == pytest.approx(0.3)
    assert {c["name"]: c["kind"] for c in version.columns}["charges"] == "numeric"
    assert (
        data.note_text(version)
        == "Read charges, discount as numbers (currency signs, thousands separators and % removed)."
    )


def test_amounts_with_a_few_words_among_them_are_offered_as_numbers_and_parsed_not_dropped(store) -> None:
    frame = factories.churn_frame()
    frame["charges"] = [f"${v:,.2f}" for v in frame["charges"] * 100]
    frame.loc[:2, "charges"] = "n/a"  # not every value is a number: the upload leaves the column as written
    parent = factories.add_frame(store, frame)[1]
    report = gate.check_version(store, version=parent)
    check = next(c for c in report.checks if c.id == "mixed_types")
    assert (check.passed, check.key, check.remedy.action) == (False, "check.mixed_types.fail", "coerce_numeric")
    child = fixes.apply_check_fix(store, version=parent, check_id="mixed_types")
    charges = datasets.load_frame(child)["charges"]
    expected = (factories.churn_frame()["charges"] * 100).round(2)
    assert charges.round(2).tolist()[3:] == expected.tolist()[3:] and charges[:3].isna().all()
    diff = fixes.compare_versions(parent, child)  # the same rows, one column retyped: not 240 removed and added
    assert (diff["rows_removed"], diff["rows_added"], diff["columns_retyped"]) == (0, 0, ["charges"])


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("$175.07", 175.07),
        ("1,234.5", 1234.5),
        ("€ 12", 12.0),
        ("12.5%", 0.125),
        ("(1,200)", -1200.0),
        ("USD 1,000,000", 1e6),
        ("-3.5 %", -0.035),
        ("n/a", None),
        ("1,23", None),
        ("12 apples", None),
    ],
)
def test_formatted_numbers_parse_and_words_do_not(text: str, number: float | None) -> None:
    parsed = data.parse_numbers(pd.Series([text]))[0]
    assert (None if pd.isna(parsed) else round(parsed, 6)) == number
