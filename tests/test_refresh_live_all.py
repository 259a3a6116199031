"""Issue 12's "Done when", end to end: ONE local replay server on 127.0.0.1 stands in for every publisher (each
source's base-URL setting points at it), and the real CLI's `tracker refresh` fetches all ten sources live into a
new install, loading the newer real files (H-CLIC to 2025 Q4 from the Dec 2025 .ods, fuel poverty from the 2023
tables); `tracker status` then shows each source's latest period, release date and whether it is overdue; a second
identical refresh changes nothing, keeps the same saved analysis, and the next dashboard start reads that save.

The routes are the pipeline tests' own replays of real recorded responses and real original files (constructed ones
labelled in their fixture folders' READMEs), imported from those tests, not copied. Two sources are served from
the project's own bundled real data instead of an excerpt: Fingertips (the bundled API extract for indicator 93861,
as tests/test_refresh_faults.py serves it) and ONS ELS (each data set's bundled file, which is the ELS repository's
CSV byte for byte). DfE's discovery of the KS4 and C1 data sets by publication is constructed here from the catalog's real ids and
titles (see dfe_routes)."""

from __future__ import annotations

import gzip
import json
from collections import OrderedDict

import pytest
from sqlalchemy import select, text

from db.engine import make_engine
from db.models import AnalysisSave, Run
from pipelines import dfe
from pipelines.ons_els import ElsSource
from pipelines.registry import all_sources
from tests.test_pipeline_dfe import ABSENCE, serve_absence, serve_c1, serve_ks4_catalog
from tests.test_pipeline_dwp import KEY, serve_cilif
from tests.test_pipeline_mhclg import FIXTURES as IOD_FIXTURES
from tests.test_pipeline_nomis import serve_aps, serve_claimant
from tests.test_pipeline_spreadsheets import (
    CSS_FIXTURE, FILE10_FIXTURE, FUEL_TABLES, HI_FIXTURE, HOM_PAGE, ODS_2025Q4, XLSX_2024Q3, asset_path, crime_fixture,
    fixture, item, serve_crime, serve_file10, serve_fuel, serve_hi,
)
from tests.test_refresh_faults import DATA, META, METADATA, REAL_CSV, cli
from tests.test_saved_analysis import _not_rebuilt
from tracker.analysis import data
from tracker.catalog import by_source

SOURCES = list(all_sources())


def fingertips_routes(server):
    server.expect_request(DATA).respond_with_data(REAL_CSV, content_type="text/csv")
    server.expect_request(META).respond_with_data(METADATA, content_type="text/csv")


def els_routes(server):
    for payload in ElsSource().read_offline(by_source("ons_els")):
        dataset = payload.meta["dataset"]
        body = gzip.decompress(payload.content) if payload.content[:2] == b"\x1f\x8b" else payload.content
        server.expect_request(f"/{dataset}/{dataset}.csv").respond_with_data(body, content_type="text/plain")


def dfe_routes(server):
    """The pipeline test's EES replays (absence, KS4, C1: constructed in the documented schemas from real ids and
    values, tests/fixtures/dfe/README.md). The catalog finds KS4 and C1 by publication; those two discovery answers
    are CONSTRUCTED here: the publication found by the catalog's slug (a stand-in publication id) and its data set
    list naming the catalog's real data set id and title (absence's discovery is the pipeline test's)."""
    for spec in by_source("dfe"):
        dataset, slug = spec.options.get("ees_dataset"), spec.options.get("ees_publication")
        if not dataset or not slug or dataset == ABSENCE:
            continue
        publication, title = f"stand-in-{slug}", spec.options["ees_dataset_title"]
        server.expect_request("/publications", query_string={"search": slug.replace("-", " "), "pageSize": "40"}
                              ).respond_with_json(
            {"paging": {"page": 1, "pageSize": 40, "totalResults": 1, "totalPages": 1},
             "results": [{"id": publication, "slug": slug, "title": title, "summary": "", "lastPublished": None}]})
        server.expect_request(f"/publications/{publication}/data-sets").respond_with_json(
            {"paging": {"page": 1, "pageSize": 40, "totalResults": 1, "totalPages": 1},
             "results": [{"id": dataset, "title": title, "summary": "", "status": "Published"}]})
    serve_ks4_catalog(server)
    serve_c1(server)
    serve_absence(server)


def spreadsheet_routes(server):
    page = item("govuk_live_tables_on_homelessness.constructed.json", server)
    server.expect_request(HOM_PAGE).respond_with_json(page)
    for name in (ODS_2025Q4, XLSX_2024Q3):
        server.expect_request(asset_path(page, name)).respond_with_data(fixture(name))
    serve_fuel(server, fixture(FUEL_TABLES))
    serve_file10(server, fixture(FILE10_FIXTURE))
    server.expect_request("/File_7.csv").respond_with_data(
        (IOD_FIXTURES / "imd2025_lsoa21_excerpt_hartlepool.csv").read_bytes(), content_type="text/csv")
    serve_hi(server, fixture(HI_FIXTURE))
    serve_crime(server, crime_fixture(CSS_FIXTURE))


@pytest.fixture
def replay(httpserver, monkeypatch):
    """The one server, every publisher's base URL pointed at it (tracker/config.py SETTINGS)."""
    root = httpserver.url_for("/")
    for name in ("FINGERTIPS", "NOMIS", "EES", "ELS", "GOVUK", "ONS"):
        monkeypatch.setenv(f"TRACKER_{name}_BASE_URL", root)
    monkeypatch.setenv("TRACKER_STATXPLORE_BASE_URL", httpserver.url_for("/webapi/rest/v1/"))
    monkeypatch.setenv("TRACKER_STATXPLORE_API_KEY", KEY)
    monkeypatch.setenv("TRACKER_MHCLG_DEPRIVATION_URL", httpserver.url_for("/File_7.csv"))
    monkeypatch.setenv("TRACKER_HTTP_RETRIES", "1")
    monkeypatch.setenv("TRACKER_HTTP_BACKOFF", "0.01")
    monkeypatch.setattr(dfe, "PAGE_SIZE", 5)  # the recorded EES query pages hold 5 results each
    fingertips_routes(httpserver)
    els_routes(httpserver)
    serve_aps(httpserver)
    serve_claimant(httpserver)
    dfe_routes(httpserver)
    serve_cilif(httpserver)
    spreadsheet_routes(httpserver)
    return httpserver


def status_json(capsys) -> list[dict]:
    from tracker.cli import main

    capsys.readouterr()
    try:
        main(["status", "--format", "json"])
    except SystemExit as done:
        assert done.code in (0, None)
    return json.loads(capsys.readouterr().out)


def saves(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AnalysisSave.data_version, AnalysisSave.code_digest,
                                                      AnalysisSave.saved_at))]


def test_refresh_fetches_all_ten_sources_live_from_one_replay_server_and_a_second_changes_nothing(
        replay, isolated_data_dir, capsys, monkeypatch):
    assert len(SOURCES) == 10
    code, results, err = cli(capsys, "refresh", "--log-format", "json")
    status = {r["source"]: (r["status"], r["error"]) for r in results}
    assert status == {name: ("succeeded", "") for name in SOURCES}, err[-2000:]
    assert code == 0

    engine = make_engine(f"sqlite:///{isolated_data_dir / 'tracker.sqlite'}")
    with engine.connect() as conn:
        modes = dict(conn.execute(select(Run.source, Run.mode)).all())
        hclic = conn.execute(text("SELECT locations, latest_period_end FROM run WHERE source = 'mhclg_homelessness'")).one()
        fuel = conn.execute(text("SELECT locations FROM run WHERE source = 'desnz_fuel_poverty'")).scalar()
        ta = {r[0] for r in conn.execute(text(
            "SELECT count FROM observation WHERE area_code = 'E92000001' AND period = '31 Dec 2025' AND indicator_id IN "
            "(SELECT id FROM indicator WHERE source = 'mhclg_homelessness')"))}
        fuel_england = conn.execute(text(
            "SELECT period, count, denominator FROM observation WHERE area_code = 'E92000001' AND indicator_id IN "
            "(SELECT id FROM indicator WHERE source = 'desnz_fuel_poverty')")).all()
    assert modes == {name: "live" for name in SOURCES}  # every source fetched live, none from the snapshot
    fetched = {req.path for req, _ in replay.log}
    assert {DATA, META, "/claimant-count/claimant-count.csv", "/dataset/NM_17_5.data.csv", f"/data-sets/{ABSENCE}/query",
            "/webapi/rest/v1/table", "/File_7.csv", "/file", HOM_PAGE} <= fetched
    # the newer real files: H-CLIC to 2025 Q4 from the Dec 2025 .ods, fuel poverty from the 2023 tables
    assert ODS_2025Q4 in hclic.locations and str(hclic.latest_period_end) == "2025-12-31"
    assert 134210 in ta  # households in temporary accommodation in England on 31 December 2025, from the .ods
    assert FUEL_TABLES in fuel and [tuple(r) for r in fuel_england] == [("2021", 3162752, 24070861)]

    shown = {r["source"]: r for r in status_json(capsys)}
    assert set(shown) == set(SOURCES)
    assert {name: shown[name]["latest_period"] for name in ("mhclg_homelessness", "desnz_fuel_poverty",
                                                           "ons_crime_severity")} == {
        "mhclg_homelessness": "2025 Q4", "desnz_fuel_poverty": "2021", "ons_crime_severity": "2022/23"}
    assert all(shown[name]["latest_period"] for name in SOURCES)
    # the release date each publisher's service gives: EES's version date, ONS's /data releaseDate, GOV.UK's
    # public_updated_at of the page the file was found on
    assert shown["dfe"]["released"][:10] == "2026-03-19"
    assert shown["mhclg_homelessness"]["released"][:10] == "2026-04-30"
    assert shown["desnz_fuel_poverty"]["released"][:10] == "2023-04-27"
    assert shown["mhclg_deprivation"]["released"][:10] == "2025-11-17"
    assert shown["ons_crime_severity"]["released"][:10] == "2023-07-20"
    assert shown["ons_health_index"]["released"][:10] == "2023-06-16"
    # overdue by the data: crime severity for the year to March 2023 (annual, 240 days' grace) is long overdue
    assert shown["ons_crime_severity"]["overdue"] is True and "overdue since" in shown["ons_crime_severity"]["freshness"]
    assert all(isinstance(shown[name]["overdue"], bool) and shown[name]["freshness"] for name in SOURCES)
    first_save = saves(engine)
    assert [row[0] for row in first_save] == [data.data_version(engine)]  # the refresh saved the analysis
    version = data.data_version(engine)

    # a second identical refresh: nothing changes, the saved analysis stays the one the dashboards read
    code, again, _ = cli(capsys, "refresh", "--log-format", "json")
    assert code == 0
    assert {r["source"]: (r["status"], r["changed"], r["removed"]) for r in again} == {
        name: ("succeeded", 0, 0) for name in SOURCES}
    assert saves(engine) == first_save and data.data_version(engine) == version

    monkeypatch.setattr(data, "_CACHE", OrderedDict())  # the next dashboard start
    monkeypatch.setattr(data, "_BUILDING", {})
    monkeypatch.setattr(data, "_load", _not_rebuilt)
    store = data.get_store(engine)
    assert store.version == version and ("indicator_catalog",) in store.memo  # read from the save, not computed
    engine.dispose()

