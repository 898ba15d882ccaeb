"""Quality: the gate before training. Blockers explained in plain words, with a suggested fix."""

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import data, i18n, jobs, quality
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.charts import plotly_config
from dashboard.common import frame, paths, report, require_dataset, require_target, show_error, store
from dashboard.i18n import check_text, lang, t

ICONS = {"blocker": ":material/block:", "warning": ":material/warning:", "info": ":material/info:"}

st.title(t("quality.title"))
dataset, version = require_dataset()
if dataset.kind != "ratings":  # ratings need users and items, not a target
    require_target(version)
asked = (version.id, version.target, version.task)
result = st.session_state.get(state.MEANING, {}).get(asked) or report(*asked)
checks = result.checks

failing = [c for c in checks if not c.passed]
counts = {s: sum(1 for c in failing if c.severity == s) for s in ("blocker", "warning", "info")}
verdict = "block" if counts["blocker"] else "warn" if counts["warning"] else "pass"
{"block": st.error, "warn": st.warning, "pass": st.success}[verdict](t(f"quality.verdict.{verdict}", name=dataset.name))
score, run_count, blockers, warnings, notes = st.columns(5)
score.metric(t("quality.score"), f"{quality.score(checks)}/100", help=t("quality.score_help"))
run_count.metric(t("quality.checks_run"), len(checks))
blockers.metric(t("severity.blocker"), counts["blocker"], help=t("quality.blockers_help"))
warnings.metric(t("severity.warning"), counts["warning"], help=t("quality.warnings_help"))
notes.metric(t("severity.info"), counts["info"], help=t("quality.notes_help"))


def compare_meanings() -> None:
    """Text data, the pretrained model installed: offer the checks by meaning, too slow to run on every visit (the
    model embeds each text), with a progress bar; the report they make is kept for this session's visits."""
    if dataset.kind != "text" or not quality.meaning_available() or any(c.id in quality.MEANING_CHECKS for c in checks):
        return
    texts = min(version.rows, quality.MEANING_SAMPLE)
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(t("quality.meaning_offer", texts=texts))
    slot = st.empty()  # on every run: the bar takes its place, not that of the first check below, which stays shown
    if right.button(t("quality.meaning_button"), icon=":material/join_inner:", key="compare_meanings"):
        bar = slot.progress(0.0, text=t("quality.meaning_progress", done=0, total=texts))

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=t("quality.meaning_progress", done=done, total=total))

        try:
            with_meaning = quality.check_version(
                store(), version=version, target=version.target, task=version.task, meaning=True, progress=progress
            )
        except ModelDeckError as exc:
            show_error(exc)
        else:
            st.session_state.setdefault(state.MEANING, {})[asked] = with_meaning
            st.rerun()


compare_meanings()

SHOWN_AS_ROWS = ("example_rows", "near_pairs", "pairs")  # row numbers: the examples table below shows those rows


def words(key: str) -> str:
    """An evidence key (ours) in the reader's words: its catalog entry, else the key written as words."""
    return t(f"evidence.{key}") if f"evidence.{key}" in i18n.EN else jobs.humanise(key)


def part(key: object) -> str:
    """A key inside a piece of evidence: ours ("min", "confidence") in the reader's words; data (a class, a file,
    a column) as it is."""
    return t(f"evidence.part.{key}") if f"evidence.part.{key}" in i18n.EN else str(key)


def shown(value: object) -> str:
    if isinstance(value, bool):
        return t(f"quality.evidence_{'yes' if value else 'no'}")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return "—" if value is None else str(value)


def evidence_tables(evidence: Mapping[str, Any]) -> tuple[pd.DataFrame, list[tuple[str, pd.DataFrame]]]:
    """A check's evidence as small tables: one of "what was found / value" (numbers, short lists, small records),
    and one per table-shaped part (a record per column, a list of suspects). Counts drawn as a chart are left out."""
    facts: list[tuple[str, str]] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    for key, value in evidence.items():
        if key in SHOWN_AS_ROWS or (key == "rows" and isinstance(value, list)) or value in ({}, [], None):
            continue
        if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            table = pd.DataFrame.from_dict(value, orient="index")  # a record per column, the column as the index
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            table = pd.DataFrame(value)
        else:
            table = None
        if table is not None:
            tables.append((words(key), table.rename(columns=part).map(shown)))
        elif isinstance(value, dict):
            if charted(key, value):
                continue
            facts += [(f"{words(key)} · {part(k)}", shown(v)) for k, v in value.items()]
        elif isinstance(value, list):
            facts.append((words(key), ", ".join(map(shown, value[:20])) + (" …" if len(value) > 20 else "")))
        else:
            facts.append((words(key), t(f"metric.{value}") if f"metric.{value}" in i18n.EN else shown(value)))
    what, amount = t("quality.evidence_what"), t("quality.evidence_value")
    return pd.DataFrame(facts, columns=[what, amount]), tables


def charted(key: str, value: object) -> bool:
    """Counts per column, class or kind that have a title in the catalog: drawn as a bar chart."""
    numbers = isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values())
    return isinstance(value, dict) and numbers and len(value) >= 2 and f"evidence.{key}" in CHARTS


CHARTS = {
    "evidence.missing_by_column",
    "evidence.classes",
    "evidence.by_kind",
    "evidence.values",
    "evidence.outliers_by_column",
    "evidence.drift_by_column",
    "evidence.scores",
    "evidence.modes",
    "evidence.formats",
}


def show_evidence(check: quality.CheckResult) -> None:
    """Counts per column or class as a bar chart, the rest as small tables, example rows as a table; the raw record
    behind the technical fold."""
    evidence = check.evidence
    for key, value in evidence.items():
        if charted(key, value):
            fig = go.Figure(go.Bar(x=list(value), y=list(value.values())))
            fig.update_layout(height=240, margin={"t": 30, "b": 10}, title=t(f"evidence.{key}"))
            st.plotly_chart(fig, width="stretch", key=f"chart_{check.id}_{key}", config=plotly_config())
    facts, tables = evidence_tables(evidence)
    if len(facts):
        st.dataframe(facts, hide_index=True, width="content", placeholder="—")
    for title, table in tables:
        st.caption(title)
        st.dataframe(table, width="stretch", placeholder="—")
    rows = evidence.get("example_rows")
    if rows:
        st.caption(t("quality.examples"))
        examples = frame(version.id, version.path).iloc[rows]
        if dataset.kind == "images":
            st.image(
                [data.thumbnail(paths().datasets, f, size=96) for f in examples["file"]],
                width=96,
                caption=[str(label) for label in examples["label"]],
            )
        else:
            st.dataframe(examples, width="stretch", placeholder="—")
    with st.popover(t("quality.evidence")):  # for whoever wants the raw record: the check's id and its evidence
        st.code(check.id, language=None)
        st.json(evidence, expanded=False)


def offer_fix(check: quality.CheckResult) -> None:
    """A button per one-click fix the check suggests (its remedy first, then the alternatives)."""
    offered = [check.remedy, *check.alternatives] if check.remedy else list(check.alternatives)
    for number, remedy in enumerate(offered):
        action, params = remedy.action, remedy.params
        if action == "review_labels":
            st.page_link("views/labeling.py", label=t("quality.review_labels"), icon=":material/edit_note:")
            continue
        if action not in quality.REMEDY_ACTIONS:
            continue
        label = t(f"remedy.{action}", columns=", ".join(params.get("columns", [])), n=len(params.get("rows", [])))
        if st.button(
            label,
            type="primary" if number == 0 else "secondary",
            key=f"fix_{check.id}_{number}",
            icon=":material/build:",
        ):
            try:
                fixed = quality.apply_remedy(store(), version=version, action=action, params=params)
            except ModelDeckError as exc:
                show_error(exc)
            else:
                st.session_state[state.FIXED] = data.note_text(fixed, lang())
                st.rerun()


if st.session_state.get(state.FIXED):
    st.success(t("quality.fixed", note=st.session_state.pop(state.FIXED)), icon=":material/check:")

for check in sorted(checks, key=lambda c: (c.passed, ["blocker", "warning", "info"].index(c.severity))):
    icon = ":material/check_circle:" if check.passed else ICONS[check.severity]
    title = f"{t('check.' + check.id + '.title')} — {check_text(check, 'message')}"
    with st.expander(title, expanded=not check.passed, icon=icon):
        st.markdown(f"**{t('quality.why')}** {check_text(check, 'why')}")
        if not check.passed:
            st.markdown(f"**{t('quality.fix')}** {check_text(check, 'fix')}")
        st.caption(t("quality.severity", severity=t(f"level.{check.severity}")))
        if not check.passed:
            offer_fix(check)
        show_evidence(check)

if counts["blocker"]:
    st.info(t("quality.blocked_hint"))
else:
    st.page_link("views/training.py", label=t("quality.go_train"), icon=":material/model_training:")
