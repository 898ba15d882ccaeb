"""Soak: the job queue and run history under four workers and a writer, on SQLite and on PostgreSQL.

For each database: 200 runs are submitted, a few at a time, while four worker processes claim jobs exactly as
`modeldeck worker` does (`Store.claim_job`) and play a short job's part in the history (an epoch's metrics, the
run's end, the job's end), and a fifth process hammers the history with epoch records and run listings. What
trains is not measured here (the training benches do that): the machinery that hands jobs out and keeps their
history is.

Checked: every job is run exactly once, no run is lost or left behind, the history answers throughout.
Reported: the time from submit to a worker's claim, p50 and p95, and jobs per second.

Then the same 200 jobs through Ray, per database: four `RayWorker`s (the worker of `MODELDECK_EXECUTOR=ray`) claim
them and run each as a Ray task on a local head with two CPUs, a process per task as for a real run. The job's part
is played by the task. Reported beside the rest: Ray's overhead per job, the mean claim-to-end time of a job through
Ray less that of the same job played in the worker itself.

PostgreSQL is a throwaway server from Debian's binaries (as the tests start one); without them only SQLite runs.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

JOBS = 200
WORKERS = 4
SUBMIT_EVERY_S = 0.01  # 200 jobs over about two seconds: a queue that fills faster than four workers empty it


def _version(store: Any) -> Any:
    _, version = store.add_dataset_version(
        name="soak",
        kind="tabular",
        source="bench",
        hash="soak",
        path="/x",
        rows=1,
        columns=[{"name": "a", "kind": "numeric"}],
        target="a",
        task="regression",
    )
    return version


def _job_part(store: Any, run_id: int, *, since: float | None = None) -> None:
    """What a short job writes: an epoch's metrics, then how the run ended (and, from `since`, how long it took)."""
    from db.store import utcnow

    store.record_epoch(run_id, epoch=0, logs={"loss": 0.5, "val_loss": 0.6}, progress={"fraction": 1.0})
    took = {"task_s": time.monotonic() - since} if since is not None else {}
    store.update_run(run_id, status="succeeded", metrics={"loss": 0.5, **took}, finished_at=utcnow())


def play(database_url: str, _home: str, run_id: int) -> None:
    """A Ray task's body in place of `child.run_job`: the job's part, from a process of its own, timed."""
    since = time.monotonic()
    from db import open_store

    store = open_store(database_url)
    _job_part(store, run_id, since=since)
    store.close()


def _ray_worker(url: str, home: str, address: str, name: str, claims: Any, stop: Any) -> None:
    """A `RayWorker` as `modeldeck worker` runs it under MODELDECK_EXECUTOR=ray, with the job's part as its body."""
    os.environ["MODELDECK_RAY_ADDRESS"] = address
    from backend.jobs.cluster import RayWorker
    from db import open_store

    store = open_store(url)
    worker = RayWorker(store, database_url=url, home=Path(home), poll_s=0.05, body=play)
    launch = worker.launch

    def counted(job_id: int, run_id: int) -> None:
        claims.append((name, job_id, run_id))
        launch(job_id, run_id)

    worker.launch = counted  # type: ignore[method-assign]
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    worker.run()
    store.close()


def _worker(url: str, name: str, claims: Any, stop: Any) -> None:
    from db import open_store

    store = open_store(url)
    store.register_worker(name, host="bench", pid=0)
    while True:
        job = store.claim_job(name)
        if job is None:
            if stop.is_set():
                break
            time.sleep(0.005)
            continue
        claims.append((name, job.id, job.run_id))
        _job_part(store, job.run_id)
        store.finish_job(job.id, status="succeeded")
        store.heartbeat(name)
    store.stop_worker(name)
    store.close()


def _hammer(url: str, run_id: int, stop: Any, counts: Any) -> None:
    """A writer and reader that never rests: epoch records on a run of its own, and the runs table, listed."""
    from db import open_store

    store = open_store(url)
    epoch = 0
    while not stop.is_set():
        store.record_epoch(run_id, epoch=epoch, logs={"loss": 1.0 / (epoch + 1)}, progress={"epoch": epoch})
        store.run_summaries(limit=50)
        epoch += 1
    counts.append(epoch)
    store.close()


def soak(url: str, *, ray_address: str | None = None) -> dict[str, Any]:
    """Submit the jobs while the workers (local, or Ray's with `ray_address`) and the writer run; what happened."""
    from db import open_store

    store = open_store(url)
    version = _version(store)
    hammered = store.create_run(version_id=version.id, task="regression", target="a", spec={}, queue=False)
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    claims, counts, stop, done = manager.list(), manager.list(), ctx.Event(), ctx.Event()
    if ray_address is None:
        workers = [ctx.Process(target=_worker, args=(url, f"w{i}", claims, done)) for i in range(WORKERS)]
    else:
        home = tempfile.mkdtemp(prefix="soak-home-")
        workers = [
            ctx.Process(target=_ray_worker, args=(url, home, ray_address, f"r{i}", claims, done))
            for i in range(WORKERS)
        ]
    hammer = ctx.Process(target=_hammer, args=(url, hammered.id, stop, counts))
    for process in [*workers, hammer]:
        process.start()
    time.sleep(3 if ray_address is None else 10)  # imports, Ray's connections: the clock starts at the first submit
    started = time.monotonic()
    runs = []
    for _ in range(JOBS):
        runs.append(store.create_run(version_id=version.id, task="regression", target="a", spec={}).id)
        time.sleep(SUBMIT_EVERY_S)
    patience = 300 if ray_address is None else 900  # a process per job on two cores: minutes, not seconds
    while (
        sum(1 for r in runs if store.get_run(r).status == "succeeded") < JOBS and time.monotonic() - started < patience
    ):
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    done.set()
    stop.set()
    for process in [*workers, hammer]:
        process.join(60)
    taken = list(claims)
    finished = [store.get_run(r) for r in runs]
    waits = sorted((r.started_at - r.created_at).total_seconds() for r in finished if r.started_at)
    spans = [(r.finished_at - r.started_at).total_seconds() for r in finished if r.started_at and r.finished_at]
    in_task = [r.metrics["task_s"] for r in finished if "task_s" in (r.metrics or {})]
    store.close()
    by_job = [job for _, job, _ in taken]
    return {
        "claims": len(taken),
        "twice": len(by_job) - len(set(by_job)),
        "lost": sum(1 for r in finished if r.status != "succeeded"),
        "p50": statistics.median(waits) if waits else float("nan"),
        "p95": waits[int(0.95 * (len(waits) - 1))] if waits else float("nan"),
        "per_s": JOBS / elapsed,
        "span": statistics.mean(spans) if spans else float("nan"),
        "in_task": statistics.mean(in_task) if in_task else float("nan"),
        "hammered": counts[0] if counts else 0,
        "per_worker": {w: sum(1 for name, _, _ in taken if name == w) for w in sorted({n for n, _, _ in taken})},
    }


def one_at_a_time(url: str, address: str, jobs: int = 20) -> dict[str, float]:
    """Ray's cost per job with nothing else running: one `RayWorker`, one job at a time, claim to end."""
    from backend.jobs.cluster import RayWorker
    from db import open_store

    os.environ["MODELDECK_RAY_ADDRESS"] = address
    store = open_store(url)
    version = _version(store)
    worker = RayWorker(
        store, database_url=url, home=Path(tempfile.mkdtemp(prefix="soak-home-")), poll_s=0.01, body=play
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    runs = []
    for _ in range(jobs):
        run = store.create_run(version_id=version.id, task="regression", target="a", spec={})
        while store.get_run(run.id).status != "succeeded":
            time.sleep(0.01)
        runs.append(store.get_run(run.id))
    worker.stop()
    thread.join(30)
    import ray

    ray.shutdown()
    store.close()
    spans = [(r.finished_at - r.started_at).total_seconds() for r in runs]
    return {"span": statistics.mean(spans), "in_task": statistics.mean(r.metrics["task_s"] for r in runs)}


def main() -> None:
    from tests import factories, ray_head
    from tests import postgres as pg

    print(f"soak: {JOBS} jobs, {WORKERS} workers and one writer per database (the queue and history, not training)")
    header = f"{'database':<22}{'claims':>8}{'twice':>7}{'lost':>6}{'submit->claim p50':>19}{'p95':>9}"
    print(f"{header}{'jobs/s':>8}{'claim->end':>12}  writer")
    results = {}
    with tempfile.TemporaryDirectory() as folder, ray_head.head(factories.free_ports(1)[0], cpus=2) as address:
        quiet = one_at_a_time(f"sqlite:///{Path(folder) / 'quiet.db'}", address)
        results["sqlite"] = soak(f"sqlite:///{Path(folder) / 'soak.db'}")
        results["sqlite, through Ray"] = soak(f"sqlite:///{Path(folder) / 'ray.db'}", ray_address=address)
        if pg.binaries() is not None:
            with pg.server(factories.free_ports(1)[0]) as server:
                results["postgresql"] = soak(server.new_database())
                results["postgresql, through Ray"] = soak(server.new_database(), ray_address=address)
        else:
            print("postgresql: not installed here (Debian's postgresql package): skipped")
    for name, r in results.items():
        counts = f"{name:<22}{r['claims']:>8}{r['twice']:>7}{r['lost']:>6}"
        waits = f"{r['p50'] * 1000:>16.0f} ms{r['p95'] * 1000:>6.0f} ms{r['per_s']:>8.1f}{r['span'] * 1000:>9.0f} ms"
        print(f"{counts}{waits}  {r['hammered']} epochs written, jobs per worker {r['per_worker']}")
        ok = r["claims"] == JOBS and r["twice"] == 0 and r["lost"] == 0
        print("  OK: every job ran exactly once, none lost" if ok else "  FAILED: a job ran twice, or was lost")
    rays = (quiet["span"] - quiet["in_task"]) * 1000
    print(
        f"Ray's cost per job, one at a time with nothing else running (SQLite): {quiet['span'] * 1000:.0f} ms from"
        f" claim to end, of which {quiet['in_task'] * 1000:.0f} ms in the task: {rays:.0f} ms of Ray's"
        " (scheduling, a new process per task as for a real run, passing the result back)"
    )
    for db in ("sqlite", "postgresql"):
        if f"{db}, through Ray" in results:
            r = results[f"{db}, through Ray"]
            print(
                f"through Ray on {db}: {r['span'] * 1000:.0f} ms from claim to end, of which {r['in_task'] * 1000:.0f}"
                f" ms in the task itself (opening the history, writing the job's part); the other"
                f" {(r['span'] - r['in_task']) * 1000:.0f} ms are Ray's: waiting for a CPU, a new process per task"
                " (as for a real run), its imports"
            )


if __name__ == "__main__":
    main()
