"""Many dashboard sessions at once, over Streamlit's own protocol (`tests/dashboard_client.py`).

Twenty sessions share one dashboard process: its caches, its store and its locks. Each clicks through the whole
menu, starting on a different page, on a home with a trained churn run; every page must run for every session
without an exception and show its own title. (How fast is `python -m bench load`'s question, not a test's.)
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from tests import factories
from tests.dashboard_client import Visitor

SESSIONS = 20


async def _click_through(url: str, start: int) -> list[tuple[str, list[str], list[str]]]:
    async with Visitor.connect(url) as visitor:
        menu = (await visitor.open()).menu
        seen = []
        for i in range(len(menu)):
            page = menu[(start + i) % len(menu)]
            shown = await visitor.open(page)
            seen.append((page.name, shown.headings, shown.exceptions))
        return seen


async def _sessions(url: str) -> list[list[tuple[str, list[str], list[str]]]]:
    return await asyncio.gather(*(_click_through(url, start) for start in range(SESSIONS)))


def test_twenty_sessions_at_once_each_get_every_page_whole(churn_run: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    with factories.running_ui(home, log=tmp_path / "ui.log") as (_, url, _rest, _scoring):
        sessions = asyncio.run(_sessions(url))
    titles: dict[str, str] = {}
    for seen in sessions:
        assert len(seen) >= 10, [name for name, _, _ in seen]  # the whole menu of a local admin
        for name, headings, exceptions in seen:
            assert exceptions == [], f"{name}: {exceptions}"
            assert headings, f"{name} showed no title"
            assert titles.setdefault(name, headings[0]) == headings[0], f"{name} showed another page's title"
    assert titles["Data"] == "Data" and titles["Evaluation"] == "Evaluation"
