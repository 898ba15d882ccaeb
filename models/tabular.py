"""Tabular classification and regression: an MLP over Keras FeatureSpace preprocessing.

The pieces, leaves first: a preprocessing plan (which columns, fill values, classes, target scaling),
the data split, tf.data pipelines, the FeatureSpace, the network, and the export whose
`serving_default` takes raw columns and returns named outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras.utils import FeatureSpace

from models import derived, metrics
from models.columns import date_order, feature_names, text_width
from models.spec import TabularSpec, pretrained_installed
from models.splits import three_way
from models.task import (
    LIGHT_STEPS_PER_EXECUTION,
    ROW,
    Choice,
    Prepared,
    TaskData,
    call_batched,
    classified,
    prefetched,
    write_export,
)

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class Plan:
    """Everything needed to turn raw columns into model inputs and outputs back into answers."""

    task: str  # "classification" | "regression"
    target: str
    numeric: list[str]  # float32 inputs, missing values filled with the training median
    categorical: list[str]  # string inputs, missing values become "" (an unknown category)
    hashed: list[str]  # categorical columns with too many values, hashed into bins
    fill: dict[str, float]
    classes: list[str]  # classification: class names, index = model output position
    target_scale: dict[str, Any]  # regression: {"log": bool, "mean": float, "std": float}
    dates: dict[str, str] = field(default_factory=dict)  # date columns and their field order (models/columns.py)
    # free text: {"words": [...], "idf": [...]}, or {"meaning": encoder, "dimension": n, "sequence_length": n}
    texts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """The plan `to_dict` wrote, as a run saves it (other keys, e.g. the trees' `architecture`, left out)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    @property
    def inputs(self) -> list[str]:
        """The raw columns the exported model takes."""
        return self.numeric + self.categorical + self.hashed + list(self.dates) + list(self.texts)

    @property
    def date_features(self) -> list[str]:
        """The calendar numbers the date columns become ("signup_date.month", ...)."""
        names = feature_names(self.dates, {})
        return [feature for column in self.dates for feature in names[column]]

    def derived(self) -> derived.Derived:
        """The graph module that turns this plan's date and text columns into numbers."""
        return derived.Derived(self.dates, self.texts)


# 1. Decide what the model sees, from the training rows only (no peeking at the test split).
def make_plan(train: pd.DataFrame, *, columns: list[dict[str, Any]], target: str, task: str, spec: TabularSpec) -> Plan:
    numeric, categorical, hashed, fill = [], [], [], {}
    dates: dict[str, str] = {}
    texts: dict[str, dict[str, Any]] = {}
    for col in columns:
        name = col["name"]
        if name == target or train[name].nunique(dropna=False) <= 1:
            continue  # constant columns carry nothing
        if col["kind"] == "numeric":
            numeric.append(name)
            median = train[name].median()
            fill[name] = float(median) if pd.notna(median) else 0.0
        elif col["kind"] == "date" and (order := date_order(train[name])):
            dates[name] = order
        elif col["kind"] == "text" and spec.read_by_meaning(name):
            texts[name] = derived.meaning_encoding(spec.text_sequence_length)
        elif col["kind"] == "text":
            if (vocabulary := derived.vocabulary(train[name]))["words"]:
                texts[name] = vocabulary
        elif train[name].nunique() <= spec.max_categories:
            categorical.append(name)
        else:
            hashed.append(name)
    classes: list[str] = []
    target_scale: dict[str, Any] = {}
    if task == "classification":
        classes = sorted(train[target].astype(str).unique().tolist())
    else:
        y = train[target].astype("float64").to_numpy()
        skewed = float(pd.Series(y).skew()) > 1.0 and y.min() > 0
        use_log = spec.scale_target == "log" or (spec.scale_target == "auto" and skewed)
        z = np.log1p(y) if use_log else y
        scaled = spec.scale_target != "none"
        target_scale = {
            "log": bool(use_log),
            "mean": float(z.mean()) if scaled else 0.0,
            "std": float(z.std() or 1.0) if scaled else 1.0,
        }
    plan = Plan(task, target, numeric, categorical, hashed, fill, classes, target_scale, dates, texts)
    if dates:  # the network fills a date that is missing or unreadable with the training median of each part
        parts = derived.derive_frame(train, dates, {})
        fill |= {name: float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0 for name, v in parts.items()}
    return plan


# 2. Split once, reproducibly: train / validation / test.
def split(
    frame: pd.DataFrame, *, target: str, task: str, spec: TabularSpec
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame = frame[frame[target].notna()].reset_index(drop=True)
    strata = frame[target].astype(str) if task == "classification" else None
    return three_way(
        frame, test_split=spec.test_split, validation_split=spec.validation_split, seed=spec.seed, by=strata
    )


# 3. Raw columns as the exported model receives them: [N, 1] float32 or string; then what the network reads.
def signature(plan: Plan) -> dict[str, tf.TensorSpec]:
    """The export's inputs: a float32 [N, 1] per number column, a string [N, 1] per category, date and text."""
    specs = {n: tf.TensorSpec([None, 1], tf.float32, name=n) for n in plan.numeric}
    strings = plan.categorical + plan.hashed + list(plan.dates) + list(plan.texts)
    return specs | {n: tf.TensorSpec([None, 1], tf.string, name=n) for n in strings}


def raw_inputs(frame: pd.DataFrame, plan: Plan) -> dict[str, np.ndarray]:
    inputs: dict[str, np.ndarray] = {}
    for name in plan.numeric:
        values = pd.to_numeric(frame[name], errors="coerce").fillna(plan.fill[name])
        inputs[name] = values.to_numpy("float32").reshape(-1, 1)
    for name in plan.categorical + plan.hashed + list(plan.dates) + list(plan.texts):
        values = frame[name].astype("string").fillna("")
        inputs[name] = values.to_numpy(dtype=object).astype(str).reshape(-1, 1)
    return {name: inputs[name] for name in sorted(inputs)}


def words_input(column: str) -> str:
    """The network's input holding a text column's word weights."""
    return f"{column}.words"


def model_inputs(raw: dict[str, Any], plan: Plan, module: derived.Derived) -> dict[str, Any]:
    """What the network reads, from raw columns, in the graph or eagerly (training calls it on NumPy arrays).

    Numbers with missing values filled by the training median, categories as they are, each calendar part of a
    date column (filled the same way), and each text column's word weights.
    """
    x = {name: raw[name] for name in plan.numeric + plan.categorical + plan.hashed}
    for name in plan.numeric:
        x[name] = tf.where(tf.math.is_nan(x[name]), plan.fill[name], x[name])
    values = module({name: raw[name] for name in [*plan.dates, *plan.texts]})
    names = feature_names(plan.dates, {})
    for column in plan.dates:
        for i, feature in enumerate(names[column]):
            part = values[column][:, i : i + 1]
            x[feature] = tf.where(tf.math.is_nan(part), plan.fill[feature], part)
    x |= {words_input(column): values[column] for column in plan.texts}
    return {name: x[name] for name in sorted(x)}


def _numpy(inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: value.numpy() if hasattr(value, "numpy") else value for name, value in inputs.items()}


def encode_target(series: pd.Series, plan: Plan) -> np.ndarray:
    if plan.task == "classification":
        index = {c: i for i, c in enumerate(plan.classes)}
        return series.astype(str).map(index).fillna(-1).to_numpy("int64")
    y = series.astype("float64").to_numpy()
    s = plan.target_scale
    z = np.log1p(y) if s["log"] else y
    return ((z - s["mean"]) / s["std"]).astype("float32")


# 4. Preprocessing layers, adapted on the training rows.
CYCLES = {"month": 13, "weekday": 7, "hour": 24}  # calendar parts the network reads one-hot (values below these)


def feature_space(plan: Plan, spec: TabularSpec, train_inputs: dict[str, np.ndarray]) -> FeatureSpace:
    """Numeric columns are normalised by their mean and variance, computed here in NumPy: FeatureSpace's own
    adapt makes a pass over a tf.data pipeline per column, 3 s for 10 columns of 40,000 rows, while the user
    waits for the first epoch. Only the string lookups are adapted by FeatureSpace. A date's month, weekday and
    hour are one-hot (December is not "more" than November); its year, day and days since 1970 are numbers."""
    features: dict[str, Any] = {}
    cycles = {f"{column}.{part}": n for column in plan.dates for part, n in CYCLES.items()}
    for name in plan.numeric + plan.date_features:
        if name in cycles:  # a month is one of twelve, not a size: one-hot, as a category
            one_hot = keras.layers.CategoryEncoding(num_tokens=cycles[name], output_mode="one_hot")
            features[name] = FeatureSpace.feature(dtype="float32", preprocessor=one_hot, output_mode="float")
            continue
        column = train_inputs[name].astype("float64")
        normalise = keras.layers.Normalization(mean=column.mean(axis=0), variance=column.var(axis=0))
        features[name] = FeatureSpace.feature(dtype="float32", preprocessor=normalise, output_mode="float")
    features |= {n: FeatureSpace.string_categorical(num_oov_indices=1) for n in plan.categorical}
    features |= {n: FeatureSpace.string_hashed(num_bins=spec.max_categories) for n in plan.hashed}
    space = FeatureSpace(features=features, output_mode="concat")
    lookups = {n: train_inputs[n] for n in plan.categorical} or {n: train_inputs[n] for n in features}
    space.adapt(tf.data.Dataset.from_tensor_slices(lookups).batch(8192))
    return space


# 5. The network that follows the preprocessing.
def network(input_dim: int, plan: Plan, spec: TabularSpec) -> keras.Model:
    x = inputs = keras.Input(shape=(input_dim,), name="features")
    for units in spec.hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        if spec.batch_norm:
            x = keras.layers.BatchNormalization()(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, seed=spec.seed)(x)
    if plan.task == "classification":
        outputs = keras.layers.Dense(len(plan.classes), activation="softmax", dtype="float32", name="probabilities")(x)
    else:
        outputs = keras.layers.Dense(1, dtype="float32", name="value")(x)
    return keras.Model(inputs, outputs, name="mlp")


def compile_network(model: keras.Model, plan: Plan, spec: TabularSpec) -> None:
    optimizer = keras.optimizers.Adam(learning_rate=spec.learning_rate)
    if plan.task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        loss, metrics = "mse", [keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(optimizer, loss=loss, metrics=metrics, steps_per_execution=LIGHT_STEPS_PER_EXECUTION)


ENCODED_BUDGET_BYTES = 512 * 2**20  # encoded training features up to this size are computed once and kept


def features(x: dict[str, Any], space: FeatureSpace) -> tf.Tensor:
    """The network's inputs -> its feature matrix: the FeatureSpace's encoding, then any text word weights."""
    encoded = space({name: x[name] for name in space.features})
    words = [x[name] for name in sorted(x) if name not in space.features]
    return tf.concat([encoded, *words], axis=-1) if words else encoded


def encode(inputs: dict[str, np.ndarray], space: FeatureSpace) -> np.ndarray:
    """The network's inputs -> its float32 feature matrix, in large batches."""
    batches = (
        tf.data.Dataset.from_tensor_slices(inputs)
        .batch(8192)
        .map(tf.autograph.experimental.do_not_convert(lambda x: features(x, space)), num_parallel_calls=AUTOTUNE)
    )
    return np.concatenate([b.numpy() for b in batches], axis=0)


def dataset(
    inputs: dict[str, np.ndarray], y: np.ndarray, space: FeatureSpace, *, batch_size: int, shuffle_seed: int | None
) -> tf.data.Dataset:
    """Raw columns in, encoded feature batches out.

    The encoding is the same every epoch, so when the encoded rows fit in ENCODED_BUDGET_BYTES it runs once,
    here, and the epochs only shuffle and batch a matrix; otherwise it runs per batch in tf.data, off the model.
    Once is 1.5-2x faster per epoch on the CPU for a small MLP, whose steps are cheaper than the encoding.
    """
    width = feature_width(space, inputs)
    if len(y) * width * 4 <= ENCODED_BUDGET_BYTES:
        ds = tf.data.Dataset.from_tensor_slices((encode(inputs, space), y))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
        return prefetched(ds.batch(batch_size))
    ds = tf.data.Dataset.from_tensor_slices((inputs, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(min(len(y), 100_000), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(
        tf.autograph.experimental.do_not_convert(lambda x, t: (features(x, space), t)), num_parallel_calls=AUTOTUNE
    )
    if shuffle_seed is None:  # the same batches every epoch (validation): encode them once, on the first pass
        ds = ds.cache()
    return prefetched(ds)


def feature_width(space: FeatureSpace, inputs: dict[str, Any]) -> int:
    """How many numbers the network reads per row."""
    words = sum(int(inputs[name].shape[-1]) for name in inputs if name not in space.features)
    return int(space.get_encoded_features().shape[-1]) + words


def inference_model(space: FeatureSpace, net: keras.Model, plan: Plan) -> keras.Model:
    """The network's inputs (`model_inputs`) in, its output out: what the export wraps."""
    inputs = dict(space.get_inputs())
    encoded = space.get_encoded_features()
    words = {words_input(c): keras.Input(shape=(text_width(v),), name=words_input(c)) for c, v in plan.texts.items()}
    if words:
        encoded = keras.layers.Concatenate()([encoded, *words.values()])
    return keras.Model(inputs | words, net(encoded), name="modeldeck")


# 6. Export in TensorFlow Serving's layout, with named outputs and raw-column inputs.
def export(model: keras.Model, plan: Plan, path: Path) -> None:
    module = plan.derived()

    @tf.function(input_signature=[signature(plan)], autograph=False)
    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = tf.cast(model(model_inputs(inputs, plan, module), training=False), tf.float32)
        if plan.task == "classification":
            classes = tf.constant(plan.classes)
            n = tf.shape(out)[0]
            return {
                "probabilities": out,
                "label": tf.gather(classes, tf.argmax(out, axis=1)),
                "classes": tf.tile(tf.expand_dims(classes, 0), [n, 1]),
            }
        s = plan.target_scale
        z = out[:, 0] * s["std"] + s["mean"]
        return {"value": tf.math.expm1(z) if s["log"] else z}

    write_export(path, {"serving_default": serve}, model, module)  # the feature space's and words' tables


def score_export(
    path: Path, inputs: dict[str, np.ndarray], plan: Plan, *, rows: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metrics of an exported table model on the test rows (`rows` is train, validation, test), as served."""
    train_rows, val_rows, test_rows = rows
    outputs = call_batched(tf.saved_model.load(str(path)).signatures["serving_default"], 8192, **inputs)
    if plan.task == "classification":
        y = test_rows[plan.target].astype(str).tolist()
        scores, details = metrics.classification(y, outputs["probabilities"], plan.classes)
    else:
        scores, details = metrics.regression(test_rows[plan.target].to_numpy(), outputs["value"])
    details["rows"] = {"train": len(train_rows), "validation": len(val_rows), "test": len(test_rows)}
    if ROW in test_rows.columns:  # the engine named the rows: keep each test row's prediction for the gallery
        details["test_predictions"] = test_predictions(test_rows, outputs, plan)
    details["features"] = {
        "numeric": plan.numeric,
        "categorical": plan.categorical,
        "hashed": plan.hashed,
        "date": list(plan.dates),
        "text": list(plan.texts),
    }
    return scores, details


def test_predictions(rows: pd.DataFrame, outputs: dict[str, np.ndarray], plan: Plan) -> dict[str, np.ndarray]:
    """Each test row's position in the version, its true answer and the export's: label and confidence, or value."""
    if plan.task == "classification":
        return classified(rows[ROW], rows[plan.target], outputs["probabilities"], plan.classes)
    return {
        "row": rows[ROW].to_numpy("int64"),
        "actual": rows[plan.target].astype("float64").to_numpy(),
        "predicted": np.asarray(outputs["value"], dtype="float64").reshape(-1),
    }


def validation_loss(path: Path, inputs: dict[str, np.ndarray], plan: Plan, rows: pd.DataFrame) -> float:
    """An export's loss on the validation rows, in the target's own units: log loss, or RMSE for regression."""
    scores, _ = score_export(path, inputs, plan, rows=(rows, rows, rows))
    return float(scores["log_loss"] if plan.task == "classification" else scores["rmse"])


# 7. The family's entry point for the engine (models/task.py).
def prepare(data: TaskData, *, spec: TabularSpec, batch_size: int) -> Prepared | Choice:
    """Split, plan and adapt on the training rows; pipelines, network, export and evaluation for the engine.

    `architecture=gbt` trains gradient-boosted trees instead (models/trees.py), on the same split and plan;
    `architecture=auto` offers the trees, this network and a linear model (no hidden layer) as candidates, and
    the average of the two best.

    `text_encoding=auto` (a table with a free-text column, the pretrained model installed) adds the chosen
    family reading its texts by meaning as a candidate: the trees for `architecture=auto`. Otherwise it reads
    them by their words.
    """
    metric = "rmse" if data.task == "regression" else "log_loss"
    if spec.text_encoding == "auto":
        words = replace(spec, text_encoding="words")
        if not (pretrained_installed() and any(c["kind"] == "text" for c in data.columns)):
            return prepare(data, spec=words, batch_size=batch_size)
        family = "gbt" if spec.architecture == "auto" else spec.architecture
        by_meaning = prepare(
            data, spec=replace(spec, architecture=family, text_encoding="meaning"), batch_size=batch_size
        )
        assert isinstance(by_meaning, Prepared), "one family reads by meaning"
        by_words = prepare(data, spec=words, batch_size=batch_size)
        offered = by_words.candidates if isinstance(by_words, Choice) else {family: by_words}
        return Choice(offered | {f"{family}-meaning": by_meaning}, metric, ensemble=spec.architecture == "auto")
    if spec.architecture == "auto":
        from models import trees

        linear = replace(spec, architecture="mlp", hidden_units=(), dropout=0.0, batch_norm=False)
        candidates = {
            "gbt": trees.prepare(data, spec=replace(spec, architecture="gbt")),
            "mlp": prepare(data, spec=replace(spec, architecture="mlp"), batch_size=batch_size),
            "linear": prepare(data, spec=linear, batch_size=batch_size),
        }
        return Choice({name: c for name, c in candidates.items() if isinstance(c, Prepared)}, metric, ensemble=True)
    if spec.architecture == "gbt":
        from models import trees

        return trees.prepare(data, spec=spec)
    target = data.roles["target"]
    assert target is not None
    task = "regression" if data.task == "regression" else "classification"
    train_rows, val_rows, test_rows = split(data.frame, target=target, task=task, spec=spec)
    plan = make_plan(train_rows, columns=data.columns, target=target, task=task, spec=spec)
    module = plan.derived()

    def network_inputs(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        return _numpy(model_inputs(raw_inputs(rows, plan), plan, module))

    train_x = network_inputs(train_rows)
    space = feature_space(plan, spec, train_x)  # adapted now, before any mixed precision policy: it stays float32
    train_ds = dataset(
        train_x, encode_target(train_rows[target], plan), space, batch_size=batch_size, shuffle_seed=spec.seed
    )
    val_ds = dataset(
        network_inputs(val_rows),
        encode_target(val_rows[target], plan),
        space,
        batch_size=max(batch_size, 1024),
        shuffle_seed=None,
    )
    width = feature_width(space, train_x)

    def build() -> keras.Model:
        net = network(width, plan, spec)
        compile_network(net, plan, spec)
        return net

    def export_model(net: keras.Model, path: Path) -> None:
        export(inference_model(space, net, plan), plan, path)

    def evaluate(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        return score_export(path, raw_inputs(test_rows, plan), plan, rows=(train_rows, val_rows, test_rows))

    def validate(path: Path) -> float:
        return validation_loss(path, raw_inputs(val_rows, plan), plan, val_rows)

    return Prepared(
        plan=plan.to_dict(),
        train=train_ds,
        validation=val_ds,
        train_examples=len(train_rows),
        build=build,
        export=export_model,
        evaluate=evaluate,
        validate=validate,
    )
