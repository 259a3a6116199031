"""Live clients of the spreadsheet publishers (GOV.UK Content API -> newest workbook -> python-calamine), through
real HTTP on 127.0.0.1 replaying the publishers' real original files (tests/fixtures/spreadsheets/, see its
README: the Content API items are constructed from GDS's schema, the spreadsheets are real). Fault copies (a
renamed sheet or header, HTML, a truncated file) are derived here and are synthetic."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.base import Payload, SourceError, SourceFormatError, snapshot_payload
from pipelines.desnz import FuelPovertySource
from pipelines.discovery import govuk_attachments
from pipelines.http import HttpClient
from pipelines.ons_crime import SCORE_FILE, CrimeSeveritySource
from pipelines.ons_health_index import HealthIndexSource
from pipelines.mhclg import HCLIC_COLUMNS, HCLIC_FILE, DeprivationSource, HomelessnessSource
from tracker.catalog import by_source
from tracker.geography import AreaMapper
from tracker.refresh import run_source

FIXTURES = Path(__file__).parent / "fixtures" / "spreadsheets"
ODS_2025Q4 = "Statutory_Homelessness_Detailed_Local_Authority_Data_202512.ods"
XLSX_2024Q3 = "Detailed_LA_202409.xlsx"
FUEL_TABLES = "sub-regional-fuel-poverty-2023-tables.xlsx"
HOM, FUEL, IOD, HI = HomelessnessSource(), FuelPovertySource(), DeprivationSource(), HealthIndexSource()
CRIME = CrimeSeveritySource()
HOM_PAGE = "/api/content/government/statistical-data-sets/live-tables-on-homelessness"
FUEL_COLLECTION = "/api/content/government/collections/fuel-poverty-sub-regional-statistics"
FUEL_PAGE = "/api/content/government/statistics/sub-regional-fuel-poverty-data-2023"
ASSETS = "https://assets.publishing.service.gov.uk"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def item(name: str, httpserver, keep: set[str] | None = None) -> dict:
    """A Content API item with its asset addresses pointed at the local server; `keep`: file names of the
    attachments to keep (None: all)."""
    data = json.loads(fixture(name).decode().replace(ASSETS, httpserver.url_for("").rstrip("/")))
    if keep is not None:
        data["details"]["attachments"] = [a for a in data["details"]["attachments"] if a.get("filename") in keep]
    return data


def asset_path(data: dict, filename: str) -> str:
    url = next(a["url"] for a in data["details"]["attachments"] if a.get("filename") == filename)
    return "/" + url.split("/", 3)[3]


def edited_xlsx(name: str, part: str, old: bytes, new: bytes) -> bytes:
    """A copy of a real xlsx with one string replaced inside one of its XML parts (a synthetic layout change)."""
    out = io.BytesIO()
    with zipfile.ZipFile(FIXTURES / name) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == part:
                assert old in body
                body = body.replace(old, new)
            dst.writestr(info, body)
    return out.getvalue()


def client() -> HttpClient:
    return HttpClient(timeout=10, retries=2, backoff=0.01)


@pytest.fixture
def govuk(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_GOVUK_BASE_URL", httpserver.url_for("/"))
    return httpserver


def observations(engine, source) -> list[tuple]:
    ids = [s.id for s in by_source(source.name)]
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT indicator_id, area_code, period, sex, value, count, denominator FROM observation "
            f"WHERE indicator_id IN ({', '.join(repr(i) for i in ids)}) ORDER BY 1, 2, 3, 4"
        )).all()


def run(engine, source, offline=False):
    return run_source(engine, source, by_source(source.name), offline=offline,
                      mapper=AreaMapper.from_engine(engine), http=client())


# --- H-CLIC: reading the workbooks ------------------------------------------------------------------------------

@pytest.mark.parametrize("filename,quarter", [(ODS_2025Q4, "2025-12"), (XLSX_2024Q3, "2024-09")])
def test_hclic_workbook_gives_the_bundled_figures_for_its_quarter(filename, quarter):
    payload = Payload(location=filename, content=fixture(filename),
                      meta={"kind": "workbook", "quarter_end": quarter, "filename": filename})
    live = HOM._read_workbook(payload).set_index("area_code").sort_index()
    bundled = pd.read_csv(io.BytesIO(snapshot_payload(HCLIC_FILE).content), compression="gzip", dtype=str,
                          keep_default_na=False)
    bundled = bundled[bundled.quarter_end == quarter].set_index("area_code").sort_index()
    assert list(live.index) == list(bundled.index)  # England, 9 regions and 296 authorities; no "Rest of England"
    for col in HCLIC_COLUMNS[2:]:
        pd.testing.assert_series_equal(pd.to_numeric(live[col].replace("", None)),
                                       pd.to_numeric(bundled[col].replace("", None)), check_names=False)
    assert set(live.quarter_end) == {quarter}


def test_hclic_workbook_real_values_and_suppression():
    payload = Payload(location=ODS_2025Q4, content=fixture(ODS_2025Q4), meta={"kind": "workbook"})
    frame = HOM.parse(payload, by_source(HOM.name))
    england = frame[(frame.area_code == "E92000001")]
    ta = england[england.indicator_id.str.contains("temporary")]
    assert "31 Dec 2025" in set(ta.period)
    assert 134210 in set(ta["count"].astype(float))  # households in TA in England on 31 December 2025
    duty = england[england.period == "2025 Q4"]
    assert 76270 in set(duty["count"].astype(float))  # owed a prevention or relief duty, Oct-Dec 2025
    # '..' (suppressed) in the workbook is a blank count, never 0
    hartlepool = frame[(frame.area_code == "E06000023")]
    assert hartlepool["count"].isna().any()


# --- H-CLIC: live through the Content API ---------------------------------------------------------------------

def test_hclic_live_refresh_loads_the_newest_quarter_from_the_ods(govuk, initialised_engine):
    page = item("govuk_live_tables_on_homelessness.constructed.json", govuk)
    govuk.expect_request(HOM_PAGE).respond_with_json(page)
    govuk.expect_request(asset_path(page, ODS_2025Q4)).respond_with_data(
        fixture(ODS_2025Q4), content_type="application/vnd.oasis.opendocument.spreadsheet")
    offline = run(initialised_engine, HOM, offline=True)
    before = observations(initialised_engine, HOM)

    summary = run(initialised_engine, HOM)
    assert summary.status == "succeeded", summary.error
    fetched = [req.path for req, _ in govuk.log]
    assert fetched == [HOM_PAGE, asset_path(page, ODS_2025Q4)]  # the 2024 xlsx is older than the bundled history
    with initialised_engine.connect() as conn:
        run_row = conn.execute(text("SELECT locations, period_max, latest_period_end FROM run WHERE id = :i"),
                               {"i": summary.run_id}).one()
    locations = json.loads(run_row.locations) if isinstance(run_row.locations, str) else run_row.locations
    assert any(loc.endswith(ODS_2025Q4) for loc in locations)
    assert str(run_row.latest_period_end) == "2025-12-31"
    # the live quarter's figures are the bundled ones, and the history is kept: nothing changes, nothing is lost
    assert summary.rows_loaded == offline.rows_loaded and summary.rows_changed == 0 and summary.rows_rejected == 0
    assert observations(initialised_engine, HOM) == before


def test_hclic_live_reads_an_xlsx_when_that_is_the_newest_listed(govuk, initialised_engine):
    page = item("govuk_live_tables_on_homelessness.constructed.json", govuk, keep={XLSX_2024Q3})
    govuk.expect_request(HOM_PAGE).respond_with_json(page)
    # a 2024 Q3 workbook whose England TA count was revised (synthetic), to show the workbook's figure wins
    revised = edited_xlsx(XLSX_2024Q3, "xl/worksheets/sheet32.xml", b"<v>126040</v>", b"<v>126050</v>")
    govuk.expect_request(asset_path(page, XLSX_2024Q3)).respond_with_data(revised)
    summary = run(initialised_engine, HOM)
    assert summary.status == "succeeded", summary.error
    with initialised_engine.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT period, count FROM observation WHERE area_code = 'E92000001' AND period IN ('30 Sep 2024', "
            "'31 Dec 2025') AND indicator_id IN (SELECT id FROM indicator WHERE source = 'mhclg_homelessness') "
            "AND count > 100000")).all())
    assert counts == {"30 Sep 2024": 126050, "31 Dec 2025": 134210}  # live quarter from the xlsx, the rest bundled


def test_body_links_are_used_when_a_page_has_no_attachment_list(govuk):
    govuk.expect_request("/api/content/government/statistical-data-sets/tsgb10").respond_with_data(
        fixture("example_statistical_data_set.json"), content_type="application/json")
    _, found = govuk_attachments(client(), "test", "government/statistical-data-sets/tsgb10")
    xls = [a for a in found if a.filename.endswith(".xls")]
    assert xls and all(a.url.startswith(govuk.url_for("/government/uploads/")) for a in xls)
    assert not any(a.filename.endswith(".pdf") for a in found)
    assert all(a.title and a.title != a.filename for a in xls)  # the link text is the title


# --- fuel poverty --------------------------------------------------------------------------------------------------

def serve_fuel(govuk, workbook: bytes | None = None, keep=None) -> dict:
    govuk.expect_request(FUEL_COLLECTION).respond_with_data(fixture("govuk_fuel_poverty_collection.constructed.json"))
    page = item("govuk_sub_regional_fuel_poverty_data_2023.constructed.json", govuk, keep=keep)
    govuk.expect_request(FUEL_PAGE).respond_with_json(page)
    if workbook is not None:
        govuk.expect_request(asset_path(page, FUEL_TABLES)).respond_with_data(workbook)
    return page


def test_fuel_poverty_live_loads_the_2023_tables(govuk, initialised_engine):
    page = serve_fuel(govuk, fixture(FUEL_TABLES))
    offline = run(initialised_engine, FUEL, offline=True)
    before = observations(initialised_engine, FUEL)
    summary = run(initialised_engine, FUEL)
    assert summary.status == "succeeded", summary.error
    assert [req.path for req, _ in govuk.log] == [FUEL_COLLECTION, FUEL_PAGE, asset_path(page, FUEL_TABLES)]
    # the 2023 tables are the bundled 2021 data: every row read from the workbook, none changed
    assert summary.rows_loaded == offline.rows_loaded > 30000 and summary.rows_changed == 0
    after = observations(initialised_engine, FUEL)
    assert after == before
    england = [r for r in after if r.area_code == "E92000001"]
    assert [(r.period, r.count, r.denominator) for r in england] == [("2021", 3162752, 24070861)]


def test_fuel_poverty_workbook_year_comes_from_the_table_title():
    renamed = edited_xlsx(FUEL_TABLES, "xl/sharedStrings.xml", b"by administrative area [Notes 3 and 4], 2021",
                          b"by administrative area [Notes 3 and 4], 2022")
    payload = Payload(location=FUEL_TABLES, content=renamed, meta={"kind": "workbook", "filename": FUEL_TABLES})
    frame = FUEL.parse(payload, by_source(FUEL.name))
    assert set(frame[frame.area_code.str.startswith("E06")].period) == {"2022"}


# --- IoD2025 File 10 ------------------------------------------------------------------------------------------------

FILE10 = "File_10_-_IoD2025_Local_Authority_District_Summaries__lower-tier__v2.xlsx"
FILE10_FIXTURE = "File_10_-_IoD2025_Local_Authority_District_Summaries__lower-tier__v2.constructed.xlsx"
IOD_PAGE = "/api/content/government/statistics/english-indices-of-deprivation-2025"


def lad_specs():
    return [s for s in by_source(IOD.name) if s.source_id.startswith("lad:")]


def serve_file10(govuk, workbook: bytes | None, keep=None) -> dict:
    page = item("govuk_english_indices_of_deprivation_2025.constructed.json", govuk, keep=keep)
    govuk.expect_request(IOD_PAGE).respond_with_json(page)
    if workbook is not None:
        govuk.expect_request(asset_path(page, FILE10)).respond_with_data(workbook)
    return page


def test_iod_file10_live_loads_the_summaries_and_keeps_iod2019(govuk, initialised_engine):
    page = serve_file10(govuk, fixture(FILE10_FIXTURE))
    specs = lad_specs()
    mapper = AreaMapper.from_engine(initialised_engine)
    offline = run_source(initialised_engine, IOD, specs, offline=True, mapper=mapper, http=client())
    before = observations(initialised_engine, IOD)
    summary = run_source(initialised_engine, IOD, specs, offline=False, mapper=mapper, http=client())
    assert summary.status == "succeeded", summary.error
    assert [req.path for req, _ in govuk.log] == [IOD_PAGE, asset_path(page, FILE10)]  # File 7 not needed here
    assert summary.rows_loaded == offline.rows_loaded and summary.rows_changed == 0
    after = observations(initialised_engine, IOD)
    assert after == before and {r.period for r in after} == {"IoD2019", "IoD2025"}
    hartlepool = [r for r in after if r.area_code == "E06000001" and r.period == "IoD2025"
                  and r.indicator_id == "imd-average-score"]
    assert [r.value for r in hartlepool] == [37.58]


# --- ONS Health Index underlying data ---------------------------------------------------------------------------

HI_BASE = "/peoplepopulationandcommunity/healthandsocialcare/healthandwellbeing/datasets/healthindexunderlyingdataengland"
HI_FILE = "healthindexunderlyingdataenglandcanscreenfix.xlsx"
HI_FIXTURE = "healthindexunderlyingdataenglandcanscreenfix.constructed.xlsx"


def serve_ons_dataset(server, base: str, landing: bytes, edition_json: bytes, filename: str, workbook: bytes | None,
                      files: list[str] | None = None, **file_headers) -> str:
    """An ONS dataset page as the site serves it: the landing and edition /data JSON (the landing as text/plain, as
    recorded) and the workbook at /file?uri=...; `files` replaces the edition's downloads. Returns the file's path."""
    server.expect_request(base + "/data").respond_with_data(landing, content_type="text/plain")
    edition = json.loads(edition_json)
    if files is not None:
        edition["downloads"] = [{"file": f} for f in files]
    server.expect_request(base + "/current/data").respond_with_json(edition)
    if workbook is not None:
        server.expect_request("/file", query_string={"uri": f"{base}/current/{filename}"}).respond_with_data(
            workbook, **file_headers)
    return "/file"


def serve_hi(server, workbook: bytes | None, files: list[str] | None = None) -> str:
    return serve_ons_dataset(server, HI_BASE, fixture("ons_healthindexunderlyingdataengland__landing.constructed.json"),
                             fixture("ons_healthindexunderlyingdataengland__current.constructed.json"), HI_FILE,
                             workbook, files)


@pytest.fixture
def ons(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_ONS_BASE_URL", httpserver.url_for("/"))
    return httpserver


def test_health_index_live_reads_the_newest_edition_workbook(ons, initialised_engine):
    serve_hi(ons, fixture(HI_FIXTURE))
    offline = run(initialised_engine, HI, offline=True)
    before = observations(initialised_engine, HI)
    summary = run(initialised_engine, HI)
    assert summary.status == "succeeded", summary.error
    assert [req.path for req, _ in ons.log] == [HI_BASE + "/data", HI_BASE + "/current/data", "/file"]
    assert summary.rows_loaded == offline.rows_loaded > 60000
    after = observations(initialised_engine, HI)
    # the same figures: at most the last binary digit differs where a value was written to the test workbook
    # with more digits than a double holds
    assert [r[:4] for r in after] == [r[:4] for r in before]
    assert all(a.value == pytest.approx(b.value, rel=1e-12) for a, b in zip(after, before))
    assert summary.rows_changed < 20


# --- ONS Crime Severity Score data tool -------------------------------------------------------------------------

CSS_BASE = "/peoplepopulationandcommunity/crimeandjustice/datasets/crimeseverityscoreexperimentalstatistics"
CSS_FILE = "datatool.xls"
CSS_FIXTURES = Path(__file__).parent / "fixtures" / "crime"
CSS_FIXTURE = "datatool.constructed.xls"  # real values in the data tool's layout (fixtures/crime/README.md)


def crime_fixture(name: str) -> bytes:
    return (CSS_FIXTURES / name).read_bytes()


def edited_bytes(data: bytes, old: bytes, new: bytes) -> bytes:
    """A copy of a binary (xls) file with a string replaced by one of the same length (a synthetic layout change)."""
    assert len(old) == len(new) and old in data
    return data.replace(old, new)


def serve_crime(server, workbook: bytes | None, files: list[str] | None = None) -> str:
    return serve_ons_dataset(server, CSS_BASE, crime_fixture("ons_crimeseverityscore__landing.constructed.json"),
                             crime_fixture("ons_crimeseverityscore__current.constructed.json"), CSS_FILE, workbook,
                             files, content_type="application/vnd.ms-excel")


def test_crime_data_tool_gives_the_bundled_scores_by_district():
    payload = Payload(location=CSS_FILE, content=crime_fixture(CSS_FIXTURE),
                      meta={"kind": "workbook", "filename": CSS_FILE})
    live = CRIME.parse(payload, by_source(CRIME.name))
    bundled = CRIME.parse(snapshot_payload(SCORE_FILE), by_source(CRIME.name))
    assert set(live.period) == {"2022/23"} and set(live.period_end) == {bundled.period_end.iloc[0]}
    # every district of the bundled extract but North Northamptonshire (whose 2023 CSPs the 2019 lookup does
    # not have: left out of the test workbook), with the same value and note
    assert set(bundled.area_code) - set(live.area_code) == {"E06000061"}
    joined = live.merge(bundled, on="area_code", suffixes=("", "_bundled"))
    assert len(joined) == len(live) == 292
    assert joined.value.fillna(-1).tolist() == joined.value_bundled.fillna(-1).tolist()
    assert joined.note.fillna("").tolist() == joined.note_bundled.fillna("").tolist()
    by_code = live.set_index("area_code")
    assert by_code.loc["E06000001", "value"] == pytest.approx(24.532555264882394)  # Hartlepool: one CSP
    # Cumberland: three CSPs (Allerdale, Carlisle, Copeland), their simple mean, said so
    assert by_code.loc["E06000063", "value"] == pytest.approx((12.588216642903804 + 15.543930879228595
                                                               + 11.548378226750684) / 3)
    assert by_code.loc["E06000063", "note"].startswith("simple mean of 3 Community Safety Partnership values")
    # BCP: Bournemouth and Poole ':' (not published), Dorset CSP published: blank, not a mean of part of it
    assert pd.isna(by_code.loc["E06000058", "value"]) and "published for 1 of the 3" in by_code.loc["E06000058", "note"]
    assert by_code.loc["E06000052", "note"] == "not published" and pd.isna(by_code.loc["E06000052", "value"])  # Cornwall
    # the second block (crime severity score) is read, not the first (crime rate, blank in the test copy); the
    # 'Violence against the person' rows are not mixed in (they would blank every district)
    assert live.value.notna().sum() == bundled[bundled.area_code != "E06000061"].value.notna().sum() > 250


def test_crime_severity_live_refresh_reads_the_newest_data_tool(ons, initialised_engine):
    serve_crime(ons, crime_fixture(CSS_FIXTURE))
    run(initialised_engine, CRIME, offline=True)
    before = {r.area_code: r for r in observations(initialised_engine, CRIME)}
    summary = run(initialised_engine, CRIME)
    assert summary.status == "succeeded", summary.error
    assert [req.path for req, _ in ons.log] == [CSS_BASE + "/data", CSS_BASE + "/current/data", "/file"]
    assert ons.log[-1][0].args["uri"] == f"{CSS_BASE}/current/{CSS_FILE}"
    after = {r.area_code: r for r in observations(initialised_engine, CRIME)}
    assert set(before) - set(after) == {"E06000061"} and set(after) <= set(before)
    assert all(after[c] == before[c] for c in after)
    assert summary.rows_changed == 1  # North Northamptonshire, not in the test workbook, is removed


def _crime_fault(server, fault: str):
    if fault == "attachment gone":
        serve_crime(server, None, files=["crimeseverityscoreuserguide.pdf"])
        return
    real = crime_fixture(CSS_FIXTURE)
    bodies = {
        "renamed sheet": edited_bytes(real, b"Data - csp", b"Data - CSP"),
        "renamed header": edited_bytes(real, b"Offence group", b"Offence class"),
        "html": b"<!DOCTYPE html><html><body>Page not found</body></html>",
        "truncated": real[: len(real) // 3],
    }
    serve_crime(server, bodies[fault])


def test_crime_score_block_is_the_one_labelled_severity_else_the_second():
    from pipelines.ons_crime import _score_column

    newest = [14, 24]  # the newest year's column in each block
    assert _score_column(["Constructed test copy"], newest) == 24  # no block labels: the 2023 layout
    assert _score_column(["", "", "", "", "Crime severity score"] + [""] * 10 + ["Crime rate per 1,000"], newest) == 14
    assert _score_column(["", "", "", "", "Crime rate per 1,000"] + [""] * 10 + ["Crime severity score"], newest) == 24


def test_crime_rate_limited_download_is_retried_after_429(ons):
    path = serve_crime(ons, None)
    query = {"uri": f"{CSS_BASE}/current/{CSS_FILE}"}
    ons.expect_oneshot_request(path, query_string=query).respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "1"})
    ons.expect_request(path, query_string=query).respond_with_data(crime_fixture(CSS_FIXTURE))
    specs = by_source(CRIME.name)
    frames = [CRIME.parse(payload, specs) for payload in CRIME.fetch(client(), specs)]
    assert sum(len(f) for f in frames) == 292
    assert [resp.status_code for req, resp in ons.log if req.path == path] == [429, 200]


# --- faults: every one fails the source with the file named, and keeps its previous data ---------------------------

def _hclic_fault(govuk, fault: str):
    page = item("govuk_live_tables_on_homelessness.constructed.json", govuk, keep={XLSX_2024Q3})
    if fault == "attachment gone":
        page["details"]["attachments"] = []
    govuk.expect_request(HOM_PAGE).respond_with_json(page)
    if fault == "attachment gone":
        return
    path = asset_path(page, XLSX_2024Q3)
    bodies = {
        "renamed sheet": edited_xlsx(XLSX_2024Q3, "xl/workbook.xml", b'name="TA1"', b'name="TA1 (all)"'),
        "renamed header": edited_xlsx(XLSX_2024Q3, "xl/sharedStrings.xml", b"Total number of children in TA",
                                      b"Children in TA, total"),
        "html": b"<!DOCTYPE html><html><head><title>GOV.UK - Page not found</title></head><body></body></html>",
        "truncated": fixture(XLSX_2024Q3)[: len(fixture(XLSX_2024Q3)) // 2],
    }
    govuk.expect_request(path).respond_with_data(bodies[fault])


def _fuel_fault(govuk, fault: str):
    if fault == "attachment gone":
        serve_fuel(govuk, keep={"sub-regional-fuel-poverty-2023-report.pdf"})
        return
    bodies = {
        "renamed sheet": edited_xlsx(FUEL_TABLES, "xl/workbook.xml", b'name="Table 2"', b'name="Table_2"'),
        "renamed header": edited_xlsx(FUEL_TABLES, "xl/sharedStrings.xml", b"Number of households in fuel poverty",
                                      b"Households in fuel poverty (number)"),
        "html": b"<html><body><h1>Service unavailable</h1></body></html>",
        "truncated": fixture(FUEL_TABLES)[:700_000],
    }
    serve_fuel(govuk, bodies[fault])


def _file10_fault(govuk, fault: str):
    if fault == "attachment gone":
        serve_file10(govuk, None, keep={"File_7_IoD2025_All_Ranks_Scores_Deciles_Population_Denominators.csv"})
        return
    bodies = {
        "renamed sheet": edited_xlsx(FILE10_FIXTURE, "xl/workbook.xml", b'name="Income"', b'name="Income deprivation"'),
        "renamed header": edited_xlsx(FILE10_FIXTURE, "xl/sharedStrings.xml", b"Income - Average score",
                                      b"Income - Mean score"),
        "html": b"<!DOCTYPE html><html><body>Page not found</body></html>",
        "truncated": fixture(FILE10_FIXTURE)[:40_000],
    }
    serve_file10(govuk, bodies[fault])


def _hi_fault(server, fault: str):
    if fault == "attachment gone":
        serve_hi(server, None, files=["healthindexscoresengland.xlsx"])
        return
    bodies = {
        "renamed sheet": edited_xlsx(HI_FIXTURE, "xl/workbook.xml", b'name="Table_2_Underlying_data"',
                                     b'name="Table 2"'),
        "renamed header": edited_xlsx(HI_FIXTURE, "xl/worksheets/sheet2.xml", b"<t>Value</t>", b"<t>Value (raw)</t>"),
        "html": b"<!DOCTYPE html><html><body>Page not found</body></html>",
        "truncated": fixture(HI_FIXTURE)[:300_000],
    }
    serve_hi(server, bodies[fault])


FAULTS = {"mhclg_homelessness": _hclic_fault, "desnz_fuel_poverty": _fuel_fault, "mhclg_deprivation": _file10_fault,
          "ons_health_index": _hi_fault, "ons_crime_severity": _crime_fault}
FILES = {"mhclg_homelessness": XLSX_2024Q3, "desnz_fuel_poverty": FUEL_TABLES, "mhclg_deprivation": FILE10,
         "ons_health_index": HI_FILE, "ons_crime_severity": CSS_FILE}
SHEETS = {"mhclg_homelessness": "'TA1'", "desnz_fuel_poverty": "'Table 2'", "mhclg_deprivation": "'Income'",
          "ons_health_index": "'Table_2_Underlying_data'", "ons_crime_severity": "'Data - csp'"}
HEADERS = {"mhclg_homelessness": "children in ta", "desnz_fuel_poverty": "number of households in fuel poverty",
           "mhclg_deprivation": "average score", "ons_health_index": "value$", "ons_crime_severity": "offence group"}
EXPECTED = {
    "attachment gone": "no attachment on",
    "renamed sheet": "has no sheet",
    "renamed header": "expected one column headed like",
    "html": "is an HTML page, not a spreadsheet",
    "truncated": "not a readable spreadsheet",
}


def attempt(source) -> str:
    """Fetch and parse as a live run does; the error message of the fault."""
    specs = lad_specs() if source is IOD else by_source(source.name)
    with pytest.raises(SourceError) as err:
        for payload in source.fetch(client(), specs):
            source.parse(payload, specs)
    return str(err.value)


@pytest.mark.parametrize("fault", list(EXPECTED))
@pytest.mark.parametrize("source", [HOM, FUEL, IOD, HI, CRIME], ids=lambda s: s.name)
def test_layout_and_download_faults_name_the_file_sheet_and_what_was_expected(govuk, ons, source, fault):
    FAULTS[source.name](govuk, fault)
    message = attempt(source)
    assert source.name in message
    if fault != "attachment gone":  # the file is named
        assert EXPECTED[fault] in message and FILES[source.name] in message
    elif source is HI:  # the edition and the file looked for are named
        assert HI_BASE + "/current" in message and "healthindexunderlyingdata" in message
    elif source is CRIME:
        assert CSS_BASE + "/current" in message and "datatool.xls" in message
    else:  # the page and the rule are named
        assert EXPECTED[fault] in message and govuk.url_for("/api/content/") in message and "matches" in message
    if fault in ("renamed sheet", "renamed header"):
        assert SHEETS[source.name] in message
    if fault == "renamed header":  # the header expected is named
        assert HEADERS[source.name] in message


@pytest.mark.parametrize("source", [HOM, FUEL, CRIME], ids=lambda s: s.name)
def test_a_layout_change_fails_the_run_and_keeps_the_previous_data(govuk, ons, initialised_engine, source):
    FAULTS[source.name](govuk, "renamed sheet")
    assert run(initialised_engine, source, offline=True).status == "succeeded"
    before = observations(initialised_engine, source)
    summary = run(initialised_engine, source)
    assert summary.status == "failed" and "has no sheet" in summary.error
    assert observations(initialised_engine, source) == before


@pytest.mark.parametrize("source", [HOM, FUEL, IOD, HI], ids=lambda s: s.name)
def test_rate_limited_download_waits_for_retry_after(govuk, ons, source):
    if source is HI:
        serve_hi(govuk, None)
        path, body = "/file", fixture(HI_FIXTURE)
    elif source is IOD:
        page = serve_file10(govuk, None)
        path, body = asset_path(page, FILE10), fixture(FILE10_FIXTURE)
    elif source is HOM:
        page = item("govuk_live_tables_on_homelessness.constructed.json", govuk, keep={XLSX_2024Q3})
        govuk.expect_request(HOM_PAGE).respond_with_json(page)
        path, body = asset_path(page, XLSX_2024Q3), fixture(XLSX_2024Q3)
    else:
        govuk.expect_request(FUEL_COLLECTION).respond_with_data(fixture("govuk_fuel_poverty_collection.constructed.json"))
        page = item("govuk_sub_regional_fuel_poverty_data_2023.constructed.json", govuk)
        govuk.expect_request(FUEL_PAGE).respond_with_json(page)
        path, body = asset_path(page, FUEL_TABLES), fixture(FUEL_TABLES)
    govuk.expect_oneshot_request(path).respond_with_data("Too Many Requests", status=429, headers={"Retry-After": "1"})
    govuk.expect_request(path).respond_with_data(body)
    started = time.perf_counter()
    specs = lad_specs() if source is IOD else by_source(source.name)
    frames = [source.parse(payload, specs) for payload in source.fetch(client(), specs)]
    assert time.perf_counter() - started >= 1.0
    assert sum(len(f) for f in frames) > 1000
    statuses = [(req.path, resp.status_code) for req, resp in govuk.log if req.path == path]
    assert statuses == [(path, 429), (path, 200)]


def test_html_instead_of_a_spreadsheet_is_named_directly():
    payload = Payload(location="https://example.invalid/x.ods", content=b"<!doctype html><p>moved</p>",
                      meta={"kind": "workbook", "filename": "x.ods"})
    with pytest.raises(SourceFormatError, match="x.ods .* is an HTML page"):
        HOM.parse(payload, by_source(HOM.name))
