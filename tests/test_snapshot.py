"""The bundled real snapshot, loaded offline into an empty database (the `make run` path): what it covers,
and that loading it again changes nothing."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from tracker.departments import DHSC
from tracker.geography import list_areas
from tracker.refresh import refresh
from tracker.status import source_status

HEADLINE = {"life-expectancy", "healthy-life-expectancy", "preventable-mortality-u75", "life-expectancy-inequality"}


def _query(engine, sql):
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn)


def test_snapshot_covers_fifty_determinants_eight_departments_and_the_outcomes(snapshot_engine):
    loaded = _query(snapshot_engine, """
        SELECT i.id, i.domain, i.department_slug, count(o.value) AS n_values
        FROM indicator i JOIN observation o ON o.indicator_id = i.id GROUP BY i.id, i.domain, i.department_slug""")
    loaded = loaded[loaded["n_values"] > 0]
    determinants = loaded[(loaded["domain"] != "health outcome") & (loaded["department_slug"] != DHSC)]
    assert len(determinants) >= 50
    assert determinants["department_slug"].nunique() >= 8
    assert HEADLINE <= set(loaded["id"])


def test_snapshot_covers_every_local_authority_and_england(snapshot_engine):
    covered = set(_query(snapshot_engine, "SELECT DISTINCT area_code FROM observation WHERE value IS NOT NULL")["area_code"])
    assert set(list_areas(snapshot_engine, "ltla")["code"]) <= covered
    assert set(list_areas(snapshot_engine, "utla")["code"]) <= covered
    assert "E92000001" in covered
    # each headline outcome, in its latest period, for nearly every LA (City of London and the Isles of
    # Scilly are often published combined with a neighbour)
    latest = _query(snapshot_engine, """
        SELECT o.indicator_id, count(DISTINCT o.area_code) AS areas FROM observation o
        JOIN (SELECT indicator_id, max(period_end) AS pe FROM observation GROUP BY indicator_id) m
          ON m.indicator_id = o.indicator_id AND m.pe = o.period_end
        JOIN area a ON a.code = o.area_code
        WHERE o.value IS NOT NULL AND a.type IN ('ltla', 'utla') GROUP BY o.indicator_id""").set_index("indicator_id")["areas"]
    for outcome in HEADLINE - {"healthy-life-expectancy"}:
        assert latest[outcome] >= 290, outcome  # lower tier
    assert latest["healthy-life-expectancy"] >= 148  # upper tier (ONS publishes 151 areas)


def test_second_offline_refresh_changes_nothing_and_status_shows_every_source(snapshot_engine):
    before = _query(snapshot_engine, "SELECT * FROM observation ORDER BY indicator_id, area_code, period, sex, age, category_type, category")
    summaries = refresh(snapshot_engine, offline=True)
    assert {s.status for s in summaries} <= {"succeeded", "skipped"}
    assert all(s.rows_changed == 0 for s in summaries)
    after = _query(snapshot_engine, "SELECT * FROM observation ORDER BY indicator_id, area_code, period, sex, age, category_type, category")
    pd.testing.assert_frame_equal(before, after)
    status = source_status(snapshot_engine).set_index("source")
    from pipelines.registry import all_sources

    assert list(status.index) == list(all_sources())
    assert (status.drop(index="nomis")["last_status"] == "succeeded").all()
    assert status.loc["nomis", "last_status"] == "skipped"
    # freshness by the data, not by the load date (docs/catalog.md "Releases")
    assert not status.loc["nomis", "overdue"] and status.loc["nomis", "freshness"].startswith("no data yet (live only")
    fuel = status.loc["desnz_fuel_poverty"]  # 2021 figures, released April 2023: a newer release is overdue
    assert (fuel["latest_period"], str(fuel["period_end"]), str(fuel["released"])) == ("2021", "2021-12-31", "2023-04-27")
    assert fuel["overdue"] and fuel["freshness"] == "newer release overdue since 23 Jun 2024"
    assert not status.loc["mhclg_deprivation", "overdue"]  # ad hoc: no schedule to be late against
