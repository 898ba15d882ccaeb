"""Image classification: a small CNN or ResNet over encoded image files, trained from scratch.

The pieces, leaves first: the one decode function (file bytes to a fixed-size pixel array) that both the
training pipeline and the exported model use, the format check, the split, the choice of channels, the
layers inside the model (resizing, rescaling, augmentation), the two networks, the tf.data pipelines,
the export whose `serving_default` takes encoded image bytes, and the evaluation of that export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from models import metrics
from models.spec import ImageSpec
from models.splits import cut_frame
from models.task import Prepared, TaskData, call_batched, classified, prefetched, write_export

AUTOTUNE = tf.data.AUTOTUNE
IMAGE = "image"  # the column of encoded file bytes
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})  # Pillow's grey modes
MIN_PER_CLASS = 2  # fewer images than this in a class cannot be split into train and held-out parts
EVAL_BATCH = 256  # images per call of the exported signature while evaluating
MAX_MISTAKES = 24  # wrongly classified held-out images listed for the dashboard's thumbnails
NAME_COLUMNS = ("original", "file", "name")  # columns that name an image in a message, first present wins
BN_MOMENTUM = 0.9  # Keras' 0.99 needs hundreds of steps before inference statistics settle; small sets have few


# -- 1. Decoding: the one function that turns file bytes into pixels, in training and in serving ----------
def decode_image(encoded: tf.Tensor, *, channels: int, size: int) -> tf.Tensor:
    """One encoded file (PNG, JPEG, GIF's first frame, BMP, WebP) as uint8 pixels [size, size, channels].

    Args:
        encoded: a scalar tf.string, the file's bytes.
        channels: 1 (grey) or 3 (RGB).
        size: the side of the square the image is resized to (stretched, antialiased).
    """
    # 1. Always decode to RGB: TensorFlow's GIF, BMP and WebP decoders refuse channels=1.
    pixels = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    if channels == 1:
        pixels = tf.image.rgb_to_grayscale(pixels)  # a grey image round-trips unchanged
    # 2. One size for every image, so that they can be batched (and cached small).
    resized = tf.image.resize(pixels, [size, size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


# -- 2. Which files TensorFlow can decode -------------------------------------------------------------------
def file_format(data: bytes) -> str:
    """The format from the file's first bytes: PNG, JPEG, GIF, BMP, WEBP, or "unknown"."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    return "unknown"


def _tf_decodes(data: bytes, mode: Any) -> bool:
    """Whether tf.io.decode_image reads this file correctly: it ignores a BMP's palette and rejects 1-, 4- and
    16-bit BMPs, and knows no other formats than the five above."""
    kind = file_format(data)
    if kind == "BMP":
        bits = int.from_bytes(data[28:30], "little") if len(data) >= 30 else 0
        return bits in (24, 32) or (bits == 8 and mode == "L")  # an 8-bit BMP is right only with a grey palette
    return kind != "unknown"


def _names(frame: pd.DataFrame, rows: pd.Series) -> str:
    """A few of the images a message is about, by name where the frame has one, else by row."""
    column = next((c for c in NAME_COLUMNS if c in frame.columns), None)
    picked = frame.index[rows.to_numpy()][:3]
    names = [repr(str(frame.at[i, column])) if column else f"row {i}" for i in picked]
    return ", ".join(names) + (", …" if int(rows.sum()) > 3 else "")


def check_formats(frame: pd.DataFrame) -> None:
    """Refuse a set with images that TensorFlow cannot decode, saying which and how to convert them.

    Raises:
        ValueError: some images are palette / 1-bit BMPs or of an unknown format.
    """
    modes = frame["mode"] if "mode" in frame.columns else pd.Series(None, index=frame.index)
    ok = pd.Series([_tf_decodes(d, m) for d, m in zip(frame[IMAGE], modes, strict=True)], index=frame.index)
    if not ok.all():
        raise ValueError(
            f"{int((~ok).sum()):,} images are in a format TensorFlow cannot decode (palette or 1-bit BMP, or not an "
            f"image): {_names(frame, ~ok)}. Convert them to PNG (with Pillow: "
            "Image.open(f).convert('RGB').save(f_png)) and upload the set again."
        )


# -- 3. The split: train / validation / test ----------------------------------------------------------------
def split(frame: pd.DataFrame, *, spec: ImageSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows of the labeled images.

    Where the upload had split folders (`split` is filled) they are kept, and images without a split go to
    train; a missing validation or test part is cut from train. Otherwise all three parts are cut at random,
    stratified by label, with `spec.seed`.
    """
    where = frame["split"].astype("string").fillna("") if "split" in frame.columns else pd.Series("", frame.index)
    pool, val, test = frame[where.isin(["", "train"])], frame[where == "val"], frame[where == "test"]
    cut_test = test.empty
    if cut_test:
        pool, test = cut_frame(pool, spec.test_split, spec.seed, by=pool["label"])
    if val.empty:
        share = spec.validation_split / (1 - spec.test_split) if cut_test else spec.validation_split
        pool, val = cut_frame(pool, share, spec.seed + 1, by=pool["label"])
    return pool, val, test


# -- 4. Grey or colour ----------------------------------------------------------------------------------------
def choose_channels(train: pd.DataFrame, spec: ImageSpec) -> int:
    """1 when forced grey, or with "auto" when every training image is grey (by its Pillow mode); else 3."""
    if spec.channels != "auto":
        return 1 if spec.channels == "grayscale" else 3
    if "mode" not in train.columns or train["mode"].isna().any():
        return 3  # without modes, colour is the safe guess: grey images decode to three equal channels
    return 1 if train["mode"].astype(str).isin(GREY_MODES).all() else 3


# -- 5. Layers inside the model -------------------------------------------------------------------------------
def augmentation(spec: ImageSpec) -> keras.Sequential:
    """Small random shifts, rotations and zooms, active only while training. No flips: they turn digits,
    letters and many objects into something else."""
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(0.1, 0.1, seed=spec.seed),
            keras.layers.RandomRotation(0.05, seed=spec.seed + 1),  # ±18°
            keras.layers.RandomZoom(0.1, seed=spec.seed + 2),
        ],
        name="augment",
    )


def conv_block(x: Any, filters: int, index: int) -> Any:
    """Conv 3x3 → batch norm → ReLU → max pool: one block of the plain CNN, halving the resolution."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{index}")(x)
    x = keras.layers.ReLU(name=f"relu{index}")(x)
    return keras.layers.MaxPooling2D(name=f"pool{index}")(x)


def residual_block(x: Any, filters: int, index: int, *, stride: int) -> Any:
    """Two 3x3 convolutions plus the input: a projection (1x1 conv) shortcut where the shape changes."""
    name = f"block{index}"
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


# -- 6. The network ------------------------------------------------------------------------------------------
def network(*, classes: int, channels: int, spec: ImageSpec) -> keras.Model:
    """Pixels 0-255 of any size in, class probabilities out: resize, rescale, augment, then cnn or resnet."""
    x = inputs = keras.Input(shape=(None, None, channels), dtype="float32", name=IMAGE)
    # 1. Preprocessing in the model: a no-op on images decoded at the right size, a resize on any other.
    x = keras.layers.Resizing(spec.image_size, spec.image_size, name="resize")(x)
    x = keras.layers.Rescaling(1 / 255, name="rescale")(x)
    if spec.augment:
        x = augmentation(spec)(x)
    # 2. Features: conv blocks that halve the resolution, or residual blocks that downsample between them.
    if spec.architecture == "resnet":
        x = keras.layers.Conv2D(spec.filters[0], 3, padding="same", use_bias=False, name="stem")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
        x = keras.layers.ReLU(name="stem_relu")(x)
        for i, filters in enumerate(spec.filters):
            x = residual_block(x, filters, i + 1, stride=1 if i == 0 else 2)
    else:
        for i, filters in enumerate(spec.filters):
            x = conv_block(x, filters, i + 1)
    # 3. Head: average over positions, dropout, softmax in float32 (mixed precision keeps it exact).
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout, seed=spec.seed, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=spec.architecture)


def compile_network(model: keras.Model, spec: ImageSpec) -> None:
    optimizer = keras.optimizers.Adam(learning_rate=spec.learning_rate)
    model.compile(optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


# -- 7. tf.data pipelines ------------------------------------------------------------------------------------
def _pixels(frame: pd.DataFrame, classes: list[str], *, channels: int, size: int) -> tf.data.Dataset:
    """(uint8 pixels, class index) per image, decoded once and cached: later epochs skip the decode."""
    index = {c: i for i, c in enumerate(classes)}
    images = np.array([bytes(b) for b in frame[IMAGE]], dtype=object)
    labels = frame["label"].map(index).to_numpy("int64")
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.map(lambda b, y: (decode_image(b, channels=channels, size=size), y), num_parallel_calls=AUTOTUNE)
    return ds.cache()


def _batched(ds: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=AUTOTUNE)
    return prefetched(ds)


# -- 8. Export: encoded bytes in, named outputs out ------------------------------------------------------------
def export(model: keras.Model, path: Path, *, classes: list[str], channels: int, size: int) -> None:
    """Write a SavedModel whose `serving_default` takes `image` (tf.string [None], the files' bytes, as TF
    Serving's REST API receives them via {"b64": ...}) and returns `probabilities` float32 [None, C],
    `label` string [None] and `classes` string [None, C]."""
    names = tf.constant(classes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE)], autograph=False)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.map_fn(
            lambda b: decode_image(b, channels=channels, size=size),
            image,
            fn_output_signature=tf.TensorSpec([size, size, channels], tf.uint8),
        )
        probabilities = tf.cast(model(tf.cast(pixels, tf.float32), training=False), tf.float32)
        return {
            "probabilities": probabilities,
            "label": tf.gather(names, tf.argmax(probabilities, axis=1)),
            "classes": tf.tile(tf.expand_dims(names, 0), [tf.shape(probabilities)[0], 1]),
        }

    write_export(path, {"serving_default": serve}, model)


# -- 9. Evaluation of the export on the held-out images ------------------------------------------------------
def evaluate(
    path: Path, test: pd.DataFrame, *, classes: list[str], rows: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of the exported model (loaded with plain TensorFlow) on `test`, its worst mistakes, and each test
    image's prediction (`test_predictions`: the engine keeps them beside the run for the gallery).

    `test` keeps a `_row` column: each image's position in the frame the engine passed in (its dataset version).
    """
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    images = [bytes(b) for b in test[IMAGE]]
    outputs = call_batched(serve, EVAL_BATCH, image=np.array(images, dtype=object))
    probabilities = outputs.get("probabilities", np.zeros((0, len(classes)), "float32"))
    truth = test["label"].astype(str).tolist()
    scores, details = metrics.classification(truth, probabilities, classes)
    # The mistakes the model was surest of first: the ones most worth a look (or a relabel).
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = [i for i, t in enumerate(truth) if t in classes and classes[predicted[i]] != t]
    wrong.sort(key=lambda i: -confidence[i])
    details["mistakes"] = [
        {
            "index": int(test["_row"].iloc[i]),
            "label": truth[i],
            "predicted": classes[predicted[i]],
            "confidence": float(confidence[i]),
        }
        for i in wrong[:MAX_MISTAKES]
    ]
    details["test_predictions"] = classified(test["_row"], truth, probabilities, classes)
    details["rows"] = dict(rows)
    return scores, details


# -- 10. The family's entry point ------------------------------------------------------------------------------
def prepare(data: TaskData, *, spec: ImageSpec, batch_size: int) -> Prepared:
    """Split the labeled images, pick grey or colour, and return cached tf.data pipelines and the closures that
    build, export and evaluate the model.

    Raises:
        ValueError: no image or label column, images TensorFlow cannot decode, fewer than two classes, or a
            class with fewer than two images; the message says how to fix it.
    """
    target = data.roles.get("target") or "label"
    frame = data.frame
    for column in (IMAGE, target):
        if column not in frame.columns:
            raise ValueError(
                f"Column '{column}' not found. Expected an image dataset with 'image' and 'label' columns. "
                "Upload a ZIP with one folder per class."
            )
    # 1. Keep labeled images with bytes; remember each one's row in the engine's frame for the mistakes list.
    frame = frame.reset_index(drop=True).assign(_row=np.arange(len(frame)))
    if target != "label":
        frame = frame.drop(columns=["label"], errors="ignore").rename(columns={target: "label"})
    labels = frame["label"].astype("string").str.strip()
    labeled = labels.notna() & (labels != "")
    readable = frame[IMAGE].notna() & (frame["mode"].notna() if "mode" in frame.columns else True)
    dropped = {"unlabeled": int((~labeled).sum()), "undecodable": int((labeled & ~readable).sum())}
    frame = frame[labeled & readable].assign(label=labels[labeled & readable].astype(str))
    check_formats(frame)
    counts = frame["label"].value_counts()
    if len(counts) < 2:
        found = f"only '{counts.index[0]}'" if len(counts) else "no labeled images"
        raise ValueError(
            f"Image classification needs at least two classes; found {found}. "
            "Upload a ZIP with one folder of images per class."
        )
    rare = counts[counts < MIN_PER_CLASS]
    if len(rare):
        listed = ", ".join(f"'{c}'" for c in rare.index[:5]) + (", …" if len(rare) > 5 else "")
        raise ValueError(
            f"{len(rare):,} classes have fewer than {MIN_PER_CLASS} images: {listed}. "
            "Add images to them (20 or more each is better) or remove their folders."
        )

    # 2. Split, and learn the classes and the channels from the training part only.
    train, val, test = split(frame, spec=spec)
    classes = sorted(train["label"].unique().tolist())
    if len(classes) < 2:
        raise ValueError(
            f"The training split has only the class '{classes[0]}'. Put images of every class in the train folder."
        )
    dropped["unknown_class"] = int((~val["label"].isin(classes)).sum())
    val = val[val["label"].isin(classes)]  # a class the model cannot output has no place in its loss
    channels = choose_channels(train, spec)
    size = spec.image_size

    # 3. Pipelines: decode and resize in parallel, cache, shuffle with the seed, batch, prefetch.
    train_ds = _pixels(train, classes, channels=channels, size=size)
    train_ds = train_ds.shuffle(len(train), seed=spec.seed, reshuffle_each_iteration=True)
    val_ds = _pixels(val, classes, channels=channels, size=size)

    def build() -> keras.Model:
        model = network(classes=len(classes), channels=channels, spec=spec)
        compile_network(model, spec)
        return model

    rows = {"train": len(train), "validation": len(val), "test": len(test)}
    plan = {
        "task": "image-classification",
        "target": target,
        "classes": classes,
        "channels": channels,
        "image_size": size,
        "architecture": spec.architecture,
        "split": "folders" if "split" in frame.columns and frame["split"].notna().any() else "random",
        "rows": rows,
        "dropped": dropped,
    }
    return Prepared(
        plan=plan,
        train=_batched(train_ds, batch_size),
        validation=_batched(val_ds, batch_size),
        train_examples=len(train),
        build=build,
        export=lambda model, path: export(model, path, classes=classes, channels=channels, size=size),
        evaluate=lambda path: evaluate(path, test, classes=classes, rows=rows),
    )
