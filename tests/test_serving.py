"""The inference server, started for real, speaks TensorFlow Serving's REST and gRPC; the client uses it.

TensorFlow is imported inside fixtures and tests only, so collecting this file stays cheap.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from backend.errors import BadInput, NotFound, ServingUnavailable
from backend.serving import client
from tests import factories

REPO = Path(__file__).resolve().parents[1]
DEMO = Path("runs/1/export/demo/1")
DOUBLER = Path("runs/2/export/doubler/1")
GROWING = Path("runs/3/export/growing/1")
ROWS = [{"x": 0.5, "colour": "red"}, {"x": 2.0, "colour": "blue"}, {"x": -1.0, "colour": "purple"}]
COLUMNS = {"x": [[0.5], [2.0], [-1.0]], "colour": [["red"], ["blue"], ["purple"]]}
STARTUP_SECONDS = 90


# -- exports that follow our signature contract --------------------------------------------------------------
def _export_classifier(folder: Path) -> None:
    """A Keras model over a float `x` and a string `colour`, exported with named classification outputs."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = keras.Input(shape=(1,), dtype="float32", name="x")
    colour = keras.Input(shape=(1,), dtype="string", name="colour")
    onehot = keras.layers.StringLookup(vocabulary=["red", "green", "blue"], output_mode="one_hot")(colour)
    probabilities = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([x, onehot]))
    model = keras.Model({"x": x, "colour": colour}, probabilities)
    classes = tf.constant(["cat", "dog", "fish"])
    spec = {
        "x": tf.TensorSpec([None, 1], tf.float32, name="x"),
        "colour": tf.TensorSpec([None, 1], tf.string, name="colour"),
    }

    @tf.function(input_signature=[spec])
    def serving_default(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        scores = model(features)
        return {
            "probabilities": scores,
            "label": tf.gather(classes, tf.argmax(scores, axis=1)),
            "classes": tf.tile(classes[None, :], [tf.shape(scores)[0], 1]),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_default)
    archive.write_out(str(folder), verbose=False)


def _export_doubler(folder: Path) -> None:
    """A plain tf.Module with the same inputs and a single regression output: `value` = 2x."""
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 1], tf.float32, name="x"),
                tf.TensorSpec([None, 1], tf.string, name="colour"),
            ]
        )
        def __call__(self, x: tf.Tensor, colour: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"value": tf.reshape(x * 2.0, [-1])}

    module = Doubler()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value.decode() if isinstance(value, bytes) else value


def _as_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    count = len(next(iter(columns.values())))
    return [{name: values[index] for name, values in columns.items()} for index in range(count)]


# -- a real server in a subprocess ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunningServer:
    rest: str
    grpc: str
    process: subprocess.Popen[bytes]
    log: Path


def _wait_until_healthy(server: RunningServer) -> None:
    factories.wait_until_up(server.process, [f"{server.rest}/healthz"], log=server.log, timeout_s=STARTUP_SECONDS)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def booting_server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Starts `python -m backend.serving`; it imports TensorFlow while the models are exported."""
    rest_port, grpc_port = factories.free_ports(2)
    log = tmp_path_factory.mktemp("serving") / "server.log"
    process = factories.start_process(factories.serve_command(home, rest_port, grpc_port), log=log)
    try:
        yield RunningServer(f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", process, log)
    finally:
        factories.stop_process(process)


@pytest.fixture(scope="module")
def exported(home: Path) -> Path:
    """demo v1 (classifier), doubler v1 (single output) and growing v1 (a copy of demo) in the home."""
    _export_classifier(home / DEMO)
    _export_doubler(home / DOUBLER)
    shutil.copytree(home / DEMO, home / GROWING)
    return home


@pytest.fixture(scope="module")
def server(booting_server: RunningServer, exported: Path) -> RunningServer:
    _wait_until_healthy(booting_server)
    return booting_server


@pytest.fixture(scope="module")
def expected_columns(exported: Path) -> dict[str, list[Any]]:
    """demo's outputs for COLUMNS, from the SavedModel called in this process."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(exported / DEMO))
    outputs = loaded.signatures["serving_default"](x=tf.constant(COLUMNS["x"]), colour=tf.constant(COLUMNS["colour"]))
    return {name: _plain(tensor.numpy().tolist()) for name, tensor in outputs.items()}


@pytest.fixture(scope="module")
def stub(server: RunningServer) -> Iterator[Any]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server.grpc) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _predict_request(model: str) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(COLUMNS["x"], dtype=tf.float32))
    request.inputs["colour"].CopyFrom(tf.make_tensor_proto(COLUMNS["colour"], dtype=tf.string))
    return request


def _post(server: RunningServer, path: str, body: Any) -> tuple[int, Any]:
    response = httpx.post(f"{server.rest}/v1/models/{path}", json=body, timeout=30)
    return response.status_code, response.json()


def _get(server: RunningServer, path: str) -> tuple[int, Any]:
    response = httpx.get(f"{server.rest}/v1/models/{path}", timeout=30)
    return response.status_code, response.json()


def _status(*versions: int) -> dict[str, Any]:
    status = {"error_code": "OK", "error_message": ""}
    return {"model_version_status": [{"version": str(v), "state": "AVAILABLE", "status": status} for v in versions]}


# -- REST ----------------------------------------------------------------------------------------------------
def test_rest_status_reports_the_exported_version_available(server: RunningServer) -> None:
    assert _get(server, "demo") == (200, _status(1))


def test_rest_status_of_a_specific_version(server: RunningServer) -> None:
    assert _get(server, "demo/versions/1") == (200, _status(1))


def test_rest_metadata_describes_the_serving_signature(server: RunningServer) -> None:
    code, body = _get(server, "demo/metadata")
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]

    def summary(tensors: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
        return {name: (t["dtype"], [d["size"] for d in t["tensor_shape"]["dim"]]) for name, t in tensors.items()}

    assert (code, body["model_spec"]) == (200, {"name": "demo", "signature_name": "", "version": "1"})
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert summary(signature["inputs"]) == {
        "x": ("DT_FLOAT", ["-1", "1"]),
        "colour": ("DT_STRING", ["-1", "1"]),
    }
    assert summary(signature["outputs"]) == {
        "probabilities": ("DT_FLOAT", ["-1", "3"]),
        "label": ("DT_STRING", ["-1"]),
        "classes": ("DT_STRING", ["-1", "3"]),
    }


def test_rest_predict_in_row_format_matches_the_saved_model(server: RunningServer, expected_columns: dict) -> None:
    assert _post(server, "demo:predict", {"instances": ROWS}) == (
        200,
        {"predictions": _as_rows(expected_columns)},
    )


def test_rest_predict_in_columnar_format_matches_the_saved_model(server: RunningServer, expected_columns: dict) -> None:
    assert _post(server, "demo:predict", {"inputs": COLUMNS}) == (200, {"outputs": expected_columns})


def test_rest_predict_on_a_specific_version_path(server: RunningServer, expected_columns: dict) -> None:
    body = {"signature_name": "serving_default", "instances": ROWS}
    assert _post(server, "demo/versions/1:predict", body) == (
        200,
        {"predictions": _as_rows(expected_columns)},
    )


def test_rest_predict_gives_bare_values_for_a_single_output_like_tf_serving(server: RunningServer) -> None:
    assert _post(server, "doubler:predict", {"instances": ROWS}) == (200, {"predictions": [1.0, 4.0, -2.0]})


def test_rest_unknown_model_is_404_in_tf_serving_words(server: RunningServer) -> None:
    assert _post(server, "nope:predict", {"instances": ROWS}) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )


def test_rest_unknown_version_is_404_in_tf_serving_words(server: RunningServer) -> None:
    assert _get(server, "demo/versions/7") == (
        404,
        {"error": "Servable not found for request: Specific(demo, 7)"},
    )


def test_rest_missing_input_is_400_naming_the_input(server: RunningServer) -> None:
    assert _post(server, "demo:predict", {"instances": [{"x": 1.0}]}) == (
        400,
        {"error": "Instance 0 is missing input 'colour'; the model needs: colour, x."},
    )


def test_rest_wrong_input_type_is_400_naming_the_input(server: RunningServer) -> None:
    assert _post(server, "demo:predict", {"instances": [{"x": 1.0, "colour": 3}]}) == (
        400,
        {"error": "Input 'colour' takes strings, but got 3; send text in quotes."},
    )


def test_rest_malformed_json_is_400(server: RunningServer) -> None:
    response = httpx.post(f"{server.rest}/v1/models/demo:predict", content=b"{oops", timeout=30)
    assert (response.status_code, response.json()) == (
        400,
        {
            "error": "The request body is not valid JSON "
            "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))."
        },
    )


def test_rest_lists_models_and_versions(server: RunningServer) -> None:
    response = httpx.get(f"{server.rest}/v1/models", timeout=30)
    models = {model["name"]: model["versions"] for model in response.json()["models"] if model["name"] != "growing"}
    assert (response.status_code, models) == (200, {"demo": [1], "doubler": [1]})


# -- gRPC ----------------------------------------------------------------------------------------------------
def test_grpc_predict_matches_the_saved_model(stub: Any, expected_columns: dict) -> None:
    import tensorflow as tf

    response = stub.Predict(_predict_request("demo"), timeout=30)
    outputs = {name: _plain(tf.make_ndarray(proto).tolist()) for name, proto in response.outputs.items()}
    assert (response.model_spec.name, response.model_spec.version.value, outputs) == (
        "demo",
        1,
        expected_columns,
    )


def test_grpc_predict_honours_output_filter(stub: Any) -> None:
    request = _predict_request("demo")
    request.output_filter.append("label")
    assert sorted(stub.Predict(request, timeout=30).outputs) == ["label"]


def test_grpc_unknown_model_is_not_found(stub: Any) -> None:
    import grpc

    with pytest.raises(grpc.RpcError, match="NOT_FOUND") as raised:
        stub.Predict(_predict_request("nope"), timeout=30)
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )


def test_grpc_metadata_lists_the_signature_inputs(stub: Any) -> None:
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "demo"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    stub.GetModelMetadata(request, timeout=30).metadata["signature_def"].Unpack(signatures)
    assert sorted(signatures.signature_def["serving_default"].inputs) == ["colour", "x"]


# -- the client ----------------------------------------------------------------------------------------------
def test_client_predict_returns_the_predictions_and_the_latency(server: RunningServer, expected_columns: dict) -> None:
    predictions, latency_ms = client.predict(ROWS, model="demo", base_url=server.rest)
    assert (predictions, latency_ms > 0) == (_as_rows(expected_columns), True)


def test_client_predict_names_a_single_output(server: RunningServer) -> None:
    predictions, _ = client.predict(ROWS, model="doubler", version=1, base_url=server.rest)
    assert predictions == [{"value": 1.0}, {"value": 4.0}, {"value": -2.0}]


def test_client_model_status(server: RunningServer) -> None:
    assert client.model_status("demo", base_url=server.rest) == _status(1)


def test_client_raises_not_found_for_an_unknown_model(server: RunningServer) -> None:
    with pytest.raises(NotFound, match=r"^Servable not found for request: Latest\(nope\)$"):
        client.predict(ROWS, model="nope", base_url=server.rest)


def test_client_raises_bad_input_naming_the_missing_input(server: RunningServer) -> None:
    with pytest.raises(BadInput, match=r"^Instance 0 is missing input 'colour'; the model needs: colour, x\.$"):
        client.predict([{"x": 1.0}], model="demo", base_url=server.rest)


def test_client_raises_serving_unavailable_when_nothing_listens() -> None:
    base_url = f"http://127.0.0.1:{factories.free_ports(1)[0]}"
    expected = rf"^The inference server at {base_url} is not answering\. Start it with `modeldeck serve`"
    with pytest.raises(ServingUnavailable, match=expected):
        client.predict(ROWS, model="demo", base_url=base_url)


def test_client_is_up_when_the_server_answers(server: RunningServer) -> None:
    assert client.is_up(server.rest) is True


def test_client_is_not_up_when_nothing_listens() -> None:
    assert client.is_up(f"http://127.0.0.1:{factories.free_ports(1)[0]}") is False


def test_client_does_not_import_tensorflow() -> None:
    code = "import sys, backend.serving; print(sorted(m for m in sys.modules if m.startswith('tensorflow')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"


# -- a new export --------------------------------------------------------------------------------------------
def test_a_version_exported_after_start_is_served_and_becomes_latest(server: RunningServer, exported: Path) -> None:
    staging, target = exported / "runs/4/staging", exported / "runs/4/export/growing/2"
    shutil.copytree(exported / DOUBLER, staging)
    target.parent.mkdir(parents=True)
    staging.rename(target)  # complete at once, as an export should appear
    deadline = time.monotonic() + 5
    while _get(server, "growing") != (200, _status(2, 1)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (_get(server, "growing"), _post(server, "growing:predict", {"instances": ROWS})) == (
        (200, _status(2, 1)),
        (200, {"predictions": [1.0, 4.0, -2.0]}),
    )


def test_an_answer_with_nan_and_infinity_is_written_as_tf_serving_writes_it() -> None:
    """orjson writes the answers, and would write NaN as null: a row with one keeps TF Serving's bare NaN."""
    from backend.serving import rest

    outputs = {
        "score": np.array([[0.5, np.nan], [np.inf, 1.0]], dtype="float32"),
        "label": np.array([b"a", b"b"], dtype=object),
    }
    columns = rest._JSON({"outputs": rest._columns(outputs)}).body
    assert columns == b'{"outputs":{"score":[[0.5, NaN],[Infinity, 1.0]],"label":["a","b"]}}'
    rows = rest._JSON({"predictions": rest._rows(outputs)}).body
    assert rows == b'{"predictions":[{"score":[0.5, NaN],"label":"a"},{"score":[Infinity, 1.0],"label":"b"}]}'
    finite = rest._JSON({"outputs": rest._columns({"p": np.array([0.1, 0.25], dtype="float32")})}).body
    assert finite == b'{"outputs":[0.10000000149011612,0.25]}'  # each float32 exactly, as the row format writes it
