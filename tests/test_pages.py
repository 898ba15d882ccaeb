"""Every dashboard page, run headless through Streamlit's AppTest against a real store in a temporary home.

Pages that need a trained model use the session's `churn_run` / `price_run` homes, read-only; a page that
writes (the Training page records a quality report) gets a copy. The Playground's "server up" test starts
the real inference server on free ports, as tests/test_serving.py does.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from backend import config, data
from backend.data import datasets
from backend.quality import fixes
from backend.serving import client
from db import open_store
from tests import factories

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
VIEWS = ROOT / "dashboard" / "views"
SERVER_STARTUP_SECONDS = 90
CLOSED_PORT_URL = "http://127.0.0.1:9"


# -- helpers -------------------------------------------------------------------------------------------------
def open_page(page: str = "views/data.py", *, lang: str | None = None) -> AppTest:
    """The app run once on `page` (optionally after choosing a language in the sidebar, there)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    if page != "views/home.py":  # the first page, where the app opens
        at.switch_page(page).run()
    if lang is not None:
        at.selectbox(key="language_picker").select(lang).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def values(elements: Any) -> list[Any]:
    return [e.value for e in elements]


def one(elements: Any, label: str) -> Any:
    """The single widget with this label."""
    found = [e for e in elements if e.label == label]
    assert len(found) == 1, [e.label for e in elements]
    return found[0]


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def charts(at: AppTest) -> list[dict[str, Any]]:
    """The Plotly figures on the page, as the JSON the browser gets."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)


def copy_home(trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of a session-scoped home, for pages that write to the store."""
    copy = tmp_path / "home"
    shutil.copytree(trained["home"], copy)
    # Paths in the store are absolute; the copy's rows still point at the original (read-only) files.
    use_home(monkeypatch, copy)
    return copy


def stored_run(home: Path, run_id: int) -> Any:
    s = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        return s.get_run(run_id)
    finally:
        s.close()


# -- navigation ----------------------------------------------------------------------------------------------
def test_navigation_lists_every_page_file_and_nothing_else() -> None:
    tree = ast.parse(APP.read_text())

    def assigned(name: str) -> Any:
        return next(
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]
        )

    listed = [path for path, _, _ in assigned("PAGES")] + assigned("HIDDEN")
    assert sorted(listed) == sorted(f"views/{p.name}" for p in VIEWS.glob("*.py") if p.name != "__init__.py")


# -- Data ----------------------------------------------------------------------------------------------------
def test_data_page_without_datasets_says_there_is_none(home: Path) -> None:
    at = open_page("views/data.py")
    assert (values(at.title), values(at.info)) == (
        ["Data"],
        ["No dataset yet. Upload a file or add a sample above."],
    )


def test_data_page_uploaded_csv_is_stored_when_added(home: Path, store: Any) -> None:
    at = open_page("views/data.py")
    at.file_uploader[0].upload("churn.csv", factories.csv_bytes(factories.churn_frame()), "text/csv")
    at.run()
    one(at.button, "Add this dataset").click().run()

    assert not at.exception
    (dataset,) = store.list_datasets()
    (version,) = store.list_versions(dataset.id)
    assert (dataset.name, dataset.source, version.rows, [c["name"] for c in version.columns]) == (
        "churn",
        "upload:churn.csv",
        240,
        ["tenure", "plan", "charges", "churn"],
    )
    assert (values(at.subheader), at.session_state["dataset_id"], at.query_params["dataset"]) == (
        ["churn", "Versions"],
        dataset.id,
        str(dataset.id),
    )


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        (
            "empty.csv",
            b"",
            "'empty.csv' is empty. Upload a CSV file with a header row and at least one data row.",
        ),
        (
            "ragged.csv",
            b"a,b,c\n1,2,3\n4,5\n",
            "Row 3 of 'ragged.csv' has 2 fields but the header has 3. "
            "Fix that row (a missing or extra delimiter, or an unquoted ',').",
        ),
    ],
    ids=["empty", "ragged"],
)
def test_data_page_bad_csv_shows_one_line_error_and_stores_nothing(
    home: Path, store: Any, filename: str, content: bytes, message: str
) -> None:
    at = open_page("views/data.py")
    at.file_uploader[0].upload(filename, content, "text/csv")
    at.run()
    one(at.button, "Add this dataset").click().run()

    assert (values(at.error), store.list_datasets(), list(home.glob("datasets/*"))) == ([message], [], [])
    assert not at.exception


def test_data_page_adds_a_sample_from_the_sample_tab(home: Path, store: Any) -> None:
    at = open_page("views/data.py")
    one(at.selectbox, "Sample dataset").select("wine").run()
    one(at.button, "Add this sample").click().run()

    assert not at.exception
    (dataset,) = store.list_datasets()
    (version,) = store.list_versions(dataset.id)
    assert (dataset.name, dataset.source, version.rows, version.target, version.task) == (
        "wine",
        "sample:wine",
        178,
        "target",
        "classification",
    )


def test_data_page_choosing_the_target_stores_it_with_the_inferred_task(home: Path, store: Any) -> None:
    _, version = factories.add_frame(store, factories.price_frame(), name="prices", target=None)
    at = open_page("views/data.py")
    one(at.selectbox, "Target (the column to predict)").select("price").run()

    updated = store.get_version(version.id)
    assert (updated.target, updated.task, values(at.success)) == (
        "price",
        "regression",
        ["The model will learn to predict **price** (Regression)."],
    )
    assert not at.exception


def test_data_page_changing_the_task_stores_it(home: Path, store: Any) -> None:
    _, version = factories.add_frame(store, factories.price_frame(), name="prices", target="price")
    at = open_page("views/data.py")
    one(at.radio, "Task").set_value("classification").run()

    updated = store.get_version(version.id)
    assert (updated.target, updated.task, values(at.success)) == (
        "price",
        "classification",
        ["The model will learn to predict **price** (Classification)."],
    )
    assert not at.exception


# -- Quality -------------------------------------------------------------------------------------------------
def test_quality_page_shows_the_pass_verdict_and_every_check(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(), name="churn", target="churn")
    at = open_page("views/quality.py")

    assert (values(at.title), values(at.success), [e.label for e in at.expander]) == (
        ["Quality check"],
        ["churn passes the quality gate."],
        [
            "Usable target — Target 'churn' is usable.",
            "Enough rows — 240 rows.",
            "Enough examples of each class — 2 classes, the smallest with 120 rows.",
            "Target leakage — No single column predicts 'churn' on its own.",
            "Missing values — No missing values.",
            "Duplicate rows — No duplicate rows.",
            "Conflicting labels — No rows with identical features and different targets.",
            "Identifier columns — No identifier columns.",
            "Numbers mixed with text — No column mixes numbers and text.",
            "Class balance — The smallest class, 'yes', has 120 rows (50.0% of all).",
            "Suspected label errors — Too few labelled rows to judge the labels (at least 500 are needed).",
            "Training and test rows alike — The test rows look like the training rows in all 4 columns compared.",
            "Categories with very many values — No category column with very many values.",
            "Constant columns — No constant columns.",
            "Nearly constant columns — No nearly constant columns.",
            "Extreme values — No extreme values in the numeric columns.",
        ],
    )
    assert metrics(at)[0] == ("Quality score", "100/100")
    assert metrics(at)[2:] == [("Blockers", "0"), ("Warnings", "0"), ("Notes", "0")]


def test_quality_page_blocks_a_dataset_with_too_few_rows(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(rows=10), name="tiny", target="churn")
    at = open_page("views/quality.py")

    assert (values(at.error), [metrics(at)[0], metrics(at)[2]]) == (
        ["tiny is blocked: fix the blockers below before training (or override with a reason on the Training page)."],
        [("Quality score", "70/100"), ("Blockers", "1")],
    )
    assert at.expander[0].label == "Enough rows — 10 rows; at least 30 are needed."


def test_quality_evidence_reads_as_small_tables_in_the_reader_s_language(home: Path, store: Any) -> None:
    frame = factories.churn_frame(rows=10)
    frame["charges"] = frame["charges"].astype(object)
    frame.loc[[0, 1], "charges"] = None
    factories.add_frame(store, frame, name="tiny", target="churn")
    at = open_page("views/quality.py")

    facts = [d.value for d in at.dataframe if list(d.value.columns) == ["What was found", "Value"]]
    found = {row["What was found"]: row["Value"] for table in facts for row in table.to_dict("records")}
    assert found["Rows"] == "10"  # too few rows: its count, not {"rows": 10}
    assert "Missing values per column" not in found, "a count per column is a chart, not a row"

    at = open_page("views/quality.py", lang="zh")
    facts = [d.value for d in at.dataframe if list(d.value.columns) == ["发现", "数值"]]
    assert {"行数": "10"}.items() <= {r["发现"]: r["数值"] for t in facts for r in t.to_dict("records")}.items()


# -- Training ------------------------------------------------------------------------------------------------
def test_training_page_without_dataset_shows_the_guard(home: Path) -> None:
    at = open_page("views/training.py")
    assert (values(at.title), values(at.info)) == (
        ["Training"],
        ["Add a dataset first: upload a CSV or pick a sample on the Data page."],
    )


def test_training_start_on_a_blocked_dataset_is_disabled_until_a_reason_is_typed(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(rows=10), name="tiny", target="churn")
    at = open_page("views/training.py")
    disabled_before = one(at.button, "Start training").disabled
    one(at.text_input, "Override the gate: why is it fine to train anyway?").input("smoke test").run()

    assert not at.exception
    assert (values(at.error), disabled_before, one(at.button, "Start training").disabled) == (
        ["The quality gate blocks training: 10 rows; at least 30 are needed."],
        True,
        False,
    )


def test_training_start_with_an_override_stores_the_reason_with_the_run(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(rows=10), name="tiny", target="churn")
    at = open_page("views/training.py")
    one(at.text_input, "Override the gate: why is it fine to train anyway?").input("smoke test").run()
    one(at.button, "Start training").click().run()

    assert [(r.status, r.override_reason) for r in store.list_runs()] == [("queued", "smoke test")]
    assert not at.exception


def test_training_start_queues_a_run(home: Path, store: Any) -> None:
    _, version = factories.add_frame(store, factories.churn_frame(), name="churn", target="churn")
    at = open_page("views/training.py")
    one(at.button, "Start training").click().run()

    assert not at.exception
    (run,) = store.list_runs()
    assert (run.version_id, run.status, run.task, run.target, run.spec["epochs"]) == (
        version.id,
        "queued",
        "classification",
        "churn",
        at.number_input(key="hp_classification_balanced_epochs").value,
    )
    assert (values(at.subheader), values(at.info)) == (
        [f"Run {run.id}: queued"],
        ["Waiting for a worker to pick up the job…"],
    )


@pytest.mark.parametrize(("rows", "hinted"), [(60, True), (400, False)])
def test_training_page_suggests_the_pretrained_model_when_a_label_has_few_texts(
    home: Path, store: Any, rows: int, hinted: bool
) -> None:
    factories.add_frame(store, factories.reviews_frame(rows=rows), name="reviews", target="score")
    at = open_page("views/training.py")
    hints = [i for i in values(at.info) if "pretrained text model" in i]
    assert len(hints) == hinted, values(at.info)
    if hinted:
        assert "**minilm**" in hints[0] and "has only" in hints[0]


def test_training_cancel_marks_a_queued_run_cancelled(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(), name="churn", target="churn")
    at = open_page("views/training.py")
    one(at.button, "Start training").click().run()
    (queued,) = store.list_runs()
    one(at.button, "Cancel").click().run()

    assert not at.exception
    assert (store.get_run(queued.id).status, values(at.subheader), values(at.info)) == (
        "cancelled",
        [f"Run {queued.id}: cancelled"],
        ["Cancelled after 0 epochs."],
    )


def test_training_resume_queues_an_interrupted_run_again(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(), name="churn", target="churn")
    at = open_page("views/training.py")
    one(at.button, "Start training").click().run()
    (run,) = store.list_runs()
    store.update_run(run.id, status="interrupted")  # as when its worker died
    at.run()
    assert "The worker stopped after 0 epochs. Resume continues from the last epoch." in values(at.warning)
    one(at.button, "Resume").click().run()

    assert not at.exception
    assert (store.get_run(run.id).status, values(at.subheader)) == ("queued", [f"Run {run.id}: queued"])


def test_training_page_shows_the_trained_run_succeeded_with_its_curves(
    churn_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = copy_home(churn_run, tmp_path, monkeypatch)
    run = stored_run(home, churn_run["run_id"])
    at = open_page("views/training.py")

    m, secs = churn_run["metrics"], int(run.duration_s)
    assert (values(at.subheader), values(at.success)) == (
        [f"Run {run.id}: succeeded"],
        [
            f"Done: test accuracy {m['accuracy']:.1%}, ROC AUC {m['roc_auc']:.3f}. "
            f"Took {secs // 60}:{secs % 60:02d} on {run.device}."
        ],
    )
    (figure,) = charts(at)
    assert [(trace["name"], len(trace["x"])) for trace in figure["data"]] == [
        ("train · Loss", 2),
        ("validation · Loss", 2),
        ("train · Accuracy", 2),
        ("validation · Accuracy", 2),
    ]


def test_a_run_still_training_draws_its_curves_in_a_chart_updated_in_place(
    churn_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While it trains, the curves are a Vega-Lite chart: Streamlit gives a Plotly chart a new identity with every
    new point, and the chart went blank at each epoch as it was drawn anew (measured in Chromium)."""
    home = copy_home(churn_run, tmp_path, monkeypatch)
    s = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    try:
        s.update_run(churn_run["run_id"], status="running", progress={"epoch": 1, "epochs": 5, "fraction": 0.4})
    finally:
        s.close()
    at = open_page("views/training.py")

    assert not at.exception and charts(at) == []
    live = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert [(spec["title"], spec["encoding"]["x"]["scale"]["domain"]) for spec in live] == [
        ("Loss", [1, 5]),
        ("Accuracy", [1, 5]),
    ]


# -- Evaluation ----------------------------------------------------------------------------------------------
def test_evaluation_page_shows_the_classification_metrics_with_their_meanings_and_a_table_by_class(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    at = open_page("views/evaluation.py")

    m = churn_run["metrics"]
    assert (values(at.title), metrics(at)[:7]) == (  # then the decision's
        ["Evaluation"],
        [
            ("Accuracy", f"{m['accuracy']:.3f}"),
            ("Macro F1", f"{m['f1_macro']:.3f}"),
            ("ROC AUC", f"{m['roc_auc']:.3f}"),
            ("Log loss", f"{m['log_loss']:.3f}"),
            ("Average precision", f"{m['average_precision']:.3f}"),
            ("Brier score", f"{m['brier']:.3f}"),
            ("Calibration error", f"{m['ece']:.3f}"),
        ],
    )
    assert all(metric.help for metric in at.metric[:7])  # each says what it means in plain words
    assert [tab.label for tab in at.tabs] == [
        "Confusion matrix",
        "ROC curve",
        "Precision–recall",
        "Calibration",
        "Gain and lift",
    ]
    by_class = at.dataframe[0].value
    assert (list(by_class.columns), by_class["class"].tolist()) == (
        ["class", "precision", "recall", "F1", "test cases"],
        ["no", "yes"],
    )


def test_evaluation_page_shows_every_metric_by_segment_with_its_interval(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    at = open_page("views/evaluation.py")

    (slicer,) = [box for box in at.selectbox if box.label == "Slice the test rows by"]
    assert slicer.options == ["tenure", "plan", "charges"]
    slicer.select("plan").run()
    (table,) = [d.value for d in at.dataframe if "segment" in d.value.columns]
    assert list(table.columns) == ["segment", "test rows", "Accuracy", "Macro F1", "ROC AUC", "Positive rate"]
    assert sorted(table["segment"]) == ["basic", "plus", "premium"]
    assert table["test rows"].sum() == churn_run["metrics"]["test_rows"]
    assert all(re.fullmatch(r"\d\.\d{3}  \(\d\.\d{3}–\d\.\d{3}\)", cell) for cell in table["Accuracy"])
    chart = next(c for c in charts(at) if c["data"][0].get("error_x"))
    assert len(chart["data"][0]["y"]) == 3


def test_evaluation_page_lists_the_run_in_the_history_table(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    at = open_page("views/evaluation.py")

    table = at.dataframe[-1].value
    assert list(table.columns) == [
        "Run",
        "Dataset @ version",
        "Task",
        "Status",
        "Accuracy",
        "Macro F1",
        "ROC AUC",
        "Epochs",
        "Duration (s)",
        "Device",
        "Spec",
        "Model",
        "Gate override",
        "Created",
    ]
    assert table[["Run", "Task", "Status", "Accuracy", "Epochs", "Model"]].to_dict("records") == [
        {
            "Run": churn_run["run_id"],
            "Task": "Classification",
            "Status": "succeeded",
            "Accuracy": churn_run["metrics"]["accuracy"],
            "Epochs": 2,
            "Model": "churn/1",
        }
    ]


def test_evaluation_page_shows_the_regression_metrics(
    price_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, price_run["home"])
    at = open_page("views/evaluation.py")

    m = price_run["metrics"]
    assert metrics(at)[:3] == [
        ("RMSE", f"{m['rmse']:,.3f}"),
        ("MAE", f"{m['mae']:,.3f}"),
        ("R²", f"{m['r2']:,.3f}"),
    ]
    band = factories.cli_json(price_run["home"], "eval", str(price_run["run_id"]), "--tolerance", "10%")
    inside = band["metrics"]["tolerance_band"]["share_inside"]
    assert dict(metrics(at))["Within the band"] == f"{inside:.1%}", "10% of the true value by default"


# -- Playground ----------------------------------------------------------------------------------------------
def form_row(at: AppTest) -> dict[str, Any]:
    """What the Playground form would send: each feature's column (from its widget's key `f_RUN_COLUMN_EXAMPLE`;
    the label people read is the column's name written as words) and value."""
    widgets = [w for w in [*at.number_input, *at.selectbox] if w.key and w.key.startswith("f_")]
    return {w.key.split("_", 2)[2].rsplit("_", 1)[0]: w.value for w in widgets}


def test_playground_form_has_one_field_per_feature_column(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    at = open_page("views/playground.py")

    frame = factories.churn_frame()
    assert (values(at.title), form_row(at)) == (
        ["Playground"],
        {
            "tenure": int(round(frame["tenure"].median())),
            "charges": float(frame["charges"].median()),
            "plan": frame["plan"].value_counts().index[0],
        },
    )


def test_playground_predict_with_the_server_down_shows_one_line_error(
    churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    monkeypatch.setenv("MODELDECK_SERVING_URL", CLOSED_PORT_URL)
    at = open_page("views/playground.py")
    one(at.button, "Predict").click().run()

    assert (values(at.error), metrics(at)) == (
        [
            f"The inference server at {CLOSED_PORT_URL} is not answering. "
            "Start it with `modeldeck serve` (or `make run`)."
        ],
        [],
    )
    assert not at.exception


@pytest.fixture
def serving(churn_run: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """The real inference server over a copy of the churn home's exports (a server writes its request log into
    its home's database: the session's shared home stays as the other tests expect it); yields its REST URL once
    /healthz answers."""
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    home = tmp_path / "served"
    shutil.copytree(churn_run["home"], home)
    command = factories.serve_command(home, rest, grpc)
    with factories.running(command, log=tmp_path / "server.log", urls=[f"{url}/healthz"]):
        yield url


def test_playground_predict_with_the_server_up_shows_the_label_confidence_and_latency(
    churn_run: dict[str, Any], serving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    monkeypatch.setenv("MODELDECK_SERVING_URL", serving)
    run = stored_run(churn_run["home"], churn_run["run_id"])
    at = open_page("views/playground.py")
    row = form_row(at)
    one(at.button, "Predict").click().run()

    assert not at.exception
    (expected,), _ = client.predict([row], model=run.model_name, version=run.model_version, base_url=serving)
    shown = metrics(at)
    assert shown[:2] == [
        ("Predicted churn", str(expected["label"])),
        ("Confidence", f"{max(expected['probabilities']):.1%}"),
    ]
    assert (shown[2][0], shown[2][1].endswith(" ms"), float(shown[2][1].removesuffix(" ms")) > 0) == (
        "Latency",
        True,
        True,
    )
    assert (values(at.error), values(at.main.caption)[-1]) == (
        [],
        f"Served by model {run.model_name}, version {run.model_version}, over TensorFlow Serving's REST API.",
    )


def test_playground_names_the_classes_and_inputs_in_the_words_saved_for_the_run(
    churn_run: dict[str, Any], serving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, churn_run["home"])
    monkeypatch.setenv("MODELDECK_SERVING_URL", serving)
    run_id = churn_run["run_id"]
    at = open_page("views/playground.py")
    at.session_state[f"names_open_{run_id}"] = True  # the popover, opened
    at.run()
    at.text_input(key=f"cn_{run_id}_yes").input("Will leave")
    at.text_input(key=f"cn_{run_id}_no").input("Stays")
    at.text_input(key=f"col_{run_id}_tenure").input("Months as a customer")
    one(at.button, "Save names").click().run()
    try:
        assert not at.exception and values(at.error) == []
        labels = [w.label for w in at.number_input if w.key and w.key.startswith("f_")]
        assert "Months as a customer" in labels and "Tenure" not in labels
        one(at.button, "Predict").click().run()
        assert metrics(at)[0][0] == "Predicted churn" and metrics(at)[0][1] in ("Will leave", "Stays")
        bars = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Probability of each class")
        assert sorted(bars["data"][0]["y"]) == ["Stays", "Will leave"]

        assert at.session_state[f"names_open_{run_id}"] is False, "saved: the popover closes"
        at.session_state[f"names_open_{run_id}"] = True
        at.run()
        at.text_input(key=f"cn_{run_id}_no").input("Will leave")  # two classes, one name: refused, nothing changed
        one(at.button, "Save names").click().run()
        assert values(at.error) == [
            "Two classes would both read “Will leave”: give each class its own name, or leave one empty for its own "
            "value."
        ]
        assert stored_run(churn_run["home"], run_id).names["classes"] == {"yes": "Will leave", "no": "Stays"}
    finally:  # the module's other tests read the data's own words
        s = open_store(f"sqlite:///{churn_run['home'] / 'modeldeck.db'}")
        try:
            s.update_run(run_id, names={})
        finally:
            s.close()


# -- Chinese -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("views/data.py", "数据"),
        ("views/quality.py", "质量检查"),
        ("views/training.py", "训练"),
        ("views/evaluation.py", "评估"),
        ("views/playground.py", "体验场"),
    ],
)
def test_chinese_renders_the_page_title_in_chinese(home: Path, page: str, title: str) -> None:
    at = open_page(page, lang="zh")
    assert values(at.title) == [title]


def test_chinese_survives_switching_pages(home: Path) -> None:
    at = open_page("views/data.py", lang="zh")
    at.switch_page("views/training.py").run()
    at.switch_page("views/evaluation.py").run()

    assert not at.exception
    assert (values(at.title), values(at.info), at.selectbox(key="language_picker").value, at.query_params["lang"]) == (
        ["评估"],
        ["还没有完成的运行。请先训练一个模型。"],
        "zh",
        "zh",
    )


# -- Fixes, labeling, versions, kinds ----------------------------------------------------------------------
def test_quality_page_one_click_fix_makes_a_child_version(home: Path, store: Any) -> None:
    frame = factories.churn_frame()
    dataset, parent = factories.add_frame(store, pd.concat([frame, frame.head(3)], ignore_index=True))
    at = open_page("views/quality.py")
    one(at.button, "Drop the duplicate rows").click().run()

    versions = store.list_versions(dataset.id)
    assert [(v.parent_id, v.rows) for v in versions] == [(None, 243), (parent.id, 240)]
    assert values(at.success) == [
        "churn passes the quality gate.",
        "New version made: Dropped 3 duplicate rows (kept the first of each).",
    ]


def test_labeling_page_labels_unlabeled_rows_into_a_new_version(home: Path, store: Any) -> None:
    frame = factories.churn_frame()
    frame.loc[[4, 9], "churn"] = None
    dataset, parent = factories.add_frame(store, frame)
    at = open_page("views/labeling.py")
    one(at.selectbox, "Label").select("yes").run()
    one(at.button, "Set to yes").click().run()
    one(at.button, "Keep as it is").click().run()
    one(at.button, "Save 1 changes as a new version").click().run()

    child = store.list_versions(dataset.id)[-1]
    labels = datasets.load_frame(child)["churn"]
    assert (child.parent_id, data.note_text(child), labels.iloc[4], pd.isna(labels.iloc[9])) == (
        parent.id,
        "Relabelled 1 row of churn.",
        "yes",
        True,
    )


def test_labeling_page_queues_texts_with_two_labels(home: Path, store: Any) -> None:
    texts = [f"review number {i}: the tea arrived fresh, strong and fragrant" for i in range(60)]
    frame = pd.DataFrame({"review": texts, "label": ["great", "other"] * 30})
    frame.loc[20, "review"] = frame.loc[5, "review"]  # the same text, labelled great (row 20) and other (row 5)
    dataset, _ = factories.add_frame(store, frame, name="reviews", target="label")
    at = open_page("views/labeling.py")
    assert (dataset.kind, list(at.exception), [b.label for b in at.button if b.label == "Keep as it is"]) == (
        "text",
        [],
        ["Keep as it is"],
    )


def test_data_page_changes_the_kind_of_data(home: Path, store: Any) -> None:
    dataset, _ = factories.add_frame(store, factories.churn_frame())
    at = open_page()
    one(at.radio, "Kind of data").set_value("ratings").run()
    assert store.find_dataset(dataset.id).kind == "ratings"


def test_data_page_compares_versions(home: Path, store: Any) -> None:
    frame = factories.churn_frame()
    _, parent = factories.add_frame(store, pd.concat([frame, frame.head(3)], ignore_index=True))
    fixes.apply_remedy(store, version=parent, action="drop_duplicate_rows")
    at = open_page()
    assert ("Rows removed", "3") in metrics(at)


def test_an_image_dataset_shows_a_gallery_and_its_checks(home: Path, store: Any) -> None:
    datasets.add_sample(store, paths=config.paths(), sample="digits")
    at = open_page()
    assert len(at.get("image")) == 10  # one strip of thumbnails per class
    at.switch_page("views/quality.py").run()
    assert not at.exception
    assert values(at.success) == ["digits passes the quality gate."]


def test_an_image_fix_reuses_the_stored_files(home: Path, store: Any) -> None:
    dataset, parent = datasets.add_sample(store, paths=config.paths(), sample="digits")
    child = fixes.apply_remedy(store, version=parent, action="drop_rows", params={"rows": [0, 1, 2]})
    index = datasets.load_frame(child)
    assert (child.rows, child.parent_id, fixes.compare_versions(parent, child)["rows_removed"]) == (1794, parent.id, 3)
    assert all((config.paths().datasets / f).is_file() for f in index["file"].head(20))


def test_quality_page_offers_filling_in_a_mostly_empty_column(home: Path, store: Any) -> None:
    frame = factories.churn_frame()
    frame.loc[10:120, "charges"] = None
    dataset, parent = factories.add_frame(store, frame)
    at = open_page("views/quality.py")
    assert [b.label for b in at.button if b.key.startswith("fix_missing_values")] == [
        "Drop charges",
        "Fill in missing values of charges",
        "Drop rows with missing charges",
    ]
    one(at.button, "Fill in missing values of charges").click().run()
    assert datasets.load_frame(store.list_versions(dataset.id)[-1])["charges"].isna().sum() == 0


@pytest.mark.parametrize(
    ("make", "kind", "tasks"),
    [
        (lambda: factories.churn_frame(), "tabular", ["Classification", "Regression", "Semantic search"]),
        (
            lambda: factories.reviews_frame(),
            "text",
            ["Text classification", "Text generation", "Zero-shot labels", "Semantic search"],
        ),
        (lambda: factories.ratings_frame(), "ratings", ["Recommendation"]),
    ],
)
def test_training_offers_the_tasks_that_fit_the_kind_of_data(home: Path, store: Any, make, kind, tasks) -> None:
    frame = make()
    dataset, _ = factories.add_frame(store, frame, name=kind, target=frame.columns[-1] if kind != "ratings" else None)
    at = open_page("views/training.py")
    assert not at.exception
    assert (store.find_dataset(dataset.id).kind, one(at.radio, "Task").options) == (kind, tasks)


def test_training_form_shows_the_chosen_family_s_hyperparameters(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.reviews_frame(), name="reviews", target="score")
    at = open_page("views/training.py")
    one(at.radio, "Task").set_value("text-generation").run()
    assert not at.exception
    assert (one(at.selectbox, "Tokens").value, at.number_input(key="hp_text-generation_balanced_block_size").value) == (
        "char",
        128,
    )


def test_training_start_on_images_queues_image_classification(home: Path, store: Any) -> None:
    datasets.add_sample(store, paths=config.paths(), sample="digits")
    at = open_page("views/training.py")
    one(at.button, "Start training").click().run()
    assert not at.exception
    assert [(r.task, r.target, r.spec["architecture"]) for r in store.list_runs()] == [
        ("image-classification", "label", "cnn")
    ]


def test_training_starts_a_search_over_the_default_space(home: Path, store: Any) -> None:
    factories.add_frame(store, factories.churn_frame(), name="churn", target="churn")
    at = open_page("views/training.py")
    one(at.number_input, "Trials").set_value(3).run()
    one(at.button, "Start search").click().run()
    assert not at.exception
    (run,) = store.list_runs()
    assert (
        run.status,
        run.spec["search"]["method"],
        run.spec["search"]["trials"],
        sorted(run.spec["search"]["space"]),
    ) == (
        "queued",
        "random",
        3,
        ["dropout", "hidden_units", "learning_rate"],
    )
    assert "Hyperparameter search (random search): 0 of 3 trials done." in values(at.main.caption)
