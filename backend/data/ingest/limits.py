"""What one upload may cost, how a refusal reads, and the upload as a source of bytes.

Every limit is enforced while reading, not after: a file's size is checked before it is opened (`Source`),
rows are counted as they stream in, and archives are counted from their directory before they are parsed.
Every refusal is a `BadInput` with one line that says what is wrong and how to fix it.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from backend.errors import BadInput

MB = 1024 * 1024
CHUNK = 4 * MB  # how much is read (or unpacked) at a time
HEAD = 1 * MB  # the start of a text file that encoding and delimiter detection look at
BLOCK = 4 * MB  # pyarrow's CSV block: a row must fit in one; blocks are parsed in parallel


@dataclass(frozen=True)
class Limits:
    """What one upload may cost; an operator raises them with the MODELDECK_MAX_* variables."""

    max_upload_bytes: int = 200 * MB  # the file as uploaded: a table, a workbook or an archive
    max_uncompressed_bytes: int = 1024 * MB  # what an archive, workbook or Parquet file unpacks to
    max_files: int = 100_000  # entries in an archive
    max_rows: int = 5_000_000  # data rows in a table

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Limits from MODELDECK_MAX_UPLOAD_MB, _UNCOMPRESSED_MB, _FILES and _ROWS; unset means the default."""
        env = os.environ if environ is None else environ
        default = cls()

        def read(var: str, fallback: int, scale: int = 1) -> int:
            raw = env.get(var, "").strip().replace("_", "")
            if not raw:
                return fallback
            if not raw.isdigit() or int(raw) == 0:
                raise BadInput("error.ingest.bad_limit", var=var, raw=quoted(raw), default=fallback // scale)
            return int(raw) * scale

        return cls(
            max_upload_bytes=read("MODELDECK_MAX_UPLOAD_MB", default.max_upload_bytes, MB),
            max_uncompressed_bytes=read("MODELDECK_MAX_UNCOMPRESSED_MB", default.max_uncompressed_bytes, MB),
            max_files=read("MODELDECK_MAX_FILES", default.max_files),
            max_rows=read("MODELDECK_MAX_ROWS", default.max_rows),
        )


# -- messages ---------------------------------------------------------------------------------------
def plain(text: object, limit: int = 80) -> str:
    """A user-supplied name on one line: control characters become '?', a long one loses its middle.

    The middle goes, not the end: of a long path, the file name is what the reader needs.
    """
    s = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", "?", str(text))
    if len(s) <= limit:
        return s
    head = (limit - 1) // 3
    return s[:head] + "…" + s[len(s) - (limit - 1 - head) :]


def quoted(text: object) -> str:
    return f"'{plain(text)}'"


def reason(exc: BaseException) -> str:
    """A parser's error as a short clause for a one-line message."""
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    unit, scale = next((u, s) for u, s in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)) if n >= s)
    return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"


def too_big(filename: str, size: int, limit: int, smaller: str) -> BadInput:
    return BadInput(
        "error.ingest.over_upload_limit",
        filename=quoted(filename),
        size=size_text(size),
        limit=size_text(limit),
        smaller=smaller,
    )


def too_many_rows(filename: str, limit: int) -> BadInput:
    return BadInput("error.ingest.too_many_rows", filename=quoted(filename), limit=limit)


def too_large_unpacked(filename: str, size: str, limit: int) -> BadInput:
    return BadInput("error.ingest.too_large_unpacked", filename=quoted(filename), size=size, limit=size_text(limit))


def too_many_files(filename: str, limit: int) -> BadInput:
    return BadInput("error.ingest.too_many_entries", filename=quoted(filename), limit=limit)


# -- sources ----------------------------------------------------------------------------------------
class Source:
    """An upload held as bytes or as a file on disk; its size is checked before anything is read."""

    def __init__(
        self, source: bytes | Path, filename: str, limits: Limits, smaller: str = "a sample of the rows"
    ) -> None:
        self.data: bytes | None = None
        self.path: Path | None = None
        if isinstance(source, Path):
            try:
                info = source.stat()
            except OSError:
                raise BadInput("error.ingest.no_file", source=quoted(source)) from None
            if not stat.S_ISREG(info.st_mode):
                raise BadInput("error.ingest.not_regular_file", source=quoted(source))
            self.path, self.size = source, info.st_size
        else:
            self.data, self.size = bytes(source), len(source)
        if self.size > limits.max_upload_bytes:
            raise too_big(filename, self.size, limits.max_upload_bytes, smaller)

    def open(self) -> IO[bytes]:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")

    def read_at(self, offset: int, n: int) -> bytes:
        if self.data is not None:
            return self.data[offset : offset + n]
        with self.open() as f:
            f.seek(offset)
            return f.read(n)

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK):
                yield self.data[start : start + CHUNK]
            return
        with self.open() as f:
            while chunk := f.read(CHUNK):
                yield chunk

    @contextlib.contextmanager
    def view(self) -> Iterator[bytes | mmap.mmap]:
        """All the bytes at once: the bytes held, or the file mapped into memory (nothing is copied)."""
        if self.data is not None or self.size == 0:
            yield self.data or b""
            return
        assert self.path is not None
        with self.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped

    def arrow(self) -> Any:
        """A fresh input for pyarrow: the path (pyarrow streams it) or a zero-copy buffer."""
        return pa.BufferReader(self.data) if self.data is not None else str(self.path)
