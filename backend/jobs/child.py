"""The child process that runs one job.

The worker starts it ahead of time, it imports TensorFlow while it waits, then runs the job it is sent (a training
run, or a search whose trials are runs) and exits.

A process per job means a crash or a GPU allocation never outlives the job. The imports go one way:
child -> tuning -> training, and child -> training.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from backend.config import Paths
from backend.errors import BadInput, disk_full
from backend.jobs import training, tuning
from db import DatabaseBusy, DatabaseFull, Store, open_store
from db.store import utcnow

log = logging.getLogger(__name__)

NOT_RECORDED = 75  # the child's exit code when the history could not take the run's end (EX_TEMPFAIL)


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the worker dies, so a killed worker leaves no orphan training."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def job_child(jobs: Connection, database_url: str, home: str, nice: int = 0) -> None:
    """Entry point of the child process: import TensorFlow, then wait for the one job this process runs.

    The worker starts the next child while it waits for work, so the 5-8 s of importing TensorFlow is over
    before a user presses "Start". A closed pipe (the worker stopping) ends the child without a job.
    Ctrl-C is the worker's to handle: it stops the job and marks the run interrupted. The process runs `nice`
    steps below the worker (see `worker.job_nice`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    os.nice(nice)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401  (the slow imports, done ahead of the job)
    import tensorflow  # noqa: F401

    try:
        run_id = jobs.recv()
    except EOFError:
        return
    jobs.close()
    run_job(database_url, home, run_id)


def run_job(database_url: str, home: str, run_id: int, *, trials: tuning.Trials | None = None) -> None:
    """Run one job in this process (a `job_child`, or a Ray task's process).

    `trials` says where a search trains its trials: by default one after another in this process.
    """
    store = open_store(database_url)
    paths = Paths(Path(home))
    run_dir = paths.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=run_dir / "log.txt", level=logging.INFO)
    started = time.monotonic()
    run = store.get_run(run_id)
    assert run is not None
    try:
        if "search" in run.spec:
            status, values = tuning.search(store, paths=paths, run=run, trials=trials)
        else:
            status, values = training.train(store, paths=paths, run=run)
    except Exception as exc:  # the run fails (or waits for disk space); the worker stays up
        log.error("run %s stopped:\n%s", run_id, traceback.format_exc())
        status, values = _stopped_by(exc, store, run_id, run_dir)
    try:
        store.update_run(
            run_id,
            status=status,
            finished_at=utcnow(),
            duration_s=run.duration_s + time.monotonic() - started,
            **values,
        )
    except (DatabaseFull, DatabaseBusy):  # the worker records the end once the history can be written again
        log.error("run %s: its end could not be recorded:\n%s", run_id, traceback.format_exc())
        raise SystemExit(NOT_RECORDED) from None
    store.close()


def stopped_for_space(store: Store, run_id: int, folder: Path) -> dict[str, Any]:
    """An interrupted run's record when the disk under its folder filled up.

    The message, and a mark that tells a worker to queue it again once there is space (`worker.resume_when_space`).
    """
    run = store.get_run(run_id)
    epochs = run.epochs_done if run else 0
    said = BadInput("error.runs.disk_full", where=str(folder), epochs=epochs, run_id=run_id)
    return {"error": str(said), "progress": {**(run.progress if run else {}), "stopped_for": "disk_full"}}


def _stopped_by(exc: Exception, store: Store, run_id: int, folder: Path) -> tuple[str, dict[str, Any]]:
    """How a run that raised ends: interrupted until there is space when the disk filled up, else failed.

    A search's trial fails either way: its search stops for space, and trains a new trial when it goes on.
    """
    if disk_full(exc):
        stopped = stopped_for_space(store, run_id, folder)
        run = store.get_run(run_id)
        if run is not None and run.parent_id is not None:
            return "failed", {"error": stopped["error"]}
        return "interrupted", stopped
    return "failed", {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
