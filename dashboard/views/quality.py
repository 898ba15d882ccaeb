"""Quality: the gate before training. Blockers explained in plain words, with a suggested fix."""

import plotly.graph_objects as go
import streamlit as st

from backend import data, i18n, quality
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
result = report(version.id, version.target, version.task)
checks = result.checks

failing = [c for c in checks if not c.passed]
counts = {s: sum(1 for c in failing if c.severity == s) for s in ("blocker", "warning", "info")}
verdict = "block" if counts["blocker"] else "warn" if counts["warning"] else "pass"
{"block": st.error, "warn": st.warning, "pass": st.success}[verdict](t(f"quality.verdict.{verdict}", name=dataset.name))
score, run_count, blockers, warnings, notes = st.columns(5)
score.metric(t("quality.score"), f"{quality.score(checks)}/100", help=t("quality.score_help"))
run_count.metric(t("quality.checks_run"), len(checks))
blockers.metric(t("severity.blocker"), counts["blocker"])
warnings.metric(t("severity.warning"), counts["warning"])
notes.metric(t("severity.info"), counts["info"])


def show_evidence(check: quality.CheckResult) -> None:
    """Counts per column or class as a bar chart, example rows as a table, anything else as JSON."""
    evidence = check.evidence
    for key, value in evidence.items():
        charted = f"evidence.{key}" in i18n.EN  # only counts that have a title in the catalog
        numbers = isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values())
        if charted and numbers and len(value) >= 2:
            fig = go.Figure(go.Bar(x=list(value), y=list(value.values())))
            fig.update_layout(height=240, margin={"t": 30, "b": 10}, title=t(f"evidence.{key}"))
            st.plotly_chart(fig, width="stretch", key=f"chart_{check.id}_{key}", config=plotly_config())
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
