"""The message catalog: every word the user reads, in English (`en.py`) and Simplified Chinese (`zh.py`).

Keys are dotted (`page.item`, `check.<id>.why`) and grouped by prefix; values are `str.format` templates.
Both languages have the same keys and the same placeholders (a test checks). The backend renders quality
checks' messages from here too, so the CLI's English and the dashboard's words never drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from backend.i18n import en, zh

EN: dict[str, str] = en.MESSAGES
ZH: dict[str, str] = zh.MESSAGES
CATALOG: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}
LANGUAGES = tuple(CATALOG)


class TemplateError(ValueError):
    """A catalog template that its parameters cannot fill (a test failure, never shown to a user)."""


def _strict() -> bool:
    """Tests set MODELDECK_STRICT_MESSAGES=1, so a bad template fails them instead of showing raw."""
    return os.environ.get("MODELDECK_STRICT_MESSAGES") == "1"


@dataclass(frozen=True)
class Message:
    """Words to show later, in the reader's language: a catalog key and its parameters.

    Stored (e.g. a dataset version's notes, as `to_dict()`) or nested as a parameter of another message, where
    it is rendered in the same language as the message around it.
    """

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return render(lang, self.key, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "params": self.params}

    @classmethod
    def of(cls, key: str, /, **params: Any) -> Message:
        return cls(key, params)

    @classmethod
    def counted(cls, key: str, count: int, /, **params: Any) -> Message:
        """`key.one` for a count of one and `key.other` for any other, with `count` among the parameters."""
        return cls(f"{key}.{'one' if count == 1 else 'other'}", {"count": count, **params})


def render(lang: str, key: str, **params: Any) -> str:
    """The text for `key` in `lang` (English where the language lacks it), with `params` filled in.

    An unknown key comes back as the key itself, and a template its parameters cannot fill comes back
    unfilled, so a user never sees a traceback; under MODELDECK_STRICT_MESSAGES=1 both raise instead.

    Raises:
        TemplateError: under MODELDECK_STRICT_MESSAGES=1, for an unknown key or a template that fails.
    """
    template = CATALOG.get(lang, EN).get(key) or EN.get(key)
    if template is None:
        if _strict():
            raise TemplateError(f"No message '{key}' in the catalog. Add it to backend/i18n/en.py and zh.py.")
        return key
    params = {k: v.text(lang) if isinstance(v, Message) else v for k, v in params.items()}
    try:
        return template.format(**params)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError) as exc:
        if _strict():
            raise TemplateError(f"Message '{key}' ({lang}) cannot be filled with {sorted(params)}: {exc!r}") from exc
        return template


__all__ = ["CATALOG", "EN", "LANGUAGES", "ZH", "Message", "TemplateError", "render"]
