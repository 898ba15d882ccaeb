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


# -- three or more classes: a cost matrix ----------------------------------------------------------------------
_DECIDE_BY_COSTS = """
import json, sys
import numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
columns = json.loads(sys.argv[2])
specs = serve.structured_input_signature[1]
out = serve(**{k: tf.constant(np.array(v, specs[k].dtype.as_numpy_dtype).reshape(-1, 1)) for k, v in columns.items()})
print(json.dumps({
    "decision": [x.decode() for x in out["decision"].numpy()],
    "expected_cost": out["expected_cost"].numpy().tolist(),
    "p": out["probabilities"].numpy().tolist(),
    "classes": [x.decode() for x in out["classes"].numpy()[0]],
}))
"""


def tiers_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three overlapping classes of customers, so that the most probable class is often a close call."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["bronze", "silver", "gold"], rows)
    spend = rng.normal(0, 1, rows) + (tier == "silver") * 1.0 + (tier == "gold") * 2.0
    visits = rng.normal(0, 1, rows) + (tier == "gold") * 1.0
    return pd.DataFrame({"spend": spend.round(3), "visits": visits.round(3), "tier": tier})


@pytest.fixture(scope="module")
def tiers_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.conftest import _trained_home

    return _trained_home(tmp_path_factory.mktemp("tiers"), tiers_frame(), name="tiers", target="tier")


def test_a_cost_matrix_is_stored_and_plain_tensorflow_decides_the_least_expected_cost(
    tiers_run: dict[str, Any], tmp_path: Path
) -> None:
    home, run_id = tiers_run["home"], str(tiers_run["run_id"])
    # Missing a gold customer costs 20; any other mistake 1.
    costs = {
        "gold": {"bronze": 20, "silver": 20},
        "silver": {"bronze": 1, "gold": 1},
        "bronze": {"silver": 1, "gold": 1},
    }
    chosen = factories.cli_json(home, "decide", run_id, "--cost-matrix", json.dumps(costs), "--why", "gold matters")
    assert chosen["threshold"] is None and chosen["reason"] == "gold matters"
    assert sum(map(sum, chosen["confusion"])) == tiers_run["metrics"]["test_rows"]
    assert chosen["saving"] == pytest.approx(chosen["plain_cost"] - chosen["expected_cost"])

    rows = tiers_frame(rows=60, seed=5).drop(columns=["tier"])
    export = _export(home, tiers_run["run_id"])
    columns = json.dumps({k: v.tolist() for k, v in rows.items()})
    done = subprocess.run(
        [sys.executable, "-c", _DECIDE_BY_COSTS, str(export), columns], capture_output=True, text=True, check=True
    )
    served = json.loads(done.stdout.strip().splitlines()[-1])
    classes, p = served["classes"], np.array(served["p"])
    matrix = np.array([[costs.get(a, {}).get(d, 0) for d in classes] for a in classes], dtype=float)
    expected = p @ matrix
    assert served["decision"] == [classes[i] for i in expected.argmin(axis=1)]
    assert served["expected_cost"] == pytest.approx(expected.min(axis=1).tolist(), rel=1e-5)
    assert any(d != classes[i] for d, i in zip(served["decision"], p.argmax(axis=1), strict=True)), "costs matter"

    as_csv = tmp_path / "costs.csv"
    as_csv.write_text("actual,bronze,silver,gold\nbronze,0,1,1\nsilver,1,0,1\ngold,1,1,0\n")
    plain = factories.cli_json(home, "decide", run_id, "--cost-matrix", str(as_csv))
    assert plain["saving"] == pytest.approx(0.0, abs=1e-9), "equal mistakes: the most probable class is the cheapest"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cost-matrix", '{"platinum": {"gold": 1}}'], "must be the model's classes, in its order: bronze"),
        (["--cost-matrix", '{"gold": {"bronze": "a lot"}}'], "must be a number"),
        (["--cost-matrix", "{}"], "Every cost is zero"),
        (["--cost-matrix", "[1, 2"], "is neither a CSV file"),
        (["--value-tp", "1"], "Give either --cost-matrix"),
        ([], "Give either --cost-matrix"),
        (["--value-tp", "1", "--cost-fp", "1", "--cost-fn", "1"], "a threshold needs a two-class classifier"),
    ],
)
def test_bad_cost_matrices_get_one_line(tiers_run: dict[str, Any], args: list[str], message: str) -> None:
    done = factories.cli(tiers_run["home"], "decide", str(tiers_run["run_id"]), *args)
    assert (done.returncode, len(done.stderr.strip().splitlines())) == (2, 1), done.stderr
    assert message in done.stderr


def test_a_two_class_run_cannot_take_a_cost_matrix(churn_run: dict[str, Any]) -> None:
    done = factories.cli(churn_run["home"], "decide", str(churn_run["run_id"]), "--cost-matrix", "{}")
    assert done.returncode == 2 and "a cost matrix is for three or more" in done.stderr


def test_the_evaluation_page_weighs_a_cost_matrix_and_stores_it(
    tiers_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(tiers_run["home"], home)
    pages.use_home(monkeypatch, home)
    at = pages.open_page("views/evaluation.py")
    assert "From a score to a decision" in pages.values(at.subheader)
    shown = dict(pages.metrics(at))
    # Every mistake costs 1 by default: deciding the most probable class is already the cheapest.
    assert shown["Saved per 1,000 cases"] == "0"
    cost = float(shown["Cost per 1,000 cases, least expected cost"].replace(",", ""))
    assert cost == pytest.approx(1000 * (1 - tiers_run["metrics"]["accuracy"]), abs=0.5)
    next(b for b in at.button if b.label == "Use these costs for this model").click().run()
    assert not at.exception and pages.values(at.error) == []
    assert pages.values(at.success)[0].startswith("Model tiers version")
    stored = factories.cli_json(home, "runs", "show", str(tiers_run["run_id"]))
    assert stored["status"] == "succeeded"
    at = pages.open_page("views/evaluation.py")
    assert any(text.startswith("This model version decides by a cost matrix") for text in pages.values(at.info))
