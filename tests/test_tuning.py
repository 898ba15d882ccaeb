"""Hyperparameter search through a real worker: every trial is a run, the best one is kept."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backend.errors import BadInput
from backend.jobs import tuning
from db import open_store
from tests import factories


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("tuning")
    csv, home = root / "churn.csv", root / "home"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    result = factories.cli_json(
        home, "tune", "churn", "--trials", "3", "--epochs", "2", "--search", "learning_rate=0.0005:0.05", "--wait"
    )
    return {"home": home, "result": result, "store": open_store(f"sqlite:///{home / 'modeldeck.db'}")}


def test_a_random_search_trains_each_trial_as_a_run_of_its_own(searched: dict) -> None:
    store, result = searched["store"], searched["result"]
    trials = store.list_runs(parent_id=result["run_id"])
    assert (result["status"], len(trials), {t.status for t in trials}) == ("succeeded", 3, {"succeeded"})
    rates = [t.spec["learning_rate"] for t in trials]
    assert len(set(rates)) == 3 and all(0.0005 <= r <= 0.05 for r in rates)
    assert all(t.model_name == "churn" and t.spec["epochs"] == 2 for t in trials)


def test_the_search_reports_the_best_trial_and_its_metrics(searched: dict) -> None:
    store, result = searched["store"], searched["result"]
    search = store.get_run(result["run_id"])
    rows = search.evaluation["search"]["trials"]
    best = min(rows, key=lambda row: row["val_loss"])
    assert (result["best_run"], search.metrics) == (best["run"], store.get_run(best["run"]).metrics)
    assert set(rows[0]) >= {"run", "status", "learning_rate", "val_loss", "accuracy"}


def test_the_best_trial_s_model_predicts(searched: dict) -> None:
    row = '{"tenure": 3, "plan": "basic", "charges": 80}'
    out = factories.cli_json(searched["home"], "predict", str(searched["result"]["best_run"]), "--row", row)
    assert out["predictions"][0]["label"] in ("yes", "no")


def test_a_search_space_names_real_hyperparameters_and_ranges() -> None:
    defaults = {"learning_rate": 0.001, "epochs": 30, "dropout": 0.1}
    assert tuning.parse_space(
        {"learning_rate": "0.0001:0.01", "epochs": "5:20", "dropout": "0|0.2"}, defaults=defaults
    ) == {
        "learning_rate": {"kind": "float", "low": 0.0001, "high": 0.01, "log": True},
        "epochs": {"kind": "int", "low": 5.0, "high": 20.0, "log": False},
        "dropout": {"kind": "choice", "values": ["0", "0.2"]},
    }
    with pytest.raises(BadInput, match=r"Cannot search 'depth': not a hyperparameter of this task"):
        tuning.parse_space({"depth": "1:3"}, defaults=defaults)
    with pytest.raises(BadInput, match=r"'epochs=20:5' is not a range\. Write LOW:HIGH"):
        tuning.parse_space({"epochs": "20:5"}, defaults=defaults)


def test_a_bayesian_search_on_a_text_task_runs_its_trials(tmp_path: Path) -> None:
    csv, home = tmp_path / "reviews.csv", tmp_path / "home"
    factories.reviews_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "score")
    result = factories.cli_json(
        home,
        "tune",
        "reviews",
        "--task",
        "text-classification",
        "--method",
        "bayesian",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--set",
        "sequence_length=16",
        "--wait",
    )
    trials = open_store(f"sqlite:///{home / 'modeldeck.db'}").list_runs(parent_id=result["run_id"])
    assert (result["status"], [t.task for t in trials]) == ("succeeded", ["text-classification"] * 2)


def test_a_cancelled_search_keeps_its_finished_trials_and_their_models(tmp_path: Path) -> None:
    csv, home = tmp_path / "churn.csv", tmp_path / "home"
    factories.churn_frame().to_csv(csv, index=False)
    factories.cli_json(home, "data", "add", str(csv), "--target", "churn")
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    worker = factories.start_worker(home)
    try:
        search = factories.cli_json(home, "tune", "churn", "--trials", "20", "--epochs", "2")["run_id"]
        deadline = time.monotonic() + 300
        while not any(t.status == "succeeded" for t in store.list_runs(parent_id=search)):
            assert time.monotonic() < deadline, "no trial finished"
            time.sleep(0.5)
        factories.cli(home, "runs", "cancel", str(search))
        while store.get_run(search).status not in ("cancelled", "succeeded", "failed"):
            assert time.monotonic() < deadline, "the search did not stop"
            time.sleep(0.5)
    finally:
        factories.stop_process(worker)
    finished = [t for t in store.list_runs(parent_id=search) if t.status == "succeeded"]
    run = store.get_run(search)
    assert (run.status, 1 <= len(finished) < 20) == ("cancelled", True)
    best = run.evaluation["search"]["best_run"]
    assert best in [t.id for t in finished] and run.metrics == store.get_run(best).metrics
    assert factories.cli_json(home, "predict", str(best), "--row", '{"tenure": 3, "plan": "basic", "charges": 80}')
