"""Quality: the gate before training. Blockers explained in plain words, with a suggested fix."""

import plotly.graph_objects as go
import streamlit as st

from dashboard.common import frame, report, require_dataset, require_target
from dashboard.i18n import check_text, t

ICONS = {"blocker": ":material/block:", "warning": ":material/warning:", "info": ":material/info:"}

st.title(t("quality.title"))
dataset, version = require_dataset()
require_target(version)
result = report(version.id, version.target, version.task)
checks = result["checks"]

failing = [c for c in checks if not c["passed"]]
counts = {s: sum(1 for c in failing if c["severity"] == s) for s in ("blocker", "warning", "info")}
verdict = "block" if counts["blocker"] else "warn" if counts["warning"] else "pass"
{"block": st.error, "warn": st.warning, "pass": st.success}[verdict](t(f"quality.verdict.{verdict}", name=dataset.name))
a, b, c, d = st.columns(4)
a.metric(t("quality.checks_run"), len(checks))
b.metric(t("severity.blocker"), counts["blocker"])
c.metric(t("severity.warning"), counts["warning"])
d.metric(t("severity.info"), counts["info"])

for check in sorted(checks, key=lambda c: (c["passed"], ["blocker", "warning", "info"].index(c["severity"]))):
    icon = ":material/check_circle:" if check["passed"] else ICONS[check["severity"]]
    title = f"{t('check.' + check['id'] + '.title')} — {check_text(check, 'message')}"
    with st.expander(title, expanded=not check["passed"], icon=icon):
        st.markdown(f"**{t('quality.why')}** {check_text(check, 'why')}")
        if not check["passed"]:
            st.markdown(f"**{t('quality.fix')}** {check_text(check, 'fix')}")
        st.caption(t("quality.severity", severity=t(f"level.{check['severity']}"), id=check["id"]))
        evidence = check.get("evidence") or {}
        if check["id"] == "missing_values" and evidence.get("missing_by_column"):
            missing = evidence["missing_by_column"]
            fig = go.Figure(go.Bar(x=list(missing), y=[v / version.rows for v in missing.values()]))
            fig.update_layout(
                height=260, margin={"t": 10, "b": 10}, yaxis_tickformat=".0%", yaxis_title=t("quality.missing_share")
            )
            st.plotly_chart(fig, width="stretch")
        elif check["id"] == "too_few_classes" and evidence.get("classes"):
            classes = evidence["classes"]
            fig = go.Figure(go.Bar(x=list(classes), y=list(classes.values())))
            fig.update_layout(height=260, margin={"t": 10, "b": 10}, yaxis_title=t("quality.rows_per_class"))
            st.plotly_chart(fig, width="stretch")
        elif evidence.get("example_rows"):
            st.caption(t("quality.examples"))
            st.dataframe(frame(version.id, version.path).loc[evidence["example_rows"]], width="stretch")
        elif evidence:
            st.json(evidence, expanded=False)

if counts["blocker"]:
    st.info(t("quality.blocked_hint"))
else:
    st.page_link("views/training.py", label=t("quality.go_train"), icon=":material/model_training:")
