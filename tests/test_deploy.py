"""Deployment: a run's export in other formats with proof, TensorFlow Serving's config, the compose file and its
commands run outside Docker, and a start that survives a missing optional sample."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from backend import cli, config, jobs
from backend.data import samples
from db import open_store
from tests import factories

COMPOSE = factories.ROOT / "docker-compose.yml"
PORT = r"^([0-9.]+:)?[0-9]+:[0-9]+$"  # "8501:8501", or published on one host address: "127.0.0.1:8501:8501"


# -- samples --load: an optional sample that is not installed is skipped, with a warning -------------------
def test_samples_load_skips_samples_whose_package_is_missing(home, monkeypatch, capsys) -> None:
    for name in [n for n in samples.SAMPLES if n not in ("wine", "penguins", "fashion")]:
        monkeypatch.delitem(samples.SAMPLES, name)
    monkeypatch.setitem(sys.modules, "palmerpenguins", None)  # `import palmerpenguins` fails as if not installed
    no_fashion = functools.partial(samples.fashion_mnist_zip, root=home / "no-fashion-mnist")
    monkeypatch.setitem(
        samples.SAMPLES, "fashion", dataclasses.replace(samples.SAMPLES["fashion"], load_zip=no_fashion)
    )

    code = cli.main(["--home", str(home), "samples", "--load", "--json"])

    out, err = capsys.readouterr()
    assert code == 0
    assert [s["name"] for s in json.loads(out)["skipped"]] == ["fashion", "penguins"]
    assert err.splitlines() == [
        f"warning: sample fashion skipped: Fashion-MNIST is not installed ({home / 'no-fashion-mnist'}/"
        "train-images-idx3-ubyte.gz is missing). Install Debian's dataset-fashion-mnist package (`apt install"
        " dataset-fashion-mnist`, or `make install`), or pick another sample.",
        "warning: sample penguins skipped: The penguins sample needs the Python package palmerpenguins, which is not"
        " installed. Install it (`pip install palmerpenguins`) or pick another sample.",
    ]
    store = open_store(config.database_url())
    assert [d.name for d in store.list_datasets()] == ["wine"]
    store.close()


# -- formats with proof -----------------------------------------------------------------------------------
@pytest.fixture
def churn_store(churn_run, monkeypatch) -> Any:
    monkeypatch.setenv("MODELDECK_HOME", str(churn_run["home"]))
    store = open_store(config.database_url())
    yield store
    store.close()


@pytest.fixture(scope="module")
def churn_formats(churn_run) -> list[Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELDECK_HOME", str(churn_run["home"]))
        store = open_store(config.database_url())
        try:
            return jobs.check_formats(store, churn_run["run_id"])
        finally:
            store.close()


def test_tflite_float_matches_the_savedmodel_on_test_rows(churn_formats) -> None:
    tflite = {c.format: c for c in churn_formats}["tflite"]
    assert (tflite.file, tflite.refused, tflite.rows) == ("model.tflite", None, 36)
    assert tflite.max_difference <= 1e-5
    assert tflite.size_bytes > 0 and tflite.latency_ms > 0


def test_tflite_int8_matches_within_quantisation_error(churn_formats) -> None:
    int8 = {c.format: c for c in churn_formats}["tflite-int8"]
    assert (int8.file, int8.refused, int8.rows) == ("model-int8.tflite", None, 36)
    assert int8.max_difference <= 0.05
    assert isinstance(int8.quantized, bool)


def test_formats_come_savedmodel_first_with_its_zip(churn_formats) -> None:
    assert [c.format for c in churn_formats] == ["savedmodel", "tflite", "tflite-int8"]
    assert (churn_formats[0].file, churn_formats[0].max_difference) == ("savedmodel.zip", 0.0)


def test_saved_formats_are_what_the_last_check_found(churn_formats, churn_store, churn_run) -> None:
    run = jobs.get_run(churn_store, churn_run["run_id"])
    assert jobs.saved_formats(run) == churn_formats


def test_tflite_file_runs_in_plain_tflite(churn_formats, churn_store, churn_run) -> None:
    import tensorflow as tf

    run = jobs.get_run(churn_store, churn_run["run_id"])
    model = jobs.format_file(run, churn_formats[1])
    runner = tf.lite.Interpreter(model_path=str(model)).get_signature_runner("serving_default")
    out = runner(
        tenure=np.array([[12.0]], np.float32), charges=np.array([[70.0]], np.float32), plan=np.array([[b"basic"]])
    )
    assert out["probabilities"].shape == (1, 2)
    assert abs(float(out["probabilities"].sum()) - 1.0) < 1e-5


def test_savedmodel_zip_loads_with_plain_tensorflow(churn_store, churn_run, tmp_path) -> None:
    import tensorflow as tf

    run, export_dir = jobs.exported_model(churn_store, churn_run["run_id"])
    with zipfile.ZipFile(jobs.savedmodel_zip(churn_store, run.id)) as zf:
        zf.extractall(tmp_path)
    rows = {
        "tenure": tf.constant([[3.0], [60.0]]),
        "charges": tf.constant([[90.0], [20.0]]),
        "plan": tf.constant([[b"basic"], [b"premium"]]),
    }
    unzipped = tf.saved_model.load(str(tmp_path / str(run.model_name) / str(run.model_version)))
    original = tf.saved_model.load(str(export_dir))
    found = unzipped.signatures["serving_default"](**rows)["probabilities"].numpy()
    expected = original.signatures["serving_default"](**rows)["probabilities"].numpy()
    np.testing.assert_array_equal(found, expected)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reviews")
    csv = root / "reviews.csv"
    factories.reviews_frame().to_csv(csv, index=False)
    factories.cli_json(root, "data", "add", str(csv), "--target", "score")
    result = factories.cli_json(root, "train", "reviews", "--epochs", "1", "--set", "architecture=bag", "--wait")
    assert result["status"] == "succeeded", result
    return {"home": root, "run_id": result["run_id"]}


def test_text_model_is_refused_tflite_with_the_converters_reason(text_run) -> None:
    result = factories.cli(text_run["home"], "export", str(text_run["run_id"]), "--out", "x", "--format", "tflite")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: The model cannot be exported as tflite: TensorFlow ops that TFLite does not"
    )
    assert "StringSplitV2" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_converter_s_reason_for_the_pretrained_model_s_tokenizer_is_one_readable_line() -> None:
    from models import formats

    where = 'loc(callsite(fused["TensorListReserve:", "minilm_1/wordpiece_1/TensorArrayV2@__inference_serve_10946"]))'
    converter = (
        f"<unknown>:0: error: {where}: error: 'tf.TensorListReserve' op requires element_shape to be static\n"
        f"<unknown>:0: error: {where}: error: failed to legalize operation 'tf.TensorListReserve' that was "
        "explicitly marked illegal\nerror: Lowering tensor list ops is failed."
    )
    assert formats.refusal(RuntimeError(converter)) == "TensorFlow ops that TFLite cannot convert: TensorListReserve"


def test_cli_exports_a_checked_tflite_model(churn_run, tmp_path) -> None:
    found = factories.cli_json(
        churn_run["home"], "export", str(churn_run["run_id"]), "--out", str(tmp_path), "--format", "tflite"
    )
    assert Path(found["path"]) == tmp_path / "churn" / "1" / "model.tflite"
    assert Path(found["path"]).stat().st_size == found["check"]["size_bytes"]
    assert found["check"]["max_difference"] <= 1e-5


# -- TensorFlow Serving's models.config ---------------------------------------------------------------------
def test_models_config_lists_every_version_with_labels() -> None:
    from backend.jobs import deploy

    text = deploy.models_config(
        {"churn": [2, 1], "prices": [1]}, mount="/models", labels={"churn": {"production": 2, "staging": 7}}
    )
    assert text == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "churn"\n'
        '    base_path: "/models/churn"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 1 versions: 2 } }\n"
        '    version_labels { key: "production" value: 2 }\n'
        "  }\n"
        "  config {\n"
        '    name: "prices"\n'
        '    base_path: "/models/prices"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 1 } }\n"
        "  }\n"
        "}\n"
    )


def test_models_config_parses_as_tensorflow_servings_own_proto() -> None:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from backend.jobs import deploy

    text = deploy.models_config({"churn": [1, 3]}, mount="/models/", labels={"churn": {"production": 3}})
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (model,) = parsed.model_config_list.config
    assert (model.name, model.base_path, list(model.model_version_policy.specific.versions)) == (
        "churn",
        "/models/churn",
        [1, 3],
    )
    assert dict(model.version_labels) == {"production": 3}


def test_stage_labels_are_the_registrys_current_stages(store) -> None:
    from backend.jobs import deploy

    for version, stage in [(1, "production"), (2, "staging"), (2, "production")]:
        store.add_stage_change("churn", version=version, stage=stage, action="promote", assigned_by="me", reason="")
    assert deploy.stage_labels(store) == {"churn": {"production": 2, "staging": 2}}


def test_serving_config_writes_the_folder_tensorflow_serving_reads(churn_run, tmp_path) -> None:
    out = tmp_path / "serving"
    found = factories.cli_json(churn_run["home"], "export", "--serving-config", str(out))
    assert found["models"] == {"churn": [1]}
    assert (out / "churn" / "1" / "saved_model.pb").is_file()
    assert 'base_path: "/models/churn"' in (out / "models.config").read_text()
    assert found["command"] == (
        f"docker run -p 8501:8501 -p 8500:8500 -v {out}:/models tensorflow/serving"
        " --model_config_file=/models/models.config"
    )


def test_export_without_a_run_says_how_to_call_it(home) -> None:
    result = factories.cli(home, "export", "--out", "x")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "error: `modeldeck export` needs a run and --out (`modeldeck export 3 --out exported/`), or --serving-config"
        " DIR alone.",
    )


# -- docker-compose.yml -------------------------------------------------------------------------------------
DURATION = r"^([0-9]+(ms|s|m|h))+$"
VOLUME = r"^[a-z0-9_-]+:/[^:]*(:ro)?$"  # a named volume (never a host path) and where it is mounted
HEALTHCHECK = {
    "type": "object",
    "required": ["test", "interval"],
    "properties": {
        "test": {"type": "array", "items": {"type": "string"}, "minItems": 2, "prefixItems": [{"enum": ["CMD"]}]},
        "interval": {"type": "string", "pattern": DURATION},
        "timeout": {"type": "string", "pattern": DURATION},
        "start_period": {"type": "string", "pattern": DURATION},
        "retries": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}
# The compose specification's essentials, for the keys this file uses (compose-spec/schema/compose-spec.json).
SCHEMA = {
    "type": "object",
    "required": ["services", "volumes"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {
            "type": "object",
            "patternProperties": {
                "^[a-zA-Z0-9._-]+$": {
                    "type": "object",
                    "anyOf": [{"required": ["build"]}, {"required": ["image"]}],
                    "properties": {
                        "build": {"type": "string"},
                        "image": {"type": "string"},
                        "command": {"type": "array", "items": {"type": "string"}},
                        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
                        "volumes": {
                            "type": "array",
                            "items": {"type": "string", "pattern": VOLUME},
                        },
                        "ports": {"type": "array", "items": {"type": "string", "pattern": PORT}},
                        "profiles": {"type": "array", "items": {"type": "string"}},
                        "depends_on": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["condition"],
                                "properties": {
                                    "condition": {
                                        "enum": [
                                            "service_started",
                                            "service_healthy",
                                            "service_completed_successfully",
                                        ]
                                    }
                                },
                            },
                        },
                        "healthcheck": HEALTHCHECK,
                        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                    },
                    "additionalProperties": False,
                }
            },
            "additionalProperties": False,
        },
        "volumes": {"type": "object"},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_follows_the_compose_spec(compose) -> None:
    jsonschema.validate(compose, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_compose_schema_refuses_a_service_with_neither_image_nor_build(compose) -> None:
    broken = compose | {"services": compose["services"] | {"worker": {"command": ["modeldeck", "worker"]}}}
    with pytest.raises(jsonschema.ValidationError, match="is not valid under any of the given schemas"):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_compose_services_share_one_declared_volume(compose) -> None:
    services = compose["services"]
    assert set(services) == {"dashboard", "worker", "server", "serving-config", "tfserving"}
    assert compose["volumes"] == {"modeldeck": None}
    assert {s: [v.split(":")[0] for v in services[s]["volumes"]] for s in services} == {
        s: ["modeldeck"] for s in services
    }
    for name in ("dashboard", "worker", "server", "serving-config"):
        assert (services[name]["build"], services[name]["environment"]["MODELDECK_HOME"]) == (".", "/data")


def test_compose_starts_the_three_by_default_and_tensorflow_serving_in_a_profile(compose) -> None:
    services = compose["services"]
    default = {name for name, s in services.items() if "profiles" not in s}
    assert default == {"dashboard", "worker", "server"}
    assert {name: s["profiles"] for name, s in services.items() if name not in default} == {
        "serving-config": ["tfserving"],
        "tfserving": ["tfserving"],
    }
    assert services["tfserving"]["image"] == "tensorflow/serving"
    assert "--model_config_file=/data/serving/models.config" in services["tfserving"]["command"]
    for service in services.values():  # a service never waits on one its profile may leave out
        for needed in service.get("depends_on", {}):
            assert needed in services and set(services[needed].get("profiles", [])) <= set(service.get("profiles", []))


# -- each service's command, run outside Docker with a fresh home, answers its health check ------------------
def _local(words: list[str], ports: dict[str, int]) -> list[str]:
    """A compose command or health check as it runs here: this Python and its `modeldeck`, free ports."""
    bin_dir = Path(sys.executable).parent
    text = json.dumps(words)
    for port, free in ports.items():
        text = text.replace(port, str(free))
    local = json.loads(text)
    if local[0] == "modeldeck":
        return [str(bin_dir / "modeldeck"), *local[1:]]
    if local[0] == "python":
        return [sys.executable, *local[1:]]
    return local


def _env(home: Path, ports: dict[str, int], service: dict[str, Any]) -> dict[str, str]:
    env = dict(service["environment"]) | {"MODELDECK_HOME": str(home)}
    env["MODELDECK_SERVING_URL"] = f"http://127.0.0.1:{ports['8502']}"
    return os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"} | env


def _healthy(check: list[str], env: dict[str, str], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the health check exits 0, as Docker would run it (its retries stretched to a slow first start)."""
    deadline = time.monotonic() + factories.STARTUP_S
    while subprocess.run(check, env=env, cwd=factories.ROOT, capture_output=True, timeout=60).returncode != 0:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode} before it was healthy:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not healthy after {factories.STARTUP_S} s:\n{log.read_text()[-4000:]}")
        time.sleep(1)


@pytest.mark.parametrize("name", ["server", "worker", "dashboard"])
def test_compose_service_command_starts_and_passes_its_health_check(compose, name, tmp_path) -> None:
    ports = dict(zip(["8501", "8502", "8500"], factories.free_ports(3), strict=True))
    service = compose["services"][name]
    env = _env(tmp_path / "home", ports, service)
    log = tmp_path / f"{name}.log"
    proc = factories.start_process(_local(service["command"], ports), log=log, env=env)
    try:
        _healthy(_local(service["healthcheck"]["test"][1:], ports), env, proc, log)
    finally:
        factories.stop_process(proc)


def test_compose_serving_config_command_writes_a_config_on_a_fresh_home(compose, tmp_path) -> None:
    service = compose["services"]["serving-config"]
    command = [str(tmp_path / "serving") if word == "/data/serving" else word for word in service["command"]]
    env = _env(tmp_path / "home", {"8502": 8502}, service)
    done = subprocess.run(_local(command, {}), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "serving" / "models.config").read_text() == "model_config_list {\n}\n"


def test_parity_rows_of_a_table_are_its_test_rows_without_the_target(churn_store, churn_run) -> None:
    from backend.jobs import deploy

    run = jobs.get_run(churn_store, churn_run["run_id"])
    rows = deploy._parity_rows(churn_store, run)
    kept = pd.read_parquet(config.paths().run_dir(run.id) / "test_predictions.parquet")
    expected = factories.churn_frame().iloc[kept["row"]].drop(columns="churn").reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)


# -- the Evaluation page's Deploy section ---------------------------------------------------------------------
def test_evaluation_page_builds_and_checks_the_tflite_formats(churn_run, monkeypatch, tmp_path) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.test_pages import copy_home

    copy_home(churn_run, tmp_path, monkeypatch)  # the check writes beside the run
    at = AppTest.from_file(str(factories.ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("views/evaluation.py").run()
    assert "Deploy" in [h.value for h in at.subheader]
    [check] = [b for b in at.button if b.label == "Build and check TFLite"]
    check.click().run()

    assert not at.exception, [e.value for e in at.exception]
    [table] = [d.value for d in at.dataframe if "Format" in d.value.columns]
    assert list(table.columns) == ["Format", "Size", "Latency (one example)", "Largest difference", "Status"]
    assert table["Format"].tolist() == ["SavedModel", "TFLite float", "TFLite int8 (dynamic range)"]
    assert table["Status"].tolist()[:2] == ["ok", "ok"]
    codes = [c.value for c in at.code]
    assert 'base_path: "/models/churn"' in codes[-2]
    assert codes[-1] == (
        "docker run -p 8501:8501 -p 8500:8500 -v $PWD/serving:/models tensorflow/serving"
        " --model_config_file=/models/models.config"
    )
