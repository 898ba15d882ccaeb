"""REST: TensorFlow Serving's JSON API (`/v1/models/NAME[/versions/N|/labels/L][:predict|/metadata]`).

A malformed or hostile request gets TensorFlow Serving's `{"error": ...}` body with a 4xx status, never a 500:
a request without a live API key, where the server asks for one, with 401 before its body is read; a body over
`max_body_bytes` with 413 before it is read whole; JSON nested deeper than `MAX_DEPTH` with 400 (checked before
any of our code recurses into it); more rows than the repository's `max_rows`, and values of the wrong type or
shape, with 400 naming the input; a request the model has not answered within `request_timeout` seconds with
408 (the model's work runs on in its thread; the client is not kept waiting).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import orjson
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tensorflow_serving.apis import get_model_metadata_pb2

from backend.errors import BadInput, ModelDeckError
from backend.i18n import render
from backend.serving.keys import KeyCheck
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

_REST_PATH = re.compile(
    r"(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?(?P<action>/metadata|:predict)?"
)
MAX_BODY_BYTES = 64 * 1024 * 1024  # a batch of base64 images fits; more is refused with 413 before it is read
BATCH_BYTES = 64 * 1024  # a body this large is a batch (a thousand table rows, or an image)
MAX_DEPTH = 32  # JSON nesting: a tensor of rank 30 still fits; thousands deep would exhaust the stack
_CONTAINERS = frozenset({list, dict})  # what json.loads nests (exactly these types, never subclasses)
_ORJSON_NUMPY = frozenset(  # the whole-number dtypes orjson writes from an array
    {"int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool"}
)
REQUEST_TIMEOUT_SECONDS = 30.0  # a request not answered by then gets 408


class BodyTooLarge(ModelDeckError):
    """A request body over the server's size limit (HTTP 413)."""


# -- REST: TensorFlow Serving's JSON -------------------------------------------------------------------------
class _JSON(JSONResponse):
    """JSON like TensorFlow Serving writes it, by orjson.

    NumPy arrays are written whole, NaN and Infinity as `_listed` spells them (orjson alone would write null).
    The standard library took 25 ms for an 8,192-row answer, holding the lock every request of the server needs.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _literal(value: Any) -> orjson.Fragment:
    return orjson.Fragment(json.dumps(value, allow_nan=True))


def _listed(array: np.ndarray, *, whole: bool = False) -> Any:
    """An output as values for `_JSON`, one per row.

    Strings are decoded (or base64), each distinct one once; numbers stay as NumPy holds them (`whole`: the array
    itself, which orjson writes in one go) or, where one is NaN or infinite, each row is written as TensorFlow
    Serving writes it (`NaN`, `Infinity`).

    A classifier's `classes` repeats the same few names on every row: decoding them value by value was most of
    the time a large batch spent in the server.
    """
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        return [_literal(row) for row in array.tolist()] if array.ndim else _literal(array.item())
    if array.dtype.kind == "f" and whole:  # as doubles, written as Python writes them (a float32 is exact)
        return array.astype("float64")
    if array.dtype.kind not in "OSU":
        return array if whole and array.dtype.name in _ORJSON_NUMPY else array.tolist()
    values = array.reshape(-1).tolist()
    decoded = {value: _plain(value) for value in set(values)}
    listed = list(map(decoded.__getitem__, values))
    if array.ndim == 1:
        return listed
    flat = np.empty(array.size, dtype=object)
    flat[:] = listed
    return flat.reshape(array.shape).tolist()


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
    columns = {name: _listed(array) for name, array in outputs.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _columns(outputs: dict[str, np.ndarray]) -> Any:
    columns = {name: _listed(array, whole=True) for name, array in outputs.items()}
    return next(iter(columns.values())) if len(columns) == 1 else columns


def _check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuses JSON nested deeper than `limit`, walking it without recursion (the checks after it recurse)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if not _CONTAINERS.intersection(map(type, children)):  # a column of 8,192 numbers, at C speed
            continue
        for child in children:
            if isinstance(child, list | dict):
                if depth + 1 > limit:
                    raise BadInput("error.serving.too_deep", limit=limit)
                pending.append((child, depth + 1))


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except RecursionError as exc:  # nested deeper than the interpreter's stack: refused like any deep body
        raise BadInput("error.serving.too_deep", limit=MAX_DEPTH) from exc
    except ValueError as exc:
        raise BadInput("error.serving.body_bad_json", reason=exc) from exc
    _check_depth(request)
    if not isinstance(request, dict):
        raise BadInput("error.serving.body_not_object")
    if ("instances" in request) == ("inputs" in request):
        raise BadInput("error.serving.body_one_of")
    return request


def rest_predict(repository: ModelRepository, servable: Servable, body: bytes) -> dict[str, Any]:
    """Answers a TensorFlow Serving REST predict request (row or columnar format), logging it (`requestlog.py`).

    Raises:
        BadInput: The body is malformed or its inputs do not fit the signature.
    """
    started = time.perf_counter()
    request = _parse_body(body)  # a body that is not a request is refused unlogged: it names no signature or inputs
    signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
    if not isinstance(signature_name, str):
        raise BadInput("error.serving.signature_not_text", value=signature_name)
    with repository.requests.call(servable.name, servable.version, signature_name, started=started) as call:
        signature = repository.signature(servable, signature_name)
        names = sorted(input_specs(signature))
        if "instances" in request:
            call.inputs = _columns_from_instances(request["instances"], names)
            call.outputs = run_signature(signature, call.inputs, max_rows=repository.max_rows)
            return {"predictions": _rows(call.outputs)}
        call.inputs = _columns_from_inputs(request["inputs"], names)
        call.outputs = run_signature(signature, call.inputs, max_rows=repository.max_rows)
        return {"outputs": _columns(call.outputs)}


def _version_status(version: int, broken: str | None = None, *, loading: bool = False) -> dict[str, Any]:
    """A version's status as TensorFlow Serving words it: AVAILABLE, LOADING, or END with why it failed to load."""
    if broken is not None:
        return {"version": str(version), "state": "END", "status": {"error_code": "UNKNOWN", "error_message": broken}}
    status = {"error_code": "OK", "error_message": ""}
    return {"version": str(version), "state": "LOADING" if loading else "AVAILABLE", "status": status}


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
    name, version, label = match["name"], int(match["version"]) if match["version"] else None, match["label"]
    if action is None:
        if version is None and label is None:
            versions = repository.versions(name)
        else:
            versions = [repository.resolve(name, version, label).version]
        broken, loading = repository.broken().get(name, {}), repository.loading(name)
        return {
            "model_version_status": [
                _version_status(number, broken.get(number), loading=number in loading) for number in versions
            ]
        }
    servable = repository.resolve(name, version, label)
    if action == "/metadata":
        return rest_metadata(repository, servable)
    return rest_predict(repository, servable, body)


def _answer(handler: Callable[[], dict[str, Any]]) -> _JSON:
    try:
        return _JSON(handler())
    except Exception as exc:
        status, message = error_status(exc)
        return _JSON({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it (or its declared length) passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge("error.serving.body_too_large", size=int(declared), limit=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge("error.serving.body_too_large", size=size, limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _refusal(keys: KeyCheck | None, request: Request) -> _JSON | None:
    """401 unless the request carries a live key (where keys are asked for); None lets it through."""
    if keys is None or await run_in_threadpool(keys.allows, request.headers.get("authorization")):
        return None
    message = render("en", "error.serving.unauthorized")
    return _JSON({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _in_time(
    handler: Callable[[], dict[str, Any]], timeout: float, lane: asyncio.Semaphore | None = None
) -> _JSON:
    """The handler's answer, run in the thread pool once `lane` (if given) is free.

    408 when the wait and the answer take longer than `timeout` seconds.
    """

    async def answer() -> _JSON:
        async with lane or contextlib.nullcontext():
            return await run_in_threadpool(_answer, handler)

    try:
        return await asyncio.wait_for(answer(), timeout)
    except TimeoutError:
        return _JSON({"error": render("en", "error.serving.too_slow", limit=timeout)}, status_code=408)


async def _models(
    repository: ModelRepository,
    request: Request,
    listing: Callable[[], dict[str, Any]],
    max_body: int,
    timeout: float,
    batches: asyncio.Semaphore,
) -> _JSON:
    """`/v1/models/...`: the body read within its limit, then the answer within the time limit.

    Large bodies (BATCH_BYTES and over: a file being scored) are answered one at a time: a scoring job that sends
    batches back to back then takes one core, and requests of a few rows keep the other (one-row p99 under
    batch scoring on two cores: 72 ms without, 57 ms with; rows scored per second unchanged).
    """
    try:
        body = await _read_body(request, max_body)
    except BodyTooLarge as exc:
        return _JSON({"error": str(exc)}, status_code=413)
    rest = request.path_params["rest"]
    if not rest and request.method == "GET":  # `/v1/models/`: the list, as `/v1/models`
        return await _in_time(listing, timeout)
    answer = functools.partial(_rest_models, repository, request.method, rest, body)
    return await _in_time(answer, timeout, batches if len(body) >= BATCH_BYTES else None)


def create_app(
    repository: ModelRepository,
    *,
    grpc_server: grpc.Server | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    keys: KeyCheck | None = None,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Starlette:
    """Builds the REST app: TensorFlow Serving's `/v1/models/...` API plus `/v1/models` and `/healthz`.

    Args:
        repository: Where the models come from.
        grpc_server: If given, it is started and stopped with the app.
        max_body_bytes: Larger request bodies are refused with 413.
        keys: Where given, every request but `/healthz` needs a live API key (`Authorization: Bearer KEY`).
        request_timeout: Seconds a request may take before it is answered with 408.

    Returns:
        The Starlette app; TensorFlow runs in the thread pool, never on the event loop.
    """

    async def healthz(_request: Request) -> _JSON:
        return _JSON({"status": "ok"})

    def listing() -> dict[str, Any]:
        models, loaded = repository.models(), repository.loaded()
        labels = repository.labels.current() if repository.labels is not None else {}
        return {
            "models": [
                {"name": name, "versions": versions, "labels": labels.get(name, {}), "loaded": loaded.get(name, [])}
                for name, versions in models.items()
            ]
        }

    async def list_models(request: Request) -> _JSON:
        return await _refusal(keys, request) or await _in_time(listing, request_timeout)

    batches = asyncio.Semaphore(1)

    async def models(request: Request) -> _JSON:
        return await _refusal(keys, request) or await _models(
            repository, request, listing, max_body_bytes, request_timeout, batches
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if grpc_server is not None:
            grpc_server.start()
        yield
        if grpc_server is not None:
            await run_in_threadpool(lambda: grpc_server.stop(GRPC_STOP_GRACE_SECONDS).wait())

    async def http_error(_request: Request, exc: Exception) -> _JSON:
        """Starlette's own refusals (unknown path, method) in TensorFlow Serving's body, too."""
        status, message = (exc.status_code, exc.detail) if isinstance(exc, HTTPException) else error_status(exc)
        return _JSON({"error": message}, status_code=status)

    routes = [
        Route("/healthz", healthz),
        Route("/v1/models", list_models),
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    handlers = {HTTPException: http_error, Exception: http_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
