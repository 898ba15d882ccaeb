"""Compare: every run, paged, sorted and filtered in SQL; the runs picked side by side (curves, metrics with the
best marked, what differs in their specs, mean ± std over seeds); and the best run of each dataset."""

import statistics
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import jobs, playground
from dashboard.charts import plotly_config
from dashboard.common import show_history, store
from dashboard.i18n import t

PAGE_SIZES = (25, 50, 100)
MAX_PICKED = 10
SORTS = ("id", "created_at", "duration_s", "accuracy", "roc_auc", "f1_macro", "rmse", "r2", "ndcg_at_k", "perplexity")
LOWER_IS_BETTER = {"rmse", "mae", "log_loss", "perplexity", "brier", "ece"}
STATUSES = ("succeeded", "failed", "running", "queued", "cancelled", "interrupted")

st.title(t("compare.title"))
datasets = {d.id: d.name for d in store().list_datasets()}
a, b, c, d = st.columns(4)
dataset_id = a.selectbox(
    t("compare.dataset"), [None, *datasets], format_func=lambda i: t("compare.all") if i is None else datasets[i]
)
task = b.selectbox(
    t("compare.task"), [None, *jobs.TASKS], format_func=lambda x: t("compare.all") if x is None else t(f"task.{x}")
)
status = c.selectbox(
    t("compare.status"), [None, *STATUSES], format_func=lambda x: t("compare.all") if x is None else t(f"status.{x}")
)
sort = d.selectbox(
    t("compare.sort"),
    SORTS,
    format_func=lambda x: t(f"compare.sort_{x}") if x in ("id", "created_at", "duration_s") else t(f"metric.{x}"),
)
left, middle, right = st.columns([1, 1, 2])
size = left.selectbox(t("compare.page_size"), PAGE_SIZES, index=1)
ascending = right.toggle(t("compare.ascending"), value=sort in LOWER_IS_BETTER)
filters: dict[str, Any] = {"status": status, "task": task, "dataset_id": dataset_id}
total = store().run_summaries(limit=0, **filters)[1]
pages = max(1, -(-total // size))
page = middle.number_input(t("compare.page", pages=pages), min_value=1, max_value=pages, value=1)
rows, total = playground.runs_table(
    store(), offset=(page - 1) * size, limit=size, sort=sort, descending=not ascending, **filters
)
st.caption(
    t("compare.showing", first=(page - 1) * size + 1 if rows else 0, last=(page - 1) * size + len(rows), total=total)
)
show_history(rows)

# -- side by side -------------------------------------------------------------------------------------------
st.subheader(t("compare.side_by_side"))
picked = st.multiselect(
    t("compare.pick"), [r["run"] for r in rows], default=[r["run"] for r in rows[:2]], max_selections=MAX_PICKED
)
if picked:
    summaries = store().run_summaries(ids=picked, limit=MAX_PICKED, top_level=False)[0]
    curves = store().metric_curves(picked)
    fig = go.Figure()
    for run_id in picked:
        for name, points in curves.get(run_id, {}).items():
            fig.add_trace(
                go.Scatter(
                    x=[e + 1 for e, _ in points],
                    y=[v for _, v in points],
                    mode="lines",
                    name=f"{t('compare.run', id=run_id)} · {t(f'metric.{name}')}",
                    line={"dash": "dot" if name == "loss" else "solid"},
                )
            )
    fig.update_layout(xaxis_title=t("compare.epoch"), yaxis_title=t("compare.loss"), height=380)
    st.plotly_chart(fig, width="stretch", key="chart_curves", config=plotly_config())

    metric_names = sorted(
        {k for s in summaries for k, v in s.metrics.items() if isinstance(v, int | float) and k != "test_rows"}
    )
    table = pd.DataFrame(
        {t("compare.run", id=s.id): {t(f"metric.{k}"): s.metrics.get(k) for k in metric_names} for s in summaries}
    ).T
    best = {
        t(f"metric.{k}"): (min if k in LOWER_IS_BETTER else max)(
            [s.metrics[k] for s in summaries if isinstance(s.metrics.get(k), int | float)], default=None
        )
        for k in metric_names
    }

    def mark(column: pd.Series) -> list[str]:
        return ["font-weight: bold; background-color: #d9f2d9" if v == best[column.name] else "" for v in column]

    st.markdown(t("compare.metrics"))
    st.dataframe(table.style.apply(mark).format("{:.4g}", na_rep="—"), width="stretch", placeholder="—")

    specs = {s.id: s.spec for s in summaries}
    keys = sorted({k for spec in specs.values() for k in spec})
    differing = [k for k in keys if len({repr(spec.get(k)) for spec in specs.values()}) > 1]
    st.markdown(t("compare.spec_diff"))
    if differing:
        diff = pd.DataFrame({t("compare.run", id=i): {k: str(specs[i].get(k, "—")) for k in differing} for i in specs})
        st.dataframe(diff, width="stretch", placeholder="—")
    else:
        st.caption(t("compare.same_spec"))

    # Runs that differ only by their seed: the spread a metric has from chance alone.
    groups: dict[str, list] = {}
    for s in summaries:
        rest = {k: v for k, v in s.spec.items() if k != "seed"}
        groups.setdefault(f"{s.dataset}@{s.version_hash}|{s.task}|{sorted(rest.items())!r}", []).append(s)
    for members in (g for g in groups.values() if len(g) >= 2):
        spread = {
            t(f"metric.{k}"): f"{statistics.mean(v):.4g} ± {statistics.stdev(v):.2g}"
            for k in metric_names
            if len(v := [m.metrics[k] for m in members if isinstance(m.metrics.get(k), int | float)]) >= 2
        }
        runs = ", ".join(str(m.id) for m in members)
        st.markdown(t("compare.seeds", runs=runs, count=len(members)))
        st.dataframe(pd.DataFrame([spread]), width="stretch", hide_index=True, placeholder="—")

# -- the best of each dataset -------------------------------------------------------------------------------
st.subheader(t("compare.leaderboard"))
metric = st.selectbox(
    t("compare.by_metric"),
    ("accuracy", "roc_auc", "f1_macro", "rmse", "r2", "ndcg_at_k", "perplexity"),
    format_func=lambda x: t(f"metric.{x}"),
)
leaders = store().best_runs(metric, higher_is_better=metric not in LOWER_IS_BETTER)
if leaders:
    board = pd.DataFrame(
        [
            {
                t("compare.dataset"): s.dataset,
                t("compare.best_run"): s.id,
                t(f"metric.{metric}"): s.metrics.get(metric),
                t("runs.task"): t(f"task.{s.task}"),
                t("runs.created"): s.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for s in leaders
        ]
    )
    st.dataframe(board, width="stretch", hide_index=True, placeholder="—")
else:
    st.caption(t("compare.no_leaders"))
