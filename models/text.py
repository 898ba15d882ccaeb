"""Text classification: a TextVectorization vocabulary, then a bag of embeddings, a 1-D CNN or a small
Transformer encoder trained from scratch; or the pretrained MiniLM-L6 encoder with a small head (section 10).
`architecture=auto` trains the bag and the pretrained model and keeps the better on the validation texts.

The pieces, leaves first: the standardizer (lower-case, no punctuation, every CJK character a word), the
Transformer layers, the three networks, the data checks and split, the vectorizer and tf.data pipelines,
and the export whose `serving_default` takes one raw string per example and returns named outputs.
Training feeds the network integer token sequences that tf.data vectorises once and caches; the export
runs the same adapted vectorizer in front of the network, so training and serving cannot disagree.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from models import devices, metrics, minilm
from models.spec import TextSpec, TrainingSpec, pretrained_installed
from models.splits import three_way
from models.task import (
    LIGHT_STEPS_PER_EXECUTION,
    Choice,
    Prepared,
    TaskData,
    call_batched,
    classified,
    in_chunks,
    prefetched,
    write_export,
)

MIN_ROWS = 10  # fewer labelled texts cannot fill a train, a validation and a test split
EXAMPLES = 20  # test texts shown on the Evaluation page
EXAMPLE_CHARS = 300
EVAL_BATCH = 256
# `architecture=auto` tries the pretrained model beside the bag of words up to this many labelled texts on a CPU,
# where the encoder reads 5 to 50 texts a second (minutes for 2,000), and at any size on a GPU. Fewer labels are
# also where it wins: on the 4,000 fine-food reviews the bag beats its frozen head (README).
AUTO_PRETRAINED_TEXTS = 2_000

# Scripts written without spaces between words: each character becomes a word of its own.
_CJK = r"([\p{Han}\p{Hiragana}\p{Katakana}])"


# 1. Standardize: one registered function, so the vectorizer's config stays serializable and the
#    exported graph needs no ModelDeck code.
@keras.saving.register_keras_serializable(package="modeldeck")
def standardize_text(text: tf.Tensor) -> tf.Tensor:
    """Lower-case, drop HTML tags and punctuation, and put spaces around every Chinese/Japanese character.

    Args:
        text: a tf.string tensor of any shape.

    Returns:
        The standardized strings, same shape, ready for a whitespace split.
    """
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"<[^>]*>", " ")  # <br /> in scraped reviews
    text = tf.strings.regex_replace(text, r"['’]", "")  # don't -> dont: negations stay one word
    text = tf.strings.regex_replace(text, r"[\p{P}\p{S}]", " ")  # Unicode punctuation and symbols, CJK's too
    return tf.strings.regex_replace(text, _CJK, r" \1 ")


# 2. Layers. Position 0 of the vocabulary is padding: the embedding's mask hides it from
#    attention and from the averages.
@keras.saving.register_keras_serializable(package="modeldeck")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus a learned embedding of each position; masks the padding tokens."""

    def __init__(self, vocabulary_size: int, sequence_length: int, embedding_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.tokens = keras.layers.Embedding(vocabulary_size, embedding_dim, dtype=self.dtype_policy, name="tokens")
        self.positions = keras.layers.Embedding(
            sequence_length, embedding_dim, dtype=self.dtype_policy, name="positions"
        )

    def build(self, input_shape: Any) -> None:
        self.tokens.build(input_shape)
        self.positions.build((self.sequence_length,))
        self.built = True

    def call(self, tokens: Any) -> Any:
        length = keras.ops.shape(tokens)[-1]
        return self.tokens(tokens) + self.positions(keras.ops.arange(length))

    def compute_mask(self, tokens: Any, mask: Any = None) -> Any:
        return keras.ops.not_equal(tokens, 0)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*input_shape, self.embedding_dim)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "embedding_dim": self.embedding_dim,
        }


@keras.saving.register_keras_serializable(package="modeldeck")
class EncoderBlock(keras.layers.Layer):
    """Pre-norm Transformer encoder block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        ff_dim: int,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.seed = seed
        self.supports_masking = True
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name="norm1")
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, embedding_dim // num_heads, dropout=dropout, seed=seed, dtype=policy, name="attention"
        )
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name="norm2")
        self.hidden = keras.layers.Dense(ff_dim, activation="gelu", dtype=policy, name="hidden")
        self.project = keras.layers.Dense(embedding_dim, dtype=policy, name="project")
        self.drop = keras.layers.Dropout(dropout, seed=None if seed is None else seed + 1, dtype=policy)

    def build(self, input_shape: Any) -> None:
        self.norm1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm2.build(input_shape)
        self.hidden.build(input_shape)
        self.project.build((*input_shape[:-1], self.ff_dim))
        self.built = True

    def call(self, x: Any, mask: Any = None, training: bool | None = None) -> Any:
        # Padding keys get no attention; padded positions' outputs are ignored by the masked pooling.
        attention_mask = None if mask is None else keras.ops.expand_dims(mask, axis=1)
        h = self.norm1(x)
        x = x + self.attention(h, h, attention_mask=attention_mask, training=training)
        h = self.project(self.hidden(self.norm2(x)))
        return x + self.drop(h, training=training)

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        return mask

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "embedding_dim": self.embedding_dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="modeldeck")
class MaskedAverage(keras.layers.Layer):
    """Average over the unmasked positions; a text with no known word (all padding) averages to zeros, not NaN."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x: Any, mask: Any = None) -> Any:
        if mask is None:
            return keras.ops.mean(x, axis=1)
        weights = keras.ops.cast(keras.ops.expand_dims(mask, -1), x.dtype)
        return keras.ops.sum(x * weights, axis=1) / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1)

    def compute_mask(self, x: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], input_shape[-1])


# 3. The networks: int token sequences [batch, sequence_length] in, class probabilities out.
CNN_FILTERS = 128
CNN_KERNEL = 5


def network(vocabulary_size: int, num_classes: int, spec: TextSpec) -> keras.Model:
    """The classifier behind the vectorizer, chosen by `spec.architecture`.

    Args:
        vocabulary_size: the adapted vectorizer's vocabulary size (index 0 is padding, 1 unknown words).
        num_classes: width of the softmax.
        spec: the run's TextSpec.

    Returns:
        An uncompiled keras.Model with input `tokens` (int32) and output `probabilities` (float32).
    """
    tokens = keras.Input(shape=(spec.sequence_length,), dtype="int32", name="tokens")
    if spec.architecture == "bag":
        # Average of word embeddings, padding masked out: fast and strong on short, keyword-driven texts.
        x = keras.layers.Embedding(vocabulary_size, spec.embedding_dim, mask_zero=True, name="embedding")(tokens)
        x = MaskedAverage(name="average")(x)
    elif spec.architecture == "cnn":
        # Convolutions see word n-grams; max pooling keeps each filter's strongest match anywhere in the text.
        x = keras.layers.Embedding(vocabulary_size, spec.embedding_dim, name="embedding")(tokens)
        x = keras.layers.Dropout(spec.dropout, seed=spec.seed + 10)(x)
        x = keras.layers.Conv1D(CNN_FILTERS, CNN_KERNEL, padding="same", activation="relu", name="conv1")(x)
        x = keras.layers.MaxPooling1D(2, padding="same", name="pool1")(x)
        x = keras.layers.Conv1D(CNN_FILTERS, CNN_KERNEL, padding="same", activation="relu", name="conv2")(x)
        x = keras.layers.GlobalMaxPooling1D(name="max")(x)
    elif spec.architecture == "transformer":
        x = TokenAndPositionEmbedding(vocabulary_size, spec.sequence_length, spec.embedding_dim, name="embedding")(
            tokens
        )
        x = keras.layers.Dropout(spec.dropout, seed=spec.seed + 10)(x)
        for i in range(spec.num_layers):
            block = EncoderBlock(
                spec.embedding_dim, spec.num_heads, spec.ff_dim, spec.dropout, seed=spec.seed + 20 + 2 * i
            )
            x = block(x)
        x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
        x = MaskedAverage(name="average")(x)
    else:
        raise ValueError(f"Unknown architecture '{spec.architecture}'. Expected one of: bag, cnn, transformer.")
    x = keras.layers.Dropout(spec.dropout, seed=spec.seed)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(tokens, outputs, name=f"text_{spec.architecture}")


def compile_network(model: keras.Model, spec: TextSpec, optimizer: Any = None) -> None:
    light = spec.architecture == "bag" or (spec.architecture == "minilm" and not spec.fine_tune_layers)
    model.compile(
        optimizer or keras.optimizers.Adam(learning_rate=spec.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=LIGHT_STEPS_PER_EXECUTION if light else 1,  # see there
    )


# 4. Check the data and keep the usable rows: a text and a label.
def usable_rows(data: TaskData) -> tuple[pd.DataFrame, str, str, int]:
    """The labelled, non-empty texts as a frame with columns `text`, `label` (str) and `_row` (each text's position
    in the frame the engine passed in: its dataset version), and how many were dropped."""
    frame, roles = data.frame, data.roles
    text_col, target = roles.get("text"), roles.get("target")
    names = ", ".join(map(str, frame.columns))
    if not text_col:
        raise ValueError(f"No text column chosen. Pick the column that holds the texts ({names}) on the Data page.")
    if text_col not in frame.columns:
        raise ValueError(f"Text column '{text_col}' not found. Expected one of: {names}. Pick it on the Data page.")
    if not target:
        raise ValueError(f"No label column chosen. Pick the target ({names}) on the Data page.")
    if target not in frame.columns:
        raise ValueError(f"Label column '{target}' not found. Expected one of: {names}. Pick it on the Data page.")
    text = frame[text_col].astype("string").str.strip()
    keep = frame[target].notna() & text.notna() & (text != "")
    rows = pd.DataFrame({"text": text[keep].astype(str), "label": frame.loc[keep, target].astype(str)})
    rows = rows.reset_index(drop=True).assign(_row=np.flatnonzero(keep.to_numpy(dtype=bool)))
    if len(rows) < MIN_ROWS:
        raise ValueError(
            f"Only {len(rows)} rows have both a text in '{text_col}' and a label in '{target}'; "
            f"a text classifier needs at least {MIN_ROWS}. Add more labelled texts."
        )
    classes = rows["label"].unique()
    if len(classes) < 2:
        raise ValueError(
            f"Every labelled text in '{target}' has the same label ('{classes[0]}'); a classifier needs at least "
            "two classes. Add texts of another class or pick another target column."
        )
    return rows, text_col, target, int(len(frame) - len(rows))


# 5. Split once, reproducibly: train / validation / test, stratified by label where every class allows it.
def split(rows: pd.DataFrame, spec: TrainingSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return three_way(
        rows, test_split=spec.test_split, validation_split=spec.validation_split, seed=spec.seed, by=rows["label"]
    )


# 6. The vectorizer, adapted on the training texts only: the vocabulary is their most frequent words.
def make_vectorizer(texts: np.ndarray, spec: TextSpec) -> keras.layers.TextVectorization:
    vectorizer = keras.layers.TextVectorization(
        max_tokens=spec.max_tokens,
        standardize=standardize_text,
        split="whitespace",
        output_mode="int",
        output_sequence_length=spec.sequence_length,
        ngrams=spec.ngrams if spec.ngrams > 1 and spec.architecture == "bag" else None,  # word order matters elsewhere
        name="vectorizer",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    return vectorizer


def token_counts(texts: np.ndarray) -> np.ndarray:
    """Words per text after standardizing, before the cut at sequence_length."""
    words = tf.strings.split(standardize_text(tf.constant(texts)))
    return words.row_lengths().numpy()


def vectorize(texts: np.ndarray, vectorizer: keras.layers.TextVectorization) -> np.ndarray:
    """Raw texts -> int32 token ids, in large chunks, once. Not in a tf.data map: the vocabulary lookup is a
    stateful op, and under op determinism (on in every run) tf.data then turns the whole pipeline's prefetch off,
    which cost the bench's text model 14-18% per epoch."""
    return in_chunks(vectorizer, texts).astype("int32")


def dataset(
    texts: np.ndarray,
    y: np.ndarray,
    vectorizer: keras.layers.TextVectorization,
    *,
    batch_size: int,
    shuffle_seed: int | None,
) -> tf.data.Dataset:
    """Raw texts in, (int32 token sequences, class indices) batches out, from texts vectorised once."""
    ds = tf.data.Dataset.from_tensor_slices((vectorize(texts, vectorizer), y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return prefetched(ds.batch(batch_size))


# 7. Export in TensorFlow Serving's layout: one raw string per example in, named outputs out.
def export(model: keras.Model, vectorizer: keras.layers.Layer, classes: list[str], path: Path) -> None:
    """Write a SavedModel whose `serving_default` runs vectorizer + network on raw strings.

    Args:
        model: the trained network (int token sequences in, or the pretrained encoder's embeddings).
        vectorizer: the adapted vectorizer the training data went through, or the pretrained encoder.
        classes: class names, index = output position.
        path: the folder to write.
    """
    names = tf.constant(classes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        features = vectorizer(text)
        if features.dtype.is_integer:  # token ids, as the network was trained on them
            features = tf.cast(features, tf.int32)
        probabilities = tf.cast(model(features, training=False), tf.float32)
        n = tf.shape(probabilities)[0]
        return {
            "probabilities": probabilities,
            "label": tf.gather(names, tf.argmax(probabilities, axis=1)),
            "classes": tf.tile(tf.expand_dims(names, 0), [n, 1]),
        }

    write_export(path, {"serving_default": serve}, model, vectorizer)


def validation_loss(export_dir: Path, validation: pd.DataFrame, classes: list[str]) -> float:
    """The export's log loss on the validation texts: how `architecture=auto` compares its candidates."""
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    outputs = call_batched(serve, EVAL_BATCH, text=validation["text"].to_numpy(dtype=object).astype(str))
    scores, _ = metrics.classification(validation["label"].tolist(), outputs["probabilities"], classes)
    return float(scores["log_loss"])


# 8. Score the export on the held-out texts, with the examples the Evaluation page shows.
def evaluate(
    export_dir: Path, *, test: pd.DataFrame, classes: list[str], rows: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics from `models.metrics.classification`, plus `rows` per split, example predictions and each test
    text's prediction by its `_row` (`test_predictions`: the engine keeps them beside the run for the gallery)."""
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    texts = test["text"].tolist()
    outputs = call_batched(serve, EVAL_BATCH, text=np.array(texts, dtype=object))
    probabilities = outputs.get("probabilities", np.zeros((0, len(classes)))).astype("float32")
    truth = test["label"].tolist()
    scores, details = metrics.classification(truth, probabilities, classes)
    details["rows"] = rows
    details["examples"] = examples(texts, truth, probabilities, classes)
    details["test_predictions"] = classified(test["_row"], truth, probabilities, classes)
    return scores, details


def examples(texts: list[str], truth: list[str], probabilities: np.ndarray, classes: list[str]) -> list[dict]:
    """Up to EXAMPLES test texts: the most confident mistakes first, then the most confident hits."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.array([classes[p] != t for p, t in zip(predicted, truth, strict=True)])
    order = np.lexsort((-confidence, ~wrong))  # mistakes first; within each group, highest confidence first
    return [
        {
            "text": texts[i][:EXAMPLE_CHARS],
            "true": truth[i],
            "predicted": classes[predicted[i]],
            "confidence": round(float(confidence[i]), 4),
            "correct": not bool(wrong[i]),
        }
        for i in order[:EXAMPLES]
    ]


# 9. The entry point the training engine calls.
def prepare(data: TaskData, *, spec: TextSpec, batch_size: int) -> Prepared | Choice:
    """Split the labelled texts, adapt the vectorizer on the training part and hand the engine its pieces.

    `architecture=auto` hands over two candidates on the same split, the bag of embeddings and the pretrained
    encoder with its head; the engine keeps the one with the lower log loss on the validation texts. The bag
    goes alone where the pretrained model is not installed, or where more than AUTO_PRETRAINED_TEXTS texts
    would keep a CPU embedding for long.

    Args:
        data: the dataset version; `roles["text"]` is the text column, `roles["target"]` the label column.
        spec: the run's TextSpec.
        batch_size: examples per batch (the engine may scale `spec.batch_size` for several devices).

    Returns:
        Prepared with tf.data pipelines of (int32 tokens [batch, sequence_length], class index) and the
        build / export / evaluate closures.

    Raises:
        ValueError: a missing column, fewer than MIN_ROWS labelled texts, or a single class.
    """
    if spec.architecture == "auto":
        bag = prepare_from_scratch(data, spec=replace(spec, architecture="bag"), batch_size=batch_size)
        texts = sum(bag.plan["rows"].values())
        if not pretrained_installed() or (texts > AUTO_PRETRAINED_TEXTS and not devices.has_gpu()):
            return bag
        pretrained = prepare_pretrained(data, spec=replace(spec, architecture="minilm"), batch_size=batch_size)
        return Choice({"bag": bag, "minilm": pretrained}, metric="log_loss")
    if spec.architecture == "minilm":
        return prepare_pretrained(data, spec=spec, batch_size=batch_size)
    return prepare_from_scratch(data, spec=spec, batch_size=batch_size)


def prepare_from_scratch(data: TaskData, *, spec: TextSpec, batch_size: int) -> Prepared:
    """`prepare` for the networks that learn their own vocabulary (bag, cnn, transformer)."""
    rows, text_col, target, dropped = usable_rows(data)
    classes = sorted(rows["label"].unique().tolist())
    train, val, test = split(rows, spec)
    train_texts = train["text"].to_numpy(dtype=object).astype(str)
    vectorizer = make_vectorizer(train_texts, spec)
    index = {c: i for i, c in enumerate(classes)}
    vocabulary_size = int(vectorizer.vocabulary_size())
    counts = token_counts(train_texts)
    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    plan = {
        "task": "text-classification",
        "text": text_col,
        "target": target,
        "classes": classes,
        "architecture": spec.architecture,
        "vocabulary_size": vocabulary_size,
        "sequence_length": spec.sequence_length,
        "median_tokens": float(np.median(counts)),
        "truncated_share": round(float(np.mean(counts > spec.sequence_length)), 4),  # texts cut at sequence_length
        "rows": sizes,
        "dropped_rows": dropped,  # no label or no text
    }

    def make(frame: pd.DataFrame, shuffle_seed: int | None) -> tf.data.Dataset:
        texts = frame["text"].to_numpy(dtype=object).astype(str)
        y = frame["label"].map(index).to_numpy("int64")
        return dataset(texts, y, vectorizer, batch_size=batch_size, shuffle_seed=shuffle_seed)

    def build() -> keras.Model:
        model = network(vocabulary_size, len(classes), spec)
        compile_network(model, spec)
        return model

    return handed_over(plan, (train, val, test), make, build, vectorizer, spec)


def handed_over(
    plan: dict[str, Any],
    splits: tuple[pd.DataFrame, ...],
    make: Any,
    build: Any,
    front: Any,
    spec: TextSpec,
    network_of: Any = None,
) -> Prepared:
    """What every route hands the engine: pipelines of the training and validation rows from `make`, the network
    from `build`, the export of `front` (vectorizer or pretrained encoder) and the network (`network_of(model)`
    where the trained model holds more than it), the test scoring and the validation loss."""
    train, val, test = splits
    classes, sizes = plan["classes"], plan["rows"]
    return Prepared(
        plan=plan,
        train=make(train, spec.seed),
        validation=make(val, None),
        train_examples=len(train),
        build=build,
        export=lambda model, path: export(network_of(model) if network_of else model, front, classes, path),
        evaluate=lambda export_dir: evaluate(export_dir, test=test, classes=classes, rows=sizes),
        validate=lambda export_dir: validation_loss(export_dir, val, classes),
    )


# 10. The pretrained encoder (models/minilm.py), frozen, with a small head trained on its sentence embeddings.
#     Each text is embedded once, before the first epoch, so an epoch costs what a linear model's does; the
#     export runs tokenizer, encoder and head on raw strings, with the outputs of the models above.
def pretrained_head(dimension: int, num_classes: int, spec: TextSpec) -> keras.Model:
    embedding = keras.Input((dimension,), name="embedding")
    x = keras.layers.Dropout(spec.dropout)(embedding)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(embedding, outputs, name="text_minilm")


def prepare_pretrained(data: TaskData, *, spec: TextSpec, batch_size: int) -> Prepared:
    """As `prepare`, with the pretrained encoder in place of a vocabulary: tf.data of (embedding [batch, 384],
    class index), the head to train, and the export of encoder and head together. With `fine_tune_layers`,
    the encoder's top layers train too (`prepare_fine_tuned`)."""
    rows, text_col, target, dropped = usable_rows(data)
    classes = sorted(rows["label"].unique().tolist())
    train, val, test = split(rows, spec)
    embedder = minilm.load(sequence_length=min(spec.sequence_length, minilm.SEQUENCE_LENGTH))
    index = {c: i for i, c in enumerate(classes)}
    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    counts = token_counts(train["text"].to_numpy(dtype=object).astype(str))
    plan = {
        "task": "text-classification",
        "text": text_col,
        "target": target,
        "classes": classes,
        "architecture": "minilm",
        "pretrained": minilm.NAME,
        "embedding_dim": embedder.dimension,
        "sequence_length": int(embedder.tokenizer.sequence_length),
        "median_tokens": float(np.median(counts)),
        "labels_per_class": {str(k): int(v) for k, v in train["label"].value_counts().sort_index().items()},
        "fine_tune_layers": spec.fine_tune_layers,
        "rows": sizes,
        "dropped_rows": dropped,
    }
    if spec.fine_tune_layers:
        return prepare_fine_tuned(plan, (train, val, test), embedder, spec=spec, batch_size=batch_size)

    def make(frame: pd.DataFrame, shuffle_seed: int | None) -> tf.data.Dataset:
        vectors = embedder.embed(frame["text"].to_numpy(dtype=object).astype(str))
        y = frame["label"].map(index).to_numpy("int64")
        ds = tf.data.Dataset.from_tensor_slices((vectors, y))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(frame), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def build() -> keras.Model:
        head = pretrained_head(embedder.dimension, len(classes), spec)
        compile_network(head, spec)
        return head

    return handed_over(plan, (train, val, test), make, build, embedder, spec)


# 11. Fine-tuning: the encoder's top `fine_tune_layers` layers train with the head. The layers below stay frozen,
#     so each text goes through them once, before the first epoch (`Embedder.states`), and an epoch runs only
#     the top layers, forward and back. Those learn at FINE_TUNE_RATE times the head's rate: Adam steps each
#     weight by about the learning rate whatever its gradient, and at the head's 3e-3 a pretrained layer would
#     forget what it knew; 3e-3 x 0.03 = 9e-5 is in the range BERT's fine-tuning uses (2e-5 to 1e-4).
FINE_TUNE_RATE = 0.03
TOP_LAYERS = "pretrained_layers"  # the trained copy of the top layers: its name, the prefix of its variables


class TopLayers(keras.layers.Layer):
    """The encoder's top `count` layers and its pooling: token vectors [batch, length, hidden] and their mask in,
    the unit-length sentence embedding out. Starts from the pretrained weights. In float32 under any precision
    policy: the attention's padding mask (-1e9) does not fit in float16."""

    def __init__(self, encoder: minilm.Encoder, count: int, **kwargs: Any) -> None:
        super().__init__(name=TOP_LAYERS, dtype="float32", **kwargs)
        config, layers = encoder.config, len(encoder.stack)
        self.hidden = config["hidden_size"]
        self.__dict__["initial"] = [layer.get_weights() for layer in encoder.stack[layers - count :]]  # untracked
        self.stack = [
            minilm.EncoderLayer(
                self.hidden,
                config["num_attention_heads"],
                config["intermediate_size"],
                config["layer_norm_eps"],
                name=f"layer_{i}",
                dtype="float32",
            )
            for i in range(layers - count, layers)
        ]

    def build(self, input_shape: Any) -> None:
        for layer, weights in zip(self.stack, self.__dict__["initial"], strict=True):
            layer.build((None, None, self.hidden))
            layer.set_weights(weights)

    def call(self, inputs: Any) -> Any:
        x, mask = inputs
        padding = minilm.padding_of(mask, x.dtype)
        for layer in self.stack:
            x = layer(x, padding)
        return minilm.pooled(x, mask)


class SlowerPretrained(keras.optimizers.Adam):
    """Adam, with the variables of TopLayers stepping at FINE_TUNE_RATE times the learning rate."""

    def build(self, variables: list[Any]) -> None:
        super().build(variables)
        self.slower = {self._var_key(v) for v in variables if v.path.startswith(f"{TOP_LAYERS}/")}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._var_key(variable) in self.slower:
            learning_rate = learning_rate * FINE_TUNE_RATE
        super().update_step(gradient, variable, learning_rate)


def prepare_fine_tuned(
    plan: dict[str, Any],
    splits: tuple[pd.DataFrame, ...],
    embedder: minilm.Embedder,
    *,
    spec: TextSpec,
    batch_size: int,
) -> Prepared:
    """`prepare_pretrained` with the top layers trained: tf.data of ({states, mask}, class index), one batch per
    group of texts of like length (the order of the batches shuffled each epoch, not their members); the
    export writes the trained layers back into the encoder, so it is the same graph as the frozen model's."""
    count = spec.fine_tune_layers
    lower = len(embedder.encoder.stack) - count
    index = {c: i for i, c in enumerate(plan["classes"])}
    signature = (
        {
            "states": tf.TensorSpec([None, None, embedder.dimension], tf.float16),
            "mask": tf.TensorSpec([None, None], tf.int32),
        },
        tf.TensorSpec([None], tf.int64),
    )

    def make(frame: pd.DataFrame, shuffle_seed: int | None) -> tf.data.Dataset:
        batches = embedder.states(frame["text"].to_numpy(dtype=object).astype(str), lower, batch_size)
        y = frame["label"].map(index).to_numpy("int64")
        rng = np.random.default_rng(shuffle_seed)  # one generator for the whole fit: a new order each epoch

        def in_order() -> Any:
            order = rng.permutation(len(batches)) if shuffle_seed is not None else range(len(batches))
            for i in order:
                rows, states, mask = batches[i]
                yield {"states": states, "mask": mask}, y[rows]

        ds = tf.data.Dataset.from_generator(in_order, output_signature=signature)
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(batches)))  # Keras counts the steps from it
        return prefetched(ds.map(lambda x, y: ({"states": tf.cast(x["states"], tf.float32), "mask": x["mask"]}, y)))

    def build() -> keras.Model:
        states = keras.Input((None, embedder.dimension), name="states")
        mask = keras.Input((None,), dtype="int32", name="mask")
        embedding = TopLayers(embedder.encoder, count)((states, mask))
        outputs = pretrained_head(embedder.dimension, len(plan["classes"]), spec)(embedding)
        model = keras.Model({"states": states, "mask": mask}, outputs, name="text_minilm_fine_tuned")
        compile_network(model, spec, SlowerPretrained(learning_rate=spec.learning_rate))
        return model

    def network_of(model: keras.Model) -> keras.Model:
        """The trained top layers written back into the encoder; the head, which reads its embeddings."""
        trained = model.get_layer(TOP_LAYERS)
        for mine, layer in zip(trained.stack, embedder.encoder.stack[lower:], strict=True):
            layer.set_weights(mine.get_weights())
        return model.get_layer("text_minilm")

    return handed_over(plan, splits, make, build, embedder, spec, network_of)
