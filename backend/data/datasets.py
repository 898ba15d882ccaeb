"""Datasets: read an upload or a sample, profile its columns, store it as an immutable version.

A version is content-addressed: `datasets/<hash>/data.parquet`, written to a temporary folder and
renamed into place, so a failed upload leaves nothing behind and the same content is stored once.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from backend import auth, config
from backend.config import Paths
from backend.data import images, ingest, kinds, samples, storage
from backend.data.numbers import parse_numbers
from backend.errors import BadInput, NotFound, SampleUnavailable
from backend.i18n import Message
from db import Dataset, DatasetVersion, Store
from models import columns
from models.tasks import tasks_for_kind

TASKS = tasks_for_kind("tabular")  # what a table's target can be predicted as
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")
_TEXT_MIN_MEAN_LENGTH = 40
_DATE_SAMPLE = 5000  # values `models.columns.date_order` looks at
_NUMBERS_HEAD = 1000  # values `_read_numbers` tries before reading a whole column
_FLAG_PAIRS = (("yes", "no"), ("true", "false"), ("y", "n"), ("t", "f"), ("是", "否"))


@dataclass(frozen=True)
class Column:
    """What a column is, as the model and the playground form need it."""

    name: str
    kind: str  # "numeric" | "categorical" | "boolean" | "date" | "text"
    dtype: str
    missing: int
    unique: int
    original: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


# -- reading ----------------------------------------------------------------------------------------
def _unique_names(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Column names that are safe as model input names, and unique; returns the renames."""
    seen: set[str] = set()
    result, renamed = [], {}
    for i, raw in enumerate(names):
        name = _SAFE_NAME.sub("_", str(raw).strip()).strip("_") or f"column_{i + 1}"
        if name[0] in "-.":
            name = f"c{name}"
        base, n = name, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        result.append(name)
        if name != raw:
            renamed[name] = str(raw)
    return result, renamed


def read_table(source: bytes | Path, filename: str, *, sheet: str | None = None) -> ingest.TableRead:
    """Parse an upload (CSV/TSV, Excel, JSON Lines, Parquet) within the operator's limits, or raise BadInput."""
    return ingest.read_table(source, filename, sheet=sheet, limits=ingest.Limits.from_env())


def _normalise(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    names, renamed = _unique_names([str(c) for c in frame.columns])
    frame = frame.copy(deep=False)  # columns are replaced below, never changed in place: the caller's stay as they are
    frame.columns = names
    for name in names:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
            frame[name] = col.astype("string")
        elif pd.api.types.is_datetime64_any_dtype(col):
            frame[name] = col.astype("string")
        elif not pd.api.types.is_numeric_dtype(col):
            frame[name] = col.astype("string")
    return frame.reset_index(drop=True), renamed


def _text_kind(col: pd.Series, distinct: int) -> str:
    """What a column of strings holds: yes/no flags, dates, free text (long, mostly distinct) or categories.

    `distinct` is `col.nunique()`, which the profile counts anyway.
    """
    present = col.dropna()
    if 0 < distinct <= 8:  # "Yes", "yes" and "YES" are one word
        words = {str(v).strip().lower() for v in present.unique()}
        if any(words <= set(pair) for pair in _FLAG_PAIRS):
            return "boolean"
    # `date_order` looks at the same seeded sample of 5000 values, taken here before it writes each one as text.
    some = present.sample(_DATE_SAMPLE, random_state=0) if len(present) > _DATE_SAMPLE else present
    if columns.date_order(some) is not None:
        return "date"
    unique_share = distinct / max(1, len(present))
    long_text = len(present) and unique_share > 0.5 and present.str.len().mean() >= _TEXT_MIN_MEAN_LENGTH
    return "text" if long_text else "categorical"


def _first_present(col: pd.Series, n: int) -> pd.Series:
    """`col.dropna().head(n)`, looking only as far into the column as it needs to."""
    size = n
    while True:
        some = col.iloc[:size].dropna()
        if len(some) >= n or size >= len(col):
            return some.head(n)
        size *= 8


def _read_numbers(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Columns of numbers written for people ("$1,234.50", "12%") as numbers, when every value reads as one.

    Returns the frame and the columns read. A column with some values that are not numbers stays as it is: the
    quality check's "make numeric" fix offers to read it, and says how many values would be lost.
    """
    read = []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) or col.notna().sum() == 0:
            continue
        if parse_numbers(_first_present(col, _NUMBERS_HEAD)).isna().any():  # a look at the head rules most out
            continue
        numbers = parse_numbers(col)
        if numbers.notna().sum() == col.notna().sum():
            frame[name] = numbers
            read.append(str(name))
    return frame, read


def _distinct(col: pd.Series) -> int:
    """`col.nunique()`: for plain numbers, counted on the sorted values, several times faster than a hash table.

    Equal values (0.0 and -0.0 too) are neighbours once sorted, and missing values (NaN) are left out, as
    `nunique` leaves them out.
    """
    values = col.to_numpy() if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf" else None
    if values is None:
        return int(col.nunique())
    if values.dtype.kind == "f":
        values = values[~np.isnan(values)]
    ordered = np.sort(values)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if len(ordered) else 0


def profile(frame: pd.DataFrame, renamed: dict[str, str] | None = None) -> list[Column]:
    """Each column's kind, storage type, missing and distinct counts; `renamed` maps new names to the given ones."""
    renamed = renamed or {}
    columns = []
    for name in frame.columns:
        col = frame[name]
        distinct = _distinct(col)
        kind = "numeric" if pd.api.types.is_numeric_dtype(col) else _text_kind(col, distinct)
        columns.append(
            Column(
                name=name,
                kind=kind,
                dtype=str(col.dtype),
                missing=int(col.isna().sum()),
                unique=distinct,
                original=renamed.get(name, name),
            )
        )
    return columns


def infer_task(frame: pd.DataFrame, target: str) -> str:
    """Regression for a numeric target with many distinct values, classification otherwise."""
    col = frame[target].dropna()
    if pd.api.types.is_numeric_dtype(col):
        distinct = col.nunique()
        integral = bool((col == col.round()).all())
        if distinct > 20 or (not integral and distinct > 10):
            return "regression"
    return "classification"


def _column_digest(col: pd.Series) -> bytes:
    """A column's values as SHA-256 digests of their raw bytes: the numbers, or the texts' lengths and characters.

    Runs at memory speed, several times faster than pandas' per-value hash, and gives the same digest however
    pyarrow chunked the texts and whether pandas holds them in pyarrow or as Python strings.
    """
    values, data, sizes = col.array, hashlib.sha256(), hashlib.sha256()
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "biufcmM":
        data.update(np.ascontiguousarray(col.to_numpy()).view(np.uint8).data)
    elif isinstance(col.dtype, pd.StringDtype):
        arrow = values.__arrow_array__()
        for chunk in arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]:
            sizes.update(pc.binary_length(chunk).fill_null(-1).cast(pa.int64()).to_numpy())  # -1: missing
            offsets = np.frombuffer(chunk.buffers()[1], np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
            start, end = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
            if chunk.buffers()[2] is not None:
                data.update(memoryview(chunk.buffers()[2])[start:end])
    else:  # nullable integers and the like
        data.update(pd.util.hash_pandas_object(col, index=False).to_numpy())
    return data.digest() + sizes.digest()


def content_hash(frame: pd.DataFrame) -> str:
    """A version's identity: its column names, types, row count and values."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()] + [len(frame)]).encode())
    for name in frame.columns:
        digest.update(_column_digest(frame[name]))
    return digest.hexdigest()


def checked_task(frame: pd.DataFrame, target: str | None, task: str | None) -> str | None:
    """Validate a target and task choice; 'auto' (or None) infers the task from the target."""
    if target is not None and target not in frame.columns:
        listed = ", ".join(list(frame.columns)[:12]) + (", …" if len(frame.columns) > 12 else "")
        raise BadInput("error.data.no_target_column", target=target, listed=listed)
    if task is not None and task != "auto" and task not in TASKS:
        raise BadInput("error.data.unknown_task", task=task, tasks=", ".join(TASKS))
    if target is not None and task in (None, "auto"):
        return infer_task(frame, target)
    return task


# -- storing ----------------------------------------------------------------------------------------
def _stored(paths: Paths, frame: pd.DataFrame, renamed: dict[str, str]) -> tuple[str, Path, list[Column]]:
    """Write data.parquet for a version atomically (an existing version is left as it is), and profile it.

    Returns the version's hash, its folder and its columns. The file is written on another thread while this one
    hashes and profiles the rows: pyarrow writes without holding the GIL. (Hashing on a third thread as well
    saved little time and raised the peak memory of `data add`, which bench/quality.py prints.)
    """

    def write(folder: Path) -> None:
        frame.to_parquet(folder / "data.parquet", index=False)

    with storage.writing(paths.datasets, marker="data.parquet", write=write) as pending:
        digest = content_hash(frame)
        columns = profile(frame, renamed)
        return digest, pending.publish(digest), columns


def add_frame(
    store: Store,
    *,
    paths: Paths,
    frame: pd.DataFrame,
    name: str,
    source: str,
    target: str | None = None,
    task: str | None = None,
    renamed: dict[str, str] | None = None,
    parent_id: int | None = None,
    notes: Sequence[Message] = (),
    kind: str | None = None,
) -> tuple[Dataset, DatasetVersion]:
    """Store a frame as a version of dataset `name` and record it (a fix passes its parent and what it did)."""
    if frame.empty or len(frame.columns) == 0:
        raise BadInput("error.data.no_rows", name=name)
    frame, more_renamed = _normalise(frame)
    renamed = {**more_renamed, **(renamed or {})}
    frame, read = _read_numbers(frame)
    if read:
        notes = [*notes, Message.of("note.numbers_read", columns=", ".join(read))]
    if target is not None and target not in frame.columns:
        target = _SAFE_NAME.sub("_", target.strip()).strip("_") if target.strip() else target
    task = checked_task(frame, target, task)
    digest, folder, profiled = _stored(paths, frame, renamed)
    columns = [c.to_dict() for c in profiled]
    if kind is not None and kind not in kinds.KINDS:
        raise BadInput("error.data.unknown_data_kind", kind=kind, kinds=", ".join(kinds.KINDS))
    return store.add_dataset_version(
        name=name,
        kind=kind or kinds.infer(columns),
        source=source,
        hash=digest,
        path=paths.relative(folder / "data.parquet"),
        rows=len(frame),
        columns=columns,
        target=target,
        task=task,
        parent_id=parent_id,
        notes=[n.to_dict() for n in notes],
    )


def _mostly_texts(source: bytes | Path) -> bool:
    """Whether an archive holds .txt files rather than images (a peek at the names; reading checks the rest)."""
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            names = [n.lower() for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError):
        return False
    return sum(n.endswith(".txt") for n in names) > len(names) / 2


def read_text_zip(source: bytes | Path, filename: str) -> pd.DataFrame:
    """A zip of one folder of .txt files per class, as a table of (text, label, file)."""
    rows = []
    for member in ingest.iter_zip(source, ingest.Limits.from_env(), filename=filename):
        parts = member.name.split("/")
        if not member.name.lower().endswith(".txt"):
            continue
        raw = member.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        rows.append({"text": text, "label": parts[-2] if len(parts) >= 2 else None, "file": member.name})
    if not rows:
        raise BadInput("error.data.no_txt_files", filename=filename)
    return pd.DataFrame(rows)


@auth.guarded("upload", lambda made: f"{made[0].name} @ {made[1].hash[:8]}")
def add_dataset(
    store: Store,
    *,
    paths: Paths,
    data: bytes | Path,
    filename: str,
    name: str | None = None,
    target: str | None = None,
    task: str | None = None,
    sheet: str | None = None,
) -> tuple[Dataset, DatasetVersion]:
    """Store an uploaded file as a new dataset version; what the reader noticed becomes the version's notes.

    A .zip is a set of images or of .txt files, one folder per class.
    """
    if filename.lower().endswith(".zip") and _mostly_texts(data):
        return add_frame(
            store,
            paths=paths,
            frame=read_text_zip(data, filename),
            name=name or Path(filename).stem,
            source=f"upload:{filename}",
            target="label",
            task="classification",
            kind="text",
        )
    if filename.lower().endswith(".zip"):
        image_set = images.read_image_zip(data, filename)
        return add_image_set(
            store, paths=paths, image_set=image_set, name=name or Path(filename).stem, source=f"upload:{filename}"
        )
    read = read_table(data, filename, sheet=sheet)
    return add_frame(
        store,
        paths=paths,
        frame=read.frame,
        name=name or Path(filename).stem,
        source=f"upload:{filename}" + (f" (sheet {sheet})" if sheet else ""),
        target=target,
        task=task,
        notes=read.notes,
    )


def add_image_set(
    store: Store,
    *,
    paths: Paths,
    image_set: images.ImageSet,
    name: str,
    source: str,
    parent_id: int | None = None,
    notes: Sequence[Message] = (),
) -> tuple[Dataset, DatasetVersion]:
    """Store an image set (original bytes under images/, one index row per image) as a version."""
    if image_set.index.empty:
        raise BadInput("error.data.no_images_left", name=name)
    digest, folder = images.write_image_version(paths.datasets, image_set)
    return _record_images(
        store,
        paths=paths,
        index=image_set.index,
        folder=folder,
        digest=digest,
        name=name,
        source=source,
        parent_id=parent_id,
        notes=notes or image_set.notes,
    )


@auth.guarded("upload", lambda made: f"{made[0].name} @ {made[1].hash[:8]}")
def add_image_table(
    store: Store,
    *,
    paths: Paths,
    table: bytes | Path,
    table_filename: str,
    archive: bytes | Path,
    archive_filename: str,
    name: str | None = None,
) -> tuple[Dataset, DatasetVersion]:
    """Images listed in a table (an image-path column and a label column), their files in a zip."""
    frame = read_table(table, table_filename).frame
    image_set = images.read_image_table(frame, archive, archive_filename)
    return add_image_set(
        store,
        paths=paths,
        image_set=image_set,
        name=name or Path(table_filename).stem,
        source=f"upload:{table_filename}+{archive_filename}",
    )


@auth.guarded("upload", lambda made: f"{made[0].name} @ {made[1].hash[:8]}")
def add_image_index(
    store: Store, *, paths: Paths, index: pd.DataFrame, name: str, source: str, parent_id: int, notes: Sequence[Message]
) -> tuple[Dataset, DatasetVersion]:
    """A fix or relabel of an image version: a new index over the parent's stored files."""
    if index.empty:
        raise BadInput("error.data.no_images_left", name=name)
    index = index.reset_index(drop=True)
    digest, folder = images.index_only_version(paths.datasets, index)
    return _record_images(
        store,
        paths=paths,
        index=index,
        folder=folder,
        digest=digest,
        name=name,
        source=source,
        parent_id=parent_id,
        notes=notes,
    )


def _record_images(
    store: Store,
    *,
    paths: Paths,
    index: pd.DataFrame,
    folder: Path,
    digest: str,
    name: str,
    source: str,
    parent_id: int | None,
    notes: Sequence[Message],
) -> tuple[Dataset, DatasetVersion]:
    return store.add_dataset_version(
        name=name,
        kind="images",
        source=source,
        hash=digest,
        path=paths.relative(folder / "index.parquet"),
        rows=len(index),
        columns=images.image_columns(index),
        target="label",
        task="image-classification",
        parent_id=parent_id,
        notes=[n.to_dict() for n in notes],
    )


@auth.guarded("upload", lambda made: f"{made[0].name} @ {made[1].hash[:8]}")
def add_sample(store: Store, *, paths: Paths, sample: str) -> tuple[Dataset, DatasetVersion]:
    """Store a built-in sample (read from an installed package, never downloaded) as a dataset version.

    Raises:
        NotFound: no sample by that name.
        SampleUnavailable: the package the sample comes from is not installed.
    """
    if sample not in samples.SAMPLES:
        raise NotFound("error.data.no_sample", sample=sample, samples=", ".join(samples.SAMPLES))
    s = samples.SAMPLES[sample]
    try:
        content = s.load_zip() if s.kind == "images" else s.load()
    except ModuleNotFoundError as exc:
        raise SampleUnavailable("error.samples.no_package", sample=s.name, package=exc.name) from None
    if isinstance(content, bytes):
        image_set = images.read_image_zip(content, f"{s.name}.zip")
        return add_image_set(store, paths=paths, image_set=image_set, name=s.name, source=f"sample:{s.name}")
    return add_frame(
        store,
        paths=paths,
        frame=content,
        name=s.name,
        source=f"sample:{s.name}",
        target=s.target,
        task=s.task,
        kind=s.kind,
    )


@auth.guarded("upload", lambda skipped: f"every sample ({len(skipped)} skipped)")
def add_samples(store: Store, *, paths: Paths) -> dict[str, SampleUnavailable]:
    """Store every built-in sample whose package is installed; returns the others, by name, with why each was not."""
    skipped = {}
    for name in samples.SAMPLES:
        try:
            add_sample(store, paths=paths, sample=name)
        except SampleUnavailable as exc:
            skipped[name] = exc
    return skipped


@auth.guarded("upload", lambda made: f"{made[0].name} @ {made[1].hash[:8]}")
def add_source(
    store: Store,
    *,
    paths: Paths,
    source: str,
    name: str | None = None,
    target: str | None = None,
    task: str | None = None,
) -> tuple[Dataset, DatasetVersion]:
    """The CLI's SOURCE: a file path, or `sample:NAME`."""
    if source.startswith("sample:"):
        dataset, version = add_sample(store, paths=paths, sample=source.removeprefix("sample:"))
        if target is not None or task is not None:
            version = set_target(store, version=version, target=target or version.target, task=task)
        return dataset, version
    path = Path(source)
    if not path.is_file():
        raise BadInput("error.data.no_file", source=source)
    return add_dataset(store, paths=paths, data=path, filename=path.name, name=name, target=target, task=task)


def resolve(store: Store, ref: str | int) -> tuple[Dataset, DatasetVersion]:
    """A dataset by id or name, with its newest version."""
    dataset = store.find_dataset(ref)
    if dataset is None:
        known = ", ".join(d.name for d in store.list_datasets()) or "none yet"
        raise NotFound("error.data.no_dataset", ref=ref, known=known)
    return dataset, store.list_versions(dataset.id)[-1]


@auth.guarded("upload", lambda dataset: f"{dataset.name}: kind {dataset.kind}", audited="set_kind")
def set_kind(store: Store, *, dataset: Dataset, kind: str) -> Dataset:
    """Change what kind of data a dataset is (the inference can be wrong)."""
    if kind not in ("tabular", "text", "ratings") or dataset.kind == "images":
        raise BadInput("error.data.bad_table_kind", kind=kind)
    store.set_dataset_kind(dataset.id, kind=kind)
    changed = store.find_dataset(dataset.id)
    assert changed is not None
    return changed


def load_frame(version: DatasetVersion) -> pd.DataFrame:
    """The rows of a stored version (for images, its index: one row per image)."""
    # One block per column: pandas would otherwise copy every number column into one 2-D block (0.3 s of 0.4 s
    # for a 200,000 x 100 table), and the checks and the trainers read column by column anyway.
    frame = pd.read_parquet(config.paths().resolve(version.path), to_pandas_kwargs={"split_blocks": True})
    pa.default_memory_pool().release_unused()  # the reader's buffers, kept for reuse, would count in the peak
    return frame


@auth.guarded("upload", lambda v: f"version {v.hash[:8]}: target {v.target}", audited="set_target")
def set_target(store: Store, *, version: DatasetVersion, target: str | None, task: str | None) -> DatasetVersion:
    """Choose the target column and task of a version (the task is inferred when None or 'auto')."""
    if target == "label" and version.task == "image-classification":
        return version  # an image set's target is its class folders
    task = checked_task(load_frame(version), target, task)
    store.set_version_target(version.id, target=target, task=task)
    updated = store.get_version(version.id)
    assert updated is not None
    return updated


def note_text(version: DatasetVersion, lang: str = "en") -> str:
    """What the reader or the fix noticed when the version was made, in `lang`, one sentence after another."""
    return "; ".join(Message(n["key"], n.get("params", {})).text(lang) for n in version.notes)
