"""Logging for the long-running roles (`modeldeck worker`, `modeldeck serve`): one line per event on stderr.

    2026-12-03 16:30:01 INFO worker run=12 started classification on dataset 'churn' version 3f2a9c1b0d4e

Each role configures it once, when its command starts; the level comes from MODELDECK_LOG_LEVEL (default
INFO). Modules log through `logging.getLogger(__name__)` and never configure it themselves.
"""

from __future__ import annotations

import logging
import os
import sys

LEVEL_VARIABLE = "MODELDECK_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def configure(role: str) -> None:
    """Sends every log record of this process to stderr, one line each: time, level, role, message.

    Args:
        role: What this process is (`worker`, `serve`), written after the level.
    """
    wanted = os.environ.get(LEVEL_VARIABLE, "INFO").strip().upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {role} %(message)s", DATE_FORMAT))
    logging.basicConfig(level=wanted if wanted in LEVELS else "INFO", handlers=[handler], force=True)
    if wanted not in LEVELS:  # a typo in the variable should not stop a worker from starting
        logging.getLogger(__name__).warning(
            "%s=%s is not a level; using INFO. Expected one of: %s", LEVEL_VARIABLE, wanted, ", ".join(LEVELS)
        )
