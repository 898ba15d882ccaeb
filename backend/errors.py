"""One exception family. The CLI and the dashboard translate it at the edge; anything else is a bug.

An error carries a catalog key and its parameters, so each reader gets it in their language:
`str(exc)` is the English (for the CLI, logs and API clients), `exc.text("zh")` the Chinese.
"""

from __future__ import annotations

import errno
from typing import Any

from backend.i18n import render


class ModelDeckError(Exception):
    """A problem the user can fix; the message says what happened and how to fix it."""

    exit_code = 2

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(render("en", key, **params))

    def text(self, lang: str) -> str:
        """The message in `lang` ("en" or "zh")."""
        return render(lang, self.key, **self.params)

    def __reduce__(self) -> tuple[Any, ...]:  # keep key and parameters across processes
        return (_rebuild, (type(self), self.key, self.params))


def _rebuild(cls: type[ModelDeckError], key: str, params: dict[str, Any]) -> ModelDeckError:
    return cls(key, **params)


class BadInput(ModelDeckError):
    """A file, column or value the user supplied cannot be used as given."""


class NotFound(ModelDeckError):
    """A dataset, run or model the user named does not exist."""


class SampleUnavailable(BadInput):
    """An optional sample's package is not installed here: skip the sample, the rest of the app works."""


class QualityGateBlocked(ModelDeckError):
    """The quality gate has a failing blocker and no override reason was given."""

    exit_code = 3


class Forbidden(ModelDeckError):
    """The signed-in account's role may not do this (an editor deleting, a viewer training)."""

    exit_code = 5


class Busy(ModelDeckError):
    """The run history stayed locked by another process past the timeout; nothing was written: try again."""

    exit_code = 6


def busy(exc: BaseException) -> Busy | None:
    """The user's message for a database that stayed locked (db's DatabaseBusy), else None."""
    from db import DatabaseBusy

    if isinstance(exc, DatabaseBusy):
        return Busy("error.db.busy", seconds=exc.seconds)
    return None


class InvalidState(ModelDeckError):
    """The action does not fit the current state (e.g. resuming a run that finished)."""


class ServingUnavailable(ModelDeckError):
    """The inference server cannot be reached or does not know the model."""


FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or over a quota


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error behind it, is a full disk.

    TensorFlow's own file errors only say it in words.
    """
    for _ in range(10):
        if exc is None:
            return False
        if isinstance(exc, OSError) and exc.errno in FULL:  # `db.DatabaseFull` is one too
            return True
        if any(words in str(exc) for words in ("No space left on device", "Disk quota exceeded")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
