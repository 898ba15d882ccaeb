"""Dates, yes/no flags and free text in a table: recognised on upload, and read by both table families through
the same graph ops in training and in the export (`models/columns.py`, `models/derived.py`)."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import roc_auc_score

from backend.data import datasets, kinds
from models import derived, tabular, trees
from models.columns import date_order
from models.spec import TabularSpec
from models.task import TaskData
from tests import factories
from tests import test_pages as pages

_BAD = ["slow delivery", "asked for a refund", "support never answered", "broken on arrival"]
_GOOD = ["great value", "love the app", "fast and friendly", "works as promised"]
_FILLER = ["the", "order", "came", "on", "a", "tuesday", "and", "my", "plan", "is", "fine"]


def customer_table(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Churn explained only by a free-text review and the signup month: December signups and complaints leave."""
    rng = np.random.default_rng(seed)
    dates = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, rows), unit="D")
    bad = rng.random(rows) < 0.4
    reviews = [
        " ".join(rng.choice(_FILLER, 6)) + ". " + str(rng.choice(_BAD if b else _GOOD)).capitalize() + "." for b in bad
    ]
    logit = -1.5 + 2.5 * bad + 2.0 * (dates.month == 12)
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "paperless": rng.choice(["Yes", "No"], rows),
            "signup_date": [d.strftime("%m/%d/%Y") for d in dates],
            "review": reviews,
            "churn": np.where(churn, "yes", "no"),
        }
    )


@pytest.mark.parametrize(
    ("values", "order"),
    [
        (["2024-03-05", "2024-12-31 14:30", "1999-01-01T08:00:00Z"], "ymd"),
        (["03/05/2024", "12/25/2024", "1/2/24"], "mdy"),
        (["13/05/2024", "01/02/2024", "31.12.2023"], "dmy"),
        (["A-1-2", "B-2-3"], None),  # codes
        (["20240305", "20240306"], None),  # digits alone could be anything
        (["2024-03-05", "soon", "later", "2024-03-06"], None),  # half of them are not dates
        (["2024-13-45", "2024-14-40"], None),  # no such months
    ],
)
def test_a_date_column_is_recognised_with_its_field_order(values: list[str], order: str | None) -> None:
    assert date_order(pd.Series(values * 5 + [None])) == order


def test_the_calendar_graph_agrees_with_pandas_on_any_date_and_time() -> None:
    rng = np.random.default_rng(0)
    when = pd.Timestamp("1900-01-01") + pd.to_timedelta(rng.integers(0, 200 * 365 * 24 * 60, 3000), unit="min")
    expected = np.stack(
        [
            when.year,
            when.month,
            when.day,
            when.dayofweek,
            when.hour,
            (when - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1),
        ],
        axis=1,
    )
    for order, pattern in (("ymd", "%Y-%m-%d %H:%M"), ("mdy", "%m/%d/%Y %H:%M"), ("dmy", "%d.%m.%Y %H:%M:%S")):
        parts = derived.calendar(tf.constant([w.strftime(pattern) for w in when]), order).numpy()
        np.testing.assert_allclose(parts[:, :5], expected[:, :5])
        np.testing.assert_allclose(parts[:, 5], expected[:, 5], atol=2e-3)  # float32 days carry the minutes
    unreadable = derived.calendar(tf.constant(["", "soon", "2024-02-30x", "2024-13-01", "2024-01-01 25:00"]), "ymd")
    assert np.isnan(unreadable.numpy()).all()


def test_text_weights_are_scikit_learns_tfidf_over_the_kept_words() -> None:
    texts = pd.Series(["Great product, slow delivery!", "great value", "Terrible. SLOW!", None, "很好的产品"] * 4)
    vocabulary = derived.vocabulary(texts)
    assert vocabulary["words"][:2] == ["great", "slow"] and "好" in vocabulary["words"]  # Han, one by one
    ours = derived.derive_frame(pd.DataFrame({"t": texts}), {}, {"t": vocabulary})
    theirs = TfidfVectorizer(vocabulary=vocabulary["words"], token_pattern=r"(?u)\b\w+\b")
    reference = theirs.fit_transform(texts.fillna("").str.replace(r"(\p{Han})", r" \1 ", regex=True)).toarray()
    np.testing.assert_allclose(np.stack(list(ours.values()), axis=1), reference, atol=1e-6)
    assert list(ours)[:2] == ["t[great]", "t[slow]"]


def test_flags_dates_and_free_text_are_recognised_on_upload_and_a_wide_table_with_text_stays_a_table() -> None:
    frame = customer_table(rows=200)
    frame["active"] = np.where(np.arange(200) % 3, "TRUE", "false")
    frame["coupon"] = np.where(np.arange(200) % 2, "Y", None)
    profiled = {c.name: c.kind for c in datasets.profile(frame)}
    assert profiled == {
        "tenure": "numeric",
        "paperless": "boolean",
        "signup_date": "date",
        "review": "text",
        "churn": "boolean",
        "active": "boolean",
        "coupon": "boolean",
    }
    columns = [c.to_dict() for c in datasets.profile(frame)]
    assert kinds.infer(columns) == "tabular"  # a customer table that holds a review, not a review table
    texts_only = frame[["review", "churn"]]
    assert kinds.infer([c.to_dict() for c in datasets.profile(texts_only)]) == "text"


@pytest.fixture(scope="module")
def customers() -> tuple[TaskData, pd.DataFrame]:
    frame = customer_table()
    columns = [c.to_dict() for c in datasets.profile(frame)]
    return TaskData(frame=frame, roles={"target": "churn"}, columns=columns, task="classification"), frame


@functools.lru_cache(maxsize=2)
def _signature(path: Path) -> Any:
    """An export's serving signature, loaded once per test (each test exports to a folder of its own)."""
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def _served(path: Path, rows: pd.DataFrame, plan: tabular.Plan) -> np.ndarray:
    inputs = {k: tf.constant(v) for k, v in tabular.raw_inputs(rows, plan).items()}
    return _signature(path)(**inputs)["probabilities"].numpy()


def test_trees_learn_from_dates_and_text_and_the_export_reads_them_as_written(customers, tmp_path: Path) -> None:
    data, frame = customers
    prepared = trees.prepare(data, spec=TabularSpec(architecture="gbt", num_trees=80))
    plan = tabular.Plan.from_dict(prepared.plan)
    assert (plan.dates, list(plan.texts), plan.categorical) == ({"signup_date": "mdy"}, ["review"], ["paperless"])
    assert prepared.fit is not None and prepared.evaluate is not None
    model, _ = prepared.fit()
    prepared.export(model, tmp_path / "export")
    rows = frame.sample(300, random_state=1).reset_index(drop=True)
    rows.loc[:9, "signup_date"] = "not a date"  # routed as missing, as in training
    served = _served(tmp_path / "export", rows, plan)[:, 1]
    np.testing.assert_allclose(served, model.predict(trees.tree_inputs(rows, plan)), atol=1e-5)
    metrics, details = prepared.evaluate(tmp_path / "export")
    assert metrics["roc_auc"] > 0.72, metrics  # the only signal is in the review and the signup month
    assert (details["features"]["date"], details["features"]["text"]) == (["signup_date"], ["review"])


def network_export(data: TaskData, spec: TabularSpec, folder: Path) -> tuple[tabular.Plan, dict[str, Any]]:
    """The network trained and exported to `folder`, seeded as the engine seeds a run: its plan and test metrics."""
    import keras

    keras.utils.set_random_seed(0)
    prepared = tabular.prepare(data, spec=spec, batch_size=64)
    assert isinstance(prepared, tabular.Prepared) and prepared.build is not None and prepared.evaluate is not None
    net = prepared.build()
    net.fit(prepared.train, validation_data=prepared.validation, epochs=spec.epochs, verbose=0)
    prepared.export(net, folder)
    return tabular.Plan.from_dict(prepared.plan), prepared.evaluate(folder)[0]


def test_the_network_learns_from_dates_and_text_through_its_export(customers, tmp_path: Path) -> None:
    data, frame = customers
    spec = TabularSpec(architecture="mlp", epochs=15, text_encoding="words")  # by meaning: test_meaning_features
    plan, metrics = network_export(data, spec, tmp_path / "export")
    assert metrics["roc_auc"] > 0.72, metrics
    probe = pd.DataFrame(
        {
            "tenure": [12, 12, 12],
            "paperless": ["Yes"] * 3,
            "signup_date": ["06/10/2023", "12/10/2023", "06/10/2023"],
            "review": ["Great value.", "Great value.", "Asked for a refund, slow delivery."],
        }
    )
    june, december, complaint = _served(tmp_path / "export", probe, plan)[:, 1]
    assert december > june + 0.2 and complaint > june + 0.2, (june, december, complaint)
    assert roc_auc_score(frame["churn"] == "yes", _served(tmp_path / "export", frame, plan)[:, 1]) > 0.72


@pytest.fixture(scope="module")
def customer_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home with the customer table uploaded and a small trees run on it, through a real worker."""
    home = tmp_path_factory.mktemp("customers")
    customer_table().to_csv(home / "customers.csv", index=False)
    factories.cli_json(home, "data", "add", str(home / "customers.csv"), "--target", "churn")
    trees = ["architecture=gbt", "num_trees=30", "text_encoding=words"]  # by meaning: test_meaning_features
    run = factories.cli_json(home, "train", "customers", *(f"--set={value}" for value in trees), "--wait")
    assert run["status"] == "succeeded", run
    return {"home": home, "run_id": run["run_id"]}


def test_the_playground_asks_for_a_date_with_a_picker_and_for_text_in_a_box_and_the_model_reads_them(
    customer_home: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pages.use_home(monkeypatch, customer_home["home"])
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    monkeypatch.setenv("MODELDECK_SERVING_URL", url)
    at = pages.open_page("views/playground.py")
    latest = max(pd.to_datetime(customer_table()["signup_date"], format="%m/%d/%Y")).date()
    assert [(w.label, w.value) for w in at.date_input] == [("Signup date", latest)]
    assert [w.label for w in at.text_area] == ["Review"]
    at.date_input[0].set_value(dt.date(2024, 12, 24))
    at.text_area[0].input("Asked for a refund, slow delivery.")
    command = factories.serve_command(customer_home["home"], rest, grpc)
    with factories.running(command, log=tmp_path / "server.log", urls=[f"{url}/healthz"]):
        pages.one(at.button, "Predict").click().run()
    assert not at.exception and pages.values(at.error) == []
    assert pages.metrics(at)[0] == ("Predicted churn", "yes")  # a December signup who complains leaves
