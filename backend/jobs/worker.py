"""The worker: claims jobs from the DB and runs each in a child process.

A child process per job means a crash or a GPU allocation never outlives the job, and the worker can
stop a job that ignores a cancel. While the worker waits for work, the next job's child is already
started and has imported TensorFlow, the slowest part of the wait between "Start" and the first metric.

The worker records a heartbeat; on start (and every so often) it marks runs whose worker died as
`interrupted`, which `runs resume` picks up from the last epoch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from db import Store
from db.store import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
STALE_AFTER_S = 20.0  # a worker silent this long is taken for dead
CANCEL_GRACE_S = 10.0  # a child that ignores a cancel this long is terminated
ORPHAN_SCAN_S = 10.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_workers(store: Store, *, stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Mark the runs of dead workers as interrupted. A worker on this host whose process is gone is
    dead at once; one elsewhere when its heartbeat goes stale."""
    host = socket.gethostname()
    for worker in store.live_workers(stale_after_s=stale_after_s):
        if worker.host == host and not _pid_alive(worker.pid):
            store.stop_worker(worker.id)
    return store.interrupt_orphaned_runs(stale_after_s=stale_after_s)


def has_live_worker(store: Store) -> bool:
    host = socket.gethostname()
    return any(w.host != host or _pid_alive(w.pid) for w in store.live_workers(stale_after_s=STALE_AFTER_S))


class Worker:
    def __init__(self, store: Store, *, database_url: str, home: Path, poll_s: float = 0.5) -> None:
        self.store, self.database_url, self.home, self.poll_s = store, database_url, home, poll_s
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._ctx = multiprocessing.get_context("spawn")
        self._next: tuple[BaseProcess, Connection] | None = None  # the child for the next job, waiting

    def _start_child(self) -> tuple[BaseProcess, Connection]:
        from backend.jobs.child import job_child

        reading, writing = self._ctx.Pipe(duplex=False)  # the worker writes the run id of the child's job
        child = self._ctx.Process(target=job_child, args=(reading, self.database_url, str(self.home)))
        child.start()
        reading.close()
        return child, writing

    def _take_child(self) -> tuple[BaseProcess, Connection]:
        """The waiting child if it is still alive, else a new one."""
        ready, self._next = self._next, None
        if ready is not None and ready[0].is_alive():
            return ready
        if ready is not None:
            ready[1].close()
        return self._start_child()

    def _discard_next(self) -> None:
        if self._next is not None:
            child, jobs = self._next
            jobs.close()  # the child sees the pipe closed and exits
            child.join(5)
            if child.is_alive():
                child.terminate()
            self._next = None

    def stop(self, *_: object) -> None:
        self._stop.set()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.heartbeat(self.id)
            except Exception:  # a locked DB for a moment is not fatal; the next beat retries
                log.exception("heartbeat failed")

    def run(self, *, until_idle: bool = False) -> None:
        """Serve jobs until stopped (or, with `until_idle`, until the queue is empty)."""
        self.store.register_worker(self.id, host=socket.gethostname(), pid=os.getpid())
        interrupted = reap_dead_workers(self.store)
        if interrupted:
            log.info("marked runs %s as interrupted", interrupted)
        threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat").start()
        last_scan = time.monotonic()
        try:
            while not self._stop.is_set():
                if self._next is None and not until_idle:
                    self._next = self._start_child()
                job = self.store.claim_job(self.id)
                if job is None:
                    if until_idle:
                        break
                    if time.monotonic() - last_scan > ORPHAN_SCAN_S:
                        reap_dead_workers(self.store)
                        last_scan = time.monotonic()
                    self._stop.wait(self.poll_s)
                    continue
                self._run_job(job.id, job.run_id)
        finally:
            self._stop.set()
            self._discard_next()
            self.store.stop_worker(self.id)

    def _run_job(self, job_id: int, run_id: int) -> None:
        child, jobs = self._take_child()
        try:
            jobs.send(run_id)
        except OSError:  # it died just now: a new child imports TensorFlow itself
            child, jobs = self._start_child()
            jobs.send(run_id)
        jobs.close()
        cancel_seen: float | None = None
        while child.is_alive():
            child.join(self.poll_s)
            if self._stop.is_set():  # the worker is shutting down: the run can be resumed later
                child.terminate()
                child.join(5)
                self.store.update_run(
                    run_id,
                    only_if_status="running",
                    status="interrupted",
                    error="The worker stopped during training. Resume the run.",
                )
                self.store.finish_job(job_id, status="interrupted")
                return
            if cancel_seen is None and self.store.cancel_requested(run_id):
                cancel_seen = time.monotonic()
            if cancel_seen is not None and time.monotonic() - cancel_seen > CANCEL_GRACE_S:
                child.terminate()
        cancelled = cancel_seen is not None
        run = self.store.update_run(  # in case the child died without saying how the run ended
            run_id,
            only_if_status="running",
            status="cancelled" if cancelled else "failed",
            finished_at=utcnow(),
            error=None if cancelled else f"The training process exited unexpectedly (code {child.exitcode}).",
        )
        self.store.finish_job(job_id, status=run.status)


def serve_forever(store: Store, *, database_url: str, home: Path, until_idle: bool = False) -> None:
    worker = Worker(store, database_url=database_url, home=home)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run(until_idle=until_idle)
