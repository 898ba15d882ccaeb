"""Use cases: the models in business words, each a card that opens it; made, edited and hidden here."""

import streamlit as st

from backend import jobs
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.common import show_error, store
from dashboard.i18n import lang, t

COLUMNS = 3
RUN_CHOICES = 200  # the newest finished runs offered for a new use case

st.title(t("home.title"))
st.caption(t("home.intro"))
demo = st.session_state[state.DEMO]


def card(item: jobs.UseCaseCard) -> None:
    """One use case: what it answers, for whom, how good it is in words, and a button that opens it."""
    use_case, run = item.use_case, item.run
    with st.container(border=True):
        st.subheader(use_case.title)
        if use_case.hidden:
            st.caption(f":material/visibility_off: {t('home.hidden')}")
        if use_case.description:
            st.markdown(use_case.description)
        if use_case.audience:
            st.caption(t("home.for", audience=use_case.audience))
        st.markdown(f"**{item.quality.text(lang())}**")
        if not demo:
            serving = "home.serving_production" if item.stage else "home.serving"
            st.caption(t(serving, name=run.model_name, version=run.model_version))
        if st.button(t("home.open"), key=f"open_{use_case.id}", type="primary", icon=":material/arrow_forward:"):
            state.open_use_case(use_case.id)
            st.switch_page("views/usecase.py")
        if not demo:
            editor(item)


def editor(item: jobs.UseCaseCard) -> None:
    use_case = item.use_case
    with st.popover(t("home.edit"), icon=":material/edit:"):
        with st.form(f"edit_{use_case.id}"):
            title = st.text_input(t("home.field_title"), use_case.title)
            description = st.text_area(t("home.field_description"), use_case.description)
            audience = st.text_input(t("home.field_audience"), use_case.audience)
            hidden = st.checkbox(t("home.hide"), value=use_case.hidden)
            if st.form_submit_button(t("home.save")):
                try:
                    jobs.update_use_case(
                        store(), use_case.id, title=title, description=description, audience=audience, hidden=hidden
                    )
                except ModelDeckError as exc:
                    show_error(exc)
                    return
                st.rerun()


def new_use_case() -> None:
    """A use case from any finished run: the question it answers, what it does, for whom."""
    finished, _ = store().run_summaries(status="succeeded", limit=RUN_CHOICES)
    runs = {r.id: r for r in finished if r.model_name}
    with st.expander(t("home.new"), icon=":material/add:", expanded=not cards):
        if not runs:
            st.info(t("home.no_runs"))
            return
        with st.form("new_use_case"):
            run_id = st.selectbox(
                t("home.from_run"),
                list(runs),
                format_func=lambda i: t(
                    "home.run_label",
                    id=i,
                    task=t(f"task.{runs[i].task}"),
                    dataset=runs[i].dataset,
                    name=runs[i].model_name,
                    version=runs[i].model_version,
                ),
            )
            title = st.text_input(t("home.field_title"), placeholder=t("home.field_title_hint"))
            description = st.text_area(t("home.field_description"))
            audience = st.text_input(t("home.field_audience"), placeholder=t("home.field_audience_hint"))
            if st.form_submit_button(t("home.create"), type="primary"):
                try:
                    made = jobs.create_use_case(
                        store(), run_id=run_id, title=title, description=description, audience=audience
                    )
                except ModelDeckError as exc:
                    show_error(exc)
                    return
                st.toast(t("home.created", title=made.title), icon=":material/check:")
                st.rerun()


show_hidden = False if demo else st.toggle(t("home.show_hidden"), key="show_hidden_use_cases")
cards = jobs.use_case_cards(store(), hidden=show_hidden)
if not cards:
    st.info(t("home.none"))
for start in range(0, len(cards), COLUMNS):
    for column, item in zip(st.columns(COLUMNS), cards[start : start + COLUMNS], strict=False):
        with column:
            card(item)
if not demo:
    new_use_case()
