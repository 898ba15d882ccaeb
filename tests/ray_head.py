"""A local Ray head for the tests: two CPUs, on loopback, in a temp folder, stopped at the end.

`make test` installs Ray (the `ray` extra). The head runs in the foreground (`ray start --block`) in a session of its
own, so stopping it stops every process it started: the GCS, the raylet and their Python workers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STARTUP_S = 120.0


def _ready(address: str) -> bool:
    """Whether the head answers and its node has registered (what `ray status` needs)."""
    ray = Path(sys.executable).parent / "ray"
    done = subprocess.run([str(ray), "status", f"--address={address}"], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and "CPU" in done.stdout


@contextlib.contextmanager
def head(port: int, *, cpus: int = 2) -> Iterator[str]:
    """Start a head node on 127.0.0.1:`port` with `cpus` CPUs and no GPU; yields its address."""
    folder = Path(tempfile.mkdtemp(prefix="mdray-"))  # short: Ray's socket paths must fit in 107 characters
    address = f"127.0.0.1:{port}"
    ray = Path(sys.executable).parent / "ray"
    command = [
        str(ray), "start", "--head", "--block", f"--port={port}", f"--num-cpus={cpus}", "--num-gpus=0",
        "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={folder}",
    ]  # fmt: skip
    log = (folder / "head.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _ready(address):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start: {(folder / 'head.log').read_text()[-2000:]}")
            time.sleep(1)
        yield address
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def stop(proc: subprocess.Popen[bytes], grace_s: float = 3) -> None:
    """Stop the head's session: SIGTERM, which Ray's processes take as a graceful stop (`ray stop` sends it), then
    SIGKILL for whatever is left after `grace_s`. SIGINT took the head 30 s and more: it shut down one process
    after another, waiting on each."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the raylet's workers, if they outlived the head
    proc.wait(10)
