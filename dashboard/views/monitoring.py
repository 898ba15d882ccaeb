"""Monitoring: is the model still right? From the inference server's request log: requests and latency over time,
what the model predicted, and how far its inputs moved from the data it was trained on (PSI per feature, the
drifting ones first), with an alert when a feature drifted."""

from datetime import datetime

import plotly.graph_objects as go
import streamlit as st

from backend import config, serving
from dashboard.charts import plotly_config, rule
from dashboard.common import store
from dashboard.i18n import t

ALL = 0  # the version picker's "every version"
REFRESH_S = 10  # the figures read up to 20,000 logged requests: once in this many seconds, for every session
LEVEL_COLOURS = {"stable": "#2e7d32", "moderate": "#f9a825", "drift": "#c62828"}


@st.cache_data(ttl=REFRESH_S, show_spinner=False, max_entries=32)
def figures_for(url: str, name: str, version: int | None) -> tuple[serving.Monitoring, datetime]:  # noqa: ARG001
    """`serving.monitor`, shared by the sessions for REFRESH_S seconds (the database's URL keys it too)."""
    return serving.monitor(store(), name, version=version), datetime.now()


st.title(t("monitoring.title"))
st.caption(t("monitoring.intro"))
found = {m.name: m for m in serving.registry_models(store())}
if not found:
    st.info(t("monitoring.no_models"))
    st.stop()

left, right = st.columns(2)


def _model_text(name: str) -> str:
    return t("monitoring.model_label", name=name, task=t(f"task.{found[name].task}"), dataset=found[name].dataset)


name = left.selectbox(t("monitoring.model"), list(found), format_func=_model_text, key="monitoring_model")
production = found[name].stages.get(serving.PRODUCTION)


def _version_text(version: int) -> str:
    if version == ALL:
        return t("monitoring.all_versions")
    if version == production:
        return t("monitoring.version_production", version=version)
    return t("monitoring.version_label", version=version)


version = right.selectbox(
    t("monitoring.version"), [ALL, *found[name].versions], format_func=_version_text, key=f"monitoring_version_{name}"
)
figures, as_of = figures_for(config.database_url(), name, None if version == ALL else version)
st.caption(t("monitoring.as_of", time=as_of.strftime("%H:%M:%S"), seconds=REFRESH_S))
if not figures.logged:
    st.info(t("monitoring.empty", name=name))
    st.stop()

# 1. The alert first: a drifted feature is the one thing a reader must not miss.
drifted = [f for f in figures.drift if f.level == "drift"]
moderate = [f for f in figures.drift if f.level == "moderate"]
if figures.alert:
    features = ", ".join(f.feature for f in drifted if f.rows >= serving.MIN_DRIFT_ROWS)
    st.error(t("monitoring.alert", features=features, threshold=serving.DRIFT_ALERT), icon=":material/warning:")
elif drifted:
    st.warning(t("monitoring.too_few", count=drifted[0].rows, needed=serving.MIN_DRIFT_ROWS), icon=":material/info:")
elif moderate:
    st.warning(t("monitoring.moderate", features=", ".join(f.feature for f in moderate)), icon=":material/info:")

# 2. Traffic and latency: the headline, then per bucket of time.
for column, (label, value, meaning) in zip(
    st.columns(4),
    [
        (t("monitoring.requests"), f"{figures.requests:,}", None),
        (t("monitoring.errors"), f"{figures.errors:,}", t("monitoring.errors_help")),
        (t("monitoring.p50"), t("unit.ms", ms=figures.p50_ms), t("monitoring.p50_help")),
        (t("monitoring.p95"), t("unit.ms", ms=figures.p95_ms), t("monitoring.p95_help")),
    ],
    strict=True,
):
    column.metric(label, value, help=meaning)
if figures.requests > figures.logged:
    st.caption(t("monitoring.sampled", logged=figures.logged, requests=figures.requests))

# Buckets as labels, not as a time axis: one bucket alone would get ticks a millisecond apart.
starts = [b.start.strftime("%Y-%m-%d" if figures.bucket == "day" else "%Y-%m-%d %H:%M") for b in figures.timeline]
traffic, latency = st.columns(2)
fig = go.Figure(
    [
        go.Bar(x=starts, y=[b.requests - b.errors for b in figures.timeline], name=t("monitoring.answered")),
        go.Bar(x=starts, y=[b.errors for b in figures.timeline], name=t("monitoring.failed"), marker_color="#c62828"),
    ]
)
fig.update_layout(
    title=t("monitoring.requests_chart", bucket=t(f"monitoring.bucket.{figures.bucket}")),
    barmode="stack",
    xaxis_type="category",
    yaxis_title=t("monitoring.requests"),
    height=340,
    margin={"t": 50, "b": 10},
)
traffic.plotly_chart(fig, width="stretch", key="monitoring_requests", config=plotly_config())
fig = go.Figure(
    [
        go.Scatter(x=starts, y=[b.p50_ms for b in figures.timeline], name="p50", mode="lines+markers"),
        go.Scatter(x=starts, y=[b.p95_ms for b in figures.timeline], name="p95", mode="lines+markers"),
    ]
)
fig.update_layout(
    title=t("monitoring.latency_chart"),
    xaxis_type="category",
    yaxis_title=t("monitoring.ms"),
    height=340,
    margin={"t": 50, "b": 10},
)
latency.plotly_chart(fig, width="stretch", key="monitoring_latency", config=plotly_config())

# 3. What the model answered.
if figures.predictions is not None:
    shown = figures.predictions
    fig = go.Figure(go.Bar(x=shown.labels, y=shown.counts, text=shown.counts, textposition="auto"))
    fig.update_layout(
        title=t(f"monitoring.predictions.{shown.kind}"),
        xaxis_title=t("monitoring.class" if shown.kind == "classes" else "monitoring.value"),
        yaxis_title=t("monitoring.requests_count"),
        xaxis_type="category",
        height=320,
        margin={"t": 50, "b": 10},
    )
    st.plotly_chart(fig, width="stretch", key="monitoring_predictions", config=plotly_config())

# 4. Input drift: each feature's PSI against the training data, the drifting first, and the worst one's bins.
st.subheader(t("monitoring.drift"))
if not figures.drift:
    st.caption(t("monitoring.no_drift", version=figures.drift_version))
    st.stop()
st.caption(t("monitoring.drift_intro", version=figures.drift_version, run=figures.drift_run))
ordered = list(reversed(figures.drift))  # a horizontal bar chart draws from the bottom: the highest PSI on top
fig = go.Figure(
    go.Bar(
        x=[f.psi for f in ordered],
        y=[f.feature for f in ordered],
        orientation="h",
        marker_color=[LEVEL_COLOURS[f.level] for f in ordered],
        text=[f"{f.psi:.3f} · {t(f'monitoring.level.{f.level}')}" for f in ordered],
        textposition="auto",
    )
)
for line, dash in ((0.1, "dot"), (serving.DRIFT_ALERT, "dash")):
    rule(fig, x=line, dash=dash, color="#555")
fig.update_layout(
    title=t("monitoring.psi_chart"),
    xaxis_title=t("monitoring.psi"),
    height=120 + 40 * len(ordered),
    margin={"t": 50, "b": 10},
)
st.plotly_chart(fig, width="stretch", key="monitoring_psi", config=plotly_config())

worst = figures.drift[0]
labels = [b.label if b.label is not None else t("monitoring.other") for b in worst.bins]
fig = go.Figure(
    [
        go.Bar(x=labels, y=[b.expected for b in worst.bins], name=t("monitoring.training_data")),
        go.Bar(x=labels, y=[b.actual for b in worst.bins], name=t("monitoring.logged_inputs")),
    ]
)
fig.update_layout(
    title=t("monitoring.bins_chart", feature=worst.feature, count=worst.rows),
    yaxis_tickformat=".0%",
    xaxis_type="category",
    height=340,
    margin={"t": 50, "b": 10},
)
st.plotly_chart(fig, width="stretch", key="monitoring_bins", config=plotly_config())
