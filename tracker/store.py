"""Opening the tracker's database and preparing it: schema (migrations), reference data (departments,
indicator catalog, geography) and, on an empty database, the bundled snapshot."""

from __future__ import annotations

from sqlalchemy import Engine

from db.engine import engine_for, upgrade
from tracker.config import database_url


def get_engine(url: str | None = None) -> Engine:
    return engine_for(url or database_url())


def initialise(engine: Engine) -> dict[str, int]:
    """Create or upgrade the schema and write the reference data. Safe to run twice."""
    from tracker.catalog import sync_catalog
    from tracker.departments import sync_departments
    from tracker.geography import load_geography

    upgrade(engine)
    counts = {"departments": sync_departments(engine)}
    counts.update({f"areas ({k})": v for k, v in load_geography(engine).items()})
    counts["indicators"] = sync_catalog(engine)
    return counts


def prepare(engine: Engine, progress=None) -> list:
    """initialise(), then load the bundled snapshot if the database holds no observations yet."""
    from tracker.refresh import has_observations, refresh

    initialise(engine)
    if has_observations(engine):
        return []
    return refresh(engine, offline=True, progress=progress, wait=600)
