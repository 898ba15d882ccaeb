"""The inference server behind `modeldeck serve`: TensorFlow Serving's REST and gRPC APIs over our exports.

This wing is the only part of the backend that imports TensorFlow at its top level, and only the `serve`
command (and the CLI's predict and eval) load it; `client.py` stays free of it for the dashboard.

Every predict request is logged to the run history (`requestlog.py`: sampled, bounded, written in batches by a
thread of its own) for the Monitoring page and `modeldeck monitor`.

It logs one line per event (`backend.logs`): where it listens and what it serves, each model version as it
loads or fails to load (`repository.py`), and its stop. uvicorn's own start-up lines and its line per request
show at DEBUG only.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf
import uvicorn

from backend import logs
from backend.config import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT, database_url_for
from backend.config import home as default_home
from backend.errors import BadInput, ModelDeckError, ServingUnavailable
from backend.serving.grpc_service import create_grpc_server, host_port
from backend.serving.keys import KeyCheck, required
from backend.serving.registry import StageLabels
from backend.serving.repository import MAX_BATCH_ROWS, RESCAN_SECONDS, UNLOAD_AFTER_SECONDS, ModelRepository
from backend.serving.requestlog import RequestLog
from backend.serving.rest import MAX_BODY_BYTES, REQUEST_TIMEOUT_SECONDS, create_app
from db import open_store

log = logging.getLogger(__name__)


# -- the `serve` command -------------------------------------------------------------------------------------
def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ServingUnavailable(
            "error.serving.rest_port", host_port=host_port(host, port), strerror=os.strerror(exc.errno or 0)
        ) from exc
    # Connections inherit this. asyncio sets it only on sockets made with proto=IPPROTO_TCP, which create_server's
    # are not: without it a response's body waits for the client's delayed ACK of its headers (bench/serving.py).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


def _quiet_uvicorn() -> None:
    """Uvicorn logs through our handler (`log_config=None`); its chatter only when DEBUG is asked for."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _models_text(models: dict[str, list[int]]) -> str:
    """The models found, for the log: `churn (versions 2, 1), prices (version 1)`."""
    if not models:
        return "no models exported yet"
    return ", ".join(
        f"{name} (version{'s' if len(versions) > 1 else ''} {', '.join(map(str, versions))})"
        for name, versions in models.items()
    )


@contextlib.contextmanager
def _housekeeping(repository: ModelRepository, unload_every_s: float) -> Iterator[None]:
    """A thread of its own while the server runs, which a request never waits on.

    It loads and warms each model's new versions as they appear (`ModelRepository.warm_up`, looking every
    RESCAN_SECONDS) and unloads the idle ones.

    What is loaded is then frozen out of the garbage collector's way (`gc.freeze`): TensorFlow and a loaded model
    are millions of objects that live as long as the server, and each collection walked them all. Building an
    8,192-row answer took three times as long with them in the way.
    """
    stop = threading.Event()

    def sweep() -> None:
        unloaded_at, first = time.monotonic(), True
        while True:
            try:
                if repository.warm_up() or first:
                    first = False
                    gc.freeze()
                if time.monotonic() - unloaded_at >= unload_every_s:
                    unloaded_at = time.monotonic()
                    if repository.unload_idle():
                        gc.unfreeze()  # what the unloaded versions leave is garbage to collect, then the rest
                        gc.collect()
                        gc.freeze()
            except Exception:  # a database that is briefly locked must not end the sweeps
                log.exception("warming or unloading versions failed; trying again in %.0f s", RESCAN_SECONDS)
            if stop.wait(RESCAN_SECONDS):
                return

    thread = threading.Thread(target=sweep, name="housekeeping", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _allow_gpu_memory_growth() -> None:
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)


def op_threads() -> int:
    """MODELDECK_SERVING_OP_THREADS: the threads one TensorFlow operation of a request may use (default 1).

    The server answers many requests side by side, so one thread each (TensorFlow Serving's advice for
    throughput) keeps a large batch from taking every core while a one-row request waits: on two cores under
    batch scoring, one-row p99 went from 57 to 49 ms and rows scored per second from 113,000 to 120,000.
    0 leaves it to TensorFlow (every core), for a machine that answers one large request at a time.

    Raises:
        BadInput: the value is not a whole number from 0 up.
    """
    given = os.environ.get("MODELDECK_SERVING_OP_THREADS", "1").strip()
    if not given.isdigit():
        raise BadInput("error.serving.bad_op_threads", value=given)
    return int(given)


def serve(
    *,
    home: Path,
    rest_port: int = DEFAULT_REST_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
    host: str = "127.0.0.1",
    database_url: str | None = None,
    unload_after: float = UNLOAD_AFTER_SECONDS,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_rows: int = MAX_BATCH_ROWS,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    require_keys: bool | None = None,
) -> None:
    """Serves the exported models over REST and gRPC until SIGINT or SIGTERM, then stops both.

    After a clean stop, uvicorn re-raises the signal it caught: SIGINT returns from here, SIGTERM ends the
    process with the usual signal exit status.

    Args:
        home: The ModelDeck home whose `runs/*/export/` folders hold the models.
        rest_port: Port of TensorFlow Serving's REST API.
        grpc_port: Port of TensorFlow Serving's gRPC API.
        host: Interface to listen on.
        database_url: The database whose model registry the version labels come from, and where the requests are
            logged (default: MODELDECK_DATABASE_URL, or the SQLite file in `home`).
        unload_after: Seconds without a request after which a version neither latest nor staged is unloaded.
        max_body_bytes: Larger REST request bodies are refused with 413.
        max_rows: More examples in one predict request are refused with 400.
        request_timeout: A REST request not answered within this many seconds gets 408.
        require_keys: Whether every request needs a live API key (`modeldeck keys create`); None (the default)
            asks for one whenever `host` is not a loopback address.

    Raises:
        ServingUnavailable: A port cannot be bound.
    """
    tf.config.threading.set_intra_op_parallelism_threads(op_threads())  # before TensorFlow runs anything
    _allow_gpu_memory_growth()
    url = database_url or database_url_for(home)
    labels = StageLabels(lambda: open_store(url))
    requests = RequestLog(lambda: open_store(url))
    repository = ModelRepository(home, labels=labels, requests=requests, unload_after=unload_after, max_rows=max_rows)
    keys = KeyCheck(lambda: open_store(url)) if required(host, require_keys) else None
    rest_socket = _listen(host, rest_port)
    requests.start()
    try:
        grpc_server = create_grpc_server(repository, host, grpc_port, keys=keys)
        _quiet_uvicorn()
        app = create_app(
            repository,
            grpc_server=grpc_server,
            max_body_bytes=max_body_bytes,
            keys=keys,
            request_timeout=request_timeout,
        )
        if keys is not None:
            log.info("every request needs an API key; %d live (`modeldeck keys create NAME` makes one)", keys.count())
        config = uvicorn.Config(app, host=host, port=rest_port, log_config=None)
        log.info(
            "listening on http://%s (REST) and %s (gRPC); models under %s: %s",
            host_port(host, rest_port),
            host_port(host, grpc_port),
            repository.runs,
            _models_text(repository.models()),
        )
        with _housekeeping(repository, unload_every_s=max(RESCAN_SECONDS, min(unload_after / 4, 30.0))):
            uvicorn.Server(config).run(sockets=[rest_socket])
    except KeyboardInterrupt:
        pass
    finally:
        rest_socket.close()
        requests.close()
        labels.close()
        if keys is not None:
            keys.close()
    log.info("stopped")


def _limits_and_keys(parser: argparse.ArgumentParser) -> None:
    """The flags `modeldeck serve` and `python -m backend.serving` share for limits and API keys."""
    parser.add_argument("--max-rows", type=int, default=MAX_BATCH_ROWS, help="more rows per request get 400")
    parser.add_argument(
        "--request-timeout", type=float, default=REQUEST_TIMEOUT_SECONDS, help="seconds before a request gets 408"
    )
    parser.add_argument(
        "--require-keys",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every request needs an API key (default: only when --host is not loopback)",
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m backend.serving --home H --port P --grpc-port G [--host A]`."""
    parser = argparse.ArgumentParser(prog="python -m backend.serving", description=serve.__doc__)
    parser.add_argument("--home", type=Path, default=None, help="ModelDeck home (default: MODELDECK_HOME)")
    parser.add_argument("--port", type=int, default=DEFAULT_REST_PORT, help="REST port")
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--unload-after",
        type=float,
        default=UNLOAD_AFTER_SECONDS,
        help="idle seconds before a version neither latest nor staged goes",
    )
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="larger REST bodies get 413")
    _limits_and_keys(parser)
    args = parser.parse_args(argv)
    logs.configure("serve")
    try:
        serve(
            home=args.home or default_home(),
            rest_port=args.port,
            grpc_port=args.grpc_port,
            host=args.host,
            unload_after=args.unload_after,
            max_body_bytes=args.max_body_bytes,
            max_rows=args.max_rows,
            request_timeout=args.request_timeout,
            require_keys=args.require_keys,
        )
    except ModelDeckError as exc:
        log.error("%s", exc)
        raise SystemExit(exc.exit_code) from exc


if __name__ == "__main__":
    main()
