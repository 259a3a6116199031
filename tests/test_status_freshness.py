"""Freshness by the data (issue 12 item 5): every source states its release cadence, and "overdue" is period end +
one cadence + grace, never the load date."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import insert

from db.models import Run
from pipelines.registry import all_sources
from tracker.catalog import CatalogError, SourceRelease, load_releases
from tracker.status import source_status


def test_every_source_states_its_release_cadence():
    releases = load_releases()
    assert set(releases) == set(all_sources())
    assert {r.cadence for r in releases.values()} <= {"monthly", "quarterly", "annual", "ad hoc"}


def test_overdue_is_period_end_plus_cadence_plus_grace():
    quarterly = SourceRelease("mhclg_homelessness", "quarterly", 183)
    assert quarterly.next_due(date(2025, 12, 31)) == date(2026, 9, 30)  # 31 Mar 2026 + 183 days
    assert SourceRelease("x", "monthly", 10).next_due(date(2026, 1, 31)) == date(2026, 3, 10)
    assert SourceRelease("x", "ad hoc", 0).next_due(date(2019, 9, 26)) is None
    assert quarterly.next_due(None) is None


def test_a_bad_release_entry_names_the_source(tmp_path):
    path = tmp_path / "releases.yaml"
    path.write_text("releases:\n  dfe:\n    cadence: fortnightly\n")
    with pytest.raises(CatalogError, match="source dfe: cadence must be one of monthly, quarterly, annual, ad hoc"):
        load_releases(path)


def test_loaded_today_is_not_fresh_when_the_data_are_old(initialised_engine):
    """What the issue saw: 2021 fuel poverty loaded today showed "Last refresh: today". Now: overdue, by its period."""
    with initialised_engine.begin() as conn:
        conn.execute(insert(Run).values(
            source="desnz_fuel_poverty", mode="offline", status="succeeded", started_at=datetime(2026, 12, 1),
            finished_at=datetime(2026, 12, 1), rows_loaded=10, rows_changed=10, period_max="2021",
            latest_period_end=date(2021, 12, 31), payload_meta={}))
        conn.execute(insert(Run).values(  # a live load with the publisher's date (HTTP Last-Modified)
            source="mhclg_homelessness", mode="live", status="succeeded", started_at=datetime(2026, 12, 1),
            finished_at=datetime(2026, 12, 1), rows_loaded=10, rows_changed=10, period_max="2025 Q4",
            latest_period_end=date(2025, 12, 31),
            payload_meta={"https://example/x.ods": {"last_modified": "Tue, 28 Apr 2026 09:30:00 GMT"}}))
    status = source_status(initialised_engine, today=date(2026, 6, 1)).set_index("source")
    fuel = status.loc["desnz_fuel_poverty"]
    assert fuel["overdue"] and str(fuel["released"]) == "2023-04-27"  # the bundled edition's release
    homelessness = status.loc["mhclg_homelessness"]
    assert str(homelessness["released"]) == "2026-04-28" and not homelessness["overdue"]
    assert homelessness["freshness"] == "current (next release expected by 30 Sep 2026)"
    assert not status.loc["nomis", "overdue"] and status.loc["nomis", "freshness"].startswith("no data yet")
