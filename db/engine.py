"""Engines and schema set-up. SQLite is the default; the same code runs on PostgreSQL through
TRACKER_DATABASE_URL. Schema changes go through Alembic migrations (db/migrations)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def read_only_file(path: Path) -> bool:
    """A SQLite database this process cannot write: the file or its folder (where WAL keeps its -shm and -wal
    files) is read-only, immutable or someone else's."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _read_only_engine(path: Path) -> Engine:
    """Open a read-only copy read-only. `immutable` when no write-ahead log is pending (nothing can change it and
    SQLite needs no -shm file); else plain read-only, which reads the log."""
    wal = Path(f"{path}-wal")
    flags = "mode=ro" if wal.exists() and wal.stat().st_size else "mode=ro&immutable=1"
    engine = create_engine(f"sqlite:///file:{quote(str(path))}?{flags}&uri=true", connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA query_only=ON")

    return engine


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            if read_only_file(Path(path)):
                return _read_only_engine(Path(path))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL: the dashboard keeps reading while a refresh writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process."""
    return make_engine(url)


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create the schema or bring it up to date. Safe to run any number of times."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
    from db.load import ensure_indexes

    ensure_indexes(engine)  # a bulk build killed midway (db.load.indexes_built_after) left them dropped


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at (Alembic's own alembic_version table), None before any."""
    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


@lru_cache(maxsize=None)
def head_revision() -> str:
    """The newest migration: the one no other revises. Read from the migration files' own `revision` and
    `down_revision` lines rather than through Alembic, whose import (about 0.2 s) a dashboard's start would pay just
    to check that its database is current (tests/test_database.py checks this against Alembic's answer)."""
    import re

    revised, revisions = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions.update(re.findall(r"^revision = ['\"]([^'\"]+)['\"]", source, re.M))
        revised.update(re.findall(r"^down_revision = ['\"]([^'\"]+)['\"]", source, re.M))
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"the migrations should have one head, not {sorted(heads)}")
    return heads.pop()


def is_current(engine: Engine) -> bool:
    """The schema exists and is at the newest migration."""
    return has_schema(engine) and schema_revision(engine) == head_revision()


def has_schema(engine: Engine) -> bool:
    return "observation" in inspect(engine).get_table_names()
