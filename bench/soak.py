"""Soak: the job queue and run history under four workers and a writer, on SQLite and on PostgreSQL.

For each database: 200 runs are submitted, a few at a time, while four worker processes claim jobs exactly as
`modeldeck worker` does (`Store.claim_job`) and play a short job's part in the history (an epoch's metrics, the
run's end, the job's end), and a fifth process hammers the history with epoch records and run listings. What
trains is not measured here (the training benches do that): the machinery that hands jobs out and keeps their
history is.

Checked: every job is run exactly once, no run is lost or left behind, the history answers throughout.
Reported: the time from submit to a worker's claim, p50 and p95, and jobs per second.

PostgreSQL is a throwaway server from Debian's binaries (as the tests start one); without them only SQLite runs.
Not yet: the same 200 jobs through Ray (the `MODELDECK_EXECUTOR=ray` work of issue 18).
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
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
        store.record_epoch(job.run_id, epoch=0, logs={"loss": 0.5, "val_loss": 0.6}, progress={"fraction": 1.0})
        store.update_run(job.run_id, status="succeeded", metrics={"loss": 0.5})
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


def soak(url: str) -> dict[str, Any]:
    from db import open_store

    store = open_store(url)
    version = _version(store)
    hammered = store.create_run(version_id=version.id, task="regression", target="a", spec={}, queue=False)
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    claims, counts, stop, done = manager.list(), manager.list(), ctx.Event(), ctx.Event()
    workers = [ctx.Process(target=_worker, args=(url, f"w{i}", claims, done)) for i in range(WORKERS)]
    hammer = ctx.Process(target=_hammer, args=(url, hammered.id, stop, counts))
    for process in [*workers, hammer]:
        process.start()
    time.sleep(3)  # the processes' imports: the clock starts with the first submit
    started = time.monotonic()
    runs = []
    for _ in range(JOBS):
        runs.append(store.create_run(version_id=version.id, task="regression", target="a", spec={}).id)
        time.sleep(SUBMIT_EVERY_S)
    while sum(1 for r in runs if store.get_run(r).status == "succeeded") < JOBS and time.monotonic() - started < 300:
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    done.set()
    stop.set()
    for process in [*workers, hammer]:
        process.join(60)
    taken = list(claims)
    finished = [store.get_run(r) for r in runs]
    waits = sorted((r.started_at - r.created_at).total_seconds() for r in finished if r.started_at)
    store.close()
    by_job = [job for _, job, _ in taken]
    return {
        "claims": len(taken),
        "twice": len(by_job) - len(set(by_job)),
        "lost": sum(1 for r in finished if r.status != "succeeded"),
        "p50": statistics.median(waits) if waits else float("nan"),
        "p95": waits[int(0.95 * (len(waits) - 1))] if waits else float("nan"),
        "per_s": JOBS / elapsed,
        "hammered": counts[0] if counts else 0,
        "per_worker": {w: sum(1 for name, _, _ in taken if name == w) for w in sorted({n for n, _, _ in taken})},
    }


def main() -> None:
    from tests import factories
    from tests import postgres as pg

    print(f"soak: {JOBS} jobs, {WORKERS} workers and one writer per database (the queue and history, not training)")
    header = f"{'database':<12}{'claims':>8}{'twice':>7}{'lost':>6}{'submit->claim p50':>19}{'p95':>9}"
    print(f"{header}{'jobs/s':>8}  writer")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = soak(f"sqlite:///{Path(folder) / 'soak.db'}")
    if pg.binaries() is not None:
        with pg.server(factories.free_ports(1)[0]) as server:
            results["postgresql"] = soak(server.new_database())
    else:
        print("postgresql: not installed here (Debian's postgresql package): skipped")
    for name, r in results.items():
        counts = f"{name:<12}{r['claims']:>8}{r['twice']:>7}{r['lost']:>6}"
        waits = f"{r['p50'] * 1000:>16.0f} ms{r['p95'] * 1000:>6.0f} ms{r['per_s']:>8.1f}"
        print(f"{counts}{waits}  {r['hammered']} epochs written, jobs per worker {r['per_worker']}")
        ok = r["claims"] == JOBS and r["twice"] == 0 and r["lost"] == 0
        print("  OK: every job ran exactly once, none lost" if ok else "  FAILED: a job ran twice, or was lost")
    print("ray: not yet measured (MODELDECK_EXECUTOR=ray is not built)")


if __name__ == "__main__":
    main()
