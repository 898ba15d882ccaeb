"""Evaluation: metrics on the held-out test split, the curves behind them, and every run so far."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import jobs, playground
from dashboard.common import pick_finished_run, store
from dashboard.i18n import t

st.title(t("evaluation.title"))
run = pick_finished_run(
    label=t("evaluation.run"),
    describe=lambda r: t("evaluation.run_label", id=r.id, dataset=playground.dataset_label(store(), r)),
    none_text=t("evaluation.none"),
)
m, ev = run.metrics, run.evaluation
st.caption(t("evaluation.split", test=ev.get("rows", {}).get("test", "?"), train=ev.get("rows", {}).get("train", "?")))


def metric_row(keys: tuple[str, ...], fmt: str = "{:.3f}") -> None:
    for col, key in zip(st.columns(len(keys)), keys, strict=True):
        value = m.get(key)
        col.metric(t(f"metric.{key}"), "—" if value is None else fmt.format(value))


def classifier() -> None:
    metric_row(("accuracy", "f1_macro", "roc_auc", "log_loss"))
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


def regressor() -> None:
    metric_row(("rmse", "mae", "r2"), "{:,.3f}")
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


def text_examples() -> None:
    examples = ev.get("examples", [])
    if examples:
        st.subheader(t("evaluation.examples"))
        table = pd.DataFrame(examples).rename(columns=lambda c: t(f"evaluation.col_{c}"))
        st.dataframe(table, width="stretch", hide_index=True)


def image_mistakes() -> None:
    mistakes = ev.get("mistakes", [])
    if not mistakes:
        return
    st.subheader(t("evaluation.mistakes"))
    thumbs = playground.image_thumbnails(store(), run, [item["index"] for item in mistakes])
    columns = st.columns(6)
    for i, (item, thumb) in enumerate(zip(mistakes, thumbs, strict=True)):
        caption = t("evaluation.mistake", label=item["label"], predicted=item["predicted"], conf=item["confidence"])
        columns[i % 6].image(thumb, caption=caption, width="stretch")


def recommender() -> None:
    k = m.get("k", 10)
    st.caption(t("evaluation.rec_split", users=m.get("test_users", "?"), k=k))
    metric_row(("ndcg_at_k", "precision_at_k", "recall_at_k", "rmse"))
    base = ev.get("baseline", {})
    keys = [key for key in ("ndcg_at_k", "precision_at_k", "recall_at_k") if base.get(key) is not None]
    if keys:
        fig = go.Figure()
        for name, values in ((t("evaluation.this_model"), m), (t("evaluation.popularity"), base)):
            fig.add_trace(
                go.Bar(x=[t(f"metric.{key}") for key in keys], y=[values.get(key) for key in keys], name=name)
            )
        fig.update_layout(title=t("evaluation.vs_popularity", k=k), barmode="group", height=380)
        st.plotly_chart(fig, width="stretch")


def generator() -> None:
    ppl, base = m.get("perplexity"), ev.get("baseline", {}).get("perplexity")
    left, right = st.columns(2)
    left.metric(t("metric.perplexity"), "—" if ppl is None else f"{ppl:,.2f}")
    if base is not None:
        right.metric(t("evaluation.unigram"), f"{base:,.2f}")
    st.caption(t("evaluation.perplexity_help"))
    for sample in ev.get("samples", []):
        with st.container(border=True):
            st.markdown(f"**{sample['prompt']}**{sample['text']}")


VIEWS = {  # the registry's chart names
    "classifier": classifier,
    "text_mistakes": text_examples,
    "image_mistakes": image_mistakes,
    "regression": regressor,
    "ranking": recommender,
    "generation": generator,
}
for chart in jobs.task_info(run.task).charts:
    VIEWS[chart]()

st.subheader(t("evaluation.history"))
table = pd.DataFrame(playground.runs_table(store())).dropna(axis=1, how="all")  # e.g. no RMSE without regression
table["status"] = table["status"].map(lambda s: t(f"status.{s}"))
table["task"] = table["task"].map(lambda s: t(f"task.{s}"))
st.dataframe(table.rename(columns=lambda c: t(f"runs.{c}")), width="stretch", hide_index=True)
