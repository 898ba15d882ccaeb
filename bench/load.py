"""Load: 20 dashboard sessions clicking through the pages, 4 trainings and batch scoring at once, on loopback.

A fresh home gets the churn table and one trained model; then `modeldeck ui` runs (dashboard, worker, inference
server) and, for `DURATION_S` seconds:

- 20 visitors click through every page of the menu, each click timed from the click until the page's script has
  finished. Each reads the page for 1-5 s before the next click (Locust's customary wait), and while it reads, a
  page with a live fragment (Training, while a run trains) reruns it every second, as the browser does. 19 of them
  speak Streamlit's protocol (`tests/dashboard_client.py`): a real session on the server each, without 19
  browsers rendering on the same two cores. One is headless Chromium, timed until the page has settled (no script
  running), which is what a person sees;
- 4 training runs are queued at the start (the worker trains them one after another, as it does);
- batch scoring: a 50,000-row file scored as the dashboard's Scoring section does (`backend.scoring`, 8,192-row
  batches, two in flight, on the scoring server `modeldeck ui` starts for it), again and again, from a process of
  its own;
- an online client, another process, sends one row 20 times a second on a fixed schedule, each request timed;
- a probe, another process, that only sleeps 5 ms and wakes, timing how late it wakes: the wait for a core that
  the client's and the server's processes have too, before any work of theirs.

The online client and the probe each run in a session of their own, as programs started on their own do (and so,
where Linux's autogroups are on, in a scheduling group of their own: `ui._start`). The scoring client stands for
the dashboard's own batches and stays in the bench's session, with the visitors.

Then, for `SATURATION_S` seconds, the 20 visitors click with no pause: how many pages a second the dashboard
serves when it is the bottleneck.

All that twice: as `modeldeck ui` runs by default, then with one CPU kept from the background work for the
inference server (`MODELDECK_SERVING_CPUS`): the dashboard on every CPU, the trainings, the scoring and the
bench's own processes (which stand for the visitors' and the clients' machines) on the others.

Reported: page response p50/p95 (protocol and browser), inference p50/p99 (as the client saw it, and the part the
server's handler took), rows scored per second, errors, the CPU each process took, pages per second at saturation.
Targets (issue 18): zero errors, page p95 under 2 s, inference p99 under 50 ms, on this machine (2 cores).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from backend import ui
from backend.serving.requestlog import FLUSH_SECONDS

DURATION_S = 90
SATURATION_S = 30
SESSIONS = 20  # one of them a real browser
TRAININGS = 4
READING_S = (1.0, 5.0)  # how long a visitor looks at a page before the next click
ROW = {"tenure": 12, "plan": "basic", "charges": 70.5}
KINDS = ("online", "scoring", "probe")  # the inference server's two clients and the probe, each a process of its own
PROBE_SLEEP_S = 0.005
ONLINE_RATE = 20  # one-row requests a second
SCORED_ROWS = 50_000


def _cli(home: Path, *args: str) -> None:
    from tests import factories

    done = factories.cli(home, *args, timeout=900)
    if done.returncode:
        raise SystemExit(f"modeldeck {' '.join(args)} failed: {done.stderr.strip()[-500:]}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _online(rest: str, stop: threading.Event, times: list[float], errors: list[str]) -> None:
    """One row at a time, ONLINE_RATE a second on a fixed schedule (a late answer does not delay the next ask)."""
    with httpx.Client(timeout=60) as client:
        due = time.perf_counter()
        while not stop.is_set():
            due += 1 / ONLINE_RATE
            started = time.perf_counter()
            try:
                answer = client.post(f"{rest}/v1/models/churn:predict", json={"instances": [ROW]})
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code}: {answer.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}")
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(max(0.0, due - time.perf_counter()))


def _batch_scoring(rest: str, stop: threading.Event, scored: list[int], errors: list[str]) -> None:
    from backend import scoring
    from tests import factories

    frame = factories.churn_frame(rows=SCORED_ROWS).drop(columns=["churn"])
    predict = scoring.served("churn", base_url=rest)
    while not stop.is_set():
        try:
            scored.append(len(scoring.score(frame, predict=predict).frame))
        except Exception as exc:  # a failed batch is an error of the run
            errors.append(f"scoring: {type(exc).__name__}: {exc}")


def _probe(_rest: str, stop: threading.Event, late: list[float], _errors: list[str]) -> None:
    """Sleeps PROBE_SLEEP_S and wakes, again and again, timing how late each wake-up comes (ms): the wait for a
    core that each process a request passes through (client, server) has as well, whatever its own work."""
    while not stop.is_set():
        started = time.perf_counter()
        time.sleep(PROBE_SLEEP_S)
        late.append((time.perf_counter() - started - PROBE_SLEEP_S) * 1000)


def _client(kind: str, rest: str, seconds: float, results: Any) -> None:
    """A client process of its own (`online` or `scoring`), as real clients are: in the bench's process, its
    threads would wait on the visitors' share of the interpreter lock, and that wait would count as latency."""
    if kind != "scoring":  # a program of its own, as a service that calls the server is: a session of its own
        os.setsid()
    stop, values, errors = threading.Event(), [], []  # type: ignore[var-annotated]
    threading.Timer(seconds, stop.set).start()
    run: dict[str, Callable[[str, threading.Event, list[Any], list[str]], None]]
    run = {"online": _online, "scoring": _batch_scoring, "probe": _probe}
    run[kind](rest, stop, values, errors)
    results.put((kind, values, errors))


def _cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user and system, with reaped children's) of each process under `root`, by its role."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        stats[int(stat.parent.name)] = (int(fields[1]), ticks, [w.decode(errors="replace") for w in command])
    roles: dict[str, float] = {}
    for parent, ticks, command in stats.values():
        if parent != root:
            continue
        role = ui.role_of(command)
        roles[role] = roles.get(role, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    return roles


def _handled_one_row(home: Path) -> list[float]:
    """The one-row requests' latency as the server's request log has it: from the body parsed to the answer built,
    with neither the wait for a thread nor the HTTP exchange; the difference is the machine's queue, not the model's."""
    from backend.config import database_url_for
    from db import open_store

    time.sleep(2 * FLUSH_SECONDS)  # the log's last write
    store = open_store(database_url_for(home))
    try:
        return [r.latency_ms for r in store.logged_requests("churn", limit=100_000) if r.rows == 1]
    finally:
        store.close()


class Tally:
    def __init__(self) -> None:
        self.pages: list[float] = []  # seconds per click, protocol visitors
        self.by_page: dict[str, list[float]] = {}
        self.browser: list[float] = []  # seconds per click, the real browser
        self.errors: list[str] = []


def main() -> None:
    _load(None)
    allowed = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
    if len(allowed) >= 2:
        _load(frozenset({max(allowed)}))


def _load(kept: frozenset[int] | None) -> None:
    """One run of the load; with `kept`, the inference server on those CPUs (MODELDECK_SERVING_CPUS) and the
    background work and the bench's own processes (as the visitors' machines would be) on the rest."""
    from tests import factories

    env = {"MODELDECK_SERVING_CPUS": ui.cpu_text(kept)} if kept else {}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        csv = Path(folder) / "churn.csv"
        factories.churn_frame(rows=2000).to_csv(csv, index=False)
        _cli(home, "data", "add", str(csv), "--target", "churn")
        _cli(home, "train", "churn", "--preset", "fast", "--set", "architecture=mlp", "--wait")
        single: list[float] = []
        scored: list[int] = []
        late: list[float] = []
        tally, saturated = Tally(), Tally()
        everywhere = frozenset(os.sched_getaffinity(0)) if kept else frozenset()
        with factories.running_ui(home, log=Path(folder) / "ui.log", env=env) as (app, url, rest, scoring_url):
            if kept:
                ui.pin(os.getpid(), everywhere - kept)  # the clients, the visitors and Chromium start from here
            for _ in range(TRAININGS):
                _cli(home, "train", "churn", "--preset", "fast", "--set", "architecture=mlp")
            spawn = multiprocessing.get_context("spawn")
            results = spawn.Queue()
            where = {"online": rest, "scoring": scoring_url, "probe": ""}  # a file is scored on a server of its own
            clients = [spawn.Process(target=_client, args=(kind, where[kind], DURATION_S, results)) for kind in KINDS]
            before, started = _cpu_seconds(app.pid), time.perf_counter()
            for client in clients:
                client.start()
            asyncio.run(_visitors(url, tally, DURATION_S, READING_S, browser=True))
            into: dict[str, list[Any]] = {"online": single, "scoring": scored, "probe": late}
            for _ in clients:
                kind, values, errors = results.get(timeout=120)
                into[kind].extend(values)
                tally.errors += errors
            spent, after = time.perf_counter() - started, _cpu_seconds(app.pid)
            handled = _handled_one_row(home)
            asyncio.run(_visitors(url, saturated, SATURATION_S, (0.0, 0.0), browser=False))
            if kept:
                ui.pin(os.getpid(), everywhere)
        pages = tally.pages + tally.browser
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"load: {SESSIONS} dashboard sessions, {TRAININGS} trainings, batch scoring, {DURATION_S} s, {cpus} CPUs")
        if kept:
            print(
                f"  MODELDECK_SERVING_CPUS={ui.cpu_text(kept)}: the inference server there, the dashboard everywhere, "
                "the trainings, the scoring and the load's own processes on the other CPUs"
            )
        print(
            f"  page response: {len(pages)} clicks, p50 {statistics.median(pages):.2f} s, p95 "
            f"{_percentile(pages, 0.95):.2f} s (target < 2 s); the real browser's {len(tally.browser)}: p50 "
            f"{statistics.median(tally.browser):.2f} s, p95 {_percentile(tally.browser, 0.95):.2f} s"
        )
        slowest = sorted(tally.by_page.items(), key=lambda item: -_percentile(item[1], 0.95))
        print(
            "  by page, p50/p95 s: "
            + ", ".join(f"{n} {statistics.median(v):.2f}/{_percentile(v, 0.95):.2f}" for n, v in slowest)
        )
        print(
            f"  inference, one row {ONLINE_RATE} times a second: {len(single)} requests, p50 "
            f"{statistics.median(single):.1f} ms, p99 "
            f"{_percentile(single, 0.99):.1f} ms (target < 50 ms)"
        )
        print(
            f"    of which in the server's handler (body parsed to answer built), as its request log has them: p50 "
            f"{statistics.median(handled):.1f} ms, p99 {_percentile(handled, 0.99):.1f} ms"
        )
        print(
            f"    a process beside that only sleeps {PROBE_SLEEP_S * 1000:.0f} ms and wakes, woke late by: p50 "
            f"{statistics.median(late):.1f} ms, p99 {_percentile(late, 0.99):.1f} ms, p99.9 "
            f"{_percentile(late, 0.999):.1f} ms, max {max(late):.0f} ms (the wait for a core, in every process)"
        )
        print(f"  batch scoring: {sum(scored) / DURATION_S:,.0f} rows/s ({len(scored)} files of {SCORED_ROWS:,} rows)")
        cpu = ", ".join(f"{role} {(after[role] - before.get(role, 0.0)) / spent:.2f}" for role in sorted(after))
        print(f"  CPU, in cores busy over the run (of 2): {cpu}")
        errors = tally.errors + saturated.errors
        print(f"  errors: {len(errors)}{' — ' + '; '.join(sorted(set(errors))[:5]) if errors else ''} (target 0)")
        print(
            f"  saturation, {SESSIONS - 1} sessions clicking with no pause for {SATURATION_S} s, right after: "
            f"{len(saturated.pages) / SATURATION_S:.1f} pages/s, p50 {statistics.median(saturated.pages):.2f} s"
        )


async def _visitors(url: str, tally: Tally, seconds: float, reading: tuple[float, float], *, browser: bool) -> None:
    deadline = time.monotonic() + seconds
    visits = [_visitor(url, deadline, reading, tally, random.Random(i)) for i in range(SESSIONS - 1)]
    if browser:
        visits.append(_browser(url, deadline, reading, tally, random.Random(SESSIONS)))
    await asyncio.gather(*visits)


async def _visitor(url: str, deadline: float, reading: tuple[float, float], tally: Tally, rng: random.Random) -> None:
    """One visitor over Streamlit's protocol: opens the app, then clicks through the menu until the deadline."""
    from tests.dashboard_client import Visitor

    try:
        async with Visitor.connect(url) as visitor:
            menu = (await visitor.open()).menu
            i = rng.randrange(len(menu))  # the visitors start on different pages
            while time.monotonic() < deadline:
                page = menu[i % len(menu)]
                shown = await visitor.open(page)
                tally.pages.append(shown.seconds)
                tally.by_page.setdefault(page.name, []).append(shown.seconds)
                tally.errors += [f"{page.name}: {e}" for e in shown.exceptions]
                for rerun in await visitor.stay(rng.uniform(*reading)):
                    tally.errors += [f"{page.name}, live: {e}" for e in rerun.exceptions]
                i += 1
    except Exception as exc:  # a session that breaks is an error of the run
        tally.errors.append(f"session: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")


async def _browser(url: str, deadline: float, reading: tuple[float, float], tally: Tally, rng: random.Random) -> None:
    """The one real visitor: headless Chromium clicking through the same menu, each click timed until settled."""
    from playwright.async_api import async_playwright, expect

    from tests.dashboard_client import Visitor

    async with Visitor.connect(url) as visitor:  # each page's title, to know when the browser shows it
        titles = {page.name: (await visitor.open(page)).headings[0] for page in (await visitor.open()).menu}
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page: Any = await (await chromium.new_context(viewport={"width": 1300, "height": 900})).new_page()
        try:
            await page.goto(url, timeout=120_000)
            nav = page.get_by_test_id("stSidebarNav")
            await expect(nav).to_be_visible(timeout=120_000)
            i = 0
            while time.monotonic() < deadline:
                name = list(titles)[i % len(titles)]
                started = time.monotonic()
                await nav.get_by_role("link", name=name, exact=True).click()
                await expect(page.get_by_role("heading", name=titles[name], exact=True)).to_be_visible(timeout=60_000)
                await expect(page.get_by_test_id("stApp")).to_have_attribute(
                    "data-test-script-state", "notRunning", timeout=60_000
                )
                tally.browser.append(time.monotonic() - started)
                if await page.get_by_test_id("stException").count():
                    tally.errors.append(f"{name}: an exception in the browser")
                await asyncio.sleep(rng.uniform(*reading))
                i += 1
        except Exception as exc:
            tally.errors.append(f"browser: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        finally:
            await chromium.close()


if __name__ == "__main__":
    main()
