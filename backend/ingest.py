"""Ingest: read any table upload (CSV/TSV/TXT, Excel, Parquet, JSON Lines) and any ZIP archive safely.

Every limit is enforced while reading, not after: a file's size is checked before it is opened, rows are
counted as they stream in, and a ZIP archive's entries are counted from its directory before it is parsed
and its bytes are counted as they are unpacked. Every refusal is a `BadInput` with one line that says
what is wrong and how to fix it; parser errors never escape as anything else.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import os
import posixpath
import re
import stat
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from charset_normalizer import from_bytes

from backend.errors import BadInput

MB = 1024 * 1024
_CHUNK = 4 * MB  # how much is read (or unpacked) at a time
_HEAD = 1 * MB  # the start of a text file that encoding and delimiter detection look at
_BLOCK = 4 * MB  # pyarrow's CSV block: a row must fit in one; blocks are parsed in parallel


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
                raise BadInput(
                    f"{var}={_q(raw)} is not a positive whole number. Set it to one "
                    f"(the default is {fallback // scale}), or unset it."
                )
            return int(raw) * scale

        return cls(
            max_upload_bytes=read("MODELDECK_MAX_UPLOAD_MB", default.max_upload_bytes, MB),
            max_uncompressed_bytes=read("MODELDECK_MAX_UNCOMPRESSED_MB", default.max_uncompressed_bytes, MB),
            max_files=read("MODELDECK_MAX_FILES", default.max_files),
            max_rows=read("MODELDECK_MAX_ROWS", default.max_rows),
        )


@dataclass(frozen=True)
class TableRead:
    """A table as read, with what the reader noticed or changed on the way (shown to the user)."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # e.g. "Detected encoding GBK"
    sheets: list[str] = field(default_factory=list)  # Excel: every sheet name, in workbook order
    encoding: str | None = None  # text files: the Python codec used, e.g. "utf-8", "utf-16", "gbk"
    delimiter: str | None = None  # text files: one of , ; \t |


@dataclass(frozen=True)
class ZipMember:
    """One regular file in an archive; `read()` unpacks it, counting its bytes against the limits."""

    name: str  # a safe relative path with forward slashes, e.g. "images/cat/001.png"
    size: int  # the size the archive declares; `read()` never returns more
    _read: Callable[[], bytes] = field(repr=False, compare=False)

    def read(self) -> bytes:
        """The member's bytes; valid only while its `iter_zip` loop is running."""
        return self._read()


# -- messages ---------------------------------------------------------------------------------------
def _plain(text: object, limit: int = 80) -> str:
    """A user-supplied name on one line: control characters become '?', a long one is cut."""
    s = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", "?", str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _q(text: object) -> str:
    return f"'{_plain(text)}'"


def _reason(exc: BaseException) -> str:
    """A parser's error as a short clause for a one-line message."""
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    unit, scale = next((u, s) for u, s in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)) if n >= s)
    return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"


def _too_big(filename: str, size: int, limit: int, smaller: str) -> BadInput:
    return BadInput(
        f"{_q(filename)} is {_size(size)}, over the {_size(limit)} upload limit. Upload a smaller file "
        f"({smaller}), or raise the limit with MODELDECK_MAX_UPLOAD_MB."
    )


def _too_many_rows(filename: str, limit: int) -> BadInput:
    return BadInput(
        f"{_q(filename)} has more than {limit:,} rows, the row limit. Upload a sample of the rows, "
        "or raise the limit with MODELDECK_MAX_ROWS."
    )


def _too_large_unpacked(filename: str, size: str, limit: int) -> BadInput:
    return BadInput(
        f"{_q(filename)} unpacks to {size}, over the {_size(limit)} limit for unpacked data. Upload a "
        "smaller file, or raise the limit with MODELDECK_MAX_UNCOMPRESSED_MB."
    )


def _too_many_files(filename: str, limit: int) -> BadInput:
    return BadInput(
        f"{_q(filename)} has more than {limit:,} entries, the limit for one archive. Split it into smaller "
        "archives, or raise the limit with MODELDECK_MAX_FILES."
    )


# -- sources ----------------------------------------------------------------------------------------
class _Source:
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
                raise BadInput(f"No file at {_q(source)}. Give the path to the file to upload.") from None
            if not stat.S_ISREG(info.st_mode):
                raise BadInput(f"{_q(source)} is not a regular file. Give the path to the file to upload.")
            self.path, self.size = source, info.st_size
        else:
            self.data, self.size = bytes(source), len(source)
        if self.size > limits.max_upload_bytes:
            raise _too_big(filename, self.size, limits.max_upload_bytes, smaller)

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
            for start in range(0, len(self.data), _CHUNK):
                yield self.data[start : start + _CHUNK]
            return
        with self.open() as f:
            while chunk := f.read(_CHUNK):
                yield chunk

    def arrow(self) -> Any:
        """A fresh input for pyarrow: the path (pyarrow streams it) or a zero-copy buffer."""
        return pa.BufferReader(self.data) if self.data is not None else str(self.path)


# -- column names -----------------------------------------------------------------------------------
def _next_free(base: str, used: set[str]) -> str:
    name, n = base, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


def _unique_columns(raw: Iterable[object]) -> tuple[list[str], list[str]]:
    """Names that are all present and unique, and notes on what changed.

    Names as written win over made-up ones: a second `a` becomes `a_2`, and a blank fourth name
    becomes `column_4`, each skipping any name already taken."""
    names = ["" if r is None else str(r) for r in raw]
    blank = [not n.strip() for n in names]
    final: list[str | None] = [None] * len(names)
    used: set[str] = set()
    for i, name in enumerate(names):  # 1. the first of each name keeps it
        if not blank[i] and name not in used:
            final[i] = name
            used.add(name)
    for i, name in enumerate(names):  # 2. later copies are numbered
        if not blank[i] and final[i] is None:
            final[i] = _next_free(name, used)
    for i in range(len(names)):  # 3. blanks are named for their position
        if blank[i]:
            final[i] = _next_free(f"column_{i + 1}", used)
    result = [n for n in final if n is not None]

    notes = []
    counts = Counter(n for n, b in zip(names, blank, strict=True) if not b)
    dup = [i for i, n in enumerate(names) if not blank[i] and counts[n] > 1]
    if dup:
        before, after = ", ".join(_plain(names[i], 40) for i in dup), ", ".join(_plain(result[i], 40) for i in dup)
        notes.append(f"Column names made unique: {before} → {after}")
    blanks = [i for i in range(len(names)) if blank[i]]
    if len(blanks) == 1:
        notes.append(f"Blank column name {blanks[0] + 1} became {result[blanks[0]]}")
    elif blanks:
        where, became = ", ".join(str(i + 1) for i in blanks), ", ".join(result[i] for i in blanks)
        notes.append(f"Blank column names {where} became {became}")
    return result, notes


# -- text files: what they are, how they are encoded, how they are delimited ------------------------
_MAGIC = (  # signatures of files that are often uploaded by mistake
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook needs the .xlsx extension)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"PAR1", "a Parquet file (it needs the .parquet extension)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel 97-2003 workbook (save it as .xlsx or CSV)"),
    (b"SQLite format 3", "a SQLite database"),
)
_BOMS = (  # UTF-32 first: its little-endian mark starts like UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Legacy encodings worth guessing between, with a preference when the evidence is tied: the dashboard
# speaks English and Simplified Chinese, so Western and GBK text come first in their families.
_SINGLE_BYTE = ("cp1252", "cp1251")
_MULTI_BYTE = ("gb18030", "big5", "cp932", "cp949")
_DISPLAY = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with a byte-order mark",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 LE (no byte-order mark)",
    "utf-16-be": "UTF-16 BE (no byte-order mark)",
    "utf-32": "UTF-32",
    "latin-1": "Latin-1",
    "cp1252": "Windows-1252",
    "cp1251": "Windows-1251 (Cyrillic)",
    "gbk": "GBK",
    "gb18030": "GB18030",
    "big5": "Big5",
    "cp932": "Shift-JIS",
    "cp949": "EUC-KR",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_HIGH_LINE = re.compile(rb"[^\n]*[\x80-\xff][^\n]*")
_C1 = re.compile(rb"[\x80-\x9f]")
_DELIMITERS = (",", "\t", ";", "|")


@dataclass(frozen=True)
class _Shape:
    """What one fast pass over the raw bytes tells before parsing."""

    line_breaks: int  # no file has more records than this plus one (\n, and every \r where there are any)
    has_quote: bool  # without a quote no field can hold a newline, so blocks can be split at any newline


def _shape(src: _Source) -> _Shape:
    breaks, quote = 0, False
    for chunk in [src.data] if src.data is not None else src.chunks():
        breaks += chunk.count(b"\n")
        if b"\r" in chunk:  # a lone \r (old Mac files) ends a line too; a CRLF then counts twice
            breaks += chunk.count(b"\r")
        quote = quote or b'"' in chunk
    return _Shape(breaks, quote)


def _first_bad_utf8(src: _Source) -> int:
    """The offset of the first byte that is not UTF-8 (0 if none is found)."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    for chunk in src.chunks():
        pending = len(decoder.getstate()[0])  # the start of a character cut by the last chunk
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return max(0, offset - pending + exc.start)
        offset += len(chunk)
    return 0


def _decodes(src: _Source, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for chunk in src.chunks():
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _not_text(filename: str, kind: str | None = None) -> BadInput:
    what = f", not {kind}" if kind else ""
    return BadInput(
        f"{_q(filename)} is not a text file. Upload a CSV file (comma-separated text with a header row){what}."
    )


def _utf16_without_bom(head: bytes) -> str | None:
    """Plain-ASCII-range UTF-16 text has a NUL in every other byte."""
    sample = head[: 8192 - 8192 % 2]
    if len(sample) < 4:
        return None
    odd, even = sample[1::2], sample[0::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _guess_legacy(src: _Source, head: bytes, first_bad: int) -> list[str]:
    """Legacy encodings to try, most likely first (charset-normalizer ranks, our priors break ties)."""
    around = src.read_at(max(0, first_bad - 16384), 32768)
    sample = b"\n".join(m.group() for m in _HIGH_LINE.finditer(head + b"\n" + around))[:32768]
    matches = from_bytes(sample, steps=1, chunk_size=max(1, len(sample)), cp_isolation=[*_SINGLE_BYTE, *_MULTI_BYTE])
    ranked = [(m.encoding, round(m.chaos, 2), round(-m.coherence, 2)) for m in matches]
    # Isolated high bytes (é, ñ between ASCII letters) mean a single-byte encoding; pairs mean CJK.
    runs = [len(r) for r in _HIGH_RUN.findall(sample)]
    odd_share = sum(n for n in runs if n % 2) / max(1, sum(runs))
    prior = [*_SINGLE_BYTE, *_MULTI_BYTE] if odd_share > 0.5 else [*_MULTI_BYTE, *_SINGLE_BYTE]
    ranked.sort(key=lambda r: (r[1], r[2], prior.index(r[0]) if r[0] in prior else len(prior)))
    order = [r[0] for r in ranked] + [e for e in ("cp1252",) if e not in (r[0] for r in ranked)]
    expanded: list[str] = []
    for enc in order:
        if enc == "gb18030":
            expanded += ["gbk", "gb18030"]  # say GBK when the narrower encoding fits
        elif enc == "cp1252":
            has_c1 = any(_C1.search(chunk) for chunk in src.chunks())
            expanded += ["cp1252"] if has_c1 else ["latin-1"]  # identical where 0x80-0x9F are unused
        else:
            expanded.append(enc)
    return expanded


def _marked_encoding(head: bytes, filename: str) -> str | None:
    """The encoding a file announces (a byte-order mark, or UTF-16's NULs); refuses binary files."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise _not_text(filename, kind)
    if b"\x00" in head[:8192]:
        encoding16 = _utf16_without_bom(head)
        if encoding16 is None:
            raise _not_text(filename)
        return encoding16
    return None


def _legacy_encoding(src: _Source, head: bytes) -> str:
    """The first guess that decodes the whole file; Latin-1 last, since it decodes any bytes."""
    for encoding in _guess_legacy(src, head, _first_bad_utf8(src)):
        if _decodes(src, encoding):
            return encoding
    return "latin-1"


def _detect_encoding(src: _Source, head: bytes, filename: str) -> str:
    """The codec for a text upload: the one it announces, else UTF-8 if it decodes, else a careful guess.

    Only the head is checked for UTF-8 here; pyarrow checks the rest as it parses, and a failure
    there comes back to `_legacy_encoding`."""
    marked = _marked_encoding(head, filename)
    if marked is not None:
        if marked != "utf-8-sig" and not _decodes(src, marked):
            raise _not_valid(filename, marked)
        return marked
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=src.size <= len(head))
    except UnicodeDecodeError:
        return _legacy_encoding(src, head)
    return "utf-8"  # preferred whenever it decodes: legacy guesses are only guesses


def _not_valid(filename: str, encoding: str) -> BadInput:
    name = _DISPLAY[encoding].split(" (")[0].removesuffix(" with a byte-order mark")
    return BadInput(f"{_q(filename)} is not valid {name} text. Save it again as UTF-8 CSV.")


def _sniff_delimiter(text: str, filename: str, complete: bool) -> str:
    """The delimiter that splits the first records most consistently into two or more fields."""
    preferred = ("\t", ",", ";", "|") if filename.lower().endswith(".tsv") else _DELIMITERS
    best, best_score = ",", (0.0, 0, 0)
    for rank, d in enumerate(preferred):
        records = []
        try:
            for record in csv.reader(io.StringIO(text[:262144]), delimiter=d):
                if record:
                    records.append(len(record))
                if len(records) > 200:
                    break
        except csv.Error:
            continue
        if len(records) > 1 and not complete:
            records.pop()  # the sample may end mid-record
        if not records or records[0] < 2:
            continue
        score = (sum(n == records[0] for n in records) / len(records), records[0], -rank)
        if score > best_score:
            best, best_score = d, score
    return best


def _delimiter_name(d: str) -> str:
    return "tab" if d == "\t" else f"'{d}'"


# -- CSV, TSV, TXT ----------------------------------------------------------------------------------
def _find_ragged_row(src: _Source, encoding: str, delimiter: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first record whose width differs from the header's."""
    with src.open() as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=delimiter)
        width, line = None, 1
        try:
            for record in reader:
                if record:  # blank lines are skipped, as pyarrow does
                    if width is None:
                        width = len(record)
                    elif len(record) != width:
                        return line, len(record), width
                line = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError):
            return None
    return None


def _fields(n: int) -> str:
    return "1 field" if n == 1 else f"{n} fields"


def _csv_error(src: _Source, exc: Exception, encoding: str, delimiter: str, filename: str) -> BadInput:
    if "Expected" in str(exc) and "columns" in str(exc):
        found = _find_ragged_row(src, encoding, delimiter)
        if found is not None:
            line, got, want = found
            return BadInput(
                f"Row {line} of {_q(filename)} has {_fields(got)} but the header has {want}. Fix that row "
                f"(a missing or extra delimiter, or an unquoted {_delimiter_name(delimiter)})."
            )
    return BadInput(f"{_q(filename)} could not be read as CSV ({_reason(exc)}). Check the delimiter and quoting.")


def _arrow_encoding(encoding: str) -> str:
    return "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding  # pyarrow skips a UTF-8 BOM itself


def _over_row_limit(src: _Source, encoding: str, parse: Any, limit: int) -> bool:
    """Count records exactly, streaming one batch at a time and stopping as soon as the limit is passed."""
    read = pa_csv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=_BLOCK, autogenerate_column_names=True)
    convert = pa_csv.ConvertOptions(include_columns=["f0"], column_types={"f0": pa.string()})
    records = 0
    with pa_csv.open_csv(src.arrow(), read_options=read, parse_options=parse, convert_options=convert) as reader:
        for batch in reader:
            records += batch.num_rows
            if records - 1 > limit:  # the header is the first record
                return True
    return False


class _NotUtf8(Exception):
    """pyarrow found a byte that is not UTF-8 past the head that was checked."""


def _parse_csv(src: _Source, encoding: str, delimiter: str, shape: _Shape, limits: Limits, filename: str) -> Any:
    """The pyarrow table of a text file, with dates and times left as text."""
    # 1. Bound the rows by the line breaks; count exactly (streaming, stopping early) only past the limit.
    # 2. Peek at the first block's inferred types: dates and times stay text, as pandas leaves them.
    # 3. Read in parallel blocks; pyarrow promotes a column's type when a later block needs it.
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=shape.has_quote)
    peek = pa_csv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=_HEAD)
    read = pa_csv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=_BLOCK)
    try:
        if shape.line_breaks > limits.max_rows and _over_row_limit(src, encoding, parse, limits.max_rows):
            raise _too_many_rows(filename, limits.max_rows)
        with pa_csv.open_csv(src.arrow(), read_options=peek, parse_options=parse) as reader:
            temporal = [f.name for f in reader.schema if pa.types.is_temporal(f.type)]
        convert = pa_csv.ConvertOptions(strings_can_be_null=True, column_types=dict.fromkeys(temporal, pa.string()))
        table = pa_csv.read_csv(src.arrow(), read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
        if "invalid UTF8" in str(exc):
            raise _NotUtf8 from None
        raise _csv_error(src, exc, encoding, delimiter, filename) from None
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        raise _NotUtf8  # pyarrow infers binary, not string, for a column with bytes that are not UTF-8
    for i, f in enumerate(table.schema):  # a column whose dates only start after the first block
        if pa.types.is_temporal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def _read_csv(src: _Source, filename: str, limits: Limits) -> TableRead:
    head = src.read_at(0, _HEAD)
    encoding = _detect_encoding(src, head, filename)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=src.size <= len(head))
    if not text.strip() and src.size <= len(head):
        raise BadInput(f"{_q(filename)} is empty. Upload a CSV file with a header row and at least one data row.")
    if len(_CONTROL.findall(text[:65536])) > 0.01 * len(text[:65536]):
        raise _not_text(filename)
    delimiter = _sniff_delimiter(text, filename, complete=src.size <= len(head))
    shape = _shape(src)
    try:
        table = _parse_csv(src, encoding, delimiter, shape, limits, filename)
    except _NotUtf8:
        if encoding != "utf-8":
            raise _not_valid(filename, encoding) from None
        encoding = _legacy_encoding(src, head)
        table = _parse_csv(src, encoding, delimiter, shape, limits, filename)

    if all(not name.strip() for name in table.column_names):
        raise BadInput(f"{_q(filename)} has no header row. Add a first line with the column names.")
    if table.num_rows == 0:
        raise BadInput(f"{_q(filename)} has a header but no data rows. Upload a file with at least one row of data.")
    if table.num_rows > limits.max_rows:  # unreachable by the bound above; kept as the contract
        raise _too_many_rows(filename, limits.max_rows)
    names, renames = _unique_columns(table.column_names)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    frame.columns = names
    notes = [f"Detected encoding {_DISPLAY.get(encoding, encoding)}"] if encoding not in ("utf-8", "utf-8-sig") else []
    notes += [f"Detected delimiter {_delimiter_name(delimiter)}"] if delimiter != "," else []
    return TableRead(frame=frame, notes=notes + renames, encoding=encoding, delimiter=delimiter)


# -- Parquet ----------------------------------------------------------------------------------------
def _read_parquet(src: _Source, filename: str, limits: Limits) -> TableRead:
    def unreadable(exc: Exception) -> BadInput:
        return BadInput(
            f"{_q(filename)} is not a readable Parquet file ({_reason(exc)}). Export it again "
            "(e.g. with pandas' DataFrame.to_parquet)."
        )

    try:
        parquet = pq.ParquetFile(src.arrow())
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise unreadable(exc) from None
    with parquet:
        meta = parquet.metadata  # the footer: rows and sizes are known before any data is read
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if meta.num_rows > limits.max_rows:
            raise _too_many_rows(filename, limits.max_rows)
        if unpacked > limits.max_uncompressed_bytes:
            raise _too_large_unpacked(filename, _size(unpacked), limits.max_uncompressed_bytes)
        if meta.num_rows == 0 or meta.num_columns == 0:
            raise BadInput(f"{_q(filename)} has no data rows. Upload a file with at least one row of data.")
        try:
            frame = parquet.read().to_pandas(split_blocks=True, self_destruct=True)
        except Exception as exc:  # a damaged page, or damaged pandas metadata (KeyError, TypeError …)
            raise unreadable(exc) from None
    notes = []
    if not isinstance(frame.index, pd.RangeIndex):  # a pandas index saved with the data is data too
        frame = frame.reset_index()
        notes.append("The saved index became a column")
    names, more = _unique_columns(frame.columns)
    frame.columns = names
    return TableRead(frame=frame, notes=notes + more)


# -- ZIP archives: checked before they are unpacked ------------------------------------------------
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # its ZIP64 version, just before the ZIP64 locator
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # one central directory entry
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "Deflate64"}


def _count_entries(fp: IO[bytes], stop_after: int) -> int:
    """Entries in the central directory, counted without parsing them (zipfile would hold them all).

    Stops once `stop_after` is passed; returns 0 where the directory is not where it should be and
    leaves the diagnosis to zipfile."""
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    tail_at = max(0, size - _EOCD.size - 65535)
    fp.seek(tail_at)
    tail = fp.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return 0
    _, _, _, _, _, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    cd_end = tail_at + at
    if at >= 20 + _EOCD64.size and tail[at - 20 : at - 16] == b"PK\x06\x07":  # ZIP64
        record = tail[at - 20 - _EOCD64.size : at - 20]
        if record[:4] == b"PK\x06\x06":
            cd_size = _EOCD64.unpack(record)[8]
            cd_end = tail_at + at - 20 - _EOCD64.size
    fp.seek(max(0, cd_end - cd_size))
    count, remaining = 0, cd_size
    while remaining >= _CENTRAL.size and count <= stop_after:
        entry = fp.read(_CENTRAL.size)
        if len(entry) < _CENTRAL.size or entry[:4] != b"PK\x01\x02":
            break
        fields = _CENTRAL.unpack(entry)
        extra = fields[10] + fields[11] + fields[12]  # name, extra field and comment lengths
        fp.seek(extra, io.SEEK_CUR)
        count += 1
        remaining -= _CENTRAL.size + extra
    return count


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its maker meant it: many tools write UTF-8 without setting the flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _safe_path(raw: str, archive: str) -> str:
    """A relative path inside the archive's folder, or a refusal."""
    name = raw.replace("\\", "/")  # a backslash is a separator to Windows tools that unpack it
    how = "Re-create the archive from inside its folder (e.g. `cd folder && zip -r ../data.zip .`)."
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BadInput(f"{_q(archive)} has an entry with an absolute path, {_q(raw)}. {how}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadInput(f"{_q(archive)} has an entry that points outside its folder, {_q(raw)}. {how}")
    return posixpath.join(*parts) if parts else ""


def _is_junk(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == "__MACOSX" or parts[-1] in _JUNK_NAMES or parts[-1].startswith("._")


def _checked_entries(zf: zipfile.ZipFile, archive: str, limits: Limits) -> list[tuple[str, zipfile.ZipInfo]]:
    """The regular files worth reading, after refusing anything unsafe in any entry."""
    files, declared = [], 0
    for info in zf.infolist():
        raw = _entry_name(info)
        path = _safe_path(raw, archive)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise BadInput(
                f"{_q(archive)} has a symbolic link, {_q(raw)}; links are not accepted. Re-create the "
                "archive with the files themselves (e.g. `zip -r` without `--symlinks`)."
            )
        if info.is_dir() or kind == stat.S_IFDIR or not path:
            continue
        if kind not in (0, stat.S_IFREG):
            raise BadInput(
                f"{_q(archive)} has an entry that is not a regular file, {_q(raw)}. Re-create the archive "
                "with regular files only."
            )
        if info.flag_bits & 0x1:
            raise BadInput(f"{_q(archive)} is password-protected. Re-create the archive without a password.")
        if info.compress_type not in _METHODS:
            # bzip2 and LZMA members are unpacked without an output bound by zipfile: a bomb's first
            # read could fill the memory before any count is taken.
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise BadInput(
                f"{_q(archive)} uses {method} compression, which is not accepted. Re-create the archive "
                "with standard (deflate) compression."
            )
        if _is_junk(path):
            continue
        declared += info.file_size
        files.append((path, info))
    if declared > limits.max_uncompressed_bytes:
        raise _too_large_unpacked(archive, _size(declared), limits.max_uncompressed_bytes)
    return files


def _damaged(archive: str, exc: BaseException) -> BadInput:
    return BadInput(f"{_q(archive)} is not a readable ZIP archive ({_reason(exc)}). Re-create it and upload it again.")


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError)


def _open_zip(
    fp: IO[bytes], archive: str, limits: Limits, damaged: Callable[[str, BaseException], BadInput] = _damaged
) -> zipfile.ZipFile:
    """A ZipFile, once its directory is known to hold no more entries than the limit."""
    if _count_entries(fp, limits.max_files) > limits.max_files:
        raise _too_many_files(archive, limits.max_files)
    fp.seek(0)
    try:
        zf = zipfile.ZipFile(fp)
    except _ZIP_ERRORS as exc:
        raise damaged(archive, exc) from None
    if len(zf.infolist()) > limits.max_files:  # a directory that lied to the count above
        zf.close()
        raise _too_many_files(archive, limits.max_files)
    return zf


class _Budget:
    """Bytes unpacked so far from one archive, across all its members."""

    def __init__(self, archive: str, limits: Limits) -> None:
        self.archive, self.limit, self.used = archive, limits.max_uncompressed_bytes, 0

    def read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
        """Unpack a member in chunks, refusing as soon as it outgrows its declared size or the budget.

        zipfile caps deflate output per call and stops at the declared size (a lying member then fails
        its CRC check), so on CPython the budget is what stops members read more than once; the checks
        keep the bound independent of zipfile's behaviour."""
        if zf.fp is None:  # a bug in the caller, not a problem with the upload
            raise RuntimeError("ZipMember.read() was called after its iter_zip loop ended; read it inside the loop.")
        parts, got = [], 0
        try:
            with zf.open(info) as member:
                while chunk := member.read(_CHUNK):
                    got += len(chunk)
                    self.used += len(chunk)
                    if self.used > self.limit:
                        raise _too_large_unpacked(self.archive, f"more than {_size(self.limit)}", self.limit)
                    if got > info.file_size:
                        raise BadInput(
                            f"{_q(self.archive)} is damaged: {_q(name)} unpacks to more than the "
                            f"{_size(info.file_size)} it declares. Re-create the archive and upload it again."
                        )
                    parts.append(chunk)
        except (*_ZIP_ERRORS, RuntimeError) as exc:
            raise _damaged(self.archive, exc) from None
        return b"".join(parts)


def iter_zip(source: bytes | Path, limits: Limits = Limits(), *, filename: str | None = None) -> Iterator[ZipMember]:
    """The regular files of a ZIP archive, each unpacked only when read.

    The whole archive is checked before the first member is yielded: its size, its entry count (from
    the directory, before zipfile parses it), every path (no `..`, absolute paths or drive letters),
    no links, devices, passwords or exotic compression, and the declared unpacked total. Reading then
    counts the bytes actually unpacked, so a header that lies cannot get past the limit. Directories
    and macOS/Windows junk (`__MACOSX/`, `.DS_Store`, `._*`, `Thumbs.db`) are skipped.

    Raises:
        BadInput: the archive is too big, damaged, or unsafe; the message names the entry.
    """
    archive = filename or (source.name if isinstance(source, Path) else "upload.zip")
    src = _Source(source, archive, limits, smaller="fewer or smaller files")
    with src.open() as fp, _open_zip(fp, archive, limits) as zf:
        budget = _Budget(archive, limits)
        for path, info in _checked_entries(zf, archive, limits):
            yield ZipMember(name=path, size=info.file_size, _read=functools.partial(budget.read, zf, info, path))


# -- Excel ------------------------------------------------------------------------------------------
def _not_a_workbook(filename: str, exc: BaseException) -> BadInput:
    return BadInput(
        f"{_q(filename)} is not a readable Excel workbook ({_reason(exc)}). Open it in Excel and save it "
        "again as .xlsx."
    )


def _read_excel(src: _Source, filename: str, limits: Limits, sheet: str | None) -> TableRead:
    import openpyxl  # only Excel uploads pay for importing it

    with src.open() as fp:
        with _open_zip(fp, filename, limits, _not_a_workbook) as zf:  # a workbook is a ZIP archive
            _checked_entries(zf, filename, limits)
        fp.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it skips
                book = openpyxl.load_workbook(fp, read_only=True, data_only=True, keep_links=False)
        except Exception as exc:  # openpyxl raises KeyError, ValueError, BadZipFile … on a damaged file
            raise _not_a_workbook(filename, exc) from None
        try:
            return _read_sheet(book, filename, limits, sheet)
        finally:
            book.close()


def _read_sheet(book: Any, filename: str, limits: Limits, sheet: str | None) -> TableRead:
    sheets = list(book.sheetnames)
    listed = ", ".join(_plain(s) for s in sheets)
    if sheet is not None and sheet not in sheets:
        raise BadInput(f"{_q(filename)} has no sheet {_q(sheet)}. Expected one of: {listed}. Pick one of those.")
    name = sheet if sheet is not None else sheets[0]
    where = f"Sheet {_q(name)} of {_q(filename)}"
    ws = book[name]
    if not hasattr(ws, "iter_rows"):
        raise BadInput(f"{where} is a chart, not a table. Pick a sheet with data; the sheets are: {listed}.")

    header: list[Any] | None = None
    rows: list[tuple[Any, ...]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row in ws.iter_rows(values_only=True):
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
                    continue  # blank rows, before the header or between data rows
                if header is None:
                    header = list(row)
                    continue
                rows.append(row)
                if len(rows) > limits.max_rows:
                    raise _too_many_rows(filename, limits.max_rows)
    except BadInput:
        raise
    except Exception as exc:
        raise _not_a_workbook(filename, exc) from None
    if header is None:
        raise BadInput(f"{where} is empty. Pick a sheet with a header row and data, or fill this one.")
    if not rows:
        raise BadInput(f"{where} has a header but no data rows. Upload a sheet with at least one row of data.")

    def last_value(values: Iterable[Any]) -> int:
        return max((i + 1 for i, v in enumerate(values) if v is not None), default=0)

    width = max(last_value(header), *(last_value(r) for r in rows))
    pad = [None] * width
    frame = pd.DataFrame.from_records([(tuple(r) + tuple(pad))[:width] for r in rows])
    names, notes = _unique_columns((list(header) + pad)[:width])
    frame.columns = names
    if sheet is None and len(sheets) > 1:
        others = ", ".join(_plain(s) for s in sheets[1:])
        notes.insert(0, f"Read the first sheet, {_q(name)}; the workbook also has: {others}")
    return TableRead(frame=frame, notes=notes, sheets=sheets)


# -- JSON Lines -------------------------------------------------------------------------------------
_EXAMPLE = '{"age": 31, "plan": "basic"}'


def _read_jsonl(src: _Source, filename: str, limits: Limits) -> TableRead:
    records: list[dict[str, Any]] = []
    nested: set[str] = set()
    with src.open() as fp:
        for number, raw in enumerate(fp, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            where = f"Line {number} of {_q(filename)}"
            try:
                value = json.loads(raw.decode("utf-8").rstrip())  # columns count on this line alone
            except UnicodeDecodeError:
                raise BadInput(f"{where} is not UTF-8 text. Save the file as UTF-8.") from None
            except json.JSONDecodeError as exc:
                raise BadInput(
                    f"{where} is not valid JSON ({exc.msg} at column {exc.colno}). Fix that line: each line "
                    f"must be one JSON object, like {_EXAMPLE}."
                ) from None
            except ValueError as exc:  # e.g. an integer with more digits than Python converts
                raise BadInput(f"{where} is not valid JSON ({_reason(exc)}). Fix that line.") from None
            except RecursionError:
                raise BadInput(f"{where} is nested too deeply. Each line must be one flat JSON object.") from None
            if not isinstance(value, dict):
                kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")
                kind = "null" if value is None else kind
                raise BadInput(
                    f"{where} is {kind}, not a JSON object. Each line must be one JSON object, like {_EXAMPLE}."
                )
            for key, v in value.items():
                if isinstance(v, dict | list):
                    value[key] = json.dumps(v, ensure_ascii=False)
                    nested.add(key)
            records.append(value)
            if len(records) > limits.max_rows:
                raise _too_many_rows(filename, limits.max_rows)
    if not records:
        raise BadInput(f"{_q(filename)} is empty. Upload a JSON Lines file with one JSON object per line.")
    frame = pd.DataFrame.from_records(records)
    names, notes = _unique_columns(frame.columns)
    frame.columns = names
    if nested:
        notes.append(f"Nested values were kept as JSON text in: {', '.join(_plain(k, 40) for k in sorted(nested))}")
    return TableRead(frame=frame, notes=notes)


# -- the entry point --------------------------------------------------------------------------------
_TEXT = (".csv", ".tsv", ".txt", ".tab")
_EXCEL = (".xlsx", ".xlsm")
_PARQUET = (".parquet", ".pq")
_JSONL = (".jsonl", ".ndjson")
_KNOWN = ", ".join((*_TEXT, *_EXCEL, *_PARQUET, *_JSONL))
_WRONG_KIND = {
    ".xls": "an old Excel 97-2003 workbook. Open it in Excel and save it as .xlsx or CSV",
    ".json": "JSON, and tables are read from JSON Lines. Save it with one object per line as .jsonl",
    ".zip": "an archive. Upload the table inside it",
}


def read_table(
    source: bytes | Path, filename: str, *, sheet: str | None = None, limits: Limits = Limits()
) -> TableRead:
    """Read an uploaded table, choosing the reader by the file's extension.

    Args:
        source: the upload's bytes, or the path of a file on disk (streamed, never read whole).
        filename: the name the user gave the file; its extension picks the reader, and messages quote it.
        sheet: for Excel, the sheet to read (default: the first).
        limits: what the upload may cost; `Limits.from_env()` for the operator's settings.

    Returns:
        The frame, with unique non-blank column names, and notes on what was detected or renamed.

    Raises:
        BadInput: the file cannot be used as given; the one-line message says why and how to fix it.
    """
    suffix = PurePath(filename).suffix.lower()
    if suffix in _WRONG_KIND:
        raise BadInput(f"{_q(filename)} is {_WRONG_KIND[suffix]}.")
    if suffix not in (*_TEXT, *_EXCEL, *_PARQUET, *_JSONL):
        raise BadInput(f"{_q(filename)} is not a kind of table that can be read. Upload one of: {_KNOWN}.")
    if sheet is not None and suffix not in _EXCEL:
        raise BadInput(f"{_q(filename)} is not an Excel workbook, so it has no sheets. Leave the sheet unset.")
    src = _Source(source, filename, limits)
    if suffix in _EXCEL:
        return _read_excel(src, filename, limits, sheet)
    if suffix in _PARQUET:
        return _read_parquet(src, filename, limits)
    if suffix in _JSONL:
        return _read_jsonl(src, filename, limits)
    return _read_csv(src, filename, limits)
