"""Use cases: made from a finished run, said in business words, served by the model's production version, edited
and hidden; the home page shows them and opens one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend import jobs
from backend.errors import BadInput, NotFound
from db import open_store
from tests import test_pages as pages


@pytest.fixture
def home(churn_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return pages.copy_home(churn_run, tmp_path, monkeypatch)


def test_a_use_case_says_how_good_its_model_is_in_words_and_can_be_edited_and_hidden(
    home: Path, churn_run: dict[str, Any]
) -> None:
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    made = jobs.create_use_case(
        store, run_id=churn_run["run_id"], title="  Which customers will leave? ", audience="the retention team"
    )
    assert (made.title, made.audience, made.model_name, made.hidden) == (
        "Which customers will leave?",
        "the retention team",
        "churn",
        False,
    )
    (card,) = jobs.use_case_cards(store)
    m = churn_run["metrics"]
    right = round(100 * m["accuracy"])
    assert card.quality.text("en") == f"Right {right} times in 100 on {m['test_rows']} cases it never saw."
    assert card.quality.text("zh") == f"在 {m['test_rows']} 个从未见过的案例上，每 100 次中答对 {right} 次。"
    assert (card.run.id, card.stage) == (churn_run["run_id"], None)

    changed = jobs.update_use_case(store, made.id, description="Scores every customer each month", hidden=True)
    assert (changed.title, changed.description, changed.hidden) == (
        made.title,
        "Scores every customer each month",
        True,
    )
    assert jobs.use_case_cards(store) == []
    assert [c.use_case.id for c in jobs.use_case_cards(store, hidden=True)] == [made.id]
    store.close()


def test_the_production_version_serves_a_use_case_once_the_registry_names_one(
    home: Path, churn_run: dict[str, Any]
) -> None:
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    made = jobs.create_use_case(store, run_id=churn_run["run_id"], title="Churn risk")
    version = store.get_run(churn_run["run_id"]).model_version
    store.add_stage_change("churn", version=version, stage="production", action="promote", assigned_by="t", reason="")
    run, stage = jobs.use_case_run(store, made)
    assert (run.id, stage) == (churn_run["run_id"], "production")
    store.close()


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"title": "   "}, BadInput, "A use case needs a title"),
        ({"title": "x" * 121}, BadInput, "Keep the title under 120 characters"),
        ({"run_id": 999}, NotFound, "999"),
    ],
)
def test_bad_use_cases_are_refused_with_one_line(
    home: Path, churn_run: dict[str, Any], change: dict, error: type, message: str
) -> None:
    store = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    with pytest.raises(error, match=message):
        jobs.create_use_case(store, **({"run_id": churn_run["run_id"], "title": "Churn"} | change))
    with pytest.raises(NotFound, match="There is no use case 42"):
        jobs.update_use_case(store, 42, title="x")
    store.close()


def test_the_home_page_makes_a_use_case_and_shows_its_card(home: Path, churn_run: dict[str, Any]) -> None:
    at = pages.open_page("views/home.py")
    assert pages.values(at.title) == ["Use cases"]
    assert pages.values(at.info) == ["No use cases yet: make one from a trained model below."]
    pages.one(at.text_input, "Title: the question it answers").input("Which customers will leave?")
    pages.one(at.text_input, "Who it is for").input("the retention team")
    next(b for b in at.button if b.label == "Put it on the home page").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Which customers will leave?" in pages.values(at.subheader)
    m = churn_run["metrics"]
    assert f"**Right {round(100 * m['accuracy'])} times in 100 on {m['test_rows']} cases it never saw.**" in [
        md.value for md in at.markdown
    ]
    assert "For the retention team" in pages.values(at.caption)
    assert any(b.label == "Open" for b in at.button)


def test_demo_mode_leaves_only_the_use_cases(home: Path) -> None:
    at = pages.open_page("views/home.py")
    demo = pages.one(at.toggle, "Demo mode")
    demo.set_value(True).run()
    assert not at.exception
    assert at.session_state["demo"] is True
    assert all(t.label != "Show hidden use cases" for t in at.toggle)
