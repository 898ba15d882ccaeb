"""The image-classification family: prepare → build → fit → export → plain TensorFlow → evaluate, on small
generated pictures (horizontal bars, vertical bars, a filled circle) at random places on noise."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from models import vision
from models.spec import ImageSpec
from models.task import TaskData
from tests.factories import pipeline_slowdowns

KINDS = ("circle", "horizontal", "vertical")
SMALL = ImageSpec(image_size=16, filters=(8, 16), augment=False, learning_rate=1e-2, dropout=0.1)


# -- generated images --------------------------------------------------------------------------------------
def shape_image(kind: str, rng: np.random.Generator, *, size: int, colour: bool) -> Image.Image:
    """Three bars across or down, or a filled circle, somewhere on dark noise."""
    noise = rng.integers(0, 60, (size, size, 3) if colour else (size, size), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB" if colour else "L")
    draw = ImageDraw.Draw(image)
    ink: Any = tuple(int(v) for v in rng.integers(150, 256, 3)) if colour else int(rng.integers(180, 256))
    x0, y0 = (int(v) for v in rng.integers(0, size // 3, 2))
    span, thick = size // 2 + int(rng.integers(0, size // 6)), max(2, size // 8)
    if kind == "circle":
        draw.ellipse((x0, y0, x0 + span, y0 + span), fill=ink)
    for k in range(3 if kind != "circle" else 0):
        at = k * 2 * thick
        if kind == "horizontal":
            draw.rectangle((x0, y0 + at, x0 + span, y0 + at + thick - 1), fill=ink)
        else:
            draw.rectangle((x0 + at, y0, x0 + at + thick - 1, y0 + span), fill=ink)
    return image


def encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def shapes_frame(per_class: int = 30, *, colour: bool = False, seed: int = 0) -> pd.DataFrame:
    """`per_class` images of each kind, 20-40 pixels square, alternately PNG and JPEG, in the ingest's columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(per_class * len(KINDS)):
        size = int(rng.integers(20, 41))
        image = shape_image(KINDS[i % 3], rng, size=size, colour=colour)
        data = encoded(image, ("PNG", "JPEG")[(i // 3) % 2])
        rows.append(
            {"image": data, "label": KINDS[i % 3], "split": None, "mode": image.mode, "width": size, "height": size}
        )
    return pd.DataFrame(rows).astype({"label": "string", "split": "string", "mode": "string"})


def task(frame: pd.DataFrame) -> TaskData:
    return TaskData(frame=frame, roles={"target": "label"})


def prepare(frame: pd.DataFrame, spec: ImageSpec = SMALL) -> Any:
    keras.utils.set_random_seed(spec.seed)
    return vision.prepare(task(frame), spec=spec, batch_size=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A cnn trained for a few epochs on 40 grey images per class, and its export."""
    frame = shapes_frame(40)
    p = prepare(frame)
    model = p.build()
    model.fit(p.train, validation_data=p.validation, epochs=8, verbose=0, shuffle=False)
    path = tmp_path_factory.mktemp("vision") / "export"
    p.export(model, path)
    return {"frame": frame, "prepared": p, "model": model, "path": path}


def serve(path: Path, images: list[bytes]) -> dict[str, np.ndarray]:
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(image=tf.constant(images)).items()}


# -- preparing ---------------------------------------------------------------------------------------------
def test_plan_names_the_classes_channels_size_architecture_and_rows() -> None:
    p = prepare(shapes_frame(30))
    assert p.plan == {
        "task": "image-classification",
        "target": "label",
        "classes": ["circle", "horizontal", "vertical"],
        "channels": 1,
        "image_size": 16,
        "architecture": "cnn",
        "split": "random",
        "rows": {"train": 62, "validation": 14, "test": 14},
        "dropped": {"unlabeled": 0, "undecodable": 0, "unknown_class": 0},
    }


def test_train_pipeline_yields_fixed_size_float_batches_of_every_training_image() -> None:
    p = prepare(shapes_frame(30))
    batches = list(p.train)
    assert [tuple(x.shape[1:]) for x, _ in batches[:1]] == [(16, 16, 1)]
    assert (batches[0][0].dtype, sum(len(y) for _, y in batches), p.train_examples) == (tf.float32, 62, 62)


def test_unlabeled_rows_are_dropped() -> None:
    frame = shapes_frame(30)
    frame.loc[[0, 1, 2, 3, 4, 5], "label"] = pd.NA
    p = prepare(frame)
    assert (sum(p.plan["rows"].values()), p.plan["dropped"]["unlabeled"]) == (84, 6)


def test_rows_pillow_could_not_read_are_dropped() -> None:
    frame = shapes_frame(30)
    frame.loc[[7, 8], "mode"] = pd.NA
    p = prepare(frame)
    assert (sum(p.plan["rows"].values()), p.plan["dropped"]["undecodable"]) == (88, 2)


def test_split_column_is_honoured() -> None:
    frame = shapes_frame(30)
    frame["split"] = ["train"] * 60 + ["val"] * 15 + ["test"] * 15
    p = prepare(frame)
    labels = np.concatenate([y.numpy() for _, y in p.validation]).tolist()
    assert (p.plan["split"], p.plan["rows"]) == ("folders", {"train": 60, "validation": 15, "test": 15})
    assert labels == [0, 1, 2] * 5  # rows 60-74, in order: circle, horizontal, vertical, …


def test_missing_validation_folder_is_cut_from_train_stratified() -> None:
    frame = shapes_frame(30)
    frame["split"] = ["train"] * 75 + ["test"] * 15
    p = prepare(frame)
    labels = np.concatenate([y.numpy() for _, y in p.validation])
    assert (p.plan["rows"], np.bincount(labels).tolist()) == ({"train": 63, "validation": 12, "test": 15}, [4, 4, 4])


def test_random_split_is_the_same_for_the_same_seed() -> None:
    first, second = prepare(shapes_frame(30)), prepare(shapes_frame(30))
    labels = [np.concatenate([y.numpy() for _, y in p.validation]).tolist() for p in (first, second)]
    assert labels[0] == labels[1]


def test_channels_auto_picks_one_for_grey_images() -> None:
    assert prepare(shapes_frame(10)).plan["channels"] == 1


def test_channels_auto_picks_three_for_colour_images() -> None:
    assert prepare(shapes_frame(10, colour=True)).plan["channels"] == 3


def test_channels_grayscale_forces_one_for_colour_images() -> None:
    spec = ImageSpec(image_size=16, filters=(8,), channels="grayscale")
    assert prepare(shapes_frame(10, colour=True), spec).plan["channels"] == 1


def test_decode_image_gives_the_pixels_of_grey_png_gif_and_bmp() -> None:
    image = shape_image("circle", np.random.default_rng(1), size=24, colour=False)
    decoded = [vision.decode_image(encoded(image, fmt), channels=1, size=24).numpy() for fmt in ("PNG", "GIF", "BMP")]
    assert [d[:, :, 0].tolist() for d in decoded] == [np.asarray(image).tolist()] * 3


def test_decode_image_gives_the_pixels_of_lossless_colour_webp() -> None:
    image = shape_image("vertical", np.random.default_rng(3), size=24, colour=True)
    data = io.BytesIO()
    image.save(data, "WEBP", lossless=True)
    assert vision.decode_image(data.getvalue(), channels=3, size=24).numpy().tolist() == np.asarray(image).tolist()


def test_held_out_images_of_a_class_missing_from_train_are_left_out_of_validation() -> None:
    frame = shapes_frame(30)
    frame["split"] = ["train"] * 60 + ["val"] * 15 + ["test"] * 15
    frame.loc[[60, 61], "label"] = "triangle"
    p = prepare(frame)
    assert (p.plan["classes"], p.plan["rows"]["validation"], p.plan["dropped"]["unknown_class"]) == (
        ["circle", "horizontal", "vertical"],
        13,
        2,
    )


def test_palette_bmp_raises_with_conversion_advice() -> None:
    frame = shapes_frame(10, colour=True)
    image = shape_image("circle", np.random.default_rng(2), size=24, colour=True).convert("P")
    frame.loc[0, ["image", "mode"]] = [encoded(image, "BMP"), "P"]
    with pytest.raises(ValueError, match=r"1 images are in a format TensorFlow cannot decode .*row 0\. Convert them"):
        prepare(frame)


def test_a_single_class_raises() -> None:
    frame = shapes_frame(10).assign(label="circle")
    with pytest.raises(ValueError, match="needs at least two classes; found only 'circle'"):
        prepare(frame)


def test_a_class_with_one_image_raises() -> None:
    frame = shapes_frame(10)
    frame.loc[0, "label"] = "triangle"
    with pytest.raises(ValueError, match="1 classes have fewer than 2 images: 'triangle'"):
        prepare(frame)


# -- the network ---------------------------------------------------------------------------------------------
def test_augmentation_changes_images_only_while_training() -> None:
    spec = ImageSpec(image_size=16, filters=(8,), augment=True)
    model = vision.network(classes=3, channels=1, spec=spec)
    augment = model.get_layer("augment")
    x = tf.random.stateless_uniform((4, 16, 16, 1), seed=(1, 2))
    assert (np.array_equal(augment(x, training=False), x), np.array_equal(augment(x, training=True), x)) == (
        True,
        False,
    )


def test_resnet_trains_an_epoch_and_its_export_serves(tmp_path: Path) -> None:
    frame = shapes_frame(10, colour=True)
    p = prepare(frame, ImageSpec(architecture="resnet", image_size=16, filters=(8, 16), augment=False))
    model = p.build()
    history = model.fit(p.train, validation_data=p.validation, epochs=1, verbose=0, shuffle=False)
    p.export(model, tmp_path / "export")
    out = serve(tmp_path / "export", frame["image"].tolist()[:3])
    assert (sorted(history.history), out["probabilities"].shape) == (
        ["accuracy", "loss", "val_accuracy", "val_loss"],
        (3, 3),
    )


def test_mixed_precision_build_trains_a_step() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        p = prepare(shapes_frame(10), ImageSpec(image_size=16, filters=(8,), augment=True))
        model = p.build()
        history = model.fit(p.train, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
        x = next(iter(p.validation))[0]
        assert (model.get_layer("conv1").compute_dtype, model(x).dtype) == ("float16", "float32")
        assert np.isfinite(history.history["loss"][0])
    finally:
        keras.mixed_precision.set_global_policy("float32")


# -- training, export and evaluation ----------------------------------------------------------------------------
def test_cnn_learns_the_easy_set(trained: dict[str, Any]) -> None:
    scores, _ = trained["prepared"].evaluate(trained["path"])
    assert scores["accuracy"] > 0.8


def test_export_signature_takes_encoded_bytes_and_names_its_outputs(trained: dict[str, Any]) -> None:
    signature = tf.saved_model.load(str(trained["path"])).signatures["serving_default"]
    outputs = {k: (v.dtype, v.shape.as_list()) for k, v in signature.structured_outputs.items()}
    assert signature.structured_input_signature[1] == {"image": tf.TensorSpec([None], tf.string, name="image")}
    assert outputs == {
        "probabilities": (tf.float32, [None, 3]),
        "label": (tf.string, [None]),
        "classes": (tf.string, [None, 3]),
    }


def test_export_classifies_raw_png_and_jpeg_bytes(trained: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    pictures = [shape_image(kind, rng, size=32, colour=False) for kind in ("circle", "horizontal", "vertical")]
    images = [encoded(pic, fmt) for fmt in ("PNG", "JPEG") for pic in pictures]
    out = serve(trained["path"], images)
    assert out["label"].astype(str).tolist() == ["circle", "horizontal", "vertical"] * 2
    assert out["classes"].astype(str).tolist() == [["circle", "horizontal", "vertical"]] * 6


def test_export_decodes_exactly_as_training_did(tmp_path: Path) -> None:
    frame = shapes_frame(30, colour=True)
    frame["split"] = ["train"] * 60 + ["val"] * 15 + ["test"] * 15  # validation in frame order
    p = prepare(frame)
    model = p.build()
    p.export(model, tmp_path / "export")
    expected = model.predict(p.validation, verbose=0)
    served = serve(tmp_path / "export", frame["image"].tolist()[60:75])["probabilities"]
    np.testing.assert_allclose(served, expected, atol=1e-6)


def test_evaluate_reports_rows_and_the_most_confident_mistakes_first(tmp_path: Path) -> None:
    frame = shapes_frame(30)
    p = prepare(frame)
    p.export(p.build(), tmp_path / "export")  # untrained: plenty of mistakes
    scores, details = p.evaluate(tmp_path / "export")
    mistakes = details["mistakes"]
    confidences = [m["confidence"] for m in mistakes]
    assert (details["rows"], scores["test_rows"]) == ({"train": 62, "validation": 14, "test": 14}, 14)
    assert confidences == sorted(confidences, reverse=True) and 0 < len(mistakes) <= 14
    assert all(frame["label"][m["index"]] == m["label"] != m["predicted"] for m in mistakes)
    assert set(details) >= {"classes", "confusion_matrix", "roc", "baseline", "rows", "mistakes", "test_predictions"}
    kept = details["test_predictions"]  # each test image's position, label and prediction, for the gallery
    assert (len(kept["row"]), kept["actual"].tolist()) == (14, frame["label"].iloc[kept["row"]].tolist())
    assert {(m["index"], m["predicted"]) for m in mistakes} <= set(zip(kept["row"], kept["predicted"], strict=True))


def test_the_pipelines_keep_their_prefetch_under_op_determinism() -> None:
    p = prepare(shapes_frame(30))
    assert (pipeline_slowdowns(p.train), pipeline_slowdowns(p.validation)) == ([], [])
