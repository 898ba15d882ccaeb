"""The inference server behind `modeldeck serve`: TensorFlow Serving's REST and gRPC APIs over our exports.

This wing is the only part of the backend that imports TensorFlow at its top level, and only the `serve`
command (and the CLI's predict and eval) load it; `client.py` stays free of it for the dashboard.

It logs one line per event (`backend.logs`): where it listens and what it serves, each model version as it
loads or fails to load (`repository.py`), and its stop. uvicorn's own start-up lines and its line per request
show at DEBUG only.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path

import tensorflow as tf
import uvicorn

from backend import logs
from backend.config import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT
from backend.config import home as default_home
from backend.errors import ModelDeckError, ServingUnavailable
from backend.serving.grpc_service import create_grpc_server, host_port
from backend.serving.repository import ModelRepository
from backend.serving.rest import create_app

log = logging.getLogger(__name__)


# -- the `serve` command -------------------------------------------------------------------------------------
def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ServingUnavailable(
            "error.serving.rest_port", host_port=host_port(host, port), strerror=os.strerror(exc.errno or 0)
        ) from exc


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


def _allow_gpu_memory_growth() -> None:
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)


def serve(
    *,
    home: Path,
    rest_port: int = DEFAULT_REST_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
    host: str = "127.0.0.1",
) -> None:
    """Serves the exported models over REST and gRPC until SIGINT or SIGTERM, then stops both.

    After a clean stop, uvicorn re-raises the signal it caught: SIGINT returns from here, SIGTERM ends the
    process with the usual signal exit status.

    Args:
        home: The ModelDeck home whose `runs/*/export/` folders hold the models.
        rest_port: Port of TensorFlow Serving's REST API.
        grpc_port: Port of TensorFlow Serving's gRPC API.
        host: Interface to listen on.

    Raises:
        ServingUnavailable: A port cannot be bound.
    """
    _allow_gpu_memory_growth()
    repository = ModelRepository(home)
    rest_socket = _listen(host, rest_port)
    try:
        grpc_server = create_grpc_server(repository, host, grpc_port)
        _quiet_uvicorn()
        app = create_app(repository, grpc_server=grpc_server)
        config = uvicorn.Config(app, host=host, port=rest_port, log_config=None)
        log.info(
            "listening on http://%s (REST) and %s (gRPC); models under %s: %s",
            host_port(host, rest_port),
            host_port(host, grpc_port),
            repository.runs,
            _models_text(repository.models()),
        )
        uvicorn.Server(config).run(sockets=[rest_socket])
    except KeyboardInterrupt:
        pass
    finally:
        rest_socket.close()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    """`python -m backend.serving --home H --port P --grpc-port G [--host A]`."""
    parser = argparse.ArgumentParser(prog="python -m backend.serving", description=serve.__doc__)
    parser.add_argument("--home", type=Path, default=None, help="ModelDeck home (default: MODELDECK_HOME)")
    parser.add_argument("--port", type=int, default=DEFAULT_REST_PORT, help="REST port")
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    args = parser.parse_args(argv)
    logs.configure("serve")
    try:
        serve(home=args.home or default_home(), rest_port=args.port, grpc_port=args.grpc_port, host=args.host)
    except ModelDeckError as exc:
        log.error("%s", exc)
        raise SystemExit(exc.exit_code) from exc


if __name__ == "__main__":
    main()
