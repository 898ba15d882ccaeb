"""Immutable, content-addressed folders under MODELDECK_HOME/datasets: written whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_once(root: Path, digest: str, *, marker: str, write: Callable[[Path], None]) -> Path:
    """Run `write(folder)` on a temporary folder, then rename it to `root/digest`.

    A version whose `marker` file already exists is left as it is (same content, same hash), and a failure
    leaves nothing behind: readers never see a half-written version.
    """
    final = root / digest
    if (final / marker).exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    try:
        write(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process stored the same content first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
