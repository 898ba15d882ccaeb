"""The Evaluation page's Deploy section: the run's export as a zip and as TFLite, each checked against the
SavedModel, and the models.config and `docker run` that serve every exported model with TensorFlow Serving.

The TFLite check runs TensorFlow in a process of its own (backend/jobs/deploy.py); its last result is kept
beside the run, so a reload shows it again without converting anything.
"""

from __future__ import annotations

import streamlit as st

from backend import jobs
from backend.errors import ModelDeckError
from dashboard.common import show_error, store
from dashboard.i18n import t

BINARY = "application/octet-stream"
MIME = {"savedmodel": "application/zip", "tflite": BINARY, "tflite-int8": BINARY}


def _status(check: jobs.FormatCheck) -> str:
    if check.refused is not None:
        return t("deploy.refused", reason=check.refused)
    if check.quantized is False:  # TFLite leaves weight tensors under 1,024 values in float
        return t("deploy.not_quantized")
    return t("deploy.ok")


def _table(checks: list[jobs.FormatCheck]) -> None:
    def number(value: float | None, shown: str) -> str:
        return "—" if value is None else shown.format(value)

    rows = [
        {
            t("deploy.col_format"): t(f"deploy.format.{c.format}"),
            t("deploy.col_size"): number(c.size_bytes and c.size_bytes / 1024, "{:,.1f} KB"),
            t("deploy.col_latency"): number(c.latency_ms, "{:.3f} ms"),
            t("deploy.col_difference"): number(c.max_difference, "{:.2g}"),
            t("deploy.col_status"): _status(c),
        }
        for c in checks
    ]
    st.dataframe(rows, hide_index=True, width="stretch", placeholder="—")
    st.caption(t("deploy.table_note", rows=max(c.rows for c in checks)))


def _downloads(run: jobs.Run, checks: list[jobs.FormatCheck]) -> None:
    made = [c for c in checks[1:] if c.file is not None]
    for column, check in zip(st.columns(max(len(made), 1)), made, strict=False):
        path = jobs.format_file(run, check)
        assert path is not None
        column.download_button(
            t("deploy.download", format=t(f"deploy.format.{check.format}")),
            data=path.read_bytes,
            file_name=f"{run.model_name}-{run.model_version}-{path.name}",
            mime=MIME[check.format],
            on_click="ignore",
            icon=":material/download:",
            key=f"deploy_{check.format}",
        )


def section(run: jobs.Run) -> None:
    """Deploy the shown run: its formats with their checks, and TensorFlow Serving's config and command."""
    st.subheader(t("deploy.title"))
    if run.status != "succeeded" or not run.model_version:
        st.info(t("deploy.no_export"))
        return
    s = store()
    st.download_button(
        t("deploy.savedmodel_zip"),
        data=lambda: jobs.savedmodel_zip(s, run.id).read_bytes(),
        file_name=f"{run.model_name}-{run.model_version}-savedmodel.zip",
        mime=MIME["savedmodel"],
        on_click="ignore",
        icon=":material/folder_zip:",
        key="deploy_zip",
    )
    st.caption(t("deploy.formats_intro"))
    checks = jobs.saved_formats(run)
    if st.button(t("deploy.check"), icon=":material/fact_check:", key="deploy_check"):
        with st.spinner(t("deploy.checking")):
            try:
                checks = jobs.check_formats(s, run.id)
            except ModelDeckError as exc:
                show_error(exc)
                return
    if checks:
        _table(checks)
        _downloads(run, checks)

    plan = jobs.serving_plan(s)
    st.markdown(t("deploy.serving_intro"))
    st.code("modeldeck export --serving-config serving/", language="bash")
    st.code(plan.config, language="protobuf")
    st.code(plan.command, language="bash")
    st.caption(t("deploy.labels_note"))
