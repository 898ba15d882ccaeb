"""Who is using the dashboard: a local account's sign-in, or an identity provider's (Streamlit's `st.login`).

Off on loopback (whoever can open the page can already read the files, and acts as the machine's user); asked
for when MODELDECK_SIGN_IN=1, which `modeldeck ui` sets as soon as it listens beyond loopback.

- Local accounts (`modeldeck users add NAME --role editor`): a name and password form; the session lasts
  `auth.SESSION_HOURS` and is checked again on every run, so a disabled account or a changed password ends it.
- An identity provider, where `.streamlit/secrets.toml` has an `[auth]` section (see the README): "Sign in
  with …" goes through OIDC; the role is that of the local account named by the e-mail, else viewer.

The backend checks the role of every change (`backend.auth`); hiding what a role may not do here is a courtesy.
"""

from __future__ import annotations

import streamlit as st

from backend import auth
from backend.errors import ModelDeckError
from dashboard.common import show_error, store
from dashboard.i18n import t

TOKEN = "session_token"  # the local session's token, for this browser tab
OIDC_ACTOR = "oidc_actor"  # the identity provider's user this browser session has recorded as signed in


def _source() -> str:
    return f"dashboard {st.context.ip_address or 'localhost'}"  # Streamlit gives no address for a local browser


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def _session() -> auth.Actor | None:
    """The browser session's actor: a live local session, or a signed-in identity provider's user."""
    token = st.session_state.get(TOKEN)
    if token:
        found = auth.session_actor(store(), token, source=_source())
        if found is None:  # expired, signed out elsewhere, disabled, or its password changed
            st.session_state.pop(TOKEN, None)
        return found
    if _oidc_configured() and st.user.is_logged_in:
        email = str(st.user.get("email") or st.user.get("name") or "?")
        role = auth.account_role(store(), email) or "viewer"
        actor = auth.Actor(name=email, role=role, source=_source())
        if st.session_state.get(OIDC_ACTOR) != email:  # once per browser session: the provider signed them in
            st.session_state[OIDC_ACTOR] = email
            with auth.acting_as(actor):
                auth.audit(store(), "sign_in", email, via="oidc")
        return actor
    return None


def provider() -> auth.Actor | None:
    """`backend.auth`'s source of the actor for this browser session (registered once, in app.py).

    Without sign-in: None, so the machine's user acts. With sign-in and nobody signed in: an anonymous viewer,
    so that nothing a page or its fragment calls can change anything.
    """
    if not auth.sign_in_required():
        return None
    return _session() or auth.Actor(name="anonymous", role="viewer", source=_source())


def gate() -> auth.Actor | None:
    """The signed-in actor; without one, the sign-in form, and the page stops there. None when sign-in is off."""
    if not auth.sign_in_required():
        return None
    actor = _session()
    if actor is not None:
        return actor
    st.title(t("signin.title"))
    st.caption(t("signin.intro"))
    if _oidc_configured():
        st.button(t("signin.oidc"), on_click=st.login, type="primary", icon=":material/login:")
        st.divider()
    with st.form("sign_in"):
        name = st.text_input(t("signin.name"), autocomplete="username")
        password = st.text_input(t("signin.password"), type="password", autocomplete="current-password")
        if st.form_submit_button(t("signin.submit"), type="primary"):
            try:
                token, _ = auth.sign_in(store(), name, password, source=_source())
            except ModelDeckError as exc:
                show_error(exc)
            else:
                st.session_state[TOKEN] = token
                st.rerun()
    st.stop()


def sidebar(actor: auth.Actor | None) -> None:
    """Who is signed in, in which role, and a way out."""
    if actor is None:
        return
    st.caption(t("signin.as", name=actor.name, role=t(f"role.{actor.role}")))
    if st.button(t("signin.out"), icon=":material/logout:", key="sign_out"):
        token = st.session_state.pop(TOKEN, None)
        if token:
            auth.sign_out(store(), token)
        elif _oidc_configured() and st.user.is_logged_in:
            st.logout()
        st.rerun()
