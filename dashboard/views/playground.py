"""Playground: try a trained model on one example, through the inference server, as a client would."""

import plotly.graph_objects as go
import streamlit as st

from backend import client, services
from backend.errors import ModelDeckError
from dashboard.common import pick_finished_run, show_error, store
from dashboard.i18n import t

st.title(t("playground.title"))
st.caption(t("playground.intro"))
run = pick_finished_run(
    label=t("playground.model"),
    describe=lambda r: t(
        "playground.model_label", name=r.model_name, version=r.model_version, id=r.id, target=r.target
    ),
    none_text=t("playground.none"),
)
fields = services.playground_fields(store(), run)

example_key = f"example_{run.id}"
if st.button(t("playground.example"), help=t("playground.example_help")):
    st.session_state[example_key] = st.session_state.get(example_key, -1) + 1
example = services.example_row(store(), run, st.session_state[example_key]) if example_key in st.session_state else {}

with st.form(f"predict_{run.id}"):
    st.markdown(t("playground.form", target=run.target))
    row, columns = {}, st.columns(3)
    for i, field in enumerate(fields):
        col, name = columns[i % 3], field["name"]
        value = example.get(name, field["default"])
        widget_key = f"f_{run.id}_{name}_{st.session_state.get(example_key, -1)}"
        if field["kind"] == "numeric":
            number = float(value) if value is not None else field["default"]
            if field["integer"]:
                row[name] = col.number_input(field["label"], value=int(round(number)), step=1, key=widget_key)
            else:
                row[name] = col.number_input(field["label"], value=number, format="%.4g", key=widget_key)
        else:
            options = field["options"] if str(value) in field["options"] else [str(value), *field["options"]]
            row[name] = col.selectbox(field["label"], options, index=options.index(str(value)), key=widget_key)
    submitted = st.form_submit_button(t("playground.predict"), type="primary")

if submitted:
    try:
        predictions, latency = client.predict([row], model=run.model_name, version=run.model_version)
    except ModelDeckError as exc:
        show_error(exc)
        st.stop()
    prediction = predictions[0]
    left, right = st.columns([1, 2])
    if run.task == "classification":
        probabilities = dict(zip(prediction["classes"], prediction["probabilities"], strict=True))
        left.metric(t("playground.label", target=run.target), str(prediction["label"]))
        left.metric(t("playground.confidence"), f"{max(probabilities.values()):.1%}")
        fig = go.Figure(
            go.Bar(
                x=list(probabilities.values()),
                y=list(probabilities),
                orientation="h",
                text=[f"{p:.1%}" for p in probabilities.values()],
                textposition="auto",
            )
        )
        fig.update_layout(
            title=t("playground.probabilities"),
            xaxis_range=[0, 1],
            xaxis_tickformat=".0%",
            height=120 + 40 * len(probabilities),
            margin={"t": 40, "b": 10},
        )
        right.plotly_chart(fig, width="stretch")
    else:
        left.metric(t("playground.value", target=run.target), f"{float(prediction['value']):,.2f}")
    left.metric(t("playground.latency"), f"{latency:.1f} ms")
    st.caption(t("playground.served_by", name=run.model_name, version=run.model_version))
