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
LABELS = "pending_labels"  # {version id: {row: new label}} not yet saved as a version
LABEL_POSITION = "label_position"  # {version id: index in the labeling queue}
SCORED = "scored_file"  # the Playground's last scored file: {"key": (run, model version, upload), "result": ...}


def init() -> None:
    st.session_state.setdefault(LANG, st.query_params.get("lang", "en"))
    dataset = st.query_params.get("dataset")
    st.session_state.setdefault(DATASET, int(dataset) if dataset and dataset.isdigit() else None)
    st.session_state.setdefault(RUN, None)
    st.session_state.setdefault(UPLOAD_NONCE, 0)
    st.session_state.setdefault(LIVE_RUN, None)
    _to_url()


def _to_url() -> None:
    """Moving between pages drops the query string, so put what must survive a reload back every run."""
    wanted = {"lang": st.session_state[LANG]}
    if st.session_state[DATASET] is not None:
        wanted["dataset"] = str(st.session_state[DATASET])
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
