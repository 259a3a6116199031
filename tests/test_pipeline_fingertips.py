"""OHID Fingertips: the raw CSV export (27 and legacy 26 columns), the tidy Trafford Data Lab extracts, period
dates, the live client over real HTTP, and an offline load end to end. Expected values are copied from the
published files (recorded API responses in tests/fixtures/fingertips, the bundled snapshot)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from db.models import Indicator, Observation, Run
from pipelines.base import Payload, SourceFormatError, snapshot_payload
from pipelines.fingertips import FingertipsSource, metadata_findings, period_dates, read_fingertips_csv, read_fingertips_metadata
from pipelines.http import HttpClient
from tracker.catalog import IndicatorSpec, by_source
from tracker.config import SNAPSHOT_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "fingertips"
PATI15 = FIXTURES / "all_data_csv_by_indicator_id_90284_ati502_pati15.csv"
PATI6 = FIXTURES / "all_data_csv_by_indicator_id_90284_ati502_pati6.csv"
METADATA = FIXTURES / "indicator_metadata_csv_synthetic_90362_93015_93861.csv"
LEGACY = "fingertips/fixture_93356_campylobacter_countyua_2015_raw_export.csv"
SOURCE = FingertipsSource()
CATALOG = {s.id: s for s in by_source("fingertips")}
DECILES_2019 = "County & UA deprivation deciles in England (IMD2019, 4/19 and 4/20 geog.)"


def spec_for(source_id: str, title: str, area_types=("utla",)) -> IndicatorSpec:
    """A catalog-like entry for a Fingertips indicator the recorded samples hold but the catalog does not."""
    return IndicatorSpec(
        id=f"test-{source_id}", title=title, domain="health outcome", unit="per 10,000", value_type="rate",
        polarity="lower_is_better", department="department-of-health-and-social-care", producer="OHID",
        rationale="test entry", definition=title, licence="Open Government Licence v3.0", source="fingertips",
        source_id=source_id, area_types=tuple(area_types),
    )


INJURIES = spec_for("90284", "Hospital admissions caused by unintentional and deliberate injuries in children (aged 0 to 14 years)")


def parse_file(path: Path, specs, **meta) -> pd.DataFrame:
    return SOURCE.parse(Payload(location=str(path), content=path.read_bytes(), meta=meta), specs)


def one(frame: pd.DataFrame, **where) -> dict:
    mask = pd.Series(True, index=frame.index)
    for col, value in where.items():
        mask &= frame[col] == value
    rows = frame[mask]
    assert len(rows) == 1, f"{len(rows)} rows for {where}"
    return rows.iloc[0].to_dict()


# ---- the raw export --------------------------------------------------------------------------------------------

def test_recorded_response_with_england_parent_dedupes_england():
    frame = parse_file(PATI15, [INJURIES])
    assert sorted(frame["area_code"]) == ["E06000001", "E06000002", "E92000001"]
    england = one(frame, area_code="E92000001")
    assert england == {
        "indicator_id": "test-90284", "area_code": "E92000001", "period": "2023/24",
        "period_start": date(2023, 4, 1), "period_end": date(2024, 3, 31), "sex": "Persons", "age": "<15 yrs",
        "category_type": "", "category": "", "value": "72.71223", "lci95": "72.18314", "uci95": "73.24423",
        "lci998": "71.87939", "uci998": "73.55181", "count": "72293", "denominator": "9942344", "note": None,
        "published_comparison": None,  # "Not compared" (England is the benchmark) is not a judgement
    }
    hartlepool = one(frame, area_code="E06000001")
    assert (hartlepool["value"], hartlepool["lci95"], hartlepool["uci95"], hartlepool["count"], hartlepool["denominator"]) == (
        "77.47318", "65.27247", "92.64065", "130", "16780")
    # Fingertips' own comparison with England is kept as published
    assert hartlepool["published_comparison"] == "Similar"
    assert one(frame, area_code="E06000002")["published_comparison"] == "Worse"


def test_recorded_response_keeps_categories_notes_and_blank_values():
    frame = parse_file(PATI6, [INJURIES])
    scilly = one(frame, area_code="E06000053", period="2023/24")
    assert scilly["value"] == "" and scilly["count"] == "" and scilly["note"] == "Value for Cornwall and Isles of Scilly combined"
    # a published value with a caution note keeps both
    wokingham = one(frame, area_code="E06000041")
    assert wokingham["value"] == "54.86621" and wokingham["note"].startswith("Should be treated with caution due to Frimley")
    # Fingertips' internal -1 for the CIs of a value not presented is not a number
    nottingham = one(frame, area_code="E06000018", period="2016/17")
    assert [nottingham[c] for c in ("value", "lci95", "uci95", "lci998", "uci998")] == ["", "", "", "", ""]
    assert nottingham["note"].startswith("Not presented due to Nottingham University Hospitals Trust")
    decile = one(frame, area_code="E92000001", category_type=DECILES_2019, category="Most deprived decile (IMD2019)")
    assert decile["value"] == "" and decile["note"].startswith("Should be treated with caution, as it contains areas")
    headline = frame[(frame["area_code"] == "E92000001") & (frame["category_type"] == "")]
    assert sorted(headline["sex"]) == ["Female", "Male", "Persons"]
    assert one(headline, sex="Male")["value"] == "78.18825"
    assert one(frame, area_code="E12000001")["value"] == "109.82399"


def test_legacy_26_column_export_with_embedded_newline():
    raw = read_fingertips_csv(SNAPSHOT_DIR / LEGACY)
    assert raw.shape == (852, 26)
    assert raw.columns[22] == "Compared to Region value or percentiles"
    assert raw["Indicator Name"].iloc[0] == "Campylobacter incidence rate/100,000\n"
    assert raw["Compared to England value or percentiles"].iloc[81] == "Worse"  # Cornwall 2015, read as published

    campylobacter = spec_for("93356", "Campylobacter incidence rate/100,000")
    frame = SOURCE.parse(snapshot_payload(LEGACY), [campylobacter])
    england = one(frame, area_code="E92000001", period="2015", age="All ages", category_type="")
    assert (england["value"], england["lci95"], england["uci95"], england["count"], england["denominator"]) == (
        "94.7261896202678", "93.9129396546008", "95.5447303303505", "51897", "54786327")
    assert england["period_start"] == date(2015, 1, 1) and england["period_end"] == date(2015, 12, 31)
    cornwall = one(frame, area_code="E06000052", period="2015", age="All ages")
    assert cornwall["value"] == "135.755299712902" and cornwall["note"] == "Value for Cornwall & Isles of Scilly combined"
    city = one(frame, area_code="E09000001", period="2016", age="0-9 yrs")
    assert city["value"] == "" and city["note"] == "Value for Hackney and City of London combined"
    decile = one(frame, area_code="E92000001", period="2015", category="Most deprived decile (IMD2015)",
                 category_type="County & UA deprivation deciles in England (IMD2015)")
    assert decile["value"] == "69.6234924331395" and decile["note"] == "Aggregated from all known lower geography values"


def test_pm25_extract_keeps_la_areas_and_deciles_and_leaves_out_other_groupings():
    spec = CATALOG["air-pollution-attributable-mortality"]
    frame = SOURCE.parse(snapshot_payload(spec.options["snapshot"][0]), [spec])
    assert one(frame, area_code="E92000001", period="2018", category_type="")["value"] == "7.06799435738659"
    decile = one(frame, area_code="E92000001", period="2018", category="Most deprived decile (IMD2015)",
                 category_type="County & UA deprivation deciles in England (IMD2015, pre 4/19 geog.)")
    assert decile["value"] == "7.29996393620406"
    assert one(frame, area_code="E10000003", period="2018")["value"] == "7.45158532938678"  # a county
    bcp = one(frame, area_code="E06000058", period="2018")
    assert bcp["value"] == "" and bcp["note"] == "Value missing in source data"
    assert one(frame, area_code="E92000001", period="2018", category_type="")["age"] == "30+ yrs"
    # PHE centres (E45) and combined authorities (E47) are not areas the tracker holds
    assert not frame["area_code"].str.startswith(("E45", "E47")).any()


def test_age_bands_become_categories_so_blank_category_is_the_headline():
    spec = CATALOG["physically-inactive-adults"]
    frame = SOURCE.parse(snapshot_payload(spec.options["snapshot"][0]), [spec])
    england = frame[(frame["area_code"] == "E92000001") & (frame["period"] == "2022/23")]
    headline = one(england, sex="Persons", category_type="")
    assert (headline["age"], headline["value"], headline["lci95"], headline["uci95"], headline["denominator"]) == (
        "19+ yrs", "22.5966", "22.3928", "22.79446", "168054")
    assert headline["period_start"] == date(2022, 11, 1) and headline["period_end"] == date(2023, 10, 31)
    band = one(england, category_type="Age band", category="85+ yrs")
    assert band["age"] == "85+ yrs" and band["value"] == "57.26172"
    assert one(england, sex="Male", category_type="")["value"] == "21.00345"
    assert one(england, category="Most deprived decile")["value"] == "35.34939"
    # England is in the export twice (blank parent and parent E92000001): loaded once
    assert not frame.duplicated(["indicator_id", "area_code", "period", "sex", "age", "category_type", "category"]).any()
    assert one(frame, area_code="E06000001", period="2015/16")["value"] == "27.21709"


def test_each_live_call_contributes_only_its_own_areas():
    """Live calls overlap (unitaries are in the 501 and the 502 call, England in every call): each fact is
    taken from one call, so a run does not hold the same row twice."""
    spec = CATALOG["air-pollution-attributable-mortality"]  # ltla, utla and region: calls 6, 501 and 502
    payload = snapshot_payload(spec.options["snapshot"][0])
    by_call = {}
    for call in (6, 501, 502):
        payload.meta = {"kind": "data", "child_area_type_id": call}
        by_call[call] = set(SOURCE.parse(payload, [spec])["area_code"].str[:3])
    assert by_call == {6: {"E92", "E12"}, 501: {"E06", "E07", "E08", "E09"}, 502: {"E10"}}
    payload.meta = {}
    assert set(SOURCE.parse(payload, [spec])["area_code"].str[:3]) == {"E92", "E12", "E06", "E07", "E08", "E09", "E10"}


# ---- the tidy extracts ------------------------------------------------------------------------------------------

def offline_rows(catalog_id: str) -> pd.DataFrame:
    spec = CATALOG[catalog_id]
    return pd.concat([SOURCE.parse(p, [spec]) for p in SOURCE.read_offline([spec])], ignore_index=True)


def test_tidy_life_expectancy_by_sex():
    frame = offline_rows("life-expectancy")
    assert one(frame, area_code="E92000001", period="2023 - 25", sex="Male")["value"] == "79.7"
    assert one(frame, area_code="E92000001", period="2023 - 25", sex="Female")["value"] == "83.5"
    trafford = one(frame, area_code="E08000009", period="2023 - 25", sex="Female")
    assert trafford["value"] == "84.1" and trafford["period_start"] == date(2023, 1, 1) and trafford["period_end"] == date(2025, 12, 31)
    scilly = one(frame, area_code="E06000053", period="2015 - 17", sex="Male")
    assert scilly["value"] == ""  # published NA: missing, never 0
    assert set(frame["category_type"]) == {""} and set(frame["age"]) == {"All ages"}


def test_tidy_extracts_keep_fingertips_judgement_as_published():
    """compared_to_England (newer extracts) and significance (older ones): Better, Similar, Worse kept; "Not
    compared" is not a judgement. Liverpool's life expectancy: "Worse" in every sex of 2023-25."""
    frame = offline_rows("life-expectancy")
    path = SNAPSHOT_DIR / "outcomes" / "fingertips_90366_life_expectancy_at_birth_lad_2015-17_to_2023-25.csv"
    published = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert one(frame, area_code="E08000012", period="2023 - 25", sex="Male")["published_comparison"] == "Worse"
    assert one(frame, area_code="E92000001", period="2023 - 25", sex="Male")["published_comparison"] is None
    judged = published[published["compared_to_England"].isin(["Better", "Similar", "Worse"])]
    got = frame.set_index(["area_code", "period", "sex"])["published_comparison"]
    want = judged.set_index(["area_code", "period", "inequality"])["compared_to_England"]
    want = want[want.index.isin(got.index)]
    assert len(want) > 5000 and (got.reindex(want.index) == want).all()
    older = SOURCE.parse(snapshot_payload("outcomes/fingertips_90362_healthy_life_expectancy_utla_2009-11_to_2016-18.csv",
                                          source_id="90362"), [CATALOG["healthy-life-expectancy-fingertips-lad"]])
    assert one(older, area_code="E09000002", period="2009 - 11", sex="Male")["published_comparison"] == "Worse"


def test_tidy_preventable_mortality_takes_sex_from_unit():
    frame = offline_rows("preventable-mortality-u75")
    assert float(one(frame, area_code="E92000001", period="2019", sex="Persons")["value"]) == 141.0
    assert float(one(frame, area_code="E92000001", period="2024", sex="Persons")["value"]) == 145.8
    assert float(one(frame, area_code="E92000001", period="2020", sex="Persons")["value"]) == 176.1
    assert set(frame["sex"]) == {"Male", "Female", "Persons"}


def test_tidy_healthy_life_expectancy_and_older_dashboard_layout():
    frame = offline_rows("healthy-life-expectancy-fingertips-lad")
    assert one(frame, area_code="E92000001", period="2018 - 20", sex="Male")["value"] == "63.1"
    assert one(frame, area_code="E92000001", period="2018 - 20", sex="Female")["value"] == "63.9"
    assert frame["period"].max() == "2018 - 20"
    # the older dashboard layout (sex in `group`, periods written "2009-11")
    spec = CATALOG["healthy-life-expectancy-fingertips-lad"]
    older = SOURCE.parse(snapshot_payload("outcomes/fingertips_90362_healthy_life_expectancy_utla_2009-11_to_2016-18.csv", source_id="90362"), [spec])
    barking = one(older, area_code="E09000002", period="2009 - 11", sex="Male")
    assert barking["value"] == "60.6" and barking["period_start"] == date(2009, 1, 1) and barking["period_end"] == date(2011, 12, 31)
    assert not older["area_code"].str.startswith("E47").any()


def test_tidy_children_files_with_split_years():
    readiness = offline_rows("school-readiness-fsm")
    england = one(readiness, area_code="E92000001", period="2012/13")
    assert england["value"] == "36.2" and england["period_start"] == date(2012, 9, 1) and england["period_end"] == date(2013, 8, 31)
    assert one(readiness, area_code="E06000027", period="2012/13")["value"] == ""
    low_income = offline_rows("children-low-income-families-hmrc")
    assert one(low_income, area_code="E92000001", period="2016")["value"] == "17"


def test_live_only_indicators_have_no_offline_files_and_no_rows():
    live_only = [s for s in CATALOG.values() if s.options.get("live_only")]
    assert {s.source_id for s in live_only} == {
        "93736", "93759", "93553", "92313", "93701", "93378", "11201", "93351", "93867", "93864"}
    assert list(SOURCE.read_offline(live_only)) == []
    frame = pd.concat([SOURCE.parse(p, list(CATALOG.values())) for p in SOURCE.read_offline(list(CATALOG.values()))])
    assert not set(frame["indicator_id"]) & {s.id for s in live_only}


# ---- periods ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "label, start_month, expected",
    [
        ("2022", 4, (date(2022, 1, 1), date(2022, 12, 31))),
        ("2021 - 23", 4, (date(2021, 1, 1), date(2023, 12, 31))),
        ("2023/24", 4, (date(2023, 4, 1), date(2024, 3, 31))),
        ("2012/13", 9, (date(2012, 9, 1), date(2013, 8, 31))),
        ("2020/21 - 22/23", 4, (date(2020, 4, 1), date(2023, 3, 31))),
        ("2023 Q4", 4, (date(2023, 10, 1), date(2023, 12, 31))),
        ("2023/24 Q1", 4, (date(2023, 4, 1), date(2023, 6, 30))),
        ("2023/24 Q4", 4, (date(2024, 1, 1), date(2024, 3, 31))),
        ("Jan 2023", 4, (date(2023, 1, 1), date(2023, 1, 31))),
    ],
)
def test_period_dates(label, start_month, expected):
    assert period_dates(label, split_year_start_month=start_month) == expected


def test_period_dates_fall_back_to_sortable_and_range_then_fail_clearly():
    assert period_dates("Winter 2019", "20190000", "2y") == (date(2019, 1, 1), date(2020, 12, 31))
    with pytest.raises(SourceFormatError, match="time period 'sometime' is not a format"):
        period_dates("sometime", "", "")


# ---- format errors ----------------------------------------------------------------------------------------------

def test_renamed_column_names_expected_and_found():
    text = PATI15.read_text().replace(",Value,", ",Indicator value,", 1)
    with pytest.raises(SourceFormatError) as err:
        SOURCE.parse(Payload("http://x/all_data", text.encode()), [INJURIES])
    message = str(err.value)
    assert message.startswith("fingertips: http://x/all_data is not in the Fingertips CSV layout: missing or renamed column(s) Value;")
    assert "expected Indicator ID, Indicator Name" in message and "found Indicator ID," in message and "Indicator value" in message
    text = PATI15.read_text().replace("Indicator ID,", "IndicatorID,", 1)
    with pytest.raises(SourceFormatError, match=r"missing or renamed column\(s\) Indicator ID;.*found IndicatorID,"):
        SOURCE.parse(Payload("http://x/all_data", text.encode()), [INJURIES])


def test_html_and_truncated_payloads_are_refused():
    with pytest.raises(SourceFormatError, match="returned an HTML page instead of CSV"):
        SOURCE.parse(Payload("u", b"<!DOCTYPE html><html><body>Service unavailable</body></html>\n"), [INJURIES])
    body = PATI15.read_bytes()
    with pytest.raises(SourceFormatError, match="does not end with a line break"):
        SOURCE.parse(Payload("u", body[:-40]), [INJURIES])
    last_record = body.rstrip(b"\n").rindex(b"\n") + 1
    cut = body[: last_record + 60] + b"\n"  # the last record stops inside its second field
    with pytest.raises(SourceFormatError, match="looks truncated or malformed: record"):
        SOURCE.parse(Payload("u", cut), [INJURIES])


# ---- metadata ---------------------------------------------------------------------------------------------------

def test_metadata_matches_catalog_definitions_and_reports_differences():
    meta = read_fingertips_metadata(METADATA.read_text())
    assert one(meta, indicator_id="93015")["data_source"] == "OHID, based on Sport England data"
    assert "&nbsp;" not in " ".join(meta["definition"])
    specs = [CATALOG["physically-inactive-adults"], CATALOG["healthy-life-expectancy-fingertips-lad"], CATALOG["air-pollution-attributable-mortality"]]
    assert metadata_findings(meta, specs) == []
    changed = replace(specs[0], definition="Adults doing under 150 minutes of activity a week.")
    (finding,) = metadata_findings(meta, [changed])
    assert finding.startswith("physically-inactive-adults: Fingertips' definition of 93015 differs")
    assert metadata_findings(meta, [CATALOG["life-expectancy"]]) == [
        "life-expectancy: Fingertips returned no metadata for indicator 90366 (retired or renamed?)"]


# ---- live, over real HTTP ---------------------------------------------------------------------------------------

def test_live_fetch_asks_for_the_right_query_and_parses_the_recorded_response(httpserver, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", httpserver.url_for("/"))
    httpserver.expect_oneshot_request(
        "/all_data/csv/by_indicator_id",
        query_string={"indicator_ids": "90284", "child_area_type_id": "502", "parent_area_type_id": "15"},
    ).respond_with_data(PATI15.read_bytes(), content_type="text/csv")
    httpserver.expect_oneshot_request(
        "/indicator_metadata/csv/by_indicator_id", query_string={"indicator_ids": "90284"}
    ).respond_with_data(METADATA.read_bytes(), content_type="text/csv")

    payloads = list(SOURCE.fetch(HttpClient(timeout=5, retries=0), [INJURIES]))
    httpserver.check_assertions()
    assert [p.meta["kind"] for p in payloads] == ["data", "metadata"]
    assert payloads[0].location.startswith(httpserver.url_for("/all_data/csv/by_indicator_id?"))
    with caplog.at_level(logging.WARNING, logger="tracker.fingertips"):
        frames = [SOURCE.parse(p, [INJURIES]) for p in payloads]
    assert frames[1].empty
    assert "Fingertips returned no metadata for indicator 90284" in caplog.text
    assert one(frames[0], area_code="E06000002")["value"] == "90.89662"


def test_live_calls_group_the_catalog_by_area_type_with_england_as_parent(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", httpserver.url_for("/"))
    header = PATI15.read_text().split("\n", 1)[0] + "\n"
    httpserver.expect_request("/all_data/csv/by_indicator_id").respond_with_data(header, content_type="text/csv")
    httpserver.expect_request("/indicator_metadata/csv/by_indicator_id").respond_with_data(METADATA.read_bytes())
    specs = list(CATALOG.values())
    list(SOURCE.fetch(HttpClient(timeout=5, retries=0), specs))
    calls = [dict(req.args) for req, _ in httpserver.log]
    data = {c["child_area_type_id"]: set(c["indicator_ids"].split(",")) for c in calls if "child_area_type_id" in c}
    assert {c.get("parent_area_type_id") for c in calls if "child_area_type_id" in c} == {"15"}
    assert set(data) == {"501", "502", "6"}  # no ICB call unless an indicator sets options.icb_area_type_id
    assert {"90366", "93721", "92901", "93861", "93736", "93759", "92313"} <= data["501"]
    assert {"93015", "93982", "93203", "90632", "93378", "93861"} == data["502"]
    assert "10101" not in data["6"] and "90366" in data["6"]
    (meta,) = [c for c in calls if "child_area_type_id" not in c]
    assert set(meta["indicator_ids"].split(",")) == {s.source_id for s in specs}


def test_live_calls_take_at_most_100_ids_and_icb_only_when_configured(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", httpserver.url_for("/"))
    header = PATI15.read_text().split("\n", 1)[0] + "\n"
    httpserver.expect_request("/all_data/csv/by_indicator_id").respond_with_data(header)
    httpserver.expect_request("/indicator_metadata/csv/by_indicator_id").respond_with_data(METADATA.read_bytes())
    many = [replace(INJURIES, id=f"t{n}", source_id=str(90000 + n), area_types=("ltla",)) for n in range(150)]
    many[0] = replace(many[0], options={"icb_area_type_id": 221})
    list(SOURCE.fetch(HttpClient(timeout=5, retries=0), many))
    calls = [dict(req.args) for req, _ in httpserver.log]
    sizes = sorted((c.get("child_area_type_id", "meta"), len(c["indicator_ids"].split(","))) for c in calls)
    assert sizes == [("221", 1), ("501", 50), ("501", 100), ("meta", 50), ("meta", 100)]


# ---- end to end ---------------------------------------------------------------------------------------------------

def test_offline_load_end_to_end(initialised_engine):
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source

    summary = run_source(initialised_engine, SOURCE, list(CATALOG.values()), True, AreaMapper.from_engine(initialised_engine))
    assert summary.status == "succeeded", summary.error
    with initialised_engine.connect() as conn:
        o = Observation
        le = conn.execute(
            select(o.value, o.period_end, o.note).where(o.indicator_id == "life-expectancy", o.area_code == "E92000001", o.period == "2023 - 25", o.sex == "Male")
        ).one()
        scilly = conn.execute(
            select(o.value, o.note).where(o.indicator_id == "air-pollution-attributable-mortality", o.area_code == "E06000058", o.period == "2018")
        ).one()
        negative_sii = conn.execute(
            select(o.value).where(o.indicator_id == "life-expectancy-inequality", o.value < 0)
        ).scalars().all()
        loaded = set(conn.execute(select(o.indicator_id).distinct()).scalars())
        catalogued = set(conn.execute(select(Indicator.id).where(Indicator.source == "fingertips")).scalars())
        run = conn.execute(select(Run.problems, Run.mode, Run.locations).where(Run.id == summary.run_id)).one()
    assert le == (79.7, date(2025, 12, 31), None)
    assert scilly == (None, "Value missing in source data")
    assert negative_sii  # a negative slope index is a real published value, not rejected
    assert catalogued - loaded == {s.id for s in CATALOG.values() if s.options.get("live_only")}
    assert "negative years" not in run.problems["rejected"]
    # PHE centres and combined authorities: 57 rows in the PM2.5 extract, 11 + 6 + 3 in the children files
    assert run.problems["skipped"] == {
        "areas the tracker does not hold (PHE centres, combined authorities, ONS area groups)": 77,
        # Buckinghamshire county (E10000002) rows beside the unitary's own rows for the same period
        "old area code superseded by the current code's own row for the same period": 2}
    assert run.mode == "offline" and any(loc.endswith("phof_93861_pm25_attributable_mortality_new_method_all_areas_2018_to_2020.csv") for loc in run.locations)
