"""From a score to a decision: the profit over thresholds is exact, and a chosen threshold reaches the export
(plain TensorFlow returns `decision`), the inference server without a restart, and the Playground."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend.serving import client
from models.decision import Costs, at_threshold, profit_curve
from tests import factories
from tests import test_pages as pages

# A fresh interpreter with TensorFlow alone: the export's decisions for rows given as JSON columns.
_DECIDE = """
import json, sys
import numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
columns = json.loads(sys.argv[2])
specs = serve.structured_input_signature[1]
out = serve(**{k: tf.constant(np.array(v, specs[k].dtype.as_numpy_dtype).reshape(-1, 1)) for k, v in columns.items()})
plain = lambda x: x.decode() if isinstance(x, bytes) else float(x)
as_json = {k: [plain(x) for x in out[k].numpy()] for k in ("decision", "threshold")}
print(json.dumps(as_json | {"p": out["probabilities"].numpy()[:, 1].tolist()}))
"""


def test_the_most_profitable_threshold_is_found_over_every_test_score() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(0.35 * labels + 0.65 * rng.random(400), 0, 1)
    costs = Costs(value_tp=120, cost_fp=30, cost_fn=40)
    curve = profit_curve(labels, scores, costs)

    def brute(t: float) -> float:
        act = scores >= t
        return (np.sum(act & (labels == 1)) * (120 + 40) - np.sum(act & (labels == 0)) * 30) * 1000 / 400

    best = max(np.unique(np.r_[scores, 2.0]), key=brute)
    assert curve["best"] == pytest.approx(min(best, 1.0))
    assert max(curve["profit_per_1000"]) == pytest.approx(brute(best))
    chosen = at_threshold(labels, scores, costs, 0.5)
    assert chosen["expected_profit"] == pytest.approx(brute(0.5))
    assert sum(chosen["confusion"].values()) == 400
    nobody = at_threshold(labels, scores, costs, 1.0 + 1e-9)
    assert (nobody["expected_profit"], nobody["roi"]) == (0.0, None)


@pytest.fixture
def decided_home(churn_run: dict[str, Any], tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    return home


def _export(home: Path, run_id: int) -> Path:
    shown = factories.cli_json(home, "runs", "show", str(run_id))
    return home / "runs" / str(run_id) / "export" / shown["model_name"] / str(shown["model_version"])


def _served_decisions(export: Path, rows: pd.DataFrame) -> dict[str, list]:
    columns = json.dumps({k: v.tolist() for k, v in rows.items()})
    done = subprocess.run(
        [sys.executable, "-c", _DECIDE, str(export), columns], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_chosen_threshold_is_stored_and_plain_tensorflow_decides_with_it(
    decided_home: Path, churn_run: dict[str, Any]
) -> None:
    run_id = str(churn_run["run_id"])
    best = factories.cli_json(decided_home, "decide", run_id, "--value-tp", "100", "--cost-fp", "20", "--cost-fn", "50")
    assert best["positive"] == "yes" and 0 <= best["threshold"] <= 1 and best["chosen_by"]
    assert sum(best["confusion"].values()) == churn_run["metrics"]["test_rows"]
    rows = factories.churn_frame(rows=40, seed=9).drop(columns=["churn"])
    served = _served_decisions(_export(decided_home, churn_run["run_id"]), rows)
    threshold = float(np.median(served["p"]))  # half the rows on each side
    chosen = factories.cli_json(
        decided_home, "decide", run_id, "--value-tp", "100", "--cost-fp", "20", "--cost-fn", "50",
        "--threshold", str(threshold), "--why", "the team can call half of them",
    )  # fmt: skip
    served = _served_decisions(_export(decided_home, churn_run["run_id"]), rows)
    expected = ["yes" if p >= np.float32(threshold) else "no" for p in served["p"]]
    assert served["decision"] == expected and set(expected) == {"yes", "no"}
    assert served["threshold"] == pytest.approx([threshold] * 40)
    assert (chosen["threshold"], chosen["reason"]) == (threshold, "the team can call half of them")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--value-tp", "-5", "--cost-fp", "1", "--cost-fn", "1"], "These values cannot be negative: value_tp."),
        (["--value-tp", "0", "--cost-fp", "0", "--cost-fn", "0"], "Every value is zero"),
        (["--value-tp", "1", "--cost-fp", "1", "--cost-fn", "1", "--threshold", "1.5"], "Threshold 1.5 is outside"),
    ],
)
def test_bad_business_values_get_one_line(decided_home: Path, churn_run: dict[str, Any], args, message) -> None:
    done = factories.cli(decided_home, "decide", str(churn_run["run_id"]), *args)
    assert (done.returncode, len(done.stderr.strip().splitlines())) == (2, 1), done.stderr
    assert message in done.stderr


def test_a_regression_run_cannot_take_a_threshold(price_run: dict[str, Any]) -> None:
    done = factories.cli(
        price_run["home"], "decide", str(price_run["run_id"]), "--value-tp", "1", "--cost-fp", "1", "--cost-fn", "1"
    )
    assert done.returncode == 2 and "a threshold needs a two-class classifier" in done.stderr


def test_the_server_and_the_playground_apply_a_threshold_chosen_while_they_run(
    decided_home: Path, churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    pages.use_home(monkeypatch, decided_home)
    monkeypatch.setenv("MODELDECK_SERVING_URL", url)
    shown = factories.cli_json(decided_home, "runs", "show", str(churn_run["run_id"]))
    row = factories.churn_frame(rows=1, seed=3).drop(columns=["churn"]).to_dict("records")
    with factories.running(
        factories.serve_command(decided_home, rest, grpc), log=tmp_path / "server.log", urls=[f"{url}/healthz"]
    ):
        (before,), _ = client.predict(row, model=shown["model_name"], version=shown["model_version"], base_url=url)
        factories.cli_json(decided_home, "decide", str(churn_run["run_id"]), "--value-tp", "1", "--cost-fp", "1",
                           "--cost-fn", "1", "--threshold", "0")  # fmt: skip
        (after,), _ = client.predict(row, model=shown["model_name"], version=shown["model_version"], base_url=url)
        at = pages.open_page("views/playground.py")
        pages.one(at.button, "Predict").click().run()
    assert "decision" not in before and (after["decision"], after["threshold"]) == ("yes", 0.0)
    assert not at.exception and ("Decision", "yes") in pages.metrics(at)


def test_the_evaluation_page_shows_profit_over_the_threshold_and_stores_the_one_chosen(
    decided_home: Path, churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.use_home(monkeypatch, decided_home)
    at = pages.open_page("views/evaluation.py")
    assert "From a score to a decision" in pages.values(at.subheader)
    pages.one(at.number_input, "Cost of a false negative").set_value(50.0).run()
    profit = dict(pages.metrics(at))["Expected profit per 1,000 cases"]
    apply = next(b for b in at.button if b.label.startswith("Use "))
    apply.click().run()
    assert not at.exception and pages.values(at.error) == []
    assert pages.values(at.success)[0].startswith("Model churn version")
    shown = factories.cli_json(decided_home, "runs", "show", str(churn_run["run_id"]))
    export = _export(decided_home, churn_run["run_id"])
    decided = _served_decisions(export, factories.churn_frame(rows=5, seed=2).drop(columns=["churn"]))
    assert len(decided["decision"]) == 5 and shown["status"] == "succeeded" and profit
    at = pages.open_page("views/evaluation.py")
    assert any(text.startswith("This model version decides at") for text in pages.values(at.info))
