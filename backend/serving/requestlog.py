"""The inference server's request log: what each request asked, answered and took, kept in the run history.

A request must never wait on the database, so logging is in four steps:

1. On the request's thread (`Call`, `RequestLog.record`): decide whether to keep it (below), and append it to an
   in-memory queue as it is: the inputs and outputs it already holds, a timestamp and the latency.
2. Sampling, per model: every request of a second is kept up to `per_second`; above that, one in `keep_one_in`,
   with weight `keep_one_in`, so that the weights add up to the requests made (to within `keep_one_in` a second).
3. The queue holds at most `max_queue` requests: more are dropped and counted, and the next write logs how many.
4. A thread of its own writes the queue every `flush_seconds`, in one transaction: each request as a row, with the
   first `SAMPLE_ROWS` examples' inputs and outputs (long values cut), keeping each model's newest `keep_per_model`.

Nothing here raises into a request: a write that fails is logged and its batch dropped (and counted). No
TensorFlow here: outputs arrive as NumPy arrays, inputs as JSON values or arrays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from db import Store

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_QUEUE = 10_000  # requests waiting for the next write; more are dropped (and counted)
PER_SECOND = 50  # requests per model and second that are all kept
KEEP_ONE_IN = 10  # above that, one in this many is kept, standing for them all
KEEP_PER_MODEL = 100_000  # logged requests per model; older ones are deleted
SAMPLE_ROWS = 20  # examples of a request whose inputs and outputs are kept
MAX_TEXT = 200  # characters of a text value kept (an image's base64 is not worth keeping)
MAX_ITEMS = 50  # items of a list value kept (probabilities of many classes, recommended items)
MAX_NAME = 200  # characters of a signature name (the column's size)


# -- a request as a row ----------------------------------------------------------------------------------------
def _value(value: Any) -> Any:
    """One example's value as plain, bounded JSON: a one-item list unwrapped, bytes decoded, long things cut."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return _value(value[0])
        return [_value(item) for item in value[:MAX_ITEMS]]
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    if isinstance(value, dict) and set(value) == {"b64"}:  # REST's encoded bytes: an image, say
        return "<base64>"
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)[:MAX_TEXT]


def _is_column(values: Any) -> bool:
    return isinstance(values, list | tuple) or (isinstance(values, np.ndarray) and values.ndim > 0)


def _examples(columns: Any) -> tuple[int, list[dict[str, Any]]]:
    """Named columns (input or output name -> a value per example) as (examples, the first few as row objects)."""
    if not isinstance(columns, dict) or not columns:
        return 0, []
    count = max(len(values) if _is_column(values) else 1 for values in columns.values())
    rows = []
    for i in range(min(count, SAMPLE_ROWS)):
        row = {}
        for name, values in columns.items():
            if not _is_column(values):
                row[str(name)] = _value(values)
            elif i < len(values):
                row[str(name)] = _value(values[i])
        rows.append(row)
    return count, rows


def _safe_examples(columns: Any) -> tuple[int, list[dict[str, Any]]]:
    """`_examples`, or none when a request's values are too odd to read (the request itself is still logged)."""
    try:
        return _examples(columns)
    except Exception:
        log.exception("could not read a logged request's values")
        return 0, []


def _entry(served: tuple[Any, ...]) -> dict[str, Any]:
    """A queued request as the store's row (RequestLogRow's fields)."""
    model, version, signature, at, latency_ms, weight, inputs, outputs = served
    rows, input_rows = _safe_examples(inputs)
    _, output_rows = _safe_examples(outputs) if outputs is not None else (0, [])
    return {
        "model_name": model,
        "version": version,
        "signature": str(signature)[:MAX_NAME],
        "created_at": datetime.fromtimestamp(at, UTC).replace(tzinfo=None),
        "latency_ms": float(latency_ms),
        "status": "ok" if outputs is not None else "error",
        "rows": rows,
        "weight": weight,
        "inputs": input_rows,
        "outputs": output_rows,
    }


# -- the log -----------------------------------------------------------------------------------------------------
class RequestLog:
    """Queues answered requests (sampled) and writes them to the store in batches from a thread of its own.

    Safe to share across threads. `record` never raises and never touches the database.
    """

    def __init__(
        self,
        open_store: Callable[[], Store] | None,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        max_queue: int = MAX_QUEUE,
        per_second: int = PER_SECOND,
        keep_one_in: int = KEEP_ONE_IN,
        keep_per_model: int = KEEP_PER_MODEL,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Creates the log; the store opens on the first write, in the writer's thread.

        Args:
            open_store: Opens the store the requests go to; None logs nothing (a server without a database).
            flush_seconds: How often the writer writes what is queued.
            max_queue: Requests that may wait for a write; more are dropped and counted.
            per_second: Requests per model and second that are all kept.
            keep_one_in: Above `per_second`, one request in this many is kept, with this weight.
            keep_per_model: Logged requests kept per model; the oldest go first.
            clock: Seconds, for the sampling's windows (tests pass their own).
            wall_clock: Seconds since the epoch, for each request's time.
        """
        self._open_store = open_store
        self._store: Store | None = None
        self._flush_seconds = flush_seconds
        self._max_queue = max_queue
        self._per_second = per_second
        self._keep_one_in = keep_one_in
        self._keep_per_model = keep_per_model
        self._clock = clock
        self._wall_clock = wall_clock
        self._queue: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}  # model -> (second, requests seen in it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self.dropped = 0  # requests not logged: the queue was full, or their write failed
        self._dropped_reported = 0
        self.written = 0
        self._failing = False  # the last write failed

    @property
    def enabled(self) -> bool:
        return self._open_store is not None

    def _weight(self, model: str) -> int:
        """How many requests this one stands for if kept (1, or `keep_one_in`), or 0 when it is not kept."""
        second = int(self._clock())
        with self._lock:
            start, seen = self._windows.get(model, (second, 0))
            seen = seen + 1 if start == second else 1
            self._windows[model] = (second, seen)
        if seen <= self._per_second:
            return 1
        return self._keep_one_in if (seen - self._per_second) % self._keep_one_in == 0 else 0

    def record(self, *, model: str, version: int, signature: str, latency_ms: float, inputs: Any, outputs: Any) -> None:
        """Queues one answered request (`outputs` None: it failed); sampled, bounded, never raising.

        Args:
            model: The model's name.
            version: The version that answered.
            signature: The signature the request named.
            latency_ms: How long the server took.
            inputs: Input name -> a value per example, as the request gave them (JSON values or arrays).
            outputs: Output name -> an array with a value per example; None when the request failed.
        """
        if self._open_store is None:
            return
        try:
            weight = self._weight(model)
            if not weight:
                return
            if len(self._queue) >= self._max_queue:
                self.dropped += 1
                return
            served = (model, version, signature, self._wall_clock(), latency_ms, weight, inputs, outputs)
            self._queue.append(served)
        except Exception:  # a request is answered whatever happens to its record
            log.exception("could not queue a request for the request log")

    def call(self, model: str, version: int, signature: str, *, started: float) -> Call:
        """A request being answered, logged when its `with` block ends (an exception leaving it: an error)."""
        return Call(self, model, version, signature, started)

    def flush(self) -> int:
        """Writes what is queued now, in one transaction; returns how many requests were written."""
        with self._write_lock:
            batch = []
            while self._queue:
                batch.append(self._queue.popleft())
            self._report_drops()
            if not batch or self._open_store is None:
                return 0
            try:
                entries = [_entry(served) for served in batch]
                if self._store is None:
                    self._store = self._open_store()
                self._store.add_requests(entries, keep_per_model=self._keep_per_model)
            except Exception as exc:
                self.dropped += len(batch)
                self._dropped_reported = self.dropped
                message = "could not write %d requests to the request log; they are dropped"
                if self._failing:  # the traceback once per stretch of failures, then a line per write
                    log.warning(message + " (%s)", len(batch), exc)
                else:
                    log.exception(message, len(batch))
                self._failing = True
                return 0
            self._failing = False
            self.written += len(batch)
            return len(batch)

    def _report_drops(self) -> None:
        if self.dropped > self._dropped_reported:
            log.warning(
                "%d requests were not logged: more than %d waited for a write",
                self.dropped - self._dropped_reported,
                self._max_queue,
            )
            self._dropped_reported = self.dropped

    def start(self) -> None:
        """Starts the writer thread (a no-op when the log is off)."""
        if self._open_store is None or self._thread is not None:
            return

        def write() -> None:
            while not self._stop.wait(self._flush_seconds):
                self.flush()

        self._thread = threading.Thread(target=write, name="request-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the writer, writes what is left and closes the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        if self._store is not None:
            self._store.close()


class Call:
    """One request being answered: set `inputs` and `outputs` as they are known; the `with` block's end logs it."""

    __slots__ = ("inputs", "outputs", "_log", "_model", "_version", "_signature", "_started")

    def __init__(self, request_log: RequestLog, model: str, version: int, signature: str, started: float) -> None:
        self.inputs: Any = None
        self.outputs: Any = None
        self._log = request_log
        self._model, self._version, self._signature, self._started = model, version, signature, started

    def __enter__(self) -> Call:
        return self

    def __exit__(self, exc_type: Any, _exc: Any, _tb: Any) -> None:
        latency_ms = (time.perf_counter() - self._started) * 1000
        outputs = self.outputs if exc_type is None and self.outputs is not None else None
        self._log.record(
            model=self._model,
            version=self._version,
            signature=self._signature,
            latency_ms=latency_ms,
            inputs=self.inputs,
            outputs=outputs,
        )
