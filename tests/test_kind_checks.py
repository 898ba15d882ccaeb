"""Text and ratings data: kind inference and checks with planted defects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.data import kinds
from backend.quality import gate as quality
from backend.quality.texts import luhn_ok, near_duplicate_groups
from tests import factories

WORDS = "good great bad awful tasty bland fresh stale sweet salty cheap pricey quick slow fine poor".split()


def reviews(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 25)) + f" order {i}" for i in range(rows)]
    return pd.DataFrame(
        {"product": rng.choice(["a", "b", "c"], rows), "review": texts, "label": rng.choice(["great", "other"], rows)}
    )


def _checks(frame: pd.DataFrame, kind: str, target: str | None = "label") -> dict[str, quality.CheckResult]:
    return {c.id: c for c in quality.run_checks(frame, target=target, task="classification", kind=kind)}


def test_kinds_are_inferred_from_the_columns(store) -> None:
    assert factories.add_frame(store, reviews(), name="r", target="label")[0].kind == "text"
    ratings = pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4], "rating": [4.0, 5.0]})
    assert factories.add_frame(store, ratings, name="m", target=None)[0].kind == "ratings"
    assert factories.add_frame(store, factories.churn_frame(), name="c")[0].kind == "tabular"


def test_clean_texts_pass_every_text_check() -> None:
    assert [c.id for c in _checks(reviews(), "text").values() if not c.passed] == []


def test_empty_and_short_texts_are_reported_with_a_drop_remedy() -> None:
    frame = reviews()
    frame.loc[[3, 8], "review"] = ["", "ok"]
    check = _checks(frame, "text")["text_length"]
    assert (check.passed, check.evidence["short"], check.remedy.to_dict()) == (
        False,
        2,
        {"action": "drop_rows", "params": {"rows": [3, 8]}},
    )


def test_exact_and_near_duplicate_texts_are_found() -> None:
    frame = reviews()
    frame.loc[10, "review"] = frame.loc[2, "review"].upper()  # same words, other case: an exact copy once normalised
    frame.loc[11, "review"] = frame.loc[4, "review"].replace("order 4", "order 44")  # one word changed
    check = _checks(frame, "text")["duplicate_texts"]
    assert (check.evidence["exact"], check.evidence["near"]) == (1, 1)
    assert 0 <= check.evidence["across_splits"] <= 2
    assert set(check.remedy.params["rows"]) == {10, 11}


def test_hundreds_of_copies_of_one_template_are_one_near_duplicate_group() -> None:
    frame = reviews(rows=600)
    template = frame.loc[0, "review"]
    frame.loc[100:499, "review"] = [template.replace("order 0", f"order {i}") for i in range(100, 500)]  # 400 copies
    check = _checks(frame, "text")["duplicate_texts"]
    assert (check.evidence["exact"], check.evidence["near"], check.remedy.params["rows"]) == (
        0,
        400,
        list(range(100, 500)),
    )


def test_one_text_with_two_labels_is_a_conflict() -> None:
    frame = reviews()
    frame.loc[20, ["review", "label"]] = [
        frame.loc[5, "review"],
        "other" if frame.loc[5, "label"] == "great" else "great",
    ]
    check = _checks(frame, "text")["conflicting_text_labels"]
    assert (check.passed, check.evidence["conflicting"], check.evidence["rows"], check.remedy.to_dict()) == (
        False,
        2,
        [5, 20],
        {"action": "review_labels"},
    )


def test_personal_data_is_counted_per_kind() -> None:
    frame = reviews()
    frame.loc[1, "review"] += " mail me at jane.doe@example.com"
    frame.loc[2, "review"] += " call 1-800-242-8807 today"
    frame.loc[3, "review"] += " card 4111 1111 1111 1111 works"  # passes the Luhn check
    frame.loc[4, "review"] += " ref 4111 1111 1111 1112 and seasons 2010-2011"  # fails Luhn; a year range
    check = _checks(frame, "text")["personal_data"]
    assert check.evidence["by_kind"] == {"email": 1, "phone": 1, "card": 1}
    assert check.evidence["example_rows"] == [1, 2, 3]


def test_the_luhn_checksum() -> None:
    assert (luhn_ok("4111111111111111"), luhn_ok("4111111111111112"), luhn_ok("79927398713")) == (True, False, False)


def test_near_duplicates_need_most_words_in_common() -> None:
    a = (
        "I ordered these crackers for the office and they were gone in a day. Crisp, not too salty, and the "
        "box arrived quickly and well packed. The price is fair for the quality, and I will order them again."
    )
    groups = near_duplicate_groups([a, a.replace("warm", "cold"), "completely different words about a movie night"])
    assert groups.tolist() == [0, 0, 2]


def test_ratings_checks_find_the_columns_sparsity_and_repeats() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 20, 400),
            "item_id": rng.integers(0, 30, 400),
            "rating": rng.integers(1, 6, 400).astype(float),
        }
    )
    frame = pd.concat([frame, frame.head(3)], ignore_index=True)
    frame.loc[len(frame)] = [999, 999, 5.0]  # a user and an item with a single rating
    checks = _checks(frame, "ratings", target=None)
    assert checks["ratings_columns"].message == "Users in 'user_id', items in 'item_id', ratings in 'rating'."
    assert (checks["sparse_users_items"].params["users"], checks["sparse_users_items"].params["items"]) == (1, 1)
    assert checks["rating_scale"].message == "Ratings in 'rating' run from 1.0 to 5.0 (5 distinct values)."
    assert checks["duplicate_ratings"].passed is False


def test_a_table_without_user_and_item_columns_is_blocked_as_ratings() -> None:
    check = _checks(factories.churn_frame(), "ratings", target=None)["ratings_columns"]
    assert (check.severity, check.passed, check.message) == ("blocker", False, "No user, item column found.")


def test_roles_are_found_by_column_name() -> None:
    columns = [
        {"name": "userId", "kind": "numeric"},
        {"name": "movieId", "kind": "numeric"},
        {"name": "rating", "kind": "numeric"},
        {"name": "title", "kind": "categorical"},
    ]
    assert kinds.roles(columns) == {"user": "userId", "item": "movieId", "rating": "rating", "text": None}


def test_copies_between_the_training_and_test_split_are_counted() -> None:
    from backend.quality.common import trainer_split

    frame = reviews(rows=400)
    rest, test = trainer_split(frame, target="label", task="classification")
    for a, b in zip(rest[:5], test[:5], strict=True):  # five test texts copied from training (labels kept,
        frame.loc[b, "review"] = frame.loc[a, "review"]  # so the stratified split stays the same)
    check = _checks(frame, "text")["duplicate_texts"]
    assert check.evidence["across_splits"] == 5
