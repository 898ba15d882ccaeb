"""Shared fixtures: a fresh MODELDECK_HOME per test, and trained runs shared per session (training,
even for two epochs, costs seconds)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db import open_store
from tests import factories

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["MODELDECK_STRICT_MESSAGES"] = "1"  # a catalog template that fails fails the test (and the app under test)


# The modules that take two minutes or more of a `make test` run, longest first. `make test` runs each module whole
# on one process (`--dist loadfile`) in the order collected; these go first, so that no long module starts last
# and keeps one process busy after the others have run out of work.
LONGEST_FIRST = (
    "test_browser.py",
    "test_training.py",
    "test_ray.py",
    "test_minilm.py",
    "test_decisions.py",
    "test_pages.py",
    "test_search.py",
    "test_faults.py",
    "test_tasks.py",
    "test_meaning_features.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    monkeypatch.delenv("MODELDECK_DATABASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def store(home: Path) -> Iterator[Any]:
    s = open_store(f"sqlite:///{home / 'modeldeck.db'}")
    yield s
    s.close()


def _trained_home(root: Path, frame: Any, *, name: str, target: str) -> dict[str, Any]:
    """A home with one dataset and one run trained for two epochs through a real worker process."""
    root.mkdir(parents=True, exist_ok=True)
    csv = root / f"{name}.csv"
    frame.to_csv(csv, index=False)
    factories.cli_json(root, "data", "add", str(csv), "--target", target)
    # The network, pinned: these fixtures stand for a run with epochs, curves and a Keras export.
    result = factories.cli_json(
        root, "train", name, "--epochs", "2", "--set", "batch_size=32", "--set", "architecture=mlp", "--wait"
    )
    assert result["status"] == "succeeded", result
    return {"home": root, "run_id": result["run_id"], "csv": csv, "metrics": result["metrics"]}


@pytest.fixture(scope="session")
def churn_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A classification run on a small churn table: {home, run_id, csv, metrics}."""
    return _trained_home(tmp_path_factory.mktemp("churn"), factories.churn_frame(), name="churn", target="churn")


@pytest.fixture(scope="session")
def price_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A regression run on a small, skewed price table: {home, run_id, csv, metrics}."""
    return _trained_home(tmp_path_factory.mktemp("price"), factories.price_frame(), name="prices", target="price")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server for the session, started from Debian's binaries and stopped at the end.

    Without PostgreSQL the tests that need it are skipped, except under `make test`, which installs it and sets
    MODELDECK_REQUIRE_POSTGRES=1: there a missing server fails them.
    """
    from tests import postgres as pg

    if pg.binaries() is None:
        if os.environ.get("MODELDECK_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package)")
    (port,) = factories.free_ports(1)
    with pg.server(port) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, home: Path) -> str:
    """The URL of a new, empty database: a SQLite file in the test's home, or a database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'modeldeck.db'}"
    return str(request.getfixturevalue("postgres").new_database())


@pytest.fixture
def any_store(database_url: str) -> Iterator[Any]:
    """A store on each database ModelDeck supports: every test that takes it runs on SQLite and on PostgreSQL."""
    s = open_store(database_url)
    yield s
    s.close()
