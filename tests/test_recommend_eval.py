"""A recommender scored on ratings it never saw: `modeldeck eval RUN --input FILE` on a file of later ratings,
through the export, with the baselines on the same rows; and the shared scoring on stub signatures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models import recommend
from models.spec import RecommenderSpec
from tests import factories


def later_ratings(seen: pd.DataFrame) -> pd.DataFrame:
    """Three items per user the user had not rated, rated by the same taste rule; six rows of two users the model
    never saw; one row of an item it never saw."""
    rows = []
    for user, had in seen.groupby("user_id")["item_id"]:
        new = [f"i{n}" for n in range(30) if f"i{n}" not in set(had)][:3]
        rows += [(user, item, 5.0 if int(user[1:]) % 3 == int(item[1:]) % 3 else 1.0) for item in new]
    rows += [(stranger, f"i{n}", 4.0) for stranger in ("stranger1", "stranger2") for n in range(3)]
    rows.append(("u0", "i999", 3.0))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


@pytest.fixture(scope="module")
def ratings_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A recommendation run trained through the CLI on timed ratings: {home, run_id, root}."""
    root = tmp_path_factory.mktemp("ratings")
    home = root / "home"
    frame = factories.ratings_frame()
    frame["timestamp"] = 1_700_000_000 + np.arange(len(frame)) * 60
    frame.to_csv(root / "ratings.csv", index=False)
    later_ratings(frame).to_csv(root / "later.csv", index=False)
    factories.cli_json(home, "data", "add", str(root / "ratings.csv"))
    tiny = ["--set", "epochs=3", "--set", "embedding_dim=8", "--set", "top_k=5"]
    result = factories.cli_json(home, "train", "ratings", "--task", "recommendation", *tiny, "--wait")
    assert result["status"] == "succeeded", result
    return {"home": home, "run_id": result["run_id"], "root": root}


def test_eval_input_scores_later_ratings_beside_the_baselines(ratings_run: dict[str, Any]) -> None:
    out = factories.cli_json(
        ratings_run["home"], "eval", str(ratings_run["run_id"]), "--input", str(ratings_run["root"] / "later.csv")
    )
    metrics = out["metrics"]
    assert sorted(metrics) == [
        "baseline",
        "k",
        "mae",
        "ndcg_at_k",
        "precision_at_k",
        "recall_at_k",
        "rmse",
        "test_rows",
        "test_users",
        "unknown_item_rows",
        "unknown_user_rows",
    ]
    assert sorted(metrics["baseline"]) == ["ndcg_at_k", "precision_at_k", "recall_at_k", "rmse", "rmse_rule", "rule"]
    counts = {key: metrics[key] for key in ("k", "test_rows", "unknown_user_rows", "unknown_item_rows")}
    assert counts == {"k": 5, "test_rows": 127, "unknown_user_rows": 6, "unknown_item_rows": 1}
    assert np.isfinite([metrics["rmse"], metrics["mae"], metrics["baseline"]["rmse"]]).all()
    assert 0 < metrics["test_users"] <= 40


def test_a_timed_run_held_out_each_users_latest_ratings(ratings_run: dict[str, Any]) -> None:
    shown = factories.cli_json(ratings_run["home"], "runs", "show", str(ratings_run["run_id"]))
    plan = (ratings_run["home"] / "runs" / str(shown["run_id"]) / "plan.json").read_text()
    assert ('"holdout": "latest"' in plan, '"time": "timestamp"' in plan) == (True, True)
    assert (shown["holdout"], shown["baseline"]["rmse_rule"]) == ("latest", "mean + user and item biases")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            pd.DataFrame({"customer": ["u1"], "item_id": ["i1"]}),
            "Missing columns in 'bad.csv': user_id, rating. Run {run} is scored on the columns it trained on: "
            "user_id, item_id, rating. Name the file's columns the same.",
        ),
        (
            pd.DataFrame({"user_id": ["nobody", "noone"], "item_id": ["i1", "i2"], "rating": [4.0, 2.0]}),
            "None of the 2 users in 'bad.csv' (column 'user_id') was in run {run}'s training data, so there is "
            "nothing to score. Give ratings of users the model knows.",
        ),
        (
            pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "rating": ["good"]}),
            "'bad.csv' has no numbers in its 'rating' column. Give the ratings as numbers.",
        ),
    ],
    ids=["missing-columns", "no-known-users", "no-ratings"],
)
def test_bad_later_ratings_exit_2_with_one_line(ratings_run: dict[str, Any], rows: pd.DataFrame, message: str) -> None:
    bad = ratings_run["root"] / "bad.csv"
    rows.to_csv(bad, index=False)
    result = factories.cli(ratings_run["home"], "eval", str(ratings_run["run_id"]), "--input", str(bad))
    expected = "error: " + message.format(run=ratings_run["run_id"]).replace("'bad.csv'", f"'{bad}'")
    assert (result.returncode, result.stderr.strip().splitlines()[-1], "Traceback" in result.stderr) == (
        2,
        expected,
        False,
    )


# The shared scoring, on stub signatures: no TensorFlow.


def stub_plan(train: pd.DataFrame) -> recommend.Plan:
    return recommend.make_plan(train, train[:0], train[:0], ("user_id", "item_id", "rating", None), RecommenderSpec())


def test_rating_error_counts_only_rows_whose_user_and_item_the_model_knows() -> None:
    train = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": [4.0, 2.0, 4.0]})
    rows = pd.DataFrame(
        {"user": ["a", "b", "b", "new"], "item": ["z", "y", "new", "x"], "rating": [5.0, 3.0, 1.0, 1.0]}
    )
    plan = stub_plan(train)

    def rate(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"rating": np.full(len(frame), 4.0)}  # an export before `known_user`: the training rows tell

    def recommend_items(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"items": np.array([[b"y", b""]] * len(frame), dtype=object)}

    scored = recommend.score_interactions(rows, plan=plan, rate=rate, recommend=recommend_items, train=train)
    assert (scored.unknown_user_rows, scored.unknown_item_rows) == (1, 2)
    assert (scored.scores["rmse"], scored.scores["mae"], scored.scores["test_rows"]) == (1.0, 1.0, 4)
    guess = recommend.bias_baseline(train)(rows.iloc[[1]])[0]  # b rated y 3.0
    assert scored.baseline["rmse"] == pytest.approx(abs(guess - 3.0))
