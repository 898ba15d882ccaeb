"""Why the model said that, as the pages show it: the columns a table model relies on, and for one prediction
the features, words or parts of an image that pushed it, in plain words (backend/jobs/explanations.py)."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from collections.abc import Callable
from typing import Any, TypeVar

import plotly.graph_objects as go
import streamlit as st

from backend import config, jobs
from backend.errors import ModelDeckError
from dashboard.charts import plotly_config
from dashboard.common import show_error, store
from dashboard.i18n import t

Found = TypeVar("Found", jobs.RowExplanation, jobs.TextExplanation, jobs.ImageExplanation)
TOP_FEATURES = 15  # bars in the importance chart
TOP_SENTENCES = 3  # pushes said in words under a chart
GREEN, RED = (44, 160, 44), (214, 39, 40)  # pushed towards the answer, pushed away from it


def _run(run_id: int) -> jobs.Run:
    found = store().get_run(run_id)
    assert found is not None, "runs are never deleted"
    return found


# Keyed by `_key`: the run, its model version and the database and server URLs (run ids restart in every
# database); `_predict`, the page's call to the inference server, stays out of the key.
Key = tuple[int, int | None, str, str]


def _key(run: jobs.Run) -> Key:
    return run.id, run.model_version, config.database_url(), config.serving_url()


@st.cache_data(show_spinner=False, max_entries=16)
def _reference(key: Key) -> dict[str, Any]:
    return jobs.reference_row(store(), _run(key[0]))


@st.cache_data(show_spinner=False, max_entries=64)
def _row(key: Key, row: dict[str, Any], _predict: jobs.Predict) -> jobs.RowExplanation:
    return jobs.explain_row(store(), _run(key[0]), row, predict=_predict, reference=_reference(key))


@st.cache_data(show_spinner=False, max_entries=64)
def _text(key: Key, text: str, _predict: jobs.Predict) -> jobs.TextExplanation:
    return jobs.explain_text(_run(key[0]), text, predict=_predict)


@st.cache_data(show_spinner=False, max_entries=16)
def _image(key: Key, image: bytes, _predict: jobs.Predict) -> jobs.ImageExplanation:
    return jobs.explain_image(_run(key[0]), image, predict=_predict)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def named(run: jobs.Run, found: Found) -> Found:
    """An explanation whose class reads as the run names it ("Will leave", not "1")."""
    if found.explained is None:
        return found
    return dataclasses.replace(found, explained=jobs.class_name(run, found.explained))


def _number(value: float) -> str:
    """A data value as people write it: 2007 (a year, not "2,007"), 39.1, 0.0123, 1,250,000."""
    return f"{value:.4g}" if abs(value) < 10_000 else f"{value:,.0f}"


def _plain(value: Any) -> str:
    """A data value as Markdown shows it literally (a price with `$`, a name with `*`)."""
    text = _number(value) if isinstance(value, int | float) else str(value)
    return _MARKDOWN.sub(r"\\\1", text)


def _shown(value: Any) -> str:
    return _number(value) if isinstance(value, int | float) else str(value) or "∅"


def _on_request(compute: Callable[[], Any], *, intro: str | None, button: str, running: str) -> Any:
    """What `compute` returns once the user asks for it with a button (seconds: it runs the export), else None.

    The button and its words go once the result is in; an error is shown in one line.
    """
    slot = st.empty()
    with slot.container():
        if intro:
            st.caption(t(intro))
        clicked = st.button(t(button), help=t(f"{button}_help"))
    if not clicked:
        return None
    with st.spinner(t(running)):
        try:
            found = compute()
        except ModelDeckError as exc:
            show_error(exc)
            return None
    slot.empty()
    return found


# -- Evaluation: what a table model relies on ---------------------------------------------------------------
def importance_chart(found: jobs.Importances) -> go.Figure:
    """Horizontal bars of the top columns' score drops, with the spread over the shuffles as error bars."""
    top = list(found.columns[:TOP_FEATURES])[::-1]  # the most relied on at the top
    metric = t(f"metric.{found.metric}")
    fig = go.Figure(
        go.Bar(
            x=[c.drop for c in top],
            y=[c.label for c in top],
            orientation="h",
            error_x={"type": "data", "array": [c.spread for c in top], "visible": True},
            marker_color=[f"rgb{GREEN}" if c.drop > 0 else "lightgrey" for c in top],
            hovertemplate=t("explain.importance_hover", feature="%{y}", drop="%{x:.3f}", metric=metric)
            + "<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title=t("explain.importance_axis", metric=metric), height=120 + 28 * len(top), margin={"t": 20}
    )
    return fig


def importance_section(run: jobs.Run) -> None:
    """The Evaluation page's "what the model relies on": kept results, else a button that computes them."""
    st.subheader(t("explain.importance_title"))
    found = jobs.saved_importance(run)
    if found is None:
        found = _on_request(
            lambda: jobs.feature_importance(store(), run.id),
            intro="explain.importance_intro",
            button="explain.importance_compute",
            running="explain.importance_running",
        )
        if found is None:
            return
    metric = t(f"metric.{found.metric}")
    st.caption(t("explain.importance_how", metric=metric, score=found.score, rows=found.rows, repeats=found.repeats))
    st.plotly_chart(importance_chart(found), width="stretch", key="chart_importance", config=plotly_config())
    lines = [
        t("explain.importance_line", feature=_plain(c.label), drop=c.drop, spread=c.spread, metric=metric)
        for c in found.columns[:TOP_SENTENCES]
        if c.drop > 0
    ]
    st.markdown("\n".join(f"- {line}" for line in lines) or t("explain.importance_none"))


# -- one table prediction -----------------------------------------------------------------------------------
def _amount(change: float, explained: str | None) -> str:
    return f"{abs(change) * 100:.1f}" if explained is not None else f"{abs(change):,.4g}"


def row_section(run: jobs.Run, row: dict[str, Any], predict: jobs.Predict) -> None:
    """Beside a table prediction: which features pushed it up or down, compared with a typical case.

    `predict` runs the model on many rows at once (the page's call to the inference server).
    """
    try:
        found = _row(_key(run), row, predict)
    except ModelDeckError as exc:
        show_error(exc)
        return
    found = named(run, found)
    st.subheader(t("explain.why_title"))
    if found.explained is not None:
        st.caption(t("explain.row_intro_class", cls=found.explained, typical=found.typical, score=found.score))
    else:
        st.caption(t("explain.row_intro_value", target=found.target, typical=found.typical, score=found.score))
    if not found.contributions:
        st.info(t("explain.row_typical"))
        return
    top = list(found.contributions[:TOP_FEATURES])[::-1]
    scale = 100 if found.explained is not None else 1
    fig = go.Figure(
        go.Bar(
            x=[c.change * scale for c in top],
            y=[f"{c.label} = {_shown(c.value)}" for c in top],
            orientation="h",
            marker_color=[f"rgb{GREEN if c.change > 0 else RED}" for c in top],
            customdata=[_shown(c.reference) for c in top],
            hovertemplate=t("explain.row_hover", bar="%{y}", change="%{x:+,.3~g}", typical="%{customdata}")
            + "<extra></extra>",
        )
    )
    axis = t("explain.row_axis_class", cls=found.explained) if found.explained else t("explain.row_axis_value")
    fig.update_layout(xaxis_title=axis, height=120 + 28 * len(top), margin={"t": 20})
    st.plotly_chart(fig, width="stretch", key="chart_why_row", config=plotly_config())
    if found.explained is not None:
        what = t("explain.chance_of", cls=_plain(found.explained))
    else:
        what = t("explain.predicted_value", target=_plain(found.target))
    lines = []
    for c in found.contributions[:TOP_SENTENCES]:
        key = "explain.row_raised" if c.change > 0 else "explain.row_lowered"
        amount = _amount(c.change, found.explained)
        if not float(amount.replace(",", "")):
            continue  # "lowered it by 0.0 points" says nothing
        if found.explained is not None:
            amount = t("explain.points", amount=amount)
        lines.append(t(key, feature=_plain(c.label), value=_plain(c.value), what=what, amount=amount))
    st.markdown("\n".join(f"- {line}" for line in lines))


# -- one text -----------------------------------------------------------------------------------------------
def highlighted(found: jobs.TextExplanation) -> str:
    """The text as HTML, each word on a green (towards the answer) or red (away) ground as strong as its push."""
    strongest = max((abs(w.change) for w in found.words), default=0.0) or 1.0
    spans = []
    for word in found.words:
        alpha = min(1.0, abs(word.change) / strongest) * 0.65
        colour = GREEN if word.change > 0 else RED
        tip = html.escape(t("explain.word_tip", points=word.change * 100, cls=found.explained), quote=True)
        spans.append(
            f'<span title="{tip}" style="background: rgba{(*colour, round(alpha, 3))}; '
            f'padding: 1px 3px; border-radius: 4px">{html.escape(word.text)}</span>'
        )
    return f'<div style="line-height: 2">{" ".join(spans)}</div>'


def text_section(run: jobs.Run, text: str, predict: jobs.Predict) -> None:
    """Beside a text prediction: the words that moved it most, highlighted in the text."""
    try:
        found = _text(_key(run), text, predict)
    except ModelDeckError as exc:
        show_error(exc)
        return
    found = named(run, found)
    st.subheader(t("explain.why_title"))
    words(found)


def words(found: jobs.TextExplanation) -> None:
    """A text with its words highlighted by their push, and the strongest few said in words."""
    st.caption(t("explain.text_intro", cls=found.explained, score=found.score))
    if found.per_piece > 1:
        st.caption(t("explain.text_grouped", words=found.per_piece))
    with st.container(border=True):
        st.markdown(highlighted(found), unsafe_allow_html=True)
    ranked = sorted(found.words, key=lambda w: -abs(w.change))[:TOP_SENTENCES]
    lines = [
        t(
            "explain.word_towards" if w.change > 0 else "explain.word_away",
            word=_plain(w.text),
            cls=_plain(found.explained),
            points=abs(w.change) * 100,
        )
        for w in ranked
        if abs(w.change) >= 0.005
    ]
    st.markdown("\n".join(f"- {line}" for line in lines) or t("explain.text_none"))


# -- one image ----------------------------------------------------------------------------------------------
def saliency_chart(found: jobs.ImageExplanation) -> go.Figure:
    """The image with the occlusion map over it: green where greying lowers the answer, red where it raises it."""
    cells = len(found.grid)
    strongest = max((abs(v) for row in found.grid for v in row), default=0.0) or 1e-9
    uri = "data:image/png;base64," + base64.b64encode(found.image).decode()
    fig = go.Figure(go.Image(source=uri, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=[[v * 100 for v in row] for row in found.grid],
            x0=found.width / cells / 2 - 0.5,  # an image's pixel i spans i - 0.5 to i + 0.5
            dx=found.width / cells,
            y0=found.height / cells / 2 - 0.5,
            dy=found.height / cells,
            zmin=-strongest * 100,
            zmax=strongest * 100,
            colorscale=[[0, f"rgba{(*RED, 0.75)}"], [0.5, "rgba(255,255,255,0)"], [1, f"rgba{(*GREEN, 0.75)}"]],
            colorbar={"title": {"text": t("explain.image_scale")}, "thickness": 12},
            hovertemplate=t("explain.image_hover", change="%{z:+.1f}", cls=found.explained) + "<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(height=340, margin={"t": 10, "b": 10, "l": 10, "r": 10})
    return fig


def image_section(run: jobs.Run, image: bytes, predict: jobs.Predict) -> None:
    """Beside an image prediction: the parts of the image the answer rests on."""
    try:
        found = _image(_key(run), image, predict)
    except ModelDeckError as exc:
        show_error(exc)
        return
    found = named(run, found)
    st.subheader(t("explain.why_title"))
    left, right = st.columns([3, 2])
    left.plotly_chart(saliency_chart(found), width="stretch", key="chart_why_image", config=plotly_config())
    right.caption(t("explain.image_intro", cls=found.explained, score=found.score, cells=len(found.grid)))


# -- the Evaluation page's section ---------------------------------------------------------------------------
def evaluation_section(run: jobs.Run) -> None:
    """What the model relies on (tables) or one example's words (texts); nothing for the other tasks."""
    if run.task in ("classification", "regression"):
        importance_section(run)
    elif jobs.reads_text(run.task) and run.evaluation.get("examples"):
        example_section(run)


def example_section(run: jobs.Run) -> None:
    """The words behind a text classifier's first evaluation example: kept results, else a button."""
    example = run.evaluation["examples"][0]
    st.subheader(t("explain.example_title"))
    st.caption(t("explain.example_intro", true=example["true"], predicted=example["predicted"]))
    found = jobs.saved_example(run) or _on_request(
        lambda: jobs.example_explanation(store(), run.id),
        intro=None,
        button="explain.example_compute",
        running="explain.example_running",
    )
    if found is not None:
        words(found)
