"""The worker: claims jobs from the DB and runs each in a child process.

A child process per job means a crash or a GPU allocation never outlives the job, and the worker can
stop a job that ignores a cancel. While the worker waits for work, the next job's child is already
started and has imported TensorFlow, the slowest part of the wait between "Start" and the first metric.

The worker records a heartbeat; on start (and every so often) it marks runs whose worker died as
`interrupted`, which `runs resume` picks up from the last epoch.

It logs one line per event, tagged `run=ID` so that one run's lines can be grepped: claimed, started,
finished (with its status and duration, and the reason when it failed), and the worker's own start and stop.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TypeVar

from backend.config import Paths
from backend.errors import BadInput
from backend.jobs.child import NOT_RECORDED, job_child, stopped_for_space
from db import DatabaseBusy, DatabaseFull, Run, Store
from db.store import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_S = 2.0
STALE_AFTER_S = 20.0  # a worker silent this long is taken for dead
CANCEL_GRACE_S = 10.0  # a child that ignores a cancel this long is terminated
ORPHAN_SCAN_S = 10.0
SPACE_TO_RESUME_B = 256 * 2**20  # free space a run stopped by a full disk waits for before it goes on
UNWRITABLE_RETRY_S = (1.0, 30.0)  # the first and the longest wait before writing a job's end again
UNWRITABLE_WAIT_S = 5.0  # between claims while the history cannot be written


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_workers(store: Store, *, stale_after_s: float = STALE_AFTER_S, resume: bool = False) -> list[int]:
    """Mark the runs of dead workers as interrupted (and, with `resume`, queue them again at once).

    A worker on this host whose process is gone is dead at once; one elsewhere when its heartbeat goes stale.
    A resumed run continues from its last completed epoch.
    """
    host = socket.gethostname()
    for worker in store.live_workers(stale_after_s=stale_after_s):
        if worker.host == host and not _pid_alive(worker.pid):
            store.stop_worker(worker.id)
    interrupted = store.interrupt_orphaned_runs(stale_after_s=stale_after_s)
    for run_id in interrupted:
        if resume:
            store.requeue_run(run_id)
            log.warning("run=%s interrupted: its worker is gone; queued again, to resume from its last epoch", run_id)
        else:
            log.warning("run=%s interrupted: its worker is gone. Resume it: `modeldeck runs resume %s`", run_id, run_id)
    return interrupted


def resume_when_space(store: Store, home: Path) -> list[int]:
    """Queue again the runs a full disk stopped, once the disk under each has room; returns their ids."""
    resumed = []
    for run in store.runs_with_status("interrupted"):
        if (run.progress or {}).get("stopped_for") != "disk_full":
            continue
        folder = Paths(home).run_dir(run.id)
        try:
            free = shutil.disk_usage(folder if folder.exists() else home).free
        except OSError:
            continue
        if free >= SPACE_TO_RESUME_B:
            store.requeue_run(run.id)
            resumed.append(run.id)
            log.info(
                "run=%s queued again: the disk has room (%d MiB free); it resumes from its last epoch",
                run.id,
                free >> 20,
            )
    return resumed


def what(store: Store, run: Run) -> str:
    """A run in words for the log: its task and its data, e.g. `classification on dataset 'churn' version …`."""
    version = store.get_version(run.version_id)
    dataset = store.find_dataset(version.dataset_id) if version else None
    kind = f"{run.task} search" if "search" in run.spec else run.task
    if version is None or dataset is None:
        return kind
    return f"{kind} on dataset '{dataset.name}' version {version.hash[:12]}"


def ended(run: Run, seconds: float) -> None:
    """Logs how a run ended: its status and duration, and the reason unless it succeeded."""
    reason = f": {' '.join(run.error.split())}" if run.error else ""
    level = {"succeeded": logging.INFO, "cancelled": logging.INFO, "failed": logging.ERROR}.get(run.status)
    log.log(level or logging.WARNING, "run=%s finished: %s in %.1f s%s", run.id, run.status, seconds, reason)


def has_live_worker(store: Store) -> bool:
    """Whether a worker is alive: one on this host whose process runs, or one elsewhere with a fresh heartbeat."""
    host = socket.gethostname()
    return any(w.host != host or _pid_alive(w.pid) for w in store.live_workers(stale_after_s=STALE_AFTER_S))


def job_nice() -> int:
    """MODELDECK_JOB_NICE: how far below the dashboard and the inference server a run's process is scheduled.

    A Unix niceness from 0 to 19, 10 by default. On the cores they share, pages and predictions come first; a run
    that has the machine to itself trains as fast as ever, since a nice process still takes every idle cycle.

    Raises:
        BadInput: the value is not a whole number from 0 to 19.
    """
    given = os.environ.get("MODELDECK_JOB_NICE", "10").strip()
    if not given.isdigit() or int(given) > 19:
        raise BadInput("error.worker.bad_nice", value=given)
    return int(given)


class Worker:
    def __init__(self, store: Store, *, database_url: str, home: Path, poll_s: float = 0.5) -> None:
        self.store, self.database_url, self.home, self.poll_s = store, database_url, home, poll_s
        self.nice = job_nice()
        self.paths = Paths(home)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.resume_interrupted = False  # queue a dead worker's runs again at once (`modeldeck ui`'s worker does)
        self._stop = threading.Event()
        self._stopped_by = ""  # the signal that stopped the worker, for the log
        self._ctx = multiprocessing.get_context("spawn")
        self._next: tuple[BaseProcess, Connection] | None = None  # the child for the next job, waiting

    def _start_child(self) -> tuple[BaseProcess, Connection]:
        reading, writing = self._ctx.Pipe(duplex=False)  # the worker writes the run id of the child's job
        child = self._ctx.Process(target=job_child, args=(reading, self.database_url, str(self.home), self.nice))
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

    def stop(self, signum: int | None = None, _frame: object = None) -> None:
        """Stop after the current step (a signal handler: it only records the signal; `run` logs it)."""
        if signum is not None:
            self._stopped_by = signal.Signals(signum).name
        self._stop.set()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.heartbeat(self.id)
            except Exception as exc:  # a locked DB for a moment is not fatal; the next beat retries
                log.warning("heartbeat failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc, HEARTBEAT_S)

    # -- where jobs run: here, one child process at a time. `cluster.RayWorker` sends them to Ray instead. --------
    def prepare(self) -> None:
        """Before the first claim (a Ray worker connects to its cluster here)."""

    def slots(self) -> int:
        """How many jobs this worker runs at once."""
        return 1

    def in_flight(self) -> int:
        """Jobs started and not yet ended (a local job ends before `launch` returns)."""
        return 0

    def launch(self, job_id: int, run_id: int) -> None:
        self._run_job(job_id, run_id)

    def tend(self) -> None:
        """Every poll: end the jobs that finished, stop those cancelled too long ago (local: nothing to do)."""

    def wait_for_work(self, until_idle: bool) -> None:
        """While no job is queued: have the next child ready."""
        if self._next is None and not until_idle:
            self._next = self._start_child()

    def shut_down(self) -> None:
        """The worker stops: interrupt what still runs."""
        self._discard_next()

    def run(self, *, until_idle: bool = False) -> None:
        """Serve jobs until stopped (or, with `until_idle`, until the queue is empty and nothing runs)."""
        self.prepare()
        self.store.register_worker(self.id, host=socket.gethostname(), pid=os.getpid())
        log.info("started as %s (home %s)%s", self.id, self.home, ", until the queue is empty" if until_idle else "")
        reap_dead_workers(self.store, resume=self.resume_interrupted)
        resume_when_space(self.store, self.home)
        threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat").start()
        self._last_scan = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    if not self._step(until_idle):
                        break
                except (DatabaseFull, DatabaseBusy) as exc:  # a full disk or a long lock: wait, do not die
                    log.warning("the history cannot be written (%s); trying again in %.0f s", exc, UNWRITABLE_WAIT_S)
                    self._stop.wait(UNWRITABLE_WAIT_S)
        finally:
            log.info("stopping%s", f" ({self._stopped_by})" if self._stopped_by else "")
            self._stop.set()
            self.shut_down()
            self._until_written(lambda: self.store.stop_worker(self.id), patience_s=60)

    def _step(self, until_idle: bool) -> bool:
        """End what finished, then claim and start a job, or wait a poll for one; False once idle and done."""
        self.tend()
        if self.in_flight() >= self.slots():
            self._stop.wait(self.poll_s)
            return True
        self.wait_for_work(until_idle)
        job = self.store.claim_job(self.id)
        if job is None:
            if until_idle and not self.in_flight():
                self._stopped_by = "the queue is empty"
                return False
            if time.monotonic() - self._last_scan > ORPHAN_SCAN_S:
                reap_dead_workers(self.store, resume=self.resume_interrupted)
                resume_when_space(self.store, self.home)
                self._last_scan = time.monotonic()
            self._stop.wait(self.poll_s)
            return True
        log.info("run=%s claimed (job %s)", job.run_id, job.id)
        self.launch(job.id, job.run_id)
        return True

    def _run_job(self, job_id: int, run_id: int) -> None:
        started = time.monotonic()
        child, jobs = self._take_child()
        try:
            jobs.send(run_id)
        except OSError:  # it died just now: a new child imports TensorFlow itself
            child, jobs = self._start_child()
            jobs.send(run_id)
        jobs.close()
        run = self.store.get_run(run_id)
        if run is not None:
            log.info("run=%s started %s (child pid %s)", run_id, what(self.store, run), child.pid)
        cancel_seen: float | None = None
        terminated = False
        while child.is_alive():
            child.join(self.poll_s)
            if self._stop.is_set():  # the worker is shutting down: the run can be resumed later
                child.terminate()
                child.join(5)
                self._interrupted(job_id, run_id, started)
                return
            if cancel_seen is None and self.store.cancel_requested(run_id):
                cancel_seen = time.monotonic()
                log.info("run=%s cancel requested", run_id)
            if cancel_seen is not None and time.monotonic() - cancel_seen > CANCEL_GRACE_S:
                if not terminated:
                    log.warning("run=%s ignored the cancel for %.0f s; stopping its process", run_id, CANCEL_GRACE_S)
                    terminated = True
                child.terminate()
        self._record_end(
            job_id,
            run_id,
            started,
            cancelled=cancel_seen is not None,
            not_recorded=child.exitcode == NOT_RECORDED,
            error=f"The training process exited unexpectedly (code {child.exitcode}).",
        )

    def _record_end(
        self, job_id: int, run_id: int, started: float, *, cancelled: bool, not_recorded: bool, error: str
    ) -> None:
        """A job's process is gone: end its run, unless the run recorded its own end (it no longer runs).

        Cancelled, or failed with `error`; or, when the run could not record its end for a full disk
        (`not_recorded`), interrupted until there is space. Written once the history can take it.
        """
        if not_recorded and not cancelled:
            how = {"status": "interrupted", **stopped_for_space(self.store, run_id, self.paths.run_dir(run_id))}
        else:
            how = {
                "status": "cancelled" if cancelled else "failed",
                "finished_at": utcnow(),
                "error": None if cancelled else error,
            }
        run = self._until_written(lambda: self.store.update_run(run_id, only_if_status="running", **how))
        self._until_written(lambda: self.store.finish_job(job_id, status=run.status))
        ended(run, time.monotonic() - started)

    def _interrupted(self, job_id: int, run_id: int, started: float) -> None:
        """The worker stopped while the job ran: its run is interrupted, to be resumed from its last epoch.

        A run that recorded its own end first (its process was still exiting) keeps that end, and so does its job.
        """
        run = self.store.update_run(
            run_id,
            only_if_status="running",
            status="interrupted",
            error="The worker stopped during training. Resume the run.",
        )
        self.store.finish_job(job_id, status=run.status)
        ended(run, time.monotonic() - started)

    def _until_written(self, write: Callable[[], T], *, patience_s: float = math.inf) -> T:
        """A write, tried again every so often while the history cannot take it (its disk full, a long lock).

        The worker waits rather than lose how a run ended: once space returns, the write goes through. After
        `patience_s` the last error is raised.
        """
        wait, longest = UNWRITABLE_RETRY_S
        deadline = time.monotonic() + patience_s
        while True:
            try:
                return write()
            except (DatabaseFull, DatabaseBusy) as exc:
                if time.monotonic() + wait > deadline:
                    raise
                log.warning("cannot write to the history (%s); trying again in %.0f s", exc, wait)
                time.sleep(wait)
                wait = min(wait * 2, longest)
