"""Evaluation: metrics on the held-out test split, the curves behind them, and every run so far."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import services
from dashboard.common import pick_finished_run, store
from dashboard.i18n import t

st.title(t("evaluation.title"))
run = pick_finished_run(
    label=t("evaluation.run"),
    describe=lambda r: t("evaluation.run_label", id=r.id, dataset=services.dataset_label(store(), r)),
    none_text=t("evaluation.none"),
)
m, ev = run.metrics, run.evaluation
st.caption(t("evaluation.split", test=ev.get("rows", {}).get("test", "?"), train=ev.get("rows", {}).get("train", "?")))

if run.task == "classification":
    cols = st.columns(4)
    for col, key in zip(cols, ("accuracy", "f1_macro", "roc_auc", "log_loss"), strict=True):
        value = m.get(key)
        col.metric(t(f"metric.{key}"), "—" if value is None else f"{value:.3f}")
    base = ev.get("baseline", {}).get("accuracy")
    if base is not None:
        st.caption(t("evaluation.baseline_cls", acc=base))
    left, right = st.columns(2)
    classes, matrix = ev.get("classes", []), ev.get("confusion_matrix", [])
    fig = go.Figure(
        go.Heatmap(
            z=matrix, x=classes, y=classes, colorscale="Blues", text=matrix, texttemplate="%{text}", showscale=False
        )
    )
    fig.update_layout(
        title=t("evaluation.confusion"),
        xaxis_title=t("evaluation.predicted"),
        yaxis_title=t("evaluation.actual"),
        yaxis_autorange="reversed",
        height=420,
    )
    left.plotly_chart(fig, width="stretch")
    roc = go.Figure()
    for curve in ev.get("roc", []):
        roc.add_trace(go.Scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=str(curve["class"])))
    roc.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "grey"}, name=t("evaluation.chance")
        )
    )
    roc.update_layout(
        title=t("evaluation.roc"), xaxis_title=t("evaluation.fpr"), yaxis_title=t("evaluation.tpr"), height=420
    )
    right.plotly_chart(roc, width="stretch")
else:
    cols = st.columns(3)
    for col, key in zip(cols, ("rmse", "mae", "r2"), strict=True):
        value = m.get(key)
        col.metric(t(f"metric.{key}"), "—" if value is None else f"{value:,.3f}")
    base = ev.get("baseline", {}).get("rmse")
    if base is not None:
        st.caption(t("evaluation.baseline_reg", rmse=base))
    actual, predicted = ev.get("actual", []), ev.get("predicted", [])
    fig = go.Figure(
        go.Scatter(x=actual, y=predicted, mode="markers", marker={"opacity": 0.5}, name=t("evaluation.points"))
    )
    if actual:
        lo, hi = min(actual + predicted), max(actual + predicted)
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                line={"dash": "dash", "color": "grey"},
                name=t("evaluation.perfect"),
            )
        )
    fig.update_layout(
        title=t("evaluation.pred_vs_actual"),
        xaxis_title=t("evaluation.actual"),
        yaxis_title=t("evaluation.predicted"),
        height=460,
    )
    st.plotly_chart(fig, width="stretch")

st.subheader(t("evaluation.history"))
table = pd.DataFrame(services.runs_table(store())).dropna(axis=1, how="all")  # e.g. no RMSE without regression
table["status"] = table["status"].map(lambda s: t(f"status.{s}"))
table["task"] = table["task"].map(lambda s: t(f"task.{s}"))
st.dataframe(table.rename(columns=lambda c: t(f"runs.{c}")), width="stretch", hide_index=True)
