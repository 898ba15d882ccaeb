"""Text files: what they are, how they are encoded, and how they are delimited."""

from __future__ import annotations

import codecs
import csv
import io
import mmap
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

from backend.data.ingest.limits import CHUNK, Source, quoted
from backend.errors import BadInput
from backend.i18n import Message

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
DISPLAY = {
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
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_HIGH_LINE = re.compile(rb"[^\n]*[\x80-\xff][^\n]*")
_C1 = re.compile(rb"[\x80-\x9f]")
_DELIMITERS = (",", "\t", ";", "|")


@dataclass(frozen=True)
class Shape:
    """What one fast pass over the raw bytes tells before parsing."""

    line_breaks: int  # no file has more records than this plus one (\n, and every \r where there are any)
    has_quote: bool  # without a quote no field can hold a newline, so blocks can be split at any newline


def _count(view: bytes | mmap.mmap, byte: bytes) -> int:
    return sum(view[i : i + CHUNK].count(byte) for i in range(0, len(view), CHUNK))


def first_pass(src: Source) -> Shape:
    """Line breaks and quotes, over the file mapped into memory: several times faster than reading it in chunks."""
    with src.view() as view:
        breaks = _count(view, b"\n")
        if view.find(b"\r") >= 0:  # a lone \r (old Mac files) ends a line too; a CRLF then counts twice
            breaks += _count(view, b"\r")
        return Shape(breaks, view.find(b'"') >= 0)


def _first_bad_utf8(src: Source) -> int:
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


def _decodes(src: Source, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for chunk in src.chunks():
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def not_text(filename: str, kind: str | None = None) -> BadInput:
    if kind:
        return BadInput("error.ingest.not_text_but", filename=quoted(filename), kind=kind)
    return BadInput("error.ingest.not_text", filename=quoted(filename))


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


def _guess_legacy(src: Source, head: bytes, first_bad: int) -> list[str]:
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
            raise not_text(filename, kind)
    if b"\x00" in head[:8192]:
        encoding16 = _utf16_without_bom(head)
        if encoding16 is None:
            raise not_text(filename)
        return encoding16
    return None


def legacy_encoding(src: Source, head: bytes) -> str:
    """The first guess that decodes the whole file; Latin-1 last, since it decodes any bytes."""
    for encoding in _guess_legacy(src, head, _first_bad_utf8(src)):
        if _decodes(src, encoding):
            return encoding
    return "latin-1"


def detect_encoding(src: Source, head: bytes, filename: str) -> str:
    """The codec for a text upload: the one it announces, else UTF-8 if it decodes, else a careful guess.

    Only the head is checked for UTF-8 here; pyarrow checks the rest as it parses, and a failure
    there comes back to `legacy_encoding`.
    """
    marked = _marked_encoding(head, filename)
    if marked is not None:
        if marked != "utf-8-sig" and not _decodes(src, marked):
            raise not_valid(filename, marked)
        return marked
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=src.size <= len(head))
    except UnicodeDecodeError:
        return legacy_encoding(src, head)
    return "utf-8"  # preferred whenever it decodes: legacy guesses are only guesses


def short_name(encoding: str) -> str:
    """The encoding's name as people write it ("UTF-16 LE", "GBK"), without an English explanation."""
    return DISPLAY.get(encoding, encoding).split(" (")[0].removesuffix(" with a byte-order mark")


def not_valid(filename: str, encoding: str) -> BadInput:
    return BadInput("error.ingest.bad_encoding", filename=quoted(filename), name=short_name(encoding))


def sniff_delimiter(text: str, filename: str, complete: bool) -> str:
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


def delimiter_name(d: str) -> Message | str:
    return Message.of("error.tab") if d == "\t" else f"'{d}'"


# -- CSV, TSV, TXT ----------------------------------------------------------------------------------
def find_ragged_row(src: Source, encoding: str, delimiter: str) -> tuple[int, int, int] | None:
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


def fields_text(n: int) -> Message:
    return Message.counted("error.fields", n)
