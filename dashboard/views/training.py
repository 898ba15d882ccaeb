"""Training: pick a preset or edit hyperparameters, start a job on the worker, watch it live."""

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from backend import runs
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.common import report, require_dataset, require_target, show_error, store
from dashboard.i18n import check_text, t

ACTIVE = ("queued", "running")
PRESETS = ["fast", "balanced", "thorough"]

st.title(t("training.title"))
dataset, version = require_dataset()
require_target(version)
st.caption(t("training.for", name=dataset.name, target=version.target, task=t(f"task.{version.task}")))

# 1. The gate: a failing blocker disables Start unless the user types a reason to override it.
blockers = [
    c
    for c in report(version.id, version.target, version.task)["checks"]
    if c["severity"] == "blocker" and not c["passed"]
]
override = ""
if blockers:
    st.error(t("training.blocked", reason=check_text(blockers[0], "message")), icon=":material/block:")
    override = st.text_input(t("training.override"), placeholder=t("training.override_hint"))

# 2. Hyperparameters: a preset fills the form; every field can be edited.
preset = st.radio(t("training.preset"), PRESETS, index=1, horizontal=True, format_func=lambda p: t(f"preset.{p}"))
values = runs.preset_values(preset)
with st.expander(t("training.hyperparameters"), expanded=False):
    a, b, c = st.columns(3)
    hidden = a.text_input(t("hp.hidden_units"), ",".join(map(str, values["hidden_units"])), key=f"hu_{preset}")
    epochs = b.number_input(t("hp.epochs"), 1, 1000, values["epochs"], key=f"ep_{preset}")
    batch = c.number_input(t("hp.batch_size"), 1, 65536, values["batch_size"], key=f"bs_{preset}")
    lr = a.number_input(t("hp.learning_rate"), 1e-6, 1.0, values["learning_rate"], format="%.5f", key=f"lr_{preset}")
    dropout = b.slider(t("hp.dropout"), 0.0, 0.9, float(values["dropout"]), 0.05, key=f"do_{preset}")
    early = c.checkbox(t("hp.early_stopping"), values["early_stopping"], key=f"es_{preset}")
    st.caption(t("training.cli_hint"))

if st.button(t("training.start"), type="primary", disabled=bool(blockers) and not override.strip()):
    overrides = {
        "hidden_units": hidden,
        "epochs": epochs,
        "batch_size": batch,
        "learning_rate": lr,
        "dropout": dropout,
        "early_stopping": early,
    }
    try:
        run = runs.start_training(
            store(), version=version, preset=preset, overrides=overrides, override_reason=override or None
        )
    except ModelDeckError as exc:
        show_error(exc)
    else:
        st.session_state[state.RUN] = run.id
        st.rerun()

# 3. The run: the one just started, or after a reload the newest run on this dataset.
version_ids = [v.id for v in store().list_versions(dataset.id)]
run = store().get_run(st.session_state[state.RUN]) if st.session_state[state.RUN] else None
if run is None or run.version_id not in version_ids:
    run = runs.latest_run(store(), version_ids=version_ids)
if run is None:
    st.info(t("training.no_runs"))
    st.stop()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes < 60 else f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def curves_figure(run_id: int, task: str):
    data = runs.curves(store(), run_id=run_id)
    metric = "accuracy" if task == "classification" else "mae"
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("training.loss"), t(f"metric.{metric}")))
    for col, name, title in ((1, "loss", t("training.loss")), (2, metric, t(f"metric.{metric}"))):
        for prefix, dash in (("", "solid"), ("val_", "dot")):
            points = data.get(prefix + name, [])
            if points:
                fig.add_trace(
                    go.Scatter(
                        x=[e + 1 for e, _ in points],
                        y=[v for _, v in points],
                        mode="lines+markers",
                        name=t("training.train_curve" if not prefix else "training.val_curve") + f" · {title}",
                        line={"dash": dash},
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title_text=t("training.epoch"), dtick=1)
    fig.update_layout(height=340, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def show(run_id: int) -> None:
    run = runs.get_run(store(), run_id)
    head, buttons = st.columns([4, 1])
    head.subheader(t("training.run", id=run.id, status=t(f"status.{run.status}")))
    if run.override_reason:
        head.caption(t("training.overridden", reason=run.override_reason))
    p = run.progress
    if run.status in ACTIVE:
        if buttons.button(t("training.cancel"), key=f"cancel_{run.id}"):
            runs.cancel(store(), run_id=run.id)
            st.rerun()  # the whole app: scope="fragment" raises when the click lands in a full-app run
        if run.status == "queued":
            st.info(t("training.queued"))
        fraction = float(p.get("fraction", 0.0))
        st.progress(
            fraction,
            text=t(
                "training.progress",
                epoch=min(p.get("epoch", 0) + 1, p.get("epochs", 1)),
                epochs=p.get("epochs", run.spec.get("epochs")),
                pct=int(fraction * 100),
                eta=duration(p.get("eta_s")),
                rate=p.get("samples_per_s", 0),
            ),
        )
    elif run.status == "interrupted":
        st.warning(t("training.interrupted", epochs=run.epochs_done))
        if buttons.button(t("training.resume"), key=f"resume_{run.id}", type="primary"):
            runs.resume(store(), run_id=run.id)
            st.rerun()
    elif run.status == "failed":
        st.error(t("training.failed", error=run.error or ""))
    elif run.status == "cancelled":
        st.info(t("training.cancelled", epochs=run.epochs_done))
    elif run.status == "succeeded":
        m = run.metrics
        headline = (
            t("training.done_cls", acc=m.get("accuracy", 0), auc=m.get("roc_auc") or 0)
            if run.task == "classification"
            else t("training.done_reg", rmse=m.get("rmse", 0), r2=m.get("r2") or 0)
        )
        st.success(headline + " " + t("training.done_time", time=duration(run.duration_s), device=run.device))
        for finding in run.evaluation.get("diagnostics", []):
            st.warning(t(f"diagnosis.{finding['id']}", **finding["params"]), icon=":material/troubleshoot:")
        st.page_link("views/evaluation.py", label=t("training.see_evaluation"), icon=":material/analytics:")
    if run.epochs_done:
        st.plotly_chart(curves_figure(run.id, run.task), width="stretch", key=f"curves_{run.id}")
    st.caption(t("training.device", device=run.device or "…", spec=", ".join(f"{k}={v}" for k, v in run.spec.items())))
    if run.status not in ACTIVE and st.session_state.get(state.LIVE_RUN) == run.id:
        st.session_state[state.LIVE_RUN] = None
        st.rerun(scope="app")  # drop the timer once the run is over


@st.fragment(run_every=1.0)
def live(run_id: int) -> None:
    st.session_state[state.LIVE_RUN] = run_id
    show(run_id)


if run.status in ACTIVE:
    live(run.id)
else:
    show(run.id)
