"""Where things live. Everything a running app writes is under MODELDECK_HOME."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REST_PORT = 8502  # 8501 is the dashboard's; TensorFlow Serving's own default clashes with it
DEFAULT_GRPC_PORT = 8500
DEFAULT_SCORING_PORT = 8504  # `modeldeck ui`'s second inference server, for the dashboard's file scoring
# Scoring a file is background work, as training is (MODELDECK_JOB_NICE): its server (`ui`) and the threads that
# encode, send and decode its batches (`scoring`) run this many steps below the pages and the inference server.
# On a busy machine a page or a one-row request does not wait behind a batch; alone, a file scores as fast as ever.
SCORING_NICE = 10


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def datasets(self) -> Path:
        return self.home / "datasets"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    def run_dir(self, run_id: int) -> Path:
        return self.runs / str(run_id)

    def relative(self, path: Path) -> str:
        """How the DB records a path under the home, so a home can be moved or copied whole."""
        return str(path.resolve().relative_to(self.home))

    def resolve(self, recorded: str) -> Path:
        """A path recorded in the DB, as a real path (absolute paths from elsewhere pass through)."""
        return self.home / recorded


def home() -> Path:
    return _resolved(os.environ.get("MODELDECK_HOME", ".modeldeck"), os.getcwd())


@functools.lru_cache(maxsize=64)
def _resolved(path: str, cwd: str) -> Path:  # noqa: ARG001 (a relative path's answer depends on the folder)
    """`Path.resolve`, remembered.

    Each dashboard page asks for the home several times, and each answer took a system call per folder on the
    way: 6 % of a page's time.
    """
    return Path(path).resolve()


def paths() -> Paths:
    return Paths(home())


def database_url() -> str:
    """MODELDECK_DATABASE_URL (e.g. postgresql+psycopg://…) or a SQLite file in the home."""
    return database_url_for(home())


def database_url_for(home_dir: Path) -> str:
    """MODELDECK_DATABASE_URL, or the SQLite file in `home_dir` (a server given its home by a flag)."""
    database = _resolved(str(home_dir), os.getcwd()) / "modeldeck.db"
    return os.environ.get("MODELDECK_DATABASE_URL") or f"sqlite:///{database}"


def executor() -> str:
    """MODELDECK_EXECUTOR: where a worker runs its jobs: `local` (a child process each, the default) or `ray`."""
    return os.environ.get("MODELDECK_EXECUTOR", "local").strip().lower() or "local"


def ray_address() -> str:
    """The Ray cluster of `MODELDECK_EXECUTOR=ray`: MODELDECK_RAY_ADDRESS, Ray's own RAY_ADDRESS, else `auto`."""
    return os.environ.get("MODELDECK_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or "auto"


def serving_url() -> str:
    """REST base URL of the inference server: ours, or a real TensorFlow Serving."""
    return os.environ.get("MODELDECK_SERVING_URL", f"http://127.0.0.1:{DEFAULT_REST_PORT}").rstrip("/")


def scoring_url() -> str:
    """REST base URL where the dashboard scores files: MODELDECK_SCORING_URL, else the inference server's.

    `modeldeck ui` starts a server of its own for them (`backend/ui.py` says why).
    """
    return os.environ.get("MODELDECK_SCORING_URL", "").rstrip("/") or serving_url()


def serving_key() -> str | None:
    """MODELDECK_SERVING_KEY: the API key the dashboard and the CLI send to an inference server that asks for one."""
    return os.environ.get("MODELDECK_SERVING_KEY") or None


def serving_url_for(port: int) -> str:
    """The serving URL the dashboard should use when `modeldeck ui` starts our server on `port`."""
    return os.environ.get("MODELDECK_SERVING_URL", f"http://127.0.0.1:{port}").rstrip("/")
