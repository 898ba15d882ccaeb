"""ModelDeck's dashboard: `streamlit run dashboard/app.py` (or `modeldeck ui`, which also starts the
worker and the inference server)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` puts only this folder on the path

from backend import auth  # noqa: E402
from backend.errors import busy  # noqa: E402
from dashboard import signin, state  # noqa: E402
from dashboard.common import current, settle, store  # noqa: E402
from dashboard.i18n import LANGUAGES, lang, t  # noqa: E402

PAGES = [
    ("views/home.py", "nav.home", ":material/home:"),  # first: the use cases, and all that demo mode shows
    ("views/data.py", "nav.data", ":material/table_view:"),
    ("views/quality.py", "nav.quality", ":material/fact_check:"),
    ("views/labeling.py", "nav.labeling", ":material/edit_note:"),
    ("views/training.py", "nav.training", ":material/model_training:"),
    ("views/evaluation.py", "nav.evaluation", ":material/analytics:"),
    ("views/compare.py", "nav.compare", ":material/compare_arrows:"),
    ("views/models.py", "nav.models", ":material/deployed_code:"),
    ("views/monitoring.py", "nav.monitoring", ":material/monitor_heart:"),
    ("views/playground.py", "nav.playground", ":material/science:"),
    ("views/admin.py", "nav.admin", ":material/admin_panel_settings:"),
]
# What each role sees (the backend checks every change whatever a page shows): a viewer, the models' pages.
VIEWER_PAGES = {
    "views/home.py",
    "views/evaluation.py",
    "views/compare.py",
    "views/models.py",
    "views/monitoring.py",
    "views/playground.py",
}

# Our own file: a ":material/…:" or emoji page icon makes the browser fetch it from Google's or a CDN's servers.
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"
st.set_page_config(page_title="ModelDeck", page_icon=str(ICON), layout="wide")
state.init()
auth.actor_from(signin.provider)  # every service call in this session acts as its signed-in account

with st.sidebar:
    st.markdown("### :material/explore: ModelDeck")
    codes: list[str] = list(LANGUAGES)
    choice = st.selectbox(
        t("sidebar.language"),
        codes,
        index=codes.index(lang()),
        format_func=LANGUAGES.__getitem__,
        key="language_picker",
    )
    if choice is not None and choice != lang():
        state.set_lang(choice)
        st.rerun()
    actor = signin.gate()  # with sign-in on and nobody signed in, the page is the sign-in form
    signin.sidebar(actor)
    demo = st.toggle(t("sidebar.demo"), value=st.session_state[state.DEMO], help=t("sidebar.demo_help"))
    if demo != st.session_state[state.DEMO]:
        state.set_demo(demo)
        st.rerun()
    chosen = current() if not demo else None
    if chosen is not None:
        dataset, version = chosen
        st.caption(t("sidebar.dataset", name=dataset.name, version=version.hash[:8], rows=version.rows))
    from backend.playground import worker_alive

    if not demo and not worker_alive(store()):
        st.warning(t("sidebar.no_worker"), icon=":material/pause_circle:")

HIDDEN = ["views/usecase.py"]  # one use case, opened from its card: not in the menu
role = (actor or auth.current()).role
shown = [
    page
    for page in (PAGES[:1] if st.session_state[state.DEMO] else PAGES)  # demo mode: the use cases alone
    if (role != "viewer" or page[0] in VIEWER_PAGES) and (page[0] != "views/admin.py" or role == "admin")
]
st.session_state[state.PAGES] = {path for path, _, _ in shown} | set(HIDDEN)
navigation = st.navigation(
    [
        *(
            st.Page(path, title=t(key), icon=icon, default=(i == 0), url_path=Path(path).stem)
            for i, (path, key, icon) in enumerate(shown)
        ),
        *(st.Page(path, title=t("nav.home"), url_path=Path(path).stem, visibility="hidden") for path in HIDDEN),
    ]
)
try:
    navigation.run()
except Exception as exc:  # the run history locked past its timeout: one line, not a traceback (nothing was written)
    said = busy(exc)
    if said is None:
        raise
    st.error(said.text(lang()), icon=":material/hourglass_top:")
settle()
