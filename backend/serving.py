"""The inference server behind `modeldeck serve`: TensorFlow Serving's REST and gRPC APIs over our exports.

Exports live at `<home>/runs/<run-id>/export/<model>/<version>/saved_model.pb` (TensorFlow Serving's
layout). The folder is rescanned at most once a second, and at once when a request names a model or
version it has not seen, so a new export is served without a restart. A SavedModel is loaded on first use
and kept. Every version found is servable; "latest" is the highest version number.

This is the only backend module that imports TensorFlow: only the `serve` command imports it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from backend.config import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT, Paths
from backend.config import home as default_home
from backend.errors import BadInput, ModelDeckError, NotFound, ServingUnavailable

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
RESCAN_SECONDS = 1.0
GRPC_STOP_GRACE_SECONDS = 5.0
_EXPORT_GLOB = "*/export/*/*/saved_model.pb"
_VERSION = re.compile(r"[0-9]+")
_REST_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?(?P<action>/metadata|:predict)?")
_INTERNAL_ERROR = "Internal error while serving the request; the server's log has the details."


# -- the model repository ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Servable:
    """One version of one model, and the folder its SavedModel is in."""

    name: str
    version: int
    path: Path


def _not_found(name: str, version: int | None) -> NotFound:
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return NotFound(f"Servable not found for request: {request}")


def scan_exports(runs: Path) -> dict[str, dict[int, Path]]:
    """Finds every exported SavedModel under the runs folder.

    Args:
        runs: The `<home>/runs` folder.

    Returns:
        Model name -> version -> the version's folder.
    """
    index: dict[str, dict[int, Path]] = {}
    for saved_model in sorted(runs.glob(_EXPORT_GLOB)):
        folder = saved_model.parent
        if not _VERSION.fullmatch(folder.name) or int(folder.name) < 1:
            continue
        versions = index.setdefault(folder.parent.name, {})
        version = int(folder.name)
        if version in versions:
            log.warning("Ignoring %s: %s already holds that model version", folder, versions[version])
            continue
        versions[version] = folder
    return index


class ModelRepository:
    """The exported models under a ModelDeck home, loaded lazily and cached. Safe to share across threads."""

    def __init__(self, home: Path, rescan_seconds: float = RESCAN_SECONDS) -> None:
        """Creates a repository over `<home>/runs`; nothing is scanned or loaded yet.

        Args:
            home: The ModelDeck home folder.
            rescan_seconds: How old the last scan may be before a request triggers a new one.
        """
        self.runs = Paths(Path(home)).runs
        self._rescan_seconds = rescan_seconds
        self._lock = threading.Lock()
        self._index: dict[str, dict[int, Path]] = {}
        self._scanned_at = float("-inf")
        self._loaded: dict[Path, Any] = {}
        self._load_locks: dict[Path, threading.Lock] = {}

    def _refresh(self, *, force: bool = False) -> dict[str, dict[int, Path]]:
        with self._lock:
            if force or time.monotonic() - self._scanned_at >= self._rescan_seconds:
                self._index = scan_exports(self.runs)
                self._scanned_at = time.monotonic()
                present = {path for versions in self._index.values() for path in versions.values()}
                self._loaded = {path: model for path, model in self._loaded.items() if path in present}
            return self._index

    def models(self) -> dict[str, list[int]]:
        """Returns model name -> its versions, highest first."""
        return {name: sorted(versions, reverse=True) for name, versions in sorted(self._refresh().items())}

    def versions(self, name: str) -> list[int]:
        """Returns a model's versions, highest first.

        Raises:
            NotFound: No export of that model exists.
        """
        versions = self._refresh().get(name) or self._refresh(force=True).get(name)
        if not versions:
            raise _not_found(name, None)
        return sorted(versions, reverse=True)

    def resolve(self, name: str, version: int | None = None) -> Servable:
        """Finds a model version; `None` means the latest.

        Raises:
            NotFound: No such model or version, in TensorFlow Serving's words.
        """
        for force in (False, True):
            versions = self._refresh(force=force).get(name, {})
            chosen = max(versions, default=None) if version is None else version
            if chosen in versions:
                return Servable(name, chosen, versions[chosen])
        raise _not_found(name, version)

    def _load(self, servable: Servable) -> Any:
        with self._lock:
            lock = self._load_locks.setdefault(servable.path, threading.Lock())
        with lock:
            loaded = self._loaded.get(servable.path)
            if loaded is None:
                log.info("Loading %s version %d from %s", servable.name, servable.version, servable.path)
                try:
                    loaded = tf.saved_model.load(str(servable.path))
                except Exception as exc:
                    log.exception("Cannot load %s", servable.path)
                    raise ServingUnavailable(
                        f"Model {servable.name} version {servable.version} at {servable.path} cannot be "
                        f"loaded ({type(exc).__name__}); export it again."
                    ) from exc
                with self._lock:
                    self._loaded[servable.path] = loaded
            return loaded

    def signature(self, servable: Servable, signature_name: str = DEFAULT_SIGNATURE) -> Any:
        """Loads the model if needed and returns one of its signatures (a concrete function).

        Raises:
            BadInput: The model has no signature of that name.
        """
        signatures = self._load(servable).signatures
        name = signature_name or DEFAULT_SIGNATURE
        if name not in signatures:
            raise BadInput(
                f'Serving signature name: "{name}" not found in signature def; '
                f"this model has: {', '.join(sorted(signatures))}."
            )
        return signatures[name]

    def signature_defs(self, servable: Servable) -> dict[str, meta_graph_pb2.SignatureDef]:
        """Reads the SignatureDefs from `saved_model.pb`, as TensorFlow Serving reports them."""
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((servable.path / "saved_model.pb").read_bytes())
        return dict(saved_model.meta_graphs[0].signature_def)


# -- inputs: JSON or TensorProtos -> arrays that fit the signature -------------------------------------------
def input_specs(signature: Any) -> dict[str, tf.TensorSpec]:
    """Returns a signature's keyword inputs: name -> TensorSpec."""
    return dict(signature.structured_input_signature[1])


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "any shape"
    return "[" + ", ".join("-1" if size is None else str(size) for size in shape.as_list()) + "]"


def _check_names(given: Any, expected: list[str], where: str) -> None:
    missing = [name for name in expected if name not in given]
    if missing:
        raise BadInput(f"{where} is missing input '{missing[0]}'; the model needs: {', '.join(expected)}.")
    unknown = sorted(set(given) - set(expected))
    if unknown:
        raise BadInput(f"{where} has unknown input '{unknown[0]}'; the model takes: {', '.join(expected)}.")


def _to_bytes(name: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_to_bytes(name, item) for item in value]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        return base64.b64decode(value["b64"])
    raise BadInput(f"Input '{name}' takes strings, but got {value!r}; send text in quotes.")


def _to_array(name: str, value: Any, spec: tf.TensorSpec) -> np.ndarray:
    if spec.dtype == tf.string:
        items = _to_bytes(name, value.tolist() if isinstance(value, np.ndarray) else value)
        array = np.array(items, dtype=object)
        if not all(isinstance(item, bytes) for item in array.flat):
            raise BadInput(f"Input '{name}' is ragged; every example must have the same number of values.")
        return array
    try:
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"Input '{name}' takes {spec.dtype.name} values, but {exc}.") from exc


def _fit_shape(name: str, array: np.ndarray, spec: tf.TensorSpec) -> np.ndarray:
    shape = spec.shape
    if shape.rank is not None and array.ndim == shape.rank - 1 and shape[-1] == 1:
        array = array.reshape(array.shape + (1,))
    if not shape.is_compatible_with(array.shape):
        raise BadInput(
            f"Input '{name}' has shape {list(array.shape)} but the model takes {_shape_text(shape)} (-1 = any size)."
        )
    return array


def _check_batch_sizes(arrays: dict[str, np.ndarray], specs: dict[str, tf.TensorSpec]) -> None:
    sizes = {name: len(array) for name, array in arrays.items() if specs[name].shape[:1].as_list() == [None]}
    if len(set(sizes.values())) > 1:
        counts = ", ".join(f"{name}: {size}" for name, size in sorted(sizes.items()))
        raise BadInput(f"Inputs have different numbers of examples ({counts}); send as many values for each.")


def _tf_message(exc: tf.errors.OpError) -> str:
    noise = ("Graph execution error", "Detected at node", "<stack traces")
    lines = [line for line in exc.message.splitlines() if line.strip() and not line[0].isspace()]
    useful = [line for line in lines if not line.startswith(noise)] or lines or ["unknown error"]
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", useful[0]).strip()


def run_signature(signature: Any, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """Checks and converts named inputs, runs the signature and returns its named outputs.

    Args:
        signature: A loaded SavedModel signature (keyword inputs, dict of outputs).
        inputs: Input name -> a value per example (JSON lists, or arrays from TensorProtos).

    Returns:
        Output name -> NumPy array.

    Raises:
        BadInput: An input is missing, unknown, of the wrong type or shape, or the model rejects it.
    """
    specs = input_specs(signature)
    _check_names(inputs, sorted(specs), "The request")
    arrays = {name: _fit_shape(name, _to_array(name, inputs[name], spec), spec) for name, spec in specs.items()}
    _check_batch_sizes(arrays, specs)
    tensors = {name: tf.constant(array, dtype=specs[name].dtype) for name, array in arrays.items()}
    try:
        outputs = signature(**tensors)
    except tf.errors.InvalidArgumentError as exc:
        raise BadInput(f"The model rejected the inputs: {_tf_message(exc)}.") from exc
    return {name: tensor.numpy() for name, tensor in outputs.items()}


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
        raise BadInput("'instances' must be a non-empty list: one object of input name -> value per example.")
    if len(names) == 1 and not isinstance(instances[0], dict):
        return {names[0]: instances}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise BadInput(f"Instance {index} is not an object; send input name -> value for each example.")
        _check_names(instance, names, f"Instance {index}")
    return {name: [instance[name] for instance in instances] for name in names}


def _columns_from_inputs(inputs: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(inputs, dict):
        return inputs
    if len(names) == 1:
        return {names[0]: inputs}
    raise BadInput("'inputs' must be an object of input name -> list of values, one per example.")


def _rows(outputs: dict[str, np.ndarray]) -> list[Any]:
    sizes = {len(array) if array.ndim else None for array in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise BadInput('The model\'s outputs cannot be split per instance; send {"inputs": ...} instead.')
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
        raise BadInput(f"The request body is not valid JSON ({exc}).") from exc
    if not isinstance(request, dict):
        raise BadInput('The request body must be a JSON object: {"instances": [...]} or {"inputs": {...}}.')
    if ("instances" in request) == ("inputs" in request):
        raise BadInput("The request body needs exactly one of 'instances' (rows) or 'inputs' (columns).")
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
        raise BadInput(
            f"Malformed request: {method} /v1/models/{rest}; this server answers GET /v1/models/NAME"
            "[/versions/N][/metadata] and POST /v1/models/NAME[/versions/N]:predict."
        )
    name, version = match["name"], int(match["version"]) if match["version"] else None
    if action is None:
        versions = repository.versions(name) if version is None else [repository.resolve(name, version).version]
        return {"model_version_status": [_version_status(number) for number in versions]}
    servable = repository.resolve(name, version)
    if action == "/metadata":
        return rest_metadata(repository, servable)
    return rest_predict(repository, servable, body)


def _error_status(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, BadInput):
        return 400, str(exc)
    if isinstance(exc, ModelDeckError):
        return 500, str(exc)
    log.error("Unexpected error while serving", exc_info=exc)
    return 500, _INTERNAL_ERROR


def _answer(handler: Callable[[], dict[str, Any]]) -> _JSON:
    try:
        return _JSON(handler())
    except Exception as exc:
        status, message = _error_status(exc)
        return _JSON({"error": message}, status_code=status)


def create_app(repository: ModelRepository, *, grpc_server: grpc.Server | None = None) -> Starlette:
    """Builds the REST app: TensorFlow Serving's `/v1/models/...` API plus `/v1/models` and `/healthz`.

    Args:
        repository: Where the models come from.
        grpc_server: If given, it is started and stopped with the app.

    Returns:
        The Starlette app; TensorFlow runs in the thread pool, never on the event loop.
    """

    async def healthz(request: Request) -> _JSON:
        return _JSON({"status": "ok"})

    async def list_models(request: Request) -> _JSON:
        models = await run_in_threadpool(repository.models)
        return _JSON({"models": [{"name": name, "versions": versions} for name, versions in models.items()]})

    async def models(request: Request) -> _JSON:
        body = await request.body()
        rest = request.path_params["rest"]
        if not rest and request.method == "GET":
            return await list_models(request)
        return await run_in_threadpool(_answer, lambda: _rest_models(repository, request.method, rest, body))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
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


# -- gRPC: TensorFlow Serving's PredictionService ------------------------------------------------------------
def _grpc_code(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, BadInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


def _servable_for(repository: ModelRepository, model_spec: Any) -> Servable:
    version = model_spec.version.value if model_spec.HasField("version") else None
    return repository.resolve(model_spec.name, version)


def _read_tensor(name: str, proto: Any) -> np.ndarray:
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"Input '{name}' is not a readable TensorProto ({exc}).") from exc


def grpc_predict(repository: ModelRepository, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """Answers a TensorFlow Serving gRPC Predict request, honouring `output_filter`.

    Raises:
        NotFound: No such model or version.
        BadInput: The inputs do not fit the signature, or the filter names an unknown output.
    """
    servable = _servable_for(repository, request.model_spec)
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = repository.signature(servable, signature_name)
    inputs = {name: _read_tensor(name, proto) for name, proto in request.inputs.items()}
    outputs = run_signature(signature, inputs)
    wanted = list(request.output_filter) or list(outputs)
    unknown = [name for name in wanted if name not in outputs]
    if unknown:
        raise BadInput(f"output_filter names unknown output '{unknown[0]}'; outputs: {', '.join(outputs)}.")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for name in wanted:
        response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
    return response


def grpc_metadata(
    repository: ModelRepository, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Answers a TensorFlow Serving gRPC GetModelMetadata request (`metadata_field: "signature_def"`).

    Raises:
        NotFound: No such model or version.
        BadInput: The request does not ask for `signature_def`.
    """
    if "signature_def" not in request.metadata_field:
        raise BadInput('GetModelMetadata needs metadata_field: ["signature_def"], the only metadata served.')
    servable = _servable_for(repository, request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    defs = get_model_metadata_pb2.SignatureDefMap(signature_def=repository.signature_defs(servable))
    response.metadata["signature_def"].Pack(defs)
    return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TensorFlow Serving's PredictionService (Predict and GetModelMetadata) over a ModelRepository."""

    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    def _call(self, handler: Callable[[ModelRepository, Any], Any], request: Any, context: Any) -> Any:
        try:
            return handler(self.repository, request)
        except Exception as exc:
            status = _grpc_code(exc)
            context.abort(status, _error_status(exc)[1])

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (gRPC's name)
        """Runs a model signature on TensorProto inputs."""
        return self._call(grpc_predict, request, context)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """Returns the model's SignatureDefs."""
        return self._call(grpc_metadata, request, context)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def create_grpc_server(repository: ModelRepository, host: str, port: int) -> grpc.Server:
    """Builds (and binds, but does not start) the gRPC server.

    Raises:
        ServingUnavailable: The port cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.so_reuseport", 0),  # fail loudly, rather than share the port with another server
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(repository), server)
    try:
        bound = server.add_insecure_port(_address(host, port))
    except RuntimeError:
        bound = 0
    if not bound:
        address = _address(host, port)
        raise ServingUnavailable(f"Cannot listen for gRPC on {address}; free the port or pass --grpc-port.")
    return server


# -- the `serve` command -------------------------------------------------------------------------------------
def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ServingUnavailable(
            f"Cannot listen for REST on {_address(host, port)} ({os.strerror(exc.errno or 0)}); "
            "free the port or pass --port."
        ) from exc


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
        log.info("Serving models from %s: REST on %s, gRPC on %s", repository.runs, rest_port, grpc_port)
        config = uvicorn.Config(create_app(repository, grpc_server=grpc_server), host=host, port=rest_port)
        uvicorn.Server(config).run(sockets=[rest_socket])
    except KeyboardInterrupt:
        pass
    finally:
        rest_socket.close()
    log.info("Stopped serving.")


def main(argv: list[str] | None = None) -> None:
    """`python -m backend.serving --home H --port P --grpc-port G [--host A]`."""
    parser = argparse.ArgumentParser(prog="python -m backend.serving", description=serve.__doc__)
    parser.add_argument("--home", type=Path, default=None, help="ModelDeck home (default: MODELDECK_HOME)")
    parser.add_argument("--port", type=int, default=DEFAULT_REST_PORT, help="REST port")
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(home=args.home or default_home(), rest_port=args.port, grpc_port=args.grpc_port, host=args.host)
    except ModelDeckError as exc:
        log.error("%s", exc)
        raise SystemExit(exc.exit_code) from exc


if __name__ == "__main__":
    main()
