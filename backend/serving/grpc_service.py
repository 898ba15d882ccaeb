"""gRPC: TensorFlow Serving's `PredictionService` (Predict, GetModelMetadata) and `ModelService` (GetModelStatus).

A `model_spec` names a version by number (`version`), by label (`version_label`: a registry stage such as
`production`) or neither (the latest), as TensorFlow Serving's does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from backend.errors import BadInput, NotFound, ServingUnavailable
from backend.i18n import render
from backend.serving.keys import KeyCheck
from backend.serving.repository import DEFAULT_SIGNATURE, ModelRepository, Servable, error_status, run_signature

log = logging.getLogger(__name__)


# -- gRPC: TensorFlow Serving's PredictionService ------------------------------------------------------------
def _grpc_code(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, BadInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


def _servable_for(repository: ModelRepository, model_spec: Any) -> Servable:
    choice = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if choice == "version" else None
    label = model_spec.version_label if choice == "version_label" else None
    return repository.resolve(model_spec.name, version, label)


def _read_tensor(name: str, proto: Any) -> np.ndarray:
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as exc:
        raise BadInput("error.serving.bad_tensorproto", name=name, reason=exc) from exc


def grpc_predict(repository: ModelRepository, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """Answers a TensorFlow Serving gRPC Predict request, honouring `output_filter`, and logs it (`requestlog.py`).

    Raises:
        NotFound: No such model or version.
        BadInput: The inputs do not fit the signature, or the filter names an unknown output.
    """
    started = time.perf_counter()
    servable = _servable_for(repository, request.model_spec)
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    with repository.requests.call(servable.name, servable.version, signature_name, started=started) as call:
        signature = repository.signature(servable, signature_name)
        call.inputs = {name: _read_tensor(name, proto) for name, proto in request.inputs.items()}
        outputs = run_signature(signature, call.inputs, max_rows=repository.max_rows)
        wanted = list(request.output_filter) or list(outputs)
        unknown = [name for name in wanted if name not in outputs]
        if unknown:
            raise BadInput("error.serving.unknown_output", unknown=unknown[0], outputs=", ".join(outputs))
        call.outputs = outputs
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
        raise BadInput("error.serving.metadata_field")
    servable = _servable_for(repository, request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    defs = get_model_metadata_pb2.SignatureDefMap(signature_def=repository.signature_defs(servable))
    response.metadata["signature_def"].Pack(defs)
    return response


def grpc_status(
    repository: ModelRepository, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    """Answers a TensorFlow Serving gRPC GetModelStatus request: every version, or the one the spec names.

    Every version found is AVAILABLE (one not in memory is loaded by the request that needs it), except a new one
    while the one before it answers for the latest (LOADING) and one whose files failed to load (END, with why).

    Raises:
        NotFound: No such model or version.
        BadInput: No version holds the label.
    """
    spec = request.model_spec
    if spec.WhichOneof("version_choice") is None:
        versions = repository.versions(spec.name)
    else:
        versions = [_servable_for(repository, spec).version]
    response = get_model_status_pb2.GetModelStatusResponse()
    broken, loading = repository.broken().get(spec.name, {}), repository.loading(spec.name)
    for version in versions:
        status = response.model_version_status.add(version=version)
        if version in broken:
            status.state = get_model_status_pb2.ModelVersionStatus.END
            status.status.error_code = 2  # UNKNOWN, as TensorFlow Serving reports a version that failed to load
            status.status.error_message = broken[version]
        elif version in loading:
            status.state = get_model_status_pb2.ModelVersionStatus.LOADING
        else:
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TensorFlow Serving's ModelService: GetModelStatus (HandleReloadConfigRequest stays unimplemented)."""

    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (gRPC's name)
        """Returns the state of a model's versions."""
        try:
            return grpc_status(self.repository, request)
        except Exception as exc:
            context.abort(_grpc_code(exc), error_status(exc)[1])


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TensorFlow Serving's PredictionService (Predict and GetModelMetadata) over a ModelRepository."""

    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    def _call(self, handler: Callable[[ModelRepository, Any], Any], request: Any, context: Any) -> Any:
        try:
            return handler(self.repository, request)
        except Exception as exc:
            status = _grpc_code(exc)
            context.abort(status, error_status(exc)[1])

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (gRPC's name)
        """Runs a model signature on TensorProto inputs."""
        return self._call(grpc_predict, request, context)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """Returns the model's SignatureDefs."""
        return self._call(grpc_metadata, request, context)


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class KeyInterceptor(grpc.ServerInterceptor):
    """Refuses a call without a live API key in its `authorization` metadata ("Bearer KEY") as UNAUTHENTICATED."""

    def __init__(self, keys: KeyCheck) -> None:
        self._keys = keys
        message = render("en", "error.serving.unauthorized")
        self._refuse = grpc.unary_unary_rpc_method_handler(
            lambda _request, context: context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        )

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        metadata = dict(details.invocation_metadata or ())
        return continuation(details) if self._keys.allows(metadata.get("authorization")) else self._refuse


def create_grpc_server(
    repository: ModelRepository, host: str, port: int, *, keys: KeyCheck | None = None
) -> grpc.Server:
    """Builds (and binds, but does not start) the gRPC server; with `keys`, every call needs a live API key.

    Raises:
        ServingUnavailable: The port cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        interceptors=[KeyInterceptor(keys)] if keys is not None else [],
        options=[
            ("grpc.so_reuseport", 0),  # fail loudly, rather than share the port with another server
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(repository), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository), server)
    try:
        bound = server.add_insecure_port(host_port(host, port))
    except RuntimeError:
        bound = 0
    if not bound:
        address = host_port(host, port)
        raise ServingUnavailable("error.serving.grpc_port", address=address)
    return server
