"""The model registry: stages with their history, rollback, the CLI, and the inference server that serves the
stages as TensorFlow Serving's version labels (REST and gRPC), follows a promotion without a restart, unloads
what no stage or request needs, and answers hostile requests with a 4xx, never a 500.

TensorFlow is imported inside fixtures and tests only, so collecting this file stays cheap.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend import cli
from backend.errors import BadInput, NotFound
from backend.serving import registry
from db import open_store
from tests import factories

LIMIT = 1_000_000  # the served test server's body limit
STARTUP_SECONDS = 90


# -- the registry over a store -------------------------------------------------------------------------------------
def _version(store: Any, *, task: str = "classification", dataset: str = "churn") -> tuple[str, int]:
    """A finished run's model version on a small churn table: (model name, version), named as training names it."""
    _, version = factories.add_frame(store, factories.churn_frame(rows=30), name=dataset, target="churn")
    run = store.create_run(version_id=version.id, task=task, target="churn", spec={}, queue=False)
    base = dataset
    named = store.name_model(run.id, names=[base, f"{base}-{task}"], task=task, export_parent=f"runs/{run.id}/export")
    store.update_run(run.id, status="succeeded", metrics={"accuracy": 0.5})
    return named


def _plain(change: Any) -> tuple[str, int, str, str, str, str]:
    return (change.model_name, change.version, change.stage, change.action, change.assigned_by, change.reason)


def test_a_regressor_on_a_classifiers_data_gets_a_name_of_its_own(store) -> None:
    assert [
        _version(store),
        _version(store, task="regression"),
        _version(store),
        _version(store, task="regression"),
    ] == [
        ("churn", 1),
        ("churn-regression", 1),
        ("churn", 2),
        ("churn-regression", 2),
    ]


def test_promote_records_who_and_why_and_the_stage_applies(store) -> None:
    _version(store), _version(store)
    change = registry.promote(store, "churn", 2, stage="production", reason="better recall", assigned_by="ana")
    assert (
        _plain(change),
        registry.stage_version(store, "churn"),
        registry.stage_version(store, "churn", "staging"),
    ) == (
        ("churn", 2, "production", "promote", "ana", "better recall"),
        2,
        None,
    )


def test_rollback_gives_the_stage_to_the_previous_holder_and_again_to_the_one_before(store) -> None:
    for _ in range(3):
        _version(store)
    for version in (1, 2, 3):
        registry.promote(store, "churn", version, stage="production", assigned_by="ana")
    first = registry.rollback(store, "churn", stage="production", reason="v3 drifts", assigned_by="bo")
    second = registry.rollback(store, "churn", stage="production", assigned_by="bo")
    history = [(c.version, c.action) for c in registry.show(store, "churn").history]
    assert (_plain(first), second.version, registry.stage_version(store, "churn"), history) == (
        ("churn", 2, "production", "rollback", "bo", "v3 drifts"),
        1,
        1,
        [(1, "rollback"), (2, "rollback"), (3, "promote"), (2, "promote"), (1, "promote")],
    )


def test_stages_are_independent(store) -> None:
    _version(store), _version(store)
    registry.promote(store, "churn", 1, stage="production", assigned_by="ana")
    registry.promote(store, "churn", 2, stage="staging", assigned_by="ana")
    assert [m.to_dict() for m in registry.models(store)] == [
        {
            "name": "churn",
            "task": "classification",
            "dataset": "churn",
            "versions": [2, 1],
            "stages": {"production": 1, "staging": 2},
        }
    ]


def test_rollback_with_no_earlier_holder_is_refused(store) -> None:
    _version(store)
    registry.promote(store, "churn", 1, stage="production", assigned_by="ana")
    with pytest.raises(BadInput, match=r"^No earlier version of 'churn' held production, so there is nothing to roll"):
        registry.rollback(store, "churn", stage="production")


def test_promoting_the_version_that_holds_the_stage_is_refused(store) -> None:
    _version(store)
    registry.promote(store, "churn", 1, stage="staging", assigned_by="ana")
    with pytest.raises(BadInput, match=r"^Version 1 of 'churn' already holds staging; promote another version"):
        registry.promote(store, "churn", 1, stage="staging")


@pytest.mark.parametrize(
    ("name", "version", "stage", "error", "message"),
    [
        (
            "nope",
            1,
            "production",
            NotFound,
            r"^Model 'nope' not found\. Expected one of: churn\. See `modeldeck models",
        ),
        ("churn", 9, "production", NotFound, r"^Model 'churn' has no version 9\. Expected one of: 1\. See `modeldeck"),
        ("churn", 1, "canary", BadInput, r"^Unknown stage 'canary'\. Expected one of: production, staging\.$"),
    ],
)
def test_unknown_model_version_or_stage_is_one_line(store, name, version, stage, error, message) -> None:
    _version(store)
    with pytest.raises(error, match=message):
        registry.promote(store, name, version, stage=stage)


# -- the CLI -----------------------------------------------------------------------------------------------------
def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = cli.main([*args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith("{") else out), err


def _without_time(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ("at", "created_at")}


def test_cli_models_promote_rollback_list_and_show_as_json(store, capsys) -> None:
    _version(store), _version(store)
    promoted = [
        _cli(
            capsys,
            "models",
            "promote",
            "churn",
            str(v),
            "--stage",
            "production",
            "--why",
            f"v{v}",
            "--by",
            "ana",
            "--json",
        )
        for v in (1, 2)
    ]
    _, rolled, _ = _cli(capsys, "models", "rollback", "churn", "--stage", "production", "--by", "bo", "--json")
    _, listed, _ = _cli(capsys, "models", "list", "--json")
    _, shown, _ = _cli(capsys, "models", "show", "churn", "--json")
    assert [(code, _without_time(p)) for code, p, _ in promoted] == [
        (0, {"model": "churn", "version": 1, "stage": "production", "action": "promote", "by": "ana", "why": "v1"}),
        (0, {"model": "churn", "version": 2, "stage": "production", "action": "promote", "by": "ana", "why": "v2"}),
    ]
    assert _without_time(rolled) == {
        "model": "churn",
        "version": 1,
        "stage": "production",
        "action": "rollback",
        "by": "bo",
        "why": "",
    }
    assert listed == {
        "models": [
            {
                "name": "churn",
                "task": "classification",
                "dataset": "churn",
                "versions": [2, 1],
                "stages": {"production": 1},
            }
        ]
    }
    assert [_without_time(v) for v in shown["versions"]] == [
        {
            "version": 2,
            "run_id": 2,
            "task": "classification",
            "dataset": "churn",
            "metrics": {"accuracy": 0.5},
            "stages": [],
        },
        {
            "version": 1,
            "run_id": 1,
            "task": "classification",
            "dataset": "churn",
            "metrics": {"accuracy": 0.5},
            "stages": ["production"],
        },
    ]
    assert [(c["version"], c["action"], c["by"]) for c in shown["history"]] == [
        (1, "rollback", "bo"),
        (2, "promote", "ana"),
        (1, "promote", "ana"),
    ]


def test_cli_unknown_stage_exits_2_with_one_line(store, capsys) -> None:
    _version(store)
    assert _cli(capsys, "models", "promote", "churn", "1", "--stage", "prod") == (
        2,
        "",
        "error: Unknown stage 'prod'. Expected one of: production, staging.\n",
    )


# -- a real server over a trained model with two versions ------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    home: Path
    rest: str
    grpc: str
    url: str  # the database


@pytest.fixture(scope="module")
def served_home(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the churn home: `churn` versions 1 and 2 (the same weights), version 1 in production."""
    home = tmp_path_factory.mktemp("registry") / "home"
    shutil.copytree(churn_run["home"], home)
    factories.add_version(home, churn_run["run_id"])
    return home


@pytest.fixture(scope="module")
def served(served_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    rest_port, grpc_port = factories.free_ports(2)
    log = tmp_path_factory.mktemp("registry-serving") / "server.log"
    command = factories.serve_command(served_home, rest_port, grpc_port) + ["--max-body-bytes", str(LIMIT)]
    process = factories.start_process(command, log=log)
    rest = f"http://127.0.0.1:{rest_port}"
    try:
        factories.wait_until_up(process, [f"{rest}/healthz"], log=log, timeout_s=STARTUP_SECONDS)
        yield Served(served_home, rest, f"127.0.0.1:{grpc_port}", f"sqlite:///{served_home / 'modeldeck.db'}")
    finally:
        factories.stop_process(process)


def _get(served: Served, path: str) -> tuple[int, Any]:
    response = httpx.get(f"{served.rest}/v1/models/{path}", timeout=30)
    return response.status_code, response.json()


def _post(served: Served, path: str, body: Any) -> tuple[int, Any]:
    response = httpx.post(f"{served.rest}/v1/models/{path}", json=body, timeout=30)
    return response.status_code, response.json()


def _status(*versions: int) -> dict[str, Any]:
    status = {"error_code": "OK", "error_message": ""}
    return {"model_version_status": [{"version": str(v), "state": "AVAILABLE", "status": status} for v in versions]}


def test_rest_label_answers_with_the_version_that_holds_the_stage(served: Served) -> None:
    by_label = _post(served, "churn/labels/production:predict", {"instances": [factories.CHURN_ROW]})
    assert (_get(served, "churn/labels/production"), by_label) == (
        (200, _status(1)),
        _post(served, "churn/versions/1:predict", {"instances": [factories.CHURN_ROW]}),
    )
    assert by_label[0] == 200


def test_rest_label_metadata_names_the_labelled_version(served: Served) -> None:
    code, body = _get(served, "churn/labels/production/metadata")
    assert (code, body["model_spec"]) == (200, {"name": "churn", "signature_name": "", "version": "1"})


def _eventually(served: Served, path: str, expected: tuple[int, Any]) -> tuple[int, Any]:
    """The server's answer once it is `expected` (the server reads the stages at most a second old), or the last."""
    deadline = time.monotonic() + 10
    answer = _get(served, path)
    while answer != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = _get(served, path)
    return answer


def test_a_promotion_reaches_the_running_server_without_a_restart(served: Served) -> None:
    store = open_store(served.url)
    try:
        registry.promote(store, "churn", 1, stage="staging", assigned_by="ana")
        first = _eventually(served, "churn/labels/staging", (200, _status(1)))
        registry.promote(store, "churn", 2, stage="staging", reason="try v2", assigned_by="ana")
        second = _eventually(served, "churn/labels/staging", (200, _status(2)))
    finally:
        store.close()
    assert (first, second) == ((200, _status(1)), (200, _status(2)))


def test_rest_unknown_label_is_400_in_tf_serving_words(served: Served) -> None:
    assert _post(served, "churn/labels/canary:predict", {"instances": [factories.CHURN_ROW]}) == (
        400,
        {"error": "Unrecognized servable version label: canary"},
    )


def test_the_models_listing_shows_labels_and_what_is_loaded(served: Served) -> None:
    _post(served, "churn/versions/1:predict", {"instances": [factories.CHURN_ROW]})
    models = httpx.get(f"{served.rest}/v1/models", timeout=30).json()["models"]
    churn = next(m for m in models if m["name"] == "churn")
    assert (churn["versions"], churn["labels"]["production"], 1 in churn["loaded"]) == ([2, 1], 1, True)


# -- gRPC: version_label and ModelService.GetModelStatus ---------------------------------------------------------------
@pytest.fixture(scope="module")
def channel(served: Served) -> Iterator[Any]:
    import grpc

    with grpc.insecure_channel(served.grpc) as opened:
        yield opened


def _predict_request(label: str) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "churn"
    request.model_spec.version_label = label
    for name, value in factories.CHURN_ROW.items():
        dtype = tf.string if isinstance(value, str) else tf.float32
        request.inputs[name].CopyFrom(tf.make_tensor_proto([[value]], dtype=dtype))
    return request


def test_grpc_version_label_predicts_with_the_labelled_version(channel: Any) -> None:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(_predict_request("production"))
    assert (response.model_spec.name, response.model_spec.version.value, sorted(response.outputs)) == (
        "churn",
        1,
        ["classes", "label", "probabilities"],
    )


def _model_status(channel: Any, **spec: Any) -> list[tuple[int, str, int, str]]:
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = spec.pop("name")
    if "version" in spec:
        request.model_spec.version.value = spec["version"]
    if "label" in spec:
        request.model_spec.version_label = spec["label"]
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    states = get_model_status_pb2.ModelVersionStatus.State
    return [
        (s.version, states.Name(s.state), s.status.error_code, s.status.error_message)
        for s in response.model_version_status
    ]


def test_grpc_get_model_status_lists_every_version_available(channel: Any) -> None:
    assert _model_status(channel, name="churn") == [(2, "AVAILABLE", 0, ""), (1, "AVAILABLE", 0, "")]


def test_grpc_get_model_status_of_a_label(channel: Any) -> None:
    assert _model_status(channel, name="churn", label="production") == [(1, "AVAILABLE", 0, "")]


def test_grpc_get_model_status_of_an_unknown_model_is_not_found(channel: Any) -> None:
    import grpc

    with pytest.raises(grpc.RpcError, match="NOT_FOUND") as raised:
        _model_status(channel, name="nope")
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )


# -- hostile requests: a 4xx with TensorFlow Serving's body, never a 500 ---------------------------------------------
def _raw(served: Served, content: Any, *, method: str = "POST", path: str = "churn:predict") -> tuple[int, Any]:
    response = httpx.request(method, f"{served.rest}/v1/models/{path}", content=content, timeout=60)
    return response.status_code, response.json()


def _nested(depth: int) -> bytes:
    return b'{"instances": [{"tenure": ' + b"[" * depth + b"1" + b"]" * depth + b', "plan": "a", "charges": 1}]}'


def test_a_body_over_the_limit_is_413(served: Served) -> None:
    assert _raw(served, b" " * (LIMIT + 1)) == (
        413,
        {
            "error": "The request body (1,000,001 bytes) is over this server's limit of 1,000,000 bytes; "
            "send fewer rows per request."
        },
    )


def test_a_chunked_body_over_the_limit_is_413_before_it_is_read_whole(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 100_000

    code, body = _raw(served, chunks())
    assert (code, body["error"].split(" (")[0]) == (413, "The request body")


@pytest.mark.parametrize("depth", [40, 100_000])
def test_json_nested_deep_is_400(served: Served, depth: int) -> None:
    assert _raw(served, _nested(depth)) == (
        400,
        {
            "error": "The request body is nested deeper than 32 levels; "
            "send rows (instances) or columns (inputs) of plain values."
        },
    )


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (
            factories.CHURN_ROW | {"tenure": "many"},
            "Input 'tenure' takes float32 values, but could not convert string to float: 'many'.",
        ),
        (
            factories.CHURN_ROW | {"tenure": 10**400},
            "Input 'tenure' takes float32 values, but int too large to convert to float.",
        ),
        (
            factories.CHURN_ROW | {"tenure": {"a": 1}},
            "Input 'tenure' takes float32 values, but float() argument must be a string or a real number, not 'dict'.",
        ),
        (
            factories.CHURN_ROW | {"plan": {"b64": "***"}},
            "Input 'plan' has a 'b64' value that is not valid base64 (Only base64 data is allowed).",
        ),
        (factories.CHURN_ROW | {"plan": 3}, "Input 'plan' takes strings, but got 3; send text in quotes."),
        (
            factories.CHURN_ROW | {"tenure": [1, 2]},
            "Input 'tenure' has shape [1, 2] but the model takes [-1, 1] (-1 = any size).",
        ),
    ],
)
def test_a_value_of_the_wrong_type_or_shape_is_400_naming_the_input(served: Served, row: dict, error: str) -> None:
    assert _raw(served, json.dumps({"instances": [row]}).encode()) == (400, {"error": error})


def test_a_signature_name_that_is_not_text_is_400(served: Served) -> None:
    assert _raw(served, b'{"signature_name": ["x"], "instances": []}') == (
        400,
        {"error": "'signature_name' must be a string such as \"serving_default\", but got ['x']."},
    )


@pytest.mark.parametrize(
    ("content", "method", "path"),
    [(b"\xff\xfe{", "POST", "churn:predict"), (b"{}", "PUT", "churn:predict"), (b"{}", "POST", "churn:explode")],
)
def test_malformed_requests_are_400_with_an_error_body(served: Served, content: bytes, method: str, path: str) -> None:
    code, body = _raw(served, content, method=method, path=path)
    assert (code, sorted(body)) == (400, ["error"])


def test_an_unknown_path_is_404_with_an_error_body(served: Served) -> None:
    response = httpx.get(f"{served.rest}/v2/anything", timeout=30)
    assert (response.status_code, response.json()) == (404, {"error": "Not Found"})


# -- unloading ---------------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_versions_neither_latest_nor_staged_nor_recently_asked_for_are_unloaded(
    churn_run: dict[str, Any], tmp_path: Path
) -> None:
    """TensorFlow Serving keeps the latest loaded: were it unloaded, the version before it would answer for the
    latest while it loaded again."""
    from backend.serving.repository import ModelRepository

    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    factories.add_version(home, churn_run["run_id"])
    factories.add_version(home, churn_run["run_id"], promote=False)  # version 3, the latest
    labels = registry.StageLabels(lambda: open_store(f"sqlite:///{home / 'modeldeck.db'}"), ttl_seconds=0)
    clock = Clock()
    repository = ModelRepository(home, labels=labels, unload_after=60, clock=clock)
    try:
        for version in (1, 2, 3):
            repository.signature(repository.resolve("churn", version))
        clock.now = 30
        kept_while_recent = repository.unload_idle()
        clock.now = 61
        unloaded = repository.unload_idle()
        loaded_after = repository.loaded()
        latest = repository.resolve("churn")
    finally:
        labels.close()
    assert (kept_while_recent, unloaded, loaded_after) == (
        [],
        [("churn", 2)],
        {"churn": [3, 1]},  # the latest, and version 1 that production holds
    )
    assert latest.version == 3


def test_the_server_warms_each_models_latest_version_once_and_every_staged_one(
    churn_run: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first answer a stakeholder sees must be as quick as the rest: versions are loaded and their signatures
    run once when found, not on the first request, and they stay: neither the latest nor a staged one is unloaded
    for idleness."""
    from backend.serving.repository import ModelRepository

    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    factories.add_version(home, churn_run["run_id"])  # production holds version 1; version 2 is the latest
    labels = registry.StageLabels(lambda: open_store(f"sqlite:///{home / 'modeldeck.db'}"), ttl_seconds=0)
    clock = Clock()
    repository = ModelRepository(home, labels=labels, unload_after=60, clock=clock, rescan_seconds=0)
    caplog.set_level("INFO", logger="backend.serving.repository")
    try:
        first = repository.warm_up()
        loaded = repository.loaded()
        again = repository.warm_up()
        clock.now = 61
        unloaded = repository.unload_idle()
        after_unloading = repository.warm_up()
    finally:
        labels.close()
    assert (first, loaded, again) == ([("churn", 1), ("churn", 2)], {"churn": [2, 1]}, [])
    assert (unloaded, after_unloading, repository.loaded()) == ([], [], {"churn": [2, 1]})
    loads = [r.getMessage().split(" loaded")[0] for r in caplog.records if " loaded in " in r.getMessage()]
    assert loads == ["model=churn version=1", "model=churn version=2"], "each loaded once, by the warm-up"


def test_a_new_latest_version_answers_once_loaded_and_the_one_before_answers_meanwhile(
    churn_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorFlow Serving's availability-preserving policy: no request for the latest waits for a new version's
    load (a third of a second for the churn network, seconds for a text model); its status says LOADING meanwhile."""
    import threading

    import tensorflow as tf
    from tensorflow_serving.apis import get_model_status_pb2

    from backend.serving import grpc_service, rest
    from backend.serving.repository import ModelRepository

    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    read, release = tf.saved_model.load, threading.Event()

    def slow_for_version_2(path: str, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name == "2":
            assert release.wait(60), "the test never let version 2 load"
        return read(path, *args, **kwargs)

    monkeypatch.setattr(tf.saved_model, "load", slow_for_version_2)
    repository = ModelRepository(home, rescan_seconds=0)
    repository.signature(repository.resolve("churn"))  # version 1 in memory, as a running server has it
    factories.add_version(home, churn_run["run_id"])
    meanwhile = [repository.resolve("churn").version, repository.loading("churn")]
    states = {
        s["version"]: s["state"] for s in rest._rest_models(repository, "GET", "churn", b"")["model_version_status"]
    }
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "churn"
    grpc_states = {s.version: s.state for s in grpc_service.grpc_status(repository, request).model_version_status}
    release.set()
    deadline = time.monotonic() + 60
    while repository.loading("churn") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert meanwhile == [1, [2]]
    assert states == {"2": "LOADING", "1": "AVAILABLE"}
    loading, available = (
        get_model_status_pb2.ModelVersionStatus.LOADING,
        get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    )
    assert grpc_states == {2: loading, 1: available}
    assert (repository.resolve("churn").version, repository.loaded()) == (2, {"churn": [2, 1]})
    first = ModelRepository(home, rescan_seconds=0)  # nothing in memory: the first request loads the newest
    assert (first.resolve("churn").version, first.loading("churn")) == (2, [])


# -- the dashboard -----------------------------------------------------------------------------------------------------
def _page(page: str) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _button(at: Any, label: str) -> Any:
    (found,) = [b for b in at.button if b.label == label]
    return found


def _no_rollback(at: Any) -> list[str]:
    return [c.value for c in at.main.caption if "roll back" in c.value]


def test_models_page_promotes_and_rolls_back_with_who_and_why(store) -> None:
    _version(store), _version(store)
    at = _page("views/models.py")
    before = ([b.label for b in at.button], _no_rollback(at))
    assert at.selectbox(key="models_model").options == ["churn (Classification, data churn; 2 versions)"]
    at.text_input(key="models_who").input("ana")
    at.text_input(key="models_why").input("better recall")
    at.selectbox(key="models_version_churn").select(1)
    _button(at, "Promote").click().run()
    at.selectbox(key="models_version_churn").select(2)
    _button(at, "Promote").click().run()
    after_promotions = [(m.label, m.value) for m in at.metric]
    rollback = _button(at, "Roll back production")
    assert (before, rollback.help, _no_rollback(at)) == (
        (
            ["Promote"],
            ["production: no earlier version to roll back to.", "staging: no earlier version to roll back to."],
        ),
        "production goes back to version 1, which held it before version 2.",
        ["staging: no earlier version to roll back to."],
    )
    rollback.click().run()

    assert not at.exception
    history = at.dataframe[-1].value
    assert (after_promotions, [(m.label, m.value) for m in at.metric], [s.value for s in at.success]) == (
        [("production", "version 2"), ("staging", "no version")],
        [("production", "version 1"), ("staging", "no version")],
        ["production of churn is back on version 1."],
    )
    assert history[["stage", "version", "what", "who", "why"]].values.tolist() == [
        ["production", 1, "rolled back", "ana", "better recall"],
        ["production", 2, "promoted", "ana", "better recall"],
        ["production", 1, "promoted", "ana", "better recall"],
    ]


def test_models_page_heads_the_metric_columns_in_words(store) -> None:
    _version(store)
    at = _page("views/models.py")
    assert at.selectbox(key="models_model").options == ["churn (Classification, data churn; 1 version)"]
    assert list(at.dataframe[0].value.columns) == ["version", "run", "stages", "Accuracy", "created"]


def test_models_page_without_models_says_so(home: Path) -> None:
    at = _page("views/models.py")
    assert [i.value for i in at.info] == ["No model has a version yet. Train one first."]


def test_playground_calls_the_production_version_and_says_so(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(served.home))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)
    monkeypatch.setenv("MODELDECK_SERVING_URL", served.rest)
    at = _page("views/playground.py")
    _button(at, "Predict").click().run()

    assert not at.exception
    assert ([e.value for e in at.error], at.main.caption[-1].value) == (
        [],
        "Served by model churn, production (version 1), over TensorFlow Serving's REST API.",
    )
