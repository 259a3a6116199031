"""DESNZ fuel poverty, DWP children in low income families and ONS crime severity pipelines, checked against values
in the real published files."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.base import Payload, SourceFormatError, snapshot_payload
from pipelines.desnz import LA_FILE, LSOA_FILE, FuelPovertySource
from pipelines.dwp import COUNTS_FILE, ChildrenLowIncomeSource
from pipelines.ons_crime import SCORE_FILE, CrimeSeveritySource
from tracker.catalog import by_source
from tracker.geography import AreaMapper
from tracker.refresh import run_source

FUEL, DWP, CRIME = FuelPovertySource(), ChildrenLowIncomeSource(), CrimeSeveritySource()


def parse(source, file):
    return source.parse(snapshot_payload(file), by_source(source.name))


def one(frame, **where):
    rows = frame
    for col, value in where.items():
        rows = rows[rows[col] == value]
    assert len(rows) == 1, f"{len(rows)} rows for {where}"
    return rows.iloc[0]


def load_twice(engine, source):
    specs = by_source(source.name)
    mapper = AreaMapper.from_engine(engine)
    first = run_source(engine, source, specs, offline=True, mapper=mapper)
    assert first.status == "succeeded", first.error
    second = run_source(engine, source, specs, offline=True, mapper=mapper)
    assert second.status == "succeeded" and second.rows_changed == 0
    return first


def coverage(engine, indicator_id, period):
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT a.type, COUNT(DISTINCT o.area_code) FROM observation o JOIN area a ON a.code = o.area_code "
            "WHERE o.indicator_id = :i AND o.period = :p AND o.value IS NOT NULL GROUP BY a.type"),
            {"i": indicator_id, "p": period}).all())


# --- fuel poverty -----------------------------------------------------------------------------------------------

def test_england_fuel_poverty_2021():
    england = one(parse(FUEL, LA_FILE), area_code="E92000001")
    assert (england["count"], england.denominator) == ("3162752.0", "24070861.0")
    assert round(float(england.value), 1) == 13.1
    assert float(england.value) == pytest.approx(3_162_752 / 24_070_861 * 100)
    assert (england.period, england.period_start, england.period_end) == ("2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31))


def test_lsoa_fuel_poverty_keeps_counts_for_aggregation():
    row = one(parse(FUEL, LSOA_FILE), area_code="E01020590")  # County Durham 015A
    assert (float(row["count"]), float(row.denominator)) == (92, 597)
    assert float(row.value) == pytest.approx(92 / 597 * 100)


def test_fuel_poverty_end_to_end(initialised_engine):
    first = load_twice(initialised_engine, FUEL)
    assert first.rows_rejected == 0
    assert first.rows_unmapped == 8  # 6 metropolitan counties and Inner/Outer London are not tracker areas
    assert coverage(initialised_engine, "fuel-poverty-lilee", "2021") == {
        "england": 1, "region": 9, "utla": 21, "ltla": 296, "lsoa": 33_755}


# The live client (GOV.UK Content API -> the 2023 tables workbook) is tested in tests/test_pipeline_spreadsheets.py.


# --- DWP children in relative low income families ---------------------------------------------------------------

def test_children_in_low_income_counts():
    frame = parse(DWP, COUNTS_FILE)
    first = one(frame, area_code="E06000001", period="2014/15")  # Hartlepool
    assert first.value == 4325 and first["count"] == 4325 and first.denominator is None
    assert (first.period_start, first.period_end) == (dt.date(2014, 4, 1), dt.date(2015, 3, 31))
    assert pd.isna(first.note)
    assert one(frame, area_code="E06000001", period="2021/22").note == "provisional"


def test_districts_merged_in_2023_are_summed():
    frame = parse(DWP, COUNTS_FILE)
    north_yorkshire = one(frame, area_code="E06000065", period="2014/15")
    # Craven, Hambleton, Harrogate, Richmondshire, Ryedale, Scarborough, Selby
    assert north_yorkshire.value == 1239 + 1832 + 2766 + 1202 + 1321 + 3773 + 2065
    assert "E07000163" in north_yorkshire.note
    assert one(frame, area_code="E06000065", period="2021/22").note.endswith("; provisional")
    assert "E07000163" not in set(frame.area_code)


def test_count_only_indicator_makes_no_cross_area_judgement():
    spec = by_source(DWP.name)[0]
    assert (spec.value_type, spec.polarity) == ("count", "no_judgement")


def test_children_in_low_income_end_to_end(initialised_engine):
    first = load_twice(initialised_engine, DWP)
    assert first.rows_rejected == 0
    assert first.rows_unmapped == (22 + 32) * 8  # Welsh and Scottish authorities
    for year in ("2014/15", "2021/22"):
        assert coverage(initialised_engine, "children-relative-low-income-count", year) == {"ltla": 296}


# --- crime severity ---------------------------------------------------------------------------------------------

def test_crime_severity_values_and_combined_partnerships():
    frame = parse(CRIME, SCORE_FILE)
    assert len(frame) == 293 and frame.area_code.is_unique
    hartlepool = one(frame, area_code="E06000001")
    assert round(float(hartlepool.value), 4) == 24.5326 and pd.isna(hartlepool.note)
    assert (hartlepool.period, hartlepool.period_start, hartlepool.period_end) == (
        "2022/23", dt.date(2022, 4, 1), dt.date(2023, 3, 31))
    north_northants = one(frame, area_code="E06000061")  # two CSP rows: 15.226485 and 16.271105
    assert float(north_northants.value) == pytest.approx((15.226485 + 16.271105) / 2, abs=1e-6)
    assert "mean of 2 Community Safety Partnership values" in north_northants.note
    assert "mean of 3" in one(frame, area_code="E06000063").note  # Cumberland
    bcp = one(frame, area_code="E06000058")  # one of its three CSP rows is published
    assert pd.isna(bcp.value) and "published for 1 of the 3" in bcp.note


def test_crime_severity_blanks_are_not_published():
    frame = parse(CRIME, SCORE_FILE)
    for code in ("E06000026", "E09000001"):  # Plymouth (Devon and Cornwall police), City of London
        row = one(frame, area_code=code)
        assert pd.isna(row.value) and row.note == "not published"


def test_crime_severity_end_to_end(initialised_engine):
    first = load_twice(initialised_engine, CRIME)
    assert (first.rows_loaded, first.rows_rejected, first.rows_unmapped) == (293, 0, 0)
    with initialised_engine.connect() as conn:
        plymouth = conn.execute(text(
            "SELECT value, note FROM observation WHERE indicator_id = 'crime-severity-score' AND area_code = 'E06000026'")).one()
    assert plymouth == (None, "not published")
    # blank: 12 Devon and Cornwall districts, City of London, and BCP (1 of its 3 CSPs published)
    assert coverage(initialised_engine, "crime-severity-score", "2022/23") == {"ltla": 293 - 12 - 1 - 1}


# --- format errors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, file, column", [
    (FUEL, LA_FILE, "fuel_poor_households"),
    (DWP, COUNTS_FILE, "financial_year"),
    (CRIME, SCORE_FILE, "crime_severity_score_ye_mar2023"),
])
def test_renamed_column_names_source_file_and_columns(source, file, column):
    real = snapshot_payload(file)
    renamed = Payload(real.location, real.text().replace(column, column + "_v2", 1).encode())
    with pytest.raises(SourceFormatError) as err:
        source.parse(renamed, by_source(source.name))
    message = str(err.value)
    assert source.name in message and file in message
    assert f"missing column(s) {column}" in message and "found " in message and f"{column}_v2" in message
