"""ONS Health Index underlying indicators, checked against values in the real published data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import text

from pipelines.base import Payload, SourceFormatError, snapshot_payload
from pipelines.ons_health_index import UNDERLYING_FILE, HealthIndexSource
from tracker.catalog import by_source
from tracker.geography import AreaMapper
from tracker.refresh import run_source

SOURCE = HealthIndexSource()


@pytest.fixture(scope="module")
def specs():
    return by_source(SOURCE.name)


@pytest.fixture(scope="module")
def frame(specs):
    return SOURCE.parse(snapshot_payload(UNDERLYING_FILE), specs)


def value(frame, indicator_id, area_code, period):
    rows = frame[(frame.indicator_id == indicator_id) & (frame.area_code == area_code) & (frame.period == period)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_middlesbrough_2015_values(frame):
    row = value(frame, "hi-unemployment", "E06000002", "2015")
    assert round(float(row.value), 1) == 11.0
    assert (row.period_start, row.period_end) == (dt.date(2015, 1, 1), dt.date(2015, 12, 31))
    assert round(float(value(frame, "hi-pupil-absences", "E06000002", "2015").value), 4) == 16.4329


def test_carried_forward_values_stay_as_published(frame):
    # ONS carried Middlesbrough's child poverty forward: 30.5 in each of 2019, 2020 and 2021
    assert [float(value(frame, "hi-child-poverty", "E06000002", y).value) for y in ("2019", "2020", "2021")] == [30.5] * 3


def test_only_catalog_indicators_are_returned(frame, specs):
    assert set(frame.indicator_id) == {s.id for s in specs}
    assert len(frame) == len(specs) * 307 * 7


def test_catalog_names_an_indicator_the_file_lacks(specs):
    wrong = [dataclasses.replace(specs[0], source_id="Rough sleepers")]
    with pytest.raises(SourceFormatError, match="no rows for indicator\\(s\\) Rough sleepers"):
        SOURCE.parse(snapshot_payload(UNDERLYING_FILE), wrong)


def test_renamed_column_names_source_file_and_columns(specs):
    real = snapshot_payload(UNDERLYING_FILE)
    renamed = Payload(real.location, real.text().replace("LAD21CD,", "LAD22CD,", 1).encode())
    with pytest.raises(SourceFormatError) as err:
        SOURCE.parse(renamed, specs)
    message = str(err.value)
    assert "ons_health_index" in message and UNDERLYING_FILE in message
    assert "missing column(s) LAD21CD" in message and "found LAD22CD, year, indicator, value" in message


def test_polarity_and_policy_owner_of_wider_determinants(specs):
    by_id = {s.id: s for s in specs}
    assert by_id["hi-rough-sleeping"].polarity == "lower_is_better"
    assert by_id["hi-rough-sleeping"].department == "ministry-of-housing-communities-local-government"
    assert by_id["hi-private-outdoor-space"].polarity == "higher_is_better"
    assert by_id["hi-road-safety"].department == "department-for-transport"
    assert by_id["hi-workplace-safety"].department == "department-for-work-pensions"
    assert by_id["hi-physical-activity"].department == "department-for-culture-media-and-sport"
    assert by_id["hi-smoking"].department == "department-of-health-and-social-care"


# The live client (ONS /data page -> the underlying data workbook) is tested in tests/test_pipeline_spreadsheets.py.


def test_end_to_end_load(initialised_engine, specs):
    mapper = AreaMapper.from_engine(initialised_engine)
    first = run_source(initialised_engine, SOURCE, specs, offline=True, mapper=mapper)
    assert first.status == "succeeded", first.error
    # the 17 Cumbria, North Yorkshire and Somerset districts of 2021 merged in 2023: not loaded, and reported
    assert first.rows_unmapped == 17 * 7 * len(specs) and first.rows_rejected == 0
    second = run_source(initialised_engine, SOURCE, specs, offline=True, mapper=mapper)
    assert second.status == "succeeded" and second.rows_changed == 0
    with initialised_engine.connect() as conn:
        problems = conn.execute(text("SELECT problems FROM run WHERE id = :i"), {"i": first.run_id}).scalar()
        areas = conn.execute(text(
            "SELECT COUNT(DISTINCT area_code) FROM observation WHERE indicator_id = 'hi-unemployment' AND period = '2021'"
        )).scalar()
        middlesbrough = conn.execute(text(
            "SELECT value FROM observation WHERE indicator_id = 'hi-unemployment' AND area_code = 'E06000002' "
            "AND period = '2015'")).scalar()
    unmapped = json.loads(problems)["unmapped"] if isinstance(problems, str) else problems["unmapped"]
    assert any(reason.startswith("E07000026 (Allerdale)") and "E06000063" in reason for reason in unmapped)
    assert areas == 296 - 4 - 2  # less the 4 new unitaries and City of London / Isles of Scilly (not published)
    assert round(middlesbrough, 1) == 11.0
