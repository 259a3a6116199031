"""DfE source: the bundled LAIT extract and NCCIS files (real values as published), the EES CSV format (real
EES excerpts in tests/fixtures/dfe), the EES API client over real HTTP (meta + paged POST query, and the /csv
path), and the offline refresh end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

import pipelines.dfe as dfe
from pipelines.base import Payload, SourceError, SourceFormatError
from pipelines.http import HttpClient
from pipelines.validate import Problems, to_numbers
from tracker.catalog import by_source

FIXTURES = Path(__file__).parent / "fixtures" / "dfe"
ENGLAND = "E92000001"


def catalog(indicator_id: str):
    return next(s for s in by_source("dfe") if s.id == indicator_id)


def with_options(indicator_id: str, **options):
    spec = catalog(indicator_id)
    return dataclasses.replace(spec, options=options)


def fixture_payload(name: str, **meta) -> Payload:
    return Payload(f"fixtures/dfe/{name}", (FIXTURES / name).read_bytes(), meta=meta)


@pytest.fixture(scope="module")
def offline():
    """Every catalog indicator parsed from the bundled snapshot (LAIT + the four NCCIS files)."""
    source, specs = dfe.DfeSource(), by_source("dfe")
    return pd.concat([source.parse(p, specs) for p in source.read_offline(specs)], ignore_index=True)


def pick(frame, indicator, area, period=None, category=""):
    rows = frame[(frame["indicator_id"] == indicator) & (frame["area_code"] == area) & (frame["category"] == category)]
    if period is not None:
        rows = rows[rows["period"] == period]
        assert len(rows) == 1, (indicator, area, period, rows)
        return rows.iloc[0]
    return rows


def numbers(frame):
    """The shared validation step that turns markers into NULL + note."""
    return to_numbers(frame, dfe.DfeSource.markers, Problems())


# ---- LAIT ---------------------------------------------------------------------------------------------------


def test_attainment_8_england_series_as_published(offline):
    rows = pick(offline, "dfe-attainment-8", ENGLAND).sort_values("period")
    assert list(rows["period"]) == [f"{y}/{str(y + 1)[2:]}" for y in range(2015, 2025)]
    assert [float(v) for v in rows["value"]] == [50.1, 46.5, 46.6, 46.7, 50.2, 50.9, 48.8, 46.3, 45.9, 46.0]
    first = rows.iloc[0]  # LAIT's "2016" is the academic year 2015/16
    assert (str(first["period_start"]), str(first["period_end"])) == ("2015-09-01", "2016-08-31")
    assert rows["note"].isna().all()


def test_attainment_8_breakdowns_are_categories(offline):
    fsm = pick(offline, "dfe-attainment-8", ENGLAND, "2024/25", "Eligible for FSM")
    assert fsm["category_type"] == "FSM eligibility" and float(fsm["value"]) == 35.0
    assert float(pick(offline, "dfe-attainment-8", ENGLAND, "2024/25", "Not eligible for FSM")["value"]) == 50.0
    assert float(pick(offline, "dfe-attainment-8", ENGLAND, "2015/16", "Disadvantaged pupils")["value"]) == 41.2
    # school readiness for FSM children, 2015/16: 54 in LAIT (Fingertips 90632 publishes 54.4)
    assert float(pick(offline, "dfe-school-readiness", ENGLAND, "2015/16", "Eligible for FSM")["value"]) == 54.0


def test_lait_period_labels_by_kind_of_year(offline):
    # financial year: LAIT "2024" = 2023/24; Hartlepool 77.47 is Fingertips 90284's 2023/24 value (77.47318)
    hartlepool = pick(offline, "dfe-child-injury-admissions-0-14", "E06000001", "2023/24")
    assert float(hartlepool["value"]) == 77.47 and str(hartlepool["period_start"]) == "2023-04-01"
    # three calendar years
    rta = pick(offline, "dfe-children-killed-seriously-injured-roads", ENGLAND, "2014-16")
    assert float(rta["value"]) == 17.14
    assert (str(rta["period_start"]), str(rta["period_end"])) == ("2014-01-01", "2016-12-31")
    # children's social care: the year to 31 March
    cin = pick(offline, "dfe-children-in-need-rate", ENGLAND, "2024")
    assert float(cin["value"]) == 331.2 and str(cin["period_end"]) == "2024-03-31"
    # LAIT's own "2023/24" label, a rate published in exponent form (1.2889E-1 per 100 pupils)
    assert float(pick(offline, "dfe-permanent-exclusion-rate", ENGLAND, "2023/24")["value"]) == 0.12889


def test_first_time_entrants_england_row_is_withheld_with_the_reason(offline):
    england = pick(offline, "dfe-first-time-entrants-youth-justice", ENGLAND, "2016")
    assert england["value"] == ""
    assert "(3071)" in england["note"] and "237 to 417" in england["note"]
    assert len(pick(offline, "dfe-first-time-entrants-youth-justice", ENGLAND)) == 9  # every year, all withheld
    assert float(pick(offline, "dfe-first-time-entrants-youth-justice", "E12000001", "2016")["value"]) == 417
    # no other England figure is touched
    others = offline[(offline["area_code"] == ENGLAND) & (offline["indicator_id"] != "dfe-first-time-entrants-youth-justice")]
    assert others["note"].isna().all()
    loaded = numbers(england.to_frame().T)
    assert pd.isna(loaded["value"].iloc[0]) and loaded["note"].iloc[0] == england["note"]  # NULL, reason kept


def test_pre_2019_dorset_rows_are_reported_not_merged_into_bcp(offline, initialised_engine):
    from pipelines.validate import prepare
    from tracker.catalog import by_source
    from tracker.geography import AreaMapper

    old = offline[offline["area_code"].isin(["E06000028", "E06000029", "E10000009"])]
    assert len(old) > 0
    clean, problems = prepare(offline, by_source("dfe"), dfe.DfeSource.markers, AreaMapper.from_engine(initialised_engine))
    reasons = " ".join(problems.unmapped)
    assert "E06000028 (Bournemouth) was merged into E06000058" in reasons
    assert "E10000009 (Dorset) was split between" in reasons
    bcp = clean[(clean["indicator_id"] == "dfe-attainment-8") & (clean["area_code"] == "E06000058")
                & (clean["period"] == "2024/25") & (clean["category"] == "")]
    assert bcp["value"].tolist() == [50.5]


def test_lait_dash_is_a_marker(offline):
    city = numbers(pick(offline, "dfe-attainment-8", "E09000001", "2024/25").to_frame().T)
    assert pd.isna(city["value"].iloc[0]) and city["note"].iloc[0] == "not available (LAIT '-')"


def test_a_measure_missing_from_lait_is_an_error():
    source = dfe.DfeSource()
    lait = next(iter(source.read_offline([])))
    bad = dataclasses.replace(catalog("dfe-attainment-8"), source_id="AVG_Attain9_Score")
    with pytest.raises(SourceFormatError, match="AVG_Attain9_Score"):
        source.parse(lait, [bad])


# ---- NCCIS (EES CSV layout) ---------------------------------------------------------------------------------


def test_neet_or_not_known_england_from_nccis_and_lait(offline):
    rows = pick(offline, "dfe-neet-or-not-known-16-17", ENGLAND).set_index("period")
    assert {p: float(v) for p, v in rows["value"].items()} == {
        "2019": 5.5, "2020": 5.5, "2021": 5.5, "2022": 4.7, "2023": 5.2, "2024": 5.4, "2025": 5.6,
    }
    assert set(rows["age"]) == {"16-17 yrs"}
    assert (str(rows.loc["2023", "period_start"]), str(rows.loc["2023", "period_end"])) == ("2022-12-01", "2023-02-28")
    # a local authority: one row per year, whichever file it came from
    assert pick(offline, "dfe-neet-or-not-known-16-17", "E08000025")["period"].is_unique
    participation = pick(offline, "dfe-participation-16-17", ENGLAND, "2023")
    assert float(participation["value"]) == 92.3 and str(participation["period_end"]) == "2023-03-31"


def test_nccis_suppression_markers_become_null_with_their_meaning(offline):
    sen = offline[(offline["indicator_id"] == "dfe-neet-or-not-known-16-17") & (offline["period"] == "2022")
                  & (offline["category"] == "SEN support")]
    checked = numbers(sen).set_index("area_code")
    assert pd.isna(checked.loc["E06000015", "value"]) and checked.loc["E06000015", "note"] == "not applicable (DfE 'z')"
    assert pd.isna(checked.loc["E10000007", "value"])
    assert checked.loc["E10000007", "note"] == "confidential: suppressed to protect small numbers (DfE 'c')"
    assert checked.loc[ENGLAND, "value"] == 8.4
    luton = numbers(pick(offline, "dfe-participation-16-17", "E06000032", "2025").to_frame().T)
    assert pd.isna(luton["value"].iloc[0]) and "DfE 'c'" in luton["note"].iloc[0]


def test_nccis_keeps_pre_2023_codes_as_published_and_skips_the_2021_sen_row(offline):
    # harmonised centrally: North Yorkshire county's code stays as published in the 2023 file
    assert float(pick(offline, "dfe-neet-or-not-known-16-17", "E10000023", "2023")["value"]) == 9.7
    assert float(pick(offline, "dfe-neet-or-not-known-16-17", "E06000065", "2025")["value"]) > 0
    # the 2021 file fills the SEN columns on its England row only (with the 2022 England figures)
    sen = offline[(offline["indicator_id"] == "dfe-neet-or-not-known-16-17") & (offline["category_type"] == "SEN provision")]
    assert sorted(set(sen["period"])) == ["2022", "2023", "2025"]


# ---- the EES CSV format, from the real EES excerpts -----------------------------------------------------------


def test_ees_csv_excerpt_ks4_with_filters():
    spec = with_options("dfe-attainment-8", ees_column="avg_att8", ees_filters={"social_care_group": "CINO at 31 March"})
    frame = dfe.DfeSource().parse(fixture_payload("ks4_la_excerpt.csv"), [spec]).set_index("area_code")
    assert len(frame) == 9 and set(frame["period"]) == {"2023/24"}
    assert frame.loc["E06000047", "value"] == "13" and frame.loc[ENGLAND, "value"] == "17.8"
    assert frame.loc["E12000001", "value"] == "14.8"
    assert (str(frame.loc[ENGLAND, "period_start"]), str(frame.loc[ENGLAND, "period_end"])) == ("2023-09-01", "2024-08-31")
    checked = numbers(frame.reset_index()).set_index("area_code")
    assert pd.isna(checked.loc["E06000017", "value"]) and "DfE 'c'" in checked.loc["E06000017", "note"]
    assert checked.loc["E09000001", "note"] == "not applicable (DfE 'z')"


def test_ees_csv_excerpt_children_in_need_reporting_year():
    spec = with_options("dfe-children-in-need-rate", ees_column="At31_episodes_rate")
    frame = numbers(dfe.DfeSource().parse(fixture_payload("children_in_need_b1_excerpt.csv"), [spec]))
    england = frame[frame["area_code"] == ENGLAND].iloc[0]
    assert (england["period"], england["value"], str(england["period_end"])) == ("2024", 332.9, "2024-03-31")
    hampshire = frame[frame["area_code"] == "E10000014"].iloc[0]
    assert pd.isna(hampshire["value"]) and hampshire["note"] == "low reliability, not published (DfE 'u')"
    hackney = frame[frame["area_code"] == "E09000012"].set_index("period")
    assert list(hackney.index) == ["2022", "2021"] and (hackney["note"] == "not available (DfE 'x')").all()


# ---- the EES API, over real HTTP -------------------------------------------------------------------------------

KS4 = "ks4-by-social-care-group"  # a stand-in data set id: no real id is known offline


@pytest.fixture
def ees(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_EES_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setattr(dfe, "PAGE_SIZE", 5)  # the recorded pages hold 5 results each
    return httpserver


def ks4_spec():
    return with_options("dfe-attainment-8", ees_dataset=KS4, ees_column="avg_att8",
                        ees_filters={"social_care_group": "CINO at 31 March", "version": "Revised"})


def serve_summary(server, dataset):
    """GET data-sets/{id}: a DataSetViewModel (constructed: see the fixtures README) saying the data set is published."""
    server.expect_request(f"/data-sets/{dataset}", method="GET").respond_with_json(
        {"id": dataset, "title": "stand-in", "summary": "stand-in", "status": "Published", "latestVersion": None})


def serve_ks4(server):
    serve_summary(server, KS4)
    server.expect_request(f"/data-sets/{KS4}/meta", method="GET").respond_with_data(
        (FIXTURES / "ees_ks4_meta.json").read_text(), content_type="application/json")
    for page in (1, 2):
        server.expect_request(f"/data-sets/{KS4}/query", method="POST", json={
            "criteria": {"and": [{"geographicLevels": {"in": ["NAT", "REG", "LA"]}},
                                 {"filters": {"eq": "sc0Qe"}}, {"filters": {"eq": "vRv1d"}}]},
            "indicators": ["i1avg"], "debug": False, "pageSize": 5, "page": page,
        }).respond_with_data((FIXTURES / f"ees_ks4_query_page{page}.json").read_text(), content_type="application/json")


def test_ees_api_meta_then_paged_query(ees):
    serve_ks4(ees)
    source = dfe.DfeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [ks4_spec()]))
    assert [(r.method, r.path) for r, _ in ees.log] == [("GET", f"/data-sets/{KS4}"),
        ("GET", f"/data-sets/{KS4}/meta"), ("POST", f"/data-sets/{KS4}/query"), ("POST", f"/data-sets/{KS4}/query")]
    sent = json.loads(ees.log[2][0].data)
    recorded = json.loads((FIXTURES / "query_request_body_example.json").read_text())
    assert set(sent) == set(recorded) and set(sent["criteria"]) == set(recorded["criteria"])  # the documented shape
    frame = numbers(pd.concat([source.parse(p, [ks4_spec()]) for p in payloads], ignore_index=True)).set_index("area_code")
    assert len(frame) == 9 and set(frame["period"]) == {"2023/24"}
    assert frame.loc["E06000047", "value"] == 13.0 and frame.loc["E08000037", "value"] == 20.4  # page 1 and page 2
    assert pd.isna(frame.loc["E06000053", "value"]) and "DfE 'c'" in frame.loc["E06000053", "note"]
    assert str(frame.loc[ENGLAND, "period_start"]) == "2023-09-01"


def test_ees_live_refresh_replaces_only_the_fetched_indicator(ees, initialised_engine):
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source

    mapper = AreaMapper.from_engine(initialised_engine)
    absence = catalog("dfe-overall-absence")  # no EES data set id
    offline = run_source(initialised_engine, dfe.DfeSource(), [catalog("dfe-attainment-8"), absence], True, mapper)
    assert offline.status == "succeeded", offline.error
    serve_ks4(ees)
    # the live excerpt holds 9 areas where the snapshot held every one: past the shrink guard, so allowed here
    live = run_source(initialised_engine, dfe.DfeSource(), [ks4_spec(), absence], False, mapper,
                      http=HttpClient(timeout=5, retries=0, backoff=0.01), allow_shrink=True)
    assert live.status == "succeeded", live.error
    with initialised_engine.connect() as conn:
        att8 = conn.execute(text("SELECT area_code, value, run_id FROM observation WHERE indicator_id = 'dfe-attainment-8'")).all()
        absence_runs = conn.execute(text(
            "SELECT DISTINCT run_id FROM observation WHERE indicator_id = 'dfe-overall-absence'")).scalars().all()
    assert len(att8) == 9 and {r.run_id for r in att8} == {live.run_id}
    assert dict((r.area_code, r.value) for r in att8)["E06000047"] == 13.0
    assert absence_runs == [offline.run_id]  # not fetched live: the snapshot figures stay


def test_ees_csv_endpoint(ees):
    serve_summary(ees, "cin-b1")
    ees.expect_request("/data-sets/cin-b1/csv", method="GET").respond_with_data(
        (FIXTURES / "children_in_need_b1_excerpt.csv").read_text(), content_type="text/csv")
    spec = with_options("dfe-children-in-need-rate", ees_dataset="cin-b1", ees_csv=True, ees_column="At31_episodes_rate")
    source = dfe.DfeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [spec]))
    assert len(ees.log) == 2
    frame = source.parse(payloads[-1], [spec])
    assert frame[frame["area_code"] == "E06000047"]["value"].tolist() == ["412.4"]


def test_ees_server_error_is_a_clear_source_error(ees):
    serve_summary(ees, KS4)
    ees.expect_request(f"/data-sets/{KS4}/meta").respond_with_data("upstream error", status=500)
    with pytest.raises(SourceError, match=r"HTTP 500 .*after 2 retries"):
        list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=2, backoff=0.01), [ks4_spec()]))
    assert len(ees.log) == 4  # the data set summary, then the meta and its two retries


def test_ees_unknown_indicator_column_names_what_the_data_set_has(ees):
    serve_summary(ees, KS4)
    ees.expect_request(f"/data-sets/{KS4}/meta").respond_with_data(
        (FIXTURES / "ees_ks4_meta.json").read_text(), content_type="application/json")
    spec = with_options("dfe-attainment-8", ees_dataset=KS4, ees_column="avg_att9")
    with pytest.raises(SourceFormatError, match="no indicator column avg_att9.*avg_att8"):
        list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [spec]))


def test_live_without_ees_ids_is_skipped_and_says_to_use_the_snapshot():
    from pipelines.base import SourceSkipped

    without = [dataclasses.replace(s, options={k: v for k, v in s.options.items() if k != "ees_dataset"})
               for s in by_source("dfe")]
    with pytest.raises(SourceSkipped, match="bundled LAIT and NCCIS"):
        list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), without))


# ---- discovery by publication (constructed responses in the documented schemas, real ids and values) ---------------

ABSENCE = "019d209c-08dc-74b6-9edb-52d521406fcf"  # the real API data set id, from the EES data catalogue
PUBLICATION = "cbbd299f-8297-44bc-92ac-558bcf51f8ad"
SUPERSEDED = "0191aaaa-0000-7000-8000-000000000001"  # a stand-in id for an older, replaced data set


def serve_absence(server, summary_of=ABSENCE):
    json_type = "application/json"
    server.expect_request("/publications", method="GET").respond_with_data(
        (FIXTURES / "ees_publications_constructed.json").read_text(), content_type=json_type)
    server.expect_request(f"/publications/{PUBLICATION}/data-sets", method="GET").respond_with_data(
        (FIXTURES / "ees_absence_data_sets_constructed.json").read_text(), content_type=json_type)
    server.expect_request(f"/data-sets/{summary_of}", method="GET").respond_with_data(
        (FIXTURES / "ees_absence_data_set_constructed.json").read_text(), content_type=json_type)
    server.expect_request(f"/data-sets/{ABSENCE}/meta", method="GET").respond_with_data(
        (FIXTURES / "ees_absence_meta_constructed.json").read_text(), content_type=json_type)
    server.expect_request(f"/data-sets/{ABSENCE}/query", method="POST").respond_with_data(
        (FIXTURES / "ees_absence_query_constructed.json").read_text(), content_type=json_type)


def test_catalog_carries_the_real_ees_data_set_ids():
    ids = {s.id: s.options.get("ees_dataset") for s in by_source("dfe")}
    assert ids["dfe-persistent-absence"] == ABSENCE
    assert ids["dfe-gcse-english-maths-grade-4"] == "b3e19901-5d2b-b676-bb4c-e60937d74725"


def test_discovery_by_publication_reads_the_data_set_of_that_title(ees):
    serve_absence(ees)
    old = dataclasses.replace(catalog("dfe-persistent-absence"),
                              options={**catalog("dfe-persistent-absence").options, "ees_dataset": SUPERSEDED})
    source = dfe.DfeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [old]))
    assert [(r.method, r.path) for r, _ in ees.log] == [
        ("GET", "/publications"), ("GET", f"/publications/{PUBLICATION}/data-sets"), ("GET", f"/data-sets/{ABSENCE}"),
        ("GET", f"/data-sets/{ABSENCE}/meta"), ("POST", f"/data-sets/{ABSENCE}/query")]
    assert ees.log[0][0].args["search"] == "pupil absence in schools in england"
    query = json.loads(ees.log[4][0].data)
    assert {"filters": {"eq": "sT0tl"}} in query["criteria"]["and"]  # the unpinned filter at its Total option
    frame = numbers(pd.concat([source.parse(p, [old]) for p in payloads], ignore_index=True))
    rows = frame.set_index(["area_code", "period"])["value"]
    assert rows[("E92000001", "2022/23")] == 21.22 and rows[("E06000001", "2023/24")] == 22.54
    assert {p.meta.get("released") for p in payloads if "query" in p.location} == {"2026-03-19T09:30:00+00:00"}


def test_a_deprecated_data_set_is_followed_to_the_one_that_supersedes_it(ees):
    serve_absence(ees, summary_of=ABSENCE)
    deprecated = {"id": SUPERSEDED, "title": "Absence for persistent and severe absentees", "summary": "old",
                  "status": "Deprecated", "supersedingDataSetId": ABSENCE, "latestVersion": None}
    ees.expect_request(f"/data-sets/{SUPERSEDED}", method="GET").respond_with_json(deprecated)
    spec = with_options("dfe-persistent-absence", ees_dataset=SUPERSEDED, ees_column="enrolments_pa_10_exact_percent")
    payloads = list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [spec]))
    assert [r.path for r, _ in ees.log][:2] == [f"/data-sets/{SUPERSEDED}", f"/data-sets/{ABSENCE}"]
    assert any(p.location.endswith(f"/data-sets/{ABSENCE}/query") for p in payloads)


def test_a_filter_without_a_total_option_names_its_options(ees):
    meta = json.loads((FIXTURES / "ees_absence_meta_constructed.json").read_text())
    meta["filters"][0]["options"] = [o for o in meta["filters"][0]["options"] if o["label"] != "Total"]
    ees.expect_request(f"/data-sets/{ABSENCE}", method="GET").respond_with_data(
        (FIXTURES / "ees_absence_data_set_constructed.json").read_text(), content_type="application/json")
    ees.expect_request(f"/data-sets/{ABSENCE}/meta", method="GET").respond_with_json(meta)
    spec = with_options("dfe-persistent-absence", ees_dataset=ABSENCE, ees_column="enrolments_pa_10_exact_percent")
    with pytest.raises(SourceFormatError, match="school_type with no 'Total' option.*State-funded primary"):
        list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [spec]))


def test_discovery_waits_out_429_with_retry_after(ees):
    ees.expect_oneshot_request("/publications", method="GET").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"})
    serve_absence(ees)
    payloads = list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=2, backoff=0.01), [catalog("dfe-persistent-absence")]))
    assert [r.path for r, _ in ees.log][:2] == ["/publications", "/publications"] and len(payloads) == 5


def test_an_html_page_instead_of_the_publication_list_is_a_clear_error(ees):
    ees.expect_request("/publications", method="GET").respond_with_data(
        "<!DOCTYPE html><html><body>Sorry, the service is unavailable</body></html>", content_type="text/html")
    with pytest.raises(SourceFormatError, match="is not the JSON the EES API returns"):
        list(dfe.DfeSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [catalog("dfe-persistent-absence")]))


def test_live_refresh_of_the_catalog_records_the_release_date_for_status(ees, initialised_engine):
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source
    from tracker.status import source_status

    serve_absence(ees)
    spec = catalog("dfe-persistent-absence")
    summary = run_source(initialised_engine, dfe.DfeSource(), [spec], False, AreaMapper.from_engine(initialised_engine),
                         http=HttpClient(timeout=5, retries=0, backoff=0.01))
    assert summary.status == "succeeded", summary.error
    status = source_status(initialised_engine).set_index("source").loc["dfe"]
    assert (status["latest_period"], str(status["released"])) == ("2023/24", "2026-03-19")


# ---- offline refresh end to end ----------------------------------------------------------------------------------


def test_offline_refresh_end_to_end_and_again(initialised_engine):
    from tracker.geography import AreaMapper, list_areas
    from tracker.refresh import run_source

    mapper = AreaMapper.from_engine(initialised_engine)
    first = run_source(initialised_engine, dfe.DfeSource(), by_source("dfe"), True, mapper)
    assert first.status == "succeeded", first.error
    assert first.rows_rejected == 0
    with initialised_engine.connect() as conn:
        att8 = pd.read_sql(text(
            "SELECT area_code, value, note FROM observation WHERE indicator_id = 'dfe-attainment-8' "
            "AND period = '2024/25' AND category = ''"), conn).set_index("area_code")
        problems = conn.execute(text("SELECT problems FROM run WHERE id = :i"), {"i": first.run_id}).scalar()
        fte = conn.execute(text(
            "SELECT value, note FROM observation WHERE indicator_id = 'dfe-first-time-entrants-youth-justice' "
            "AND area_code = 'E92000001' AND period = '2024'")).one()
    utlas = list_areas(initialised_engine, "utla")
    assert len(utlas) == 153 and set(utlas["code"]) <= set(att8.index)
    missing = att8.loc[list(utlas["code"])][lambda f: f["value"].isna()]
    assert list(missing.index) == ["E09000001"]  # City of London; Isles of Scilly has a figure
    assert missing.loc["E09000001", "note"] == "not available (LAIT '-')"
    assert att8.loc["E06000053", "value"] == 48.7 and att8.loc[ENGLAND, "value"] == 46.0
    assert fte.value is None and "(1258)" in fte.note
    problems = problems if isinstance(problems, dict) else json.loads(problems)
    unmapped = " ".join(problems["unmapped"])
    assert "E10000006 (Cumbria) was split" in unmapped and "E13000001" in unmapped

    second = run_source(initialised_engine, dfe.DfeSource(), by_source("dfe"), True, mapper)
    assert second.status == "succeeded" and second.rows_changed == 0 and second.rows_loaded == first.rows_loaded


# ---- Attainment 8 and children in need re-referrals live (issue 12) ------------------------------------------------
# Constructed responses (see tests/fixtures/dfe/README.md): the documented schemas, the data sets' real column and
# filter names from their EES data catalogue pages, and real values (KS4: DfE's own EES figures from the NCCIS files'
# context columns for local authorities and the region, LAIT's state-funded figure for England; C1: the real preview
# rows of the data set's catalogue page).

KS4_ID = "b3e19901-5d2b-b676-bb4c-e60937d74725"
C1_ID = "342f9a01-26f0-2a71-91a1-f8bc0bee8b11"
KS4_FREE = {"criteria": {"and": [{"geographicLevels": {"in": ["NAT", "REG", "LA"]}}, {"filters": {"eq": "eAsf1"}},
                                 {"filters": {"eq": "bTot1"}}, {"filters": {"eq": "sTot1"}}, {"filters": {"eq": "dTot1"}}]}}


def without_discovery(spec):
    """The catalog entry as it is, but read by its data set id (discovery by publication is tested above)."""
    options = {k: v for k, v in spec.options.items() if k not in ("ees_publication", "ees_dataset_title")}
    return dataclasses.replace(spec, options=options)


def serve_ks4_catalog(server):
    serve_summary(server, KS4_ID)
    server.expect_request(f"/data-sets/{KS4_ID}/meta", method="GET").respond_with_data(
        (FIXTURES / "ees_ks4_attainment_meta_constructed.json").read_text(), content_type="application/json")
    for indicator, name in (("a8avg", "attainment"), ("em94p", "engmath94")):
        server.expect_request(f"/data-sets/{KS4_ID}/query", method="POST", json={
            **KS4_FREE, "indicators": [indicator], "debug": False, "pageSize": 5, "page": 1,
        }).respond_with_data((FIXTURES / f"ees_ks4_{name}_query_constructed.json").read_text(),
                             content_type="application/json")


def test_catalog_makes_attainment_8_and_re_referrals_live_from_the_real_data_sets():
    ids = {s.id: s.options.get("ees_dataset") for s in by_source("dfe")}
    assert ids["dfe-attainment-8"] == KS4_ID and ids["dfe-children-in-need-re-referrals"] == C1_ID
    spec = catalog("dfe-children-in-need-re-referrals")
    assert spec.department == "department-for-education" and spec.rationale.strip()


def test_ks4_query_pins_all_state_funded_and_every_total_and_leaves_version_free(ees):
    serve_ks4_catalog(ees)
    specs = [without_discovery(catalog("dfe-attainment-8")), without_discovery(catalog("dfe-gcse-english-maths-grade-4"))]
    source = dfe.DfeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), specs))
    # the summary and meta once for the data set both indicators share, a query each; then LAIT for the breakdowns
    assert [(r.method, r.path) for r, _ in ees.log] == [("GET", f"/data-sets/{KS4_ID}"), ("GET", f"/data-sets/{KS4_ID}/meta"),
        ("POST", f"/data-sets/{KS4_ID}/query"), ("POST", f"/data-sets/{KS4_ID}/query")]
    assert payloads[-1].location.endswith(dfe.LAIT_FILE) and payloads[-1].meta["lait_breakdowns_only"] == ["dfe-attainment-8"]
    frame = numbers(pd.concat([source.parse(p, specs) for p in payloads], ignore_index=True))
    headline = frame[frame["category"] == ""].set_index(["indicator_id", "area_code", "period"])["value"]
    assert headline[("dfe-attainment-8", "E06000001", "2023/24")] == 41.0
    assert headline[("dfe-gcse-english-maths-grade-4", "E08000037", "2021/22")] == 70.3
    assert len(headline) == 24  # 6 areas x 2 years x 2 indicators: nothing else from the data set
    breakdowns = frame[frame["category"] != ""]
    assert set(breakdowns["indicator_id"]) == {"dfe-attainment-8"}
    assert set(breakdowns["category"]) == {"Eligible for FSM", "Not eligible for FSM", "Disadvantaged pupils", "Other pupils"}


def test_live_attainment_8_and_gcse_match_the_bundled_snapshot_for_the_same_area_and_year(ees, initialised_engine):
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source

    mapper = AreaMapper.from_engine(initialised_engine)
    specs = [catalog("dfe-attainment-8"), catalog("dfe-gcse-english-maths-grade-4")]
    query = ("SELECT indicator_id, area_code, period, category, value, run_id FROM observation "
             "WHERE indicator_id IN ('dfe-attainment-8', 'dfe-gcse-english-maths-grade-4')")
    offline = run_source(initialised_engine, dfe.DfeSource(), specs, True, mapper)
    assert offline.status == "succeeded", offline.error
    with initialised_engine.connect() as conn:
        before = pd.read_sql(text(query), conn)
    serve_ks4_catalog(ees)
    live = run_source(initialised_engine, dfe.DfeSource(), [without_discovery(s) for s in specs], False, mapper,
                      http=HttpClient(timeout=5, retries=0, backoff=0.01), allow_shrink=True)
    assert live.status == "succeeded", live.error
    with initialised_engine.connect() as conn:
        after = pd.read_sql(text(query), conn)
    key = ["indicator_id", "area_code", "period", "category"]
    headline = after[after["category"] == ""]
    assert len(headline) == 24 and set(headline["period"]) == {"2021/22", "2023/24"}
    both = headline.merge(before, on=key, suffixes=("_live", "_snapshot"))
    assert len(both) == 24  # every live figure has a snapshot figure for the same area and year ...
    assert (both["value_live"] == both["value_snapshot"]).all(), both[both["value_live"] != both["value_snapshot"]]
    # ... and the breakdowns the live data set was not asked for are LAIT's, unchanged
    kept = before[before["category"] != ""].merge(after, on=key, suffixes=("_snapshot", "_live"))
    assert len(kept) == len(before[before["category"] != ""]) > 0
    same = (kept["value_snapshot"] == kept["value_live"]) | (kept["value_snapshot"].isna() & kept["value_live"].isna())
    assert same.all()  # suppressed figures stay NULL


def test_two_rows_for_one_place_and_year_from_a_free_filter_is_a_clear_error(ees):
    doc = json.loads((FIXTURES / "ees_ks4_attainment_query_constructed.json").read_text())
    twin = json.loads(json.dumps(doc["results"][0]))
    twin["filters"]["fVer1"], twin["values"]["a8avg"] = "vPrv1", "48.9"
    doc["results"].append(twin)  # the same year published in two versions
    spec = without_discovery(catalog("dfe-attainment-8"))
    meta = json.loads((FIXTURES / "ees_ks4_attainment_meta_constructed.json").read_text())
    payload = Payload("query", json.dumps(doc).encode(), meta={"indicator_id": spec.id, "ees_meta": meta})
    with pytest.raises(SourceFormatError, match=r"more than one row for nEng1 \(NAT\) in 2021/2022.*vPrv1"):
        dfe.DfeSource().parse(payload, [spec])


def serve_c1(server):
    serve_summary(server, C1_ID)
    server.expect_request(f"/data-sets/{C1_ID}/meta", method="GET").respond_with_data(
        (FIXTURES / "ees_cin_referrals_meta_constructed.json").read_text(), content_type="application/json")
    server.expect_request(f"/data-sets/{C1_ID}/query", method="POST").respond_with_data(
        (FIXTURES / "ees_cin_referrals_query_constructed.json").read_text(), content_type="application/json")


def test_live_children_in_need_re_referrals_as_published(ees):
    serve_c1(ees)
    spec = without_discovery(catalog("dfe-children-in-need-re-referrals"))
    source = dfe.DfeSource()
    payloads = list(source.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), [spec]))
    sent = json.loads(ees.log[-1][0].data)
    # the one-option category filter is not a choice: no criterion for it, and the live indicator has no LAIT payload
    assert sent["criteria"] == {"and": [{"geographicLevels": {"in": ["NAT", "REG", "LA"]}}]} and sent["indicators"] == ["rrpct"]
    assert not any(p.location.startswith("snapshot/") for p in payloads)
    frame = numbers(pd.concat([source.parse(p, [spec]) for p in payloads], ignore_index=True)).set_index("area_code")
    assert frame.loc[ENGLAND, "value"] == 22.6 and frame.loc["E12000004", "value"] == 24.7
    assert set(frame["period"]) == {"2025"}  # DfE's reporting year to 31 March 2025
    assert (str(frame.loc[ENGLAND, "period_start"]), str(frame.loc[ENGLAND, "period_end"])) == ("2024-04-01", "2025-03-31")


def test_ks4_indicators_are_not_read_from_the_nccis_context_columns(offline):
    """The NCCIS files carry avg_att8 and pt_l2basics_94 for an earlier academic year than their calendar year: they are
    not the live indicators' series (they once added mislabelled '2021'..'2025' periods to the GCSE indicator)."""
    for indicator in ("dfe-attainment-8", "dfe-gcse-english-maths-grade-4"):
        periods = set(offline.loc[offline["indicator_id"] == indicator, "period"])
        assert periods and all("/" in p for p in periods), (indicator, sorted(periods))
    assert "dfe-children-in-need-re-referrals" not in set(offline["indicator_id"])  # live only
