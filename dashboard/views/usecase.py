"""One use case, focused: the case in, the answer out, through the inference server, in business words.

A table model gets sliders and lists built from the training data's ranges and categories, the answer as they
move, and a what-if chart; a text its words that mattered; an image an upload or a sample photo; generation
writes as it goes; recommendations say what they follow from. Latency is shown per answer, except in demo mode.
"""

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from backend import jobs, playground, serving
from backend.errors import ModelDeckError
from dashboard import explain, state
from dashboard.charts import plotly_config, rule
from dashboard.common import readable, show_error, store
from dashboard.i18n import lang, t

WHAT_IF_POINTS = 25  # values of the moved input, from its smallest to its largest in the data
STREAM_TOKENS = 16  # generation is asked for this many tokens at a time, each piece shown as it comes

demo = st.session_state[state.DEMO]
opened = {u.id: u for u in store().use_cases(hidden=True)}.get(st.session_state[state.USE_CASE])
st.page_link("views/home.py", label=t("usecase.back"), icon=":material/arrow_back:")
if opened is None:
    st.info(t("usecase.none"))
    st.stop()
found = opened
try:
    run, stage = jobs.use_case_run(store(), found)
except ModelDeckError as exc:
    show_error(exc)
    st.stop()
st.title(found.title)
if found.description:
    st.markdown(found.description)
st.markdown(f"**{jobs.use_case_quality(run).text(lang())}**")


def ask(row: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """One answer through the inference server (the version that serves this use case), and its latency in ms;
    stops the page on an error."""
    assert run.model_name is not None
    try:
        answers, latency = serving.predict([row], model=run.model_name, version=run.model_version)
    except ModelDeckError as exc:
        show_error(exc)
        st.stop()
    return answers[0], latency


def predict_many(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert run.model_name is not None
    return serving.predict(rows, model=run.model_name, version=run.model_version, timeout=60)[0]


def show_answer(answer: dict[str, Any], latency: float) -> None:
    """The answer (the decision where one was chosen for the model), how sure it is, and how long it took."""
    if "value" in answer:
        st.metric(t("usecase.answer"), f"{float(answer['value']):,.2f}")
    else:
        st.metric(t("usecase.answer"), jobs.class_name(run, answer.get("decision", answer["label"])))
        st.caption(t("usecase.probability", probability=max(answer["probabilities"])))
    if not demo:
        st.caption(t("usecase.latency", ms=latency))


def inputs(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A widget per input, built from the training data: a slider over its range, a list of its categories."""
    row: dict[str, Any] = {}
    for field in fields:
        name, label, key = field["name"], field["label"], f"uc_{found.id}_{field['name']}"
        if field["kind"] == "numeric" and field["min"] is not None and field["max"] > field["min"]:
            low, high, start = field["min"], field["max"], field["default"]
            if field["integer"]:
                row[name] = st.slider(label, int(low), int(high), int(round(start)), key=key)
            else:
                row[name] = st.slider(label, float(low), float(high), float(start), key=key)
        elif field["kind"] == "numeric":
            row[name] = st.number_input(label, value=float(field["default"]), key=key)
        elif field["kind"] == "flag":
            row[name] = int(st.toggle(label, value=bool(field["default"]), key=key))
        elif field["kind"] == "date":
            picked = st.date_input(label, value=field["default"], key=key)
            row[name] = playground.write_date(picked, field["order"]) if picked else ""
        elif field["kind"] == "text":
            row[name] = st.text_area(label, key=key, height=90)
        else:
            row[name] = st.selectbox(label, field["options"], key=key)
    return row


def what_if(fields: list[dict[str, Any]], row: dict[str, Any], answer: dict[str, Any]) -> None:
    """One numeric input moved across its range, the rest as set: the answer at each value, in one request."""
    movable = [f for f in fields if f["kind"] == "numeric" and f["min"] is not None and f["max"] > f["min"]]
    if not movable:
        return
    st.subheader(t("usecase.whatif"))
    st.caption(t("usecase.whatif_help"))
    labels = {f["name"]: f["label"] for f in movable}
    name = st.selectbox(t("usecase.whatif_field"), list(labels), format_func=labels.__getitem__, key="whatif")
    field = next(f for f in movable if f["name"] == name)
    values = np.linspace(field["min"], field["max"], WHAT_IF_POINTS)
    if field["integer"]:
        values = np.unique(values.round()).astype(int)
    answers = predict_many([row | {name: v.item()} for v in values])
    if "value" in answer:
        ys, axis = [float(a["value"]) for a in answers], t("usecase.answer")
    else:
        label = answer.get("decision", answer["label"])
        index = list(answer["classes"]).index(label)
        ys = [float(a["probabilities"][index]) for a in answers]
        axis = t("usecase.chance", label=jobs.class_name(run, label))
    fig = go.Figure(go.Scatter(x=values, y=ys, mode="lines+markers", name=axis))
    rule(fig, x=row[name])
    fig.update_layout(xaxis_title=labels[name], yaxis_title=axis, height=360, margin={"t": 20})
    if "value" not in answer:
        fig.update_yaxes(range=[0, 1], tickformat=".0%")
    st.plotly_chart(fig, width="stretch", key="chart_whatif", config=plotly_config())


def table_view() -> None:
    fields = playground.playground_fields(store(), run)
    left, right = st.columns([2, 3])
    with left:
        st.subheader(t("usecase.inputs"))
        row = inputs(fields)
    with right:
        answer, latency = ask(row)
        show_answer(answer, latency)
        what_if(fields, row, answer)
    if not demo:
        explain.row_section(run, row, predict_many)


def text_view() -> None:
    typed = st.text_area(t("usecase.text"), placeholder=t("usecase.text_hint"), height=140, key=f"uc_text_{found.id}")
    if not typed.strip():
        st.stop()
    show_answer(*ask({"text": typed}))
    explain.text_section(run, typed, predict_many)


def image_view() -> None:
    upload = st.file_uploader(t("usecase.image"), type=["png", "jpg", "jpeg", "gif", "bmp"])
    key = f"uc_sample_{found.id}"
    if st.button(t("usecase.sample"), icon=":material/image:"):
        st.session_state[key] = st.session_state.get(key, -1) + 1
    data = upload.getvalue() if upload is not None else None
    if data is None and key in st.session_state:
        data, _ = playground.example_image(store(), run, st.session_state[key])
    if data is None:
        st.stop()
    left, right = st.columns([1, 2])
    left.image(data, width="stretch")
    with right:
        show_answer(*ask({"image": {"b64": base64.b64encode(data).decode()}}))
    explain.image_section(run, data, predict_many)


def pieces(prompt: str, settings: dict[str, Any], length: int) -> Iterator[str]:
    """The continuation as it is written: STREAM_TOKENS at a time, each asked for after the text so far."""
    assert run.model_name is not None
    written, asked = "", 0
    while asked < length:
        step = min(STREAM_TOKENS, length - asked)
        row = {"prompt": prompt + written, "max_new_tokens": step, **settings, "seed": settings["seed"] + asked}
        answers, _ = serving.predict([row], model=run.model_name, version=run.model_version, signature="generate")
        piece = str(answers[0]["text"])
        if not piece:
            return
        written += piece
        asked += step
        yield piece


def generation_view() -> None:
    prompt = st.text_area(t("usecase.prompt"), t("playground.prompt_default"), height=100)
    with st.expander(t("usecase.advanced"), expanded=False):
        a, b, c, d = st.columns(4)
        settings = {
            "temperature": a.slider(t("playground.temperature"), 0.0, 2.0, 0.8, 0.05),
            "top_k": b.slider(t("playground.top_k"), 0, 100, 40),
            "top_p": c.slider(t("playground.top_p"), 0.05, 1.0, 0.95, 0.05),
            "seed": 0,
        }
        length = d.slider(t("playground.length"), 16, 400, int(run.spec.get("max_new_tokens", 200)), 16)
    if st.button(t("usecase.write"), type="primary"):
        with st.container(border=True):
            st.markdown(f"**{prompt}**")
            try:
                st.write_stream(pieces(prompt, settings, length))
            except ModelDeckError as exc:
                show_error(exc)


def recommendation_view() -> None:
    users = playground.known_users(store(), run)
    user = st.selectbox(t("usecase.user"), users)
    answer, latency = ask({"user": str(user)})
    names = playground.item_names(store(), run)
    left, right = st.columns(2)
    left.subheader(t("usecase.picks"))
    left.markdown("\n".join(f"{i}. {names.get(item, item)}" for i, item in enumerate(answer["items"], 1)))
    right.subheader(t("usecase.because"))
    history = playground.user_history(store(), run, str(user))
    right.markdown("\n".join(f"- {value}" for value in history.iloc[:, 0].astype(str)))
    if not demo:
        st.caption(t("usecase.latency", ms=latency))


def search_view() -> None:
    """A question in; the rows that answer it, the closest first, as a list a stakeholder reads."""
    query = st.text_input(t("usecase.query"), placeholder=t("playground.query_hint"), key=f"uc_query_{found.id}")
    if not query.strip():
        st.stop()
    answer, latency = ask({"query": query})
    for text, score in zip(answer["text"], answer["score"], strict=True):
        with st.container(border=True):
            st.markdown(readable(str(text)))
            st.caption(t("usecase.similarity", score=float(score)))
    if not demo:
        st.caption(t("usecase.latency", ms=latency))


VIEWS = {
    "form": table_view,
    "text": text_view,
    "image": image_view,
    "prompt": generation_view,
    "user": recommendation_view,
    "query": search_view,
}
VIEWS[jobs.task_info(run.task).playground]()
