"""Monitoring: the inference server logs its requests (sampled, bounded, never in a request's way), and the figures
over that log (traffic, latency, predictions, input drift as PSI) reach the Monitoring page and `modeldeck monitor`.

TensorFlow runs in the server process only, so collecting this file stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from backend import serving
from backend.errors import NotFound
from backend.serving.monitoring import EPSILON, level
from backend.serving.requestlog import SAMPLE_ROWS, RequestLog
from db import open_store
from tests import factories

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SHIFTED_CHARGES = 500.0  # training charges are about 60 ± 20: every logged value lands in the top bin
GOOD_REQUESTS = 40
LOG_WAIT_S = 60.0


# -- population stability index ------------------------------------------------------------------------------------
def test_psi_of_a_planted_numeric_shift_equals_the_hand_computation() -> None:
    training = np.arange(1000)  # ten quantile bins of 100 values each: [-inf, 99.9), [99.9, 199.8), ...
    shares = [0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    logged = np.repeat(np.arange(10) * 100 + 50, [int(s * 100) for s in shares])  # each bin's middle

    psi, bins = serving.numeric_psi(training, logged)

    # (a - e) ln(a / e) per bin: 0.1 ln 2 twice, 0 four times, -0.05 ln 0.5 four times
    assert psi == pytest.approx(0.4 * math.log(2))
    assert [(b.expected, b.actual) for b in bins] == [(pytest.approx(0.1), pytest.approx(s)) for s in shares]
    assert (bins[0].label, bins[-1].label) == ("[-∞, 99.9)", "[899.1, ∞)")


def test_psi_of_categories_pools_the_rest_and_counts_an_empty_bin_as_epsilon() -> None:
    psi, bins = serving.categorical_psi(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["c"] * 20, max_categories=2)

    expected = (0.8 - 0.5) * math.log(0.8 / 0.5)  # a
    expected += (EPSILON - 0.5) * math.log(EPSILON / 0.5)  # b: never logged
    expected += (0.2 - EPSILON) * math.log(0.2 / EPSILON)  # the rest (c): never in the training data
    assert psi == pytest.approx(expected)
    assert [(b.label, b.expected, b.actual) for b in bins] == [("a", 0.5, 0.8), ("b", 0.5, 0.0), (None, 0.0, 0.2)]


def test_psi_is_near_zero_on_data_drawn_like_the_training_data() -> None:
    training, later = np.random.default_rng(0), np.random.default_rng(1)
    numeric, _ = serving.numeric_psi(training.normal(60, 20, 5000), later.normal(60, 20, 2000))
    categorical, _ = serving.categorical_psi(
        training.choice(["basic", "plus", "premium"], 5000), later.choice(["basic", "plus", "premium"], 2000)
    )
    assert (numeric < 0.02, categorical < 0.02) == (True, True)


def test_psi_is_read_the_usual_way() -> None:
    assert [level(psi) for psi in (0.0, 0.099, 0.1, 0.25, 0.2501, 3.0)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "drift",
        "drift",
    ]


# -- the request log, in this process -----------------------------------------------------------------------------
def _record(log: RequestLog, model: str = "churn", *, latency_ms: float = 1.0, rows: int = 1, **inputs: Any) -> None:
    columns = inputs or {"tenure": [12] * rows, "plan": ["basic"] * rows}
    outputs = {"label": np.array([b"yes"] * rows, dtype=object), "probabilities": np.full((rows, 2), 0.5)}
    log.record(
        model=model, version=1, signature="serving_default", latency_ms=latency_ms, inputs=columns, outputs=outputs
    )


@pytest.fixture
def request_log(store: Any) -> RequestLog:
    """A request log into the test's store whose clock stands still: every request falls in one second."""
    return RequestLog(lambda: store, per_second=5, keep_one_in=3, clock=lambda: 100.0)


def test_sampling_keeps_every_request_up_to_the_rate_then_one_in_k_weighted_to_count_them_all(
    request_log: RequestLog, store: Any
) -> None:
    for n in range(20):
        _record(request_log, latency_ms=n + 1)
    assert request_log.flush() == 10

    logged = store.logged_requests("churn")
    # The first 5 in full, then the 8th, 11th, 14th, 17th and 20th, each standing for 3.
    assert [(r.latency_ms, r.weight) for r in logged] == [(n, 1) for n in (1, 2, 3, 4, 5)] + [
        (n, 3) for n in (8, 11, 14, 17, 20)
    ]
    assert sum(r.weight for r in logged) == 20


def test_a_request_is_logged_with_its_first_rows_its_size_and_its_outputs(request_log: RequestLog, store: Any) -> None:
    long_text = "x" * 1000
    _record(request_log, rows=100, tenure=[[float(i)] for i in range(100)], note=[long_text] * 100)
    request_log.flush()

    (logged,) = store.logged_requests("churn")
    assert (logged.rows, logged.status, len(logged.inputs), len(logged.outputs)) == (
        100,
        "ok",
        SAMPLE_ROWS,
        SAMPLE_ROWS,
    )
    assert logged.inputs[3] == {"tenure": 3.0, "note": "x" * 200 + "…"}
    assert logged.outputs[0] == {"label": "yes", "probabilities": [0.5, 0.5]}


def test_the_log_keeps_only_each_models_newest_requests(store: Any) -> None:
    request_log = RequestLog(lambda: store, keep_per_model=3)
    for n in range(5):
        _record(request_log, "churn", latency_ms=n)
    for n in range(2):
        _record(request_log, "prices", latency_ms=n)
    request_log.flush()
    _record(request_log, "churn", latency_ms=5)
    request_log.flush()

    assert [r.latency_ms for r in store.logged_requests("churn")] == [3, 4, 5]
    assert [r.latency_ms for r in store.logged_requests("prices")] == [0, 1]


def test_a_full_queue_drops_requests_and_the_next_write_says_how_many(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    request_log = RequestLog(lambda: store, max_queue=2)
    for _ in range(5):
        _record(request_log)
    with caplog.at_level(logging.WARNING, logger="backend.serving.requestlog"):
        written = request_log.flush()

    assert (written, request_log.dropped, len(store.logged_requests("churn"))) == (2, 3, 2)
    assert [r.getMessage() for r in caplog.records] == ["3 requests were not logged: more than 2 waited for a write"]


class Unreadable(list):
    def __len__(self) -> int:
        raise RuntimeError("no length")


def test_a_request_log_that_cannot_write_never_fails_a_request(caplog: pytest.LogCaptureFixture) -> None:
    def broken_store() -> Any:
        raise OSError("disk full")

    request_log = RequestLog(broken_store)
    with caplog.at_level(logging.ERROR, logger="backend.serving.requestlog"):
        _record(request_log)
        _record(request_log, tenure=object(), plan=[[1, [2]], "ragged"])  # odd values: still queued
        with request_log.call("churn", 1, "serving_default", started=time.perf_counter()) as call:
            call.inputs = {"tenure": Unreadable()}  # values nobody can read: logged without them
            call.outputs = {"value": np.zeros(1)}
        written = request_log.flush()

    assert (written, request_log.dropped) == (0, 3)
    assert [r.getMessage() for r in caplog.records] == [
        "could not read a logged request's values",
        "could not write 3 requests to the request log; they are dropped",
    ]


def test_a_call_left_by_an_exception_is_logged_as_an_error_and_the_exception_goes_on(
    request_log: RequestLog, store: Any
) -> None:
    with pytest.raises(ValueError, match="bad row"):
        with request_log.call("churn", 1, "serving_default", started=time.perf_counter()) as call:
            call.inputs = {"tenure": ["x"]}
            raise ValueError("bad row")
    request_log.flush()

    (logged,) = store.logged_requests("churn")
    assert (logged.status, logged.inputs, logged.outputs, logged.latency_ms > 0) == (
        "error",
        [{"tenure": "x"}],
        [],
        True,
    )


# -- a real server over a trained churn model ---------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    home: Path
    url: str
    sent: list[dict[str, Any]]  # the rows sent, one request each, in order (one more request failed)


def _wait_for_log(home: Path, count: int) -> None:
    """Until `count` requests are in the log (the server writes every second), or fail saying how many are."""
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        deadline = time.monotonic() + LOG_WAIT_S
        while len(store.logged_requests("churn")) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(store.logged_requests("churn")) == count
    finally:
        store.close()


@pytest.fixture(scope="module")
def served(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A copy of the churn home whose server answered 40 one-row requests, their charges shifted, and a bad one."""
    home = tmp_path_factory.mktemp("monitored") / "home"
    shutil.copytree(churn_run["home"], home)
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    frame = factories.churn_frame(rows=GOOD_REQUESTS, seed=7).drop(columns="churn")
    frame["charges"] = SHIFTED_CHARGES
    sent = json.loads(frame.to_json(orient="records"))
    command = factories.serve_command(home, rest, grpc)
    with factories.running(command, log=home.parent / "server.log", urls=[f"{url}/healthz"]):
        predict = f"{url}/v1/models/churn/versions/1:predict"
        for row in sent:
            assert httpx.post(predict, json={"instances": [row]}, timeout=30).status_code == 200
        bad = {"instances": [{"tenure": "many", "plan": "basic", "charges": 1.0}]}
        assert httpx.post(predict, json=bad, timeout=30).status_code == 400
        _wait_for_log(home, GOOD_REQUESTS + 1)
    yield Served(home, url, sent)


@pytest.fixture
def monitored(served: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The served home as MODELDECK_HOME, and its store."""
    monkeypatch.setenv("MODELDECK_HOME", str(served.home))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)
    store = open_store(f"sqlite:///{served.home / 'modeldeck.db'}")
    yield store
    store.close()


def test_requests_through_a_real_server_are_logged_with_their_inputs_and_outputs(
    served: Served, monitored: Any
) -> None:
    logged = monitored.logged_requests("churn")
    answered = [r for r in logged if r.status == "ok"]
    assert [(r.version, r.signature, r.rows, r.weight) for r in logged] == [(1, "serving_default", 1, 1)] * 41
    assert [r.inputs[0] for r in answered] == served.sent
    assert {r.outputs[0]["label"] for r in answered} <= {"yes", "no"}
    assert [(r.status, r.inputs, r.outputs) for r in logged if r.status != "ok"] == [
        ("error", [{"tenure": "many", "plan": "basic", "charges": 1.0}], [])
    ]


def test_the_figures_count_the_logged_requests_and_their_latency(monitored: Any) -> None:
    figures = serving.monitor(monitored, "churn")
    latencies = sorted(r.latency_ms for r in monitored.logged_requests("churn"))

    assert (figures.requests, figures.logged, figures.errors) == (41, 41, 1)
    assert (figures.p50_ms, figures.p95_ms) == (latencies[20], latencies[38])  # the 21st and 39th of 41
    assert 0 < figures.p50_ms <= figures.p95_ms
    assert (sum(b.requests for b in figures.timeline), sum(b.errors for b in figures.timeline)) == (41, 1)
    assert figures.predictions is not None
    assert (figures.predictions.kind, sum(figures.predictions.counts)) == ("classes", 40)


def test_a_planted_shift_through_the_server_raises_the_drift_alert_on_that_feature_first(monitored: Any) -> None:
    figures = serving.monitor(monitored, "churn", version=1)

    assert (figures.drift_version, figures.alert) == (1, True)
    assert [(f.feature, f.kind, f.level, f.rows) for f in figures.drift[:1]] == [("charges", "numeric", "drift", 40)]
    assert sorted(f.feature for f in figures.drift) == ["charges", "plan", "tenure"]
    assert [f.psi for f in figures.drift] == sorted((f.psi for f in figures.drift), reverse=True)
    assert figures.drift[0].bins[-1].actual == 1.0  # every shifted value in the training data's top bin


def test_figures_of_an_unknown_version_say_which_exist(monitored: Any) -> None:
    with pytest.raises(NotFound, match=r"Model 'churn' has no version 9\. Expected one of: 1\."):
        serving.monitor(monitored, "churn", version=9)


def test_a_server_whose_request_log_cannot_be_written_still_answers(churn_run: dict[str, Any], tmp_path: Path) -> None:
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    log = tmp_path / "server.log"
    env = {"MODELDECK_DATABASE_URL": f"sqlite:///{tmp_path / 'not-a-folder'}/modeldeck.db"}
    (tmp_path / "not-a-folder").write_text("a file where the database's folder should be")
    command = factories.serve_command(churn_run["home"], rest, grpc)
    with factories.running(command, log=log, urls=[f"{url}/healthz"], env=env):
        predict = f"{url}/v1/models/churn/versions/1:predict"
        answers = [httpx.post(predict, json={"instances": [factories.CHURN_ROW]}, timeout=30) for _ in range(3)]
        deadline = time.monotonic() + LOG_WAIT_S
        while "could not write" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "requests to the request log; they are dropped" in log.read_text()


# -- the CLI and the page -----------------------------------------------------------------------------------------
def test_monitor_json_prints_the_same_figures(served: Served, monitored: Any) -> None:
    printed = factories.cli_json(served.home, "monitor", "churn")

    assert printed == json.loads(json.dumps(serving.monitor(monitored, "churn").to_dict(), default=str))
    assert (printed["requests"], printed["errors"], printed["alert"], printed["drift"][0]["feature"]) == (
        41,
        1,
        True,
        "charges",
    )


def test_monitor_of_an_unknown_model_exits_2_with_one_line(served: Served) -> None:
    result = factories.cli(served.home, "monitor", "nope")
    assert (result.returncode, result.stderr) == (
        2,
        "error: Model 'nope' not found. Expected one of: churn. See `modeldeck models list`.\n",
    )


def _page(lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("views/monitoring.py").run()
    if lang != "en":
        at.selectbox(key="language_picker").select(lang).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_monitoring_page_shows_the_figures_and_the_drift_alert(monitored: Any) -> None:
    at = _page()

    assert [t.value for t in at.title] == ["Monitoring"]
    assert [(m.label, m.value) for m in at.metric][:2] == [("Requests", "41"), ("Errors", "1")]
    (alert,) = [e.value for e in at.error]
    assert alert.startswith("Input drift: charges")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles == [
        "Requests per minute",
        "Latency at the server",
        "Predicted classes",
        "Population stability index per feature",
        "charges: training data against 40 logged examples",
    ]
    psi = json.loads(at.get("plotly_chart")[3].proto.spec)["data"][0]
    assert psi["y"][-1] == "charges"  # drawn from the bottom: the highest PSI on top


def test_monitoring_page_reads_chinese(monitored: Any) -> None:
    at = _page("zh")

    assert ([t.value for t in at.title], [m.label for m in at.metric]) == (
        ["监控"],
        ["请求数", "错误数", "延迟 p50", "延迟 p95"],
    )
    assert [e.value.startswith("输入漂移：charges") for e in at.error] == [True]


def test_monitoring_page_says_when_no_request_was_logged_yet(store: Any) -> None:
    _, version = factories.add_frame(store, factories.churn_frame(rows=30))
    run = store.create_run(version_id=version.id, task="classification", target="churn", spec={}, queue=False)
    store.name_model(run.id, names=["churn"], task="classification", export_parent=f"runs/{run.id}/export")
    store.update_run(run.id, status="succeeded")
    at = _page()

    assert [i.value for i in at.info] == [
        "No request to churn logged yet. Predictions through the inference server (the Playground, a use case, any"
        " REST or gRPC client) show here within a few seconds."
    ]
    assert at.get("plotly_chart") == []


def test_monitoring_page_without_models_says_to_train_one(home: Path) -> None:
    at = _page()
    assert [i.value for i in at.info] == [
        "No model has a version yet. Train one first; its requests show here once the inference server answers them."
    ]
