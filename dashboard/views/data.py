"""Data: add a dataset (upload or sample), look at it, choose the target."""

import pandas as pd
import streamlit as st

from backend import data, quality
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.common import current, frame, paths, show_error, store
from dashboard.i18n import lang, t


@st.cache_data(show_spinner=False, max_entries=4)
def excel_sheets(raw: bytes, filename: str) -> list[str]:
    try:
        return data.read_table(raw, filename).sheets
    except ModelDeckError:
        return []  # adding it shows the reason


def show_gallery(index) -> None:
    """A few images of each class, for an image dataset (instead of a table preview)."""
    st.markdown(f"**{t('data.gallery')}**")
    for label, group in list(index.groupby("label", dropna=False))[:12]:
        st.caption(f"{label} · {len(group):,}")
        st.image([data.thumbnail(paths().datasets, f, size=96) for f in group["file"].head(8)], width=96)


def show_versions() -> None:
    """Every fix or relabel made a new version; compare any two."""
    st.subheader(t("data.versions"))
    lineage = quality.lineage(store(), dataset_id=dataset.id, lang=lang())
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("data.v_version"): v["version"],
                    t("data.v_parent"): v["parent"] or "—",
                    t("data.rows"): v["rows"],
                    t("data.columns"): v["columns"],
                    t("data.v_note"): v["note"]
                    if v["parent"]
                    else " · ".join(filter(None, [t("data.v_original"), v["note"]])),
                    t("data.v_created"): v["created_at"],
                }
                for v in lineage
            ]
        ),
        width="stretch",
        hide_index=True,
        placeholder="—",
    )
    if len(lineage) >= 2:
        by_hash = {v.hash[:12]: v for v in store().list_versions(dataset.id)}
        hashes = list(by_hash)
        left, right = st.columns(2)
        old = left.selectbox(t("data.compare_old"), hashes, index=len(hashes) - 2)
        new = right.selectbox(t("data.compare_new"), hashes, index=len(hashes) - 1)
        diff = quality.compare_versions(by_hash[old], by_hash[new])
        a, b, c, d = st.columns(4)
        a.metric(t("data.rows_removed"), f"{diff['rows_removed']:,}")
        b.metric(t("data.rows_added"), f"{diff['rows_added']:,}")
        c.metric(t("data.rows_relabelled"), f"{diff['rows_relabelled']:,}")
        d.metric(
            t("data.columns_removed"), len(diff["columns_removed"]), help=", ".join(diff["columns_removed"]) or None
        )
        if diff["columns_retyped"]:
            st.caption(t("data.columns_retyped", names=", ".join(diff["columns_retyped"])))


st.title(t("data.title"))
st.caption(t("data.intro"))

# 1. Add: an upload or a built-in sample.
upload_tab, sample_tab = st.tabs([t("data.tab_upload"), t("data.tab_sample")])
with upload_tab:
    kinds = ["csv", "tsv", "txt", "parquet", "xlsx", "jsonl", "ndjson", "zip"]
    uploaded = st.file_uploader(
        t("data.upload_label"), type=kinds, key=f"upload_{st.session_state[state.UPLOAD_NONCE]}"
    )
    if lang() != "en":  # Streamlit's own words in the drop zone cannot be translated: ours, under it, instead
        st.html("<style>[data-testid='stFileUploaderDropzoneInstructions'] { display: none; }</style>")
        limit = st.get_option("server.maxUploadSize")
        st.caption(t("data.upload_limits", mb=limit, kinds="、".join(k.upper() for k in kinds)))
    sheet = None
    if uploaded is not None and uploaded.name.lower().endswith(".xlsx"):
        sheets = excel_sheets(uploaded.getvalue(), uploaded.name)
        sheet = st.selectbox(t("data.sheet"), sheets) if len(sheets) > 1 else None
    archive = None
    if uploaded is not None and not uploaded.name.lower().endswith(".zip"):
        with st.expander(t("data.image_table")):
            archive = st.file_uploader(
                t("data.image_zip"), type=["zip"], key=f"zip_{st.session_state[state.UPLOAD_NONCE]}"
            )
    if uploaded is not None and st.button(t("data.add_upload"), type="primary"):
        try:
            if archive is not None:
                dataset, _ = data.add_image_table(
                    store(),
                    paths=paths(),
                    table=uploaded.getvalue(),
                    table_filename=uploaded.name,
                    archive=archive.getvalue(),
                    archive_filename=archive.name,
                )
            else:
                dataset, _ = data.add_dataset(
                    store(), paths=paths(), data=uploaded.getvalue(), filename=uploaded.name, sheet=sheet
                )
        except ModelDeckError as exc:
            show_error(exc)
        else:
            state.set_dataset(dataset.id)
            st.session_state[state.UPLOAD_NONCE] += 1
            st.session_state[state.ADDED] = dataset.id
            st.rerun()
with sample_tab:
    titles = {n: s.text("title", lang()) for n, s in data.SAMPLES.items()}  # fixed when drawn, as the widget is
    name = st.selectbox(t("data.sample_label"), list(titles), format_func=titles.__getitem__)
    sample = data.SAMPLES[name]
    card = {part: sample.text(part, lang()) for part in ("source", "licence", "meaning")}
    st.markdown(t("data.card", target=sample.target, **card))
    if st.button(t("data.add_sample"), type="primary"):
        with st.spinner(t("data.loading")):
            dataset, _ = data.add_sample(store(), paths=paths(), sample=name)
        state.set_dataset(dataset.id)
        st.session_state[state.ADDED] = dataset.id
        st.rerun()

chosen = current()
if chosen is None:
    st.info(t("data.empty"))
    st.stop()

# 2. Choose among stored data.
all_datasets = store().list_datasets()
ids = [d.id for d in all_datasets]
dataset, version = chosen
picked = st.selectbox(
    t("data.current"),
    ids,
    index=ids.index(dataset.id),
    format_func=lambda i: next(d.name for d in all_datasets if d.id == i),
)
if picked != dataset.id:
    state.set_dataset(picked)
    st.rerun()

if st.session_state.pop(state.ADDED, None) == dataset.id:  # once, after the rerun that shows what was added
    shape = {"rows": version.rows, "columns": len(version.columns), "version": version.hash[:8]}
    st.success(t("data.added", name=dataset.name, **shape), icon=":material/check_circle:")
st.subheader(dataset.name)
a, b, c = st.columns(3)
a.metric(t("data.rows"), f"{version.rows:,}")
b.metric(t("data.columns"), len(version.columns))
c.metric(t("data.version"), version.hash[:8])
st.caption(t("data.source", source=dataset.source))

if dataset.kind == "images":
    show_gallery(frame(version.id, version.path))
    show_versions()
    st.stop()

# 3. Kind, target and task (a table).
table_kinds = ["tabular", "text", "ratings"]
kind = st.radio(
    t("data.kind"),
    table_kinds,
    index=table_kinds.index(dataset.kind) if dataset.kind in table_kinds else 0,
    format_func=lambda k: t(f"datakind.{k}"),
    horizontal=True,
    help=t("data.kind_help"),
)
if kind != dataset.kind:
    data.set_kind(store(), dataset=dataset, kind=kind)
    st.rerun()
names = [col["name"] for col in version.columns]
left, right = st.columns(2)
target = left.selectbox(
    t("data.target"),
    [None, *names],
    format_func=lambda n: t("data.no_target") if n is None else n,
    index=names.index(version.target) + 1 if version.target in names else 0,
)
tasks = ["classification", "regression"]
task = right.radio(
    t("data.task"),
    tasks,
    format_func=lambda x: t(f"task.{x}"),
    horizontal=True,
    index=tasks.index(version.task) if version.task in tasks else 0,
    disabled=target is None,
)
if target != version.target or (target is not None and task != version.task):
    new_task = "auto" if target != version.target else task
    version = data.set_target(store(), version=version, target=target, task=new_task)
    st.rerun()
if target is not None:
    st.success(t("data.task_inferred", target=target, task=t(f"task.{version.task}")))

# 4. Preview and column types.
rows = frame(version.id, version.path)
st.markdown(f"**{t('data.preview')}**")
st.dataframe(rows.head(100), width="stretch", height=260, placeholder="—")
st.markdown(f"**{t('data.column_types')}**")
st.dataframe(
    pd.DataFrame(
        [
            {
                t("data.col_name"): col["name"],
                t("data.col_kind"): t(f"kind.{col['kind']}"),
                t("data.col_dtype"): col["dtype"],
                t("data.col_missing"): col["missing"],
                t("data.col_unique"): col["unique"],
            }
            for col in version.columns
        ]
    ),
    width="stretch",
    hide_index=True,
    placeholder="—",
)

show_versions()
