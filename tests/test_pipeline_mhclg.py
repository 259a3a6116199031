"""MHCLG deprivation (IoD2019/IoD2025) and homelessness (H-CLIC) pipelines, checked against values in the real
published files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.base import Payload, SourceError, SourceFormatError, snapshot_payload
from pipelines.http import HttpClient
from pipelines.mhclg import HCLIC_FILE, IMD_LSOA_FILE, IOD2019_LAD_FILE, IOD2025_LAD_FILE, DeprivationSource, HomelessnessSource
from tracker.catalog import by_source, load_catalog
from tracker.geography import AreaMapper
from tracker.refresh import run_source

FIXTURES = Path(__file__).parent / "fixtures" / "mhclg_deprivation"
IOD = DeprivationSource()
HOM = HomelessnessSource()


@pytest.fixture(scope="module")
def iod_specs():
    return by_source(IOD.name)


@pytest.fixture(scope="module")
def lsoa_specs(iod_specs):
    """The LSOA indicators only: a live run of these fetches File 7 alone (File 10 is found on GOV.UK)."""
    return [s for s in iod_specs if s.source_id.startswith("lsoa:")]


@pytest.fixture(scope="module")
def hom_specs():
    return by_source(HOM.name)


@pytest.fixture(scope="module")
def hclic(hom_specs):
    return HOM.parse(snapshot_payload(HCLIC_FILE), hom_specs)


def one(frame: pd.DataFrame, **where) -> pd.Series:
    rows = frame
    for col, value in where.items():
        rows = rows[rows[col] == value]
    assert len(rows) == 1, f"{len(rows)} rows for {where}"
    return rows.iloc[0]


# --- deprivation ------------------------------------------------------------------------------------------------

def test_iod2025_local_authority_summary_matches_file_10(iod_specs):
    frame = IOD.parse(snapshot_payload(IOD2025_LAD_FILE), iod_specs)
    hartlepool = frame[(frame.area_code == "E06000001") & (frame.period == "IoD2025")]
    assert float(one(hartlepool, indicator_id="imd-average-score").value) == 37.58
    assert float(one(hartlepool, indicator_id="imd-proportion-most-deprived-decile").value) == 0.4211
    # Employment deprivation: Hartlepool is ranked 1st on this proportion in File 10
    assert float(one(hartlepool, indicator_id="iod-employment-proportion-most-deprived-decile").value) == 0.4912
    row = one(hartlepool, indicator_id="imd-average-score")
    assert (row.period_start, row.period_end) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))


def test_iod2019_uses_official_summaries_and_recomputed_values_only_for_merged_authorities(iod_specs):
    official = IOD.parse(snapshot_payload(IOD2019_LAD_FILE), iod_specs)
    assert float(one(official, indicator_id="imd-average-score", area_code="E06000002").value) == 40.46  # Middlesbrough
    assert round(float(one(official, indicator_id="imd-average-score", area_code="E06000001").value), 3) == 35.037
    # IoD2019 calls the domain "Health and Disability"; it is the same domain as IoD2025's
    assert len(official[official.indicator_id == "iod-health-average-score"]) > 0
    # Aylesbury Vale (a 2019 district, now part of Buckinghamshire) is replaced by Buckinghamshire's recomputed value
    assert "E07000004" not in set(official.area_code)
    recomputed = IOD.parse(snapshot_payload("imd/imd2019_lad23_summaries_humaniverse.csv"), iod_specs)
    assert set(recomputed.area_code) == {f"E0600006{i}" for i in range(7)}
    bucks = one(recomputed, indicator_id="imd-average-score", area_code="E06000060")
    assert round(float(bucks.value), 4) == 10.0516 and bucks.period == "IoD2019"
    assert "MHCLG published no summary" in bucks.note


def test_lsoa_deciles_and_scores(iod_specs):
    frame = IOD.parse(snapshot_payload(IMD_LSOA_FILE), iod_specs)
    first = frame[frame.area_code == "E01000001"]  # City of London 001A
    assert float(one(first, indicator_id="imd-decile-lsoa").value) == 8
    assert float(one(first, indicator_id="imd-score-lsoa").value) == 8.742
    assert float(one(first, indicator_id="iod-environment-decile-lsoa").value) == 1
    deciles = frame[frame.indicator_id == "imd-decile-lsoa"]
    assert deciles.area_code.nunique() == 33_755
    assert (deciles.value.astype(float) == 1).sum() == 3_375


def test_domain_indicators_carry_the_domain_policy_owner():
    owners = {s.id: s.department for s in load_catalog() if s.source == IOD.name}
    assert owners["imd-proportion-most-deprived-decile"] == "ministry-of-housing-communities-local-government"
    assert owners["iod-income-proportion-most-deprived-decile"] == "department-for-work-pensions"
    assert owners["iod-education-proportion-most-deprived-decile"] == "department-for-education"
    assert owners["iod-health-proportion-most-deprived-decile"] == "department-of-health-and-social-care"
    assert owners["iod-crime-proportion-most-deprived-decile"] == "home-office"


def test_renamed_column_names_source_file_and_columns(iod_specs):
    real = snapshot_payload(IOD2025_LAD_FILE)
    renamed = Payload(real.location, real.text().replace("proportion_bottom_decile", "prop_bottom_decile", 1).encode())
    with pytest.raises(SourceFormatError) as err:
        IOD.parse(renamed, iod_specs)
    message = str(err.value)
    assert "mhclg_deprivation" in message and IOD2025_LAD_FILE in message
    assert "missing column(s) proportion_bottom_decile" in message and "found area_code" in message


def test_live_download_of_file_7_through_http(httpserver, monkeypatch, lsoa_specs, initialised_engine):
    monkeypatch.setenv("TRACKER_MHCLG_DEPRIVATION_URL", httpserver.url_for("/File_7.csv"))
    httpserver.expect_request("/File_7.csv").respond_with_data(
        (FIXTURES / "imd2025_lsoa21_excerpt_hartlepool.csv").read_bytes(), content_type="text/csv"
    )
    summary = run_source(initialised_engine, IOD, lsoa_specs, offline=False, mapper=AreaMapper.from_engine(initialised_engine),
                         http=HttpClient(timeout=5, retries=0, backoff=0.01))
    assert summary.status == "succeeded", summary.error
    with initialised_engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT indicator_id, value FROM observation WHERE area_code = 'E01011950' AND period = 'IoD2025'"
        )).all())
        locations = conn.execute(text("SELECT locations FROM run WHERE id = :i"), {"i": summary.run_id}).scalar()
    assert rows["imd-decile-lsoa"] == 1 and rows["imd-score-lsoa"] == 78.53
    assert rows["iod-barriers-decile-lsoa"] == 9
    assert httpserver.url_for("/File_7.csv") in str(locations)


def test_live_reads_mhclg_file_7_column_names(httpserver, monkeypatch, lsoa_specs):
    monkeypatch.setenv("TRACKER_MHCLG_DEPRIVATION_URL", httpserver.url_for("/official.csv"))
    httpserver.expect_request("/official.csv").respond_with_data((FIXTURES / "file7_layout_synthetic_hartlepool.csv").read_bytes())
    http = HttpClient(timeout=5, retries=0, backoff=0.01)
    official = pd.concat([IOD.parse(p, lsoa_specs) for p in IOD.fetch(http, lsoa_specs)])
    bundled = IOD.parse(Payload("excerpt", (FIXTURES / "imd2025_lsoa21_excerpt_hartlepool.csv").read_bytes()), lsoa_specs)
    key = ["indicator_id", "area_code"]
    merged = official.merge(bundled, on=key, suffixes=("_official", "_bundled"))
    assert len(merged) == len(bundled) == 6 * 9
    assert (merged.value_official.astype(float) == merged.value_bundled.astype(float)).all()


def test_live_html_page_with_status_200_is_a_clear_error(httpserver, monkeypatch, lsoa_specs):
    monkeypatch.setenv("TRACKER_MHCLG_DEPRIVATION_URL", httpserver.url_for("/File_7.csv"))
    httpserver.expect_request("/File_7.csv").respond_with_data(
        (FIXTURES / "service_unavailable_synthetic.html").read_bytes(), content_type="text/html"
    )
    payloads = list(IOD.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), lsoa_specs))
    with pytest.raises(SourceFormatError, match="returned an HTML page instead of CSV"):
        IOD.parse(payloads[0], lsoa_specs)


def test_live_missing_file_names_the_address(httpserver, monkeypatch, lsoa_specs):
    monkeypatch.setenv("TRACKER_MHCLG_DEPRIVATION_URL", httpserver.url_for("/moved.csv"))
    httpserver.expect_request("/moved.csv").respond_with_data("Not Found", status=404)
    with pytest.raises(SourceError, match=r"moved\.csv answered HTTP 404"):
        list(IOD.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), lsoa_specs))


# File 10 (local authority summaries) live: tests/test_pipeline_spreadsheets.py.


def test_deprivation_end_to_end_coverage_and_exact_lsoa_deciles(initialised_engine, iod_specs):
    # the LA summaries and the LSOA IMD decile (the full LSOA set is 9 x 33,755 rows: loaded the same way)
    specs = [s for s in iod_specs if s.source_id.startswith("lad:") or s.id == "imd-decile-lsoa"]
    mapper = AreaMapper.from_engine(initialised_engine)
    first = run_source(initialised_engine, IOD, specs, offline=True, mapper=mapper)
    assert first.status == "succeeded", first.error
    assert first.rows_rejected == 0 and first.rows_unmapped == 0
    second = run_source(initialised_engine, IOD, specs, offline=True, mapper=mapper)
    assert second.status == "succeeded" and second.rows_changed == 0
    with initialised_engine.connect() as conn:
        coverage = dict(conn.execute(text(
            "SELECT o.indicator_id, COUNT(DISTINCT o.area_code) FROM observation o JOIN area a ON a.code = o.area_code "
            "WHERE o.period = 'IoD2025' AND a.type = :t GROUP BY o.indicator_id"), {"t": "ltla"}).all())
        lsoas = conn.execute(text(
            "SELECT COUNT(*) FROM observation WHERE indicator_id = 'imd-decile-lsoa' AND value IS NOT NULL")).scalar()
        iod2019 = conn.execute(text(
            "SELECT COUNT(DISTINCT area_code) FROM observation WHERE indicator_id = 'imd-average-score' AND period = 'IoD2019'"
        )).scalar()
        computed = pd.DataFrame(conn.execute(text(
            "SELECT l.parent_code AS code, AVG(CASE WHEN o.value = 1 THEN 1.0 ELSE 0.0 END) AS share "
            "FROM observation o JOIN area_link l ON l.child_code = o.area_code AND l.parent_type = 'ltla' "
            "WHERE o.indicator_id = 'imd-decile-lsoa' GROUP BY l.parent_code")).all(), columns=["code", "share"])
        official = pd.DataFrame(conn.execute(text(
            "SELECT area_code, value FROM observation WHERE indicator_id = 'imd-proportion-most-deprived-decile' "
            "AND period = 'IoD2025'")).all(), columns=["code", "official"])
    assert len(coverage) == 16 and set(coverage.values()) == {296}
    assert lsoas == 33_755
    assert iod2019 == 296  # 289 official 2019 districts + 7 recomputed merged authorities
    both = computed.merge(official, on="code")
    assert len(both) == 296
    assert (both.share.round(4) - both.official).abs().max() < 1e-9


# --- homelessness -----------------------------------------------------------------------------------------------

def test_england_temporary_accommodation_december_2023(hclic):
    row = one(hclic, indicator_id="temporary-accommodation-per-1000", area_code="E92000001", period="31 Dec 2023")
    assert row["count"] == 112_660
    assert round(float(row.value), 2) == 4.70  # the published rate
    assert row.denominator == pytest.approx(23_969_321)
    assert row.period_start == row.period_end == dt.date(2023, 12, 31)
    children = one(hclic, indicator_id="children-in-temporary-accommodation", area_code="E92000001", period="31 Dec 2023")
    assert children.value == 145_800


def test_england_duties_owed_october_to_december_2023(hclic):
    owed = one(hclic, indicator_id="homelessness-owed-duty-per-1000", area_code="E92000001", period="2023 Q4")
    assert owed["count"] == 78_980  # 34,220 prevention + 44,760 relief
    assert (owed.period_start, owed.period_end) == (dt.date(2023, 10, 1), dt.date(2023, 12, 31))
    relief = one(hclic, indicator_id="homelessness-relief-duty-per-1000", area_code="E92000001", period="2023 Q4")
    assert relief["count"] == 44_760 and round(float(relief.value), 2) == 1.87


def test_early_quarters_take_households_from_table_ta1(hclic):
    row = one(hclic, indicator_id="homelessness-owed-duty-per-1000", area_code="E06000001", period="2018 Q2")
    assert row["count"] == 41 and row.denominator == pytest.approx(41_614)
    assert row.value == pytest.approx(41 / 41.614)
    assert "TA1" in row.note


def test_merged_districts_are_summed_for_earlier_quarters(hclic):
    # Allerdale 102 + Carlisle 122 + Copeland 83 owed a duty in Oct-Dec 2022 -> Cumberland (April 2023)
    row = one(hclic, indicator_id="homelessness-owed-duty-per-1000", area_code="E06000063", period="2022 Q4")
    assert row["count"] == 102 + 122 + 83
    assert row.denominator == pytest.approx((44.199 + 49.934 + 29.5) * 1000)
    assert "E07000026, E07000028, E07000029" in row.note
    # Allerdale did not submit for April-June 2020: no partial sum
    blank = one(hclic, indicator_id="homelessness-owed-duty-per-1000", area_code="E06000063", period="2020 Q2")
    assert pd.isna(blank.value) and "not published for E07000026" in blank.note
    assert "E07000026" not in set(hclic.area_code)


def test_homelessness_end_to_end(initialised_engine, hom_specs):
    mapper = AreaMapper.from_engine(initialised_engine)
    first = run_source(initialised_engine, HOM, hom_specs, offline=True, mapper=mapper)
    assert first.status == "succeeded", first.error
    assert first.rows_rejected == 0 and first.rows_unmapped == 0
    second = run_source(initialised_engine, HOM, hom_specs, offline=True, mapper=mapper)
    assert second.status == "succeeded" and second.rows_changed == 0
    with initialised_engine.connect() as conn:
        ltlas = conn.execute(text(
            "SELECT COUNT(DISTINCT o.area_code) FROM observation o JOIN area a ON a.code = o.area_code "
            "WHERE o.indicator_id = 'temporary-accommodation-per-1000' AND a.type = 'ltla'")).scalar()
        england = conn.execute(text(
            "SELECT count, value FROM observation WHERE indicator_id = 'temporary-accommodation-per-1000' "
            "AND area_code = 'E92000001' AND period = '31 Dec 2023'")).one()
    assert ltlas == 296
    assert england[0] == 112_660 and round(england[1], 2) == 4.70


# The live client (GOV.UK Content API -> detailed LA workbook) is tested in tests/test_pipeline_spreadsheets.py.
