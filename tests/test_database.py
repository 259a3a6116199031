"""The database layer on SQLite and on a real PostgreSQL 15 server: migrations, reference data and the
idempotent, transactional loader."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import func, insert, select, text

from db.engine import has_schema, schema_revision, upgrade
from db.load import load_observations
from db.models import Area, Indicator, Observation, Run
from tracker.catalog import sync_catalog
from tracker.departments import sync_departments


def _minimal_reference(engine):
    upgrade(engine)
    sync_departments(engine)
    with engine.begin() as conn:
        conn.execute(insert(Area), [
            {"code": "E92000001", "name": "England", "type": "england", "vintage": "CTRY24"},
            {"code": "E06000001", "name": "Hartlepool", "type": "ltla", "vintage": "LAD24"},
            {"code": "E06000002", "name": "Middlesbrough", "type": "ltla", "vintage": "LAD24"},
        ])
        conn.execute(insert(Indicator).values(
            id="t-rate", title="Test rate", domain="housing", unit="per 1,000", value_type="rate",
            polarity="lower_is_better", department_slug="ministry-of-housing-communities-local-government",
            secondary_departments=[], producer="test", rationale="test", definition="test", licence="OGL-3.0",
            source="test", source_id="x", area_types=["ltla"], headline_outcome=False, default_sex="Persons"))
        run_id = conn.execute(insert(Run).values(source="test", mode="offline", status="running",
                                                 started_at=datetime(2026, 1, 1))).inserted_primary_key[0]
    return run_id


def _frame(values):
    return pd.DataFrame([
        {"indicator_id": "t-rate", "area_code": code, "period": "2023", "sex": "Persons", "age": "All ages",
         "category_type": "", "category": "", "period_start": date(2023, 1, 1), "period_end": date(2023, 12, 31),
         "value": v, "lci95": None, "uci95": None, "lci998": None, "uci998": None, "count": None,
         "denominator": None, "note": None if v is not None else "suppressed", "published_comparison": None}
        for code, v in values.items()
    ])


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(Observation.area_code, Observation.value, Observation.note, Observation.run_id)
                            .order_by(Observation.area_code)).all()


def test_init_twice_is_safe_and_versioned(any_engine):
    upgrade(any_engine)
    upgrade(any_engine)
    assert has_schema(any_engine)
    assert schema_revision(any_engine) == "0008"  # the newest migration, once


def test_departments_land_with_dhsc_flagged(any_engine):
    upgrade(any_engine)
    sync_departments(any_engine)
    sync_departments(any_engine)
    with any_engine.connect() as conn:
        flagged = conn.execute(text("SELECT abbreviation FROM department WHERE is_dhsc")).scalars().all()
        lineage = conn.execute(text(
            "SELECT d.abbreviation FROM department_lineage l JOIN department d ON d.slug = l.current_slug "
            "WHERE l.abbreviation = 'DLUHC'")).scalars().all()
    assert flagged == ["DHSC"]
    assert lineage == ["MHCLG"]


def test_loader_is_idempotent_and_keeps_nulls(any_engine):
    run1 = _minimal_reference(any_engine)
    with any_engine.begin() as conn:
        first = load_observations(conn, _frame({"E06000001": 1.5, "E06000002": None}), run1, ["t-rate"])
    assert first.written == 2
    before = _rows(any_engine)
    with any_engine.begin() as conn:
        run2 = conn.execute(insert(Run).values(source="test", mode="offline", status="running",
                                               started_at=datetime(2026, 1, 2))).inserted_primary_key[0]
        again = load_observations(conn, _frame({"E06000001": 1.5, "E06000002": None}), run2, ["t-rate"])
    assert (again.written, again.deleted) == (0, 0)
    assert _rows(any_engine) == before  # same rows, same values, same run that loaded them
    assert before[1].value is None and before[1].note == "suppressed"  # suppressed is NULL, never 0


def test_loader_updates_changed_rows_and_removes_withdrawn_ones(any_engine):
    run1 = _minimal_reference(any_engine)
    with any_engine.begin() as conn:
        load_observations(conn, _frame({"E06000001": 1.5, "E06000002": 2.0}), run1, ["t-rate"])
    with any_engine.begin() as conn:
        result = load_observations(conn, _frame({"E06000001": 1.75}), run1 + 0, ["t-rate"])
    assert (result.written, result.deleted) == (1, 1)
    assert [(r.area_code, r.value) for r in _rows(any_engine)] == [("E06000001", 1.75)]


def test_failed_load_leaves_previous_data(any_engine):
    run1 = _minimal_reference(any_engine)
    with any_engine.begin() as conn:
        load_observations(conn, _frame({"E06000001": 1.5}), run1, ["t-rate"])
    with pytest.raises(Exception):
        with any_engine.begin() as conn:
            load_observations(conn, _frame({"E06000001": 9.0, "E99999999": 1.0}), run1, ["t-rate"])  # unknown area: FK
    assert [(r.area_code, r.value) for r in _rows(any_engine)] == [("E06000001", 1.5)]


def test_initialise_twice_reuses_unchanged_geography(sqlite_engine):
    from tracker.store import initialise

    first = initialise(sqlite_engine)
    second = initialise(sqlite_engine)
    assert first["areas (ltla)"] == 296 and first["areas (icb)"] == 42
    with sqlite_engine.connect() as conn:
        areas = conn.execute(text("SELECT count(*) FROM area")).scalar()
    assert "areas (ltla)" not in second and second["areas (unchanged)"] == areas > 34_000


def test_is_current_tells_an_older_schema_from_the_newest(sqlite_engine):
    from alembic import command
    from alembic.script import ScriptDirectory

    from db.engine import alembic_config, head_revision, is_current

    # the head read from the migration files is Alembic's own
    assert head_revision() == ScriptDirectory.from_config(alembic_config(sqlite_engine)).get_current_head()
    assert not is_current(sqlite_engine)  # an empty database
    command.upgrade(alembic_config(sqlite_engine), "0002")
    assert not is_current(sqlite_engine)
    upgrade(sqlite_engine)
    assert is_current(sqlite_engine)


def _observation_indexes(engine) -> set[str]:
    from sqlalchemy import inspect

    return {ix["name"] for ix in inspect(engine).get_indexes("observation")}


def test_bulk_build_rebuilds_the_indexes_even_when_it_fails_and_upgrade_restores_lost_ones(any_engine):
    from db.load import indexes_built_after

    run1 = _minimal_reference(any_engine)
    wanted = {ix.name for ix in Observation.__table__.indexes}
    assert _observation_indexes(any_engine) >= wanted
    with pytest.raises(RuntimeError):
        with indexes_built_after(any_engine):
            assert not _observation_indexes(any_engine) & wanted  # dropped during the build
            with any_engine.begin() as conn:
                load_observations(conn, _frame({"E06000001": 1.5, "E06000002": 2.5}), run1, ["t-rate"])
            raise RuntimeError("the build failed")
    assert _observation_indexes(any_engine) >= wanted
    assert [(r.area_code, r.value) for r in _rows(any_engine)] == [("E06000001", 1.5), ("E06000002", 2.5)]
    # a process killed mid-build leaves them dropped: the next upgrade (tracker init, tracker prepare) restores them
    with any_engine.begin() as conn:
        for name in wanted:
            conn.execute(text(f"DROP INDEX {name}"))
    upgrade(any_engine)
    assert _observation_indexes(any_engine) >= wanted


def test_the_migrations_build_the_tables_the_models_describe(any_engine):
    """The schema comes from the Alembic migrations, the code reads it through the models: the two must agree (a
    column, key, index or type added to one and not the other fails here), on SQLite and on PostgreSQL."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from db.models import Base

    upgrade(any_engine)
    with any_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert differences == []
