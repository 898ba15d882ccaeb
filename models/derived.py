"""The graph that turns a plan's date and text columns into numbers (see `models/columns.py` for what they are).

Training computes the numbers with the same ops as the export (`Derived`, run eagerly), so what a model learnt
from and what it is served cannot drift apart. A value that is not a date is missing (NaN): the trees route
it as missing, the network fills it with the training median.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from models.columns import DATE, TEXT_WORDS, feature_names

_MIN_DOCUMENTS = 2  # a word seen in fewer training rows is noise
_WORD_SEPARATORS = r"[^\pL\pN]+"
_HAN = r"(\p{Han})"


def words(texts: tf.Tensor) -> tf.RaggedTensor:
    """[N] strings -> [N, None] words: lower case, split on anything not a letter or digit, Han one by one."""
    text = tf.strings.lower(texts, encoding="utf-8")
    text = tf.strings.regex_replace(text, _HAN, r" \1 ")
    return tf.strings.split(tf.strings.strip(tf.strings.regex_replace(text, _WORD_SEPARATORS, " ")))


def vocabulary(values: pd.Series, size: int = TEXT_WORDS) -> dict[str, list[Any]]:
    """The `size` words in the most training rows (at least two), and their smoothed IDF, as the plan keeps them."""
    texts = values.fillna("").astype(str).to_numpy(dtype=object)
    documents: Counter[bytes] = Counter()
    for row in words(tf.constant(texts.astype(str))).to_list():
        documents.update(set(row))
    common = [(w, n) for w, n in documents.most_common() if n >= _MIN_DOCUMENTS][:size]
    common.sort(key=lambda wn: (-wn[1], wn[0]))  # ties in a fixed order
    n = len(texts)
    return {
        "words": [w.decode() for w, _ in common],
        "idf": [float(np.log((1 + n) / (1 + df)) + 1.0) for _, df in common],
    }


# -- the graph ------------------------------------------------------------------------------------------
def _days_from_civil(y: tf.Tensor, m: tf.Tensor, d: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), int64 in and out."""
    y = y - tf.cast(m <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + tf.where(m > 2, tf.constant(-3, tf.int64), 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def calendar(values: tf.Tensor, order: str) -> tf.Tensor:
    """[N] or [N, 1] date strings -> [N, 6] float32 calendar parts (`DATE_PARTS`), NaN where not a date."""
    s = tf.reshape(values, [-1])
    matched = tf.strings.regex_full_match(s, DATE)
    digits = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(s, "[^0-9]+", " ")))
    fields = digits.to_tensor(default_value="0", shape=[None, 5])
    n = tf.strings.to_number(tf.where(matched[:, None], fields, "0"), tf.int64)
    first, second, third = n[:, 0], n[:, 1], n[:, 2]
    y, m, d = {"ymd": (first, second, third), "mdy": (third, first, second), "dmy": (third, second, first)}[order]
    y = tf.where(y < 100, y + 2000, y)  # "24" is 2024
    hour, minute = n[:, 3], n[:, 4]
    valid = matched & (m >= 1) & (m <= 12) & (d >= 1) & (d <= 31) & (hour <= 23) & (minute <= 59)
    days = _days_from_civil(y, m, d)
    weekday = tf.math.floormod(days + 3, 7)  # 1970-01-01 was a Thursday
    parts = tf.cast(tf.stack([y, m, d, weekday, hour], axis=1), tf.float32)
    when = tf.cast(days, tf.float64) + tf.cast(hour * 60 + minute, tf.float64) / 1440.0
    parts = tf.concat([parts, tf.cast(when, tf.float32)[:, None]], axis=1)
    return tf.where(valid[:, None], parts, tf.constant(np.nan, tf.float32))


def meaning_encoding(sequence_length: int) -> dict[str, Any]:
    """How the plan keeps a text column read by the pretrained encoder (see `models/columns.py`)."""
    from models import minilm

    return {"meaning": minilm.NAME, "dimension": minilm.dimension(), "sequence_length": sequence_length}


class Derived(tf.Module):
    """The numbers a plan's date and text columns become; call it on raw [N, 1] columns, in or out of a graph.

    Returns {column: [N, width] float32}: `DATE_PARTS` for a date column, one TF-IDF weight per kept word
    for a text column, or its sentence embedding for a text column read by meaning.
    """

    def __init__(self, dates: dict[str, str], texts: dict[str, dict[str, Any]]) -> None:
        super().__init__(name="derived_columns")
        self.dates = dict(dates)
        self.names = feature_names(dates, texts)  # each column's numbers, by name
        by_words = {name: v for name, v in texts.items() if "meaning" not in v}
        self.meaning = [name for name in texts if name not in by_words]
        self.widths = {name: len(v["words"]) for name, v in by_words.items()}
        self.tables = {
            name: tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(v["words"] or [""], tf.string), tf.range(max(1, len(v["words"])), dtype=tf.int64)
                ),
                -1,
            )
            for name, v in by_words.items()
        }
        self.idf = {name: tf.constant(v["idf"] or [0.0], tf.float32) for name, v in by_words.items()}
        if self.meaning:  # one encoder for every column read by meaning, at the longest length asked
            self.encoder = _encoder(max(int(texts[name]["sequence_length"]) for name in self.meaning))

    def _embedded(self, values: tf.Tensor) -> tf.Tensor:
        """[N] or [N, 1] strings -> [N, dimension] unit-length embeddings.

        Eagerly (training): in length-sorted batches, each distinct text once, and remembered for the next call
        (the candidates of `auto` read the same rows). In a graph (the export): the encoder on the batch as sent.
        """
        texts = tf.reshape(values, [-1])
        if not tf.executing_eagerly():
            return tf.cast(self.encoder(texts), tf.float32)
        strings = np.array([t.decode("utf-8", "replace") for t in texts.numpy()], dtype=object)
        return tf.constant(_embed_once(self.encoder, strings))

    def _tfidf(self, name: str, values: tf.Tensor) -> tf.Tensor:
        width = max(1, self.widths[name])
        ids = tf.ragged.map_flat_values(self.tables[name].lookup, words(tf.reshape(values, [-1])))
        rows = tf.shape(ids, out_type=tf.int64)[0]
        known = ids.flat_values >= 0
        index = tf.stack([tf.boolean_mask(ids.value_rowids(), known), tf.boolean_mask(ids.flat_values, known)], 1)
        counts = tf.scatter_nd(index, tf.ones_like(index[:, 0], tf.float32), tf.stack([rows, width]))
        return tf.math.l2_normalize(counts * self.idf[name][None, :], axis=1)[:, : self.widths[name]]

    def __call__(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = {name: calendar(inputs[name], order) for name, order in self.dates.items()}
        out |= {name: self._tfidf(name, inputs[name]) for name in self.widths}
        out |= {name: self._embedded(inputs[name]) for name in self.meaning}
        return out


@functools.lru_cache(maxsize=2)
def _encoder(sequence_length: int) -> Any:
    """The pretrained encoder, loaded once per process and length: a run makes a `Derived` for each split it
    reads and for its export, and a load takes seconds. It is never trained here, so sharing it is safe."""
    from models import minilm

    return minilm.load(sequence_length=sequence_length)


_EMBEDDED: dict[tuple[int, str], np.ndarray] = {}  # (sequence length, digest of the texts) -> their embeddings
_EMBEDDED_KEPT = 8


def _embed_once(encoder: Any, texts: np.ndarray) -> np.ndarray:
    """The embeddings of `texts` ([N] str), each distinct text embedded once; the last few results are kept, as
    training derives the same rows' numbers for each candidate family."""
    key = (int(encoder.tokenizer.sequence_length), hashlib.sha256("\x00".join(texts).encode()).hexdigest())
    if key not in _EMBEDDED:
        distinct, inverse = np.unique(texts.astype(str), return_inverse=True)
        if len(_EMBEDDED) >= _EMBEDDED_KEPT:
            _EMBEDDED.pop(next(iter(_EMBEDDED)))
        _EMBEDDED[key] = encoder.embed(distinct)[inverse.ravel()]
    return _EMBEDDED[key]


def derive_frame(frame: pd.DataFrame, dates: dict[str, str], texts: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Each derived number of `frame`'s date and text columns as a float32 [N] array, by `feature_names`."""
    if not dates and not texts:
        return {}
    raw = {
        name: tf.constant(frame[name].astype("string").fillna("").to_numpy(dtype=object).astype(str))
        for name in [*dates, *texts]
    }
    module = Derived(dates, texts)
    values, names = module(raw), module.names
    return {
        feature: matrix[:, i]
        for name, matrix in ((n, values[n].numpy()) for n in values)
        for i, feature in enumerate(names[name])
    }
