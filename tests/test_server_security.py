"""The inference server, locked down: API keys over REST and gRPC, limits on rows and time, and a fuzz run of a few
thousand malformed requests that must get 4xx answers, never a 5xx, from a server that keeps serving.

TensorFlow is imported inside fixtures and tests only, so collecting this file stays cheap.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend import serving
from backend.errors import BadInput, NotFound, ServingUnavailable
from backend.serving import keys
from db import open_store
from tests import factories

MAX_ROWS = 50


@dataclass(frozen=True)
class Guarded:
    home: Path
    rest: str
    grpc: str
    url: str  # the database
    key: str  # a live key
    spare: str  # a second live key, name "spare": the revocation test revokes it


@pytest.fixture(scope="module")
def guarded(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    """A server over a copy of the churn home that asks every request for a key, and takes 50 rows at most."""
    home = tmp_path_factory.mktemp("guarded") / "home"
    shutil.copytree(churn_run["home"], home)
    url = f"sqlite:///{home / 'modeldeck.db'}"
    store = open_store(url)
    try:
        (_, key), (_, spare) = keys.create(store, "crm", created_by="ana"), keys.create(store, "spare")
    finally:
        store.close()
    rest_port, grpc_port = factories.free_ports(2)
    log = tmp_path_factory.mktemp("guarded-serving") / "server.log"
    command = factories.serve_command(home, rest_port, grpc_port) + ["--require-keys", "--max-rows", str(MAX_ROWS)]
    process = factories.start_process(command, log=log)
    rest = f"http://127.0.0.1:{rest_port}"
    try:
        factories.wait_until_up(process, [f"{rest}/healthz"], log=log, timeout_s=factories.STARTUP_S)
        yield Guarded(home, rest, f"127.0.0.1:{grpc_port}", url, key, spare)
        assert process.poll() is None, "the server stopped during the tests"
    finally:
        factories.stop_process(process)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _predict(guarded: Guarded, rows: list[dict[str, Any]], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{guarded.rest}/v1/models/churn:predict", json={"instances": rows}, headers=headers, timeout=60)


# -- keys: made, listed, revoked -------------------------------------------------------------------------------
def test_a_key_is_shown_once_and_kept_only_as_a_digest(store: Any) -> None:
    made, key = keys.create(store, "crm-integration", created_by="ana")
    assert key.startswith("mdk_") and len(key) == 47 and made.prefix == key[:8]
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("select * from api_keys").mappings().one()
    assert key not in json.dumps(dict(stored), default=str) and stored["digest"] == keys.digest(key)
    assert [(k.name, k.created_by, k.revoked_at) for k in keys.listing(store)] == [("crm-integration", "ana", None)]


def test_key_names_are_checked_and_never_reused(store: Any) -> None:
    keys.create(store, "crm")
    keys.revoke(store, "crm")
    for name, error in (
        ("crm", "error.keys.name_taken"),  # revoked keys keep their names: the list stays a true history
        ("", "error.keys.bad_name"),
        ("x" * 61, "error.keys.bad_name"),
        ("a/b", "error.keys.bad_name"),
    ):
        with pytest.raises(BadInput) as caught:
            keys.create(store, name)
        assert caught.value.key == error
    with pytest.raises(NotFound, match=r"^No key is named “nope”\. List the keys with `modeldeck keys list`\.$"):
        keys.revoke(store, "nope")


@pytest.mark.parametrize(
    ("host", "asked", "required"),
    [
        ("127.0.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.168.1.20", None, True),
        ("127.0.0.1", True, True),
        ("0.0.0.0", False, False),
    ],
)
def test_a_server_asks_for_keys_beyond_loopback_unless_told(host: str, asked: bool | None, required: bool) -> None:
    assert keys.required(host, asked) is required


def test_the_cli_makes_lists_and_revokes_keys(home: Path) -> None:
    made = factories.cli_json(home, "keys", "create", "crm", "--by", "ana")
    listed = factories.cli_json(home, "keys", "list")
    revoked = factories.cli_json(home, "keys", "revoke", "crm")
    again = factories.cli(home, "keys", "create", "crm")
    assert made["key"].startswith(made["prefix"]) and made["name"] == "crm"
    assert [(k["name"], k["prefix"], k["created_by"], k["revoked_at"]) for k in listed["keys"]] == [
        ("crm", made["prefix"], "ana", None)
    ]
    assert made["key"] not in json.dumps(listed) and revoked["name"] == "crm"
    assert (again.returncode, again.stderr.strip()) == (
        2,
        "error: A key named “crm” exists already (a revoked key keeps its name): choose another name.",
    )


# -- REST and gRPC ask for a key -------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mdk_not-a-key"}, {"Authorization": "Basic abc"}])
def test_rest_without_a_live_key_is_401_in_tf_servings_words(guarded: Guarded, headers: dict[str, str]) -> None:
    for response in (
        _predict(guarded, [factories.CHURN_ROW], headers),
        httpx.get(f"{guarded.rest}/v1/models", headers=headers, timeout=30),
        httpx.get(f"{guarded.rest}/v1/models/churn/metadata", headers=headers, timeout=30),
    ):
        assert (response.status_code, response.headers.get("www-authenticate"), response.json()) == (
            401,
            "Bearer",
            {
                "error": "This server asks for an API key: send `Authorization: Bearer KEY` with a key from "
                "`modeldeck keys create NAME`."
            },
        )


def test_rest_with_a_live_key_answers_and_health_needs_none(guarded: Guarded) -> None:
    answer = _predict(guarded, [factories.CHURN_ROW], _auth(guarded.key))
    lower_case = _predict(guarded, [factories.CHURN_ROW], {"authorization": f"bearer {guarded.key}"})
    assert (answer.status_code, lower_case.status_code) == (200, 200)
    assert set(answer.json()["predictions"][0]) >= {"label", "probabilities"}
    assert httpx.get(f"{guarded.rest}/healthz", timeout=30).status_code == 200  # a load balancer's probe


def test_grpc_without_a_key_is_unauthenticated_and_with_one_answers(guarded: Guarded) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "churn"
    for name, value, dtype in (("tenure", [[12.0]], tf.float32), ("plan", [["basic"]], tf.string)):
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    request.inputs["charges"].CopyFrom(tf.make_tensor_proto([[70.5]], dtype=tf.float32))
    with grpc.insecure_channel(guarded.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=30)
        with pytest.raises(grpc.RpcError) as wrong:
            stub.Predict(request, timeout=30, metadata=[("authorization", "Bearer mdk_wrong")])
        answer = stub.Predict(request, timeout=60, metadata=[("authorization", f"Bearer {guarded.key}")])
    assert (refused.value.code(), wrong.value.code()) == (grpc.StatusCode.UNAUTHENTICATED,) * 2
    assert "asks for an API key" in (refused.value.details() or "")
    assert set(answer.outputs) >= {"label", "probabilities"}


def test_a_revoked_key_is_refused_without_a_restart(guarded: Guarded) -> None:
    """The server reads the keys again at most once a second (`keys`); no time is asserted here, only that the
    revoked key ends refused while the server runs on and the other key still works."""
    assert _predict(guarded, [factories.CHURN_ROW], _auth(guarded.spare)).status_code == 200
    store = open_store(guarded.url)
    try:
        keys.revoke(store, "spare")
    finally:
        store.close()
    factories.wait_for(
        lambda: _predict(guarded, [factories.CHURN_ROW], _auth(guarded.spare)).status_code == 401,
        60,
        "the revoked key to be refused",
    )
    assert _predict(guarded, [factories.CHURN_ROW], _auth(guarded.key)).status_code == 200, "the other key still works"


def test_the_client_sends_modeldecks_key_and_says_what_to_do_without_one(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELDECK_SERVING_KEY", raising=False)
    with pytest.raises(ServingUnavailable) as refused:
        serving.predict([factories.CHURN_ROW], model="churn", base_url=guarded.rest)
    monkeypatch.setenv("MODELDECK_SERVING_KEY", guarded.key)
    predictions, _ = serving.predict([factories.CHURN_ROW], model="churn", base_url=guarded.rest)
    assert str(refused.value).startswith(f"The inference server at {guarded.rest} refused the API key (")
    assert str(refused.value).endswith("set MODELDECK_SERVING_KEY to a live key from `modeldeck keys create NAME`.")
    assert predictions[0]["label"] in ("yes", "no")


# -- limits ----------------------------------------------------------------------------------------------------
def test_more_rows_than_the_limit_is_400_and_the_limit_itself_answers(guarded: Guarded) -> None:
    too_many = _predict(guarded, [factories.CHURN_ROW] * (MAX_ROWS + 1), _auth(guarded.key))
    at_limit = _predict(guarded, [factories.CHURN_ROW] * MAX_ROWS, _auth(guarded.key))
    assert (too_many.status_code, too_many.json()) == (
        400,
        {"error": "The request has 51 rows; this server takes at most 50 per request. Send them in several requests."},
    )
    assert (at_limit.status_code, len(at_limit.json()["predictions"])) == (200, MAX_ROWS)


def test_a_request_over_the_time_limit_is_408_and_the_server_answers_the_next() -> None:
    """The time limit, on the app itself: a model that does not answer until the test lets it, a limit of 0.2 s.
    The 408 comes while the model still works (without the limit, the answer would be its 200 once let go)."""
    from starlette.testclient import TestClient

    from backend.serving.rest import create_app

    let_go = threading.Event()

    class SlowRepository:
        labels = None

        def models(self) -> dict[str, list[int]]:
            let_go.wait(60)
            return {}

        def loaded(self) -> dict[str, list[int]]:
            return {}

    with TestClient(create_app(SlowRepository(), request_timeout=0.2)) as client:  # type: ignore[arg-type]
        slow = client.get("/v1/models")
        health = client.get("/healthz")  # while the slow one still waits
        let_go.set()
    limit = "The model did not answer within 0.2 seconds, this server's limit per request"
    assert (slow.status_code, slow.json()) == (408, {"error": f"{limit}; send fewer rows per request."})
    assert health.status_code == 200


# -- fuzz: thousands of malformed requests, not one 5xx --------------------------------------------------------
def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: wrong types, huge and tiny numbers, long and odd strings, nesting."""
    kind = rng.randrange(10 if depth < 6 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**63, -(2**70), 10**400 // 10**300, 1e308, -1e-308, 3.5])
    if kind == 2:
        return "".join(rng.choice('ab\x00é中\n"\\{}[]') for _ in range(rng.randrange(0, 40)))
    if kind == 3:
        return {"b64": rng.choice(["***", "", "QUJD", base64.b64encode(rng.randbytes(30)).decode(), 7])}
    if kind == 4:
        return "x" * rng.randrange(0, 5000)
    if kind == 5:
        return rng.uniform(-1e9, 1e9)
    if kind in (6, 7):
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {rng.choice(["tenure", "plan", "charges", "x", ""]): _junk(rng, depth + 1) for _ in range(rng.randrange(4))}


def _fuzz_case(rng: random.Random, key: str) -> tuple[str, str, bytes | None, dict[str, str]]:
    """One request: method, path, body and headers, most of them wrong in one way or several."""
    headers = _auth(key) if rng.random() < 0.9 else rng.choice([{}, {"Authorization": "Bearer " + "z" * 300}])
    path = rng.choice(
        [
            "churn:predict",
            "churn/versions/1:predict",
            "churn/versions/99999999999999999999:predict",
            "churn/labels/production:predict",
            "churn/labels/%00:predict",
            "nope:predict",
            "churn:explode",
            "churn/metadata",
            "churn",
            "",
            "churn/versions/-1",
            "../../etc/passwd",
        ]
    )
    method = rng.choice(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"])
    shape = rng.randrange(9)
    if shape == 0:
        body: Any = {"instances": [_junk(rng) for _ in range(rng.randrange(1, 4))]}
    elif shape == 1:
        body = {"instances": [factories.CHURN_ROW | {rng.choice(list(factories.CHURN_ROW)): _junk(rng)}]}
    elif shape == 2:
        body = {"inputs": {name: _junk(rng) for name in rng.sample([*factories.CHURN_ROW, "x"], rng.randrange(5))}}
    elif shape == 3:
        body = {"signature_name": _junk(rng), "instances": [factories.CHURN_ROW]}
    elif shape == 4:
        body = {"instances": [factories.CHURN_ROW], "inputs": {}}
    elif shape == 5:
        body = _junk(rng)
    elif shape == 6:
        depth = rng.choice([31, 33, 500, 5000])
        return method, path, b'{"instances": ' + b"[" * depth + b"]" * depth + b"}", headers
    elif shape == 7:
        return method, path, rng.randbytes(rng.randrange(0, 300)), headers
    else:
        body = {"instances": [factories.CHURN_ROW] * rng.choice([0, MAX_ROWS + 1])}
    return method, path, json.dumps(body, allow_nan=True).encode(), headers


def test_thousands_of_malformed_rest_requests_get_4xx_never_5xx(guarded: Guarded) -> None:
    rng = random.Random(20261204)
    codes: dict[int, int] = {}
    no_error_body = []
    with httpx.Client(base_url=f"{guarded.rest}/v1/models/", timeout=60) as client:
        for _ in range(3000):
            method, path, body, headers = _fuzz_case(rng, guarded.key)
            response = client.request(method, path, content=body, headers=headers)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            if response.status_code >= 400 and "error" not in response.json():
                no_error_body.append((method, path, response.text[:200]))
    print(f"\nfuzz, REST: 3,000 requests, answers by status: {dict(sorted(codes.items()))}")
    assert [code for code in codes if code >= 500] == [] and no_error_body == []
    assert {400, 401, 404} <= set(codes) and codes.get(200, 0) > 0, "the cases reach every refusal and some answer"
    assert _predict(guarded, [factories.CHURN_ROW], _auth(guarded.key)).status_code == 200, "still serving"


def test_hundreds_of_malformed_grpc_requests_get_client_errors_never_internal(guarded: Guarded) -> None:
    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    rng = random.Random(4)
    values = [
        np.array([[1.0]], np.float32),
        np.array([["x"]]),
        np.zeros((2, 3, 4), np.float64),
        np.array([[True]]),
        np.array([], np.float32),
        np.array([[2**40]], np.int64),
        np.zeros((MAX_ROWS + 1, 1), np.float32),
    ]
    codes: dict[str, int] = {}
    with grpc.insecure_channel(guarded.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(400):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = rng.choice(["churn", "churn", "nope", ""])
            request.model_spec.signature_name = rng.choice(["", "serving_default", "nope"])
            if rng.random() < 0.3:
                request.model_spec.version.value = rng.choice([1, 2, 10**9])
            for name in rng.sample(["tenure", "plan", "charges", "x"], rng.randrange(5)):
                request.inputs[name].CopyFrom(tf.make_tensor_proto(rng.choice(values)))
            if rng.random() < 0.2:
                request.output_filter.append(rng.choice(["label", "nope"]))
            try:
                stub.Predict(request, timeout=60, metadata=[("authorization", f"Bearer {guarded.key}")])
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            codes[code] = codes.get(code, 0) + 1
    print(f"\nfuzz, gRPC: 400 requests, answers by code: {dict(sorted(codes.items()))}")
    assert not {"INTERNAL", "UNKNOWN", "UNAVAILABLE"} & set(codes), codes
    assert "INVALID_ARGUMENT" in codes and "NOT_FOUND" in codes


def test_the_ui_beyond_loopback_gives_its_dashboard_a_key_of_its_own_and_revokes_it_at_the_end(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend import ui

    monkeypatch.delenv("MODELDECK_SERVING_KEY", raising=False)
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    with ui._dashboard_key("127.0.0.1") as on_loopback:
        pass
    with ui._dashboard_key("0.0.0.0") as key:
        (live,) = keys.listing(store)
        allowed_while_running = keys.KeyCheck(lambda: store, ttl_seconds=0).allows(f"Bearer {key}")
    (after,) = keys.listing(store)
    assert on_loopback is None and key is not None and allowed_while_running
    assert (live.created_by, live.revoked_at is None, after.revoked_at is not None) == ("modeldeck ui", True, True)


def test_the_ui_scores_files_on_a_loopback_server_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's 8,192-row batches and one-row requests on one server share its interpreter lock: the dashboard
    scores on a second server, on loopback even when the first listens beyond it; port 0 keeps one server."""
    from backend import config, ui

    lines = ui.commands(home=Path("h"), port=1, serve_port=2, grpc_port=3, host="0.0.0.0", scoring_port=4)
    alone = ui.commands(home=Path("h"), port=1, serve_port=2, grpc_port=3, host="0.0.0.0")
    assert (len(lines), len(alone)) == (len(ui.ROLES), 3)
    assert [ui.role_of(line) for line in lines] == list(ui.ROLES)  # as tests and the load bench find them
    online, scoring = lines[ui.ROLES.index("inference server")], lines[ui.ROLES.index("scoring server")]
    assert online[online.index("--host") + 1] == "0.0.0.0"
    assert scoring[scoring.index("serve") :] == ["serve", "--port", "4", "--grpc-port", "0", "--host", "127.0.0.1"]
    monkeypatch.setenv("MODELDECK_SERVING_URL", "http://models:8502")
    monkeypatch.delenv("MODELDECK_SCORING_URL", raising=False)
    assert config.scoring_url() == "http://models:8502"  # no scoring server: the inference server scores
    monkeypatch.setenv("MODELDECK_SCORING_URL", "http://127.0.0.1:8504/")
    assert config.scoring_url() == "http://127.0.0.1:8504"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="a process chooses its CPUs on Linux")
def test_cpus_kept_for_the_inference_server_are_read_as_taskset_writes_them_and_a_bad_list_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`modeldeck ui` puts the server on them and the background work elsewhere (the kill -9 test in test_faults
    sees that)."""
    from backend import ui

    assert (ui.cpu_text({0, 2, 3, 4, 7}), ui._cpu_list(" 0, 2-4,7")) == ("0,2-4,7", {0, 2, 3, 4, 7})
    assert [ui._cpu_list(bad) for bad in ("", "two", "3-1", "1-", "-1", "1,,2", "1.5")] == [None] * 7
    monkeypatch.delenv("MODELDECK_SERVING_CPUS", raising=False)
    assert ui.serving_cpus() is None
    everywhere = os.sched_getaffinity(0)
    if len(everywhere) > 1:
        monkeypatch.setenv("MODELDECK_SERVING_CPUS", str(max(everywhere)))
        assert ui.serving_cpus() == {max(everywhere)}
    allowed = ui.cpu_text(everywhere)
    said = {
        value: factories.cli(tmp_path, "ui", env={"MODELDECK_SERVING_CPUS": value}).stderr.strip()
        for value in ("two", "4096", allowed)
    }
    assert said == {
        "two": "error: MODELDECK_SERVING_CPUS='two' is not a list of CPUs. Write the inference server's CPUs as "
        "taskset takes them (3, 2-3 or 0,2), or leave it unset.",
        "4096": f"error: MODELDECK_SERVING_CPUS='4096' names a CPU this process may not use (it may use {allowed}). "
        "Keep CPUs from those for the inference server.",
        allowed: f"error: MODELDECK_SERVING_CPUS='{allowed}' leaves no CPU for the trainings and the scoring server "
        f"({allowed} here). Keep at least one CPU out of it.",
    }


def test_keys_that_cannot_be_read_again_are_those_read_before_never_everyone(store: Any) -> None:
    _, key = keys.create(store, "crm")
    reads = {"n": 0}

    class Flaky:
        def live_key_digests(self) -> set[str]:
            reads["n"] += 1
            if reads["n"] > 1:
                raise RuntimeError("database is locked")
            return store.live_key_digests()

    check = keys.KeyCheck(lambda: Flaky(), ttl_seconds=0)  # type: ignore[arg-type, return-value]
    assert check.allows(f"Bearer {key}") and check.allows(f"Bearer {key}"), "the keys read first still count"
    assert not check.allows("Bearer mdk_someone-else") and reads["n"] == 3
