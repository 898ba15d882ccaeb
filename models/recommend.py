"""Recommendation: matrix factorisation or a two-tower network over (user, item[, rating]) interactions.

The pieces, leaves first: the ranking-metric arithmetic (plain numpy), the factorisation layer and the network,
the data (cleaning, the per-user split, the id lookups, tf.data with sampled negatives for implicit
feedback), then the export whose `serving_default` turns user ids into their top-k unseen items, and the
scoring of interactions the model never trained on: the held-out test split (`evaluate`), or a later file of
ratings (`score_interactions`, which `modeldeck eval RUN --input FILE` runs through the export too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops

from models.spec import RecommenderSpec
from models.task import (
    LIGHT_STEPS_PER_EXECUTION,
    Prepared,
    TaskData,
    call_batched,
    in_chunks,
    prefetched,
    write_export,
)

AUTOTUNE = tf.data.AUTOTUNE
MIN_HELD_OUT = 5  # users with fewer interactions stay wholly in training (too little to both learn and test)
NEGATIVES = 4  # implicit feedback: random items drawn per positive, afresh every epoch
# Implicit feedback: the L2 penalty is scaled by this. Cross-entropy over 1 + NEGATIVES examples per positive pulls
# on each vector far more weakly than squared error on ratings, so the rating-scale l2 would flatten every vector
# to zero and leave only item popularity (MovieLens as implicit data: NDCG@10 0.118 unscaled, 0.152 scaled).
IMPLICIT_L2_SCALE = 0.05
RELEVANT_SHARE = 0.8  # explicit ratings: a held-out item is relevant when rated >= 80% of the scale's max
SERVE_BATCH = 1024  # users (or pairs) per call when `evaluate` runs the export
# A column named like this that reads as times (epoch numbers or dates) orders each user's interactions: the split
# then holds out the latest ones, as a model in use is always tested on ratings that come after its training.
TIME_NAME = re.compile(r"^(time|timestamp|date|datetime|ts|rated_at|rated_on|created_at)$", re.I)
TIME_SHARE = 0.95  # the share of present values that must read as times


# ---------------------------------------------------------------------------------------------------------
# Ranking metrics: plain numpy on a hit matrix (row = user, column = rank, True = a relevant item).


def hit_matrix(recommended: list[list[str]], relevant: list[set[str]], k: int) -> np.ndarray:
    """Which of each user's first k recommendations are relevant.

    Args:
        recommended: per user, item ids best first (may be shorter than k).
        relevant: per user, the set of relevant item ids.
        k: how many ranks to look at.

    Returns:
        A bool array [users, k].
    """
    hits = np.zeros((len(recommended), k), dtype=bool)
    for row, (items, wanted) in enumerate(zip(recommended, relevant, strict=True)):
        for col, item in enumerate(items[:k]):
            hits[row, col] = item in wanted
    return hits


def precision_at_k(hits: np.ndarray) -> np.ndarray:
    """Per user: relevant items among the first k, divided by k."""
    return hits.sum(axis=1) / hits.shape[1]


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per user: relevant items among the first k, divided by how many relevant items the user has."""
    return hits.sum(axis=1) / np.maximum(n_relevant, 1)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per user: discounted cumulative gain of the ranking over that of a perfect ranking (binary relevance)."""
    discount = 1.0 / np.log2(np.arange(hits.shape[1]) + 2.0)
    dcg = (hits * discount).sum(axis=1)
    ideal = np.array([discount[: min(int(n), hits.shape[1])].sum() for n in n_relevant])
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def ranking_metrics(recommended: list[list[str]], relevant: list[set[str]], k: int) -> dict[str, float]:
    """precision@k, recall@k and NDCG@k averaged over the users with at least one relevant item."""
    keep = [i for i, wanted in enumerate(relevant) if wanted]
    if not keep:
        return {"precision_at_k": 0.0, "recall_at_k": 0.0, "ndcg_at_k": 0.0}
    hits = hit_matrix([recommended[i] for i in keep], [relevant[i] for i in keep], k)
    n_relevant = np.array([len(relevant[i]) for i in keep])
    return {
        "precision_at_k": float(precision_at_k(hits).mean()),
        "recall_at_k": float(recall_at_k(hits, n_relevant).mean()),
        "ndcg_at_k": float(ndcg_at_k(hits, n_relevant).mean()),
    }


# ---------------------------------------------------------------------------------------------------------
# The network: a user side and an item side, each giving a vector and a bias, joined by a dot product.


@keras.saving.register_keras_serializable(package="modeldeck")
class Factorization(keras.layers.Layer):
    """(user index, item index) -> offset + user bias + item bias + <user vector, item vector>.

    "mf": each vector is a row of an embedding table. "two-tower": each side's embedding goes through its own
    Dense layers back to `embedding_dim`. Index 0 is the unknown user or item. The offset is fixed at the global
    mean rating (implicit: the log-odds of a positive among sampled items), so the rest only learns deviations
    from it; implicit feedback goes through a sigmoid.

    The L2 penalty on the four tables is added to the loss only while training, so `val_loss` is the plain
    error that early stopping should watch. On the whole table (not only the rows in a batch) it pulls the
    vectors and biases of rarely seen users and items towards zero: an item rated once keeps a small bias.
    """

    def __init__(
        self,
        users: int,
        items: int,
        embedding_dim: int = 32,
        architecture: str = "mf",
        l2: float = 0.0,
        offset: float = 0.0,
        activation: str = "linear",
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.users, self.items, self.embedding_dim = users, items, embedding_dim
        self.architecture, self.l2, self.initial_offset = architecture, l2, float(offset)
        self.activation, self.seed = activation, seed

        def table(size: int, width: int, name: str, seed: int | None) -> keras.layers.Embedding:
            init = keras.initializers.RandomNormal(stddev=0.05, seed=seed) if seed is not None else "zeros"
            return keras.layers.Embedding(size, width, embeddings_initializer=init, name=name)

        self.user_embedding = table(users + 1, embedding_dim, "user_embedding", seed)
        self.item_embedding = table(items + 1, embedding_dim, "item_embedding", seed + 1)
        self.user_bias = table(users + 1, 1, "user_bias", None)
        self.item_bias = table(items + 1, 1, "item_bias", None)
        self.user_dense: list[keras.layers.Dense] = []
        self.item_dense: list[keras.layers.Dense] = []
        if architecture == "two-tower":
            for side, dense, offset_seed in (("user", self.user_dense, 2), ("item", self.item_dense, 4)):
                dense += [
                    keras.layers.Dense(
                        2 * embedding_dim,
                        activation="relu",
                        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + offset_seed),
                        name=f"{side}_hidden",
                    ),
                    keras.layers.Dense(
                        embedding_dim,
                        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + offset_seed + 1),
                        name=f"{side}_vector",
                    ),
                ]

    def build(self, input_shape: Any = None) -> None:
        for layer in (self.user_embedding, self.item_embedding, self.user_bias, self.item_bias):
            layer.build((None,))
        for stack in (self.user_dense, self.item_dense):
            width = self.embedding_dim
            for dense in stack:
                dense.build((None, width))
                width = dense.units
        # Fixed, so that the biases are deviations from it and the fallbacks for unknown ids mean something.
        self.offset = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_offset), trainable=False, name="offset"
        )

    def _side(self, index: Any, embedding: Any, dense: list[Any], bias: Any) -> tuple[Any, Any]:
        vector = embedding(index)
        for layer in dense:
            vector = layer(vector)
        return ops.cast(vector, "float32"), ops.cast(bias(index)[..., 0], "float32")

    def user_side(self, index: Any) -> tuple[Any, Any]:
        """User indices [n] -> (vectors [n, d], biases [n]), float32."""
        return self._side(index, self.user_embedding, self.user_dense, self.user_bias)

    def item_side(self, index: Any) -> tuple[Any, Any]:
        """Item indices [n] -> (vectors [n, d], biases [n]), float32."""
        return self._side(index, self.item_embedding, self.item_dense, self.item_bias)

    def activate(self, x: Any) -> Any:
        return ops.sigmoid(x) if self.activation == "sigmoid" else x

    def call(self, inputs: dict[str, Any], training: bool | None = None) -> Any:
        user, user_bias = self.user_side(inputs["user"])
        item, item_bias = self.item_side(inputs["item"])
        if training and self.l2:
            tables = (self.user_embedding, self.item_embedding, self.user_bias, self.item_bias)
            self.add_loss(self.l2 * sum(ops.sum(ops.square(ops.cast(t.embeddings, "float32"))) for t in tables))
        return self.activate(ops.sum(user * item, axis=-1) + user_bias + item_bias + self.offset)

    def table(self, user: Any, user_bias: Any, item: Any, item_bias: Any) -> Any:
        """Scores of every (user, item) pair: [users, d], [users], [items, d], [items] -> [users, items]."""
        return self.activate(
            ops.matmul(user, ops.transpose(item)) + user_bias[:, None] + item_bias[None, :] + self.offset
        )

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "users": self.users,
            "items": self.items,
            "embedding_dim": self.embedding_dim,
            "architecture": self.architecture,
            "l2": self.l2,
            "offset": self.initial_offset,
            "activation": self.activation,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Plan:
    """What preprocessing learned from the training rows (JSON-safe, saved with the run)."""

    user: str  # the column names in the data
    item: str
    rating: str | None  # None: no rating column
    implicit: bool  # every row is a positive interaction (no rating column, or one that never varies)
    architecture: str
    users: int  # users and items seen in training (the lookups' vocabularies, without the unknown slot)
    items: int
    global_mean: float  # explicit: mean training rating; implicit: 1.0
    rating_min: float  # explicit: the training ratings' range (predictions are clipped to it); implicit: 0-1
    rating_max: float
    relevant_at: float  # held-out items rated at least this are relevant to the ranking metrics
    top_k: int
    popularity_weight: float  # explicit ratings: how much an item's popularity adds to its rank (see `rank_scores`)
    popular: list[str]  # what an unknown user gets: most interacted-with training items, best first
    rows: dict[str, int]
    # Last, with defaults: plans stored before they existed had neither.
    time: str | None = None  # the timestamp column, when the data has one
    holdout: str = "random"  # "latest": each user's latest interactions by time were held out; "random"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"negatives": NEGATIVES if self.implicit else 0}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """The plan a run stored (`to_dict`), back."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def network(plan: Plan, spec: RecommenderSpec) -> keras.Model:
    """User and item indices in (0 = unknown), a predicted rating (or interaction probability) out."""
    user = keras.Input(shape=(), dtype="int64", name="user")
    item = keras.Input(shape=(), dtype="int64", name="item")
    layer = Factorization(
        plan.users,
        plan.items,
        embedding_dim=spec.embedding_dim,
        architecture=spec.architecture,
        l2=spec.l2 * (IMPLICIT_L2_SCALE if plan.implicit else 1.0),
        offset=-float(np.log(NEGATIVES)) if plan.implicit else plan.global_mean,
        activation="sigmoid" if plan.implicit else "linear",
        seed=spec.seed,
        dtype="float32",  # mixed precision: the score and the loss stay in float32 (the towers' Dense may not)
        name="recommender",
    )
    outputs = layer({"user": user, "item": item})
    return keras.Model({"user": user, "item": item}, outputs, name=spec.architecture.replace("-", "_"))


def compile_network(model: keras.Model, plan: Plan, spec: RecommenderSpec) -> None:
    optimizer = keras.optimizers.Adam(learning_rate=spec.learning_rate)
    if plan.implicit:
        loss = "binary_crossentropy"
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    else:
        loss, metrics = "mse", [keras.metrics.RootMeanSquaredError(name="rmse")]
    model.compile(optimizer, loss=loss, metrics=metrics, steps_per_execution=LIGHT_STEPS_PER_EXECUTION)


# ---------------------------------------------------------------------------------------------------------
# Data: clean, split per user, index, batch.


def _ids(series: pd.Series) -> pd.Series:
    """Ids as strings, the way a caller will send them: 7.0 read from a column with gaps is "7"."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & (series == series.round())
        if whole[series.notna()].all():
            return series.astype("Int64").astype("string")
    return series.astype("string").str.strip()


def _times(values: pd.Series) -> pd.Series | None:
    """Seconds since 1970 (float) from epoch numbers or date strings; None when the column does not read as times."""
    present = values.notna()
    if not present.any() or pd.api.types.is_bool_dtype(values):
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers[present].notna().mean() >= TIME_SHARE:
        return numbers.astype("float64")
    dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if dates[present].notna().mean() >= TIME_SHARE:
        return (dates - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return None


def time_column(data: TaskData, taken: tuple[str | None, ...]) -> tuple[str, pd.Series] | None:
    """The column that times the interactions and its seconds: the `time` role where the roles have one (None: the
    data is not timed), else the first column named like `TIME_NAME` that reads as times."""
    if "time" in data.roles:
        named = data.roles["time"]
        candidates = [named] if named else []
    else:
        candidates = [c for c in data.frame.columns if TIME_NAME.match(str(c)) and c not in taken]
    for name in candidates:
        if name in data.frame.columns and (seconds := _times(data.frame[name])) is not None:
            return name, seconds
    return None


# 1. Keep usable rows: a user, an item, a numeric rating when the data has one; the last of repeated pairs (the
#    latest, when a column times them).
def clean(data: TaskData) -> tuple[pd.DataFrame, str, str, str | None, str | None]:
    """The interactions as columns user, item, rating (and time, in seconds, when the data has a timestamp).

    Returns:
        The rows, then the data's user, item, rating and time column names (None: the data has none).
    """
    roles = data.roles
    user, item, rating = roles.get("user"), roles.get("item"), roles.get("rating")
    if not user or not item:
        raise ValueError(
            "Recommendation needs a user column and an item column. Mark them on the Data page "
            "(columns named like user_id and item_id are found automatically)."
        )
    for name in (user, item, rating):
        if name and name not in data.frame.columns:
            raise ValueError(f"Column '{name}' is not in the data. Expected one of: {', '.join(data.frame.columns)}.")
    frame = pd.DataFrame({"user": _ids(data.frame[user]), "item": _ids(data.frame[item])})
    if rating:
        values = pd.to_numeric(data.frame[rating], errors="coerce")
        if values.notna().sum() == 0:
            raise ValueError(f"Rating column '{rating}' has no numbers. Pick a numeric rating column, or none.")
        frame["rating"] = values.astype("float32")
    else:
        frame["rating"] = np.float32(1.0)
    timed = time_column(data, (user, item, rating))
    if timed:
        frame["time"] = timed[1].to_numpy()
        frame = frame.sort_values("time", kind="stable", na_position="first")  # an untimed row counts as oldest
    frame = frame.dropna(subset=["user", "item", "rating"])
    frame = frame[(frame["user"] != "") & (frame["item"] != "")]
    frame = frame.drop_duplicates(subset=["user", "item"], keep="last").reset_index(drop=True)
    return frame, user, item, rating, timed[0] if timed else None


# 2. Hold out interactions per user, so every test user also has history the model learned from: the latest ones
#    when the rows have a time, else random ones.
def split(frame: pd.DataFrame, spec: RecommenderSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(spec.seed)
    shuffled = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    if "time" in shuffled.columns:  # latest first (ties in random order): the first positions are held out
        shuffled = shuffled.sort_values("time", ascending=False, kind="stable", na_position="last")
        shuffled = shuffled.reset_index(drop=True)
    position = shuffled.groupby("user", sort=False).cumcount().to_numpy()
    count = shuffled.groupby("user", sort=False)["item"].transform("size").to_numpy()
    eligible = count >= MIN_HELD_OUT
    n_test = np.where(eligible, np.maximum(1, np.round(count * spec.test_split)), 0)
    n_val = np.where(eligible, np.maximum(1, np.round(count * spec.validation_split)), 0)
    is_test = position < n_test
    is_val = ~is_test & (position < n_test + n_val)
    train, val, test = shuffled[~is_test & ~is_val], shuffled[is_val], shuffled[is_test]
    if test.empty:
        raise ValueError(
            f"No user has {MIN_HELD_OUT} or more interactions, so nothing can be held out to test the "
            f"recommendations. Collect more interactions per user (at least {MIN_HELD_OUT} for some users)."
        )
    return (train.reset_index(drop=True), val.reset_index(drop=True), test.reset_index(drop=True))


# 3. Popularity from the training rows: count, then mean rating, then the id (so ties are stable).
def popularity(train: pd.DataFrame) -> pd.DataFrame:
    stats = train.groupby("item")["rating"].agg(["size", "mean"]).reset_index()
    return stats.sort_values(["size", "mean", "item"], ascending=[False, False, True]).reset_index(drop=True)


def make_plan(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    columns: tuple[str, str, str | None, str | None],
    spec: RecommenderSpec,
) -> Plan:
    user, item, rating, time = columns
    ratings = train["rating"].to_numpy("float64")
    # A rating column that never varies (every row "clicked": 1) says only that the interaction happened.
    implicit = rating is None or train["rating"].nunique() <= 1
    top = max(float(ratings.max()), 0.0)
    return Plan(
        user=user,
        item=item,
        rating=rating,
        implicit=implicit,
        architecture=spec.architecture,
        users=int(train["user"].nunique()),
        items=int(train["item"].nunique()),
        global_mean=1.0 if implicit else float(ratings.mean()),
        rating_min=0.0 if implicit else float(ratings.min()),
        rating_max=1.0 if implicit else float(ratings.max()),
        relevant_at=1.0 if implicit else RELEVANT_SHARE * top,
        top_k=spec.top_k,
        popularity_weight=0.0 if implicit else spec.popularity_weight,
        popular=popularity(train)["item"].head(spec.top_k).tolist(),
        rows={"train": len(train), "validation": len(val), "test": len(test)},
        time=time,
        holdout="latest" if time else "random",
    )


# 4. Id lookups from the training rows only: index 0 is every id the model never trained on.
def lookups(train: pd.DataFrame) -> tuple[keras.layers.StringLookup, keras.layers.StringLookup]:
    def lookup(column: str) -> keras.layers.StringLookup:
        vocabulary = popularity(train)["item"] if column == "item" else sorted(train["user"].unique())
        return keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1, name=f"{column}_lookup")

    return lookup("user"), lookup("item")


def indexed(frame: pd.DataFrame, users: keras.layers.StringLookup, items: keras.layers.StringLookup) -> tf.data.Dataset:
    """(user index, item index, rating) per row, looked up once with the layers the export uses. Not in a tf.data
    map: a lookup is a stateful op, and under op determinism (on in every run) tf.data then turns the whole
    pipeline's prefetch and parallel maps off."""
    return tf.data.Dataset.from_tensor_slices(
        (
            in_chunks(users, frame["user"].to_numpy(str)).astype("int64"),
            in_chunks(items, frame["item"].to_numpy(str)).astype("int64"),
            frame["rating"].to_numpy("float32"),
        )
    )


def with_negatives(u: tf.Tensor, i: tf.Tensor, seed: tf.Tensor, n_items: int) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """A batch of positives plus NEGATIVES random items per positive (label 0), drawn from `seed`."""
    n = tf.shape(u)[0]
    drawn = tf.random.stateless_uniform(
        [n * NEGATIVES], seed=tf.stack([seed, tf.zeros_like(seed)]), minval=1, maxval=n_items + 1, dtype=tf.int64
    )
    users = tf.concat([u, tf.repeat(u, NEGATIVES)], axis=0)
    items = tf.concat([i, drawn], axis=0)
    labels = tf.concat([tf.ones([n]), tf.zeros([n * NEGATIVES])], axis=0)
    return {"user": users, "item": items}, labels


def dataset(
    rows: tf.data.Dataset, plan: Plan, *, batch_size: int, size: int, shuffle_seed: int | None, negative_seed: int
) -> tf.data.Dataset:
    """Batches of ({"user", "item"} indices, target); implicit data gets sampled negatives per batch."""
    ds = rows
    if shuffle_seed is not None:
        ds = ds.shuffle(min(size, 200_000), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if plan.implicit:
        # Fresh negatives every epoch while training; the same ones every epoch for validation.
        seeds = tf.data.Dataset.random(seed=negative_seed, rerandomize_each_iteration=shuffle_seed is not None)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: with_negatives(batch[0], batch[1], s, plan.items), num_parallel_calls=AUTOTUNE
        )
    else:
        ds = ds.map(lambda u, i, r: ({"user": u, "item": i}, r), num_parallel_calls=AUTOTUNE)
    return prefetched(ds)


# ---------------------------------------------------------------------------------------------------------
# Export and evaluation.


def rank_scores(scores: tf.Tensor, log_counts: tf.Tensor, plan: Plan) -> tf.Tensor:
    """The order recommendations come in. Implicit: the score itself (it already learned popularity from the
    sampled negatives). Explicit: the predicted rating on a 0-1 scale plus `popularity_weight` x the item's
    training count on a 0-1 log scale, because a rating model alone never sees which items people choose
    and ranks obscure items with a few high ratings first."""
    if plan.implicit or not plan.popularity_weight:
        return scores
    spread = max(plan.rating_max - plan.rating_min, 1e-6)
    return (scores - plan.rating_min) / spread + plan.popularity_weight * log_counts[None, :]


def export(
    model: keras.Model,
    path: Path,
    *,
    plan: Plan,
    train: pd.DataFrame,
    users: keras.layers.StringLookup,
    items: keras.layers.StringLookup,
) -> None:
    """Write a SavedModel whose signatures take raw string ids.

    `serving_default`: user tf.string [None] -> items tf.string [None, k] (highest score first), scores float32
    [None, k], known bool [None]. `rating`: user, item tf.string [None] -> rating float32 [None], known_user and
    known_item bool [None] (whether the model trained on them).
    """
    layer: Factorization = model.get_layer("recommender")
    vocabulary = items.get_vocabulary()  # index 0 is the unknown slot
    k = min(plan.top_k, plan.items)
    # 1. What each user already interacted with in training, as ragged rows by user index (row 0: unknown).
    u_index = users(train["user"].to_numpy(str)).numpy()
    i_index = items(train["item"].to_numpy(str)).numpy()
    order = np.lexsort((i_index, u_index))
    splits = np.searchsorted(u_index[order], np.arange(plan.users + 2)).astype("int64")
    seen_items = tf.constant(i_index[order].astype("int64"))
    seen_splits = tf.constant(splits)
    # 2. Popularity: the fallback list for unknown users, and the log-count the explicit ranking adds.
    counts = train["item"].value_counts().reindex(vocabulary).fillna(0).to_numpy("float64")
    log_counts = tf.constant((np.log1p(counts) / np.log1p(max(counts.max(), 1.0))).astype("float32"))
    popular = tf.constant(items(plan.popular).numpy().astype("int32")[:k])
    item_ids = tf.constant(vocabulary)
    low, high = plan.rating_min, plan.rating_max

    def bounded(x: tf.Tensor) -> tf.Tensor:
        return x if plan.implicit else tf.clip_by_value(x, low, high)

    def catalogue() -> tuple[tf.Tensor, tf.Tensor]:
        return layer.item_side(tf.range(len(vocabulary), dtype=tf.int64))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user")], autograph=False)
    def recommend(user: tf.Tensor) -> dict[str, tf.Tensor]:
        u = users(user)
        known = u > 0
        vectors, biases = catalogue()
        scores = layer.table(*layer.user_side(u), vectors, biases)
        rank = rank_scores(scores, log_counts, plan)
        # 3. Never recommend the unknown slot or what the user already has.
        seen = tf.gather(tf.RaggedTensor.from_row_splits(seen_items, seen_splits), u)
        where = tf.stack([seen.value_rowids(), seen.flat_values], axis=1)
        rank = tf.tensor_scatter_nd_update(rank, where, tf.fill([tf.shape(where)[0]], -np.inf))
        rank = tf.concat([tf.fill([tf.shape(rank)[0], 1], -np.inf), rank[:, 1:]], axis=1)
        best_rank, best = tf.math.top_k(rank, k=k)
        best_scores = tf.gather(scores, best, batch_dims=1)
        # 4. Unknown users get the popular list, scored by the model's item side alone (no user part).
        pop_scores = layer.table(
            tf.zeros([1, tf.shape(vectors)[1]]), tf.zeros([1]), tf.gather(vectors, popular), tf.gather(biases, popular)
        )
        n = tf.shape(user)[0]
        best = tf.where(known[:, None], best, tf.tile(popular[None, :], [n, 1]))
        best_scores = tf.where(known[:, None], best_scores, tf.tile(pop_scores, [n, 1]))
        # 5. A user who has seen nearly everything gets "" (score 0) in the places left over.
        filled = ~known[:, None] | tf.math.is_finite(best_rank)
        # 6. The k chosen, listed by the score shown (the explicit ranking also weighs popularity, not shown).
        order = tf.argsort(tf.where(filled, best_scores, -np.inf), axis=1, direction="DESCENDING", stable=True)
        best, best_scores, filled = (tf.gather(x, order, batch_dims=1) for x in (best, best_scores, filled))
        return {
            "items": tf.where(filled, tf.gather(item_ids, best), ""),
            "scores": tf.where(filled, bounded(best_scores), 0.0),
            "known": known,
        }

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="user"), tf.TensorSpec([None], tf.string, name="item")]
    )
    def rate(user: tf.Tensor, item: tf.Tensor) -> dict[str, tf.Tensor]:
        u, i = users(user), items(item)
        # 7. An unknown user is scored by the item side alone (the item's mean); an unknown item gets the offset
        # (the global mean).
        use_user = (u > 0) & (i > 0)
        use_item = i > 0
        user_vec, user_b = layer.user_side(u)
        item_vec, item_b = layer.item_side(i)
        x = (
            tf.reduce_sum(tf.where(use_user[:, None], user_vec, 0.0) * tf.where(use_item[:, None], item_vec, 0.0), 1)
            + tf.where(use_user, user_b, 0.0)
            + tf.where(use_item, item_b, 0.0)
            + layer.offset
        )
        return {"rating": bounded(layer.activate(x)), "known_user": u > 0, "known_item": use_item}

    write_export(path, {"serving_default": recommend, "rating": rate}, model, users, items)


def popular_baseline(train: pd.DataFrame, test_users: list[str], k: int) -> list[list[str]]:
    """Per user, the k most popular training items the user has not interacted with in training."""
    ranked = popularity(train)["item"].tolist()
    seen = train.groupby("user")["item"].agg(set).to_dict()
    lists = []
    for user in test_users:
        had = seen.get(user, set())
        picks: list[str] = []
        for item in ranked:
            if item not in had:
                picks.append(item)
                if len(picks) == k:
                    break
        lists.append(picks)
    return lists


Outputs = dict[str, np.ndarray]  # a signature's named outputs, one entry per row


BIAS_SHRINK = 10.0  # ratings' worth of prior pulling a user's or an item's bias towards 0


def bias_baseline(train: pd.DataFrame, rounds: int = 4) -> Callable[[pd.DataFrame], np.ndarray]:
    """The classic rating baseline: the mean, plus each item's and each user's offset from it, shrunk towards 0
    for the few-rated (Koren, "Factorization meets the neighborhood", 2008), fitted by alternating a few rounds.
    Returns a function of (user, item) rows; an unknown user or item adds nothing."""
    mean = float(train["rating"].mean())
    user_bias = pd.Series(0.0, index=pd.Index(train["user"].unique()))
    for _ in range(rounds):
        residual = train["rating"] - mean - train["user"].map(user_bias).to_numpy()
        grouped = residual.groupby(train["item"])
        item_bias = grouped.sum() / (grouped.count() + BIAS_SHRINK)
        residual = train["rating"] - mean - train["item"].map(item_bias).to_numpy()
        grouped = residual.groupby(train["user"])
        user_bias = grouped.sum() / (grouped.count() + BIAS_SHRINK)

    def predict(rows: pd.DataFrame) -> np.ndarray:
        user = rows["user"].map(user_bias).to_numpy("float64", na_value=0.0)
        item = rows["item"].map(item_bias).to_numpy("float64", na_value=0.0)
        return mean + user + item

    return predict


@dataclass(frozen=True)
class Scored:
    """The model's and the baselines' figures on interactions the model never trained on."""

    scores: dict[str, Any]  # rmse, mae (explicit ratings), precision/recall/ndcg_at_k, k, test_users, test_rows
    baseline: dict[str, Any]  # the same figures of the baselines; empty without the training rows
    unknown_user_rows: int  # rows whose user the model never trained on: left out of every figure
    unknown_item_rows: int  # rows of known users whose item it never trained on: left out of RMSE and MAE


def _known(rated: Outputs, rows: pd.DataFrame, train: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Which rows' user and item the model trained on: the export says so (exports before it did: the training
    rows say so, or every row is taken as known)."""
    if "known_user" in rated:
        return rated["known_user"].astype(bool), rated["known_item"].astype(bool)
    if train is not None:
        return rows["user"].isin(train["user"]).to_numpy(), rows["item"].isin(train["item"]).to_numpy()
    return np.ones(len(rows), bool), np.ones(len(rows), bool)


def score_interactions(
    rows: pd.DataFrame,
    *,
    plan: Plan,
    rate: Callable[[pd.DataFrame], Outputs],
    recommend: Callable[[pd.DataFrame], Outputs],
    train: pd.DataFrame | None,
) -> Scored:
    """Score the export on interactions it never trained on: the held-out test split, or a later file.

    Args:
        rows: the interactions as `clean` gives them (user, item, rating).
        plan: the run's plan.
        rate: the export's `rating` signature on a frame with user and item columns.
        recommend: the export's `serving_default` signature on a frame with a user column.
        train: the training rows, for the baselines; None where they are not at hand (no baselines then).
    """
    k = plan.top_k
    rated = rate(rows[["user", "item"]])
    known_user, known_item = _known(rated, rows, train)
    known = known_user & known_item
    scores: dict[str, Any] = {}
    baseline: dict[str, Any] = {"rule": "most popular items"} if train is not None else {}
    # 1. Rating error on the rows the model knows both sides of, against the mean + user and item biases.
    if not plan.implicit:
        actual = rows["rating"].to_numpy("float64")[known]
        error = rated["rating"].astype("float64")[known] - actual
        scores["rmse"] = float(np.sqrt(np.mean(error**2))) if known.any() else None
        scores["mae"] = float(np.mean(np.abs(error))) if known.any() else None
        if train is not None:
            guess = bias_baseline(train)(rows[known])
            baseline["rmse"] = float(np.sqrt(np.mean((guess - actual) ** 2))) if known.any() else None
            baseline["rmse_rule"] = "mean + user and item biases"
    # 2. Ranking, for the users the model knows: the items a user liked (or, implicit, every item) should come first.
    #    A pair the user had in training is never recommended, so it cannot count.
    ranked = rows[known_user]
    if train is not None:
        had = pd.MultiIndex.from_frame(train[["user", "item"]])
        ranked = ranked[~pd.MultiIndex.from_frame(ranked[["user", "item"]]).isin(had)]
    liked = (ranked if plan.implicit else ranked[ranked["rating"] >= plan.relevant_at]).groupby("user")["item"].agg(set)
    test_users = sorted(liked.index.tolist())
    relevant = [set(liked[u]) for u in test_users]
    recommended: list[list[str]] = []
    if test_users:
        out = recommend(pd.DataFrame({"user": test_users}))
        recommended = [[i.decode() for i in row if i] for row in out["items"]]
    scores |= ranking_metrics(recommended, relevant, k)
    if train is not None:
        baseline |= ranking_metrics(popular_baseline(train, test_users, k), relevant, k)
    scores |= {"k": k, "test_users": len(test_users), "test_rows": int(len(rows))}
    return Scored(
        scores=scores,
        baseline=baseline,
        unknown_user_rows=int((~known_user).sum()),
        unknown_item_rows=int((known_user & ~known_item).sum()),
    )


def on_rows(fn: Any, batch: int) -> Callable[[pd.DataFrame], Outputs]:
    """A loaded signature as a function of a frame holding its inputs (string ids), `batch` rows a call."""
    names = list(fn.structured_input_signature[1])
    return lambda frame: call_batched(fn, batch, **{name: frame[name].to_numpy(str) for name in names})


def evaluate(path: Path, *, plan: Plan, train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict, dict]:
    """Score the export on the held-out test interactions with plain TensorFlow (no ModelDeck code)."""
    signatures = tf.saved_model.load(str(path)).signatures
    scored = score_interactions(
        test,
        plan=plan,
        rate=on_rows(signatures["rating"], 8 * SERVE_BATCH),
        recommend=on_rows(signatures["serving_default"], SERVE_BATCH),
        train=train,
    )
    details = {"baseline": scored.baseline, "rows": plan.rows, "users": plan.users, "items": plan.items}
    return scored.scores, details


def training_rows(data: TaskData, *, plan: Plan, spec: RecommenderSpec) -> pd.DataFrame | None:
    """The run's training interactions again, from its dataset version (the split is seeded: the same one).

    None when they do not come out as many as the run trained on (the data or the split rule has changed).
    """
    # The plan's time column, or none (a run from before timed hold-outs too): the rows come in the same order.
    roles = {"user": plan.user, "item": plan.item, "rating": plan.rating, "time": plan.time}
    frame, *_ = clean(TaskData(data.frame, roles))
    train, _, _ = split(frame, spec)
    return train if len(train) == plan.rows["train"] else None


def prepare(data: TaskData, *, spec: RecommenderSpec, batch_size: int) -> Prepared:
    """Split the interactions per user, index the ids, and return pipelines, build, export and evaluate."""
    frame, user, item, rating, time = clean(data)
    if len(frame) < 2 * MIN_HELD_OUT:
        raise ValueError(
            f"Only {len(frame)} usable interactions (rows with both a user and an item). "
            f"Recommendation needs at least {2 * MIN_HELD_OUT}; upload more interactions."
        )
    train, val, test = split(frame, spec)
    plan = make_plan(train, val, test, (user, item, rating, time), spec)
    users, items = lookups(train)
    negatives = NEGATIVES if plan.implicit else 0
    train_ds = dataset(
        indexed(train, users, items),
        plan,
        batch_size=batch_size,
        size=len(train),
        shuffle_seed=spec.seed,
        negative_seed=spec.seed,
    )
    val_ds = dataset(
        indexed(val, users, items),
        plan,
        batch_size=batch_size,
        size=len(val),
        shuffle_seed=None,
        negative_seed=spec.seed + 1,
    )

    def build() -> keras.Model:
        model = network(plan, spec)
        compile_network(model, plan, spec)
        return model

    return Prepared(
        plan=plan.to_dict(),
        train=train_ds,
        validation=val_ds,
        train_examples=len(train) * (1 + negatives),
        build=build,
        export=lambda model, path: export(model, Path(path), plan=plan, train=train, users=users, items=items),
        evaluate=lambda path: evaluate(Path(path), plan=plan, train=train, test=test),
    )
