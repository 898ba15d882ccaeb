"""Image data: read a ZIP of images, describe every image, and store it as an immutable, content-addressed version.

The ZIP holds class folders, or comes with a table of image paths.

Archives are read only through `ingest.iter_zip`, which refuses unsafe or oversized archives before a byte
is unpacked. Every image is decoded with Pillow (the first frame of a GIF) and described by its size,
mode, format, byte count, SHA-256, perceptual hash and a 16 x 16 grey signature; a file that does not
decode is kept, marked `decodable=False` with the reason, so the quality check can report it and its fix
can drop it.

A version is `datasets/<hash>/images/<label or _unlabeled>/<name>` (the original bytes, never re-encoded)
plus `datasets/<hash>/index.parquet`, one row per image, whose `file` column is relative to the datasets
folder. A fix or a relabel writes only a new index that points at the files already stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
import pandas as pd
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from backend.data import ingest, storage
from backend.errors import BadInput, NotFound
from backend.i18n import Message

EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".gif")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF")  # the only decoders Pillow may use here
SIGNATURE_SIDE = 16  # the grey signature is 16 x 16 pixels, 256 bytes
UNLABELED = "_unlabeled"  # the folder of images without a label
SPLITS = ("train", "val", "test")  # split folders are recognised by these names and their synonyms below
_SPLIT_NAMES = {"training": "train", "valid": "val", "validation": "val", "dev": "val", "testing": "test"}
INDEX_COLUMNS = {  # the columns of index.parquet, in order, with their dtypes
    "file": "string",  # relative to the datasets folder: <hash>/images/<label>/<name>
    "label": "string",  # the class, or missing for an unlabeled image
    "split": "string",  # train / val / test when the upload had split folders, else missing
    "original": "string",  # the path in the upload (the ZIP), as the user knows it
    "width": "Int64",  # missing where the image does not decode
    "height": "Int64",
    "mode": "string",  # Pillow's mode: L, RGB, RGBA, P, …
    "format": "string",  # PNG, JPEG, WEBP, BMP, GIF
    "bytes": "int64",  # the size of the file
    "sha256": "string",  # of the file's bytes
    "phash": "string",  # imagehash.phash, 16 hex digits (64 bits)
    "signature": "object",  # 256 bytes: the image in grey at 16 x 16, to confirm near-duplicates
    "decodable": "bool",
    "error": "string",  # why the image does not decode
}
_LAYOUT = (
    "Upload a ZIP archive with one folder per class, e.g. cats/001.jpg and dogs/002.png (PNG, JPEG, WebP, BMP or GIF)"
)
_UNSAFE = re.compile(r"[^\w.\- ]+")
_LABEL_NAMES = ("label", "labels", "class", "category", "target", "tag", "y")  # label columns of a table


@dataclass(frozen=True)
class ImageSet:
    """Images as read from an upload, before they are stored.

    `index` has one row per image, sorted by `name` (the image's path under `images/` in a version, unique),
    and the columns of `INDEX_COLUMNS` except `file`. `data` holds each image's original bytes by name.
    """

    index: pd.DataFrame
    data: dict[str, bytes] = field(repr=False)
    notes: list[Message] = field(default_factory=list)  # what the reader noticed: skipped files, wrapper folder…


# -- one image ------------------------------------------------------------------------------------------
def _q(text: object) -> str:
    """A user-supplied name quoted on one line: control characters become '?', a long one is cut."""
    plain = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", "?", str(text))
    return f"'{plain if len(plain) <= 80 else plain[:79] + '…'}'"


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


def _decode_error(exc: BaseException) -> str:
    """Pillow's complaint as a short clause."""
    if isinstance(exc, UnidentifiedImageError):
        return "not a PNG, JPEG, WebP, BMP or GIF image"
    reason = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return f"damaged: {reason if len(reason) <= 160 else reason[:159] + '…'}"


def describe(data: bytes) -> dict[str, Any]:
    """What the index records about one file: decoded in full (a GIF's first frame), never trusted blindly.

    Returns the index columns other than `file`, `label`, `split` and `original`.
    """
    row: dict[str, Any] = {
        "width": None,
        "height": None,
        "mode": None,
        "format": None,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "phash": None,
        "signature": None,
        "decodable": False,
        "error": None,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # palette transparency, odd EXIF: not our concern here
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
                limit = Image.MAX_IMAGE_PIXELS
                if limit and width * height > limit:
                    row["error"] = f"{width:,} x {height:,} pixels, more than the {limit:,} allowed"
                    return row
                image.load()  # `verify()` alone misses truncated pixel data
                grey = image.convert("L")
                row |= {"width": width, "height": height, "mode": image.mode, "format": image.format}
                row["phash"] = str(imagehash.phash(grey))
                row["signature"] = grey.resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.BOX).tobytes()
                row["decodable"] = True
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error … on bad files
        row["error"] = _decode_error(exc)
    return row


# -- reading an upload ------------------------------------------------------------------------------------
def _folder_name(label: str | None) -> str:
    """A label as one safe folder name (the index keeps the label itself)."""
    if label is None:
        return UNLABELED
    name = _UNSAFE.sub("_", label).strip(" .")
    return name or "_"


def _unique_name(wanted: str, used: set[str]) -> str:
    """`wanted`, or `stem~2.ext`, `stem~3.ext` … when it is taken."""
    name, n = wanted, 2
    stem, suffix = posixpath.splitext(wanted)
    while name in used:
        name, n = f"{stem}~{n}{suffix}", n + 1
    used.add(name)
    return name


def _image_set(entries: list[dict[str, Any]], data: list[bytes], notes: list[Message]) -> ImageSet:
    """Describe each image and name it `<label folder>/<rest>`; `entries` carry original, label, split, rest."""
    rows: list[dict[str, Any]] = []
    stored: dict[str, bytes] = {}
    used: set[str] = set()
    wanted = [f"{_folder_name(e['label'])}/{e['rest']}" for e in entries]
    for i in sorted(range(len(entries)), key=lambda i: (wanted[i], entries[i]["original"])):
        entry = entries[i]
        name = _unique_name(wanted[i], used)
        rows.append({"name": name, **{k: entry[k] for k in ("label", "split", "original")}, **describe(data[i])})
        stored[name] = data[i]
    index = pd.DataFrame(rows, columns=["name", *list(INDEX_COLUMNS)[1:]])
    index = index.astype({"name": "string", **{k: v for k, v in INDEX_COLUMNS.items() if k != "file"}})
    index = index.sort_values("name", kind="stable", ignore_index=True)
    bad = int((~index["decodable"]).sum())
    if bad:
        notes.append(Message.counted("note.undecodable", bad))
    return ImageSet(index=index, data=stored, notes=notes)


def _split_name(folder: str) -> str | None:
    name = folder.lower()
    return name if name in SPLITS else _SPLIT_NAMES.get(name)


def _layout(names: list[str]) -> tuple[int, bool, list[Message]]:
    """How a ZIP's image paths are laid out, and notes for the user.

    The layout is how many wrapper folders to skip (0 or 1) and whether the next level is split folders
    (train/, test/ …).
    """
    parts = [n.split("/") for n in names]
    skip, notes = 0, list[Message]()
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) >= 2 for p in parts) and any(len(p) >= 3 for p in parts):
        skip = 1  # photos/cats/a.png: "photos" wraps the class folders
        notes.append(Message.of("note.wrapper_folder", folder=_q(next(iter(tops)) + "/")))
    folders = {p[skip] for p in parts if len(p) > skip + 1}
    splits = {_split_name(f) for f in folders}
    split = bool(folders) and None not in splits and any(len(p) > skip + 2 for p in parts)
    if split:
        notes.append(Message.of("note.splits", splits=", ".join(s for s in SPLITS if s in splits)))
    return skip, split, notes


def _place(name: str, skip: int, split: bool) -> dict[str, Any]:
    """The label, split and path under the class folder of one image path in a ZIP."""
    parts = name.split("/")[skip:]
    where = None
    if split and len(parts) > 1:
        where, parts = _split_name(parts[0]), parts[1:]
    label = parts[0] if len(parts) > 1 else None
    rest = "/".join(parts[1:] if label is not None else parts)
    return {"original": name, "label": label, "split": where, "rest": f"{where}/{rest}" if where else rest}


def _skipped_note(skipped: list[str]) -> list[Message]:
    if not skipped:
        return []
    listed = ", ".join(_q(s) for s in skipped[:5]) + (", …" if len(skipped) > 5 else "")
    return [Message.counted("note.skipped_files", len(skipped), listed=listed)]


def read_image_zip(source: bytes | Path, filename: str) -> ImageSet:
    """Read a ZIP with one folder per class (`cats/a.png`, `dogs/b.jpg`).

    One wrapper folder (`photos/cats/a.png`) and split folders (`train/cats/a.png`, `test/cats/b.png`) are
    recognised; images at the top level have no label; files that are not images are skipped and noted.

    Raises:
        BadInput: the archive is unsafe, damaged or too big (see `ingest.iter_zip`), or holds no images.
    """
    names: list[str] = []
    data: list[bytes] = []
    skipped: list[str] = []
    for member in ingest.iter_zip(source, ingest.Limits.from_env(), filename=filename):
        if _is_image_name(member.name):
            names.append(member.name)
            data.append(member.read())
        else:
            skipped.append(member.name)
    if not names:
        if skipped:
            raise BadInput("error.images.only_other_files", filename=_q(filename), count=len(skipped))
        raise BadInput("error.images.empty_archive", filename=_q(filename))
    skip, split, notes = _layout(names)
    entries = [_place(n, skip, split) for n in names]
    unlabeled = sum(e["label"] is None for e in entries)
    if unlabeled:
        notes.append(Message.counted("note.unlabeled_images", unlabeled))
    return _image_set(entries, data, notes + _skipped_note(skipped))


def _image_share(col: pd.Series) -> float:
    values = col.dropna().astype(str).str.strip().str.lower()
    return float(values.str.endswith(EXTENSIONS).mean()) if len(values) else 0.0


def _path_column(table: pd.DataFrame, wanted: str | None) -> str:
    columns = [str(c) for c in table.columns]
    listed = ", ".join(columns[:12]) + (", …" if len(columns) > 12 else "")
    if wanted is not None:
        if wanted not in columns:
            raise BadInput("error.images.no_such_path_column", wanted=_q(wanted), listed=listed)
        return wanted
    shares = {c: _image_share(table[c]) for c in columns if not pd.api.types.is_numeric_dtype(table[c])}
    best = max(shares, key=lambda c: shares[c], default=None)
    if best is None or shares[best] < 0.9:
        raise BadInput("error.images.no_path_column", listed=listed)
    return best


def _label_column(table: pd.DataFrame, path_column: str, wanted: str | None) -> str | None:
    others = [str(c) for c in table.columns if str(c) != path_column]
    if wanted is not None:
        if wanted not in others:
            listed = ", ".join(others[:12]) or "none"
            raise BadInput("error.images.no_such_label_column", wanted=_q(wanted), listed=listed)
        return wanted
    named = [c for c in others if c.strip().lower() in _LABEL_NAMES]
    if named:
        return named[0]
    if len(others) <= 1:
        return others[0] if others else None
    listed = ", ".join(others[:12]) + (", …" if len(others) > 12 else "")
    raise BadInput("error.images.which_label", listed=listed)


def _label_text(col: pd.Series) -> pd.Series:
    """Labels as text, integral numbers without a trailing .0; missing stays missing."""
    if pd.api.types.is_float_dtype(col) and bool((col.dropna() % 1 == 0).all()):
        col = col.astype("Int64")
    text = col.astype("string").str.strip()
    return text.mask(text == "")


def _normal_path(value: str) -> str:
    parts = [p for p in value.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _matcher(names: list[str]) -> Callable[[str], str | None]:
    """A function from a path in the table to the ZIP entry it names (or None).

    It tries the exact path, then the path inside a wrapper folder, then case aside, then the file name alone
    where only one entry has it.
    """
    exact = {n: n for n in names}
    wrapped = {n.split("/", 1)[1]: n for n in names if "/" in n}
    folded = {n.lower(): n for n in names}
    by_base: dict[str, list[str]] = {}
    for n in names:
        by_base.setdefault(posixpath.basename(n).lower(), []).append(n)

    def match(path: str) -> str | None:
        for lookup, key in ((exact, path), (wrapped, path), (folded, path.lower())):
            if key in lookup:
                return lookup[key]
        same = by_base.get(posixpath.basename(path).lower(), [])
        return same[0] if len(same) == 1 else None

    return match


def read_image_table(
    table: pd.DataFrame,
    zip_source: bytes | Path,
    zip_filename: str,
    *,
    path_column: str | None = None,
    label_column: str | None = None,
) -> ImageSet:
    """Read images listed in a table (a column of paths and a label column) from a ZIP of the image files.

    The path column is the one whose values end in image extensions, the label column one named like
    `label` or `class` (or the only other column), unless named. Paths are matched to the archive's entries
    by relative path, inside one wrapper folder, and then by file name. Rows without a path are skipped.

    Raises:
        BadInput: a column is missing or cannot be inferred, or paths are not in the archive (a few are named).
    """
    path_column = _path_column(table, path_column)
    label_column = _label_column(table, path_column, label_column)
    paths = table[path_column].astype("string")
    labels = _label_text(table[label_column]) if label_column else pd.Series(pd.NA, index=table.index, dtype="string")
    present = paths.notna() & (paths.str.strip() != "")
    notes: list[Message] = []
    if not present.all():
        notes.append(Message.counted("note.no_path_rows", int((~present).sum()), column=_q(path_column)))
    pairs = zip(paths[present], labels[present], strict=True)
    wanted = [(_normal_path(str(p)), None if pd.isna(y) else str(y)) for p, y in pairs]
    if not wanted:
        raise BadInput("error.images.empty_path_column", path_column=_q(path_column))

    limits = ingest.Limits.from_env()
    # 1. The archive's image entries, by name only (a member's bytes can only be read inside its loop).
    names = [m.name for m in ingest.iter_zip(zip_source, limits, filename=zip_filename) if _is_image_name(m.name)]
    match = _matcher(names)
    found = [match(path) for path, _ in wanted]
    missing = [path for (path, _), hit in zip(wanted, found, strict=True) if hit is None]
    if missing:
        listed = ", ".join(_q(p) for p in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise BadInput(
            "error.images.paths_not_in_archive",
            missing_count=len(missing),
            wanted_count=len(wanted),
            path_column=_q(path_column),
            zip_filename=_q(zip_filename),
            listed=listed,
        )
    hits = [hit for hit in found if hit is not None]  # all of them, now
    # 2. Read each entry the table names, once.
    needed = set(hits)
    read: dict[str, bytes] = {}
    for member in ingest.iter_zip(zip_source, limits, filename=zip_filename):
        if member.name in needed:
            read[member.name] = member.read()
    unused = len(names) - len(needed)
    if unused:
        notes.append(Message.counted("note.unused_images", unused, archive=_q(zip_filename)))
    entries = [
        {"original": hit, "label": label, "split": None, "rest": hit}
        for (_, label), hit in zip(wanted, hits, strict=True)
    ]
    return _image_set(entries, [read[hit] for hit in hits], notes)


# -- storing a version ------------------------------------------------------------------------------------
def _stored_name(file: str) -> str:
    """`<hash>/images/<label>/<name>` → `<label>/<name>`."""
    return file.split("/images/", 1)[1] if "/images/" in file else file


def version_hash(names: list[str], sha256s: list[str], labels: list[str | None]) -> str:
    """SHA-256 over the sorted (name under images/, file SHA-256, label) triples: equal content, equal hash."""
    triples = sorted(zip(names, sha256s, labels, strict=True), key=lambda t: (t[0], t[1], t[2] or ""))
    return hashlib.sha256(json.dumps(triples, ensure_ascii=False).encode()).hexdigest()


def _labels(col: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in col]


def _index_frame(index: pd.DataFrame) -> pd.DataFrame:
    return index[list(INDEX_COLUMNS)].astype(INDEX_COLUMNS).reset_index(drop=True)


def write_image_version(datasets_root: Path, images: ImageSet) -> tuple[str, Path]:
    """Store an image set as `datasets_root/<hash>/` (images/ with the original bytes, and index.parquet).

    Returns:
        The version hash and its folder; `folder / "index.parquet"` is what the version's path records.
    """
    names = images.index["name"].astype(str).tolist()
    digest = version_hash(names, images.index["sha256"].astype(str).tolist(), _labels(images.index["label"]))
    index = images.index.assign(file=[f"{digest}/images/{n}" for n in names])

    def write(folder: Path) -> None:
        for parent in sorted({posixpath.dirname(n) for n in names}):
            (folder / "images" / parent).mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / "images" / name).write_bytes(images.data[name])
        _index_frame(index).to_parquet(folder / "index.parquet", index=False)

    return digest, storage.write_once(datasets_root, digest, marker="index.parquet", write=write)


def index_only_version(datasets_root: Path, index: pd.DataFrame) -> tuple[str, Path]:
    """Store a changed index (rows dropped, labels changed) as a new version that reuses the stored files.

    Returns:
        The version hash (computed as `write_image_version` does) and its folder.
    """
    index = _index_frame(index)
    names = [_stored_name(f) for f in index["file"].astype(str)]
    digest = version_hash(names, index["sha256"].astype(str).tolist(), _labels(index["label"]))

    def write(folder: Path) -> None:
        index.to_parquet(folder / "index.parquet", index=False)

    return digest, storage.write_once(datasets_root, digest, marker="index.parquet", write=write)


def image_columns(index: pd.DataFrame) -> list[dict[str, Any]]:
    """The version's `columns` record: the image input and the label, in the shape of `datasets.Column`."""
    labels = index["label"]
    return [
        {
            "name": "image",
            "kind": "image",
            "dtype": "bytes",
            "missing": int((~index["decodable"].astype(bool)).sum()),
            "unique": int(index["sha256"].nunique()),
            "original": "file",
        },
        {
            "name": "label",
            "kind": "categorical",
            "dtype": "string",
            "missing": int(labels.isna().sum()),
            "unique": int(labels.nunique()),
            "original": "label",
        },
    ]


# -- reading a stored image -------------------------------------------------------------------------------
def _stored_path(datasets_root: Path, file: str) -> Path:
    root = datasets_root.resolve()
    path = (root / file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("error.images.not_in_store", file=_q(file))
    return path


def load_image(datasets_root: Path, file: str) -> Image.Image:
    """A stored image (a GIF's first frame), decoded in full, as stored (EXIF orientation not applied).

    Raises:
        NotFound: the file is not in the store.
        BadInput: the file does not decode (the undecodable_images check reports it).
    """
    path = _stored_path(datasets_root, file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=FORMATS) as image:
                image.load()
                return image.copy()
    except Exception as exc:
        raise BadInput("error.images.undecodable", file=_q(file), problem=_decode_error(exc)) from None


def _placeholder(size: int) -> Image.Image:
    """A grey square with a red cross: what the gallery shows for a file that does not decode."""
    image = Image.new("RGB", (size, size), (230, 230, 230))
    draw = ImageDraw.Draw(image)
    draw.line((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(200, 40, 40), width=max(2, size // 16))
    draw.line((size // 4, 3 * size // 4, 3 * size // 4, size // 4), fill=(200, 40, 40), width=max(2, size // 16))
    return image


def thumbnail(datasets_root: Path, file: str, *, size: int = 128) -> bytes:
    """PNG bytes of the image fitted into `size` x `size`, for `st.image`.

    Small images are enlarged with hard pixel edges and EXIF orientation is applied; a file that does not decode
    gives a placeholder.
    """
    try:
        image = ImageOps.exif_transpose(load_image(datasets_root, file))
    except BadInput:
        image = _placeholder(size)
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    scale = size / max(image.size)
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    out = io.BytesIO()
    image.resize(fitted, resample).save(out, "PNG")
    return out.getvalue()


# -- images to predict ------------------------------------------------------------------------------------
def images_to_predict(path: Path) -> list[tuple[str, bytes]]:
    """The images in a file, a folder (recursively) or a ZIP, as (name, original bytes), sorted by name.

    Raises:
        BadInput: nothing there is an image, or the ZIP is unsafe.
    """
    if path.is_dir():
        found = [(str(p.relative_to(path)), p.read_bytes()) for p in sorted(path.rglob("*")) if _is_image_name(p.name)]
    elif path.suffix.lower() == ".zip":
        found = sorted((m.name, m.read()) for m in ingest.iter_zip(path) if _is_image_name(m.name))
    elif path.is_file():
        found = [(path.name, path.read_bytes())]
    else:
        raise BadInput("error.images.no_file", path=_q(str(path)))
    if not found:
        raise BadInput("error.images.no_images_in_folder", path=_q(str(path)), extensions=", ".join(EXTENSIONS))
    return found
