"""Load: 20 dashboard sessions clicking through the pages, 4 trainings and batch scoring at once, on loopback.

A fresh home gets the churn table and one trained model; then `modeldeck ui` runs (dashboard, worker, inference
server) and, for `DURATION_S` seconds:

- 20 browser sessions (headless Chromium, one context each) click through Use cases, Data, Evaluation and the
  Playground, each click timed until the page has settled (no script running, nothing stale);
- 4 training runs are queued at the start (the worker trains them one after another, as it does);
- a client sends batches of 100 rows to the inference server, back to back;
- another sends one row at a time, each request timed.

Reported: page response p50/p95, inference p50/p99, errors. Targets (issue 18): zero errors, page p95 under 2 s,
inference p99 under 50 ms, on this machine (2 cores).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

DURATION_S = 90
SESSIONS = 20
TRAININGS = 4
ROOT = Path(__file__).resolve().parent.parent
PAGES = [("Use cases", "Use cases"), ("Data", "Data"), ("Evaluation", "Evaluation"), ("Playground", "Playground")]
ROW = {"tenure": 12, "plan": "basic", "charges": 70.5}


def _cli(home: Path, *args: str) -> None:
    from tests import factories

    done = factories.cli(home, *args, timeout=900)
    if done.returncode:
        raise SystemExit(f"modeldeck {' '.join(args)} failed: {done.stderr.strip()[-500:]}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _requests(rest: str, rows: int, stop: threading.Event, times: list[float], errors: list[str]) -> None:
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = client.post(f"{rest}/v1/models/churn:predict", json={"instances": [ROW] * rows})
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code}: {answer.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}")
            times.append((time.perf_counter() - started) * 1000)


def main() -> None:
    from tests import factories

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        csv = Path(folder) / "churn.csv"
        factories.churn_frame(rows=2000).to_csv(csv, index=False)
        _cli(home, "data", "add", str(csv), "--target", "churn")
        _cli(home, "train", "churn", "--preset", "fast", "--set", "architecture=mlp", "--wait")
        pages: list[float] = []
        single: list[float] = []
        batches: list[float] = []
        errors: list[str] = []
        with factories.running_ui(home, log=Path(folder) / "ui.log") as (_, url, rest):
            for _ in range(TRAININGS):
                _cli(home, "train", "churn", "--preset", "fast", "--set", "architecture=mlp")
            stop = threading.Event()
            threads = [threading.Thread(target=_requests, args=(rest, 1, stop, single, errors))]
            threads.append(threading.Thread(target=_requests, args=(rest, 100, stop, batches, errors)))
            for t in threads:
                t.start()
            asyncio.run(_sessions(url, pages, errors))  # twenty visitors at once, each clicking as fast as it can
            stop.set()
            for t in threads:
                t.join(60)
        print(f"load: {SESSIONS} dashboard sessions, {TRAININGS} trainings, batch scoring, {DURATION_S} s (2 cores)")
        print(
            f"  page response: {len(pages)} clicks, p50 {statistics.median(pages):.2f} s, p95 "
            f"{_percentile(pages, 0.95):.2f} s (target < 2 s)"
        )
        print(
            f"  inference, one row: {len(single)} requests, p50 {statistics.median(single):.1f} ms, p99 "
            f"{_percentile(single, 0.99):.1f} ms (target < 50 ms)"
        )
        print(f"  inference, 100 rows: {len(batches)} requests, p50 {statistics.median(batches):.1f} ms")
        print(f"  errors: {len(errors)}{' — ' + '; '.join(sorted(set(errors))[:5]) if errors else ''} (target 0)")


async def _session(url: str, browser: Any, deadline: float, times: list[float], errors: list[str]) -> None:
    """One visitor: opens the app, then clicks through the pages until the deadline, each click timed."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(url, timeout=120_000)
        await expect(page.get_by_role("heading", name="Use cases", exact=True)).to_be_visible(timeout=120_000)
        i = 0
        while time.monotonic() < deadline:
            link, heading = PAGES[i % len(PAGES)]
            started = time.monotonic()
            await page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()
            await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=60_000)
            await expect(page.get_by_test_id("stApp")).to_have_attribute(
                "data-test-script-state", "notRunning", timeout=60_000
            )
            times.append(time.monotonic() - started)
            if await page.get_by_test_id("stException").count():
                errors.append(f"an exception on {link}")
            i += 1
    except Exception as exc:  # a session that breaks is an error of the run
        errors.append(f"session: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    finally:
        await context.close()


async def _sessions(url: str, times: list[float], errors: list[str]) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        deadline = time.monotonic() + DURATION_S
        await asyncio.gather(*(_session(url, browser, deadline, times, errors) for _ in range(SESSIONS)))
        await browser.close()


if __name__ == "__main__":
    main()
