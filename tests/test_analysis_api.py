"""The public analysis API (tracker.analysis) on the database prepared from the bundled snapshot: what the dashboard
and the exports read."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert

import tracker.analysis as analysis
from db.engine import make_engine
from db.models import Run
from pipelines.fingertips import read_fingertips_csv
from tracker.analysis.data import get_store
from tracker.config import SNAPSHOT_DIR
from tracker.exports import export_bytes

MANCHESTER, AMBER_VALLEY, DERBYSHIRE, NENC = "E08000003", "E07000032", "E10000007", "E54000050"


@pytest.fixture(scope="module")
def engine(snapshot_db_file):
    e = make_engine(f"sqlite:///{snapshot_db_file}")
    yield e
    e.dispose()


@pytest.mark.parametrize("indicator,path", [
    ("physically-inactive-adults", "phof_93015_physically_inactive_adults_ctyua502_2015-16_to_2022-23.csv.gz"),
    ("five-a-day", "phof_93982_five_a_day_ctyua502_2020-21_to_2023-24.csv.gz"),
])
def test_loaded_comparisons_equal_fingertips_for_every_area_and_period(engine, indicator, path):
    """From the database to the screen: every county and unitary, every period, the same judgement as Fingertips."""
    raw = read_fingertips_csv(SNAPSHOT_DIR / "fingertips" / path)
    raw = raw[(raw["Category Type"] == "") & (raw["Sex"] == "Persons") & (raw["Area Code"] != "E92000001")]
    published = raw.drop_duplicates(["Area Code", "Time period"]).set_index(["Area Code", "Time period"])[
        "Compared to England value or percentiles"]
    codes = sorted(raw["Area Code"].unique())
    got = analysis.latest_observations(engine, codes, [indicator], all_periods=True)
    assert set(got["sex"]) == {"Persons"}
    got = got.set_index(["area_code", "period"])
    assert len(got) == len(published) > 600
    assert (got["comparison"] == published.reindex(got.index)).all()


def test_every_published_fingertips_judgement_is_shown_as_published(engine):
    """Life expectancy (no CIs in the bundled extract): every district's row in every period and sex shows the
    judgement the file gives, e.g. Liverpool "Worse"; its position among areas is a separate column."""
    path = SNAPSHOT_DIR / "outcomes" / "fingertips_90366_life_expectancy_at_birth_lad_2015-17_to_2023-25.csv"
    published = pd.read_csv(path, dtype=str, keep_default_na=False)
    published = published[published["compared_to_England"].isin(["Better", "Similar", "Worse"])]
    published = published.set_index(["area_code", "period", "inequality"])["compared_to_England"]
    codes = sorted(set(published.index.get_level_values(0)) & set(get_store(engine).areas.index))
    got = analysis.latest_observations(engine, codes, ["life-expectancy"], all_periods=True, sex="all")
    got = got.set_index(["area_code", "period", "sex"]).sort_index()  # sorted: lookups by a partial key
    both = published.index.intersection(got.index)
    assert len(both) > 5000
    assert (got.loc[both, "comparison"] == published.loc[both]).all()
    assert (got.loc[both, "comparison_basis"] == "published judgement (OHID Fingertips)").all()
    assert set(got.loc[("E08000012", "2023 - 25"), "comparison_label"]) == {"Worse (95%)"}  # Liverpool


def test_no_indicator_without_a_ci_method_gets_a_computed_ci_or_a_significance_word(engine):
    cat = analysis.indicator_catalog(engine).set_index("id")
    none = list(cat.index[cat["ci_method"] == "none"])
    assert {"fuel-poverty-lilee", "gdhi-per-head", "housing-affordability-ratio"} <= set(none)
    codes = list(get_store(engine).areas.index)
    rows = analysis.latest_observations(engine, codes, none, all_periods=True, sex="all")
    assert len(rows) > 10000
    assert not rows["ci_source"].fillna("").str.startswith("computed").any()
    assert (rows["comparison"] == "Not compared").all() and rows["comparison_basis"].isna().all()
    assert rows.loc[rows["area_type"] == "icb", "lci95"].isna().all()  # nor an ICB figure built from counts
    # and nothing else that has a computed CI is outside wilson/byar
    every = analysis.latest_observations(engine, codes, sex="all")
    computed = every[every["ci_source"].fillna("").str.startswith("computed")]
    assert set(computed["indicator_id"].map(cat["ci_method"])) <= {"wilson", "byar"}


def test_place_profile_for_a_unitary(engine):
    got = analysis.place_profile(engine, MANCHESTER).set_index("indicator_id")
    assert got.index.is_unique and got["department_slug"].notna().all()
    le = got.loc["life-expectancy"]
    # Fingertips 90366, Manchester, males, 2023-25: 76.0 years (England 79.7); no CIs in the extract, but Fingertips'
    # own judgement, "Worse", is in it: shown as published. Its position among districts is a separate statement.
    assert (le["period"], le["sex"], le["value"], le["england_value"]) == ("2023 - 25", "Male", 76.0, 79.7)
    assert (le["comparison"], le["comparison_label"]) == ("Worse", "Worse (95%)")
    assert le["comparison_basis"] == "published judgement (OHID Fingertips)" and le["position"] == "Worst fifth"
    assert le["min_of_type"] <= le["value"] <= le["max_of_type"]
    fuel = got.loc["fuel-poverty-lilee"]  # DESNZ 2021: 18.3% of Manchester households, a modelled estimate
    assert fuel["value"] == pytest.approx(18.28513, abs=1e-5)
    assert pd.isna(fuel["lci95"]) and pd.isna(fuel["ci_source"])  # no Wilson interval on a modelled estimate
    assert fuel["comparison_label"] == "Not compared" and pd.isna(fuel["comparison_basis"])
    assert fuel["position"] == "Worst fifth"  # where it stands among districts is still shown
    inactive = got.loc["physically-inactive-adults"]  # published by Fingertips as Worse for 2023/24
    assert (inactive["period"], inactive["comparison"], inactive["ci_source"]) == ("2023/24", "Worse", "published")
    assert inactive["comparison_basis"] == "published judgement (OHID Fingertips)"
    assert set(got["benchmark_code"]) == {"E92000001"}


def test_place_profile_for_a_district_uses_its_county_for_county_level_indicators(engine):
    got = analysis.place_profile(engine, AMBER_VALLEY).set_index("indicator_id")
    county = got.loc["dfe-gcse-english-maths-grade-4"]
    assert county["value_from"] == DERBYSHIRE and county["value_from_name"] == "Derbyshire"
    own = got.loc["fuel-poverty-lilee"]
    assert own["value_from"] == AMBER_VALLEY
    by_region = analysis.place_profile(engine, AMBER_VALLEY, benchmark="region").set_index("indicator_id")
    region = analysis.latest_observations(engine, ["E12000004"], ["fuel-poverty-lilee"]).iloc[0]  # East Midlands
    assert by_region.at["fuel-poverty-lilee", "benchmark_code"] == "E12000004"
    assert by_region.at["fuel-poverty-lilee", "benchmark_value"] == pytest.approx(region["value"])
    by_icb = analysis.place_profile(engine, AMBER_VALLEY, benchmark="icb").set_index("indicator_id")
    icb = analysis.icb_figures(engine, "fuel-poverty-lilee", "E54000058").iloc[0]
    assert by_icb.at["fuel-poverty-lilee", "benchmark_value"] == pytest.approx(icb["value"])
    with pytest.raises(ValueError):
        analysis.place_profile(engine, AMBER_VALLEY, benchmark="county")


def test_place_profile_for_an_icb_and_england(engine):
    icb = analysis.place_profile(engine, NENC).set_index("indicator_id")
    assert icb.at["fuel-poverty-lilee", "method"] == "counted over LSOAs"
    assert icb.at["homelessness-owed-duty-per-1000", "method"] == "recomputed from counts"
    assert icb["method"].notna().all()
    eng = analysis.place_profile(engine, "E92000001")
    assert (eng["comparison"] == "Not compared").all() and eng["position"].isna().all()


def test_latest_observations_red_red_and_icb_values(engine):
    las = list(get_store(engine).areas.query("type == 'ltla'").index)
    got = analysis.latest_observations(engine, las)
    assert got["area_code"].nunique() == 296
    red = got[got["red_red"]]
    assert len(red) > 0
    assert (red["comparison"] == "Worse").all() and red["trend"].str.endswith("getting worse").all()
    man = got[(got["area_code"] == MANCHESTER) & (got["indicator_id"] == "fuel-poverty-lilee")].iloc[0]
    icb = analysis.icb_figures(engine, "fuel-poverty-lilee", man["icb_code"]).iloc[0]
    assert man["icb_code"] == "E54000057" and man["icb_value"] == pytest.approx(icb["value"])


def test_time_series_with_england(engine):
    got = analysis.time_series(engine, "claimant-count-rate-16-64", MANCHESTER)
    assert list(got["period"]) == sorted(got["period"]) and len(got) == 25
    # ONS Explore Local Statistics claimant count, England 2025: 4.0% of residents aged 16-64
    assert got.iloc[-1]["period"] == "2025" and got.iloc[-1]["england_value"] == pytest.approx(4.0)
    assert got["trend"].nunique() == 1
    assert set(got["method"]) == {"published"}  # a local authority's own figures, not its ICB's method
    icb = analysis.time_series(engine, "claimant-count-rate-16-64", NENC)
    assert len(icb) > 1 and "published" not in set(icb["method"])  # built from its local authorities
    # the same series as the all-indicators frame gives (the Indicator page builds only the one it shows)
    every = analysis.latest_observations(engine, [MANCHESTER], all_periods=True)
    mine = every[every["indicator_id"] == "claimant-count-rate-16-64"].reset_index(drop=True)
    pd.testing.assert_series_equal(mine["value"], got["value"], check_names=False)


def test_indicator_catalog_and_area_info(engine):
    cat = analysis.indicator_catalog(engine).set_index("id")
    assert set(cat.index[cat["headline_outcome"]]) == {"life-expectancy", "healthy-life-expectancy",
                                                       "preventable-mortality-u75", "life-expectancy-inequality"}
    assert cat.at["life-expectancy", "la_level"] == "ltla" and cat.at["healthy-life-expectancy", "la_level"] == "utla"
    assert cat.at["fuel-poverty-lilee", "n_las_latest"] == 296
    info = analysis.area_info(engine, AMBER_VALLEY).iloc[0]
    assert (info["utla_code"], info["icb_code"], info["region_code"]) == (DERBYSHIRE, "E54000058", "E12000004")
    nenc = analysis.area_info(engine, NENC).iloc[0]
    assert nenc["n_las"] == 14 and nenc["nhs_code"] == "QHM"
    with pytest.raises(KeyError):
        analysis.area_info(engine, "E07000026")  # Allerdale, abolished in 2023


def test_a_new_process_reads_back_the_analysis_saved_after_the_refresh(snapshot_engine, monkeypatch):
    """tracker prepare (and every refresh that changes data) precomputes the analysis and saves it in the database
    itself; a new process on any host (the dashboard's first visitor, `tracker export`) reads it back with the
    first views' results already in it, and gets exactly what computing it again gives. No pickle anywhere. A
    damaged save is rebuilt, never an error."""
    from collections import OrderedDict

    from sqlalchemy import update

    from db.models import AnalysisPart
    from tracker.analysis import data, saved

    version = analysis.data_version(snapshot_engine)
    assert saved.saved_versions(snapshot_engine) == [(version, data.CODE_DIGEST)]
    assert not list(Path(snapshot_engine.url.database).parent.glob("**/*.pickle"))
    monkeypatch.setattr(data, "_CACHE", OrderedDict())  # as in a new process
    monkeypatch.setattr(data, "_load", lambda *a: pytest.fail("the saved analysis was not used"))
    store = get_store(snapshot_engine)
    sex = data.headline_sex(store, "life-expectancy")
    assert ("department_summary", "life-expectancy", sex) in store.memo and ("judged_rows",) in store.memo
    from_save = analysis.department_summary(snapshot_engine, "life-expectancy")
    profile_from_save = analysis.place_profile(snapshot_engine, NENC)
    # memory: hundreds of thousands of rows hold a few hundred distinct codes, each kept once, read or computed
    assert _one_object_per_value(store.obs, "area_code", "indicator_id", "period", "note")
    assert _one_object_per_value(store.memo[("judged_rows",)], "area_code", "indicator_id", "area_type")
    monkeypatch.undo()

    with snapshot_engine.begin() as conn:
        conn.execute(update(AnalysisPart).where(AnalysisPart.seq == 1).values(payload=b"damaged"))
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    rebuilt = get_store(snapshot_engine)
    assert rebuilt.memo == {}  # computed again from the database
    pd.testing.assert_frame_equal(rebuilt.obs, store.obs)
    assert _one_object_per_value(rebuilt.obs, "area_code", "indicator_id", "period", "note")
    pd.testing.assert_frame_equal(analysis.department_summary(snapshot_engine, "life-expectancy"), from_save)
    pd.testing.assert_frame_equal(analysis.place_profile(snapshot_engine, NENC), profile_from_save)


def _one_object_per_value(frame: pd.DataFrame, *columns: str) -> bool:
    """Equal text values in each column are one Python object (missing values aside)."""
    return all(len({id(v) for v in frame[c].dropna()}) == frame[c].nunique() for c in columns)


def test_a_new_process_reads_only_the_saved_results_it_uses(snapshot_engine, monkeypatch, caplog):
    """An export or a dashboard page in a new process reads from the save only the results it needs, not the whole
    analysis; a saved result that cannot be read (damaged, or replaced by a newer save) is computed again, and gives
    the same figures."""
    from collections import OrderedDict

    from sqlalchemy import update

    from db.models import AnalysisPart
    from tracker.analysis import data, saved

    monkeypatch.setattr(data, "_CACHE", OrderedDict())  # as in a new process
    monkeypatch.setattr(data, "_load", lambda *a: pytest.fail("the saved analysis was not used"))
    store = get_store(snapshot_engine)
    assert isinstance(store.memo, saved.SavedMemo) and store.memo.held() == set()
    assert ("judged_rows",) in store.memo and ("judged_rows",) not in store.memo.held()  # asking does not read
    sex = data.headline_sex(store, "life-expectancy")
    summary = analysis.department_summary(snapshot_engine, "life-expectancy")
    assert ("department_summary", "life-expectancy", sex) in store.memo.held()
    assert ("judged_rows",) not in store.memo.held()  # the department summary did not need it

    # damage the parts of the saved department summary: a new process computes it again
    key = ("department_summary", "life-expectancy", sex)
    node = saved.read(snapshot_engine, store.version, data.CODE_DIGEST)[1].pending_node(key)
    with snapshot_engine.begin() as conn:
        conn.execute(update(AnalysisPart).where(AnalysisPart.seq.in_(saved.part_numbers(node)))
                     .values(payload=b"damaged"))
    monkeypatch.undo()  # computing is allowed again
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    again = get_store(snapshot_engine)
    assert isinstance(again.memo, saved.SavedMemo)
    with caplog.at_level("WARNING", logger="tracker.analysis"):
        pd.testing.assert_frame_equal(analysis.department_summary(snapshot_engine, "life-expectancy"), summary)
    assert "computing it again" in caplog.text


def test_data_version_changes_when_a_refresh_lands(initialised_engine):
    before = analysis.data_version(initialised_engine)
    store = get_store(initialised_engine)
    assert get_store(initialised_engine) is store  # same data: the cached store
    with initialised_engine.begin() as conn:
        conn.execute(insert(Run).values(source="dfe", mode="offline", status="succeeded", started_at=datetime(2026, 1, 1),
                                        finished_at=datetime(2026, 1, 1), rows_changed=12))
    after = analysis.data_version(initialised_engine)
    assert after != before and get_store(initialised_engine) is not store
    with initialised_engine.begin() as conn:  # a run that changed nothing keeps the version (and the saved analysis)
        conn.execute(insert(Run).values(source="dfe", mode="offline", status="succeeded", started_at=datetime(2026, 1, 2),
                                        finished_at=datetime(2026, 1, 2), rows_changed=0))
    assert analysis.data_version(initialised_engine) == after
    with initialised_engine.begin() as conn:  # a failed run changes nothing
        conn.execute(insert(Run).values(source="dfe", mode="live", status="failed", started_at=datetime(2026, 1, 2)))
    assert analysis.data_version(initialised_engine) == after


@pytest.mark.postgres
@pytest.mark.parametrize("any_engine", ["postgres"], indirect=True)
def test_same_figures_on_postgresql(any_engine):
    """The analysis reads through SQLAlchemy Core only: on PostgreSQL, one source loaded gives the figures checked
    on SQLite above (NENC fuel poverty counted over its LSOAs from the DESNZ LSOA counts)."""
    from pipelines.desnz import FuelPovertySource
    from tests.test_analysis_icb import _icb_lsoas
    from tracker.catalog import by_source
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source
    from tracker.store import initialise

    initialise(any_engine)
    source = FuelPovertySource()
    run = run_source(any_engine, source, by_source(source.name), offline=True, mapper=AreaMapper.from_engine(any_engine))
    assert run.status == "succeeded"
    lsoas = _icb_lsoas(NENC)
    fp = pd.read_csv(SNAPSHOT_DIR / "fuel_poverty" / "desnz_sub_regional_fuel_poverty_2021_lsoa21.csv.gz")
    fp = fp[fp["LSOA21CD"].isin(lsoas)]
    expected = fp["fuel_poor_households"].sum() / fp["households"].sum()
    fuel = analysis.icb_figures(any_engine, "fuel-poverty-lilee", NENC).iloc[0]
    assert fuel["method"] == "counted over LSOAs" and fuel["comparison_label"] == "Not compared"
    assert fuel["value"] == pytest.approx(expected * 100, rel=1e-9)
    man = analysis.place_profile(any_engine, MANCHESTER).set_index("indicator_id").loc["fuel-poverty-lilee"]
    assert man["period"] == "2021" and man["comparison_label"] == "Not compared" and man["position"] == "Worst fifth"


def test_department_places_counts_where_its_indicators_are_worse(engine):
    codes = [MANCHESTER, AMBER_VALLEY, "E06000001"]
    counts = analysis.department_places(engine, "department-for-work-pensions", codes).set_index("area_code")
    assert sorted(counts.index) == sorted(codes)
    assert (counts["worse"] <= counts["compared"]).all() and (counts["compared"] > 0).all()
    # the same rule, row by row, from the latest observations of DWP's indicators
    rows = analysis.latest_observations(engine, ["E06000001"])
    cat = analysis.indicator_catalog(engine).set_index("id")
    rows = rows[rows["indicator_id"].map(cat["department_slug"]).eq("department-for-work-pensions") & rows["value"].notna()]
    rows = rows.assign(polarity=rows["indicator_id"].map(cat["polarity"]))
    compared = (rows["comparison"].ne("Not compared") | rows["position_only"]) & rows["polarity"].ne("no_judgement")
    assert counts.loc["E06000001", "compared"] == compared.sum()
    worse = analysis.is_worse(rows).astype(bool) & compared
    assert counts.loc["E06000001", "worse"] == worse.sum() > 0
    # the two statements kept apart: significantly worse than England, and in the worst fifth (no test possible)
    assert counts.loc["E06000001", "significantly_worse"] == (worse & (rows["comparison"] == "Worse")).sum()
    assert counts.loc["E06000001", "worst_fifth"] == (worse & rows["position_only"] & (rows["position"] == "Worst fifth")).sum()


def _area_answers(engine) -> dict:
    """What the Place, Indicator and Data pages and the exports ask of a place's rows."""
    return {
        "latest": analysis.latest_observations(engine, [AMBER_VALLEY, DERBYSHIRE, NENC], sex="all"),
        "series": analysis.time_series(engine, "life-expectancy", NENC),
        "district": analysis.place_profile(engine, AMBER_VALLEY, benchmark="region"),
        "icb": analysis.place_profile(engine, NENC),
        "la against its icb": analysis.place_profile(engine, MANCHESTER, benchmark="icb"),
        "peers": analysis.peer_benchmark(engine, [MANCHESTER, NENC]),
        "pack": pd.read_csv(io.BytesIO(export_bytes(engine, [NENC])), encoding="utf-8-sig"),
    }


def test_a_dashboard_process_reads_a_places_rows_from_the_saved_table_not_every_areas(snapshot_engine, monkeypatch,
                                                                                      caplog):
    """Issue 15 item 1: every area's comparisons, trends and ICB figures are an ordinary table of the save
    (analysis_row), and a new process answers a place from its slice of it: it never holds every area's rows. The
    answers equal those computed in memory from the data, and a save replaced while being read falls back to them."""
    from collections import OrderedDict

    from tracker.analysis import place

    from sqlalchemy import delete, func, select

    from db.models import AnalysisRow
    from tracker.analysis import data

    with snapshot_engine.connect() as conn:
        saved_rows = conn.execute(select(func.count()).select_from(AnalysisRow)).scalar_one()
    assert saved_rows > 300_000  # every area (LSOAs aside), indicator, sex and period

    monkeypatch.setattr(data, "_CACHE", OrderedDict())  # a new process
    monkeypatch.setattr(data, "_load", lambda *a: pytest.fail("the saved analysis was not used"))
    from_table = _area_answers(snapshot_engine)
    store = get_store(snapshot_engine)
    assert store.rows_saved
    # memory: the rows read hold each distinct text once, not once per row as the database driver gives it
    read = place.area_rows(store, [AMBER_VALLEY, DERBYSHIRE, NENC])
    assert len(read) > 1000
    assert _one_object_per_value(read, "indicator_id", "period", "comparison_label", "position", "trend", "figure_method")
    # (an ICB pack still reads the 42 ICBs' figures, icb_judged, whole: 45,000 rows)
    every_area = {("judged_rows",), ("icb_rows",), ("area_rows",), ("icb_table",)}
    assert not every_area & store.memo.held()
    assert not store.holds_observations()  # nor every observation: the pack's "Loaded on" comes from the rows too
    monkeypatch.undo()

    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    # the save wrote them a few areas at a time; here every area's rows are put together at once
    monkeypatch.setattr(place, "AREAS_PER_CHUNK", 100_000)
    computed = get_store(snapshot_engine)
    computed.rows_saved = False  # as the process that computes and saves them does until it has saved them
    in_memory = _area_answers(snapshot_engine)
    assert ("area_rows",) in computed.memo.held()
    for name, frame in from_table.items():
        pd.testing.assert_frame_equal(frame, in_memory[name], obj=name)

    # a newer save replaced this one while a process was answering from it: it builds the rows itself
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    reader = get_store(snapshot_engine)
    with snapshot_engine.begin() as conn:
        conn.execute(delete(AnalysisRow))
        conn.execute(delete(data.saved.AnalysisSave))
    replaced = analysis.place_profile(snapshot_engine, NENC)
    assert not reader.rows_saved and "was replaced since it was read" in caplog.text
    pd.testing.assert_frame_equal(replaced, in_memory["icb"])


def _missing_kinds(frame: pd.DataFrame) -> dict:
    """For each object column, where it holds None and where NaN (assert_frame_equal takes one for the other)."""
    return {c: [v is None for v in frame[c]] for c in frame.columns if frame[c].dtype == object}


def test_building_a_batch_of_indicators_at_a_time_gives_exactly_the_frames_of_one_build(engine, monkeypatch):
    """Every area's rows and the ICB figures are built a batch of indicators at a time (memory): the same rows, order,
    dtypes and missing values as building them all at once, and the same trends."""
    from tracker.analysis import data, place

    keys = [("judged_rows",), ("trends", "areas"), ("icb_table",), ("icb_judged",), ("icb_rows",), ("trends", "icbs")]

    def build(per_batch: int) -> dict:
        monkeypatch.setattr(data, "INDICATORS_AT_A_TIME", per_batch)
        store = data._load(engine, data.data_version(engine))  # a new Store: nothing memoised
        place.judged_rows(store), place.icb_rows(store)
        return {key: store.memo[key] for key in keys}

    whole, batched = build(10_000), build(7)
    assert whole[("judged_rows",)]["indicator_id"].nunique() > 7 * 3  # many batches
    for key in keys:
        pd.testing.assert_frame_equal(batched[key], whole[key], check_exact=True, obj=repr(key))
        assert _missing_kinds(batched[key]) == _missing_kinds(whole[key]), key


def test_every_areas_rows_hold_each_label_once_not_once_per_row(engine):
    """The comparison and trend labels of every area's rows (300,000 rows on the snapshot) are object columns holding
    one Python object per distinct text (in each batch of indicators built): in pandas' Arrow-backed str each row held
    its own copy, a third of the rows' memory while a refresh builds and saves them."""
    from tracker.analysis import data, place

    store = data._load(engine, data.data_version(engine))
    rows = place.judged_rows(store)
    for column in ("comparison", "comparison_level", "comparison_label", "comparison_basis", "trend", "trend_method",
                   "trend_from", "trend_to"):
        assert rows[column].dtype == object, column
        present = rows[column].dropna()
        assert present.nunique() > 1 and len({id(v) for v in present}) < len(present) / 1000, column


def test_the_precompute_holds_every_areas_rows_encoded_and_writes_them_a_few_thousand_at_a_time(engine):
    """While it computes the rest and saves, the precompute holds every area's rows (300,000 on the snapshot) encoded
    a batch of indicators per part, not as frames: a few indicators' rows decode only their batch, and the rows it
    writes come a batch of indicators and some areas at a time, every row once."""
    from tracker.analysis import data, place, saved

    store = data._load(engine, data.data_version(engine))
    place.build_judged_rows(store)
    held = store.memo[("judged_rows",)]
    assert isinstance(held, saved.Encoded)
    ids = sorted(store.indicators.index[store.indicators["headline_outcome"].astype(bool)])[:2]
    some = place.judged_rows_of(store, ids)
    assert isinstance(store.memo[("judged_rows",)], saved.Encoded)  # still not decoded whole
    chunks = list(place.area_row_chunks(store))
    assert isinstance(store.memo[("judged_rows",)], saved.Encoded)
    every = place.judged_rows(store)  # decoded when asked for whole
    pd.testing.assert_frame_equal(some, every[every["indicator_id"].isin(ids)].reset_index(drop=True), check_exact=True)
    assert sum(len(c) for c in chunks) == len(every) + len(place.icb_rows(store))
    assert max(len(c) for c in chunks) < 25_000 < len(every) / 10


def test_every_tracker_process_gives_freed_working_columns_back_to_the_system():
    """Arrow's buffers come from the system allocator (Arrow's own keeps what it freed), and glibc maps each block of
    1 MiB or more apart, however large the blocks freed before (its default raises that threshold with each one, so
    the next columns of a few hundred thousand rows came from a heap that fragmented): in a new process, once the
    tracker is imported."""
    import subprocess
    import sys

    probe = """
import ctypes, sys
import numpy as np
if sys.argv[1] == "tracker":
    import tracker
import pyarrow as pa
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                              "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
block = np.ones(8 << 20, np.uint8)
del block  # glibc's default: blocks under 8 MiB now come from the heap
before = libc.mallinfo2().hblks
column = np.ones(2 << 20, np.uint8)
print(pa.default_memory_pool().backend_name, libc.mallinfo2().hblks - before)
"""
    def run(imports: str) -> list[str]:
        return subprocess.run([sys.executable, "-c", probe, imports], capture_output=True, text=True,
                              check=True).stdout.split()

    assert run("tracker") == ["system", "1"]  # the 2 MiB column has a mapping of its own
    assert run("nothing")[1] == "0"  # the check itself tells the difference
