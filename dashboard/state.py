"""Every session-state key in one place. What must survive a reload (the current dataset, the
language) is also kept in the URL; the current run is found again in the DB."""

from __future__ import annotations

import streamlit as st

LANG = "lang"
DATASET = "dataset_id"
RUN = "run_id"
UPLOAD_NONCE = "upload_nonce"
LIVE_RUN = "live_run"  # the run a live (auto-refreshing) view is following
FIXED = "fixed_note"  # what the last one-click fix did, shown once after the rerun
MEANING = "meaning_reports"  # {(version id, target, task): the quality report with the by-meaning checks}
LABELS = "pending_labels"  # {version id: {row: new label}} not yet saved as a version
LABEL_POSITION = "label_position"  # {version id: index in the labeling queue}
SCORED = "scored_file"  # the Playground's last scored file: {"key": (run, model version, upload), "result": ...}
DEMO = "demo"  # demo mode: only the use cases, nothing technical (kept in the URL: a demo link stays one)
USE_CASE = "use_case_id"  # the use case open on its page (kept in the URL, so a link opens it)
ADDED = "added_note"  # what the last upload or sample added, shown once after the rerun
PAGES = "pages"  # the pages in this session's menu (its role's, demo mode's): links go only there
PRESET = "training_preset"  # the Training page's preset: a widget's own state is dropped when its page is left


def init() -> None:
    st.session_state.setdefault(LANG, st.query_params.get("lang", "en"))
    dataset = st.query_params.get("dataset")
    st.session_state.setdefault(DATASET, int(dataset) if dataset and dataset.isdigit() else None)
    st.session_state.setdefault(RUN, None)
    st.session_state.setdefault(UPLOAD_NONCE, 0)
    st.session_state.setdefault(LIVE_RUN, None)
    st.session_state.setdefault(DEMO, st.query_params.get("demo") == "1")
    use_case = st.query_params.get("use_case")
    st.session_state.setdefault(USE_CASE, int(use_case) if use_case and use_case.isdigit() else None)
    _to_url()


def _to_url() -> None:
    """Moving between pages drops the query string, so put what must survive a reload back every run."""
    wanted = {"lang": st.session_state[LANG]}
    if st.session_state[DATASET] is not None:
        wanted["dataset"] = str(st.session_state[DATASET])
    if st.session_state[DEMO]:
        wanted["demo"] = "1"
    if st.session_state[USE_CASE] is not None:
        wanted["use_case"] = str(st.session_state[USE_CASE])
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def set_dataset(dataset_id: int | None) -> None:
    st.session_state[DATASET] = dataset_id
    st.session_state[RUN] = None
    if dataset_id is None:
        st.query_params.pop("dataset", None)
    else:
        st.query_params["dataset"] = str(dataset_id)


def set_lang(lang: str) -> None:
    st.session_state[LANG] = lang
    st.query_params["lang"] = lang


def set_demo(on: bool) -> None:
    st.session_state[DEMO] = on
    if on:
        st.query_params["demo"] = "1"
    else:
        st.query_params.pop("demo", None)


def open_use_case(use_case_id: int) -> None:
    st.session_state[USE_CASE] = use_case_id
    st.query_params["use_case"] = str(use_case_id)
