"""NOMIS live client: paging by recordOffset, the uid key, OBS_STATUS markers, APS annual rows with their
confidence intervals, and a failing server. Served over real HTTP from tests/fixtures/nomis (NOMIS CSV shape,
values from the ONS ELS employment-rate and claimant-count files: see the README there)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.base import Payload, SourceError, SourceFormatError
from pipelines.http import HttpClient
from pipelines.nomis import GEOGRAPHY, NomisSource
from tracker.catalog import by_source

FIXTURES = Path(__file__).parent / "fixtures" / "nomis"
APS = "/dataset/NM_17_5.data.csv"
CLAIMANT = "/dataset/NM_162_1.data.csv"
UNRELIABLE = "Estimate and confidence interval unreliable since the group sample size is small (3-9)"
DISCLOSIVE = "Estimate and confidence interval not available since the group sample size is zero or disclosive (0-2)"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def specs():
    return by_source("nomis")


def aps_spec():
    return next(s for s in specs() if s.id == "nomis-aps-employment-rate-16-64")


def aps_query(offset: int, uid: str | None = None) -> dict:
    q = {"geography": GEOGRAPHY, "date": "latestMINUS39-latest", "variable": "45",
         "measures": "20599,21001,21002,21003", "recordOffset": str(offset)}
    if uid:
        q["uid"] = uid
    return q


@pytest.fixture
def nomis_server(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_NOMIS_BASE_URL", httpserver.url_for("/"))
    return httpserver


def serve_aps(server, uid=None):
    server.expect_request(APS, query_string=aps_query(0, uid)).respond_with_data(
        fixture("nm_17_5_employment_rate_page1.csv"), content_type="text/csv")
    server.expect_request(APS, query_string=aps_query(9, uid)).respond_with_data(
        fixture("nm_17_5_employment_rate_page2.csv"), content_type="text/csv")


def fetch_and_parse(spec_list):
    source = NomisSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), spec_list))
    return payloads, pd.concat([source.parse(p, spec_list) for p in payloads], ignore_index=True)


def row(frame, area, period):
    hit = frame[(frame["area_code"] == area) & (frame["period"] == period)]
    assert len(hit) == 1, (area, period, hit)
    return hit.iloc[0]


def test_aps_pages_are_followed_and_the_key_is_sent_but_not_recorded(nomis_server, monkeypatch):
    monkeypatch.setenv("TRACKER_NOMIS_UID", "secret-key-123")
    serve_aps(nomis_server, uid="secret-key-123")
    payloads, frame = fetch_and_parse([aps_spec()])
    offsets = [r.args["recordOffset"] for r, _ in nomis_server.log]
    assert offsets == ["0", "9"]  # the second page starts after the last RECORD_OFFSET of the first (8)
    assert all(r.args["uid"] == "secret-key-123" for r, _ in nomis_server.log)
    assert len(payloads) == 1 and "secret-key-123" not in payloads[0].location and "uid=***" in payloads[0].location
    # Gateshead 2023: value on page 1, its confidence half-width (4.3) on page 2
    gateshead = row(frame, "E08000037", "2023")
    assert (float(gateshead["value"]), gateshead["lci95"], gateshead["uci95"]) == (76.3, 72.0, 80.6)


def test_without_a_key_no_uid_is_sent(nomis_server, monkeypatch):
    monkeypatch.delenv("TRACKER_NOMIS_UID", raising=False)
    serve_aps(nomis_server)
    fetch_and_parse([aps_spec()])
    assert len(nomis_server.log) == 2 and all("uid" not in r.args for r, _ in nomis_server.log)


def test_aps_annual_rows_confidence_intervals_and_markers(nomis_server):
    serve_aps(nomis_server)
    _, frame = fetch_and_parse([aps_spec()])
    england = row(frame, "E92000001", "2023")
    assert (float(england["value"]), england["lci95"], england["uci95"]) == (76.0, 75.6, 76.4)
    assert (str(england["period_start"]), str(england["period_end"])) == ("2023-01-01", "2023-12-31")
    assert float(row(frame, "E06000047", "2022")["value"]) == 72.2
    # County Durham is in both the district and the county geography types: one row, not two
    assert len(frame[(frame["area_code"] == "E06000047") & (frame["period"] == "2023")]) == 1
    # only January-December rows: the rolling "Oct 2022-Sep 2023" row is not an annual figure
    assert set(frame["period"]) == {"2022", "2023"}
    city = row(frame, "E09000001", "2023")  # "!": no value, the reason in the note
    assert city["value"] == "" and city["note"] == DISCLOSIVE and pd.isna(city["lci95"])
    hampshire = row(frame, "E10000014", "2023")  # "*": value kept, flagged
    assert float(hampshire["value"]) == 81.7 and hampshire["note"] == UNRELIABLE
    birmingham = row(frame, "E08000025", "2022")  # "~": value kept, flagged
    assert float(birmingham["value"]) == 66.3 and birmingham["note"] == "Estimate is less than 500"
    assert row(frame, "E92000001", "2022")["note"] is None


def serve_claimant(server):
    server.expect_request(
        CLAIMANT,
        query_string={"geography": GEOGRAPHY, "date": "latestMINUS23-latest", "gender": "0", "age": "0", "measure": "2",
                      "measures": "20100", "recordOffset": "0"},
    ).respond_with_data(fixture("nm_162_1_claimant_count.csv"), content_type="text/csv")


def test_claimant_count_monthly_rows(nomis_server):
    spec = next(s for s in specs() if s.id == "nomis-claimant-count-pct-16-64")
    serve_claimant(nomis_server)
    _, frame = fetch_and_parse([spec])
    birmingham = row(frame, "E08000025", "December 2025")
    assert float(birmingham["value"]) == 10.1
    assert (str(birmingham["period_start"]), str(birmingham["period_end"])) == ("2025-12-01", "2025-12-31")
    city = row(frame, "E09000001", "December 2025")
    assert city["value"] == "" and city["note"] == "These figures are missing."


def test_live_refresh_loads_into_the_database(nomis_server, initialised_engine):
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source

    serve_aps(nomis_server)
    summary = run_source(initialised_engine, NomisSource(), [aps_spec()], offline=False,
                         mapper=AreaMapper.from_engine(initialised_engine), http=HttpClient(timeout=5, retries=0, backoff=0.01))
    assert summary.status == "succeeded", summary.error
    with initialised_engine.connect() as conn:
        got = {r.area_code: r for r in conn.execute(text(
            "SELECT area_code, value, lci95, uci95, note FROM observation "
            "WHERE indicator_id = 'nomis-aps-employment-rate-16-64' AND period = '2023'"))}
    assert (got["E08000025"].value, got["E08000025"].lci95, got["E08000025"].uci95) == (65.9, 62.4, 69.4)
    assert got["E09000001"].value is None and got["E09000001"].note == DISCLOSIVE
    assert set(got) == {"E92000001", "E12000001", "E06000047", "E08000037", "E08000025", "E10000014", "E09000001"}


def test_server_error_is_a_clear_source_error(nomis_server):
    nomis_server.expect_request(APS).respond_with_data("Internal Server Error", status=500)
    with pytest.raises(SourceError, match=r"HTTP 500 .*after 2 retries"):
        list(NomisSource().fetch(HttpClient(timeout=5, retries=2, backoff=0.01), [aps_spec()]))
    assert len(nomis_server.log) == 3  # the first try and two retries


def test_a_cut_short_page_is_rejected(nomis_server):
    page = fixture("nm_17_5_employment_rate_page1.csv").rstrip("\n")
    nomis_server.expect_request(APS).respond_with_data(page[: page.rfind(",")], content_type="text/csv")
    with pytest.raises(SourceFormatError, match="truncated"):
        list(NomisSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [aps_spec()]))


def test_no_offline_snapshot_says_where_the_figures_come_from(sqlite_engine):
    from db.engine import upgrade
    from tracker.refresh import run_source

    assert NomisSource.has_offline is False
    with pytest.raises(SourceError, match="Explore Local Statistics"):
        list(NomisSource().read_offline(specs()))
    upgrade(sqlite_engine)  # the run table is all a skipped run touches
    summary = run_source(sqlite_engine, NomisSource(), specs(), offline=True, mapper=None)
    assert summary.status == "skipped" and "no bundled snapshot" in summary.error
    # the NOMIS ids are not the ELS ids, and their caveats say ELS supplies the figures offline
    for spec in specs():
        assert spec.id.startswith("nomis-") and "Explore Local Statistics" in spec.caveats


def test_parse_ignores_a_payload_for_another_indicator():
    payload = Payload("x", fixture("nm_162_1_claimant_count.csv").encode(), meta={"indicator_id": "not-this-one"})
    assert NomisSource().parse(payload, [aps_spec()]).empty
