"""Table readers: CSV/TSV/TXT, Excel, Parquet and JSON Lines, each to a frame with unique column names."""

from __future__ import annotations

import codecs
import json
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from backend.data.ingest.archives import checked_entries, open_zip
from backend.data.ingest.encodings import (
    CONTROL,
    Shape,
    delimiter_name,
    detect_encoding,
    fields_text,
    find_ragged_row,
    first_pass,
    legacy_encoding,
    not_text,
    not_valid,
    short_name,
    sniff_delimiter,
)
from backend.data.ingest.limits import (
    BLOCK,
    HEAD,
    Limits,
    Source,
    plain,
    quoted,
    reason,
    size_text,
    too_large_unpacked,
    too_many_rows,
)
from backend.errors import BadInput
from backend.i18n import Message


@dataclass(frozen=True)
class TableRead:
    """A table as read, with what the reader noticed or changed on the way (shown to the user)."""

    frame: pd.DataFrame
    notes: list[Message] = field(default_factory=list)  # e.g. "Detected encoding GBK", in the reader's language
    sheets: list[str] = field(default_factory=list)  # Excel: every sheet name, in workbook order
    encoding: str | None = None  # text files: the Python codec used, e.g. "utf-8", "utf-16", "gbk"
    delimiter: str | None = None  # text files: one of , ; \t |


# -- column names -----------------------------------------------------------------------------------
def _next_free(base: str, used: set[str]) -> str:
    name, n = base, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


def _unique_columns(raw: Iterable[object]) -> tuple[list[str], list[Message]]:
    """Names that are all present and unique, and notes on what changed.

    Names as written win over made-up ones: a second `a` becomes `a_2`, and a blank fourth name
    becomes `column_4`, each skipping any name already taken.
    """
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

    notes: list[Message] = []
    counts = Counter(n for n, b in zip(names, blank, strict=True) if not b)
    dup = [i for i, n in enumerate(names) if not blank[i] and counts[n] > 1]
    if dup:
        before, after = ", ".join(plain(names[i], 40) for i in dup), ", ".join(plain(result[i], 40) for i in dup)
        notes.append(Message.of("note.unique_columns", before=before, after=after))
    blanks = [i for i in range(len(names)) if blank[i]]
    if len(blanks) == 1:
        notes.append(Message.of("note.blank_column", position=blanks[0] + 1, name=result[blanks[0]]))
    elif blanks:
        where, became = ", ".join(str(i + 1) for i in blanks), ", ".join(result[i] for i in blanks)
        notes.append(Message.of("note.blank_columns", positions=where, names=became))
    return result, notes


def _csv_error(src: Source, exc: Exception, encoding: str, delimiter: str, filename: str) -> BadInput:
    if "Expected" in str(exc) and "columns" in str(exc):
        found = find_ragged_row(src, encoding, delimiter)
        if found is not None:
            line, got, want = found
            return BadInput(
                "error.ingest.ragged_row",
                line=line,
                filename=quoted(filename),
                fields=fields_text(got),
                want=want,
                delimiter_name=delimiter_name(delimiter),
            )
    return BadInput("error.ingest.bad_csv", filename=quoted(filename), reason=reason(exc))


def _arrow_encoding(encoding: str) -> str:
    return "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding  # pyarrow skips a UTF-8 BOM itself


def _over_row_limit(src: Source, encoding: str, parse: Any, limit: int) -> bool:
    """Count records exactly, streaming one batch at a time and stopping as soon as the limit is passed."""
    read = pa_csv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=BLOCK, autogenerate_column_names=True)
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


def _parse_csv(src: Source, encoding: str, delimiter: str, shape: Shape, limits: Limits, filename: str) -> Any:
    """The pyarrow table of a text file, with dates and times left as text."""
    # 1. Bound the rows by the line breaks; count exactly (streaming, stopping early) only past the limit.
    # 2. Peek at the first block's inferred types: dates and times stay text, as pandas leaves them.
    # 3. Read in parallel blocks; pyarrow promotes a column's type when a later block needs it.
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=shape.has_quote)
    peek = pa_csv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=HEAD)
    read = pa_csv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=BLOCK)
    try:
        if shape.line_breaks > limits.max_rows and _over_row_limit(src, encoding, parse, limits.max_rows):
            raise too_many_rows(filename, limits.max_rows)
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


def _read_csv(src: Source, filename: str, limits: Limits) -> TableRead:
    head = src.read_at(0, HEAD)
    encoding = detect_encoding(src, head, filename)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=src.size <= len(head))
    if not text.strip() and src.size <= len(head):
        raise BadInput("error.ingest.empty_csv", filename=quoted(filename))
    if len(CONTROL.findall(text[:65536])) > 0.01 * len(text[:65536]):
        raise not_text(filename)
    delimiter = sniff_delimiter(text, filename, complete=src.size <= len(head))
    shape = first_pass(src)
    try:
        table = _parse_csv(src, encoding, delimiter, shape, limits, filename)
    except _NotUtf8:
        if encoding != "utf-8":
            raise not_valid(filename, encoding) from None
        encoding = legacy_encoding(src, head)
        table = _parse_csv(src, encoding, delimiter, shape, limits, filename)

    if all(not name.strip() for name in table.column_names):
        raise BadInput("error.ingest.no_header", filename=quoted(filename))
    if table.num_rows == 0:
        raise BadInput("error.ingest.no_data_rows", filename=quoted(filename))
    if table.num_rows > limits.max_rows:  # unreachable by the bound above; kept as the contract
        raise too_many_rows(filename, limits.max_rows)
    names, renames = _unique_columns(table.column_names)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # the parser's blocks, kept for reuse, would count in the upload's peak
    frame.columns = names
    notes = (
        [Message.of("note.encoding", encoding=short_name(encoding))] if encoding not in ("utf-8", "utf-8-sig") else []
    )
    if delimiter != ",":
        notes.append(
            Message.of("note.tab") if delimiter == "\t" else Message.of("note.delimiter", delimiter=f"'{delimiter}'")
        )
    return TableRead(frame=frame, notes=notes + renames, encoding=encoding, delimiter=delimiter)


# -- Parquet ----------------------------------------------------------------------------------------
def _read_parquet(src: Source, filename: str, limits: Limits) -> TableRead:
    def unreadable(exc: Exception) -> BadInput:
        return BadInput("error.ingest.bad_parquet", filename=quoted(filename), reason=reason(exc))

    try:
        parquet = pq.ParquetFile(src.arrow())
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise unreadable(exc) from None
    with parquet:
        meta = parquet.metadata  # the footer: rows and sizes are known before any data is read
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if meta.num_rows > limits.max_rows:
            raise too_many_rows(filename, limits.max_rows)
        if unpacked > limits.max_uncompressed_bytes:
            raise too_large_unpacked(filename, size_text(unpacked), limits.max_uncompressed_bytes)
        if meta.num_rows == 0 or meta.num_columns == 0:
            raise BadInput("error.ingest.no_rows", filename=quoted(filename))
        try:
            frame = parquet.read().to_pandas(split_blocks=True, self_destruct=True)
        except Exception as exc:  # a damaged page, or damaged pandas metadata (KeyError, TypeError …)
            raise unreadable(exc) from None
    notes: list[Message] = []
    if not isinstance(frame.index, pd.RangeIndex):  # a pandas index saved with the data is data too
        frame = frame.reset_index()
        notes.append(Message.of("note.index_column"))
    names, more = _unique_columns(frame.columns)
    frame.columns = names
    return TableRead(frame=frame, notes=notes + more)


# -- Excel ------------------------------------------------------------------------------------------
def _not_a_workbook(filename: str, exc: BaseException) -> BadInput:
    return BadInput("error.ingest.bad_excel", filename=quoted(filename), reason=reason(exc))


def _read_excel(src: Source, filename: str, limits: Limits, sheet: str | None) -> TableRead:
    import openpyxl  # only Excel uploads pay for importing it

    with src.open() as fp:
        with open_zip(fp, filename, limits, _not_a_workbook) as zf:  # a workbook is a ZIP archive
            checked_entries(zf, filename, limits)
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


def _sheet_rows(ws: Any, filename: str, limits: Limits) -> tuple[list[Any] | None, list[tuple[Any, ...]]]:
    """The sheet's header (its first non-blank row) and data rows, blank rows left out."""
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
                    raise too_many_rows(filename, limits.max_rows)
    except BadInput:
        raise
    except Exception as exc:
        raise _not_a_workbook(filename, exc) from None
    return header, rows


def _read_sheet(book: Any, filename: str, limits: Limits, sheet: str | None) -> TableRead:
    sheets = list(book.sheetnames)
    listed = ", ".join(plain(s) for s in sheets)
    if sheet is not None and sheet not in sheets:
        raise BadInput("error.ingest.no_sheet", filename=quoted(filename), sheet=quoted(sheet), listed=listed)
    name = sheet if sheet is not None else sheets[0]
    where = Message.of("error.where.sheet", sheet=quoted(name), filename=quoted(filename))
    ws = book[name]
    if not hasattr(ws, "iter_rows"):
        raise BadInput("error.ingest.chart_sheet", where=where, listed=listed)

    header, rows = _sheet_rows(ws, filename, limits)
    if header is None:
        raise BadInput("error.ingest.empty_sheet", where=where)
    if not rows:
        raise BadInput("error.ingest.sheet_no_data_rows", where=where)

    def last_value(values: Iterable[Any]) -> int:
        return max((i + 1 for i, v in enumerate(values) if v is not None), default=0)

    width = max(last_value(header), *(last_value(r) for r in rows))
    pad = [None] * width
    frame = pd.DataFrame.from_records([(tuple(r) + tuple(pad))[:width] for r in rows])
    names, notes = _unique_columns((list(header) + pad)[:width])
    frame.columns = names
    if sheet is None and len(sheets) > 1:
        others = ", ".join(plain(s) for s in sheets[1:])
        notes.insert(0, Message.of("note.first_sheet", sheet=quoted(name), others=others))
    return TableRead(frame=frame, notes=notes, sheets=sheets)


# -- JSON Lines -------------------------------------------------------------------------------------
_EXAMPLE = '{"age": 31, "plan": "basic"}'


def _json_object(raw: bytes, where: Message) -> dict[str, Any]:
    """One line of a JSON Lines file as a JSON object; `where` names the line in the message if it is not one."""
    try:
        value = json.loads(raw.decode("utf-8").rstrip())  # columns count on this line alone
    except UnicodeDecodeError:
        raise BadInput("error.ingest.jsonl_not_utf8", where=where) from None
    except json.JSONDecodeError as exc:
        raise BadInput(
            "error.ingest.jsonl_bad_json", where=where, msg=exc.msg, colno=exc.colno, example=_EXAMPLE
        ) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise BadInput("error.ingest.jsonl_bad_value", where=where, reason=reason(exc)) from None
    except RecursionError:
        raise BadInput("error.ingest.jsonl_too_deep", where=where) from None
    if not isinstance(value, dict):
        kind = "null" if value is None else {list: "array", str: "string", bool: "boolean"}.get(type(value), "number")
        raise BadInput(
            "error.ingest.jsonl_not_object", where=where, kind=Message.of(f"error.json_kind.{kind}"), example=_EXAMPLE
        )
    return value


def _read_jsonl(src: Source, filename: str, limits: Limits) -> TableRead:
    records: list[dict[str, Any]] = []
    nested: set[str] = set()
    with src.open() as fp:
        for number, raw in enumerate(fp, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            value = _json_object(raw, Message.of("error.where.line", line=number, filename=quoted(filename)))
            for key, v in value.items():
                if isinstance(v, dict | list):
                    value[key] = json.dumps(v, ensure_ascii=False)
                    nested.add(key)
            records.append(value)
            if len(records) > limits.max_rows:
                raise too_many_rows(filename, limits.max_rows)
    if not records:
        raise BadInput("error.ingest.empty_jsonl", filename=quoted(filename))
    frame = pd.DataFrame.from_records(records)
    names, notes = _unique_columns(frame.columns)
    frame.columns = names
    if nested:
        columns = ", ".join(plain(k, 40) for k in sorted(nested))
        notes.append(Message.of("note.nested_json", columns=columns))
    return TableRead(frame=frame, notes=notes)


# -- the entry point --------------------------------------------------------------------------------
_TEXT = (".csv", ".tsv", ".txt", ".tab")
_EXCEL = (".xlsx", ".xlsm")
_PARQUET = (".parquet", ".pq")
_JSONL = (".jsonl", ".ndjson")
_KNOWN = ", ".join((*_TEXT, *_EXCEL, *_PARQUET, *_JSONL))
_WRONG_KIND = {
    ".xls": "error.ingest.old_excel",
    ".json": "error.ingest.plain_json",
    ".zip": "error.ingest.archive_not_table",
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
        raise BadInput(_WRONG_KIND[suffix], filename=quoted(filename))
    if suffix not in (*_TEXT, *_EXCEL, *_PARQUET, *_JSONL):
        raise BadInput("error.ingest.unknown_kind", filename=quoted(filename), known=_KNOWN)
    if sheet is not None and suffix not in _EXCEL:
        raise BadInput("error.ingest.not_a_workbook", filename=quoted(filename))
    src = Source(source, filename, limits)
    if suffix in _EXCEL:
        return _read_excel(src, filename, limits, sheet)
    if suffix in _PARQUET:
        return _read_parquet(src, filename, limits)
    if suffix in _JSONL:
        return _read_jsonl(src, filename, limits)
    return _read_csv(src, filename, limits)
