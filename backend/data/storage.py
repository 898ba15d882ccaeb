"""Immutable, content-addressed folders under MODELDECK_HOME/datasets: written whole or not at all."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from backend.errors import BadInput

FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or over a quota


def _said(exc: BaseException, root: Path) -> BaseException:
    """A full disk as the user's one-line message; any other error as it is."""
    if isinstance(exc, OSError) and exc.errno in FULL:
        return BadInput("error.data.disk_full", where=str(root))
    return exc


def _incoming(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.replace(tmp, final)
    except OSError:  # another process stored the same content first
        shutil.rmtree(tmp, ignore_errors=True)


def write_once(root: Path, digest: str, *, marker: str, write: Callable[[Path], None]) -> Path:
    """Run `write(folder)` on a temporary folder, then rename it to `root/digest`.

    A version whose `marker` file already exists is left as it is (same content, same hash), and a failure
    leaves nothing behind: readers never see a half-written version.
    """
    final = root / digest
    if (final / marker).exists():
        return final
    try:
        tmp = _incoming(root)
    except OSError as exc:
        raise _said(exc, root) from exc
    try:
        write(tmp)
        _publish(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        said = _said(exc, root)
        if said is exc:
            raise
        raise said from exc
    return final


class Pending:
    """A version folder being written on another thread, named once its digest is known (see `writing`)."""

    def __init__(self, root: Path, marker: str, tmp: Path, written: Future[None]) -> None:
        self._root, self._marker, self._tmp, self._written = root, marker, tmp, written

    def publish(self, digest: str) -> Path:
        """Wait for the write, then rename the folder to `root/digest` (or drop it when that version exists)."""
        self._written.result()
        final = self._root / digest
        if (final / self._marker).exists():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            _publish(self._tmp, final)
        return final


@contextmanager
def writing(root: Path, *, marker: str, write: Callable[[Path], None]) -> Iterator[Pending]:
    """`write_once` for content whose digest takes a while: `write(folder)` runs on another thread meanwhile.

    Inside the block the caller computes the digest (and whatever else) and calls `publish(digest)`. `write` must
    only read what the block reads too. A failure on either side leaves nothing behind, as with `write_once`.
    """
    try:
        tmp = _incoming(root)
    except OSError as exc:
        raise _said(exc, root) from exc
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeldeck-write") as pool:
        pending = Pending(root, marker, tmp, pool.submit(write, tmp))
        try:
            yield pending
        except BaseException as exc:
            pool.shutdown(wait=True)  # the write may still be going on in `tmp`
            shutil.rmtree(tmp, ignore_errors=True)
            said = _said(exc, root)
            if said is exc:
                raise
            raise said from exc
    shutil.rmtree(tmp, ignore_errors=True)  # gone already, unless the block returned without publishing
