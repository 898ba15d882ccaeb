"""Image data: reading ZIPs and tables of paths, the stored versions, the image checks with planted defects,
the samples, and the catalog entries of the checks."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from backend import i18n
from backend.data import images, samples
from backend.errors import BadInput
from backend.quality import images as image_checks
from backend.quality.common import CheckResult, Context

# -- building uploads ---------------------------------------------------------------------------------------


def picture(seed: int, size: int = 64, mode: str = "RGB") -> Image.Image:
    """A smooth, seeded colour picture: different seeds give clearly different pictures."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC).convert(mode)


def see_through(image: Image.Image) -> Image.Image:
    """The picture with partial transparency (an opaque alpha channel is dropped by some encoders)."""
    image = image.copy()
    image.putalpha(200)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def two_frame_gif() -> tuple[bytes, Image.Image]:
    """An animated GIF whose frames differ, and its first frame."""
    left = Image.fromarray(np.repeat(np.r_[np.zeros(20), np.full(20, 255)][None, :], 40, axis=0).astype(np.uint8))
    right = left.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return encode(left, "GIF", save_all=True, append_images=[right]), left


def planted_files() -> dict[str, bytes]:
    """Two classes in a wrapper folder, every format, and one of each defect."""
    files = {f"photos/cats/c{i:02d}.png": encode(picture(i)) for i in range(12)}
    files |= {f"photos/dogs/d{i:02d}.png": encode(picture(100 + i)) for i in range(12)}
    files |= {
        "photos/cats/c_jpeg.jpg": encode(picture(20), "JPEG", quality=95),
        "photos/cats/c_webp.webp": encode(see_through(picture(21)), "WEBP", lossless=True),
        "photos/dogs/d_bmp.bmp": encode(picture(22), "BMP"),
        "photos/dogs/d_gif.gif": two_frame_gif()[0],
        # The defects.
        "photos/dogs/broken.png": b"\x89PNG\r\n\x1a\n" + b"not really a picture",
        "photos/cats/tiny.png": encode(picture(23, size=4)),
        "photos/dogs/d00_copy.png": encode(picture(100)),
        "photos/cats/c01_again.jpg": encode(picture(1), "JPEG", quality=90),
        "photos/dogs/c02_in_dogs.png": encode(picture(2)),
        "photos/loose.png": encode(picture(30)),
        "photos/cats/notes.txt": b"taken in spring",
    }
    return files


@pytest.fixture(scope="module")
def planted() -> images.ImageSet:
    return images.read_image_zip(make_zip(planted_files()), "photos.zip")


def clean_zip(per_class: int = 16) -> bytes:
    files = {f"cats/{i}.png": encode(picture(i)) for i in range(per_class)}
    return make_zip(files | {f"dogs/{i}.png": encode(picture(500 + i)) for i in range(per_class)})


def run(index: pd.DataFrame) -> dict[str, CheckResult]:
    context = Context(index, "label", "image-classification")
    return {c.id: c for c in (check(context) for check in image_checks.CHECKS)}


def row(index: pd.DataFrame, original: str) -> int:
    return int(np.flatnonzero(index["original"] == original)[0])


# -- reading ------------------------------------------------------------------------------------------------
def test_every_format_is_decoded_with_its_class_folder_as_label(planted: images.ImageSet) -> None:
    index = planted.index.set_index("original")
    found = index.loc[
        ["photos/cats/c00.png", "photos/cats/c_jpeg.jpg", "photos/cats/c_webp.webp", "photos/dogs/d_bmp.bmp"],
        ["label", "format", "mode", "width", "height", "decodable"],
    ]
    assert found.to_dict("records") == [
        {"label": "cats", "format": "PNG", "mode": "RGB", "width": 64, "height": 64, "decodable": True},
        {"label": "cats", "format": "JPEG", "mode": "RGB", "width": 64, "height": 64, "decodable": True},
        {"label": "cats", "format": "WEBP", "mode": "RGBA", "width": 64, "height": 64, "decodable": True},
        {"label": "dogs", "format": "BMP", "mode": "RGB", "width": 64, "height": 64, "decodable": True},
    ]


def test_a_gif_is_read_from_its_first_frame(planted: images.ImageSet) -> None:
    gif = planted.index.set_index("original").loc["photos/dogs/d_gif.gif"]
    assert (gif["format"], gif["phash"]) == ("GIF", images.describe(encode(two_frame_gif()[1]))["phash"])


def test_a_wrapper_folder_is_skipped_and_noted(planted: images.ImageSet) -> None:
    assert sorted(planted.index["label"].dropna().unique()) == ["cats", "dogs"]
    assert "Read the class folders inside 'photos/'" in [n.text() for n in planted.notes]


def test_files_that_are_not_images_are_skipped_and_noted(planted: images.ImageSet) -> None:
    assert "photos/cats/notes.txt" not in set(planted.index["original"])
    assert "Skipped 1 non-image file: 'photos/cats/notes.txt'" in [n.text() for n in planted.notes]


def test_images_outside_a_class_folder_have_no_label(planted: images.ImageSet) -> None:
    loose = planted.index.set_index("original").loc["photos/loose.png"]
    assert (pd.isna(loose["label"]), planted.data[loose["name"]]) == (True, planted_files()["photos/loose.png"])


def test_an_undecodable_file_is_kept_with_the_reason(planted: images.ImageSet) -> None:
    broken = planted.index.set_index("original").loc["photos/dogs/broken.png"]
    assert (broken["decodable"], broken["label"], pd.isna(broken["width"]), broken["error"]) == (
        False,
        "dogs",
        True,
        "damaged: Truncated File Read",
    )


def test_a_truncated_image_is_undecodable_although_its_header_is_fine() -> None:
    jpeg = encode(picture(1), "JPEG")
    described = images.describe(jpeg[: len(jpeg) // 2])
    assert (described["decodable"], re.sub(r"\(.*\)", "(…)", described["error"])) == (
        False,
        "damaged: image file is truncated (…)",
    )


def test_split_folders_give_each_image_its_split_and_class() -> None:
    zipped = make_zip({"train/cats/1.png": encode(picture(1)), "test/cats/1.png": encode(picture(2))})
    index = images.read_image_zip(zipped, "splits.zip").index
    assert index[["name", "label", "split"]].to_dict("records") == [
        {"name": "cats/test/1.png", "label": "cats", "split": "test"},
        {"name": "cats/train/1.png", "label": "cats", "split": "train"},
    ]


def test_a_path_outside_the_archive_folder_is_refused() -> None:
    with pytest.raises(BadInput, match="points outside its folder"):
        images.read_image_zip(make_zip({"../evil.png": encode(picture(1))}), "evil.zip")


def test_an_empty_zip_says_which_layout_is_expected() -> None:
    with pytest.raises(BadInput, match=r"'empty.zip' has no images \(it is empty\)\. .*one folder per class"):
        images.read_image_zip(make_zip({}), "empty.zip")


def test_a_table_of_paths_and_labels_reads_the_images_it_names() -> None:
    zipped = make_zip(planted_files())
    table = pd.DataFrame({"file": ["cats/c00.png", "photos/dogs/d00.png", "D01.PNG"], "species": ["cat", "dog", "dog"]})
    index = images.read_image_table(table, zipped, "photos.zip", label_column="species").index
    assert index[["original", "label"]].to_dict("records") == [
        {"original": "photos/cats/c00.png", "label": "cat"},
        {"original": "photos/dogs/d00.png", "label": "dog"},
        {"original": "photos/dogs/d01.png", "label": "dog"},
    ]


def test_the_path_and_label_columns_of_a_table_are_inferred() -> None:
    table = pd.DataFrame({"id": [7], "image": ["cats/c00.png"], "class": ["cat"]})
    index = images.read_image_table(table, make_zip(planted_files()), "photos.zip").index
    assert index[["original", "label"]].to_dict("records") == [{"original": "photos/cats/c00.png", "label": "cat"}]


def test_table_paths_missing_from_the_zip_are_listed() -> None:
    table = pd.DataFrame({"path": ["cats/c00.png", "cats/nope.png"], "label": ["cat", "cat"]})
    with pytest.raises(BadInput, match=r"1 of 2 image paths in 'path' are not in 'photos.zip': 'cats/nope.png'\."):
        images.read_image_table(table, make_zip(planted_files()), "photos.zip")


# -- storing ------------------------------------------------------------------------------------------------
def test_a_version_holds_the_original_bytes_under_its_content_hash(tmp_path: Path) -> None:
    files = {"cats/a.png": encode(picture(1)), "dogs/b.jpg": encode(picture(2), "JPEG")}
    digest, folder = images.write_image_version(tmp_path, images.read_image_zip(make_zip(files), "x.zip"))
    index = pd.read_parquet(folder / "index.parquet")
    assert (folder, list(index["file"])) == (
        tmp_path / digest,
        [f"{digest}/images/cats/a.png", f"{digest}/images/dogs/b.jpg"],
    )
    assert [(tmp_path / f).read_bytes() for f in index["file"]] == list(files.values())


def test_the_same_content_is_stored_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read = images.read_image_zip(clean_zip(2), "x.zip")
    first = images.write_image_version(tmp_path, read)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a stored version was written again")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail)
    assert images.write_image_version(tmp_path, images.read_image_zip(clean_zip(2), "again.zip")) == first


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail)
    with pytest.raises(OSError, match="No space left"):
        images.write_image_version(tmp_path, images.read_image_zip(clean_zip(2), "x.zip"))
    assert list(tmp_path.iterdir()) == []


def test_an_index_only_version_reuses_the_parents_files(tmp_path: Path) -> None:
    parent_hash, parent = images.write_image_version(tmp_path, images.read_image_zip(clean_zip(3), "x.zip"))
    index = pd.read_parquet(parent / "index.parquet")
    digest, folder = images.index_only_version(tmp_path, index.drop(index=[0]))
    assert (digest != parent_hash, sorted(p.name for p in folder.iterdir())) == (True, ["index.parquet"])
    assert pd.read_parquet(folder / "index.parquet")["file"].tolist() == index["file"].tolist()[1:]


def test_a_relabel_makes_a_new_version_and_dropping_nothing_does_not(tmp_path: Path) -> None:
    parent_hash, parent = images.write_image_version(tmp_path, images.read_image_zip(clean_zip(3), "x.zip"))
    index = pd.read_parquet(parent / "index.parquet")
    relabelled = index.assign(label=index["label"].mask(index.index == 0, "dogs"))
    assert images.index_only_version(tmp_path, index) == (parent_hash, parent)
    assert images.index_only_version(tmp_path, relabelled)[0] != parent_hash


def test_a_thumbnail_is_a_small_png_and_a_broken_file_gets_a_placeholder(tmp_path: Path) -> None:
    files = {"cats/a.png": encode(picture(1, size=300)), "cats/b.png": b"\x89PNG\r\n\x1a\nbroken"}
    _, folder = images.write_image_version(tmp_path, images.read_image_zip(make_zip(files), "x.zip"))
    index = pd.read_parquet(folder / "index.parquet")
    sizes = [Image.open(io.BytesIO(images.thumbnail(tmp_path, f, size=96))).size for f in index["file"]]
    assert sizes == [(96, 96), (96, 96)]


def test_loading_a_broken_stored_file_says_how_to_fix_it(tmp_path: Path) -> None:
    files = {"cats/b.png": b"\x89PNG\r\n\x1a\nbroken"}
    _, folder = images.write_image_version(tmp_path, images.read_image_zip(make_zip(files), "x.zip"))
    file = pd.read_parquet(folder / "index.parquet")["file"].iloc[0]
    with pytest.raises(BadInput, match="Drop it with the undecodable-images fix"):
        images.load_image(tmp_path, file)


# -- checks -------------------------------------------------------------------------------------------------
def test_every_planted_defect_fails_its_check(planted: images.ImageSet) -> None:
    failing = {i: (c.severity, c.key) for i, c in run(planted.index).items() if not c.passed}
    assert failing == {
        "undecodable_images": ("blocker", "check.undecodable_images.fail"),
        "unlabeled_images": ("warning", "check.unlabeled_images.fail"),
        "tiny_images": ("warning", "check.tiny_images.fail"),
        "duplicate_images": ("warning", "check.duplicate_images.fail"),
        "duplicates_across_classes": ("warning", "check.duplicates_across_classes.fail"),
    }


def test_undecodable_images_are_dropped_by_the_fix(planted: images.ImageSet) -> None:
    check = run(planted.index)["undecodable_images"]
    broken = row(planted.index, "photos/dogs/broken.png")
    assert (check.remedy.to_dict(), check.evidence["example_rows"]) == (
        {"action": "drop_rows", "params": {"rows": [broken]}},
        [broken],
    )


def test_a_tiny_image_among_larger_ones_is_dropped_by_the_fix(planted: images.ImageSet) -> None:
    check = run(planted.index)["tiny_images"]
    tiny = row(planted.index, "photos/cats/tiny.png")
    assert (check.remedy.params["rows"], check.evidence["sizes"]) == ([tiny], {tiny: "4×4"})


def test_exact_and_near_duplicates_are_dropped_keeping_the_first(planted: images.ImageSet) -> None:
    check = run(planted.index)["duplicate_images"]
    copies = [
        row(planted.index, name)
        for name in ("photos/cats/c01_again.jpg", "photos/dogs/c02_in_dogs.png", "photos/dogs/d00_copy.png")
    ]
    assert (check.params["exact"], check.params["near"]) == (2, 1)
    assert sorted(check.remedy.params["rows"]) == sorted(copies)


def test_near_duplicate_evidence_pairs_each_copy_with_its_original(planted: images.ImageSet) -> None:
    pairs = run(planted.index)["duplicate_images"].evidence["pairs"]
    near = [p["rows"] for p in pairs if not p["exact"]]
    assert near == [[row(planted.index, "photos/cats/c01.png"), row(planted.index, "photos/cats/c01_again.jpg")]]


def test_the_same_image_under_two_classes_is_sent_for_review(planted: images.ImageSet) -> None:
    check = run(planted.index)["duplicates_across_classes"]
    rows = [row(planted.index, "photos/cats/c02.png"), row(planted.index, "photos/dogs/c02_in_dogs.png")]
    assert (check.remedy.to_dict(), check.evidence["rows"], check.evidence["pairs"][0]["labels"]) == (
        {"action": "review_labels"},
        sorted(rows),
        ["cats", "dogs"],
    )


def test_images_without_a_label_are_sent_for_review(planted: images.ImageSet) -> None:
    check = run(planted.index)["unlabeled_images"]
    loose = row(planted.index, "photos/loose.png")
    assert (check.params["n"], check.evidence["rows"], check.remedy.to_dict()) == (
        1,
        [loose],
        {"action": "review_labels"},
    )


def test_mixed_modes_and_sizes_are_only_a_note(planted: images.ImageSet) -> None:
    check = run(planted.index)["mixed_modes_sizes"]
    assert (check.severity, check.passed, check.key, check.evidence["modes"]) == (
        "info",
        True,
        "check.mixed_modes_sizes.mixed",
        {"RGB": 31, "RGBA": 1, "P": 1},
    )


def test_the_stored_index_is_checked_as_the_upload_was(planted: images.ImageSet, tmp_path: Path) -> None:
    _, folder = images.write_image_version(tmp_path, planted)
    stored = run(pd.read_parquet(folder / "index.parquet"))
    assert {i: c.passed for i, c in stored.items()} == {i: c.passed for i, c in run(planted.index).items()}


def test_different_pictures_with_close_hashes_are_not_duplicates(planted: images.ImageSet) -> None:
    index = planted.index.copy()
    index.loc[row(index, "photos/cats/c05.png"), "phash"] = index.loc[row(index, "photos/cats/c04.png"), "phash"]
    pairs = run(index)["duplicate_images"].evidence["pairs"]
    assert [row(index, "photos/cats/c05.png") in p["rows"] for p in pairs] == [False] * len(pairs)


def test_a_clean_set_passes_every_check() -> None:
    checks = run(images.read_image_zip(clean_zip(), "clean.zip").index)
    assert [i for i, c in checks.items() if not c.passed] == []


def test_a_class_with_one_image_is_a_blocker() -> None:
    zipped = make_zip({f"cats/{i}.png": encode(picture(i)) for i in range(30)} | {"dogs/0.png": encode(picture(99))})
    index = images.read_image_zip(zipped, "x.zip").index
    check = run(index)["image_class_balance"]
    assert (check.severity, check.key, check.remedy.params["rows"]) == (
        "blocker",
        "check.image_class_balance.rare",
        [30],
    )


def test_a_class_under_a_tenth_of_the_largest_is_a_warning() -> None:
    files = {f"cats/{i:02d}.png": encode(picture(i)) for i in range(40)}
    index = images.read_image_zip(
        make_zip(files | {f"dogs/{i}.png": encode(picture(90 + i)) for i in range(3)}), "x.zip"
    )
    check = run(index.index)["image_class_balance"]
    assert (check.severity, check.passed, check.key, check.params["ratio"]) == (
        "warning",
        False,
        "check.image_class_balance.imbalanced",
        "7.5%",
    )


def test_a_test_copy_of_a_training_image_is_dropped_from_the_test_split() -> None:
    files = {f"train/cats/{i}.png": encode(picture(i)) for i in range(20)}
    files |= {f"test/cats/{i}.png": encode(picture(200 + i)) for i in range(4)} | {
        "test/cats/9.png": files["train/cats/3.png"]
    }
    index = images.read_image_zip(make_zip(files), "x.zip").index
    check = run(index)["duplicates_across_splits"]
    assert (check.passed, check.remedy.params["rows"]) == (
        False,
        [int(np.flatnonzero(index["name"] == "cats/test/9.png")[0])],
    )


def test_near_pairs_finds_what_comparing_every_pair_finds() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    flips = rng.integers(0, 64, (200, 4)).astype(np.uint64)
    nearby = values[:200] ^ np.bitwise_or.reduce(np.uint64(1) << flips, axis=1)  # 1 to 4 bits changed
    values = np.unique(np.r_[values, nearby])
    a, b, bits = image_checks.near_pairs(values)
    distance = np.bitwise_count(values[:, None] ^ values[None, :])
    ea, eb = np.nonzero(np.triu(distance <= image_checks.NEAR_BITS, k=1))
    assert (a.tolist(), b.tolist(), bits.tolist()) == (ea.tolist(), eb.tolist(), distance[ea, eb].tolist())


# -- samples ------------------------------------------------------------------------------------------------
def test_the_digits_sample_reads_and_passes_the_gate() -> None:
    read = images.read_image_zip(samples.sklearn_digits_zip(), "digits.zip")
    checks = run(read.index)
    assert (len(read.index), read.index["label"].nunique(), [i for i, c in checks.items() if not c.passed]) == (
        1797,
        10,
        [],
    )


@pytest.mark.skipif(
    not (samples.FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_the_fashion_sample_has_ten_classes_and_passes_the_gate() -> None:
    read = images.read_image_zip(samples.fashion_mnist_zip(limit_per_class=50), "fashion.zip")
    counts = read.index["label"].value_counts().to_dict()
    assert (counts, [i for i, c in run(read.index).items() if not c.passed]) == (
        dict.fromkeys(samples.FASHION_CLASSES, 50),
        [],
    )


def test_the_fashion_sample_without_the_package_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="Install Debian's dataset-fashion-mnist package"):
        samples.fashion_mnist_zip(root=tmp_path)


# -- catalog ------------------------------------------------------------------------------------------------
def test_every_check_has_a_title_why_and_fix() -> None:
    ids = [check.__name__ for check in image_checks.CHECKS]
    missing = [f"check.{i}.{part}" for i in ids for part in ("title", "why", "fix")]
    assert [k for k in missing if k not in i18n.EN] == []


def test_every_outcome_renders_with_its_params(planted: images.ImageSet) -> None:
    frames = [planted.index, images.read_image_zip(clean_zip(), "clean.zip").index]
    results = [c for frame in frames for c in run(frame).values()]
    rendered = [i18n.ZH[c.key].format(**c.params) for c in results]
    assert [t for t in rendered if re.search(r"\{\w+", t)] == []
