"""`t(key, **params)`: UI text in the language chosen in the sidebar (backend/i18n holds both languages)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from backend import i18n as catalog
from backend.quality import CheckResult
from dashboard import state

LANGUAGES = {"en": "English", "zh": "简体中文"}


def lang() -> str:
    value = st.session_state.get(state.LANG, "en")
    return value if value in LANGUAGES else "en"


def t(key: str, **params: Any) -> str:
    return catalog.render(lang(), key, **params)


def counted(key: str, count: int, **params: Any) -> str:
    """`key.one` for a count of one and `key.other` for any other, with `count` among the parameters."""
    return catalog.Message.counted(key, count, **params).text(lang())


def sentences(*texts: str) -> str:
    """Whole sentences as one paragraph: a space after each in English, none after Chinese's full stop."""
    return ("" if lang() == "zh" else " ").join(text for text in texts if text)


def check_text(check: CheckResult, part: str) -> str:
    """A quality check's message ('message'), explanation ('why') or fix ('fix') in the UI language."""
    return check.text(lang()) if part == "message" else t(f"check.{check.id}.{part}")
