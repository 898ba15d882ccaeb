"""Text classification family: prepare -> build -> fit -> export -> plain-TF serving -> evaluate, on tiny
generated sentiment data."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import text
from models.spec import TextSpec
from models.task import Prepared, TaskData
from tests import factories
from tests.factories import pipeline_slowdowns

POSITIVE = ["great", "love", "tasty", "excellent", "wonderful", "fresh", "delicious", "perfect"]
NEGATIVE = ["awful", "hate", "stale", "bland", "terrible", "broken", "rotten", "disappointing"]
FILLER = ["the", "food", "was", "really", "and", "this", "product", "i", "it", "very", "box", "arrived"]
ROLES: dict[str, str | None] = {"text": "review", "target": "sentiment"}


def sentiment_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Sentences of shared filler words plus two words from the label's list: separable by vocabulary."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(rows):
        label = "pos" if i % 2 else "neg"
        words = [*rng.choice(FILLER, 6), *rng.choice(POSITIVE if label == "pos" else NEGATIVE, 2)]
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + "!")
        labels.append(label)
    return pd.DataFrame({"review": texts, "sentiment": labels})


def chinese_frame(rows: int = 60) -> pd.DataFrame:
    good, bad = ["很好吃", "喜欢这个", "非常新鲜"], ["太难吃了", "不喜欢", "坏了"]
    texts = [(good if i % 2 else bad)[i % 3] + "。" for i in range(rows)]
    return pd.DataFrame({"review": texts, "sentiment": ["good" if i % 2 else "bad" for i in range(rows)]})


def tiny_spec(**overrides) -> TextSpec:
    values = {
        "architecture": "bag",
        "sequence_length": 16,
        "max_tokens": 100,
        "embedding_dim": 8,
        "ff_dim": 16,
        "learning_rate": 0.01,
        "ngrams": 1,
    }
    return TextSpec(**(values | overrides))


def prepared(frame: pd.DataFrame, spec: TextSpec, roles: dict[str, str | None] = ROLES) -> Prepared:
    return text.prepare(TaskData(frame, roles), spec=spec, batch_size=16)


def trained(frame: pd.DataFrame, spec: TextSpec, epochs: int) -> tuple[Prepared, keras.Model]:
    keras.utils.set_random_seed(spec.seed)
    p = prepared(frame, spec)
    model = p.build()
    model.fit(p.train, validation_data=p.validation, epochs=epochs, verbose=0, shuffle=False)
    return p, model


def serve(export_dir: Path):
    return tf.saved_model.load(str(export_dir)).signatures["serving_default"]


def test_bag_learns_separable_sentiment_and_evaluates_its_export(tmp_path: Path) -> None:
    p, model = trained(sentiment_frame(), tiny_spec(architecture="bag"), epochs=8)
    p.export(model, tmp_path / "export")
    scores, details = p.evaluate(tmp_path / "export")
    assert scores["accuracy"] > 0.8
    assert set(scores) == factories.CLASSIFIER_METRICS
    assert scores["test_rows"] == 36
    assert set(details) == {
        *("classes", "confusion_matrix", "roc", "pr", "calibration", "gains", "baseline", "rows", "examples"),
        "test_scores",  # each test case's score, which the engine keeps beside the run
        "test_predictions",  # each test text's position, label and prediction: the engine keeps them for the gallery
    }
    assert details["rows"] == {"train": 168, "validation": 36, "test": 36}
    assert details["classes"] == ["neg", "pos"]
    kept, labels = details["test_predictions"], sentiment_frame()["sentiment"]
    assert (len(kept["row"]), kept["actual"].tolist()) == (36, labels.iloc[kept["row"]].tolist())


@pytest.mark.parametrize("architecture", ["bag", "cnn", "transformer"])
def test_each_architecture_exports_a_signature_on_raw_strings(tmp_path: Path, architecture: str) -> None:
    p, model = trained(sentiment_frame(rows=80), tiny_spec(architecture=architecture), epochs=1)
    p.export(model, tmp_path / "export")
    signature = serve(tmp_path / "export")
    out = signature(text=tf.constant(["Great tasty food!", "awful, stale", ""]))
    assert signature.structured_input_signature == ((), {"text": tf.TensorSpec([None], tf.string, name="text")})
    assert {k: (v.dtype, v.shape.as_list()) for k, v in out.items()} == {
        "probabilities": (tf.float32, [3, 2]),
        "label": (tf.string, [3]),
        "classes": (tf.string, [3, 2]),
    }
    assert out["classes"].numpy().tolist() == [[b"neg", b"pos"]] * 3
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), [1.0, 1.0, 1.0], rtol=1e-5)


def test_plan_names_classes_vocabulary_and_rows() -> None:
    p = prepared(sentiment_frame(), tiny_spec())
    assert p.plan == {
        "task": "text-classification",
        "text": "review",
        "target": "sentiment",
        "classes": ["neg", "pos"],
        "architecture": "bag",
        "vocabulary_size": 2 + len(POSITIVE) + len(NEGATIVE) + len(FILLER),  # + padding and unknown
        "sequence_length": 16,
        "median_tokens": 8.0,
        "truncated_share": 0.0,
        "rows": {"train": 168, "validation": 36, "test": 36},
        "dropped_rows": 0,
    }
    assert p.train_examples == 168


def test_training_batches_are_int32_token_sequences_with_class_indices() -> None:
    p = prepared(sentiment_frame(), tiny_spec())
    tokens, labels = next(iter(p.train))
    assert (tokens.dtype, tokens.shape.as_list(), labels.dtype, labels.shape.as_list()) == (
        tf.int32,
        [16, 16],
        tf.int64,
        [16],
    )
    assert p.train.cardinality().numpy() == 11  # ceil(168 / 16): Keras knows the epoch length


def test_the_split_and_shuffle_are_reproducible_with_the_seed() -> None:
    first = prepared(sentiment_frame(), tiny_spec(seed=7))
    second = prepared(sentiment_frame(), tiny_spec(seed=7))
    a, b = next(iter(first.train)), next(iter(second.train))
    assert a[0].numpy().tolist() == b[0].numpy().tolist()
    assert a[1].numpy().tolist() == b[1].numpy().tolist()


def test_standardize_lowercases_strips_punctuation_and_splits_cjk_characters() -> None:
    raw = tf.constant(["I don't LIKE it!!<br />Salsa/hot", "很好吃！", "とても美味しい", "맛있어요 정말"])
    words = [s.decode().split() for s in text.standardize_text(raw).numpy()]
    assert words == [
        ["i", "dont", "like", "it", "salsa", "hot"],
        ["很", "好", "吃"],
        ["と", "て", "も", "美", "味", "し", "い"],
        ["맛있어요", "정말"],  # Korean writes spaces between words: kept whole
    ]


def test_chinese_sentences_tokenise_per_character() -> None:
    vectorizer = text.make_vectorizer(chinese_frame()["review"].to_numpy(dtype=str), tiny_spec())
    tokens = vectorizer(tf.constant(["很好吃"])).numpy()
    assert int(np.count_nonzero(tokens)) == 3
    assert 1 not in tokens.tolist()[0]  # every character is in the vocabulary (1 is the unknown word)


def test_chinese_export_serves_raw_strings(tmp_path: Path) -> None:
    p, model = trained(chinese_frame(), tiny_spec(), epochs=1)
    p.export(model, tmp_path / "export")
    out = serve(tmp_path / "export")(text=tf.constant(["很好吃", "太难吃了"]))
    assert out["probabilities"].shape.as_list() == [2, 2]
    assert out["classes"].numpy().tolist() == [[b"bad", b"good"]] * 2


def test_vectorizer_with_the_registered_standardize_round_trips_through_keras_saving(tmp_path: Path) -> None:
    vectorizer = text.make_vectorizer(np.array(["good food", "很好"]), tiny_spec(sequence_length=6))
    raw = keras.Input(shape=(), dtype="string")
    keras.Model(raw, vectorizer(raw)).save(tmp_path / "vectorizer.keras")
    again = keras.saving.load_model(tmp_path / "vectorizer.keras")
    raw_text = tf.constant(["Good, 很好 soup!"])
    assert again(raw_text).numpy().tolist() == vectorizer(raw_text).numpy().tolist()
    assert again(raw_text).numpy()[0, 3:].tolist() == [1, 0, 0]  # good 很 好, then unknown "soup", then padding


def test_rows_with_missing_label_or_empty_text_are_dropped() -> None:
    frame = sentiment_frame()
    frame.loc[0, "sentiment"] = None
    frame.loc[1, "review"] = "   "
    frame.loc[2, "review"] = None
    p = prepared(frame, tiny_spec())
    assert p.plan["dropped_rows"] == 3
    assert sum(p.plan["rows"].values()) == 237


def test_each_usable_text_keeps_its_position_in_the_frame() -> None:
    frame = sentiment_frame()
    frame.loc[0, "sentiment"] = None
    frame.loc[1, "review"] = "   "
    rows, *_ = text.usable_rows(TaskData(frame, ROLES))
    assert rows["_row"].tolist()[:3] == [2, 3, 4]
    assert rows["text"].tolist() == frame["review"].iloc[rows["_row"]].tolist()


def test_numeric_labels_become_sorted_string_classes() -> None:
    frame = sentiment_frame().assign(sentiment=lambda f: np.where(f["sentiment"] == "pos", 10, 2))
    p = prepared(frame, tiny_spec())
    assert p.plan["classes"] == ["10", "2"]


def test_a_single_class_raises_a_clear_error() -> None:
    frame = sentiment_frame().assign(sentiment="pos")
    with pytest.raises(ValueError, match=r"same label \('pos'\); a classifier needs at least two classes"):
        prepared(frame, tiny_spec())


def test_too_few_labelled_texts_raise_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Only 6 rows have both a text in 'review' and a label in 'sentiment'"):
        prepared(sentiment_frame(rows=6), tiny_spec())


def test_a_missing_text_column_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Text column 'body' not found. Expected one of: review, sentiment"):
        prepared(sentiment_frame(), tiny_spec(), roles={"text": "body", "target": "sentiment"})


def test_no_text_role_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"No text column chosen. Pick the column that holds the texts \(review, "):
        prepared(sentiment_frame(), tiny_spec(), roles={"text": None, "target": "sentiment"})


def test_examples_put_the_most_confident_mistakes_first() -> None:
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]], dtype="float32")
    rows = text.examples(["a", "b", "c", "d"], ["pos", "pos", "pos", "neg"], probabilities, ["neg", "pos"])
    assert [(r["text"], r["correct"]) for r in rows] == [("a", False), ("d", False), ("b", False), ("c", True)]
    assert rows[0] == {"text": "a", "true": "pos", "predicted": "neg", "confidence": 0.9, "correct": False}


def test_transformer_round_trips_through_keras_saving(tmp_path: Path) -> None:
    spec = tiny_spec(architecture="transformer", num_layers=2)
    p = prepared(sentiment_frame(rows=80), spec)
    model = text.network(p.plan["vocabulary_size"], 2, spec)
    model.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras")
    tokens, _ = next(iter(p.validation))
    np.testing.assert_allclose(again.predict(tokens, verbose=0), model.predict(tokens, verbose=0), rtol=1e-5)


@pytest.mark.parametrize("architecture", ["bag", "transformer"])
def test_mixed_precision_build_trains_a_step_with_float32_probabilities(architecture: str) -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        p = prepared(sentiment_frame(rows=80), tiny_spec(architecture=architecture))
        model = p.build()
        history = model.fit(p.train.take(1), epochs=1, verbose=0, shuffle=False)
        tokens, _ = next(iter(p.validation))
        assert model.get_layer("embedding").compute_dtype == "float16"
        assert model(tokens).dtype == "float32"
        assert np.isfinite(history.history["loss"][0])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_bag_with_word_pairs_learns_pairs_into_its_vocabulary() -> None:
    p = prepared(sentiment_frame(), tiny_spec(ngrams=2, max_tokens=1000, sequence_length=32))
    assert p.plan["vocabulary_size"] > 2 + len(POSITIVE) + len(NEGATIVE) + len(FILLER)


def test_the_pipelines_keep_their_prefetch_under_op_determinism() -> None:
    p = prepared(sentiment_frame(40), tiny_spec())
    assert (pipeline_slowdowns(p.train), pipeline_slowdowns(p.validation)) == ([], [])
