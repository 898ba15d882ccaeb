"""Admin: the accounts and their roles, and the audit log of every change, to read here or take away as CSV."""

import pandas as pd
import streamlit as st

from backend import auth, i18n
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
