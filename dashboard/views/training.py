"""Training: pick a preset or edit hyperparameters, start a job on the worker, watch it live."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from backend import i18n, jobs
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.charts import plotly_config
from dashboard.common import frame, report, require_dataset, require_target, show_error, store
from dashboard.i18n import check_text, lang, sentences, t

ACTIVE = ("queued", "running")
PRESETS = ["fast", "balanced", "thorough"]
CURVE_METRICS = ("accuracy", "mae", "rmse")  # the second chart: the first of these the run logs
FEW_LABELS = 100  # per class: below it the Training page suggests the pretrained text model
TEXT_COLUMN_FIELDS = {"text_encoding", "meaning_columns", "text_sequence_length"}  # how free text is read

st.title(t("training.title"))
dataset, version = require_dataset()

# 1. The task: what this kind of data can train (a table: what the Data page chose first; a table without a
#    target can still be searched).
tasks = list(jobs.tasks_for(dataset.kind))
preferred = version.task if version.task in tasks else tasks[0]
task = st.radio(
    t("training.task"), tasks, index=tasks.index(preferred), horizontal=True, format_func=lambda x: t(f"task.{x}")
)
info = jobs.task_info(task)
if info.needs_target and version.target is None:
    require_target(version)
target = version.target if info.target in ("column", "optional", "label") else None  # generation, recommendation: none
if target:
    st.caption(t("training.for", name=dataset.name, target=target, task=t(f"task.{task}")))
else:
    st.caption(t("training.for_task", name=dataset.name, task=t(f"task.{task}")))

# Few labels: a model trained from scratch needs thousands of texts, the pretrained encoder a few dozen per class.
if task == "text-classification" and target:
    smallest = frame(version.id, version.path)[target].value_counts()
    if len(smallest) and int(smallest.min()) < FEW_LABELS:
        st.info(t("training.few_labels", n=int(smallest.min()), label=smallest.idxmin()), icon=":material/lightbulb:")

# Zero-shot: the classes are the model, so they are asked for first (the label column's classes to start with).
named = ""
if task == "zero-shot":
    known = frame(version.id, version.path)[target].dropna().astype(str).unique() if target else []
    lines = st.text_area(t("training.zero_shot_labels"), "\n".join(sorted(known)[:20]), key=f"zero_shot_{version.id}")
    st.caption(t("training.zero_shot_help"))
    named = "; ".join(line.strip() for line in lines.splitlines() if line.strip())

# 2. The gate: a failing blocker disables Start unless the user types a reason to override it.
blockers = [c for c in report(version.id, target, task).checks if c.severity == "blocker" and not c.passed]
override = ""
if blockers:
    st.error(t("training.blocked", reason=check_text(blockers[0], "message")), icon=":material/block:")
    override = st.text_input(t("training.override"), placeholder=t("training.override_hint"))

# 3. Hyperparameters: a preset fills the form (the family's own fields first); every field can be edited.
chosen = st.session_state.get(state.PRESET, PRESETS[1])  # the last one chosen, here or before leaving the page
if info.trains:
    preset = st.radio(
        t("training.preset"),
        PRESETS,
        index=PRESETS.index(chosen) if chosen in PRESETS else 1,
        horizontal=True,
        format_func=lambda p: t(f"preset.{p}"),
    )
    st.session_state[state.PRESET] = preset
else:  # zero-shot and search: no epochs for a preset to set, so no choice that changes nothing
    preset = PRESETS[1]
overrides: dict[str, object] = {}
with st.expander(t("training.hyperparameters"), expanded=False):
    columns = st.columns(3)
    asked = {"labels"}  # above
    if not any(c["kind"] == "text" for c in version.columns):
        asked |= TEXT_COLUMN_FIELDS  # a table without free text: nothing for them to do
    for i, field in enumerate(f for f in jobs.spec_form(task, preset) if f["name"] not in asked):
        col, name, value = columns[i % 3], field["name"], field["value"]
        label, key = t(f"hp.{name}"), f"hp_{task}_{preset}_{name}"
        if name == "meaning_columns":  # picked from the table's free-text columns
            texts = [str(c["name"]) for c in version.columns if c["kind"] == "text"]
            picked = col.multiselect(label, texts, [v for v in str(value).split(",") if v in texts], key=key)
            overrides[name] = ",".join(picked)
        elif field["type"] == "bool":
            overrides[name] = col.checkbox(label, value, key=key)
        elif field["type"] == "choice":
            overrides[name] = col.selectbox(label, field["choices"], index=field["choices"].index(value), key=key)
        elif field["type"] == "int":
            overrides[name] = col.number_input(label, 0, 1_000_000, value, key=key)
        elif field["type"] == "float":
            overrides[name] = col.number_input(label, 0.0, None, float(value), format="%.5g", key=key)  # rules bound it
        else:
            overrides[name] = col.text_input(
                label, ",".join(map(str, value)) if isinstance(value, list) else value, key=key
            )
    st.caption(t("training.cli_hint"))
if task == "zero-shot":
    overrides["labels"] = named


def follow(start) -> None:
    """Start a run (or a search) and follow it below; a refusal is shown in one line."""
    try:
        run = start()
    except ModelDeckError as exc:
        show_error(exc)
    else:
        st.session_state[state.RUN] = run.id
        st.rerun()


architecture = str(overrides.get("architecture") or "") or None  # trees tune their own knobs
if info.trains:  # zero-shot and search train nothing: nothing to search
    with st.expander(t("search.title"), expanded=False):
        st.caption(t("search.intro"))
        a, b = st.columns(2)
        method = a.radio(
            t("search.method"), ["random", "bayesian"], horizontal=True, format_func=lambda m: t(f"search.{m}")
        )
        trials = b.number_input(t("search.trials"), 1, 100, 8)
        space_text = st.text_area(
            t("search.space"),
            "\n".join(f"{k}={v}" for k, v in jobs.default_space(task, architecture).items()),
            help=t("search.space_help"),
            key=f"space_{task}_{architecture}",
        )
        if st.button(t("search.start"), disabled=bool(blockers) and not override.strip()):
            space = dict(line.split("=", 1) for line in space_text.splitlines() if "=" in line)
            follow(
                lambda: jobs.start_search(
                    store(),
                    version=version,
                    task=task,
                    method=method,
                    trials=int(trials),
                    space={k.strip(): v.strip() for k, v in space.items()},
                    preset=preset,
                    overrides=overrides,
                    override_reason=override or None,
                )
            )

start = t("training.start") if info.trains else t("training.build")
if st.button(start, type="primary", disabled=bool(blockers) and not override.strip()):
    follow(
        lambda: jobs.start_training(
            store(), version=version, task=task, preset=preset, overrides=overrides, override_reason=override or None
        )
    )

# 4. The run: the one just started, or after a reload the newest run on this dataset.
version_ids = [v.id for v in store().list_versions(dataset.id)]
run = store().get_run(st.session_state[state.RUN]) if st.session_state[state.RUN] else None
if run is None or run.version_id not in version_ids:
    run = jobs.latest_run(store(), version_ids=version_ids)
if run is None:
    st.info(t("training.no_runs"))
    st.stop()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes < 60 else f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def curves_figure(run_id: int):
    data = jobs.curves(store(), run_id=run_id)
    metric = next((m for m in CURVE_METRICS if m in data), None)
    charts = [("loss", t("training.loss"))] + ([(metric, t(f"metric.{metric}"))] if metric else [])
    fig = make_subplots(rows=1, cols=len(charts), subplot_titles=[title for _, title in charts])
    for col, (name, title) in enumerate(charts, start=1):
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


def live_curves(run_id: int, epochs: int) -> None:
    """A training run's curves while it trains, as Vega-Lite charts that Streamlit updates in place.

    Streamlit 1.67 gives a Plotly chart an identity made from its figure: every new epoch would unmount the chart and
    draw a new one, blank for a moment each time. A Vega-Lite chart (no selection) keeps its place and takes the new
    rows. The finished run is drawn with Plotly (`curves_figure`), as every other chart.
    """
    data = jobs.curves(store(), run_id=run_id)
    metric = next((m for m in CURVE_METRICS if m in data), None)
    charts = [("loss", t("training.loss"))] + ([(metric, t(f"metric.{metric}"))] if metric else [])
    for column, (name, title) in zip(st.columns(len(charts)), charts, strict=True):
        rows = [
            {"epoch": epoch + 1, "value": value, "curve": t(label)}
            for prefix, label in (("", "training.train_curve"), ("val_", "training.val_curve"))
            for epoch, value in data.get(prefix + name, [])
        ]
        spec = {
            "title": title,
            "height": 280,
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {
                    "field": "epoch",
                    "type": "quantitative",
                    "title": t("training.epoch"),
                    "axis": {"format": "d", "tickMinStep": 1},
                    "scale": {"domain": [1, max(epochs, 2)]},  # the epochs to come: the line fills the chart
                },
                "y": {"field": "value", "type": "quantitative", "title": None, "scale": {"zero": False}},
                "color": {"field": "curve", "type": "nominal", "legend": {"orient": "bottom", "title": None}},
                "strokeDash": {"field": "curve", "type": "nominal", "legend": None},
            },
        }
        column.vega_lite_chart(pd.DataFrame(rows, columns=["epoch", "value", "curve"]), spec, width="stretch")


def headline(run) -> str:
    m = run.metrics
    if run.task == "regression":
        return t("training.done_reg", rmse=m.get("rmse", 0), r2=m.get("r2") or 0)
    if run.task == "recommendation":
        return t("training.done_rec", k=m.get("k", 10), ndcg=m.get("ndcg_at_k") or 0, p=m.get("precision_at_k") or 0)
    if run.task == "text-generation":
        return t("training.done_gen", ppl=m.get("perplexity", 0))
    if run.task == "semantic-search":
        return t("training.done_search", rows=run.evaluation.get("rows", {}).get("indexed", 0))
    if not m:  # zero-shot on texts without labels: nothing to score it on
        return t("training.done_unscored")
    return t("training.done_cls", acc=m.get("accuracy", 0), auc=m.get("roc_auc") or 0)


def search_view(run) -> None:
    """A search: its trials so far, the best one, and a parallel-coordinates view of what was tried."""
    settings, rows = run.spec["search"], jobs.search_trials(store(), run_id=run.id)
    st.caption(
        t(
            "search.progress",
            done=sum(r["status"] == "succeeded" for r in rows),
            trials=settings["trials"],
            method=t(f"search.{settings['method']}"),
        )
    )
    finished = [r for r in rows if r["status"] == "succeeded"]
    if not finished:
        return
    best = min(finished, key=lambda r: r["val_loss"])
    st.success(t("search.best", id=best["run"], loss=best["val_loss"]))
    names = [*settings["dims"], "val_loss"]
    dims = []
    for name in names:
        values = [r[name] for r in finished]
        if all(isinstance(v, int | float) for v in values):
            dims.append({"label": trial_column(name), "values": values})
        else:
            labels = sorted({str(v) for v in values})
            dims.append(
                {
                    "label": trial_column(name),
                    "values": [labels.index(str(v)) for v in values],
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                }
            )
    losses = [r["val_loss"] for r in finished]
    fig = go.Figure(go.Parcoords(line={"color": losses, "colorscale": "Viridis_r", "showscale": True}, dimensions=dims))
    fig.update_layout(title=t("search.parallel"), height=380, margin={"t": 100, "l": 60, "r": 40})
    st.plotly_chart(fig, width="stretch", key=f"parcoords_{run.id}", config=plotly_config())
    table = pd.DataFrame(rows)
    table["status"] = table["status"].map(lambda s: t(f"status.{s}"))
    st.dataframe(table.rename(columns=trial_column), hide_index=True, width="stretch", placeholder="—")


def selection_text(selection: dict) -> str:
    """Which family `architecture=auto` kept, and how the others scored on the validation rows."""
    scores, winner = selection["scores"], selection["winner"]
    others = [t("training.selection_other", name=t(f"arch.{n}"), score=v) for n, v in scores.items() if n != winner]
    return t(
        "training.selection",
        winner=t(f"arch.{winner}"),
        metric=t(f"metric.{selection['metric']}"),
        score=scores[winner],
        others=t("training.selection_separator").join(others) or "—",
    )


def trial_column(name: str) -> str:
    """A trial table's column in the reader's words: a hyperparameter's short name, a metric, run or status."""
    for key in (f"hp.{name}", f"metric.{name}", f"runs.{name}"):
        if key in i18n.EN:
            return t(key).split(" (")[0].split("（")[0]
    return name


def show(run_id: int) -> None:
    run = jobs.get_run(store(), run_id)
    head, buttons = st.columns([4, 1])
    head.subheader(t("training.run", id=run.id, status=t(f"status.{run.status}")))
    if run.override_reason:
        head.caption(t("training.overridden", reason=run.override_reason))
    with st.container():  # one element whatever the status shows: the chart below keeps its place, and is updated
        status_view(run, buttons)
    if "search" in run.spec:
        search_view(run)
    elif run.epochs_done and run.status in ACTIVE:
        live_curves(run.id, int(run.progress.get("epochs") or run.spec.get("epochs") or run.epochs_done))
    elif run.epochs_done:
        st.plotly_chart(curves_figure(run.id), width="stretch", key=f"curves_{run.id}", config=plotly_config())
    with st.expander(t("training.technical"), icon=":material/terminal:"):  # for the engineer, out of a demo's way
        st.caption(
            t(
                "training.device",
                device=run.device or "…",
                spec=", ".join(f"{k}={v}" for k, v in run.spec.items() if k != "search"),
            )
        )
        if run.epochs_done and "search" not in run.spec:
            st.caption(t("training.tensorboard"))
            st.code(jobs.tensorboard_command(run), language="bash")
    if run.status not in ACTIVE and buttons.button(
        t("training.again"), key=f"again_{run.id}", help=t("training.again_help")
    ):
        st.session_state[state.RUN] = jobs.run_again(store(), run_id=run.id).id
        st.rerun()
    if run.status not in ACTIVE and st.session_state.get(state.LIVE_RUN) == run.id:
        st.session_state[state.LIVE_RUN] = None
        st.rerun(scope="app")  # drop the timer once the run is over


def status_view(run, buttons) -> None:
    """Where the run stands: progress while it runs, the outcome when it is over, and its buttons."""
    p = run.progress
    if run.status in ACTIVE:
        if buttons.button(t("training.cancel"), key=f"cancel_{run.id}"):
            jobs.cancel(store(), run_id=run.id)
            st.rerun()  # the whole app: scope="fragment" raises when the click lands in a full-app run
        if run.status == "queued":
            st.info(t("training.queued"))
        phase = p.get("phase") or ("starting" if run.status == "running" and not p else None)
        if phase:  # before the first epoch, and after the last: what it is doing, not a bar stuck at 0% or 100%
            st.progress(float(p.get("fraction", 0.0)), text=t(f"training.phase_{phase}"))
            return
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
            jobs.resume(store(), run_id=run.id)
            st.rerun()
    elif run.status == "failed":
        st.error(t("training.failed", error=run.error or ""))
    elif run.status == "cancelled":
        st.info(t("training.cancelled", epochs=run.epochs_done))
    elif run.status == "succeeded":
        succeeded_view(run)


def succeeded_view(run) -> None:
    """A finished run: its numbers, the sentence a manager repeats, which family won, what looks wrong."""
    st.success(sentences(headline(run), t("training.done_time", time=duration(run.duration_s), device=run.device)))
    plain = jobs.in_plain_words(run)
    if plain is not None:
        st.markdown(f"**{plain.text(lang())}**")
    if selection := run.evaluation.get("selection"):
        st.caption(selection_text(selection))
    for finding in run.evaluation.get("diagnostics", []):
        st.warning(t(f"diagnosis.{finding['id']}", **finding["params"]), icon=":material/troubleshoot:")
    if "search" not in run.spec:
        st.page_link("views/evaluation.py", label=t("training.see_evaluation"), icon=":material/analytics:")


@st.fragment(run_every=1.0)
def live(run_id: int) -> None:
    st.session_state[state.LIVE_RUN] = run_id
    show(run_id)


if run.status in ACTIVE:
    live(run.id)
else:
    show(run.id)
