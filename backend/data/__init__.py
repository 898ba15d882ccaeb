"""The data wing: uploads in, immutable dataset versions out.

- `ingest/`: read any upload safely (limits, encodings, table readers, archive safety).
- `datasets.py`: add a table, a text set or a sample as a content-addressed version; resolve, load, profile.
- `images.py`: image sets (a zip of class folders, or a table of paths), their index, thumbnails.
- `samples.py`: the built-in samples and their data cards, read from installed packages.
- `kinds.py`: what kind of data a table is (tabular, text, ratings) and which columns play which part.
- `storage.py`: write a version's folder whole or not at all.

Other wings and the faces import from here only.
"""

from backend.data.datasets import (
    TASKS,
    Column,
    add_dataset,
    add_frame,
    add_image_index,
    add_image_table,
    add_sample,
    add_samples,
    add_source,
    checked_task,
    load_frame,
    note_text,
    profile,
    read_table,
    resolve,
    set_kind,
    set_target,
)
from backend.data.images import INDEX_COLUMNS, SIGNATURE_SIDE, ImageSet, images_to_predict, thumbnail
from backend.data.ingest import Limits, TableRead
from backend.data.kinds import KINDS, roles
from backend.data.numbers import parse_numbers
from backend.data.samples import SAMPLES, Sample
from db import Dataset, DatasetVersion  # the records the wing returns, for callers' type hints

__all__ = [
    "Dataset",
    "DatasetVersion",
    "INDEX_COLUMNS",
    "KINDS",
    "SAMPLES",
    "SIGNATURE_SIDE",
    "TASKS",
    "Column",
    "ImageSet",
    "Limits",
    "Sample",
    "TableRead",
    "add_dataset",
    "add_frame",
    "add_image_index",
    "add_image_table",
    "add_sample",
    "add_samples",
    "add_source",
    "checked_task",
    "images_to_predict",
    "load_frame",
    "note_text",
    "parse_numbers",
    "profile",
    "read_table",
    "resolve",
    "roles",
    "set_kind",
    "set_target",
    "thumbnail",
]
