"""Score a whole file on a page: upload, every row through the inference server with a progress bar, a preview,
the answers' distribution and the table to download (backend/scoring.py does the work)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import jobs, scoring
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.charts import plotly_config
from dashboard.common import show_error
from dashboard.i18n import t

# The tasks that answer one row (a text, an image) with one answer.
TASKS = ("classification", "regression", "text-classification", "zero-shot", "image-classification")
TABLES = ["csv", "tsv", "txt", "xlsx", "xls", "parquet", "jsonl"]
PREVIEW_ROWS = 100


@st.cache_data(show_spinner=False, max_entries=4)
def _rows(content: bytes, filename: str, images: bool) -> pd.DataFrame:
    return scoring.read_rows(content, filename, images=images)


def _text_column(frame: pd.DataFrame, run: jobs.Run) -> dict[str, str] | None:
    """A text model reads `text`: the file's column that feeds it, picked (the `text` column, else the first)."""
    if not jobs.reads_text(run.task):
        return None
    columns = [str(c) for c in frame.columns]
    default = columns.index("text") if "text" in columns else 0
    picked = st.selectbox(t("scoring.text_column"), columns, index=default, key=f"score_text_{run.id}")
    return None if picked == "text" else {"text": picked}


def _distribution(scored: scoring.Scored) -> go.Figure:
    answers = scored.frame[scored.answer]
    if scored.classes:
        counts = answers.value_counts()
        figure = go.Figure(go.Bar(x=[str(c) for c in counts.index], y=counts.tolist()))
    else:
        figure = go.Figure(go.Histogram(x=answers.tolist()))
    figure.update_layout(
        title=t("scoring.distribution"), yaxis_title=t("scoring.rows"), height=320, margin={"t": 40, "b": 10}
    )
    return figure


def _score(run: jobs.Run, version: int | None, frame: pd.DataFrame, inputs: dict[str, str] | None) -> dict | None:
    """Every row through the inference server, the progress shown as it goes; None after an error (shown)."""
    assert run.model_name is not None, "a finished run with an export has a model name"
    bar = st.progress(0.0, text=t("scoring.progress", done=0, total=len(frame)))

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=t("scoring.progress", done=done, total=total))

    try:
        predict = scoring.served(run.model_name, version=version)
        scored = scoring.score(frame, predict=predict, inputs=inputs, on_progress=progress)
    except ModelDeckError as exc:
        bar.empty()
        show_error(exc)
        return None
    return {"scored": scored, "csv": scoring.csv_bytes(scored.frame), "parquet": scoring.parquet_bytes(scored.frame)}


def _show(result: dict[str, Any], stem: str) -> None:
    scored: scoring.Scored = result["scored"]
    st.success(t("scoring.done", rows=scored.rows, seconds=scored.seconds))
    st.markdown(t("scoring.preview", rows=min(PREVIEW_ROWS, scored.rows)))
    st.dataframe(scored.frame.head(PREVIEW_ROWS), hide_index=True, width="stretch", placeholder="—")
    st.plotly_chart(_distribution(scored), width="stretch", config=plotly_config())
    left, right = st.columns(2)
    left.download_button(
        t("scoring.download_csv"),
        result["csv"],
        file_name=f"{stem}-scored.csv",
        mime="text/csv",
        help=t("scoring.download_csv_help"),
        on_click="ignore",
    )
    right.download_button(
        t("scoring.download_parquet"),
        result["parquet"],
        file_name=f"{stem}-scored.parquet",
        mime="application/vnd.apache.parquet",
        on_click="ignore",
    )


def file_section(run: jobs.Run, *, version: int | None) -> None:
    """Upload a file and score every row with the run's model (`version` of it, as served now)."""
    st.subheader(t("scoring.title"))
    st.markdown(t("scoring.intro"))
    if run.task not in TASKS:
        st.info(t("scoring.not_supported", task=t(f"task.{run.task}")))
        return
    images = run.task == "image-classification"
    kind = "images" if images else "text" if jobs.reads_text(run.task) else "table"
    upload = st.file_uploader(t(f"scoring.upload_{kind}"), type=["zip"] if images else TABLES, key=f"score_{run.id}")
    if upload is None:
        return
    try:
        frame = _rows(upload.getvalue(), upload.name, images)
    except ModelDeckError as exc:
        show_error(exc)
        return
    inputs = _text_column(frame, run)
    key = (run.id, version, upload.file_id, str(inputs))
    if st.button(t("scoring.start"), type="primary", key=f"score_start_{run.id}"):
        result = _score(run, version, frame, inputs)
        st.session_state[state.SCORED] = {"key": key, "result": result} if result else None
    kept = st.session_state.get(state.SCORED)
    if kept and kept["key"] == key:
        _show(kept["result"], upload.name.rsplit(".", 1)[0])


def with_file_scoring(run: jobs.Run, *, version: int | None, one_example: Callable[[], None]) -> None:
    """The Playground's two tabs: one example (the page's form), and a whole file scored.

    The file's tab is drawn first: the form may stop the script (`st.stop()`) until it has an example.
    """
    if run.task not in TASKS:
        one_example()
        return
    single, whole = st.tabs([t("scoring.one_example"), t("scoring.title")])
    with whole:
        file_section(run, version=version)
    with single:
        one_example()
