"""Scoring a whole file: every row through the model in batches, the same answers as the export called directly,
taken away as a formula-safe CSV or as Parquet, from the command line and from the Playground."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend import config, scoring
from backend.errors import BadInput
from tests import factories
from tests import test_pages as pages

FORMULAS = ["=cmd|' /C calc'!A0", "+1", "-2", "@x", "\tx", "\rx", "plain", "a=b"]


def _export(home: Path, run_id: int) -> Path:
    shown = factories.cli_json(home, "runs", "show", str(run_id))
    return home / "runs" / str(run_id) / "export" / shown["model_name"] / str(shown["model_version"])


def _rows(rows: int = 300, seed: int = 7) -> pd.DataFrame:
    """New churn rows to score, with a column the model does not take (kept in the result)."""
    frame = factories.churn_frame(rows, seed=seed).drop(columns="churn")
    return frame.assign(customer=[f"c{i}" for i in range(rows)])


def _local(home: Path, run_id: int) -> scoring.Predict:
    from backend import serving

    return serving.Predictor(_export(home, run_id)).raw


def _direct(home: Path, run_id: int, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    from backend import serving

    return serving.Predictor(_export(home, run_id)).raw(frame)


@pytest.fixture(scope="module")
def served_churn(churn_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real inference server over a copy of the churn home (a server writes its request log into its home's
    database: the session's shared home stays as the other tests expect it); yields its REST URL."""
    rest, grpc = factories.free_ports(2)
    url = f"http://127.0.0.1:{rest}"
    folder = tmp_path_factory.mktemp("scoring")
    home = folder / "home"
    shutil.copytree(churn_run["home"], home)
    with factories.running(
        factories.serve_command(home, rest, grpc), log=folder / "server.log", urls=[f"{url}/healthz"]
    ):
        yield url


# -- the scorer ------------------------------------------------------------------------------------------------
def test_rows_scored_through_the_server_equal_the_export_called_directly(
    churn_run: dict[str, Any], served_churn: str
) -> None:
    run = pages.stored_run(churn_run["home"], churn_run["run_id"])
    frame = _rows()
    progress: list[tuple[int, int]] = []
    scored = scoring.score(
        frame,
        predict=scoring.served(run.model_name, version=run.model_version, base_url=served_churn),
        batch_rows=128,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    direct = _direct(churn_run["home"], churn_run["run_id"], frame)
    assert list(scored.frame.columns) == ["tenure", "plan", "charges", "customer", "prediction", "probability"]
    pd.testing.assert_frame_equal(scored.frame[list(frame.columns)], frame)
    assert scored.frame["prediction"].tolist() == [v.decode() for v in direct["label"]]
    np.testing.assert_allclose(scored.frame["probability"], direct["probabilities"].max(axis=1), rtol=1e-6)
    assert (scored.answer, scored.classes, scored.rows) == ("prediction", True, 300)
    assert progress == [(128, 300), (256, 300), (300, 300)]


def test_the_local_export_scores_the_same_as_the_server(churn_run: dict[str, Any], served_churn: str) -> None:
    run = pages.stored_run(churn_run["home"], churn_run["run_id"])
    frame = _rows()
    by_server = scoring.score(frame, predict=scoring.served(run.model_name, base_url=served_churn))
    by_export = scoring.score(frame, predict=_local(churn_run["home"], churn_run["run_id"]))

    pd.testing.assert_frame_equal(by_server.frame, by_export.frame, rtol=1e-6)


def test_a_file_column_feeds_an_input_of_another_name(churn_run: dict[str, Any], served_churn: str) -> None:
    run = pages.stored_run(churn_run["home"], churn_run["run_id"])
    frame = _rows()
    renamed = frame.rename(columns={"plan": "tier"})
    scored = scoring.score(
        renamed, predict=scoring.served(run.model_name, base_url=served_churn), inputs={"plan": "tier"}
    )

    direct = _direct(churn_run["home"], churn_run["run_id"], frame)
    assert list(scored.frame.columns) == ["tenure", "tier", "charges", "customer", "prediction", "probability"]
    assert scored.frame["prediction"].tolist() == [v.decode() for v in direct["label"]]


def test_a_missing_input_column_is_bad_input_naming_it(churn_run: dict[str, Any], served_churn: str) -> None:
    run = pages.stored_run(churn_run["home"], churn_run["run_id"])
    predict = scoring.served(run.model_name, base_url=served_churn)

    with pytest.raises(BadInput, match=r"Missing input columns: plan\. Every row needs: "):
        scoring.score(_rows().drop(columns="plan"), predict=predict)


def test_a_regression_is_scored_with_its_value(price_run: dict[str, Any]) -> None:
    frame = factories.price_frame(50, seed=3).drop(columns="price")
    scored = scoring.score(frame, predict=_local(price_run["home"], price_run["run_id"]))

    direct = _direct(price_run["home"], price_run["run_id"], frame)
    assert (list(scored.frame.columns), scored.classes) == (["size", "city", "prediction"], False)
    np.testing.assert_allclose(scored.frame["prediction"], direct["value"].reshape(-1), rtol=1e-6)


def test_an_empty_file_is_bad_input() -> None:
    with pytest.raises(BadInput, match="The file has no rows to score"):
        scoring.score(pd.DataFrame({"tenure": []}), predict=lambda rows: {"value": np.zeros(len(rows))})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread has a niceness of its own on Linux")
def test_a_files_batches_are_prepared_below_the_thread_that_asked() -> None:
    """Background work, as training is: the dashboard's thread keeps its priority, its pages and the one-row
    requests come before a batch's JSON."""
    import threading

    seen: list[int] = []

    def predict(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return {"value": np.zeros(len(rows), "float32")}

    asking = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    scoring.score(pd.DataFrame({"tenure": range(50)}), predict=predict, batch_rows=10)

    assert set(seen) == {min(asking + config.SCORING_NICE, 19)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == asking


def test_image_bytes_are_left_out_and_taken_names_get_a_suffix() -> None:
    frame = scoring.read_rows(factories.shapes_zip(per_class=2), "shapes.zip", images=True)
    scored = scoring.score(
        frame.assign(prediction="mine"), predict=lambda rows: {"value": np.arange(len(rows), dtype="float32")}
    )

    assert list(scored.frame.columns) == ["file", "prediction", "prediction_2"]
    assert (scored.answer, scored.frame["file"].tolist()) == ("prediction_2", frame["file"].tolist())
    assert len(frame) == 6 and all(isinstance(b, bytes) for b in frame["image"])  # three shapes, two each


# -- the table out ---------------------------------------------------------------------------------------------
def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_escaped() -> None:
    frame = pd.DataFrame({"note": FORMULAS, "amount": [-2.5, 1, 2, 3, 4, 5, 6, 7], "=sum": ["x"] * 8})
    written = scoring.csv_bytes(frame)

    assert written.startswith(b"\xef\xbb\xbf")  # a byte-order mark: Excel reads the UTF-8 right
    back = pd.read_csv(io.BytesIO(written), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert back.to_dict("list") == {
        "note": ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@x", "'\tx", "'\rx", "plain", "a=b"],
        "amount": ["-2.5", "1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0"],
        "'=sum": ["x"] * 8,
    }
    assert frame["note"].tolist() == FORMULAS, "the table itself is left as it was"


def test_parquet_round_trip_keeps_every_value() -> None:
    frame = pd.DataFrame(
        {
            "note": FORMULAS,
            "mixed": [1, "a", 2.5, None, "b", 3, "c", "d"],
            "prediction": ["yes", "no"] * 4,
            "probability": np.linspace(0.5, 1, 8),
        }
    )
    back = pd.read_parquet(io.BytesIO(scoring.parquet_bytes(frame)))

    assert back["note"].tolist() == FORMULAS, "Parquet is not opened by spreadsheets: no escaping"
    assert back["mixed"].tolist() == ["1", "a", "2.5", pd.NA, "b", "3", "c", "d"]
    assert back["prediction"].tolist() == frame["prediction"].tolist()
    np.testing.assert_array_equal(back["probability"], frame["probability"])


def test_an_output_of_another_kind_is_refused_before_scoring(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"must end in one of \.csv, \.parquet"):
        scoring.check_output(tmp_path / "scored.xlsx")


# -- the command line ------------------------------------------------------------------------------------------
def test_cli_scores_a_file_into_a_csv_with_a_progress_bar(churn_run: dict[str, Any], tmp_path: Path) -> None:
    source, output = tmp_path / "new.csv", tmp_path / "scored.csv"
    frame = _rows(10_000).assign(note=FORMULAS * 1250)
    frame.to_csv(source, index=False, lineterminator="\r\n")  # CRLF: the cell holding a CR is quoted
    done = factories.cli(
        churn_run["home"], "predict", str(churn_run["run_id"]), "--input", str(source), "--output", str(output)
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("10,000 rows scored in ") and done.stdout.rstrip().endswith("bytes)")
    bars = [line for line in done.stderr.splitlines() if line.startswith("scoring [")]  # each \r read as a line end
    assert bars == [f"scoring [{'#' * 24}{'.' * 6}] 8,192/10,000 rows", f"scoring [{'#' * 30}] 10,000/10,000 rows"]
    back = pd.read_csv(output, keep_default_na=False, encoding="utf-8-sig")
    direct = _direct(churn_run["home"], churn_run["run_id"], frame)
    assert list(back.columns) == [*frame.columns, "prediction", "probability"]
    assert back["note"].tolist() == ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@x", "'\tx", "'\rx", "plain", "a=b"] * 1250
    assert back["prediction"].tolist() == [v.decode() for v in direct["label"]]
    np.testing.assert_allclose(back["probability"], direct["probabilities"].max(axis=1), rtol=1e-6)


def test_cli_scores_a_file_into_parquet_with_a_json_summary(churn_run: dict[str, Any], tmp_path: Path) -> None:
    source, output = tmp_path / "new.csv", tmp_path / "scored.parquet"
    _rows().to_csv(source, index=False)
    summary = factories.cli_json(
        churn_run["home"], "predict", str(churn_run["run_id"]), "--input", str(source), "--output", str(output)
    )

    back = pd.read_parquet(output)
    assert {k: v for k, v in summary.items() if k != "seconds"} == {
        "run_id": churn_run["run_id"],
        "rows": 300,
        "output": str(output.resolve()),
        "format": "parquet",
        "bytes": output.stat().st_size,
        "columns": ["tenure", "plan", "charges", "customer", "prediction", "probability"],
    }
    assert summary["seconds"] > 0
    assert back.drop(columns=["prediction", "probability"]).equals(pd.read_csv(source))


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "scored.xlsx",
            "error: Cannot write the scores to {folder}/scored.xlsx: the file name must end in one of .csv, .parquet."
            " Choose e.g. scored.csv or scored.parquet.",
        ),
        (
            "missing/scored.csv",
            "error: Cannot write the scores to {folder}/missing/scored.csv: no such folder. Choose another --output.",
        ),
    ],
)
def test_cli_refuses_an_output_it_cannot_write_in_one_line(
    churn_run: dict[str, Any], tmp_path: Path, output: str, message: str
) -> None:
    done = factories.cli(
        churn_run["home"], "predict", str(churn_run["run_id"]), "--input", str(churn_run["csv"]), "--output",
        str(tmp_path / output),
    )  # fmt: skip

    assert (done.returncode, done.stdout, done.stderr.strip().splitlines()[-1]) == (
        2,
        "",
        message.format(folder=tmp_path),
    )
    assert "scoring [" not in done.stderr, "refused before any row is scored"


def test_cli_scores_with_the_decision_once_a_threshold_is_chosen(churn_run: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(churn_run["home"], home)
    run_id = str(churn_run["run_id"])
    factories.cli_json(
        home, "decide", run_id, "--value-tp", "100", "--cost-fp", "10", "--cost-fn", "50", "--threshold", "0.3"
    )
    source, output = tmp_path / "new.csv", tmp_path / "scored.csv"
    _rows().to_csv(source, index=False)
    factories.cli_json(home, "predict", run_id, "--input", str(source), "--output", str(output))

    back = pd.read_csv(output, encoding="utf-8-sig")
    assert list(back.columns) == [*_rows().columns, "prediction", "probability", "decision", "threshold"]
    yes = np.where(back["prediction"] == "yes", back["probability"], 1 - back["probability"])
    assert back["threshold"].round(6).unique().tolist() == [0.3]
    assert back["decision"].tolist() == np.where(yes >= 0.3, "yes", "no").tolist()
    assert (back["decision"] != back["prediction"]).any(), "a threshold of 0.3 flags some the model calls no"


# -- the Playground --------------------------------------------------------------------------------------------
def test_playground_offers_to_score_a_file(churn_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pages.use_home(monkeypatch, churn_run["home"])
    at = pages.open_page("views/playground.py")

    assert [tab.label for tab in at.tabs] == ["One example", "Score a file"]
    assert [u.label for u in at.file_uploader] == ["A table (CSV, Excel or Parquet)"]
    assert pages.values(at.error) == []


def test_playground_scores_an_uploaded_file_through_the_server(
    churn_run: dict[str, Any], served_churn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.use_home(monkeypatch, churn_run["home"])
    monkeypatch.setenv("MODELDECK_SERVING_URL", served_churn)
    at = pages.open_page("views/playground.py")
    frame = _rows()
    at.file_uploader[0].upload("new.csv", factories.csv_bytes(frame), "text/csv").run()
    pages.one(at.button, "Score every row").click().run()

    assert not at.exception, [e.value for e in at.exception]
    direct = _direct(churn_run["home"], churn_run["run_id"], frame)
    labels = pd.Series([v.decode() for v in direct["label"]])
    shown = at.dataframe[0].value
    assert (list(shown.columns), shown["prediction"].tolist()) == (
        ["tenure", "plan", "charges", "customer", "prediction", "probability"],
        labels.head(len(shown)).tolist(),
    )
    (chart,) = pages.charts(at)
    bars = dict(zip(chart["data"][0]["x"], chart["data"][0]["y"], strict=True))
    assert bars == labels.value_counts().to_dict()
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Download Parquet"]
    assert pages.values(at.success)[0].startswith("300 rows scored in ")


def test_a_missing_number_travels_as_nan_not_null() -> None:
    """orjson writes the batches, and would write NaN as null, which TensorFlow Serving refuses for a number."""
    import orjson

    columns = {
        "missing": scoring._json_column(pd.Series([1.5, None]), "missing", "DT_FLOAT"),
        "whole": scoring._json_column(pd.Series([1, 2]), "whole", "DT_FLOAT"),
    }
    assert orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY) == b'{"missing":[1.5, NaN],"whole":[1.0,2.0]}'
