"""Playground: try a trained model on one example, through the inference server, as a client would."""

import base64
import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import jobs, playground, serving
from backend.errors import ModelDeckError
from dashboard import explain, scoring, state
from dashboard.charts import plotly_config
from dashboard.common import pick_finished_run, readable, show_error, store
from dashboard.i18n import t

st.title(t("playground.title"))
st.caption(t("playground.intro"))
run = pick_finished_run(
    label=t("playground.model"),
    describe=lambda r: t(
        "playground.model_label", name=r.model_name, version=r.model_version, id=r.id, task=t(f"task.{r.task}")
    ),
    none_text=t("playground.none"),
)
stage, served = playground.served_version(store(), run)  # the model's production version when it has one
target = jobs.names_given(run, "columns", run.target) or run.target  # as the run names it, else the column
names_slot = st.container()  # filled once the function below is defined: the names editor, above the forms


def ask(rows: list[dict], signature: str | None = None) -> dict:
    """One prediction through the inference server, with its latency shown; stops the page on an error."""
    assert run.model_name is not None, "a finished run with an export has a model name"
    try:
        predictions, latency = serving.predict(
            rows, model=run.model_name, version=None if stage else served, label=stage, signature=signature
        )
    except ModelDeckError as exc:
        show_error(exc)
        st.stop()
    st.session_state[f"latency_{run.id}"] = latency
    return predictions[0]


def predict_many(rows: list[dict]) -> list[dict]:
    """Many rows in one request (an explanation's variants); the latency shown stays the prediction's own."""
    assert run.model_name is not None, "a finished run with an export has a model name"
    return serving.predict(rows, model=run.model_name, version=None if stage else served, label=stage, timeout=60)[0]


def footer() -> None:
    latency = st.session_state.get(f"latency_{run.id}", 0)
    st.metric(t("playground.latency"), t("unit.ms", ms=latency), help=t("playground.latency_help"))
    if stage:
        st.caption(
            t("playground.served_by_stage", name=run.model_name, stage=t(f"models.stage.{stage}"), version=served)
        )
    else:
        st.caption(t("playground.served_by", name=run.model_name, version=run.model_version))


def show_classes(prediction: dict, target: str | None, actual: str | None = None) -> None:
    """The answer, in the names the run gives its classes (the server answers with the data's own values)."""
    name = lambda c: jobs.class_name(run, c)  # noqa: E731
    probabilities = dict(zip(map(name, prediction["classes"]), prediction["probabilities"], strict=True))
    left, right = st.columns([1, 2])
    left.metric(t("playground.label", target=target or ""), name(prediction["label"]))
    if actual is not None:  # a real row, unchanged: what really happened, beside the prediction
        left.metric(t("playground.actual", target=target or ""), name(actual))
    left.metric(t("playground.confidence"), f"{max(probabilities.values()):.1%}", help=t("playground.confidence_help"))
    if "decision" in prediction:  # a threshold or a cost matrix was chosen for this model: the export decides
        if "threshold" in prediction:
            threshold, positive = float(prediction["threshold"]), name(prediction["classes"][1])
            why = t("playground.decision_help", threshold=threshold, positive=positive)
        else:
            why = t("playground.decision_cost_help", cost=float(prediction["expected_cost"]))
        left.metric(t("playground.decision"), name(prediction["decision"]), help=why)
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
        height=120 + 30 * min(len(probabilities), 20),
        margin={"t": 40, "b": 10},
    )
    right.plotly_chart(fig, width="stretch", config=plotly_config())


def names_editor() -> None:
    """The words the run's classes and input columns are shown by, here and on its use case and Evaluation pages.

    A popover that closes once the names are saved (its open state is a widget's, set before it is drawn again).
    """
    classes = [str(c) for c in run.evaluation.get("classes") or []]
    table = jobs.task_info(run.task).playground == "form"
    if not classes and not table and not run.target:
        return
    key, closing = f"names_open_{run.id}", f"names_close_{run.id}"
    if st.session_state.pop(closing, False):
        st.session_state[key] = False
    popover = st.popover(
        t("playground.names"), icon=":material/badge:", help=t("playground.names_help"), key=key, on_change="rerun"
    )
    if not popover.open:
        return
    fields = playground.playground_fields(store(), run) if table else []
    if run.target:  # the column predicted: "Predicted churn" can read "Predicted: will this customer leave?"
        fields.append({"name": run.target})
    with popover, st.form(f"names_{run.id}", border=False):
        given: dict[str, dict[str, str]] = {"classes": {}, "columns": {}}
        if classes:
            st.markdown(f"**{t('playground.names_classes')}**")
            for value in classes:
                given["classes"][value] = st.text_input(
                    value,
                    jobs.names_given(run, "classes", value) or "",
                    placeholder=value,
                    key=f"cn_{run.id}_{value}",
                )
        if fields:
            st.markdown(f"**{t('playground.names_columns')}**")
            for field in fields:
                column = field["name"]
                given["columns"][column] = st.text_input(
                    column,
                    jobs.names_given(run, "columns", column) or "",
                    placeholder=jobs.humanise(column),
                    key=f"col_{run.id}_{column}",
                )
        if st.form_submit_button(t("playground.names_save"), type="primary"):
            try:
                jobs.rename_run(store(), run.id, **given)
            except ModelDeckError as exc:
                show_error(exc)
                return
            st.session_state[closing] = True
            st.toast(t("playground.names_saved"), icon=":material/check:")
            st.rerun()


def next_example() -> tuple[int | None, bool]:
    """The row the "fill with a real example" button points at (None before the first click), and whether it was
    clicked just now: the example is then predicted at once, beside what really happened."""
    key = f"example_{run.id}"
    clicked = st.button(t("playground.example"), help=t("playground.example_help"))
    if clicked:
        st.session_state[key] = st.session_state.get(key, -1) + 1
    return st.session_state.get(key), clicked


def as_filled(fresh: bool, given: Any) -> bool:
    """Whether the form still holds the real example as it was filled in (remembered on the click)."""
    key = f"filled_{run.id}"
    if fresh:
        st.session_state[key] = given
    return st.session_state.get(key) == given


def table_form() -> None:
    fields = playground.playground_fields(store(), run)
    index, fresh = next_example()
    example = playground.example_row(store(), run, index) if index is not None else None
    values = example.values if example is not None else {}
    if example is not None and example.empty:
        labels = {f["name"]: f["label"] for f in fields}
        st.caption(t("playground.stand_ins", names=", ".join(labels.get(n, n) for n in example.empty)))
    with st.form(f"predict_{run.id}"):
        st.markdown(t("playground.form", target=target))
        row: dict[str, Any] = {}
        columns = st.columns(3)
        for i, field in enumerate(fields):
            col, name = columns[i % 3], field["name"]
            value = values.get(name, field["default"])
            widget_key = f"f_{run.id}_{name}_{index}"
            if field["kind"] == "numeric":
                number = float(value if value is not None else field["default"])
                if field["integer"]:
                    row[name] = col.number_input(field["label"], value=int(round(number)), step=1, key=widget_key)
                else:
                    row[name] = col.number_input(field["label"], value=number, format="%.4g", key=widget_key)
            elif field["kind"] == "flag":
                on = col.toggle(
                    field["label"], value=bool(value if value is not None else field["default"]), key=widget_key
                )
                row[name] = int(on)
            elif field["kind"] == "date":
                day = playground.read_date(value, field["order"]) or field["default"]
                picked = col.date_input(field["label"], value=day, key=widget_key)
                row[name] = playground.write_date(picked, field["order"]) if picked else ""
            elif field["kind"] == "text":
                row[name] = col.text_area(field["label"], value=str(value or ""), height=100, key=widget_key)
            else:
                options = field["options"] if str(value) in field["options"] else [str(value), *field["options"]]
                row[name] = col.selectbox(field["label"], options, index=options.index(str(value)), key=widget_key)
        submitted = st.form_submit_button(t("playground.predict"), type="primary")
    actual = example.actual if example is not None and as_filled(fresh, row) else None
    if submitted or fresh:
        prediction = ask([row])
        if run.task == "classification":
            show_classes(prediction, target, actual)
        else:
            left, right = st.columns(2)
            left.metric(t("playground.value", target=target), f"{float(prediction['value']):,.2f}")
            if actual is not None:
                right.metric(t("playground.actual", target=target), actual)
        explain.row_section(run, row, predict_many)
        footer()


def text_form() -> None:
    index, fresh = next_example()
    text, label = playground.example_text(store(), run, index) if index is not None else ("", None)
    text = readable(text)
    with st.form(f"predict_{run.id}"):
        typed = st.text_area(t("playground.text"), text, height=150, key=f"text_{run.id}_{index}")
        submitted = st.form_submit_button(t("playground.predict"), type="primary")
    actual = label if as_filled(fresh, typed) else None
    if submitted or (fresh and typed.strip()):
        if not typed.strip():
            st.warning(t("playground.text_empty"))
            st.stop()
        show_classes(ask([{"text": typed}]), target, actual)
        explain.text_section(run, typed, predict_many)
        footer()


def search_form() -> None:
    """A question in, the rows closest in meaning out: each row's columns, with its similarity."""
    with st.form(f"search_{run.id}"):
        query = st.text_input(t("playground.query"), placeholder=t("playground.query_hint"), key=f"query_{run.id}")
        submitted = st.form_submit_button(t("playground.search"), type="primary")
    if not submitted:
        return
    if not query.strip():
        st.warning(t("playground.text_empty"))
        st.stop()
    found = ask([{"query": query}])  # TF Serving's row format: each output's top_k values, best first
    rank, similarity = t("playground.rank"), t("playground.similarity")
    rows = [json.loads(record) for record in found["record"]]
    table = pd.DataFrame([{rank: i + 1, similarity: round(found["score"][i], 3), **r} for i, r in enumerate(rows)])
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—")
    footer()


def image_form() -> None:
    index, _ = next_example()
    upload = st.file_uploader(t("playground.image"), type=["png", "jpg", "jpeg", "gif", "bmp"])
    data = upload.getvalue() if upload is not None else None
    actual = None
    if data is None and index is not None:
        data, actual = playground.example_image(store(), run, index)
    if data is None:
        st.info(t("playground.image_hint"))
        st.stop()
    left, right = st.columns([1, 3])
    left.image(data, width="stretch")
    with right:
        show_classes(ask([{"image": {"b64": base64.b64encode(data).decode()}}]), target, actual)
    explain.image_section(run, data, predict_many)
    footer()


def generation_form() -> None:
    with st.form(f"generate_{run.id}"):
        prompt = st.text_area(t("playground.prompt"), t("playground.prompt_default"), height=100)
        a, b, c, d = st.columns(4)
        temperature = a.slider(t("playground.temperature"), 0.0, 2.0, 0.8, 0.05, help=t("playground.temperature_help"))
        top_k = b.slider(t("playground.top_k"), 0, 100, 40, help=t("playground.top_k_help"))
        top_p = c.slider(t("playground.top_p"), 0.05, 1.0, 0.95, 0.05, help=t("playground.top_p_help"))
        length = d.slider(t("playground.length"), 10, 500, int(run.spec.get("max_new_tokens", 200)), 10)
        seed = a.number_input(t("playground.seed"), 0, 2**31 - 1, 0, help=t("playground.seed_help"))
        submitted = st.form_submit_button(t("playground.generate"), type="primary")
    if submitted:
        row = {
            "prompt": prompt,
            "max_new_tokens": length,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "seed": seed,
        }
        text = ask([row], signature="generate")["text"]
        with st.container(border=True):
            st.markdown(f"**{prompt}**{text}")
        footer()


def recommendation_form() -> None:
    users = playground.known_users(store(), run)
    left, right = st.columns(2)
    user = left.selectbox(t("playground.user"), users, help=t("playground.user_help"))
    typed = right.text_input(t("playground.new_user"), placeholder=t("playground.new_user_hint"))
    user = typed.strip() or user
    prediction = ask([{"user": str(user)}])
    if not prediction["known"]:
        st.info(t("playground.cold_start", user=user))
    names = playground.item_names(store(), run)
    had = playground.user_ratings(store(), run, str(user))  # a recommended one was held out for evaluation
    picks = pd.DataFrame(
        {
            t("playground.rank"): range(1, len(prediction["items"]) + 1),
            t("playground.item"): [names.get(i, i) for i in prediction["items"]],
            t("playground.score"): prediction["scores"],
            t("playground.held_out"): [had.get(i, "") if i in had else "" for i in prediction["items"]],
        }
    )
    history = playground.user_history(store(), run, str(user))
    left, right = st.columns(2)
    left.subheader(t("playground.recommended"))
    left.dataframe(picks, hide_index=True, width="stretch", placeholder="—")
    right.subheader(t("playground.history"))
    right.dataframe(
        history.rename(columns=lambda c: t(f"playground.h_{c}")), hide_index=True, width="stretch", placeholder="—"
    )
    footer()


if not st.session_state[state.DEMO]:
    with names_slot:
        names_editor()
FORMS = {
    "form": table_form,
    "text": text_form,
    "image": image_form,
    "prompt": generation_form,
    "user": recommendation_form,
    "query": search_form,
}
scoring.with_file_scoring(run, version=served, one_example=FORMS[jobs.task_info(run.task).playground])
