"""The Evaluation page's hand-over: the shown run's report as one HTML file and as a PDF (backend/jobs/report.py).

Each file is made when its button is pressed (Streamlit calls `data` then, off the script thread), so the page
pays nothing for them on every rerun; the store and the language are taken now, while the script runs.
"""

from __future__ import annotations

import streamlit as st

from backend import jobs
from backend.errors import ModelDeckError
from dashboard.common import store
from dashboard.i18n import lang, t


def downloads(run: jobs.Run) -> None:
    """Two download buttons, HTML and PDF, in the page's language; the PDF's is off, and says why, without Chromium."""
    st.subheader(t("report.download_title"))
    st.caption(t("report.download_intro"))
    s, language = store(), lang()
    name = f"modeldeck-run-{run.id}-{language}"
    try:
        jobs.pdf_printer()
        missing = None
    except ModelDeckError as exc:
        missing = exc.text(language)
    left, right, _ = st.columns([1, 1, 2])
    left.download_button(
        t("report.download_html"),
        data=lambda: jobs.report_html(s, run.id, lang=language),
        file_name=f"{name}.html",
        mime="text/html",
        on_click="ignore",
        icon=":material/description:",
        key="report_html",
    )
    right.download_button(
        t("report.download_pdf"),
        data=lambda: jobs.report_pdf(s, run.id, lang=language),
        file_name=f"{name}.pdf",
        mime="application/pdf",
        on_click="ignore",
        icon=":material/picture_as_pdf:",
        disabled=missing is not None,
        key="report_pdf",
    )
    if missing is not None:
        st.caption(missing)
