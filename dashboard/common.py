"""Shared, cached access to the backend for every page."""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from backend import config, data, jobs, playground, quality
from backend.errors import ModelDeckError
from backend.playground import Store
from dashboard import state
from dashboard.i18n import lang, t


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:  # noqa: ARG001 (the URL is the cache key: one store per database)
    return playground.open_default_store()


@st.cache_resource(show_spinner=False)
def settle() -> None:
    """Once per process, after the first page: what is imported by then, frozen out of the garbage collector's way.

    pandas, plotly and the backend are hundreds of thousands of objects that live as long as the dashboard;
    each collection walked them all, under the lock every session's page needs.
    """
    gc.freeze()


def store() -> Store:
    return _store(config.database_url())


def paths() -> config.Paths:
    return config.paths()


@st.cache_data(show_spinner=False, max_entries=8)
def frame(version_id: int, path: str) -> pd.DataFrame:  # noqa: ARG001 (the path keys the cache too: ids restart per database)
    """A version's rows; versions never change, so the id and the path are a complete cache key."""
    version = store().get_version(version_id)
    assert version is not None, "versions are never deleted"
    return data.load_frame(version)


@st.cache_data(show_spinner=False, max_entries=32)
def _report(url: str, version_id: int, target: str | None, task: str | None) -> quality.Report:
    version = _store(url).get_version(version_id)
    assert version is not None, "versions are never deleted"
    return quality.check_version(_store(url), version=version, target=target, task=task)


def report(version_id: int, target: str | None, task: str | None) -> quality.Report:
    """A version's quality report. Version ids restart at 1 in every database, so the URL is in the key."""
    return _report(config.database_url(), version_id, target, task)


@st.cache_data(show_spinner=False, max_entries=64)
def _segments(url: str, run_id: int, column: str, ended: object) -> dict[str, Any]:  # noqa: ARG001 (keys the cache)
    run = _store(url).get_run(run_id)
    assert run is not None, "the caller has just read it"
    return jobs.segment_metrics(_store(url), run, column)


def segment_metrics(run: jobs.Run, column: str) -> dict[str, Any]:
    """`jobs.segment_metrics`, cached: a finished run's test predictions never change, and its bootstrap intervals
    were most of the Evaluation page's time. Its start and end key it too (an id a deleted run left can return)."""
    return _segments(config.database_url(), run.id, column, (run.created_at, run.finished_at))


@st.cache_data(show_spinner=False, max_entries=64)
def _gallery(
    url: str,
    run_id: int,
    actual: str | None,
    predicted: str | None,
    limit: int,
    ended: object,  # noqa: ARG001 (keys the cache)
) -> pd.DataFrame:
    run = _store(url).get_run(run_id)
    assert run is not None, "the caller has just read it"
    return jobs.gallery_rows(_store(url), run, actual=actual, predicted=predicted, limit=limit)


def gallery_rows(run: jobs.Run, *, actual: str | None, predicted: str | None, limit: int) -> pd.DataFrame:
    """`jobs.gallery_rows`, cached: a finished run's test answers and its dataset version never change, and the
    Evaluation page read both files, the whole dataset included, on every render."""
    return _gallery(config.database_url(), run.id, actual, predicted, limit, (run.created_at, run.finished_at))


@st.cache_data(show_spinner=False, max_entries=64)
def _decision_curve(
    url: str,
    run_id: int,
    costs: tuple[float, float, float, str],
    ended: object,  # noqa: ARG001 (keys the cache)
) -> dict[str, Any]:
    return jobs.decision_curve(_store(url), run_id, jobs.decision_costs(*costs))


def decision_curve(run: jobs.Run, costs: Any) -> dict[str, Any]:
    """`jobs.decision_curve`, cached: the same test scores and business values give the same curve."""
    key = (costs.value_tp, costs.cost_fp, costs.cost_fn, costs.currency)
    return _decision_curve(config.database_url(), run.id, key, (run.created_at, run.finished_at))


def current() -> tuple[data.Dataset, data.DatasetVersion] | None:
    """The dataset chosen on the Data page (or the newest one) and its newest version."""
    s = store()
    dataset_id = st.session_state.get(state.DATASET)
    dataset = s.find_dataset(dataset_id) if dataset_id is not None else None
    if dataset is None:
        all_datasets = s.list_datasets()
        if not all_datasets:
            return None
        dataset = all_datasets[-1]
        state.set_dataset(dataset.id)
    return dataset, s.list_versions(dataset.id)[-1]


def link(page: str, *, label: str, icon: str) -> None:
    """A link to another page, where this session's menu has it (a viewer has no Training page, say)."""
    if page in st.session_state.get(state.PAGES, ()):
        st.page_link(page, label=label, icon=icon)


def require_dataset() -> tuple[data.Dataset, data.DatasetVersion]:
    """Guard clause for pages that need a dataset."""
    chosen = current()
    if chosen is None:
        st.info(t("guard.no_dataset"))
        link("views/data.py", label=t("nav.data"), icon=":material/table_view:")
        st.stop()
    return chosen


def require_target(version: data.DatasetVersion) -> None:
    if version.target is None:
        st.info(t("guard.no_target"))
        link("views/data.py", label=t("nav.data"), icon=":material/table_view:")
        st.stop()


def show_error(exc: ModelDeckError) -> None:
    st.error(exc.text(lang()), icon=":material/error:")


PICKER_RUNS = 500  # the newest finished runs a picker offers (older ones: the Compare page's history)


def pick_finished_run(*, label: str, describe: Callable[[jobs.RunSummary], str], none_text: str) -> jobs.Run:
    """Guard and picker for pages that need a trained model: the run chosen last, else the newest.

    The picker lists summaries (one query, no evaluation details); only the chosen run is read in full.
    """
    finished, _ = store().run_summaries(status="succeeded", limit=PICKER_RUNS)
    done = {r.id: r for r in finished if r.model_name}  # not searches: they export no model of their own
    if not done:
        st.info(none_text)
        link("views/training.py", label=t("nav.training"), icon=":material/model_training:")
        st.stop()
    ids = list(done)
    preferred = st.session_state.get(state.RUN)
    run_id = st.selectbox(
        label, ids, index=ids.index(preferred) if preferred in ids else 0, format_func=lambda i: describe(done[i])
    )
    run = store().get_run(run_id)
    assert run is not None, "a listed run exists"
    return run


def show_history(rows: list[dict[str, Any]]) -> None:
    """Run-history rows (`playground.runs_table`) as a table in the reader's language; empty columns left out."""
    if not rows:
        st.caption(t("compare.no_runs"))
        return
    table = pd.DataFrame(rows).dropna(axis=1, how="all")  # e.g. no RMSE without regression
    table["status"] = table["status"].map(lambda s: t(f"status.{s}"))
    table["task"] = table["task"].map(lambda s: t(f"task.{s}"))
    st.dataframe(table.rename(columns=lambda c: t(f"runs.{c}")), width="stretch", hide_index=True, placeholder="—")


_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def readable(text: str) -> str:
    """A text as a person reads it: line breaks written as HTML (`<br />`, all over scraped reviews) become line
    breaks. The text models drop tags themselves, so a cleaned text is predicted as the raw one is."""
    return _LINE_BREAK.sub("\n", text)
