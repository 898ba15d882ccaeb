"""A dashboard visitor that speaks Streamlit's own protocol, for load: many sessions from one process.

A browser tab holds a websocket at `/_stcore/stream`. Each click on a page sends a `rerun_script` BackMsg (a
protobuf) whose ClientState names the page by its script hash; the server runs the script in that session and
answers with ForwardMsgs (the elements, the menu) until `script_finished`. Sending those messages directly costs
the server what a real session costs, without twenty browsers rendering on the same two cores; the browser
tests (and the load bench's one real browser) cover what a person sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

PAGE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Page:
    name: str  # as the menu shows it
    script_hash: str


@dataclass
class Shown:
    """What one run of a page sent: its time from the click to `script_finished`, and what it showed."""

    seconds: float = 0.0
    headings: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)  # st.exception boxes: an uncaught error in the page
    menu: list[Page] = field(default_factory=list)  # the pages the menu lists (hidden ones left out)
    messages: int = 0


class Visitor:
    """One dashboard session (see the module's docstring). Use `async with Visitor.connect(url) as v`."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket
        self._page = ""  # the script hash of the page shown
        self._live: tuple[float, str] | None = None  # the page's `st.fragment(run_every=…)`: its interval and id

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[Visitor]:
        """A new session on the dashboard at `url` (http://host:port)."""
        stream = "ws" + url.removeprefix("http").rstrip("/") + "/_stcore/stream"
        async with websockets.connect(stream, subprotocols=["streamlit"], max_size=None, open_timeout=60) as socket:  # type: ignore[list-item]
            yield cls(socket)

    async def open(self, page: Page | None = None) -> Shown:
        """Click `page` in the menu (None: the app's first load, on its default page) and wait until it has run."""
        self._page, self._live = page.script_hash if page else "", None
        return await self._run()

    async def stay(self, seconds: float) -> list[Shown]:
        """Look at the page for `seconds`, rerunning its live fragment on its interval, as the browser does."""
        until = time.perf_counter() + seconds
        reruns: list[Shown] = []
        while self._live is not None and time.perf_counter() + self._live[0] < until:
            await asyncio.sleep(self._live[0])
            reruns.append(await self._run(fragment=self._live[1]))
        await asyncio.sleep(max(0.0, until - time.perf_counter()))
        return reruns

    async def _run(self, *, fragment: str = "") -> Shown:
        message = BackMsg()
        message.rerun_script.page_script_hash = self._page
        message.rerun_script.widget_states.SetInParent()  # no widget touched: every widget on its default
        message.rerun_script.fragment_id = fragment
        message.rerun_script.is_auto_rerun = bool(fragment)
        started = time.perf_counter()
        await self._socket.send(message.SerializeToString())
        shown = Shown()
        async with asyncio.timeout(PAGE_TIMEOUT_S):
            while True:
                answer = ForwardMsg()
                answer.ParseFromString(await self._socket.recv())
                shown.messages += 1
                kind = answer.WhichOneof("type")
                if kind == "delta" and answer.delta.WhichOneof("type") == "new_element":
                    element = answer.delta.new_element
                    if element.WhichOneof("type") == "heading":
                        shown.headings.append(element.heading.body)
                    elif element.WhichOneof("type") == "exception":
                        shown.exceptions.append(element.exception.message.splitlines()[0][:200])
                elif kind == "auto_rerun":
                    self._live = (answer.auto_rerun.interval, answer.auto_rerun.fragment_id)
                elif kind == "stop_auto_rerun" and self._live and self._live[1] in answer.stop_auto_rerun.fragment_ids:
                    self._live = None
                elif kind == "navigation":
                    shown.menu = [
                        Page(p.page_name, p.page_script_hash) for p in answer.navigation.app_pages if not p.is_hidden
                    ]
                elif kind == "script_finished" and answer.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    self._live = None  # a full run follows (a fragment's `st.rerun()`): it announces its live fragment
                elif kind == "script_finished":
                    if answer.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                        shown.exceptions.append("the page's script did not compile")
                    shown.seconds = time.perf_counter() - started
                    return shown
