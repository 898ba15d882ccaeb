"""ZIP archives, checked before they are unpacked.

Entries are counted from the directory, paths made safe, and bytes counted as they are unpacked.
"""

from __future__ import annotations

import functools
import io
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from backend.data.ingest.limits import (
    CHUNK,
    Limits,
    Source,
    quoted,
    reason,
    size_text,
    too_large_unpacked,
    too_many_files,
)
from backend.errors import BadInput


@dataclass(frozen=True)
class ZipMember:
    """One regular file in an archive; `read()` unpacks it, counting its bytes against the limits."""

    name: str  # a safe relative path with forward slashes, e.g. "images/cat/001.png"
    size: int  # the size the archive declares; `read()` never returns more
    _read: Callable[[], bytes] = field(repr=False, compare=False)

    def read(self) -> bytes:
        """The member's bytes; valid only while its `iter_zip` loop is running."""
        return self._read()


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
    leaves the diagnosis to zipfile.
    """
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
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BadInput("error.archive.absolute_path", archive=quoted(archive), raw=quoted(raw))
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadInput("error.archive.outside", archive=quoted(archive), raw=quoted(raw))
    return posixpath.join(*parts) if parts else ""


def _is_junk(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == "__MACOSX" or parts[-1] in _JUNK_NAMES or parts[-1].startswith("._")


def checked_entries(zf: zipfile.ZipFile, archive: str, limits: Limits) -> list[tuple[str, zipfile.ZipInfo]]:
    """The regular files worth reading, after refusing anything unsafe in any entry."""
    files, declared = [], 0
    for info in zf.infolist():
        raw = _entry_name(info)
        path = _safe_path(raw, archive)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise BadInput("error.archive.symlink", archive=quoted(archive), raw=quoted(raw))
        if info.is_dir() or kind == stat.S_IFDIR or not path:
            continue
        if kind not in (0, stat.S_IFREG):
            raise BadInput("error.archive.not_regular", archive=quoted(archive), raw=quoted(raw))
        if info.flag_bits & 0x1:
            raise BadInput("error.archive.encrypted", archive=quoted(archive))
        if info.compress_type not in _METHODS:
            # bzip2 and LZMA members are unpacked without an output bound by zipfile: a bomb's first
            # read could fill the memory before any count is taken.
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise BadInput("error.archive.compression", archive=quoted(archive), method=method)
        if _is_junk(path):
            continue
        declared += info.file_size
        files.append((path, info))
    if declared > limits.max_uncompressed_bytes:
        raise too_large_unpacked(archive, size_text(declared), limits.max_uncompressed_bytes)
    return files


def _damaged(archive: str, exc: BaseException) -> BadInput:
    return BadInput("error.archive.unreadable", archive=quoted(archive), reason=reason(exc))


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError)


def open_zip(
    fp: IO[bytes], archive: str, limits: Limits, damaged: Callable[[str, BaseException], BadInput] = _damaged
) -> zipfile.ZipFile:
    """A ZipFile, once its directory is known to hold no more entries than the limit."""
    if _count_entries(fp, limits.max_files) > limits.max_files:
        raise too_many_files(archive, limits.max_files)
    fp.seek(0)
    try:
        zf = zipfile.ZipFile(fp)
    except _ZIP_ERRORS as exc:
        raise damaged(archive, exc) from None
    if len(zf.infolist()) > limits.max_files:  # a directory that lied to the count above
        zf.close()
        raise too_many_files(archive, limits.max_files)
    return zf


class _Budget:
    """Bytes unpacked so far from one archive, across all its members."""

    def __init__(self, archive: str, limits: Limits) -> None:
        self.archive, self.limit, self.used = archive, limits.max_uncompressed_bytes, 0

    def read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
        """Unpack a member in chunks, refusing as soon as it outgrows its declared size or the budget.

        zipfile caps deflate output per call and stops at the declared size (a lying member then fails
        its CRC check), so on CPython the budget is what stops members read more than once; the checks
        keep the bound independent of zipfile's behaviour.
        """
        if zf.fp is None:  # a bug in the caller, not a problem with the upload
            raise RuntimeError("ZipMember.read() was called after its iter_zip loop ended; read it inside the loop.")
        parts, got = [], 0
        try:
            with zf.open(info) as member:
                while chunk := member.read(CHUNK):
                    got += len(chunk)
                    self.used += len(chunk)
                    if self.used > self.limit:
                        raise too_large_unpacked(self.archive, f"more than {size_text(self.limit)}", self.limit)
                    if got > info.file_size:
                        raise BadInput(
                            "error.archive.damaged",
                            archive=quoted(self.archive),
                            name=quoted(name),
                            size=size_text(info.file_size),
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
    src = Source(source, archive, limits, smaller="fewer or smaller files")
    with src.open() as fp, open_zip(fp, archive, limits) as zf:
        budget = _Budget(archive, limits)
        for path, info in checked_entries(zf, archive, limits):
            yield ZipMember(name=path, size=info.file_size, _read=functools.partial(budget.read, zf, info, path))
