"""The text-generation family: a tiny GPT learns a repetitive corpus, generates from its export with plain
TensorFlow, and samples exactly as asked (greedy, top-k, top-p, seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import gpt
from models.spec import GptSpec
from models.task import TaskData
from tests.factories import pipeline_slowdowns

ANIMALS = ["cat", "dog", "rat", "cow", "hen", "pig"]
TINY = GptSpec(block_size=32, n_layer=1, n_head=2, n_embd=32, dropout=0.0, learning_rate=0.005, vocab_size=64)


def corpus(documents: int = 150, seed: int = 0) -> pd.DataFrame:
    """Documents of 2-5 sentences "the <animal> sat on the mat.", plus a missing and an empty row."""
    rng = np.random.default_rng(seed)
    texts: list[Any] = [
        " ".join(f"the {a} sat on the mat." for a in rng.choice(ANIMALS, int(rng.integers(2, 6))))
        for _ in range(documents)
    ]
    return pd.DataFrame({"text": [*texts, None, "   "], "id": range(documents + 2)})


def task(frame: pd.DataFrame) -> TaskData:
    return TaskData(frame=frame, roles={"text": "text", "target": None})


def generate(signature: Any, prompts: list[str], **knobs: Any) -> list[str]:
    """The export's `generate` signature with one value per prompt for every knob."""
    n = len(prompts)
    values = {"max_new_tokens": 30, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0} | knobs
    dtypes = {"max_new_tokens": tf.int32, "temperature": tf.float32, "top_k": tf.int32, "top_p": tf.float32}
    inputs = {k: tf.constant(v if isinstance(v, list) else [v] * n, dtypes.get(k, tf.int32)) for k, v in values.items()}
    out = signature(prompt=tf.constant(prompts), **inputs)["text"].numpy()
    return [t.decode("utf-8") for t in out]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny GPT trained for a few epochs on the sentence corpus, exported: {prepared, net, path, loaded}."""
    keras.utils.set_random_seed(TINY.seed)
    prepared = gpt.prepare(task(corpus()), spec=TINY, batch_size=16)
    net = prepared.build()
    net.fit(prepared.train, validation_data=prepared.validation, epochs=6, verbose=0, shuffle=False)
    path = tmp_path_factory.mktemp("gpt") / "export" / "1"
    prepared.export(net, path)
    return {"prepared": prepared, "net": net, "path": path, "loaded": tf.saved_model.load(str(path))}


def test_greedy_generation_continues_the_pattern(trained: dict[str, Any]) -> None:
    texts = generate(trained["loaded"].signatures["generate"], ["the dog sat on", "the pig sat on the mat. the"])
    sentences = {f" {a} sat on the mat." for a in ANIMALS}
    assert (texts[0][:9], texts[1][:20] in sentences) == (" the mat.", True)


def test_greedy_generation_is_the_same_whatever_the_seed(trained: dict[str, Any]) -> None:
    signature = trained["loaded"].signatures["generate"]
    assert generate(signature, ["the cow"], seed=1) == generate(signature, ["the cow"], seed=2)


def test_top_k_of_one_equals_greedy(trained: dict[str, Any]) -> None:
    signature = trained["loaded"].signatures["generate"]
    prompts = ["the hen", "the"]
    assert generate(signature, prompts, temperature=1.0, top_k=1, seed=5) == generate(signature, prompts)


def test_a_seeded_sampled_request_is_reproducible(trained: dict[str, Any]) -> None:
    signature = trained["loaded"].signatures["generate"]
    first = generate(signature, ["the", "the rat"], temperature=1.5, top_k=0, seed=[3, 4])
    assert generate(signature, ["the", "the rat"], temperature=1.5, top_k=0, seed=[3, 4]) == first


def test_prompts_of_different_lengths_generate_as_they_would_alone(trained: dict[str, Any]) -> None:
    signature = trained["loaded"].signatures["generate"]
    prompts = ["", "the cat", "the dog sat on the mat. the cow sat on the mat. the hen sat on"]
    alone = [generate(signature, [p], max_new_tokens=40)[0] for p in prompts]
    assert generate(signature, prompts, max_new_tokens=40) == alone


def test_max_new_tokens_is_per_prompt_and_capped(trained: dict[str, Any]) -> None:
    signature = trained["loaded"].signatures["generate"]
    texts = generate(signature, ["the dog sat on", "the dog sat on", "the dog sat on"], max_new_tokens=[5, 0, 10**6])
    assert [texts[0], texts[1], len(texts[2]) <= gpt.MAX_NEW_TOKENS] == [" the ", "", True]


def test_plain_tensorflow_runs_both_signatures(trained: dict[str, Any]) -> None:
    loaded = tf.saved_model.load(str(trained["path"]))
    default = loaded.signatures["serving_default"](prompt=tf.constant(["the cat", "猫"]))
    sampled = loaded.signatures["generate"](
        prompt=tf.constant(["the cat"]),
        max_new_tokens=tf.constant([8]),
        temperature=tf.constant([0.8]),
        top_k=tf.constant([40]),
        top_p=tf.constant([0.95]),
        seed=tf.constant([0]),
    )
    assert [(k, v.dtype, v.shape.as_list()) for k, v in (*default.items(), *sampled.items())] == [
        ("text", tf.string, [2]),
        ("text", tf.string, [1]),
    ]


def test_the_trained_model_beats_the_unigram_baseline(trained: dict[str, Any]) -> None:
    metrics, details = trained["prepared"].evaluate(trained["path"])
    assert (
        metrics["perplexity"] < details["baseline"]["perplexity"] / 3,
        metrics["test_tokens"],
        details["baseline"]["rule"],
        [sorted(s) for s in details["samples"]],
        details["rows"],
    ) == (
        True,
        trained["prepared"].plan["tokens"]["test"] - 1,
        "character frequencies",
        [["prompt", "text"]] * 3,
        {
            "train": 104,
            "validation": 23,
            "test": 23,
        },
    )


def test_documents_are_split_whole_and_reproducibly() -> None:
    docs = [f"document {i}" for i in range(40)]
    train, val, test = gpt.split(docs, TINY)
    assert (sorted(train + val + test) == sorted(docs), gpt.split(docs, TINY) == (train, val, test)) == (True, True)


def test_training_windows_are_next_token_pairs(trained: dict[str, Any]) -> None:
    x, y = next(iter(trained["prepared"].train))
    assert (x.shape.as_list(), y.shape.as_list(), bool(tf.reduce_all(x[:, 1:] == y[:, :-1]))) == (
        [16, 32],
        [16, 32],
        True,
    )


def test_sampling_never_picks_a_token_outside_the_top_k() -> None:
    logits = np.random.default_rng(0).permutation(np.arange(50) * 0.1).astype("float32")
    seeds = [[seed, 0] for seed in range(300)]  # one row per seed: each row draws with its own seed
    picks = set(gpt.sample_next(np.tile(logits, (300, 1)), 1.0, 5, 1.0, seeds).numpy().tolist())
    assert picks == set(np.argsort(-logits)[:5].tolist())


def test_top_p_keeps_the_smallest_set_that_reaches_p() -> None:
    logits = np.log(np.tile([[0.05, 0.5, 0.15, 0.3]], (200, 1)))
    picks = set(gpt.sample_next(logits, 1.0, 0, 0.75, [[seed, 1] for seed in range(200)]).numpy().tolist())
    assert picks == {1, 3}


def test_a_small_top_p_acts_like_greedy() -> None:
    logits = tf.constant(np.random.default_rng(1).normal(size=(4, 30)), tf.float32)
    seeds = tf.constant([[s, 0] for s in range(4)])
    picks = [gpt.sample_next(logits, 2.0, 0, 0.01, seeds).numpy().tolist() for _ in range(3)]
    assert picks == [np.argmax(logits.numpy(), axis=1).tolist()] * 3


def test_temperature_zero_is_argmax_whatever_the_seed() -> None:
    logits = tf.constant(np.random.default_rng(2).normal(size=(3, 20)), tf.float32)
    picks = {tuple(gpt.sample_next(logits, 0.0, 0, 1.0, [seed, 9]).numpy().tolist()) for seed in range(3)}
    assert picks == {tuple(np.argmax(logits.numpy(), axis=1).tolist())}


def test_chinese_text_round_trips_through_the_char_tokenizer() -> None:
    text = "我喜欢这个咖啡，味道很好。"
    tokenizer = gpt.make_tokenizer([text, "好咖啡"], TINY)
    ids = tokenizer.encode(tf.constant([text]))
    assert (tokenizer.decode(ids.to_tensor()).numpy()[0].decode("utf-8"), ids.row_lengths().numpy().tolist()) == (
        text,
        [13],
    )


def test_subword_pieces_round_trip_in_fewer_tokens() -> None:
    texts = corpus(60)["text"].dropna().tolist() + ["我喜欢这个咖啡"]
    tokenizer = gpt.make_tokenizer(texts, GptSpec(tokenizer="subword", vocab_size=64))
    sample = ["the dog sat on the mat.  the moth", "我喜欢咖啡"]
    ids = tokenizer.encode(tf.constant(sample))
    decoded = [t.decode("utf-8") for t in tokenizer.decode(ids.to_tensor()).numpy()]
    assert (decoded, ids.row_lengths().numpy()[0] < len(sample[0]) // 2) == (sample, True)


def test_unknown_characters_become_the_unknown_token() -> None:
    tokenizer = gpt.make_tokenizer(["aab"], TINY)
    assert tokenizer.encode(tf.constant(["abz"])).to_list() == [[3, 4, gpt.UNK]]


def test_a_corpus_too_short_for_one_window_says_how_to_fix_it() -> None:
    frame = pd.DataFrame({"text": ["the cat sat.", "the dog sat.", "a hen.", "a pig.", "a cow."]})
    with pytest.raises(ValueError, match=r"too few for one window.*Add more text, or lower block_size"):
        gpt.prepare(task(frame), spec=TINY, batch_size=16)


def test_fewer_than_three_documents_are_refused() -> None:
    frame = pd.DataFrame({"text": ["the cat sat on the mat. " * 50, None, ""]})
    with pytest.raises(ValueError, match=r"has 1 non-empty texts; text generation needs at least 3"):
        gpt.prepare(task(frame), spec=TINY, batch_size=16)


def test_a_missing_text_column_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Text generation needs a text column"):
        gpt.prepare(TaskData(frame=corpus(), roles={"text": None}), spec=TINY, batch_size=16)


def test_mixed_precision_builds_and_trains_a_step(tmp_path: Path) -> None:
    prepared = gpt.prepare(task(corpus(40)), spec=TINY, batch_size=8)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        net = prepared.build()
        history = net.fit(prepared.train.take(1), epochs=1, verbose=0, shuffle=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    logits = net(tf.constant([[2, 3, 4]]))
    assert (logits.dtype, bool(np.isfinite(history.history["loss"][0]))) == (tf.float32, True)


def test_the_pipelines_keep_their_prefetch_under_op_determinism() -> None:
    p = gpt.prepare(task(corpus()), spec=TINY, batch_size=16)
    assert (pipeline_slowdowns(p.train), pipeline_slowdowns(p.validation)) == ([], [])
