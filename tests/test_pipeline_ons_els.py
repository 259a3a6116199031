"""ONS Explore Local Statistics: parsing the real bundled files, the live client replayed through a local HTTP
server, format faults, and a full offline load. Expected values are as published in the ELS files."""

from __future__ import annotations

import dataclasses
from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from db.models import Observation, Run
from pipelines.base import Payload, SourceError, SourceFormatError
from pipelines.http import HttpClient
from pipelines.ons_els import ElsSource, dataset_of, period_of, snapshot_files
from tracker.catalog import by_source
from tracker.config import SNAPSHOT_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "ons_els"
SPECS = by_source("ons_els")
BY_ID = {s.id: s for s in SPECS}


@lru_cache(maxsize=None)
def parsed(dataset: str) -> pd.DataFrame:
    """The bundled snapshot file of one ELS dataset, parsed for the whole catalog."""
    src = ElsSource()
    (payload,) = src.read_offline([s for s in SPECS if dataset_of(s) == dataset])
    return src.parse(payload, SPECS)


def row(frame: pd.DataFrame, indicator: str, area: str, period: str, sex: str = "Persons") -> dict:
    f = frame
    hit = f[(f.indicator_id == indicator) & (f.area_code == area) & (f.period == period) & (f.sex == sex)]
    assert len(hit) == 1, f"{len(hit)} rows for {indicator} {area} {period} {sex}"
    return hit.iloc[0].to_dict()


def number(text) -> float | None:
    return None if text in ("", None) else float(text)


# --- parsing the real files -------------------------------------------------------------------------------------

def test_claimant_count_2025_for_england_and_birmingham():
    f = parsed("claimant-count")
    england = row(f, "claimant-count-rate-16-64", "E92000001", "2025")
    assert number(england["value"]) == 4.0
    assert (england["period_start"], england["period_end"]) == (date(2025, 1, 1), date(2025, 12, 31))
    assert number(row(f, "claimant-count-rate-16-64", "E08000025", "2025")["value"]) == 10.1


def test_employment_file_gives_employment_and_inactivity_as_two_indicators_with_their_cis():
    f = parsed("employment-rate")
    emp = row(f, "employment-rate-16-64", "E92000001", "2023")
    assert (number(emp["value"]), number(emp["lci95"]), number(emp["uci95"])) == (76.0, 75.6, 76.4)
    inactive = row(f, "economic-inactivity-rate-16-64", "E92000001", "2023")
    assert (number(inactive["value"]), number(inactive["lci95"]), number(inactive["uci95"])) == (21.0, 20.7, 21.3)


def test_housing_affordability_is_a_ratio_despite_the_files_percentage_label():
    spec = BY_ID["housing-affordability-ratio"]
    assert (spec.unit, spec.value_type, spec.multiplier) == ("ratio", "ratio", None)
    f = parsed("housing-affordability-ratio")
    england = row(f, "housing-affordability-ratio", "E92000001", "2025")
    assert number(england["value"]) == 7.64
    assert england["period_start"] == england["period_end"] == date(2025, 4, 1)
    assert number(row(f, "housing-affordability-ratio", "E09000033", "2025")["value"]) == 16.44


def test_healthy_life_expectancy_is_one_indicator_with_male_and_female_rows():
    spec = BY_ID["healthy-life-expectancy"]
    assert spec.headline_outcome and spec.domain == "health outcome"
    assert spec.department == "department-of-health-and-social-care"
    assert spec.area_types == ("utla", "region", "england") and spec.default_sex == "Male"
    f = parsed("healthy-life-expectancy")
    male = row(f, "healthy-life-expectancy", "E92000001", "2022 - 24", "Male")
    female = row(f, "healthy-life-expectancy", "E92000001", "2022 - 24", "Female")
    assert (number(male["value"]), number(male["lci95"]), number(male["uci95"])) == (60.9, 60.7, 61.2)
    assert (number(female["value"]), number(female["lci95"]), number(female["uci95"])) == (61.3, 61.0, 61.6)
    assert (male["period_start"], male["period_end"]) == (date(2022, 1, 1), date(2024, 12, 31))
    assert set(f[f.indicator_id == "healthy-life-expectancy"].sex) == {"Male", "Female"}


@pytest.mark.parametrize(
    "text, label, start, end",
    [
        ("2023-01-01/P1Y", "2023", date(2023, 1, 1), date(2023, 12, 31)),
        ("2021-04-01/P1Y", "2021/22", date(2021, 4, 1), date(2022, 3, 31)),
        ("2024-08-01/P1Y", "2024/25", date(2024, 8, 1), date(2025, 7, 31)),
        ("2024-09-01/P1Y", "2024/25", date(2024, 9, 1), date(2025, 8, 31)),
        ("2022-01-01/P3Y", "2022 - 24", date(2022, 1, 1), date(2024, 12, 31)),
        ("2022-04-01/P3Y", "2022/23 - 24/25", date(2022, 4, 1), date(2025, 3, 31)),
        ("2025-04-30", "2025", date(2025, 4, 30), date(2025, 4, 30)),
    ],
)
def test_period_labels_and_dates(text, label, start, end):
    assert period_of(text) == (label, start, end)


@pytest.mark.parametrize(
    "dataset, indicator, area, period, value, start, end",
    [
        ("gross-median-weekly-pay", "gross-median-weekly-pay", "E92000001", "2025", 648.4, "2025-04-30", "2025-04-30"),
        ("persistent-absences-for-all-pupils", "persistent-absence-all-pupils", "E92000001", "2024/25", 18.14307,
         "2024-08-01", "2025-07-31"),
        ("net-additions-to-the-housing-stock", "net-additions-housing-stock", "E92000001", "2024/25", 8,
         "2024-04-01", "2025-03-31"),
        ("net-additions-to-the-housing-stock", "net-additions-housing-stock", "E06000001", "2007/08", -4,
         "2007-04-01", "2008-03-31"),
        ("personal-wellbeing-estimates", "wellbeing-anxiety", "E92000001", "2022/23", 3.24, "2022-04-01", "2023-03-31"),
        ("average-travel-time", "travel-time-employment-centre-cycle", "E92000001", "2019", 9.85293398931194,
         "2019-01-01", "2019-12-31"),
    ],
)
def test_real_rows_with_their_period(dataset, indicator, area, period, value, start, end):
    r = row(parsed(dataset), indicator, area, period)
    start, end = date.fromisoformat(start), date.fromisoformat(end)
    assert number(r["value"]) == value and (r["period_start"], r["period_end"]) == (start, end)


def test_status_x_is_not_available_and_u_is_low_reliability_and_publisher_notes_are_kept():
    gcse = row(parsed("gcses-in-english-and-maths"), "gcse-english-maths-by-19", "E09000001", "2024/25")
    assert gcse["value"] == "" and gcse["note"] == "not available"
    emp = parsed("employment-rate")
    low = row(emp, "employment-rate-16-64", "E09000001", "2022")
    assert low["value"] == "" and low["note"] == "low reliability"
    noted = row(emp, "employment-rate-16-64", "E09000001", "2018")
    assert number(noted["value"]) == 76.0
    assert noted["note"] == "Estimate and confidence interval unreliable since the group sample size is small (3-9)"


def test_only_english_areas_the_tracker_can_hold_are_returned():
    f = parsed("claimant-count")
    prefixes = set(f.area_code.str[:3])
    assert prefixes == {"E92", "E12", "E10", "E06", "E07", "E08", "E09"}  # no Wales, UK, combined authorities
    assert number(row(f, "claimant-count-rate-16-64", "E10000016", "2025")["value"]) == 3.3  # Kent county


def test_old_codes_go_on_to_harmonisation_unless_the_successor_has_its_own_row():
    # Net additions has no Cumberland rows before 2023/24, so Allerdale's rows are passed on (and reported unmapped
    # as merged by the shared harmonisation), with the "Obsolete code" note dropped.
    allerdale = row(parsed("net-additions-to-the-housing-stock"), "net-additions-housing-stock", "E07000026", "2022/23")
    assert number(allerdale["value"]) == 5 and allerdale["note"] is None
    # GCSEs publish Cumberland itself for every year, so the Allerdale rows are superseded.
    gcse = parsed("gcses-in-english-and-maths")
    assert "E07000026" not in set(gcse.area_code)
    assert number(row(gcse, "gcse-english-maths-by-19", "E06000063", "2016/17")["value"]) == 69.249
    # KS2 has Barnsley under both codes; the 2025 code's row is kept (harmonised to E08000016 later).
    ks2 = parsed("pupils-at-expected-standards-by-end-of-primary-school")
    assert "E08000016" not in set(ks2.area_code)
    assert number(row(ks2, "ks2-reading-writing-maths", "E08000038", "2024/25")["value"]) == 65.0


def test_a_renamed_indicator_in_the_file_is_a_format_error():
    spec = dataclasses.replace(BY_ID["claimant-count-rate-16-64"], source_id="claimant-count::Claimant count rate")
    content = (FIXTURES / "claimant-count.csv").read_bytes()
    payload = Payload("claimant-count.csv", content, {"dataset": "claimant-count"})
    with pytest.raises(SourceFormatError, match=r"no rows for indicator\(s\) Claimant count rate; found Claimant Count"):
        ElsSource().parse(payload, [spec])


def test_an_unknown_period_format_is_a_format_error():
    # synthetic: the real claimant-count excerpt with England's 2025 period rewritten to a quarter
    england = b"E92000001,England,Nation,Claimant Count,2025-01-01/P"
    content = (FIXTURES / "claimant-count.csv").read_bytes().replace(england + b"1Y", england + b"3M")
    with pytest.raises(SourceFormatError, match=r"claimant-count.csv has period '2025-01-01/P3M'"):
        ElsSource().parse(Payload("claimant-count.csv", content, {"dataset": "claimant-count"}), SPECS)


def test_offline_reads_one_bundled_file_per_dataset_named_in_the_metadata():
    payloads = list(ElsSource().read_offline(SPECS))
    files = snapshot_files()
    assert [p.location for p in payloads] == [f"snapshot/{files[d]}" for d in sorted({dataset_of(s) for s in SPECS})]
    assert len(payloads) == 21  # the 22 ELS files less homicide (police force areas only, not in the catalog)
    assert "homicide-offences" not in {p.meta["dataset"] for p in payloads}


def test_catalog_text_is_the_els_metadata():
    meta = pd.read_csv(SNAPSHOT_DIR / "metadata" / "ons_els_indicator_metadata.csv", dtype=str, keep_default_na=False)
    assert len(SPECS) == 30
    for spec in SPECS:
        rows = meta[meta.els_dataset == dataset_of(spec)]
        assert any(d in spec.definition for d in rows.long_description), spec.id
        assert spec.source_url in {u.split("|")[0] for u in rows.source_url}, spec.id


# --- live client through a local HTTP server ---------------------------------------------------------------------

LIVE = [BY_ID["claimant-count-rate-16-64"], BY_ID["healthy-life-expectancy"]]


def serve(httpserver, monkeypatch, claimant: bytes | None = None):
    for dataset in ("claimant-count", "healthy-life-expectancy"):
        body = (FIXTURES / f"{dataset}.csv").read_bytes()
        if dataset == "claimant-count" and claimant is not None:
            body = claimant
        httpserver.expect_request(f"/{dataset}/{dataset}.csv").respond_with_data(body, content_type="text/plain")
    monkeypatch.setenv("TRACKER_ELS_BASE_URL", httpserver.url_for("/"))


def test_live_fetch_gives_the_same_rows_as_the_bundled_files(httpserver, monkeypatch):
    serve(httpserver, monkeypatch)
    src = ElsSource()
    payloads = list(src.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), LIVE))
    assert [p.location for p in payloads] == [
        httpserver.url_for("/claimant-count/claimant-count.csv"),
        httpserver.url_for("/healthy-life-expectancy/healthy-life-expectancy.csv"),
    ]
    live = pd.concat([src.parse(p, LIVE) for p in payloads], ignore_index=True)
    assert len(live) == 12 + 16  # England, region, county and LA rows; no UK, Welsh, Scottish or E47 rows
    key = ["indicator_id", "area_code", "period", "sex"]
    offline = pd.concat([parsed("claimant-count"), parsed("healthy-life-expectancy")], ignore_index=True)
    offline = offline.merge(live[key], on=key)
    sort = lambda f: f.sort_values(key).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(sort(live), sort(offline))
    assert number(row(live, "claimant-count-rate-16-64", "E08000025", "2025")["value"]) == 10.1


def test_a_renamed_column_names_the_source_url_and_columns(httpserver, monkeypatch):
    # synthetic: the real excerpt with `observation` renamed to `value`
    renamed = (FIXTURES / "claimant-count.csv").read_bytes().replace(b",observation,", b",value,", 1)
    serve(httpserver, monkeypatch, claimant=renamed)
    src = ElsSource()
    payload = next(iter(src.fetch(HttpClient(timeout=5, retries=0, backoff=0.01), LIVE[:1])))
    with pytest.raises(SourceFormatError) as err:
        src.parse(payload, LIVE)
    message = str(err.value)
    url = httpserver.url_for("/claimant-count/claimant-count.csv")
    assert message.startswith(f"ons_els: {url} is missing column(s) observation")
    assert "expected areacd, areanm, geography, indicator, period, observation," in message
    assert "found areacd, areanm, geography, indicator, period, value," in message


def test_a_missing_dataset_fails_with_the_url(httpserver, monkeypatch):
    monkeypatch.setenv("TRACKER_ELS_BASE_URL", httpserver.url_for("/"))
    httpserver.expect_request("/claimant-count/claimant-count.csv").respond_with_data("Not Found", status=404)
    with pytest.raises(SourceError, match=r"ons_els: .*/claimant-count/claimant-count.csv answered HTTP 404"):
        list(ElsSource().fetch(HttpClient(timeout=5, retries=0, backoff=0.01), LIVE[:1]))


# --- end to end ----------------------------------------------------------------------------------------------------

def test_offline_run_loads_every_indicator_and_a_second_run_changes_nothing(initialised_engine):
    from tracker.geography import AreaMapper, list_areas
    from tracker.refresh import run_source

    engine = initialised_engine
    mapper = AreaMapper.from_engine(engine)
    first = run_source(engine, ElsSource(), SPECS, offline=True, mapper=mapper)
    assert first.status == "succeeded", first.error
    assert first.rows_rejected == 0

    obs = Observation.__table__
    with engine.connect() as conn:
        def stored(indicator, area, period):
            return tuple(conn.execute(select(obs.c.value, obs.c.note).where(
                obs.c.indicator_id == indicator, obs.c.area_code == area, obs.c.period == period)).one())

        loaded = set(conn.execute(select(obs.c.indicator_id).distinct()).scalars())
        claimant = dict(conn.execute(select(obs.c.area_code, obs.c.value).where(
            obs.c.indicator_id == "claimant-count-rate-16-64", obs.c.period == "2025")).all())
        gcse_city = stored("gcse-english-maths-by-19", "E09000001", "2024/25")
        hartlepool = stored("net-additions-housing-stock", "E06000001", "2007/08")
        barnsley_ks2 = stored("ks2-reading-writing-maths", "E08000016", "2024/25")
        problems = conn.execute(select(Run.problems).where(Run.id == first.run_id)).scalar()
    assert loaded == set(BY_ID)
    ltlas = set(list_areas(engine, "ltla")["code"])
    assert len(ltlas) == 296 and ltlas <= set(claimant)
    assert claimant["E92000001"] == 4.0 and claimant["E08000025"] == 10.1
    assert gcse_city == (None, "not available")
    assert hartlepool == (-4, None)  # negative net additions are real (allow_negative)
    # published under both Barnsley codes; loaded once on the tracker's E08000016 with the publisher's own note
    assert barnsley_ks2 == (65.0, "This data has been aggregated and may show differences to other published figures.")
    # Old codes are not dropped by the pipeline: the run report says why they could not be placed.
    unmapped = problems["unmapped"]
    assert unmapped["E07000026 (Allerdale) was merged into E06000063 (Cumberland): a former area's value is not "
                    "the new authority's"]["count"] > 0

    second = run_source(engine, ElsSource(), SPECS, offline=True, mapper=mapper)
    assert second.status == "succeeded" and second.rows_changed == 0
