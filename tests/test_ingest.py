"""Ingest: a corpus of awkward and hostile uploads, each accepted with what it holds or refused in one line.

Every fixture is made here at run time (no binary files in the repository), and the hostile ones are
built cheaply: the 2 GB zip bomb is one compressed megabyte of zeros repeated, so it costs 2 MB."""

from __future__ import annotations

import io
import random
import stat
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from backend.data.ingest import Limits, TableRead, ZipMember, iter_zip, read_table
from backend.errors import BadInput

# -- builders ---------------------------------------------------------------------------------------


def _columns(result: TableRead) -> dict[str, list[Any]]:
    return {name: result.frame[name].tolist() for name in result.frame.columns}


def _notes(result: TableRead) -> list[str]:
    return [note.text("en") for note in result.notes]


def _zip(*entries: tuple[str | zipfile.ZipInfo, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def _zip_bomb(size: int, *, declared: int | None = None) -> bytes:
    """A ZIP whose one member is `size` zero bytes, built in milliseconds.

    Deflate output after a full flush does not depend on what came before, so one flushed megabyte of
    zeros can simply be repeated. `declared` is the size the headers claim (a lying bomb); the CRC is
    left at 0 because nothing honest ever reads to the end."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    megabyte = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = megabyte * (size >> 20) + compressor.flush()
    name, usize = b"zeros.bin", size if declared is None else declared
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, 0, len(data), usize, len(name), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, 0, len(data), usize, len(name), 0, 0, 0, 0, 0, 0
    )
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), len(local) + len(name) + len(data), 0
    )
    return local + name + data + central + name + end


def _workbook(**sheets: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode bits in external_attr count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


# -- text tables that are accepted ------------------------------------------------------------------
ACCEPTED = [
    pytest.param(
        "\ufeffname,age\nAda,36\n".encode(), {"name": ["Ada"], "age": [36]}, [], "utf-8-sig", ",", id="utf8-bom"
    ),
    pytest.param(
        "name,city\nZoë,Zürich\n".encode("utf-16"),
        {"name": ["Zoë"], "city": ["Zürich"]},
        ["Detected encoding UTF-16"],
        "utf-16",
        ",",
        id="utf16-le-bom",
    ),
    pytest.param(
        b"\xfe\xff" + "name,city\nZoë,Zürich\n".encode("utf-16-be"),
        {"name": ["Zoë"], "city": ["Zürich"]},
        ["Detected encoding UTF-16"],
        "utf-16",
        ",",
        id="utf16-be-bom",
    ),
    pytest.param(
        "name,city\nJosé,Málaga\nNiño,Cádiz\n".encode("latin-1"),
        {"name": ["José", "Niño"], "city": ["Málaga", "Cádiz"]},
        ["Detected encoding Latin-1"],
        "latin-1",
        ",",
        id="latin1",
    ),
    pytest.param(
        "城市,人口\n北京,2189\n上海,2487\n".encode("gbk"),
        {"城市": ["北京", "上海"], "人口": [2189, 2487]},
        ["Detected encoding GBK"],
        "gbk",
        ",",
        id="gbk",
    ),
    pytest.param(
        b"price;qty\n1,5;2\n2,5;4\n",
        {"price": ["1,5", "2,5"], "qty": [2, 4]},
        ["Detected delimiter ';'"],
        "utf-8",
        ";",
        id="semicolon",
    ),
    pytest.param(b"a\tb\n1\tx, y\n", {"a": [1], "b": ["x, y"]}, ["Detected delimiter tab"], "utf-8", "\t", id="tab"),
    pytest.param(b"a|b\n1|2\n", {"a": [1], "b": [2]}, ["Detected delimiter '|'"], "utf-8", "|", id="pipe"),
    pytest.param(
        b'note,n\n"first line\nsecond, with a comma",1\nplain,2\n',
        {"note": ["first line\nsecond, with a comma", "plain"], "n": [1, 2]},
        [],
        "utf-8",
        ",",
        id="quoted-newline",
    ),
    pytest.param(b"a,b\n1,2\n\n\n\n", {"a": [1], "b": [2]}, [], "utf-8", ",", id="trailing-blank-lines"),
    pytest.param(b"a,b\r\n1,2\r\n3,4\r\n", {"a": [1, 3], "b": [2, 4]}, [], "utf-8", ",", id="crlf"),
    pytest.param(
        b"a,a,,b,a\n1,2,3,4,5\n",
        {"a": [1], "a_2": [2], "column_3": [3], "b": [4], "a_3": [5]},
        ["Column names made unique: a, a, a → a, a_2, a_3", "Blank column name 3 became column_3"],
        "utf-8",
        ",",
        id="duplicate-and-blank-headers",
    ),
    pytest.param(
        b"day,at,n\n2024-01-31,2024-01-31T10:00:00Z,1\n",
        {"day": ["2024-01-31"], "at": ["2024-01-31T10:00:00Z"], "n": [1]},
        [],
        "utf-8",
        ",",
        id="dates-stay-text",
    ),
]


@pytest.mark.parametrize(("data", "columns", "notes", "encoding", "delimiter"), ACCEPTED)
def test_awkward_text_tables_are_read_with_notes(data, columns, notes, encoding, delimiter) -> None:
    result = read_table(data, "upload.csv")
    assert (_columns(result), _notes(result), result.encoding, result.delimiter) == (
        columns,
        notes,
        encoding,
        delimiter,
    )


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("cities.csv", "城市,人口\n北京,2189\n".encode("gbk")),
        ("cities.xlsx", _workbook(S=[["city", "people"], ["Beijing", 2189]])),
        ("cities.parquet", _parquet(pd.DataFrame({"city": ["Beijing"], "people": [2189]}))),
        ("cities.jsonl", b'{"city": "Beijing", "people": 2189}\n'),
    ],
    ids=["csv", "excel", "parquet", "jsonl"],
)
def test_a_file_on_disk_reads_like_the_same_bytes(tmp_path: Path, filename: str, data: bytes) -> None:
    (tmp_path / filename).write_bytes(data)
    from_disk, in_memory = read_table(tmp_path / filename, filename), read_table(data, filename)
    assert (_columns(from_disk), _notes(from_disk)) == (_columns(in_memory), _notes(in_memory))


def test_a_missing_file_is_refused_by_a_name_that_keeps_the_file_name(tmp_path: Path) -> None:
    deep = tmp_path / ("a_folder_with_a_long_name_" * 4) / "gone.csv"
    with pytest.raises(
        BadInput, match=r"^No file at '/.{20,}….{20,}/gone\.csv'\. Give the path to the file to upload\.$"
    ):
        read_table(deep, "gone.csv")


# -- uploads that are refused -----------------------------------------------------------------------
REFUSED = [
    pytest.param(b"", "upload.csv", r"^'upload\.csv' is empty\. Upload a CSV file with a header row", id="empty"),
    pytest.param(b"  \n\n", "upload.csv", r"^'upload\.csv' is empty\.", id="blank"),
    pytest.param(b"a,b\n", "upload.csv", r"^'upload\.csv' has a header but no data rows\.", id="header-only"),
    pytest.param(b",\n1,2\n", "upload.csv", r"^'upload\.csv' has no header row\. Add a first line", id="no-header"),
    pytest.param(
        random.Random(0).randbytes(4096),
        "upload.csv",
        r"^'upload\.csv' is not a text file\. Upload a CSV file \(comma-separated text with a header row\)\.$",
        id="binary-garbage",
    ),
    pytest.param(
        random.Random(0).randbytes(4096).replace(b"\x00", b"a"),
        "upload.csv",
        r"^'upload\.csv' is not a text file\.",
        id="binary-garbage-without-nul",
    ),
    pytest.param(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
        "photo.csv",
        r"^'photo\.csv' is not a text file\. Upload a CSV file \(comma-separated text with a header row\), "
        r"not a PNG image\.$",
        id="png-renamed-csv",
    ),
    pytest.param(
        b"a,b,c\n1,2,3\n4,5\n",
        "upload.csv",
        r"^Row 3 of 'upload\.csv' has 2 fields but the header has 3\. Fix that row \(a missing or extra "
        r"delimiter, or an unquoted ','\)\.$",
        id="short-row",
    ),
    pytest.param(
        b'a,b\n"two\nlines",2\n3,4,5,6\n',
        "upload.csv",
        r"^Row 4 of 'upload\.csv' has 4 fields but the header has 2\.",
        id="long-row-after-quoted-newline",
    ),
    pytest.param(
        b"a;b\n1;2\n3\n", "upload.csv", r"^Row 3 of 'upload\.csv' .* or an unquoted ';'\)\.$", id="short-row-semicolon"
    ),
    pytest.param(
        b'{"a": 1}\n{"a": 2}\n{"a": 3,}\n',
        "rows.jsonl",
        r"^Line 3 of 'rows\.jsonl' is not valid JSON \(Expecting property name enclosed in double quotes at "
        r"column 9\)\. Fix that line: each line must be one JSON object",
        id="jsonl-bad-line-3",
    ),
    pytest.param(
        b'{"a": 1}\n[1, 2]\n',
        "rows.jsonl",
        r"^Line 2 of 'rows\.jsonl' is an array, not a JSON object\.",
        id="jsonl-array-line",
    ),
    pytest.param(
        b'{"a": ' + b"9" * 5000 + b"}\n",
        "rows.jsonl",
        r"^Line 1 of 'rows\.jsonl' is not valid JSON \(Exceeds the limit \(4300 digits\)",
        id="jsonl-huge-number",
    ),
    pytest.param(b"\n\n", "rows.jsonl", r"^'rows\.jsonl' is empty\. Upload a JSON Lines file", id="jsonl-empty"),
    pytest.param(b"not parquet", "t.parquet", r"^'t\.parquet' is not a readable Parquet file \(", id="bad-parquet"),
    pytest.param(b"a,b\n1,2\n", "t.xlsx", r"^'t\.xlsx' is not a readable Excel workbook \(", id="csv-named-xlsx"),
    pytest.param(b"x", "old.xls", r"^'old\.xls' is an old Excel 97-2003 workbook\. Open it in Excel", id="xls"),
    pytest.param(b"x", "t.json", r"^'t\.json' is JSON, and tables are read from JSON Lines\.", id="json"),
    pytest.param(
        b"x", "t.docx", r"^'t\.docx' is not a kind of table that can be read\. Upload one of: \.csv", id="docx"
    ),
    pytest.param(b"a\n", "evil\nname.csv", r"^'evil\?name\.csv' has a header", id="newline-in-filename"),
]


@pytest.mark.parametrize(("data", "filename", "message"), REFUSED)
def test_bad_uploads_are_refused_in_one_line(data, filename, message) -> None:
    with pytest.raises(BadInput, match=message) as caught:
        read_table(data, filename)
    assert "\n" not in str(caught.value)


def test_a_sheet_for_a_csv_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^'t\.csv' is not an Excel workbook, so it has no sheets\."):
        read_table(b"a\n1\n", "t.csv", sheet="Sheet1")


# -- Excel, Parquet, JSON Lines ---------------------------------------------------------------------
BOOK = _workbook(Summary=[["note"], ["see Sales"]], Sales=[["region", "amount", None], ["north", 10], ["south", 12.5]])


def test_the_chosen_excel_sheet_is_read_and_all_sheets_are_listed() -> None:
    result = read_table(BOOK, "book.xlsx", sheet="Sales")
    assert (_columns(result), result.sheets, _notes(result)) == (
        {"region": ["north", "south"], "amount": [10.0, 12.5]},
        ["Summary", "Sales"],
        [],
    )


def test_the_first_excel_sheet_is_read_by_default_with_a_note() -> None:
    result = read_table(BOOK, "book.xlsx")
    assert (_columns(result), _notes(result)) == (
        {"note": ["see Sales"]},
        ["Read the first sheet, 'Summary'; the workbook also has: Sales"],
    )


def test_an_unknown_excel_sheet_is_refused_naming_the_sheets() -> None:
    with pytest.raises(BadInput, match=r"^'book\.xlsx' has no sheet 'Totals'\. Expected one of: Summary, Sales\."):
        read_table(BOOK, "book.xlsx", sheet="Totals")


def test_excel_blank_and_duplicate_headers_are_renamed() -> None:
    result = read_table(_workbook(S=[["x", None, "x"], [1, 2, 3]]), "b.xlsx")
    assert (_columns(result), _notes(result)) == (
        {"x": [1], "column_2": [2], "x_2": [3]},
        ["Column names made unique: x, x → x, x_2", "Blank column name 2 became column_2"],
    )


def test_parquet_is_read_with_its_types() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    result = read_table(_parquet(frame), "t.parquet")
    assert (result.frame.fillna("-").to_dict("list"), str(result.frame["a"].dtype), _notes(result)) == (
        {"a": [1, 2], "b": ["x", "-"]},
        "int64",
        [],
    )


def test_json_lines_are_read_with_nested_values_as_text() -> None:
    data = b'{"id": 1, "tags": ["a", "b"]}\n\n{"id": 2, "extra": "z"}\n'
    result = read_table(data, "rows.ndjson")
    assert (result.frame.fillna("-").to_dict("list"), _notes(result)) == (
        {"id": [1, 2], "tags": ['["a", "b"]', "-"], "extra": ["-", "z"]},
        ["Nested values were kept as JSON text in: tags"],
    )


# -- limits -----------------------------------------------------------------------------------------
def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"a\n" + b"1\n" * 1500)
    with pytest.raises(
        BadInput,
        match=r"^'big\.csv' is 2\.9 KB, over the 1 KB upload limit\. Upload a smaller file \(a sample of the rows\), "
        r"or raise the limit with MODELDECK_MAX_UPLOAD_MB\.$",
    ):
        read_table(path, "big.csv", limits=Limits(max_upload_bytes=1024))


ROW_LIMIT = Limits(max_rows=100)
OVER_ROWS = [
    pytest.param(b"a,b\n" + b"1,2\n" * 101, "t.csv", id="csv"),
    pytest.param(b'a,b\n"x\ny",2\n' + b"1,2\n" * 100, "t.csv", id="csv-with-quotes"),
    pytest.param(b'{"a": 1}\n' * 101, "t.jsonl", id="jsonl"),
    pytest.param(_workbook(S=[["a"], *([[1]] * 101)]), "t.xlsx", id="excel"),
    pytest.param(_parquet(pd.DataFrame({"a": range(101)})), "t.parquet", id="parquet"),
]


@pytest.mark.parametrize(("data", "filename"), OVER_ROWS)
def test_a_table_over_the_row_limit_is_refused_naming_the_setting(data, filename) -> None:
    with pytest.raises(
        BadInput,
        match=rf"^'{filename}' has more than 100 rows, the row limit\. Upload a sample of the rows, or raise "
        r"the limit with MODELDECK_MAX_ROWS\.$",
    ):
        read_table(data, filename, limits=ROW_LIMIT)


def test_legacy_bytes_after_the_first_megabyte_switch_the_encoding() -> None:
    data = b"name,n\n" + b"plain,1\n" * 200_000 + "café,2\n".encode("latin-1")
    result = read_table(data, "late.csv")
    assert (result.frame.iloc[-1].tolist(), _notes(result)) == (["café", 2], ["Detected encoding Latin-1"])


def test_a_csv_with_more_lines_than_the_row_limit_but_fewer_rows_is_read() -> None:
    data = b"note\n" + b'"one\ntwo\nthree"\n' * 50  # 150 lines, 50 rows
    assert len(read_table(data, "t.csv", limits=ROW_LIMIT).frame) == 50


def test_a_csv_on_disk_over_the_row_limit_is_refused_before_the_rest_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 2_000_000 + b"3,4,5\n")  # 8 MB; the ragged last row is never reached
    with pytest.raises(BadInput, match=r"^'long\.csv' has more than 100 rows, the row limit\."):
        read_table(path, "long.csv", limits=ROW_LIMIT)


def test_an_excel_workbook_that_unpacks_too_large_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^'book\.xlsx' unpacks to .* over the 1 KB limit for unpacked data\."):
        read_table(BOOK, "book.xlsx", limits=Limits(max_uncompressed_bytes=1024))


def test_limits_are_read_from_the_environment() -> None:
    env = {"MODELDECK_MAX_UPLOAD_MB": "10", "MODELDECK_MAX_UNCOMPRESSED_MB": "20", "MODELDECK_MAX_FILES": "30"}
    assert Limits.from_env(env) == Limits(
        max_upload_bytes=10 * 1024 * 1024, max_uncompressed_bytes=20 * 1024 * 1024, max_files=30, max_rows=5_000_000
    )


def test_a_limit_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^MODELDECK_MAX_ROWS='lots' is not a positive whole number\."):
        Limits.from_env({"MODELDECK_MAX_ROWS": "lots"})


# -- archives ---------------------------------------------------------------------------------------
def _members(data: bytes, limits: Limits | None = None) -> list[tuple[str, bytes]]:
    return [(m.name, m.read()) for m in iter_zip(data, limits or Limits(), filename="upload.zip")]


def test_a_zip_yields_its_files_and_skips_folders_and_junk() -> None:
    data = _zip(
        ("texts/", b""),
        ("texts/a.txt", b"alpha"),
        ("texts\\b.txt", b"beta"),
        ("__MACOSX/texts/._a.txt", b"junk"),
        ("texts/.DS_Store", b"junk"),
    )
    assert _members(data) == [("texts/a.txt", b"alpha"), ("texts/b.txt", b"beta")]


def test_a_zip_on_disk_is_read_like_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "texts.zip").write_bytes(_zip(("a.txt", b"alpha"), ("b/c.txt", b"gamma")))
    assert [(m.name, m.read()) for m in iter_zip(tmp_path / "texts.zip")] == [
        ("a.txt", b"alpha"),
        ("b/c.txt", b"gamma"),
    ]


def test_a_zip_member_reports_its_size() -> None:
    member: ZipMember = next(iter_zip(_zip(("a.txt", b"12345"))))
    assert (member.name, member.size) == ("a.txt", 5)


UNSAFE = [
    pytest.param("../evil.txt", r"has an entry that points outside its folder, '\.\./evil\.txt'\.", id="dotdot"),
    pytest.param(
        "a/../../evil.txt",
        r"has an entry that points outside its folder, 'a/\.\./\.\./evil\.txt'\.",
        id="nested-dotdot",
    ),
    pytest.param(
        "..\\evil.txt", r"has an entry that points outside its folder, '\.\.\\evil\.txt'\.", id="backslash-dotdot"
    ),
    pytest.param("/etc/passwd", r"has an entry with an absolute path, '/etc/passwd'\.", id="absolute"),
    pytest.param("C:/Windows/evil.txt", r"has an entry with an absolute path, 'C:/Windows/evil\.txt'\.", id="drive"),
]


@pytest.mark.parametrize(("name", "message"), UNSAFE)
def test_a_zip_entry_escaping_its_folder_is_refused(name, message) -> None:
    with pytest.raises(BadInput, match=rf"^'upload\.zip' {message} Re-create the archive from inside its folder"):
        _members(_zip(("ok.txt", b"fine"), (name, b"evil")))


def test_a_zip_with_a_symlink_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^'upload\.zip' has a symbolic link, 'link'; links are not accepted\."):
        _members(_zip((_symlink("link"), b"/etc/passwd")))


def test_a_zip_with_too_many_files_is_refused() -> None:
    data = _zip(*[(f"f{i}.txt", b"x") for i in range(11)])
    with pytest.raises(
        BadInput, match=r"^'upload\.zip' has more than 10 entries, the limit for one archive\. .*MODELDECK_MAX_FILES\.$"
    ):
        _members(data, Limits(max_files=10))


def test_a_zip_with_bzip2_members_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^'upload\.zip' uses bzip2 compression, which is not accepted\."):
        _members(_zip(("a.txt", b"x"), method=zipfile.ZIP_BZIP2))


def test_a_damaged_zip_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^'upload\.zip' is not a readable ZIP archive \(File is not a zip file\)\."):
        _members(b"PK\x03\x04 not really")


def test_unpacking_is_counted_against_the_limit_as_it_happens() -> None:
    members = iter_zip(_zip(("a.txt", b"123456")), Limits(max_uncompressed_bytes=10))
    member = next(members)
    assert member.read() == b"123456"
    with pytest.raises(BadInput, match=r"^'upload\.zip' unpacks to more than 10 bytes, over the 10 bytes limit"):
        member.read()  # a second read unpacks again, and counts again


def test_reading_a_member_after_its_loop_is_a_bug_not_a_bad_upload() -> None:
    members = list(iter_zip(_zip(("a.txt", b"x"))))
    with pytest.raises(RuntimeError, match=r"called after its iter_zip loop ended"):
        members[0].read()


def test_a_zip_over_the_size_limit_is_refused_before_it_is_opened() -> None:
    with pytest.raises(BadInput, match=r"^'upload\.zip' is .* upload limit\. Upload a smaller file \(fewer or smaller"):
        _members(_zip(("a.txt", bytes(2000))), Limits(max_upload_bytes=100))


def test_a_zip_bomb_is_refused_without_unpacking_it() -> None:
    bomb = _zip_bomb(2 * 1024**3)
    tracemalloc.start()
    try:
        with pytest.raises(
            BadInput,
            match=r"^'upload\.zip' unpacks to 2 GB, over the 1 GB limit for unpacked data\. .*"
            r"MODELDECK_MAX_UNCOMPRESSED_MB\.$",
        ):
            _members(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * 1024 * 1024


def test_a_zip_bomb_that_lies_about_its_size_stops_at_the_size_it_declared() -> None:
    bomb = _zip_bomb(2 * 1024**3, declared=1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match=r"^'upload\.zip' is not a readable ZIP archive \(Bad CRC-32"):
            _members(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * 1024 * 1024
