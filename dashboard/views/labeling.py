"""Labeling: walk through suspected label errors and unlabeled rows; accept or change each label, then
save the changes as a new dataset version."""

import pandas as pd
import streamlit as st

from backend import data, quality
from backend.errors import ModelDeckError
from dashboard import state
from dashboard.common import frame, paths, report, require_dataset, require_target, show_error, store
from dashboard.i18n import lang, t

st.title(t("labeling.title"))
st.caption(t("labeling.intro"))
dataset, version = require_dataset()
require_target(version)
rows = frame(version.id, version.path)
target = version.target


def _listed_rows(check: quality.CheckResult) -> list[int]:
    """The rows a check asks to review (reports stored before the text check listed its rows hold a count)."""
    rows = check.evidence.get("rows")
    return rows if isinstance(rows, list) else []


# 1. The queue: suspects from the label-error check first, then rows without a label.
checks = {c.id: c for c in report(version.id, version.target, version.task).checks}
suspects = checks["label_errors"].evidence.get("suspects", []) if "label_errors" in checks else []
queue = [{"row": int(s["row"]), "suggested": s.get("suggested"), "confidence": s.get("confidence")} for s in suspects]
in_queue = {item["row"] for item in queue}
to_review = [
    r
    for c in checks.values()
    if not c.passed and c.remedy is not None and c.remedy.action == "review_labels"
    for r in _listed_rows(c)
]  # e.g. one image under two labels, one text with two labels
to_review += rows.index[rows[target].isna()][:500].tolist()
queue += [{"row": int(r), "suggested": None, "confidence": None} for r in dict.fromkeys(to_review) if r not in in_queue]
if not queue:
    st.success(t("labeling.nothing", name=dataset.name))
    st.stop()

pending: dict[int, str] = st.session_state.setdefault(state.LABELS, {}).setdefault(version.id, {})
position = st.session_state.setdefault(state.LABEL_POSITION, {}).get(version.id, 0) % len(queue)
item = queue[position]
classes = sorted(rows[target].dropna().astype(str).unique().tolist())

st.progress(
    (position + 1) / len(queue), text=t("labeling.progress", n=position + 1, total=len(queue), changes=len(pending))
)
given = rows[target].iloc[item["row"]]
given_text = t("labeling.unlabeled") if pd.isna(given) else str(given)
left, right = st.columns([2, 1])
with left:
    st.markdown(t("labeling.row", row=item["row"]))
    if dataset.kind == "images":
        st.image(data.thumbnail(paths().datasets, rows["file"].iloc[item["row"]], size=256))
    else:
        st.dataframe(
            rows.drop(columns=[target]).iloc[[item["row"]]].T.rename(columns=lambda _: t("labeling.value")),
            width="stretch",
            placeholder="—",
        )
with right:
    st.metric(t("labeling.given"), given_text)
    if item["suggested"] is not None:
        st.metric(
            t("labeling.suggested"),
            str(item["suggested"]),
            help=t("labeling.confidence", p=float(item["confidence"] or 0)),
        )
    default = pending.get(item["row"], str(item["suggested"] or (given if not pd.isna(given) else classes[0])))
    choice = st.selectbox(
        t("labeling.label"),
        classes,
        index=classes.index(default) if default in classes else 0,
        key=f"label_{version.id}_{item['row']}",
    )


def move(step: int) -> None:
    st.session_state[state.LABEL_POSITION][version.id] = position + step


a, b, c = st.columns(3)
if a.button(t("labeling.keep"), icon=":material/check:", width="stretch"):
    pending.pop(item["row"], None)
    move(1)
    st.rerun()
if b.button(t("labeling.set", label=choice), type="primary", icon=":material/edit:", width="stretch"):
    if pd.isna(given) or choice != str(given):
        pending[item["row"]] = choice
    move(1)
    st.rerun()
if c.button(t("labeling.back"), icon=":material/undo:", width="stretch", disabled=position == 0):
    move(-1)
    st.rerun()

# 2. Save: every relabel makes a new version whose parent is this one.
st.divider()
if pending:
    st.dataframe(
        pd.DataFrame(
            [
                {t("labeling.row_col"): r, t("labeling.given"): str(rows[target].iloc[r]), t("labeling.new"): label}
                for r, label in pending.items()
            ]
        ),
        hide_index=True,
        width="stretch",
        placeholder="—",
    )
if st.button(t("labeling.save", n=len(pending)), disabled=not pending, type="primary", icon=":material/save:"):
    try:
        new = quality.relabel(store(), version=version, labels=dict(pending))
    except ModelDeckError as exc:
        show_error(exc)
    else:
        st.session_state[state.LABELS].pop(version.id, None)
        st.session_state[state.FIXED] = data.note_text(new, lang())
        state.set_dataset(dataset.id)
        st.switch_page("views/quality.py")
