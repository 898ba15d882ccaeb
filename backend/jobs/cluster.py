"""Where a worker runs its jobs: here (`worker.Worker`), or on a Ray cluster (`MODELDECK_EXECUTOR=ray`).

On Ray, the worker sends each run it claims to the cluster, and a search its trials.

The worker still claims jobs from the shared history, beats its heartbeat and watches for cancels; only where a
run's code runs changes: in a Ray task, in a process of its own on any node. The process exits after the run
(Ray's `max_calls=1`), as the local worker's child does, so a GPU allocation never outlives its run.

What a cluster needs (the worker checks the first two when it starts, and refuses in a line that says which):
- The same MODELDECK_HOME on every node: one shared volume (NFS, EFS, CephFS...) mounted at the same path. Runs
  write their checkpoints, curves and exports there; the dashboard and the inference server read them there.
- A history every node reaches: PostgreSQL (MODELDECK_DATABASE_URL). SQLite only on a one-machine cluster.
- ModelDeck installed on every node, the same version (one container image for all).

Resources: a run asks for MODELDECK_RAY_CPUS CPUs (default 1) and its spec's `gpus`. A search's own task only
proposes trials and asks for no CPU; its trials run at once, `parallel` of them (default: as many as the cluster
holds). The worker runs as many runs at once as the cluster holds.

Cancel: a run sees its cancel in the history and stops after the batch, as locally; one that ignores it for
`CANCEL_GRACE_S` is killed (`ray.cancel(force=True)`, which takes a search's trials with it). A worker that dies
takes its Ray tasks with it (Ray ends the tasks of a driver that is gone); its runs are marked interrupted and
resume from their last epoch, as locally.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend import config
from backend.config import Paths
from backend.errors import BadInput
from backend.jobs.child import NOT_RECORDED, run_job, stopped_for_space
from backend.jobs.worker import CANCEL_GRACE_S, Worker, ended, what
from db import Run, Store, open_store
from db.store import utcnow

log = logging.getLogger(__name__)

PASSED_ON = ("MODELDECK_", "TF_", "KERAS_")  # the worker's settings a run's task sees too
PROBE_TIMEOUT_S = 120.0  # a node's first task starts a Python process: seconds, not minutes
CANCEL_CHECK_S = 0.5  # how often the runs in flight are asked whether a cancel came

Body = Callable[[str, str, int], object]  # (database_url, home, run_id): what a run's task runs; `run_on_ray`


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at `address` (default `config.ray_address()`) as a driver.

    Raises:
        BadInput: Ray is not installed, or no cluster answers at the address.
    """
    try:
        import ray
    except ImportError:
        raise BadInput("error.ray.not_installed") from None
    if ray.is_initialized():
        return
    address = address or config.ray_address()
    refused = _unanswered(address)
    if refused:  # Ray itself would retry for minutes before it gave up
        raise BadInput("error.ray.unreachable", address=address, reason=refused)
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, runtime_env={"env_vars": env})
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError or ValueError, by what is wrong
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise BadInput("error.ray.unreachable", address=address, reason=reason) from None


def _unanswered(address: str) -> str | None:
    """Why nothing listens at a `HOST:PORT` address (None when something does, or for `auto` and `ray://…`)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        return f"{exc.strerror or type(exc).__name__}."
    return None


def run_cpus() -> float:
    """CPUs a run's task asks for (MODELDECK_RAY_CPUS, default 1)."""
    try:
        cpus = float(os.environ.get("MODELDECK_RAY_CPUS", "1"))
    except ValueError:
        cpus = 0.0
    if cpus <= 0:
        raise BadInput("error.ray.bad_cpus", value=os.environ.get("MODELDECK_RAY_CPUS", ""))
    return cpus


def capacity() -> int:
    """How many runs the cluster holds at once: its CPUs over a run's."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 0) // run_cpus()))


def cluster_gpus() -> int:
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def _sees(probe: str, token: str) -> bool:
    path = Path(probe)
    return path.is_file() and path.read_text() == token


def check(home: Path, database_url: str) -> int:
    """Check that every live node of the cluster can do the worker's runs; returns how many nodes there are.

    Each node runs a small task that reads a file the worker has just written in the home: a node that does not
    see it has another disk there, and its runs' exports would be lost to the dashboard.

    Raises:
        BadInput: the history is a SQLite file and the cluster has several machines, or a node does not see the home.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) > 1 and database_url.startswith("sqlite"):
        raise BadInput("error.ray.sqlite_many_nodes", nodes=len(nodes))
    probe = home / ".ray-probe" / uuid.uuid4().hex
    probe.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    probe.write_text(token)
    sees = ray.remote(_sees)
    try:
        answers = [
            sees.options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(str(probe), token)
            for n in nodes
        ]
        seen = ray.get(answers, timeout=PROBE_TIMEOUT_S)
    finally:
        probe.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen, strict=True) if not ok]
    if blind:
        raise BadInput("error.ray.home_not_shared", home=str(home), nodes=", ".join(blind))
    return len(nodes)


def run_on_ray(database_url: str, home: str, run_id: int) -> int | None:
    """A run's Ray task: `child.run_job`, with a search's trials sent to the cluster as tasks of their own."""
    store = open_store(database_url)
    run = store.get_run(run_id)
    store.close()
    search = (run.spec.get("search") if run else None) or {}
    parallel = int(search.get("parallel", 0))
    trials = RayTrials(database_url=database_url, home=home, parallel=parallel) if search else None
    try:
        run_job(database_url, home, run_id, trials=trials)
    except SystemExit as exc:  # the history could not take the run's end: the worker writes it, once it can
        return int(exc.code) if isinstance(exc.code, int) else 1
    return None


_remotes: dict[Body, Any] = {}


def submit(body: Body, run: Run, *, database_url: str, home: str) -> Any:
    """Start `body` for `run` as a Ray task with the resources it needs; returns the task's ObjectRef.

    A search's own task asks for no CPU (it proposes trials and waits for them, which are tasks of their own).
    """
    import ray

    if body not in _remotes:
        _remotes[body] = ray.remote(max_calls=1)(body)  # a process per run, as the local worker's child
    searching = "search" in run.spec
    options = {
        "num_cpus": 0 if searching else run_cpus(),
        "num_gpus": 0 if searching else int(run.spec.get("gpus") or 0),
        "name": f"modeldeck-run-{run.id}",
    }
    return _remotes[body].options(**options).remote(database_url, home, run.id)


def gpus_missing(run: Run) -> str | None:
    """Why the cluster cannot run `run` (it asks for more GPUs than the cluster has), else None."""
    asked, have = int(run.spec.get("gpus") or 0), cluster_gpus()
    if asked > have:
        return str(BadInput("error.ray.no_gpus", run_id=run.id, asked=asked, have=have))
    return None


def _how_it_ended(ref: Any) -> str | None:
    """None when the task returned; else why it did not (it crashed, was killed, or its node went away).

    "not_recorded" when the run ended but the history could not take it (its disk full): the task's body
    returned `NOT_RECORDED`.
    """
    import ray

    try:
        answer = ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return "cancelled"
    except ray.exceptions.RayError as exc:
        reason = " ".join(str(exc).split())[:300]
        return str(BadInput("error.ray.task_lost", kind=type(exc).__name__, reason=reason))
    return "not_recorded" if answer == NOT_RECORDED else None


@dataclass
class _Flight:
    job_id: int
    run_id: int
    ref: Any
    started: float
    cancel_seen: float | None = None


class RayWorker(Worker):
    """A worker whose runs are Ray tasks: several at once, as many as the cluster holds."""

    def __init__(self, store: Store, *, database_url: str, home: Path, poll_s: float = 0.5, body: Body = run_on_ray):
        super().__init__(store, database_url=database_url, home=home, poll_s=poll_s)
        self.body = body
        self._flights: list[_Flight] = []
        self._slots = 1
        self._cancels_read = 0.0  # when the runs in flight were last asked for a cancel

    def prepare(self) -> None:
        connect()
        nodes = check(self.home, self.database_url)
        self._slots = capacity()
        log.info("on the Ray cluster at %s: %d node(s), %d run(s) at once", config.ray_address(), nodes, self._slots)

    def slots(self) -> int:
        return self._slots

    def in_flight(self) -> int:
        return len(self._flights)

    def wait_for_work(self, until_idle: bool) -> None:
        """Nothing to ready: a Ray task starts its own process."""

    def launch(self, job_id: int, run_id: int) -> None:
        run = self.store.get_run(run_id)
        if run is None:
            self.store.finish_job(job_id, status="failed")
            return
        refused = gpus_missing(run)
        if refused:
            run = self.store.update_run(run_id, status="failed", finished_at=utcnow(), error=refused)
            self.store.finish_job(job_id, status="failed")
            ended(run, 0.0)
            return
        ref = submit(self.body, run, database_url=self.database_url, home=str(self.home))
        self._flights.append(_Flight(job_id, run_id, ref, time.monotonic()))
        log.info("run=%s started %s (Ray task %s)", run_id, what(self.store, run), ref.task_id().hex())

    def tend(self) -> None:
        import ray

        if not self._flights:
            return
        checking = time.monotonic() - self._cancels_read >= CANCEL_CHECK_S  # a read per run: not every poll
        if checking:
            self._cancels_read = time.monotonic()
        refs = [f.ref for f in self._flights]
        finished, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = {r.hex() for r in finished}
        still: list[_Flight] = []
        for flight in self._flights:
            if flight.ref.hex() in done:
                self._land(flight)
                continue
            still.append(flight)
            if flight.cancel_seen is None and checking and self.store.cancel_requested(flight.run_id):
                flight.cancel_seen = time.monotonic()
                log.info("run=%s cancel requested", flight.run_id)
            if flight.cancel_seen is not None and time.monotonic() - flight.cancel_seen > CANCEL_GRACE_S:
                log.warning("run=%s ignored the cancel for %.0f s; stopping its task", flight.run_id, CANCEL_GRACE_S)
                ray.cancel(flight.ref, force=True)
                flight.cancel_seen = float("inf")  # once
        self._flights = still

    def _land(self, flight: _Flight) -> None:
        """A task ended: the run has recorded how, unless its process died first; then say so here."""
        why = _how_it_ended(flight.ref)
        self._record_end(
            flight.job_id,
            flight.run_id,
            flight.started,
            cancelled=why == "cancelled" or flight.cancel_seen is not None,
            not_recorded=why == "not_recorded",
            error=why or "The run's Ray task ended without saying how the run ended.",
        )

    def shut_down(self) -> None:
        import ray

        for flight in self._flights:
            ray.cancel(flight.ref, force=True)
            self._interrupted(flight.job_id, flight.run_id, flight.started)
        self._flights = []


class RayTrials:
    """A search's trials as Ray tasks, `slots` at once (`tuning.search` proposes them, this runs them)."""

    def __init__(self, *, database_url: str, home: str, parallel: int = 0) -> None:
        self.database_url, self.home = database_url, home
        self.slots = parallel or capacity()
        self._refs: dict[Any, int] = {}

    def start(self, store: Store, run: Run) -> None:
        refused = gpus_missing(run)
        if refused:
            store.update_run(run.id, status="failed", finished_at=utcnow(), error=refused)
            self._refs[None] = run.id  # ended already: the next wait hands it back
            return
        self._refs[submit(run_on_ray, run, database_url=self.database_url, home=self.home)] = run.id

    def wait(self, store: Store) -> list[int]:
        """Block until a trial ends; the ids of those that have."""
        import ray

        ended_now = [self._refs.pop(None)] if None in self._refs else []
        if ended_now or not self._refs:
            return ended_now
        finished, rest = ray.wait(list(self._refs), num_returns=1)
        if rest:  # and any other that ended meanwhile
            finished += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for ref in finished:
            run_id = self._refs.pop(ref)
            why = _how_it_ended(ref)
            if why == "not_recorded":  # its end did not fit in the history: the search stops for space too
                error = stopped_for_space(store, run_id, Paths(Path(self.home)).run_dir(run_id))["error"]
                store.update_run(run_id, only_if_status="running", status="failed", finished_at=utcnow(), error=error)
            elif why is not None:
                status = "cancelled" if why == "cancelled" else "failed"
                error = None if why == "cancelled" else why
                store.update_run(run_id, only_if_status="running", status=status, finished_at=utcnow(), error=error)
            ended_now.append(run_id)
        return ended_now


def serve_forever(
    store: Store,
    *,
    database_url: str,
    home: Path,
    until_idle: bool = False,
    resume_interrupted: bool = False,
    executor: str = "local",
) -> None:
    """Run a worker in this process until SIGINT or SIGTERM (or, with `until_idle`, until the queue is empty).

    Args:
        store: The store whose jobs the worker claims.
        database_url: The same database, for the job's child process (or Ray task) to open.
        home: The ModelDeck home the runs write into.
        until_idle: Return once no job is queued and none runs.
        resume_interrupted: Queue again at once the runs a dead worker left, rather than wait for `runs resume`.
        executor: `local` (a child process per job) or `ray` (a Ray task per job, on the cluster of
            `config.ray_address()`).

    Raises:
        BadInput: an unknown executor, or a Ray cluster that cannot be reached or used (`check`).
    """
    if executor == "ray":
        worker: Worker = RayWorker(store, database_url=database_url, home=home)
    elif executor == "local":
        worker = Worker(store, database_url=database_url, home=home)
    else:
        raise BadInput("error.worker.unknown_executor", executor=executor)
    worker.resume_interrupted = resume_interrupted
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run(until_idle=until_idle)
