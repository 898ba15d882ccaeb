"""REST: TensorFlow Serving's JSON API (`/v1/models/NAME[/versions/N][:predict|/metadata]`)."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tensorflow_serving.apis import get_model_metadata_pb2

from backend.errors import BadInput
from backend.serving.repository import (
    DEFAULT_SIGNATURE,
    GRPC_STOP_GRACE_SECONDS,
    ModelRepository,
    Servable,
    check_names,
    error_status,
    input_specs,
    run_signature,
)

log = logging.getLogger(__name__)

_REST_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?(?P<action>/metadata|:predict)?")


# -- REST: TensorFlow Serving's JSON -------------------------------------------------------------------------
class _JSON(JSONResponse):
    """JSON like TensorFlow Serving writes it: NaN and Infinity pass through instead of failing."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _columns_from_instances(instances: Any, names: list[str]) -> dict[str, list[Any]]:
    if not isinstance(instances, list) or not instances:
        raise BadInput("error.serving.bad_instances")
    if len(names) == 1 and not isinstance(instances[0], dict):
        return {names[0]: instances}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise BadInput("error.serving.instance_not_object", index=index)
        check_names(instance, names, f"Instance {index}")
    return {name: [instance[name] for instance in instances] for name in names}


def _columns_from_inputs(inputs: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(inputs, dict):
        return inputs
    if len(names) == 1:
        return {names[0]: inputs}
    raise BadInput("error.serving.bad_inputs")


def _rows(outputs: dict[str, np.ndarray]) -> list[Any]:
    sizes = {len(array) if array.ndim else None for array in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise BadInput("error.serving.not_splittable")
    columns = {name: _plain(array.tolist()) for name, array in outputs.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _columns(outputs: dict[str, np.ndarray]) -> Any:
    columns = {name: _plain(array.tolist()) for name, array in outputs.items()}
    return next(iter(columns.values())) if len(columns) == 1 else columns


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise BadInput("error.serving.body_bad_json", reason=exc) from exc
    if not isinstance(request, dict):
        raise BadInput("error.serving.body_not_object")
    if ("instances" in request) == ("inputs" in request):
        raise BadInput("error.serving.body_one_of")
    return request


def rest_predict(repository: ModelRepository, servable: Servable, body: bytes) -> dict[str, Any]:
    """Answers a TensorFlow Serving REST predict request (row or columnar format).

    Raises:
        BadInput: The body is malformed or its inputs do not fit the signature.
    """
    request = _parse_body(body)
    signature = repository.signature(servable, request.get("signature_name") or DEFAULT_SIGNATURE)
    names = sorted(input_specs(signature))
    if "instances" in request:
        outputs = run_signature(signature, _columns_from_instances(request["instances"], names))
        return {"predictions": _rows(outputs)}
    return {"outputs": _columns(run_signature(signature, _columns_from_inputs(request["inputs"], names)))}


def _version_status(version: int) -> dict[str, Any]:
    status = {"error_code": "OK", "error_message": ""}
    return {"version": str(version), "state": "AVAILABLE", "status": status}


def rest_metadata(repository: ModelRepository, servable: Servable) -> dict[str, Any]:
    """Answers a TensorFlow Serving REST metadata request: the model's SignatureDefs as JSON."""
    defs = get_model_metadata_pb2.SignatureDefMap(signature_def=repository.signature_defs(servable))
    signature_def = json_format.MessageToDict(
        defs, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return {
        "model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
        "metadata": {"signature_def": signature_def},
    }


def _rest_models(repository: ModelRepository, method: str, rest: str, body: bytes) -> dict[str, Any]:
    match = _REST_PATH.fullmatch(rest)
    action = match and match["action"]
    if not match or (method == "POST") != (action == ":predict"):
        raise BadInput("error.serving.malformed", method=method, rest=rest)
    name, version = match["name"], int(match["version"]) if match["version"] else None
    if action is None:
        versions = repository.versions(name) if version is None else [repository.resolve(name, version).version]
        return {"model_version_status": [_version_status(number) for number in versions]}
    servable = repository.resolve(name, version)
    if action == "/metadata":
        return rest_metadata(repository, servable)
    return rest_predict(repository, servable, body)


def _answer(handler: Callable[[], dict[str, Any]]) -> _JSON:
    try:
        return _JSON(handler())
    except Exception as exc:
        status, message = error_status(exc)
        return _JSON({"error": message}, status_code=status)


def create_app(repository: ModelRepository, *, grpc_server: grpc.Server | None = None) -> Starlette:
    """Builds the REST app: TensorFlow Serving's `/v1/models/...` API plus `/v1/models` and `/healthz`.

    Args:
        repository: Where the models come from.
        grpc_server: If given, it is started and stopped with the app.

    Returns:
        The Starlette app; TensorFlow runs in the thread pool, never on the event loop.
    """

    async def healthz(_request: Request) -> _JSON:
        return _JSON({"status": "ok"})

    async def list_models(_request: Request) -> _JSON:
        models = await run_in_threadpool(repository.models)
        return _JSON({"models": [{"name": name, "versions": versions} for name, versions in models.items()]})

    async def models(request: Request) -> _JSON:
        body = await request.body()
        rest = request.path_params["rest"]
        if not rest and request.method == "GET":
            return await list_models(request)
        return await run_in_threadpool(_answer, lambda: _rest_models(repository, request.method, rest, body))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if grpc_server is not None:
            grpc_server.start()
        yield
        if grpc_server is not None:
            await run_in_threadpool(lambda: grpc_server.stop(GRPC_STOP_GRACE_SECONDS).wait())

    routes = [
        Route("/healthz", healthz),
        Route("/v1/models", list_models),
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
