"""DWP Stat-Xplore client (children in low income families) through real HTTP on 127.0.0.1: the generic cube reader
on a real recorded Stat-Xplore response, the CILIF table (a constructed response with real DWP counts, see
tests/fixtures/dwp/README.md), the key sent only as a header and never recorded, and no key -> skipped, data kept."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select, text

from db.models import Run
from pipelines import dwp
from pipelines.http import HttpClient
from tracker.catalog import by_source
from tracker.geography import AreaMapper
from tracker.refresh import run_source

FIXTURES = Path(__file__).parent / "fixtures" / "dwp"
KEY = "test-key-65f0c1d2e3"  # a test key: what a user would put in TRACKER_STATXPLORE_API_KEY
SPEC = by_source("dwp_children_low_income")[0]


@pytest.fixture
def statxplore(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_STATXPLORE_BASE_URL", httpserver.url_for("/webapi/rest/v1/"))
    monkeypatch.setenv("TRACKER_STATXPLORE_API_KEY", KEY)
    return httpserver


def serve_cilif(server):
    server.expect_request("/webapi/rest/v1/table", method="POST", headers={"APIKey": KEY}).respond_with_data(
        (FIXTURES / "cilif_rel_table_constructed.json").read_text(), content_type="application/json;charset=UTF-8")


def test_cube_reader_on_a_real_recorded_response():
    doc = json.loads((FIXTURES / "example_a_response_body.json").read_text())
    cells = dwp.cube_rows(doc, "example a")
    region, month, family = (f["uri"] for f in doc["fields"])
    assert len(cells) == 9 * 4 * 5  # the total items of two recodes are left out
    north_east = cells[(cells[region] == "North East") & (cells[month] == "May 2018")].set_index(family)
    assert north_east.loc["Single, no child dependant", "value"] == 36393.0
    assert set(cells[f"{region}#code"]) == {f"E1200000{i}" for i in range(1, 10)}


def test_the_query_names_every_district_and_combines_the_age_bands():
    body = dwp.table_query(SPEC.options["statxplore"], dwp.district_codes())
    recorded = json.loads((FIXTURES / "example_a_request_body.json").read_text())
    assert set(body) == set(recorded)  # the documented shape: database, measures, recodes, dimensions
    geography = body["recodes"]["str:field:CILIF_REL:V_F_CILIF_REL:COA"]["map"]
    assert len(geography) == 296 and geography[0] == [
        "str:value:CILIF_REL:V_F_CILIF_REL:COA:V_C_MASTERGEOG11_LA_TO_UTLA_NI:E06000001"]
    assert len(body["recodes"]["str:field:CILIF_REL:V_F_CILIF_REL:CHILD_AGE"]["map"]) == 1  # one group: under 16
    assert "str:field:CILIF_REL:F_CILIF_DATE:DATE_NAME" not in body["recodes"]  # every year held: new ones found


def test_live_fetch_parses_the_counts_with_provisional_notes(statxplore):
    serve_cilif(statxplore)
    source = dwp.ChildrenLowIncomeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [SPEC]))
    request = statxplore.log[0][0]
    assert request.headers["APIKey"] == KEY and KEY not in request.url
    frame = source.parse(payloads[0], [SPEC]).set_index(["area_code", "period"])
    assert frame.loc[("E06000001", "2020/21"), "value"] == 6692
    latest = frame.loc[("E06000002", "2021/22")]
    assert latest["value"] == 13432 and latest["note"] == "provisional"
    assert str(latest["period_start"]) == "2021-04-01" and str(latest["period_end"]) == "2022-03-31"


def test_the_key_is_never_recorded(statxplore, initialised_engine, isolated_data_dir, caplog):
    serve_cilif(statxplore)
    caplog.set_level(logging.DEBUG)
    summary = run_source(initialised_engine, dwp.ChildrenLowIncomeSource(), [SPEC], False,
                         AreaMapper.from_engine(initialised_engine), http=HttpClient(timeout=5, retries=0, backoff=0.01))
    assert summary.status == "succeeded", summary.error
    with initialised_engine.connect() as conn:
        run = conn.execute(select(Run).where(Run.id == summary.run_id)).mappings().one()
        stored = conn.execute(text("SELECT value FROM observation WHERE area_code = 'E06000003' AND period = '2019/20'")).scalar()
    assert stored == 8152
    assert KEY not in json.dumps(dict(run), default=str)  # locations, payload metadata, problems, error
    assert KEY not in caplog.text
    archived = [gzip.decompress(p.read_bytes()) for p in (isolated_data_dir / "raw").rglob("*.gz")]
    assert archived and all(KEY.encode() not in a for a in archived)


def test_a_rejected_key_fails_the_run_without_showing_the_key(statxplore, initialised_engine):
    statxplore.expect_request("/webapi/rest/v1/table", method="POST").respond_with_data("Unauthorized", status=401)
    summary = run_source(initialised_engine, dwp.ChildrenLowIncomeSource(), [SPEC], False,
                         AreaMapper.from_engine(initialised_engine), http=HttpClient(timeout=5, retries=0, backoff=0.01))
    assert summary.status == "failed" and "HTTP 401" in summary.error and KEY not in summary.error


def test_without_a_key_the_source_says_so_once_and_keeps_its_data(initialised_engine, monkeypatch):
    monkeypatch.delenv("TRACKER_STATXPLORE_API_KEY", raising=False)
    mapper = AreaMapper.from_engine(initialised_engine)
    offline = run_source(initialised_engine, dwp.ChildrenLowIncomeSource(), [SPEC], True, mapper)
    live = run_source(initialised_engine, dwp.ChildrenLowIncomeSource(), [SPEC], False, mapper)
    assert live.status == "skipped" and "TRACKER_STATXPLORE_API_KEY" in live.error
    with initialised_engine.connect() as conn:
        runs = set(conn.execute(text("SELECT DISTINCT run_id FROM observation")).scalars())
    assert runs == {offline.run_id}


def test_a_response_that_is_not_a_table_is_a_clear_error(statxplore):
    statxplore.expect_request("/webapi/rest/v1/table", method="POST").respond_with_data(
        json.dumps({"fields": []}), content_type="application/json")
    source = dwp.ChildrenLowIncomeSource()
    payload = next(iter(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [SPEC])))
    with pytest.raises(dwp.SourceFormatError, match="not a Stat-Xplore table response"):
        source.parse(payload, [SPEC])


def test_429_with_retry_after_is_waited_for_then_read(statxplore):
    statxplore.expect_oneshot_request("/webapi/rest/v1/table", method="POST").respond_with_data(
        "rate limit", status=429, headers={"Retry-After": "1"})
    serve_cilif(statxplore)
    source = dwp.ChildrenLowIncomeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=2, backoff=0.01), [SPEC]))
    assert len(statxplore.log) == 2 and statxplore.log[0][1].status_code == 429
    assert len(source.parse(payloads[0], [SPEC])) == 9


@pytest.mark.parametrize("body, expected", [
    ("<!DOCTYPE html><html><body>Service unavailable</body></html>", "not the JSON Stat-Xplore returns"),
    ((FIXTURES / "cilif_rel_table_constructed.json").read_text()[:700], "cut short"),
])
def test_html_or_a_truncated_response_is_a_clear_error(statxplore, body, expected):
    statxplore.expect_request("/webapi/rest/v1/table", method="POST").respond_with_data(body, content_type="text/html")
    source = dwp.ChildrenLowIncomeSource()
    payload = next(iter(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [SPEC])))
    with pytest.raises(dwp.SourceFormatError, match=expected):
        source.parse(payload, [SPEC])
