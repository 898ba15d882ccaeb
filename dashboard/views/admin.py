"""Admin: the accounts and their roles, the audit log of every change (here, or as CSV), and deleting a dataset, a
run or a model once what goes with it has been read."""

import pandas as pd
import streamlit as st

from backend import auth, i18n, jobs, serving
from backend.errors import ModelDeckError
from dashboard.common import show_error, store
from dashboard.i18n import t

AUDIT_ROWS = 500  # the latest changes shown; the CSV holds them all

st.title(t("admin.title"))
try:
    accounts, entries = auth.users(store()), auth.log(store(), limit=AUDIT_ROWS)
except ModelDeckError as exc:  # not an admin (the page is not in their menu; a link still lands here)
    show_error(exc)
    st.stop()

st.subheader(t("admin.users"))
st.caption(t("admin.users_help"))
st.dataframe(
    pd.DataFrame(
        [
            {
                t("admin.col_name"): u.name,
                t("admin.col_role"): t(f"role.{u.role}"),
                t("admin.col_created"): u.created_at.strftime("%Y-%m-%d %H:%M"),
                t("admin.col_state"): t("admin.disabled") if u.disabled_at else t("admin.enabled"),
            }
            for u in accounts
        ],
        columns=[t("admin.col_name"), t("admin.col_role"), t("admin.col_created"), t("admin.col_state")],
    ),
    hide_index=True,
    width="stretch",
    placeholder="—",
)

st.subheader(t("admin.audit"))
st.caption(t("admin.audit_help", rows=AUDIT_ROWS))
st.download_button(
    t("admin.audit_csv"),
    auth.log_csv(store()),  # made now: a callable would run on a thread of its own, without the session
    file_name="modeldeck-audit.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)
st.dataframe(
    pd.DataFrame(
        [
            {
                t("admin.col_at"): e.at.strftime("%Y-%m-%d %H:%M:%S"),
                t("admin.col_who"): e.actor,
                t("admin.col_role"): t(f"role.{e.role}") if e.role in auth.ROLES else "—",
                t("admin.col_action"): t(f"audit.{e.action}") if f"audit.{e.action}" in i18n.EN else e.action,
                t("admin.col_target"): e.target,
                t("admin.col_source"): e.source,
            }
            for e in entries
        ],
        columns=[t(f"admin.col_{c}") for c in ("at", "who", "role", "action", "target", "source")],
    ),
    hide_index=True,
    width="stretch",
    placeholder="—",
)

st.subheader(t("admin.delete"))
st.caption(t("admin.delete_help"))
kind = st.radio(t("admin.delete_kind"), jobs.DELETABLE, horizontal=True, format_func=lambda k: t(f"admin.kind_{k}"))
names = {
    "dataset": [d.name for d in store().list_datasets()],
    "run": [str(r.id) for r in store().run_summaries(limit=500)[0]],
    "model": [m.name for m in serving.registry_models(store())],
}[kind]
if not names:
    st.info(t("admin.delete_none"))
    st.stop()
name = st.selectbox(t("admin.delete_which"), names, key=f"delete_{kind}")
found = jobs.deletion_plan(store(), kind, name)
st.markdown(
    t(
        "admin.delete_plan",
        runs=", ".join(map(str, found.runs)) or "—",
        models=", ".join(found.models) or "—",
        use_cases=", ".join(found.use_cases) or "—",
        folders=len(found.folders),
    )
)
if found.staged:
    st.warning(t("admin.delete_staged", staged=", ".join(found.staged)), icon=":material/block:")
if found.active:
    st.warning(t("admin.delete_active", runs=", ".join(map(str, found.active))), icon=":material/block:")
sure = st.checkbox(t("admin.delete_sure"), key=f"sure_{kind}_{name}", disabled=found.blocked)
if st.button(t("admin.delete_button"), type="primary", disabled=found.blocked or not sure, icon=":material/delete:"):
    try:
        jobs.delete(store(), kind, name)
    except ModelDeckError as exc:
        show_error(exc)
    else:
        st.toast(t("admin.deleted", name=found.name), icon=":material/check:")
        st.rerun()
