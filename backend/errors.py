"""One exception family. The CLI and the dashboard translate it at the edge; anything else is a bug."""


class ModelDeckError(Exception):
    """A problem the user can fix; the message says what happened and how to fix it."""

    exit_code = 2


class BadInput(ModelDeckError):
    """A file, column or value the user supplied cannot be used as given."""


class NotFound(ModelDeckError):
    """A dataset, run or model the user named does not exist."""


class QualityGateBlocked(ModelDeckError):
    """The quality gate has a failing blocker and no override reason was given."""

    exit_code = 3


class InvalidState(ModelDeckError):
    """The action does not fit the current state (e.g. resuming a run that finished)."""


class ServingUnavailable(ModelDeckError):
    """The inference server cannot be reached or does not know the model."""
