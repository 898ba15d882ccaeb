"""Text generation: a small GPT-style decoder-only Transformer trained from scratch on a text column.

The pieces, leaves first as in nanoGPT's model.py: the embedding (tokens plus learned positions), the
decoder block (causal self-attention and an MLP, each behind a LayerNorm and a residual), the network;
then the tokenizer (characters, or word pieces learned on the corpus, both in TensorFlow ops), the data
(documents split, joined with a separator token, cut into windows), the sampler (temperature, top-k,
top-p, a seeded stateless draw), generation in a `tf.while_loop`, and the export whose `serving_default`
takes raw prompts and returns raw text with plain TensorFlow.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from models.spec import GptSpec
from models.splits import three_way
from models.task import Prepared, TaskData, prefetched, write_export

AUTOTUNE = tf.data.AUTOTUNE
PAD, UNK = 0, 1  # reserved ids: padding (decodes to "") and unknown (a character the vocabulary lacks)
UNK_TOKEN = "[UNK]"
SEPARATOR = "\x1e"  # the record separator joins documents: the model learns where a text starts and ends
SEPARATOR_ID = 2  # the separator is the first vocabulary entry, right after the reserved ids
WORD_MARK = "\x1f"  # subword: marks word starts before splitting; removed from every text first
WORD_PATTERN = r"( ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s)"  # a word keeps its leading space, as in GPT-2
MAX_PIECE = 16  # subword: longest word piece, in characters
MAX_NEW_TOKENS = 1000  # the most tokens one request may generate
SAMPLE_PROMPT_CHARS = 20  # evaluation: prompts are the first characters of test documents
SAMPLES = 3


def _init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.02)  # nanoGPT's init; unseeded, so it follows the global seed


# 1. Layers. Token embeddings plus LEARNED position embeddings (positions 0..block_size-1 of the window).
@keras.saving.register_keras_serializable(package="modeldeck")
class GptEmbedding(keras.layers.Layer):
    """Token ids [batch, time] to vectors [batch, time, n_embd]: token embedding + position embedding."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.block_size, self.n_embd = vocab_size, block_size, n_embd
        self.token = keras.layers.Embedding(vocab_size, n_embd, embeddings_initializer=_init(), name="wte")
        self.position = keras.layers.Embedding(block_size, n_embd, embeddings_initializer=_init(), name="wpe")

    def build(self, input_shape: Any) -> None:
        self.token.build(input_shape)
        self.position.build((None,))
        self.built = True

    def call(self, ids: Any) -> Any:
        positions = keras.ops.arange(keras.ops.shape(ids)[-1])
        return self.token(ids) + keras.ops.expand_dims(self.position(positions), 0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape, self.n_embd)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "vocab_size": self.vocab_size,
            "block_size": self.block_size,
            "n_embd": self.n_embd,
        }


# 2. The decoder block: x + attention(LN(x)), then x + MLP(LN(x)); the MLP is 4x wide with GELU.
@keras.saving.register_keras_serializable(package="modeldeck")
class GptBlock(keras.layers.Layer):
    """One pre-LayerNorm Transformer decoder block with causal self-attention (nanoGPT's Block)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_embd, self.n_head, self.dropout, self.seed = n_embd, n_head, dropout, seed
        seeds = [None if seed is None else seed + i for i in range(3)]
        self.ln_1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_1")
        self.attn = keras.layers.MultiHeadAttention(
            num_heads=n_head,
            key_dim=n_embd // n_head,
            dropout=dropout,
            seed=seeds[0],
            kernel_initializer=_init(),
            name="attn",
        )
        self.attn_drop = keras.layers.Dropout(dropout, seed=seeds[1])
        self.ln_2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_2")
        self.fc = keras.layers.Dense(4 * n_embd, activation="gelu", kernel_initializer=_init(), name="c_fc")
        self.proj = keras.layers.Dense(n_embd, kernel_initializer=_init(), name="c_proj")
        self.mlp_drop = keras.layers.Dropout(dropout, seed=seeds[2])

    def build(self, input_shape: Any) -> None:
        self.ln_1.build(input_shape)
        self.attn.build(input_shape, input_shape)
        self.ln_2.build(input_shape)
        self.fc.build(input_shape)
        self.proj.build((*input_shape[:-1], 4 * self.n_embd))
        self.built = True

    def call(self, x: Any, training: bool | None = None) -> Any:
        h = self.ln_1(x)
        x = x + self.attn_drop(self.attn(h, h, use_causal_mask=True, training=training), training=training)
        return x + self.mlp_drop(self.proj(self.fc(self.ln_2(x))), training=training)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "n_embd": self.n_embd,
            "n_head": self.n_head,
            "dropout": self.dropout,
            "seed": self.seed,
        }


# 3. The network: token ids [batch, time <= block_size] in, next-token logits [batch, time, vocab] out.
def network(vocab_size: int, spec: GptSpec) -> keras.Model:
    """The GPT: embeddings, `spec.n_layer` decoder blocks, a final LayerNorm and float32 vocabulary logits."""
    ids = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = GptEmbedding(vocab_size, spec.block_size, spec.n_embd, name="embedding")(ids)
    x = keras.layers.Dropout(spec.dropout, seed=spec.seed)(x)
    for i in range(spec.n_layer):
        x = GptBlock(spec.n_embd, spec.n_head, spec.dropout, seed=spec.seed + 10 * (i + 1), name=f"block_{i}")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")(x)
    logits = keras.layers.Dense(vocab_size, kernel_initializer=_init(), dtype="float32", name="logits")(x)
    return keras.Model(ids, logits, name="gpt")


def compile_network(model: keras.Model, spec: GptSpec) -> None:
    """AdamW with clipped gradients (as nanoGPT), cross-entropy on logits that ignores padding."""
    optimizer = keras.optimizers.AdamW(learning_rate=spec.learning_rate, weight_decay=0.01, global_clipnorm=1.0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


# 4. The tokenizer, in TensorFlow ops so the export tokenises raw prompts and detokenises with plain TF.
#    "char": every character is a token. "subword": word pieces (with their leading space) matched
#    greedily, longest first, inside each word. Both decode by joining the tokens' strings.
@keras.saving.register_keras_serializable(package="modeldeck")
class GptTokenizer(keras.layers.Layer):
    """Strings to token ids and back. Ids: 0 padding, 1 unknown, 2 the document separator, then the vocabulary."""

    def __init__(self, vocabulary: list[str], kind: str = "char", max_piece: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.vocabulary, self.kind, self.max_piece = list(vocabulary), kind, max_piece
        lookup = {"vocabulary": self.vocabulary, "mask_token": "", "num_oov_indices": 1, "oov_token": UNK_TOKEN}
        self.to_ids = keras.layers.StringLookup(**lookup, dtype="int64", name="to_ids")
        self.to_text = keras.layers.StringLookup(**lookup, invert=True, name="to_text")
        self.built = True

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary) + 2

    def ids(self, tokens: tf.Tensor) -> tf.Tensor:
        """Token strings (any shape) to int32 ids; unknown strings get 1, "" gets 0."""
        return tf.cast(self.to_ids(tokens), tf.int32)

    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """tf.string [N] to int32 ids [N, (tokens)], without separators."""
        with tf.device("/cpu:0"):  # string ops live on the CPU; keep the integer bookkeeping next to them
            texts = tf.strings.regex_replace(texts, f"[{SEPARATOR}{WORD_MARK}]", " ")
            if self.kind == "char":
                chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
                return chars.with_flat_values(self.ids(chars.flat_values))
            words = split_words(texts)
            pieces = self._longest_match(words.flat_values)
            return tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)

    def _longest_match(self, words: tf.Tensor) -> tf.RaggedTensor:
        """Words [W] to piece ids [W, (pieces)]: at each position take the longest vocabulary piece."""
        lengths = tf.strings.length(words, unit="UTF8_CHAR")
        sizes = tf.range(1, self.max_piece + 1)
        total = tf.shape(words)[0]

        def step(pos: tf.Tensor, out: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
            active = tf.where(pos < lengths)[:, 0]  # only the words not yet consumed
            word, start = tf.gather(words, active), tf.gather(pos, active)
            left = tf.gather(lengths, active) - start
            count = tf.shape(active)[0]
            candidates = tf.strings.substr(
                tf.tile(word[:, None], [1, self.max_piece]),
                tf.tile(start[:, None], [1, self.max_piece]),
                tf.tile(sizes[None, :], [count, 1]),
                unit="UTF8_CHAR",
            )
            ids = self.ids(candidates)
            known = (ids > SEPARATOR_ID) & (sizes[None, :] <= left[:, None])
            best = tf.reduce_max(tf.where(known, sizes[None, :], 1), axis=1)  # one unknown character at worst
            token = tf.gather(ids, best - 1, batch_dims=1)
            out = out.write(out.size(), tf.tensor_scatter_nd_update(tf.fill([total], -1), active[:, None], token))
            return tf.tensor_scatter_nd_add(pos, active[:, None], best), out

        _, out = tf.while_loop(
            lambda pos, out: tf.reduce_any(pos < lengths),
            step,
            (tf.zeros_like(lengths), tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None])),
        )
        steps = tf.reshape(out.stack(), [-1, total])  # [pieces, W], -1 where a word had ended
        table = tf.transpose(steps)
        return tf.ragged.boolean_mask(table, table >= 0)

    def decode(self, ids: tf.Tensor) -> tf.Tensor:
        """Int ids [N, T] to tf.string [N]; padding decodes to ""."""
        return tf.strings.reduce_join(self.to_text(tf.cast(ids, tf.int64)), axis=-1)

    def call(self, texts: tf.Tensor) -> tf.RaggedTensor:
        return self.encode(texts)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"vocabulary": self.vocabulary, "kind": self.kind, "max_piece": self.max_piece}


def split_words(texts: tf.Tensor) -> tf.RaggedTensor:
    """tf.string [N] to words [N, (words)] that keep their leading space; joining them gives the text back."""
    marked = tf.strings.regex_replace(texts, WORD_PATTERN, WORD_MARK + r"\1")
    parts = tf.strings.split(marked, sep=WORD_MARK)
    return tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)


def char_vocabulary(texts: list[str], size: int) -> list[str]:
    """The `size` most frequent characters of the training texts (ties in character order), after the separator."""
    counts = Counter("".join(texts))
    return [SEPARATOR] + [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def subword_vocabulary(texts: list[str], size: int) -> list[str]:
    """Characters, then word pieces learned by byte-pair merges on the training words, `size` entries at most.

    Why BPE to learn and greedy longest-match to encode: merges give pieces that are frequent and nest
    (" the" is built from " th" and "e"), and longest-match needs only lookups, so it runs in the graph.
    """
    # 1. Word frequencies, split exactly as the tokenizer splits.
    words = Counter(w.decode("utf-8", "replace") for w in split_words(tf.constant(texts)).flat_values.numpy())
    chars: Counter[str] = Counter()
    for word, n in words.items():
        for c in word:
            chars[c] += n
    alphabet = [c for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[: max(1, size // 2)]]
    # 2. Byte-pair merges with incremental pair counts (a heap with lazy deletion keeps each merge cheap).
    symbols = [list(w) for w in words]
    weight = list(words.values())
    pairs, where = _pair_counts(symbols, weight)
    heap = [(-n, pair) for pair, n in pairs.items()]
    heapq.heapify(heap)
    pieces: list[str] = []
    budget = size - len(alphabet)
    while heap and len(pieces) < budget:
        n, pair = heapq.heappop(heap)
        if -n != pairs.get(pair, 0):
            continue  # a stale entry: the pair's count changed since
        if -n < 2:
            break  # nothing left that occurs twice
        merged = pair[0] + pair[1]
        del pairs[pair]
        if len(merged) > MAX_PIECE:
            continue
        pieces.append(merged)
        for i in where.pop(pair, set()):
            syms = symbols[i]
            out = _merged(syms, pair)
            if out == syms:
                continue
            for old in zip(syms, syms[1:], strict=False):
                if old != pair and old in pairs:
                    pairs[old] -= weight[i]
                    heapq.heappush(heap, (-pairs[old], old))
            for new in zip(out, out[1:], strict=False):
                pairs[new] += weight[i]
                where[new].add(i)
                heapq.heappush(heap, (-pairs[new], new))
            symbols[i] = out
    reserved = {SEPARATOR, "", UNK_TOKEN}
    return [SEPARATOR] + [t for t in dict.fromkeys(alphabet + pieces) if t not in reserved]


def _pair_counts(
    symbols: list[list[str]], weight: list[int]
) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], set[int]]]:
    """How often each pair of neighbouring symbols occurs (weighted by word count), and in which words."""
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, syms in enumerate(symbols):
        for pair in zip(syms, syms[1:], strict=False):
            pairs[pair] += weight[i]
            where[pair].add(i)
    return pairs, where


def _merged(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """`symbols` with each occurrence of `pair`, left to right, merged into one symbol."""
    out, j = [], 0
    while j < len(symbols):
        if j + 1 < len(symbols) and (symbols[j], symbols[j + 1]) == pair:
            out.append(pair[0] + pair[1])
            j += 2
        else:
            out.append(symbols[j])
            j += 1
    return out


def make_tokenizer(texts: list[str], spec: GptSpec) -> GptTokenizer:
    """The tokenizer the spec asks for, learned on the training texts only."""
    if spec.tokenizer == "subword":
        vocabulary = subword_vocabulary(texts, spec.vocab_size)
        return GptTokenizer(vocabulary, kind="subword", max_piece=max(len(t) for t in vocabulary), name="tokenizer")
    if spec.tokenizer != "char":
        raise ValueError(f"Unknown tokenizer '{spec.tokenizer}'. Expected char or subword: use tokenizer=char.")
    return GptTokenizer(char_vocabulary(texts, spec.vocab_size), kind="char", name="tokenizer")


# 5. The data: documents split (no text in two splits), each split one token stream with a separator
#    before every document, cut into windows of block_size + 1 tokens (inputs and next-token targets).
def documents(data: TaskData) -> list[str]:
    """The non-empty texts of the text column, one document each."""
    column = data.roles.get("text")
    if not column or column not in data.frame.columns:
        raise ValueError("Text generation needs a text column. Mark one column as text on the Data page.")
    texts = data.frame[column].dropna().astype(str)
    texts = texts.str.replace(f"[{SEPARATOR}{WORD_MARK}]", " ", regex=True).str.strip()
    docs = [t for t in texts.tolist() if t]
    if len(docs) < 3:
        raise ValueError(
            f"The text column '{column}' has {len(docs)} non-empty texts; text generation needs at least 3 "
            "(train, validation and test each get whole texts). Add more rows of text."
        )
    return docs


def split(docs: list[str], spec: GptSpec) -> tuple[list[str], list[str], list[str]]:
    """Whole documents to train / validation / test, reproducibly."""
    parts = three_way(
        pd.DataFrame({"doc": docs}), test_split=spec.test_split, validation_split=spec.validation_split, seed=spec.seed
    )
    train, val, test = (part["doc"].tolist() for part in parts)
    return train, val, test


def token_stream(tokenizer: GptTokenizer, docs: list[str]) -> np.ndarray:
    """One int32 stream: separator, document, separator, document, ..., separator."""
    ids = tokenizer.encode(tf.constant(docs))
    separators = tf.fill([ids.nrows(), 1], SEPARATOR_ID)
    stream = tf.concat([tf.RaggedTensor.from_tensor(separators), ids], axis=1).flat_values.numpy()
    return np.append(stream, SEPARATOR_ID).astype("int32")


def window_count(stream: np.ndarray, block_size: int) -> int:
    """How many windows of block_size + 1 tokens a stream gives at stride block_size."""
    return max(0, (len(stream) - 1) // block_size)


def training_dataset(stream: np.ndarray, *, block_size: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled (inputs, targets) windows; each epoch shifts every window by a fresh seeded random offset,
    so the model sees every position of the text at every position of the context (as nanoGPT's random
    starts do), not the same few phases."""
    count, last_start = window_count(stream, block_size), len(stream) - block_size - 1
    tokens = tf.constant(stream)
    span = tf.range(block_size + 1, dtype=tf.int64)

    def window(i: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
        start = tf.minimum(i * block_size + r % block_size, last_start)
        return tf.gather(tokens, start + span)

    offsets = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, offsets).map(window, num_parallel_calls=AUTOTUNE)
    return prefetched(ds.batch(batch_size).map(lambda w: (w[:, :-1], w[:, 1:]), num_parallel_calls=AUTOTUNE))


def held_out_dataset(stream: np.ndarray, *, block_size: int, batch_size: int) -> tf.data.Dataset:
    """(inputs, targets, weights) windows at stride block_size, so every token is a target exactly once; the
    tail is padded with 0 and the weights zero the padding."""
    stream = np.append(stream, np.zeros((-(len(stream) - 1)) % block_size, "int32"))
    index = np.arange(window_count(stream, block_size))[:, None] * block_size + np.arange(block_size + 1)[None, :]
    blocks = stream[index]
    x, y = blocks[:, :-1], blocks[:, 1:]
    return tf.data.Dataset.from_tensor_slices((x, y, (y != PAD).astype("float32"))).batch(batch_size)


# 6. Sampling one token per row: temperature, then top-k, then top-p (nucleus), then a seeded stateless
#    draw. Everything happens on the logits sorted in descending order, so "keep the k largest" is exact.
def sample_next(logits: Any, temperature: Any, top_k: Any, top_p: Any, seed: Any) -> tf.Tensor:
    """Next token ids [B] (int32) from logits [B, V].

    Args:
        logits: float [B, V], unnormalised scores of the next token.
        temperature: float, scalar or [B]; <= 0 means greedy (argmax), deterministic whatever the seed.
        top_k: int, scalar or [B]; keep the k most likely tokens; <= 0 means off.
        top_p: float, scalar or [B]; keep the smallest set whose probability reaches p; >= 1 means off.
        seed: int, [2] or [B, 2]; the stateless seed of each row's draw (same seed, same token).
    """
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    rows, size = tf.shape(logits)[0], tf.shape(logits)[1]
    temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [rows])
    top_k = tf.broadcast_to(tf.cast(top_k, tf.int32), [rows])
    top_p = tf.broadcast_to(tf.cast(top_p, tf.float32), [rows])
    seed = tf.broadcast_to(tf.cast(seed, tf.int32), [rows, 2])
    # 1. Sort once; a stable sort puts the first maximum first, exactly what argmax returns.
    order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
    scaled = tf.gather(logits, order, batch_dims=1) / tf.maximum(temperature, 1e-6)[:, None]
    rank = tf.range(size)[None, :]
    # 2. Top-k: ranks below k.
    k = tf.where(top_k <= 0, size, tf.minimum(top_k, size))
    keep = rank < k[:, None]
    # 3. Top-p: a token stays while the probability of the tokens before it is still below p.
    probs = tf.nn.softmax(tf.where(keep, scaled, -np.inf), axis=-1)
    before = tf.math.cumsum(probs, axis=-1, exclusive=True)
    keep &= (before < top_p[:, None]) | (top_p >= 1.0)[:, None] | (rank == 0)
    # 4. One stateless draw per row, so a request's tokens do not depend on the other rows of the batch.
    masked = tf.where(keep, scaled, -np.inf)
    drawn = tf.map_fn(
        lambda row: tf.random.stateless_categorical(row[0][None, :], 1, row[1], dtype=tf.int32)[0, 0],
        (masked, seed),
        fn_output_signature=tf.int32,
    )
    choice = tf.where(temperature <= 0.0, 0, drawn)
    return tf.gather(order, choice, batch_dims=1)


# 7. Generation: prompts right-padded in one buffer; each step runs the network on every row's last
#    block_size tokens (the causal mask makes the padding after a row's end invisible), samples, appends.
def generate_ids(
    net: keras.Model,
    prompts: tf.RaggedTensor,
    *,
    steps: tf.Tensor,
    temperature: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
    seed: tf.Tensor,
    block_size: int,
) -> tf.Tensor:
    """Token ids [B, steps] (int32) continuing each prompt (ids [B, (n >= 1)]); 0 after a row's separator."""
    rows = prompts.nrows(out_type=tf.int32)
    start_len = prompts.row_lengths(axis=1)
    start_len = tf.cast(start_len, tf.int32)
    width = tf.reduce_max(tf.concat([start_len, [1]], axis=0)) + steps
    buffer = prompts.to_tensor(default_value=PAD, shape=tf.stack([rows, width]))
    window = tf.minimum(block_size, width)
    columns = tf.range(width)[None, :]

    def step(i: tf.Tensor, buffer: tf.Tensor, length: tf.Tensor, done: tf.Tensor) -> tuple[tf.Tensor, ...]:
        first = tf.maximum(length - window, 0)
        context = tf.gather(buffer, first[:, None] + tf.range(window)[None, :], batch_dims=1)
        logits = tf.cast(net(context, training=False), tf.float32)
        last = tf.gather(logits, length - 1 - first, batch_dims=1)
        reserved = tf.range(tf.shape(last)[1]) <= UNK  # never generate padding or "unknown"
        last = tf.where(reserved[None, :], -np.inf, last)
        token = sample_next(last, temperature, top_k, top_p, tf.stack([seed, tf.fill([rows], i)], axis=1))
        token = tf.where(done, PAD, token)
        buffer = tf.where(columns == length[:, None], token[:, None], buffer)
        return i + 1, buffer, length + 1, done | (token == SEPARATOR_ID)

    _, buffer, _, _ = tf.while_loop(
        lambda i, buffer, length, done: (i < steps) & ~tf.reduce_all(done),
        step,
        (tf.constant(0), buffer, start_len, tf.zeros([rows], tf.bool)),
    )
    return tf.gather(buffer, start_len[:, None] + tf.range(steps)[None, :], batch_dims=1)


def complete(
    net: keras.Model,
    tokenizer: GptTokenizer,
    block_size: int,
    prompt: tf.Tensor,
    max_new_tokens: tf.Tensor,
    temperature: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
    seed: tf.Tensor,
) -> tf.Tensor:
    """Raw prompts [B] to raw continuations [B]: the text after the prompt, up to the end of the document."""
    limit = tf.clip_by_value(tf.cast(max_new_tokens, tf.int32), 0, MAX_NEW_TOKENS)
    steps = tf.reduce_max(tf.concat([limit, [0]], axis=0))
    ids = tokenizer.encode(prompt)
    # 1. A separator first, as before every training document: the prompt is the start of a text.
    prompts = tf.concat([tf.RaggedTensor.from_tensor(tf.fill([ids.nrows(), 1], SEPARATOR_ID)), ids], axis=1)
    new = generate_ids(
        net,
        prompts,
        steps=steps,
        temperature=tf.cast(temperature, tf.float32),
        top_k=tf.cast(top_k, tf.int32),
        top_p=tf.cast(top_p, tf.float32),
        seed=tf.cast(seed, tf.int32),
        block_size=block_size,
    )
    # 2. Keep each row's own length, and stop at the separator: the model ended the document there.
    position = tf.range(steps)[None, :]
    ended = tf.math.cumsum(tf.cast(new == SEPARATOR_ID, tf.int32), axis=1) > 0
    new = tf.where((position < limit[:, None]) & ~ended, new, PAD)
    return tokenizer.decode(new)


# 8. Export: `serving_default` (prompt -> text, the spec's defaults) and `generate` (every knob per row).
def export(net: keras.Model, tokenizer: GptTokenizer, spec: GptSpec, path: Path) -> None:
    """Write a SavedModel whose signatures take raw prompts and return raw continuations.

    `serving_default`: `prompt` tf.string [None] -> `text` tf.string [None], spec.max_new_tokens tokens at
    most with temperature 0.8, top_k 40, top_p 0.95, seed 0. `generate`: `prompt` tf.string [None] and one
    value per prompt of `max_new_tokens` int32 (capped at MAX_NEW_TOKENS), `temperature` float32 (<= 0:
    greedy), `top_k` int32 (<= 0: off), `top_p` float32 (>= 1: off), `seed` int32 -> `text` tf.string [None].
    Every row uses its own values; `text` is the continuation only, ended early where the model ends the
    document (the separator token).
    """
    block = spec.block_size

    @tf.function(input_signature=[{"prompt": tf.TensorSpec([None], tf.string, name="prompt")}])
    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        prompt = inputs["prompt"]
        n = tf.shape(prompt)[0:1]
        text = complete(
            net,
            tokenizer,
            block,
            prompt,
            tf.fill(n, spec.max_new_tokens),
            tf.fill(n, 0.8),
            tf.fill(n, 40),
            tf.fill(n, 0.95),
            tf.fill(n, 0),
        )
        return {"text": text}

    knobs = {
        "prompt": tf.TensorSpec([None], tf.string, name="prompt"),
        "max_new_tokens": tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
        "temperature": tf.TensorSpec([None], tf.float32, name="temperature"),
        "top_k": tf.TensorSpec([None], tf.int32, name="top_k"),
        "top_p": tf.TensorSpec([None], tf.float32, name="top_p"),
        "seed": tf.TensorSpec([None], tf.int32, name="seed"),
    }

    @tf.function(input_signature=[knobs])
    def generate(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        names = ("max_new_tokens", "temperature", "top_k", "top_p", "seed")
        return {"text": complete(net, tokenizer, block, inputs["prompt"], *(inputs[k] for k in names))}

    write_export(path, {"serving_default": serve, "generate": generate}, net, tokenizer)


# 9. Evaluation: perplexity of the trained network on the test documents, against a unigram baseline,
#    and a few generations from the export loaded with plain TensorFlow.
def perplexity(net: keras.Model, test: tf.data.Dataset) -> tuple[float, int]:
    """exp(mean next-token cross-entropy) over the non-padding targets, and how many targets there were."""

    @tf.function
    def batch_nll(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = tf.cast(net(x, training=False), tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(tf.cast(nll, tf.float64) * tf.cast(w, tf.float64)), tf.reduce_sum(w)

    total, count = 0.0, 0.0
    for x, y, w in test:
        nll, n = batch_nll(x, y, w)
        total, count = total + float(nll), count + float(n)
    return float(np.exp(total / max(count, 1.0))), int(count)


def unigram_perplexity(train_stream: np.ndarray, test_stream: np.ndarray, vocab_size: int) -> float:
    """Perplexity of predicting every test token from training token frequencies (add-one smoothed)."""
    counts = np.bincount(train_stream, minlength=vocab_size).astype("float64") + 1.0
    counts[PAD] = 0.0  # never a target
    p = counts / counts.sum()
    return float(np.exp(-np.log(p[test_stream[1:]]).mean()))


# 10. The family's entry point for the engine (models/task.py).
def prepare(data: TaskData, *, spec: GptSpec, batch_size: int) -> Prepared:
    """Split the documents, learn the tokenizer on the training ones; windows, network, export and evaluation."""
    train_docs, val_docs, test_docs = split(documents(data), spec)
    tokenizer = make_tokenizer(train_docs, spec)  # learned now, before any mixed precision policy: it stays exact
    streams = {
        name: token_stream(tokenizer, docs)
        for name, docs in zip(("train", "val", "test"), (train_docs, val_docs, test_docs), strict=True)
    }
    train_windows = window_count(streams["train"], spec.block_size)
    if train_windows == 0:
        shorter = max(8, (len(streams["train"]) - 1) // 2)
        raise ValueError(
            f"The training texts have {len(streams['train'])} tokens, too few for one window of block_size + 1 = "
            f"{spec.block_size + 1} tokens. Add more text, or lower block_size (e.g. block_size={shorter})."
        )
    held_out_batch = max(batch_size, 64)
    state: dict[str, keras.Model] = {}

    def build() -> keras.Model:
        net = network(tokenizer.vocab_size, spec)
        compile_network(net, spec)
        return net

    def export_model(net: keras.Model, path: Path) -> None:
        state["net"] = net  # evaluate scores the perplexity with the trained network itself
        export(net, tokenizer, spec, path)

    def evaluate(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        if "net" not in state:
            raise RuntimeError("Export the trained model (Prepared.export) before evaluating it.")
        test = held_out_dataset(streams["test"], block_size=spec.block_size, batch_size=held_out_batch)
        score, tokens = perplexity(state["net"], test)
        prompts = [doc[:SAMPLE_PROMPT_CHARS] for doc in test_docs[:SAMPLES]]
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        texts = serve(prompt=tf.constant(prompts))["text"].numpy()
        details = {
            "baseline": {
                "perplexity": unigram_perplexity(streams["train"], streams["test"], tokenizer.vocab_size),
                "rule": "character frequencies" if tokenizer.kind == "char" else "token frequencies",
            },
            "samples": [
                {"prompt": p, "text": t.decode("utf-8", "replace")} for p, t in zip(prompts, texts, strict=True)
            ],
            "rows": {"train": len(train_docs), "validation": len(val_docs), "test": len(test_docs)},
        }
        return {"perplexity": score, "test_tokens": tokens}, details

    plan = {
        "tokenizer": tokenizer.kind,
        "vocabulary": tokenizer.vocabulary,
        "vocab_size": tokenizer.vocab_size,
        "reserved": {"padding": PAD, "unknown": UNK, "separator": SEPARATOR_ID},
        "block_size": spec.block_size,
        "documents": {"train": len(train_docs), "validation": len(val_docs), "test": len(test_docs)},
        "tokens": {name: int(len(s)) for name, s in streams.items()},
        "windows": {name: window_count(s, spec.block_size) for name, s in streams.items()},
    }
    validation = held_out_dataset(streams["val"], block_size=spec.block_size, batch_size=held_out_batch)
    return Prepared(
        plan=plan,
        train=training_dataset(streams["train"], block_size=spec.block_size, batch_size=batch_size, seed=spec.seed),
        validation=prefetched(validation.cache()),
        train_examples=train_windows,
        build=build,
        export=export_model,
        evaluate=evaluate,
    )


__all__ = [
    "GptBlock",
    "GptEmbedding",
    "GptTokenizer",
    "complete",
    "generate_ids",
    "network",
    "prepare",
    "sample_next",
]
