"""Shared fixtures: isolated data folders, a SQLite database and a real PostgreSQL server, and one
database prepared from the bundled real snapshot per test session (copied for tests that change it)."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import make_engine


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own TRACKER_DATA_DIR (database, archive, lock) unless it sets another."""
    monkeypatch.setenv("TRACKER_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TRACKER_DATABASE_URL", raising=False)
    return tmp_path / "var"


@pytest.fixture(scope="session")
def postgres_url():
    from tests.pg_server import PostgresServer

    server = PostgresServer()
    url = server.start()
    yield url
    server.stop()


def _fresh_pg_database(base_url: str):
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_engine(base_url.rsplit("/", 1)[0] + "/" + name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request, tmp_path):
    """An empty database on SQLite and, in a second run of the same test, on the real PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite'}")
    else:
        engine = _fresh_pg_database(request.getfixturevalue("postgres_url"))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite'}")
    yield engine
    engine.dispose()


@pytest.fixture
def initialised_engine(sqlite_engine):
    from tracker.store import initialise

    initialise(sqlite_engine)
    return sqlite_engine


@contextmanager
def data_dir(folder):
    """TRACKER_DATA_DIR set to `folder` for the duration (for fixtures wider than one test, where monkeypatch
    cannot reach)."""
    old = os.environ.get("TRACKER_DATA_DIR")
    os.environ["TRACKER_DATA_DIR"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TRACKER_DATA_DIR", None)
        else:
            os.environ["TRACKER_DATA_DIR"] = old


@pytest.fixture(scope="session")
def snapshot_db_file(tmp_path_factory):
    """A SQLite database prepared once from the bundled real snapshot (tracker prepare)."""
    from tracker.store import prepare

    folder = tmp_path_factory.mktemp("snapshot-db")
    with data_dir(folder):
        engine = make_engine(f"sqlite:///{folder / 'tracker.sqlite'}")
        summaries = prepare(engine)
        engine.dispose()
    failed = [s for s in summaries if s.status == "failed"]
    assert not failed, f"offline refresh failed: {[(s.source, s.error) for s in failed]}"
    return folder / "tracker.sqlite"


@pytest.fixture
def snapshot_engine(snapshot_db_file, tmp_path, monkeypatch):
    """A private copy of the snapshot database, with TRACKER_DATABASE_URL pointing at it."""
    target = tmp_path / "snapshot.sqlite"
    shutil.copy(snapshot_db_file, target)
    url = f"sqlite:///{target}"
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
