"""Run history at scale: paged, sorted and filtered in SQL, the same answers as sorting in Python; the CLI's
`runs list` pages; the Compare page puts runs side by side and ranks each dataset's best."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import history
from db import open_store
from tests import factories
from tests import test_pages as pages

RUNS = 300


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("history")
    history.generate(home, runs=RUNS)
    return home


def test_a_page_of_runs_sorted_and_filtered_in_sql_is_what_sorting_everything_gives(many_runs: Path) -> None:
    store = open_store(f"sqlite:///{many_runs / 'modeldeck.db'}")
    everything, total = store.run_summaries(limit=RUNS)
    assert total == RUNS and [r.id for r in everything] == list(range(RUNS, 0, -1))
    page, total = store.run_summaries(offset=40, limit=20, sort="accuracy", descending=True, task="classification")
    ranked = sorted(
        (r for r in everything if r.task == "classification"), key=lambda r: (-r.metrics["accuracy"], -r.id)
    )
    assert (total, [r.id for r in page]) == (len(ranked), [r.id for r in ranked[40:60]])
    failed, count = store.run_summaries(status="failed", dataset_id=1, limit=RUNS)
    assert count == len(failed) == sum(r.status == "failed" and r.dataset_id == 1 for r in everything)
    leaders = store.best_runs("accuracy", higher_is_better=True)
    for leader in leaders:
        mine = [
            r for r in everything if r.dataset == leader.dataset and r.status == "succeeded" and "accuracy" in r.metrics
        ]
        assert leader.metrics["accuracy"] == max(r.metrics["accuracy"] for r in mine)
    assert {r.dataset for r in leaders} == {"telco-churn", "penguins", "reviews", "wine"}  # diamonds: no accuracy
    curves = store.metric_curves([1, 2])
    assert len(curves[1]["loss"]) == len(curves[2]["val_loss"]) == history.EPOCHS
    store.close()


def test_runs_list_answers_a_page_with_the_total(many_runs: Path) -> None:
    listed = factories.cli_json(many_runs, "runs", "list", "--limit", "5", "--offset", "10", "--sort", "duration_s")
    assert (listed["total"], len(listed["runs"])) == (RUNS, 5)
    durations = [r["duration_s"] for r in listed["runs"]]
    assert durations == sorted(durations, reverse=True)
    assert {"run_id", "dataset", "task", "status", "metrics", "model_name"} <= set(listed["runs"][0])
    one = factories.cli_json(many_runs, "runs", "list", "--dataset", "wine", "--status", "succeeded", "--limit", "1000")
    assert one["total"] == len(one["runs"]) and {r["dataset"] for r in one["runs"]} == {"wine"}


def test_the_compare_page_pages_the_history_and_puts_two_runs_side_by_side(
    many_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.use_home(monkeypatch, many_runs)
    at = pages.open_page("views/compare.py")
    assert not at.exception
    assert pages.values(at.title) == ["Compare runs"] and at.caption[0].value == f"Runs 1–50 of {RUNS}."
    assert len(at.dataframe[0].value) == 50
    assert at.multiselect[0].value == [RUNS, RUNS - 1]
    assert "Leaderboard: the best run of each dataset" in pages.values(at.subheader)
    at.number_input[0].set_value(6).run()  # the last page
    assert at.caption[0].value == f"Runs 251–{RUNS} of {RUNS}."
    at = pages.open_page("views/compare.py", lang="zh")
    assert not at.exception and pages.values(at.title) == ["对比运行"]
