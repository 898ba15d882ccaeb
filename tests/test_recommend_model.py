"""The recommendation family: prepare -> build -> fit -> export -> plain-TF serving -> evaluate, on tiny seeded
ratings where users and items fall into taste groups, plus the ranking-metric arithmetic by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import recommend
from models.spec import RecommenderSpec
from models.task import TaskData
from tests.factories import pipeline_slowdowns

ROLES = {"user": "user_id", "item": "item_id", "rating": "rating"}


def tastes(users: int = 60, items: int = 60, groups: int = 3, seed: int = 0) -> pd.DataFrame:
    """Each user rates 12 items of their own taste group high (4-5) and 4 items of other groups low (1-2)."""
    rng = np.random.default_rng(seed)
    user_group = rng.integers(0, groups, users)
    item_group = np.arange(items) % groups
    rows = []
    for u in range(users):
        own = rng.choice(np.flatnonzero(item_group == user_group[u]), 12, replace=False)
        other = rng.choice(np.flatnonzero(item_group != user_group[u]), 4, replace=False)
        rows += [(u, int(i), float(rng.choice([4.0, 4.5, 5.0]))) for i in own]
        rows += [(u, int(i), float(rng.choice([1.0, 1.5, 2.0]))) for i in other]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


def spec(**overrides: Any) -> RecommenderSpec:
    return RecommenderSpec(**({"learning_rate": 0.05, "embedding_dim": 8} | overrides))


def trained(tmp: Path, frame: pd.DataFrame, roles: dict[str, str | None], *, epochs: int = 3, **overrides: Any) -> Any:
    """prepare -> build -> fit -> export; returns (prepared, export folder)."""
    keras.utils.set_random_seed(0)
    prepared = recommend.prepare(TaskData(frame, roles), spec=spec(**overrides), batch_size=32)
    model = prepared.build()
    model.fit(prepared.train, validation_data=prepared.validation, epochs=epochs, verbose=0, shuffle=False)
    prepared.export(model, tmp / "export")
    return prepared, tmp / "export"


@pytest.fixture(scope="module")
def mf(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return trained(tmp_path_factory.mktemp("mf"), tastes(), ROLES)


def serve(export: Path, users: list[str]) -> dict[str, np.ndarray]:
    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    return {name: value.numpy() for name, value in signature(user=tf.constant(users)).items()}


# Ranking-metric arithmetic, by hand.


def test_ndcg_of_a_perfect_ranking_is_one() -> None:
    assert recommend.ranking_metrics([["a", "b", "c"]], [{"a", "b"}], 3)["ndcg_at_k"] == pytest.approx(1.0)


def test_ndcg_without_a_hit_is_zero() -> None:
    assert recommend.ranking_metrics([["x", "y", "z"]], [{"a"}], 3) == {
        "precision_at_k": 0.0,
        "recall_at_k": 0.0,
        "ndcg_at_k": 0.0,
    }


def test_one_hit_at_rank_two() -> None:
    assert recommend.ranking_metrics([["x", "a", "y", "z"]], [{"a", "b"}], 4) == pytest.approx(
        {
            "precision_at_k": 1 / 4,
            "recall_at_k": 1 / 2,
            "ndcg_at_k": (1 / np.log2(3)) / (1 + 1 / np.log2(3)),
        }
    )


def test_ranking_metrics_average_only_users_with_relevant_items() -> None:
    assert recommend.ranking_metrics([["a"], ["b"], ["c"]], [{"a"}, set(), {"x"}], 1) == {
        "precision_at_k": 0.5,
        "recall_at_k": 0.5,
        "ndcg_at_k": 0.5,
    }


# Data.


def test_prepare_drops_incomplete_rows_and_keeps_the_last_duplicate() -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1.0, 1.0, 1.0, 2.0, None] + [1.0] * 4 + [2.0] * 5,
            "item_id": [7, 7, 8, 9, 9] + [10, 11, 12, 13] + [20, 21, 22, 23, 24],
            "rating": [1.0, 5.0, None, 4.0, 3.0] + [3.0] * 9,
        }
    )
    frame, *_ = recommend.clean(TaskData(frame, ROLES))
    assert frame[frame["item"].isin(["7", "8", "9"])].to_dict("records") == [
        {"user": "1", "item": "7", "rating": 5.0},
        {"user": "2", "item": "9", "rating": 4.0},
    ]


def test_split_holds_out_per_user_and_keeps_light_users_whole() -> None:
    frame = pd.DataFrame(
        {"user": ["heavy"] * 20 + ["light"] * 4, "item": [f"i{n}" for n in range(24)], "rating": np.float32(3.0)}
    )
    train, val, test = recommend.split(frame, spec())
    counts = {name: part["user"].value_counts().to_dict() for name, part in (("t", train), ("v", val), ("x", test))}
    assert counts == {"t": {"heavy": 14, "light": 4}, "v": {"heavy": 3}, "x": {"heavy": 3}}


def timed(stamp: Any, column: str = "timestamp") -> pd.DataFrame:
    """Users a, b, c rate items i0..i9 in that order (`stamp(n)` is the n-th time), listed shuffled."""
    rows = [(user, f"i{n}", 3.0, stamp(n)) for user in "abc" for n in range(10)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", column])
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize(
    ("column", "stamp"),
    [("timestamp", lambda n: 1_700_000_000 + 3600 * n), ("rated_at", lambda n: f"2024-03-{n + 1:02d} 09:30")],
)
def test_a_time_column_holds_out_each_users_latest_ratings(column: str, stamp: Any) -> None:
    frame, *_, time = recommend.clean(TaskData(timed(stamp, column), ROLES))
    train, val, test = recommend.split(frame, spec())
    items = {name: part.groupby("user")["item"].agg(sorted).to_dict() for name, part in (("v", val), ("x", test))}
    assert (time, items) == (
        column,
        {"v": {u: ["i6", "i7"] for u in "abc"}, "x": {u: ["i8", "i9"] for u in "abc"}},
    )
    assert len(train) == 18


def test_a_repeated_pair_keeps_its_latest_rating() -> None:
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [7, 7], "rating": [5.0, 1.0], "ts": [20, 10]})
    assert recommend.clean(TaskData(frame, ROLES))[0][["user", "item", "rating"]].to_dict("records") == [
        {"user": "1", "item": "7", "rating": 5.0}
    ]


def test_a_time_named_column_that_holds_no_times_is_not_used() -> None:
    frame, *_, time = recommend.clean(TaskData(timed(lambda n: f"slot {n}", "date"), ROLES))
    assert (time, "time" in frame.columns) == (None, False)


@pytest.mark.parametrize(("has_time", "expected"), [(True, ("timestamp", "latest")), (False, (None, "random"))])
def test_the_plan_records_which_hold_out_was_used(has_time: bool, expected: tuple[Any, str]) -> None:
    frame = tastes(users=10)
    if has_time:
        frame["timestamp"] = np.arange(len(frame))
    plan = recommend.prepare(TaskData(frame, ROLES), spec=spec(), batch_size=32).plan
    assert (plan["time"], plan["holdout"]) == expected
    assert recommend.Plan.from_dict(plan).to_dict() == plan


def test_missing_item_role_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs a user column and an item column"):
        recommend.prepare(TaskData(tastes(), {"user": "user_id", "item": None}), spec=spec(), batch_size=32)


def test_users_with_too_few_interactions_to_test_are_a_clear_error() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "item_id": [1, 2, 1, 3, 2, 3], "rating": [4.0] * 6})
    with pytest.raises(ValueError, match="Only 6 usable interactions"):
        recommend.prepare(TaskData(frame, ROLES), spec=spec(), batch_size=32)
    with pytest.raises(ValueError, match="No user has 5 or more interactions"):
        recommend.prepare(
            TaskData(pd.concat([frame] * 2, ignore_index=True).assign(item_id=range(12)), ROLES),
            spec=spec(),
            batch_size=32,
        )


# Training, export and serving.


def test_export_signatures_take_string_ids_and_name_their_outputs(mf: Any) -> None:
    signatures = tf.saved_model.load(str(mf[1])).signatures
    outputs = signatures["serving_default"].structured_outputs
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in outputs.items()} == {
        "items": (tf.string, [None, 10]),
        "scores": (tf.float32, [None, 10]),
        "known": (tf.bool, [None]),
    }
    assert {n: s.dtype for n, s in signatures["rating"].structured_input_signature[1].items()} == {
        "user": tf.string,
        "item": tf.string,
    }
    assert {n: s.dtype for n, s in signatures["rating"].structured_outputs.items()} == {
        "rating": tf.float32,
        "known_user": tf.bool,
        "known_item": tf.bool,
    }


def test_rating_says_which_users_and_items_the_model_trained_on(mf: Any) -> None:
    rate = tf.saved_model.load(str(mf[1])).signatures["rating"]
    out = rate(user=tf.constant(["0", "0", "nobody"]), item=tf.constant(["1", "no-such-item", "1"]))
    assert (out["known_user"].numpy().tolist(), out["known_item"].numpy().tolist()) == (
        [True, True, False],
        [True, False, True],
    )


def test_recommendations_for_a_known_user_exclude_items_seen_in_training(mf: Any) -> None:
    prepared, export = mf
    frame, *_ = recommend.clean(TaskData(tastes(), ROLES))
    train, _, _ = recommend.split(frame, spec())
    seen = set(train[train["user"] == "0"]["item"])
    out = serve(export, ["0"])
    items = [i.decode() for i in out["items"][0]]
    assert (out["known"].tolist(), len(set(items)), seen & set(items)) == ([True], 10, set())


def test_an_unknown_user_gets_the_popular_items(mf: Any) -> None:
    prepared, export = mf
    out = serve(export, ["nobody"])
    assert (out["known"].tolist(), {i.decode() for i in out["items"][0]}) == ([False], set(prepared.plan["popular"]))


@pytest.mark.parametrize("user", ["0", "3", "nobody"])
def test_recommendations_come_in_the_order_of_the_score_shown(mf: Any, user: str) -> None:
    """The ranking weighs popularity too; the list a user reads is sorted by the score it shows."""
    scores = serve(mf[1], [user])["scores"][0].tolist()
    assert scores == sorted(scores, reverse=True)


def test_rating_falls_back_to_the_global_mean_for_an_unknown_item(mf: Any) -> None:
    prepared, export = mf
    rate = tf.saved_model.load(str(export)).signatures["rating"]
    out = rate(user=tf.constant(["0", "nobody"]), item=tf.constant(["no-such-item", "also-new"]))["rating"].numpy()
    assert out.tolist() == pytest.approx([prepared.plan["global_mean"]] * 2)


def test_mf_beats_the_popularity_baseline_on_taste_groups(mf: Any) -> None:
    prepared, export = mf
    scores, details = prepared.evaluate(export)
    assert scores["ndcg_at_k"] > details["baseline"]["ndcg_at_k"] + 0.1
    assert scores["rmse"] < details["baseline"]["rmse"]
    assert sorted(scores) == [
        "k",
        "mae",
        "ndcg_at_k",
        "precision_at_k",
        "recall_at_k",
        "rmse",
        "test_rows",
        "test_users",
    ]
    assert (details["rows"], details["users"], details["items"]) == (
        {"train": 720, "validation": 120, "test": 120},
        60,
        60,
    )


def test_two_tower_trains_exports_and_serves(tmp_path: Path) -> None:
    prepared, export = trained(tmp_path, tastes(users=30), ROLES, epochs=1, architecture="two-tower")
    scores, _ = prepared.evaluate(export)
    out = serve(export, ["0", "nobody"])
    assert (out["items"].shape, out["known"].tolist(), scores["test_users"] > 0) == ((2, 10), [True, False], True)


def test_implicit_feedback_trains_and_evaluates(tmp_path: Path) -> None:
    frame = tastes(users=30).drop(columns="rating")
    prepared, export = trained(tmp_path, frame, ROLES | {"rating": None}, epochs=2)
    scores, details = prepared.evaluate(export)
    assert prepared.plan["implicit"] and prepared.train_examples == 30 * 12 * (1 + recommend.NEGATIVES)
    assert sorted(scores) == ["k", "ndcg_at_k", "precision_at_k", "recall_at_k", "test_rows", "test_users"]
    assert "rmse" not in details["baseline"]


def test_mixed_precision_build_trains_a_step_with_float32_output() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        prepared = recommend.prepare(TaskData(tastes(users=20), ROLES), spec=spec(), batch_size=32)
        model = prepared.build()
        history = model.fit(prepared.train, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
        batch = next(iter(prepared.train))[0]
        assert (model(batch).dtype, np.isfinite(history.history["loss"][0])) == ("float32", True)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("rating", ["rating", None])
def test_the_pipelines_keep_their_prefetch_under_op_determinism(rating: str | None) -> None:
    frame = tastes(users=20) if rating else tastes(users=20).drop(columns="rating")
    p = recommend.prepare(TaskData(frame, ROLES | {"rating": rating}), spec=spec(), batch_size=32)
    assert (pipeline_slowdowns(p.train), pipeline_slowdowns(p.validation)) == ([], [])


def test_the_bias_baseline_recovers_ratings_made_of_a_mean_and_user_and_item_offsets() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.normal(0, 0.5, 100), rng.normal(0, 0.8, 80)
    pairs = pd.DataFrame({"u": rng.integers(0, 100, 20000), "i": rng.integers(0, 80, 20000)}).drop_duplicates()
    rating = 3.5 + users[pairs["u"]] + items[pairs["i"]] + rng.normal(0, 0.1, len(pairs))
    frame = pd.DataFrame({"user": "u" + pairs["u"].astype(str), "item": "i" + pairs["i"].astype(str), "rating": rating})
    train, test = frame.iloc[: len(frame) * 4 // 5], frame.iloc[len(frame) * 4 // 5 :]
    guess = recommend.bias_baseline(train)(test)
    item_mean = test["item"].map(train.groupby("item")["rating"].mean()).to_numpy()
    rmse = float(np.sqrt(np.mean((guess - test["rating"].to_numpy()) ** 2)))
    assert rmse < 0.2 < float(np.sqrt(np.mean((item_mean - test["rating"].to_numpy()) ** 2)))  # users differ
    unknown = recommend.bias_baseline(train)(pd.DataFrame({"user": ["nobody"], "item": ["nothing"]}))
    assert unknown == pytest.approx([train["rating"].mean()])
