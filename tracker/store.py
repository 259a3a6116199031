"""Opening the tracker's database and preparing it: schema (migrations), reference data (departments,
indicator catalog, geography) and, on an empty database, the bundled snapshot."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select

from db.engine import engine_for, upgrade
from db.models import Area, Meta, Run
from tracker.config import GEOGRAPHY_DIR, database_url

log = logging.getLogger("tracker.store")


def get_engine(url: str | None = None) -> Engine:
    return engine_for(url or database_url())


def _files_checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def initialise(engine: Engine) -> dict[str, int]:
    """Create or upgrade the schema and write the reference data. Safe to run twice. The geography (34,000
    areas) is only rewritten when its bundled files changed since the last time."""
    from tracker.catalog import sync_catalog
    from tracker.departments import sync_departments
    from tracker.geography import load_geography

    upgrade(engine)
    counts = {"departments": sync_departments(engine)}
    checksum = _files_checksum(GEOGRAPHY_DIR)
    with engine.connect() as conn:
        stored = conn.execute(select(Meta.value).where(Meta.key == "geography_checksum")).scalar()
        areas = conn.execute(select(func.count()).select_from(Area)).scalar()
    if stored != checksum or not areas:
        counts.update({f"areas ({k})": v for k, v in load_geography(engine).items()})
        with engine.begin() as conn:
            conn.execute(delete(Meta).where(Meta.key == "geography_checksum"))
            conn.execute(insert(Meta).values(key="geography_checksum", value=checksum))
    else:
        counts["areas (unchanged)"] = areas
    counts["indicators"] = sync_catalog(engine)
    return counts


def prepare(engine: Engine, progress=None, second_process: bool = False) -> list:
    """initialise(), then load from the bundled snapshot every source that has never loaded successfully (all of
    them on a new database; after a prepare that was killed or ran out of disk, the ones it did not finish).
    With nothing to load, the analysis is still saved if this version of the tracker has none of the current data
    (after an upgrade): else the dashboard's first visitor waited while a dashboard process computed it (about
    20 s, and a gigabyte of memory). second_process: as warm_analysis's."""
    from contextlib import nullcontext

    from db.load import indexes_built_after
    from pipelines.registry import all_sources
    from tracker.refresh import has_observations, refresh

    initialise(engine)
    with engine.connect() as conn:
        loaded = set(conn.execute(select(Run.source).where(Run.status == "succeeded").distinct()).scalars())
    todo = [name for name, source in all_sources().items() if source.has_offline and name not in loaded]
    if not todo:
        if not analysis_saved(engine):
            warm_analysis(engine, progress, second_process)
        return []
    # a bulk build into an empty table: indexes built once at the end
    with indexes_built_after(engine) if not has_observations(engine) else nullcontext():
        summaries = refresh(engine, todo, offline=True, progress=progress, wait=600, analysis_follows=True)
    warm_analysis(engine, progress, second_process)
    return summaries


def analysis_saved(engine: Engine) -> bool:
    """This version of the tracker's analysis of the database's current data is saved in it (or there is no data)."""
    from tracker.analysis import saved
    from tracker.analysis.data import CODE_DIGEST, data_version
    from tracker.refresh import has_observations

    return not has_observations(engine) or saved.exists(engine, data_version(engine), CODE_DIGEST)


def warm_analysis(engine: Engine, progress=None, second_process: bool = False) -> None:
    """After a refresh lands: precompute and save the analysis every first view needs (tracker.analysis.warm).
    A failure here loses nothing (the analysis is then built on first use), so it is logged, not raised.
    second_process: part of it on the other core, in a forked process (the command line; not the dashboard)."""
    from tracker.analysis.warm import warm

    say = (lambda message: progress("analysis", message)) if progress else None
    try:
        warm(engine, progress=say, second_process=second_process)
    except Exception:  # noqa: BLE001 - the data is loaded; only the head start is lost
        log.exception("could not precompute the analysis; it will be built on first use")
