"""`modeldeck ui`: the dashboard, a worker and the inference server as processes, stopped together.

Each role runs in a process of its own (`modeldeck worker`, `modeldeck serve`, `streamlit run`), supervised
here: one that dies is started again (the worker then resumes the run it was training from its last epoch),
unless it keeps dying; on Ctrl-C or SIGTERM all are stopped, politely first.

The dashboard scores files on a second inference server of its own, on loopback (`scoring_port`; 0: on the
first). In one process, an 8,192-row batch and a one-row request share an interpreter lock and TensorFlow's
threads, and the row waits: one-row p99 54 ms beside batch scoring, 18 ms with the batches on a server of their
own (86 and 28 ms with three busy processes beside), at the same rows scored per second. It costs that
server's memory: TensorFlow and the models it is asked to score with.

Scoring a file is background work, as training is (`MODELDECK_JOB_NICE`): the scoring server runs
`config.SCORING_NICE` steps below the dashboard and the inference server (as do the dashboard's threads that
send it the batches), so that on a busy machine a page or a one-row request does not wait behind a batch; alone
on the machine, it scores as fast as ever.

`MODELDECK_SERVING_CPUS` keeps CPUs from the background work: the inference server runs on them, the dashboard
everywhere, the trainings and the scoring server on the rest (`serving_cpus`; README, "Under load", has the
figures).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from backend import config, serving
from backend.data import Limits
from backend.errors import BadInput
from db import open_store

log = logging.getLogger(__name__)
STOP_GRACE_S = 20.0  # how long a process may take to stop before it is killed
RESTARTS, RESTART_WINDOW_S = 5, 60.0  # a process that stops more often than this is not started again
APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


ROLES = ("worker", "inference server", "dashboard", "scoring server")


def role_of(command: list[str]) -> str:
    """Which of ROLES a command line from `commands` runs, for whoever finds the processes (tests, the load bench)."""
    if "streamlit" in command:
        return "dashboard"
    if "worker" in command:
        return "worker"
    grpc = command[command.index("--grpc-port") + 1] if "--grpc-port" in command[:-1] else ""
    return "scoring server" if grpc == "0" else "inference server"  # the scoring server's gRPC: any free port


def commands(
    *, home: Path, port: int, serve_port: int, grpc_port: int, host: str, scoring_port: int = 0
) -> list[list[str]]:
    """The command lines, in the order of ROLES (the scoring server's only given `scoring_port`).

    The scoring server listens on loopback whatever `host` is (only the dashboard asks it), its gRPC on any free
    port.
    """
    me = [sys.executable, "-m", "backend.cli", "--home", str(home)]
    upload_mb = max(1, Limits.from_env().max_upload_bytes // 2**20)
    dashboard = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port)]
    dashboard += ["--server.headless", "true", "--client.toolbarMode", "minimal", "--browser.gatherUsageStats", "false"]
    dashboard += ["--server.address", host, "--server.maxUploadSize", str(upload_mb)]
    # Two of Streamlit's conveniences for someone editing the app, off for people using it; with TensorFlow's
    # thousands of modules loaded, they were most of a page's time, under the one lock all sessions share:
    # - a full garbage collection after every script run (Python's own collector still runs);
    # - watching the source of every loaded module, for each session, to rerun on a change.
    dashboard += ["--runner.postScriptGC", "false", "--server.fileWatcherType", "none"]
    lines = [
        [*me, "worker", "--resume-interrupted"],  # a run a killed worker left is taken up again
        [*me, "serve", "--port", str(serve_port), "--grpc-port", str(grpc_port), "--host", host],
        dashboard,
    ]
    if scoring_port:
        lines.append([*me, "serve", "--port", str(scoring_port), "--grpc-port", "0", "--host", "127.0.0.1"])
    return lines


def serving_cpus() -> frozenset[int] | None:
    """MODELDECK_SERVING_CPUS: the CPUs kept from the background work, or None where it is unset (the default).

    Written as `taskset` takes them: `3`, `2-3`, `0,2`. Unset, every process may run on every CPU. Set, the
    inference server runs on them, the dashboard on every CPU, and the background work (the worker, and so its
    trainings, and the scoring server) on the other CPUs this process may use: a one-row request waits for a
    page at most, never for a training or a file's batches. Linux only: elsewhere a process cannot choose its CPUs.

    Raises:
        BadInput: it is not such a list, names a CPU this process may not use, or leaves none for the rest.
    """
    given = os.environ.get("MODELDECK_SERVING_CPUS", "").strip()
    if not given:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise BadInput("error.ui.cpus_unsupported")
    allowed = os.sched_getaffinity(0)
    cpus = _cpu_list(given)
    if cpus is None:
        raise BadInput("error.ui.bad_cpus", value=given)
    if not cpus <= allowed:
        raise BadInput("error.ui.cpus_not_here", value=given, allowed=cpu_text(allowed))
    if not allowed - cpus:
        raise BadInput("error.ui.cpus_leave_none", value=given, allowed=cpu_text(allowed))
    return cpus


def _cpu_list(text: str) -> frozenset[int] | None:
    """`0,2-3` -> {0, 2, 3}; None for anything else."""
    cpus: set[int] = set()
    for part in text.split(","):
        found = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if found is None:
            return None
        low, high = int(found[1]), int(found[2] or found[1])
        if low > high:
            return None
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def cpu_text(cpus: set[int] | frozenset[int]) -> str:
    """{0, 2, 3} -> `0,2-3`, as `_cpu_list` reads it."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def run(
    *,
    home: Path,
    port: int,
    serve_port: int,
    grpc_port: int,
    host: str,
    scoring_port: int = 0,
    kept_cpus: frozenset[int] | None = None,
) -> int:
    """Start the processes and supervise them.

    With `kept_cpus` (`serving_cpus`), the inference server runs on those CPUs, the dashboard on every CPU, and the
    background work (the worker, and so the trainings, and the scoring server) on the rest.

    Returns:
        0 after Ctrl-C or SIGTERM, 1 when one of the processes exited on its own (the others are stopped).
    """
    env = os.environ | {"MODELDECK_HOME": str(home), "MODELDECK_SERVING_URL": config.serving_url_for(serve_port)}
    if "MODELDECK_SERVING_URL" in os.environ:  # the models are served elsewhere (a TensorFlow Serving): score there
        scoring_port = 0
    if scoring_port:
        env["MODELDECK_SCORING_URL"] = f"http://127.0.0.1:{scoring_port}"
    if not serving.loopback(host):  # beyond loopback the dashboard asks who you are (off on loopback)
        env.setdefault("MODELDECK_SIGN_IN", "1")
    with _dashboard_key(host) as key:
        if key:
            env["MODELDECK_SERVING_KEY"] = key
        lines = commands(
            home=home, port=port, serve_port=serve_port, grpc_port=grpc_port, host=host, scoring_port=scoring_port
        )
        if kept_cpus is None:
            return _supervise(lines, env)
        everywhere = frozenset(os.sched_getaffinity(0))
        placed = {"inference server": kept_cpus, "dashboard": everywhere}  # the background work on the rest
        return _supervise(lines, env, {role: placed.get(role, everywhere - kept_cpus) for role in ROLES})


@contextlib.contextmanager
def _dashboard_key(host: str) -> Iterator[str | None]:
    """The key the dashboard sends to its server, where the server asks for keys (`host` beyond loopback).

    One made for this run, revoked when it stops, unless MODELDECK_SERVING_KEY already holds one.
    """
    if serving.loopback(host) or config.serving_key():
        yield None
        return
    store = open_store(config.database_url())
    name = re.sub(r"[^A-Za-z0-9_.@-]", "-", f"dashboard@{socket.gethostname()}-{os.getpid()}")[:60]
    made, key = serving.create_key(store, name, created_by="modeldeck ui")
    try:
        yield key
    finally:
        serving.revoke_key(store, made.name)
        store.close()


def _supervise(lines: list[list[str]], env: dict[str, str], cpus: dict[str, frozenset[int]] | None = None) -> int:
    """Run the processes, each role on its `cpus` where given; one that dies (a crash, `kill -9`) starts again.

    Unless it keeps dying: more than `RESTARTS` restarts of one process within `RESTART_WINDOW_S` means something
    is wrong that a restart will not fix: then all of them stop, and the exit status is 1.
    """
    roles = list(ROLES[: len(lines)]) if len(lines) <= len(ROLES) else [" ".join(line[:3]) for line in lines]
    cpus = cpus or {}
    procs = [_start(line, env, role, cpus.get(role)) for line, role in zip(lines, roles, strict=True)]
    restarts: list[list[float]] = [[] for _ in lines]
    stopping, failed = False, False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and not failed:
        time.sleep(0.5)
        for i, p in enumerate(procs):
            if stopping or p.poll() is None:
                continue
            now = time.monotonic()
            restarts[i] = [t for t in restarts[i] if now - t < RESTART_WINDOW_S] + [now]
            name = roles[i]
            if len(restarts[i]) > RESTARTS:
                log.error("the %s keeps stopping (exit %s): stopping all", name, p.returncode)
                failed = True
                break
            log.warning("the %s stopped (exit %s): starting it again", name, p.returncode)
            procs[i] = _start(lines[i], env, name, cpus.get(name))
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0 if stopping else 1


def _start(
    line: list[str], env: dict[str, str], role: str, cpus: frozenset[int] | None = None
) -> subprocess.Popen[bytes]:
    """Starts one role's process: the inference server in a session of its own, the scoring server lower.

    The session: where Linux's autogroups are on (`/proc/sys/kernel/sched_autogroup_enabled`, for processes in
    the root cgroup, as on a VM without systemd), the kernel shares the cores between sessions first and only
    then between a session's processes. In this one the server's share went to the pages' bursts, and a
    request that came meanwhile waited: one-row p99 in `python -m bench load` 69-93 ms, 54-82 ms with the
    server in a session of its own (four runs each, taken in turn). In a container or a systemd service there
    are no autogroups, and the session changes nothing. Ctrl-C reaches the server through `_supervise`.

    The scoring server runs `config.SCORING_NICE` steps below this process. The priority is set before the
    process has started a thread (each thread takes its priority from the one that starts it), so that all of
    its threads run at it. So are the CPUs it may use, where given (`serving_cpus`).
    """
    process = subprocess.Popen(line, env=env, start_new_session=role == "inference server")
    if cpus is not None:
        pin(process.pid, cpus)
    if role == "scoring server" and hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):  # gone already: the supervisor sees it stop
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + config.SCORING_NICE)
    return process


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Process `pid` on `cpus`: each of its threads now (the threads it starts later take their starter's CPUs)."""
    try:
        threads = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except FileNotFoundError:  # gone already: the supervisor sees it stop
        return
    for thread in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(thread, cpus)
