"""Models: each model's versions, which of them holds staging and production, promote and roll back (who and why),
and the stage history. The inference server answers a stage's label with its version from the next request on."""

import getpass

import pandas as pd
import streamlit as st

from backend import i18n, serving
from backend.errors import ModelDeckError
from dashboard.common import show_error, store
from dashboard.i18n import counted, t

st.title(t("models.title"))
st.caption(t("models.intro"))
found = {m.name: m for m in serving.registry_models(store())}
if not found:
    st.info(t("models.none"))
    st.stop()

name = st.selectbox(
    t("models.model"),
    list(found),
    format_func=lambda n: counted(
        "models.model_label",
        len(found[n].versions),
        name=n,
        task=t(f"task.{found[n].task}"),
        dataset=found[n].dataset,
    ),
    key="models_model",
)


def serving_problems(model: str) -> dict[int, str]:
    """The versions the inference server could not load, with why (its status); none when it is not running."""
    try:
        status = serving.model_status(model)
    except ModelDeckError:  # no server, or it does not know the model yet: nothing to say here
        return {}
    return {
        int(v["version"]): v["status"]["error_message"]
        for v in status.get("model_version_status", [])
        if v.get("state") == "END"  # LOADING: a new version, answering for the latest once loaded
    }


summary = st.container()  # filled last, so that it shows what a promotion or rollback below just did

# 1. Promote or roll back: who and why go with either into the history.
detail = serving.registry_model(store(), name)
runs = {v.version: v.run_id for v in detail.versions}
who_col, why_col = st.columns([1, 3])
who = who_col.text_input(t("models.who"), value=getpass.getuser(), key="models_who")
why = why_col.text_input(t("models.why"), placeholder=t("models.why_hint"), key="models_why")
promote_col, rollback_col = st.columns(2)
with promote_col:
    st.subheader(t("models.promote"))
    version = st.selectbox(
        t("models.version"),
        list(runs),
        format_func=lambda v: t("models.version_label", version=v, run=runs[v]),
        key=f"models_version_{name}",
    )
    stage = st.selectbox(
        t("models.stage"), serving.STAGES, format_func=lambda s: t(f"models.stage.{s}"), key="models_stage"
    )
    if st.button(t("models.promote_button"), type="primary", key="models_promote"):
        try:
            serving.promote(store(), name, int(version), stage=stage, reason=why, assigned_by=who.strip() or None)
            st.success(t("models.promoted", name=name, version=version, stage=t(f"models.stage.{stage}")))
        except ModelDeckError as exc:
            show_error(exc)
with rollback_col:
    st.subheader(t("models.rollback"))
    now = serving.registry_model(store(), name)  # after a promotion above
    for each in serving.STAGES:
        label, earlier = t(f"models.stage.{each}"), now.previous_holder(each)
        if earlier is None:
            st.caption(t("models.no_rollback", stage=label))
            continue
        help_text = t("models.rollback_help", stage=label, version=now.model.stages[each], earlier=earlier)
        if st.button(t("models.rollback_button", stage=label), help=help_text, key=f"models_rollback_{each}"):
            try:
                change = serving.rollback(store(), name, stage=each, reason=why, assigned_by=who.strip() or None)
                st.success(t("models.rolled_back", name=name, stage=label, version=change.version))
            except ModelDeckError as exc:
                show_error(exc)

# 2. What holds each stage now, the versions and the history, read after any change above.
detail = serving.registry_model(store(), name)
with summary:
    for column, each in zip(st.columns(len(serving.STAGES)), serving.STAGES, strict=True):
        held = detail.model.stages.get(each)
        shown = t("models.stage_held", version=held) if held is not None else t("models.stage_empty")
        column.metric(t(f"models.stage.{each}"), shown)
    production_url = serving.model_url(name, label=serving.PRODUCTION)
    st.caption(t("models.call", url=production_url, label=serving.PRODUCTION))
    for broken, why in serving_problems(name).items():  # the server could not load these versions' files
        st.error(t("models.broken", version=broken, why=why), icon=":material/broken_image:")


def metric_column(name: str) -> str:
    """A metric's column header in the reader's words ("Macro F1", "宏平均 F1"), not its key (`f1_macro`)."""
    return t(f"metric.{name}") if f"metric.{name}" in i18n.EN else name


st.subheader(t("models.versions"))
table = detail.to_dict()["versions"]
st.dataframe(
    pd.DataFrame(
        [
            {
                t("models.col_version"): v["version"],
                t("models.col_run"): v["run_id"],
                t("models.col_stages"): ", ".join(t(f"models.stage.{s}") for s in v["stages"]),
                **{metric_column(k): value for k, value in v["metrics"].items()},
                t("models.col_created"): v["created_at"],
            }
            for v in table
        ]
    ),
    hide_index=True,
    width="stretch",
    placeholder="—",
)

st.subheader(t("models.history"))
if not detail.history:
    st.caption(t("models.no_history"))
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                t("models.h_at"): c.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                t("models.h_stage"): t(f"models.stage.{c.stage}"),
                t("models.h_version"): c.version,
                t("models.h_action"): t(f"models.action.{c.action}"),
                t("models.h_by"): c.assigned_by,
                t("models.h_why"): c.reason,
            }
            for c in detail.history
        ]
    ),
    hide_index=True,
    width="stretch",
    placeholder="—",
)
