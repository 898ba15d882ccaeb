"""Evaluation: metrics on the held-out test split, the curves behind them, and every run so far."""

from collections.abc import Callable
from typing import TypeVar

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import data, jobs, playground
from backend.errors import ModelDeckError
from dashboard import deploy, explain, report, state
from dashboard.charts import plotly_config, rule, shared
from dashboard.common import (
    decision_curve,
    gallery_rows,
    paths,
    pick_finished_run,
    readable,
    segment_metrics,
    show_error,
    show_history,
    store,
)
from dashboard.i18n import lang, t

T = TypeVar("T")
RECENT_RUNS = 20  # the history's newest runs here; all of them, paged, sorted and filtered, on Compare
ROWS_SHOWN = 200  # a gallery cell's most confident rows or texts, in a table
IMAGES_SHOWN = 48  # a cell's most confident images: each thumbnail is a file read and a resize on every rerun
st.title(t("evaluation.title"))
run = pick_finished_run(
    label=t("evaluation.run"),
    describe=lambda r: t("evaluation.run_label", id=r.id, dataset=f"{r.dataset} @ {r.version_hash[:8]}"),
    none_text=t("evaluation.none"),
)
m, ev = run.metrics, run.evaluation
if m:
    sizes = ev.get("rows", {})
    st.caption(t("evaluation.split", test=sizes.get("test", "?"), train=sizes.get("train", "?")))
elif jobs.task_info(run.task).playground == "query":  # a search index: what a few of its own rows find
    st.info(t("evaluation.search", rows=ev.get("rows", {}).get("indexed", 0)), icon=":material/search:")
    for example in ev.get("examples", []):
        with st.container(border=True):
            st.markdown(f"**{readable(example['query'])}**")
            found = {t("playground.similarity"): example["scores"], t("evaluation.found"): example["texts"]}
            st.dataframe(pd.DataFrame(found), hide_index=True, width="stretch")
else:  # zero-shot on texts without labels: a model, and nothing to score it on
    st.info(t("evaluation.unscored", run_id=run.id), icon=":material/info:")


def metric_row(keys: tuple[str, ...], fmt: str = "{:.3f}") -> None:
    for col, key in zip(st.columns(len(keys)), keys, strict=True):
        value = m.get(key)
        col.metric(t(f"metric.{key}"), "—" if value is None else fmt.format(value), help=t(f"meaning.{key}"))


def line(fig: go.Figure, x: list, y: list, name: str, **style) -> None:
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, **style))


def diagonal(fig: go.Figure, name: str, low: float = 0.0, high: float = 1.0) -> None:
    line(fig, [low, high], [low, high], name, line={"dash": "dash", "color": "grey"})


def shown(name: str, build: Callable[[], T], *also: object) -> T:
    """The shown run's chart `name`, built once for every session (`charts.shared`); the names its classes are
    shown by (which an editor can change) key it too."""
    return shared((name, run.id, run.created_at, repr(run.names), lang(), *also), build)


def confusion(normalised: bool) -> go.Figure:
    return shown("confusion", lambda: confusion_chart(normalised), normalised)


def confusion_chart(normalised: bool) -> go.Figure:
    classes, matrix = [jobs.class_name(run, c) for c in ev.get("classes", [])], ev.get("confusion_matrix", [])
    shown = [[v / max(sum(row), 1) for v in row] for row in matrix] if normalised else matrix
    text = [[f"{v:.0%}" for v in row] for row in shown] if normalised else matrix
    fig = go.Figure(
        go.Heatmap(
            z=shown, x=classes, y=classes, colorscale="Blues", text=text, texttemplate="%{text}", showscale=False
        )
    )
    fig.update_layout(
        xaxis_title=t("evaluation.predicted"),
        yaxis_title=t("evaluation.actual"),
        yaxis_autorange="reversed",
        height=420,
    )
    return fig


def curves_chart(key: str, x: str, y: str, x_title: str, y_title: str, chance: bool) -> go.Figure:
    fig = go.Figure()
    for curve in ev.get(key, []):
        line(fig, curve[x], curve[y], jobs.class_name(run, curve["class"]))
    if chance:
        diagonal(fig, t("evaluation.chance"))
    fig.update_layout(xaxis_title=x_title, yaxis_title=y_title, height=420)
    return fig


def calibration_chart() -> go.Figure:
    bins = ev.get("calibration", {})
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=bins.get("confidence", []),
            y=bins.get("accuracy", []),
            mode="lines+markers",
            marker={"size": [4 + 16 * (c / max(bins.get("count", [1]))) ** 0.5 for c in bins.get("count", [])]},
            customdata=bins.get("count", []),
            hovertemplate=t("evaluation.calibration_hover", x="%{x:.0%}", y="%{y:.0%}", n="%{customdata}")
            + "<extra></extra>",
            name=t("evaluation.this_model"),
        )
    )
    diagonal(fig, t("evaluation.perfect"))
    fig.update_layout(xaxis_title=t("evaluation.confidence"), yaxis_title=t("evaluation.how_often_right"), height=420)
    return fig


def gains_chart() -> go.Figure:
    g = ev.get("gains", {})
    fig = go.Figure()
    line(fig, [0.0, *g.get("share", [])], [0.0, *g.get("gain", [])], t("evaluation.gain"))
    diagonal(fig, t("evaluation.chance"))
    fig.add_trace(go.Scatter(x=g.get("share", []), y=g.get("lift", []), name=t("evaluation.lift"), yaxis="y2"))
    fig.update_layout(
        xaxis_title=t("evaluation.share_contacted"),
        yaxis_title=t("evaluation.share_found"),
        yaxis2={"title": t("evaluation.lift"), "overlaying": "y", "side": "right", "tickformat": ".1f"},
        legend={"orientation": "h", "y": -0.2},
        height=460,
    )
    return fig


def in_plain_words() -> None:
    plain = jobs.in_plain_words(run)
    if plain is not None:  # the sentence a manager repeats, above the numbers an engineer reads
        st.markdown(f"**{plain.text(lang())}**")


def classifier() -> None:
    in_plain_words()
    metric_row(("accuracy", "f1_macro", "roc_auc", "log_loss"))
    metric_row(("average_precision", "brier", "ece"))
    base = ev.get("baseline", {}).get("accuracy")
    if base is not None:
        st.caption(t("evaluation.baseline_cls", acc=base))
    charts = {
        "confusion": lambda: confusion(st.toggle(t("evaluation.by_row"), key="by_row")),
        "roc": lambda: shown(
            "roc", lambda: curves_chart("roc", "fpr", "tpr", t("evaluation.fpr"), t("evaluation.tpr"), chance=True)
        ),
        "pr": lambda: shown(
            "pr",
            lambda: curves_chart("pr", "recall", "precision", t("evaluation.recall"), t("evaluation.precision"), False),
        ),
        "calibration": lambda: shown("calibration", calibration_chart),
    }
    if ev.get("gains"):
        charts["gains"] = lambda: shown("gains", gains_chart)
    for tab, (name, chart) in zip(st.tabs([t(f"evaluation.{n}") for n in charts]), charts.items(), strict=True):
        with tab:
            st.caption(t(f"evaluation.{name}_help"))
            st.plotly_chart(chart(), width="stretch", key=f"chart_{name}", config=plotly_config())

    per_class = m.get("per_class")
    if per_class:
        st.subheader(t("evaluation.per_class"))
        table = pd.DataFrame(per_class).T.rename_axis(t("evaluation.class")).reset_index()
        st.dataframe(
            table.rename(columns=lambda c: t(f"evaluation.col_{c}") if c in PER_CLASS else c),
            width="stretch",
            hide_index=True,
            placeholder="—",
        )


PER_CLASS = ("precision", "recall", "f1", "support")


def regression_charts() -> dict[str, go.Figure]:
    actual, predicted = ev.get("actual", []), ev.get("predicted", [])
    scatter = go.Figure(
        go.Scatter(x=actual, y=predicted, mode="markers", marker={"opacity": 0.5}, name=t("evaluation.points"))
    )
    if actual:
        diagonal(scatter, t("evaluation.perfect"), min(actual + predicted), max(actual + predicted))
    scatter.update_layout(xaxis_title=t("evaluation.actual"), yaxis_title=t("evaluation.predicted"), height=440)
    residuals = go.Figure(
        go.Scatter(
            x=predicted,
            y=[a - p for a, p in zip(actual, predicted, strict=True)],
            mode="markers",
            marker={"opacity": 0.5},
            name=t("evaluation.points"),
        )
    )
    rule(residuals, y=0, dash="dash")
    residuals.update_layout(xaxis_title=t("evaluation.predicted"), yaxis_title=t("evaluation.residual"), height=440)
    hist = ev.get("residuals", {})
    edges = hist.get("edges", [])
    histogram = go.Figure(
        go.Bar(
            x=[(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)],
            y=hist.get("counts", []),
            name=t("evaluation.points"),
        )
    )
    histogram.update_layout(
        xaxis_title=t("evaluation.residual"), yaxis_title=t("evaluation.cases"), bargap=0.05, height=440
    )
    deciles = ev.get("deciles", [])
    by_decile = go.Figure()
    labels = [f"{d['low']:,.4g}–{d['high']:,.4g}" for d in deciles]
    by_decile.add_trace(go.Bar(x=labels, y=[d["mae"] for d in deciles], name=t("metric.mae")))
    by_decile.add_trace(go.Bar(x=labels, y=[d["bias"] for d in deciles], name=t("evaluation.bias")))
    by_decile.update_layout(xaxis_title=t("evaluation.actual"), barmode="group", height=440)
    charts = {"pred_vs_actual": scatter, "residuals": residuals, "residual_histogram": histogram}
    if deciles:
        charts["deciles"] = by_decile
    return charts


def regressor() -> None:
    in_plain_words()
    metric_row(("rmse", "mae", "r2"), "{:,.3f}")
    base = ev.get("baseline", {}).get("rmse")
    if base is not None:
        st.caption(t("evaluation.baseline_reg", rmse=base))
    charts = shown("regression", regression_charts)
    for tab, (name, fig) in zip(st.tabs([t(f"evaluation.{n}") for n in charts]), charts.items(), strict=True):
        with tab:
            st.caption(t(f"evaluation.{name}_help"))
            st.plotly_chart(fig, width="stretch", key=f"chart_{name}", config=plotly_config())
    tolerance_view()


def tolerance_view() -> None:
    """A regression: the share of test predictions within a band a team would accept, and which way the rest miss."""
    st.subheader(t("tolerance.title"))
    left, right = st.columns([2, 1])
    kind = left.radio(
        t("tolerance.kind"), ["relative", "absolute"], format_func=lambda k: t(f"tolerance.{k}"), horizontal=True
    )
    relative = kind == "relative"
    default = 10.0 if relative else float(f"{m.get('mae') or 1.0:.2g}")  # ± the typical miss, rounded
    value = right.number_input(t("tolerance.value"), min_value=0.0, value=default, key=f"tolerance_{kind}")
    if not value > 0:
        return
    try:
        band = jobs.tolerance_band(run, value / 100 if relative else value, relative=relative)
    except ModelDeckError as exc:
        show_error(exc)
        return
    a, b, c = st.columns(3)
    a.metric(t("tolerance.inside"), f"{band['share_inside']:.1%}")
    b.metric(t("tolerance.below"), f"{band['share_below']:.1%}")
    c.metric(t("tolerance.above"), f"{band['share_above']:.1%}")
    st.caption(t("tolerance.help", rows=band["rows"]))


def text_examples() -> None:
    examples = ev.get("examples", [])
    if examples:
        st.subheader(t("evaluation.examples"))
        table = pd.DataFrame(examples)
        table["text"] = table["text"].map(readable)
        if "correct" in table:  # a word, not a checkbox that reads as empty for every mistake
            table["correct"] = table["correct"].map({True: t("evaluation.right"), False: t("evaluation.wrong")})
        table = table.rename(columns=lambda c: t(f"evaluation.col_{c}"))
        st.dataframe(table, width="stretch", hide_index=True, placeholder="—")


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
        st.plotly_chart(fig, width="stretch", config=plotly_config())


def generator() -> None:
    ppl, base = m.get("perplexity"), ev.get("baseline", {}).get("perplexity")
    left, right = st.columns(2)
    left.metric(t("metric.perplexity"), "—" if ppl is None else f"{ppl:,.2f}")
    if base is not None:
        right.metric(t("evaluation.unigram"), f"{base:,.2f}", help=t("evaluation.unigram_help"))
    st.caption(t("evaluation.perplexity_help"))
    for sample in ev.get("samples", []):
        with st.container(border=True):
            st.markdown(f"**{sample['prompt']}**{sample['text']}")


def gallery_cell(classes: list[str], matrix: list[list[int]]) -> tuple[str | None, str | None]:
    """A classifier's confusion-matrix cell to open, the largest mistake first; (None, None) for a regression."""
    if run.task == "regression" or not matrix:
        st.caption(t("gallery.regression_help"))
        return None, None
    cells = [(matrix[i][j], i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j]
    _, worst_i, worst_j = max(cells, default=(0, 0, 0))
    a, b = st.columns(2)
    actual = a.selectbox(t("gallery.actual"), classes, index=worst_i, key="gallery_actual")
    predicted = b.selectbox(t("gallery.predicted"), classes, index=worst_j, key="gallery_predicted")
    st.caption(t("gallery.cell_help", count=matrix[classes.index(actual)][classes.index(predicted)]))
    return actual, predicted


def gallery_examples(rows: pd.DataFrame) -> None:
    """The examples: a table of rows or texts, or a grid of thumbnails captioned actual → predicted (confidence)."""
    if run.task != "image-classification":
        if "text" in rows:
            rows = rows.assign(text=rows["text"].astype(str).map(readable))
        shown = rows.rename(
            columns={c: t(f"gallery.col_{c}") for c in ("row", "actual", "predicted", "confidence", "error")}
        )
        st.dataframe(shown, width="stretch", hide_index=True, height=min(400, 38 + 35 * len(rows)), placeholder="—")
        return
    columns = st.columns(6)
    for i, item in enumerate(rows.to_dict("records")):
        caption = t(
            "gallery.image_caption",
            row=item["row"],
            actual=item["actual"],
            predicted=item["predicted"],
            confidence=item["confidence"],
        )
        columns[i % 6].image(data.thumbnail(paths().datasets, item["file"]), caption=caption, width="stretch")


def gallery_fix(rows: pd.DataFrame, classes: list[str], predicted: str | None) -> None:
    """Relabel or drop the picked examples as a new version, train the same spec on it, and compare the two runs."""
    images = run.task == "image-classification"
    placeholder = t("gallery.pick_placeholder_images") if images else t("gallery.pick_placeholder")
    picked = st.multiselect(t("gallery.pick"), rows["row"].tolist(), key="gallery_rows", placeholder=placeholder)
    action = st.radio(
        t("gallery.action"), ["relabel", "drop"], format_func=lambda a: t(f"gallery.{a}"), horizontal=True
    )
    label = None
    if action == "relabel":
        if run.task != "regression":
            guess = classes.index(predicted) if predicted in classes else 0  # a wrong label: what the model said
            label = st.selectbox(t("gallery.new_label"), classes, index=guess)
        else:
            label = str(st.number_input(t("gallery.new_value"), value=0.0))
    if st.button(t("gallery.apply", count=len(picked)), type="primary", disabled=not picked):
        try:
            fix = {"relabel": dict.fromkeys(picked, label)} if action == "relabel" else {"drop": picked}
            version, again = jobs.fix_and_retrain(store(), run.id, **fix)
        except ModelDeckError as exc:
            show_error(exc)
            return
        st.session_state[f"retrained_{run.id}"] = again.id
        st.session_state[state.RUN] = run.id  # stay on this run when the new one finishes: the comparison is here
        st.success(t("gallery.started", run=again.id, version=version.hash[:8]))
    retrained = st.session_state.get(f"retrained_{run.id}")
    if retrained is not None:
        again = jobs.get_run(store(), retrained)
        if again.status != "succeeded":
            st.info(t("gallery.waiting", run=again.id, status=t(f"status.{again.status}")))
        else:
            change = pd.DataFrame(jobs.compare_metrics(run, again))
            change["metric"] = change["metric"].map(lambda k: t(f"metric.{k}"))
            st.markdown(t("gallery.compared", old=run.id, new=again.id))
            st.dataframe(change.rename(columns=lambda c: t(f"gallery.col_{c}")), hide_index=True, placeholder="—")


def gallery_view() -> None:
    """The test rows, texts or images behind a mistake, fixed in one step (relabel or drop, then the same spec)."""
    if run.task not in jobs.GALLERY_TASKS:
        return
    st.subheader(t("gallery.title"))
    classes, matrix = ev.get("classes", []), ev.get("confusion_matrix", [])
    actual, predicted = gallery_cell(classes, matrix)
    limit = IMAGES_SHOWN if run.task == "image-classification" else ROWS_SHOWN
    try:
        rows = gallery_rows(run, actual=actual, predicted=predicted, limit=limit)
    except ModelDeckError as exc:
        show_error(exc)
        return
    if rows.empty:
        st.caption(t("gallery.empty"))
        return
    if actual is not None and len(rows) < matrix[classes.index(actual)][classes.index(predicted)]:
        st.caption(t("gallery.shown", shown=len(rows)))
    gallery_examples(rows)
    gallery_fix(rows, classes, predicted)


def segments_view() -> None:
    """Table runs: every metric per segment of a column, worst first, each with its bootstrap 95% interval."""
    if run.task not in ("classification", "regression"):
        return
    choices = jobs.segment_columns(store(), run)
    if not choices:
        return
    st.subheader(t("segments.title"))
    column = st.selectbox(t("segments.column"), choices, key="segments_column")
    try:
        found = segment_metrics(run, column)
    except ModelDeckError as exc:
        show_error(exc)
        return
    metric, overall = found["metric"], found["overall"]
    st.caption(t("segments.help", metric=t(f"metric.{metric}"), overall=overall[metric] or 0.0))
    listed = found["segments"]
    shown = [e for e in listed if e[metric] is not None]
    fig = go.Figure(
        go.Scatter(
            x=[e[metric] for e in shown],
            y=[f"{e['segment']} ({e['rows']})" for e in shown],
            mode="markers",
            marker={"size": 10},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [e["interval"][metric][1] - e[metric] if e["interval"][metric] else 0 for e in shown],
                "arrayminus": [e[metric] - e["interval"][metric][0] if e["interval"][metric] else 0 for e in shown],
            },
            name=t(f"metric.{metric}"),
        )
    )
    if overall[metric] is not None:
        rule(fig, x=overall[metric])
        label = {"text": t("segments.overall"), "showarrow": False, "xanchor": "left"}
        fig.add_annotation(x=overall[metric], y=1, xref="x", yref="y domain", **label)
    fig.update_layout(
        xaxis_title=t(f"metric.{metric}"),
        yaxis={"autorange": "reversed", "type": "category", "dtick": 1},  # every segment named, the worst on top
        height=110 + 36 * len(shown),
        margin={"t": 30, "b": 50},
        showlegend=False,
    )
    st.plotly_chart(fig, width="stretch", key="chart_segments", config=plotly_config())
    names = [k for k in overall if k != "rows"]

    def cell(entry: dict, name: str) -> str:
        value, interval = entry[name], entry["interval"].get(name)
        if value is None:
            return "—"
        return f"{value:.3f}" + (f"  ({interval[0]:.3f}–{interval[1]:.3f})" if interval else "")

    table = pd.DataFrame(
        [
            {t("segments.segment"): e["segment"], t("segments.rows"): e["rows"]}
            | {t(f"metric.{n}"): cell(e, n) for n in names}
            for e in listed
        ]
    )
    st.dataframe(table, width="stretch", hide_index=True, placeholder="—")


def cost_matrix_view() -> None:
    """Three or more classes: what each mistake costs in, the least expected cost decision out, kept with the model."""
    classes = ev["classes"]
    st.subheader(t("decision.title"))
    chosen = jobs.current_decision(store(), run)
    before: dict = {}
    if chosen is not None and chosen.threshold is None:  # a cost matrix applies
        before = chosen.costs
        when = chosen.created_at.strftime("%Y-%m-%d %H:%M")
        st.info(t("decision.matrix_current", who=chosen.chosen_by, when=when, why=chosen.reason or "—"))
    st.caption(t("decision.matrix_intro"))
    start = before.get("matrix") or [[0.0 if a == d else 1.0 for d in classes] for a in classes]
    left, right = st.columns([4, 1])
    edited = left.data_editor(
        pd.DataFrame(start, index=classes, columns=classes, dtype="float64"),
        key=f"cost_matrix_{run.id}",
        width="stretch",
    )
    left.caption(t("decision.matrix_help"))
    currency = right.text_input(t("decision.currency"), value=before.get("currency", ""), max_chars=8)
    try:
        costs = jobs.decision_cost_matrix(classes, edited.to_numpy().tolist(), currency)
        outcome = jobs.decision_cost_check(store(), run.id, costs)
    except ModelDeckError as exc:
        show_error(exc)
        return
    money = f" {costs.currency}" if costs.currency else ""
    a, b, c = st.columns(3)
    a.metric(t("decision.matrix_cost"), f"{outcome['expected_cost']:,.0f}{money}", help=t("decision.matrix_cost_help"))
    b.metric(t("decision.matrix_plain"), f"{outcome['plain_cost']:,.0f}{money}", help=t("decision.matrix_plain_help"))
    c.metric(t("decision.matrix_saving"), f"{outcome['saving']:,.0f}{money}", help=t("decision.matrix_saving_help"))
    st.caption(t("decision.matrix_counts"))
    st.dataframe(pd.DataFrame(outcome["confusion"], index=classes, columns=classes), width="stretch", placeholder="—")
    reason = st.text_input(t("decision.why"), placeholder=t("decision.why_placeholder"), key="matrix_why")
    if st.button(t("decision.matrix_apply"), type="primary"):
        with st.spinner(t("decision.applying")):
            try:
                jobs.decide_costs(store(), run.id, costs, reason=reason.strip())
            except ModelDeckError as exc:
                show_error(exc)
                return
        st.success(t("decision.matrix_applied", name=run.model_name, version=run.model_version))


def decision_view() -> None:
    """Binary classifiers: business values in, profit over the threshold out; the chosen one goes with the model."""
    if len(ev.get("classes", [])) > 2:
        cost_matrix_view()
        return
    if len(ev.get("classes", [])) != 2:
        return
    st.subheader(t("decision.title"))
    chosen = jobs.current_decision(store(), run)
    if chosen is not None:
        st.info(
            t(
                "decision.current",
                threshold=chosen.threshold,
                who=chosen.chosen_by,
                when=chosen.created_at.strftime("%Y-%m-%d %H:%M"),
                why=chosen.reason or "—",
            ),
            icon=":material/gavel:",
        )
    st.caption(t("decision.intro", positive=ev["classes"][1]))
    before = chosen.costs if chosen else {}
    a, b, c, d = st.columns([2, 2, 2, 1])
    value_tp = a.number_input(t("decision.value_tp"), min_value=0.0, value=float(before.get("value_tp", 100.0)))
    cost_fp = b.number_input(t("decision.cost_fp"), min_value=0.0, value=float(before.get("cost_fp", 20.0)))
    cost_fn = c.number_input(t("decision.cost_fn"), min_value=0.0, value=float(before.get("cost_fn", 0.0)))
    currency = d.text_input(t("decision.currency"), value=before.get("currency", ""), max_chars=8)
    try:
        costs = jobs.decision_costs(value_tp, cost_fp, cost_fn, currency)
        curve = decision_curve(run, costs)
    except ModelDeckError as exc:
        show_error(exc)
        return
    best = curve["threshold"].index(curve["best"])
    start = chosen.threshold if chosen is not None and chosen.threshold is not None else curve["best"]
    threshold = st.slider(t("decision.threshold"), 0.0, 1.0, value=float(start), step=0.005)
    at = min(range(len(curve["threshold"])), key=lambda i: abs(curve["threshold"][i] - threshold))
    money = f" {costs.currency}" if costs.currency else ""
    fig = go.Figure()
    line(
        fig,
        curve["threshold"],
        curve["profit_per_1000"],
        t("decision.profit_axis", currency=f"({costs.currency})" if costs.currency else ""),
    )
    fig.add_trace(
        go.Scatter(
            x=[curve["best"]],
            y=[curve["profit_per_1000"][best]],
            mode="markers",
            marker={"size": 12, "color": "green"},
            name=t("decision.best"),
        )
    )
    rule(fig, x=threshold)
    fig.update_layout(
        xaxis_title=t("decision.threshold"),
        yaxis_title=t("decision.profit_axis", currency=f"({costs.currency})" if costs.currency else ""),
        height=380,
    )
    st.plotly_chart(fig, width="stretch", key="chart_profit", config=plotly_config())
    left, middle, right = st.columns(3)
    left.metric(t("decision.profit"), f"{curve['profit_per_1000'][at]:,.0f}{money}", help=t("decision.profit_help"))
    roi = curve["roi"][at]
    middle.metric(t("decision.roi"), "—" if roi is None else f"{roi:.0%}", help=t("decision.roi_help"))
    flagged = (curve["tp"][at] + curve["fp"][at]) / max(curve["cases"], 1)
    right.metric(t("decision.flagged"), f"{flagged:.0%}", help=t("decision.flagged_help"))
    st.caption(
        t(
            "decision.counts",
            tp=curve["tp"][at],
            fp=curve["fp"][at],
            fn=curve["fn"][at],
            tn=curve["tn"][at],
            best=curve["best"],
        )
    )
    reason = st.text_input(t("decision.why"), placeholder=t("decision.why_placeholder"))
    if st.button(t("decision.apply", threshold=threshold), type="primary"):
        with st.spinner(t("decision.applying")):
            try:
                jobs.decide(store(), run.id, costs, threshold=threshold, reason=reason.strip())
            except ModelDeckError as exc:
                show_error(exc)
                return
        st.success(t("decision.applied", threshold=threshold, name=run.model_name, version=run.model_version))


VIEWS = {  # the registry's chart names
    "classifier": classifier,
    "text_mistakes": text_examples,
    "image_mistakes": image_mistakes,
    "regression": regressor,
    "ranking": recommender,
    "generation": generator,
}
if m:
    for chart in jobs.task_info(run.task).charts:
        VIEWS[chart]()
    segments_view()
    gallery_view()
    if jobs.task_info(run.task).classifier:
        decision_view()
    explain.evaluation_section(run)
report.downloads(run)
deploy.section(run)

st.subheader(t("evaluation.history"))
rows, total = playground.runs_table(store(), limit=RECENT_RUNS)
show_history(rows)
st.page_link("views/compare.py", label=t("evaluation.all_runs", total=total), icon=":material/compare_arrows:")
