"""Core20 and inequality inside a place, on the database prepared from the bundled snapshot."""

from __future__ import annotations

import pytest

import tracker.analysis as analysis
from db.engine import make_engine

# Hand counts from the LSOA files (Python's csv module over the bundled LSOA21 lookup, IMD 2025 File 7 deciles and
# the Census 2021 usual residents by LSOA): LSOAs, LSOAs in deciles 1-2, residents, residents in those LSOAs.
HAND_COUNTS = {
    "E06000001": (57, 30, 92_327, 49_104),  # Hartlepool
    "E54000050": (1_889, 667, 2_966_493, 1_024_863),  # NHS North East and North Cumbria ICB
    "E09000001": (6, 0, 8_584, 0),  # City of London: no Core20 LSOA
}


@pytest.fixture(scope="module")
def engine(snapshot_db_file):
    e = make_engine(f"sqlite:///{snapshot_db_file}")
    yield e
    e.dispose()


def test_core20_for_england_every_icb_county_and_la(engine):
    table = analysis.core20(engine)
    by_type = table.groupby("area_type").size()
    assert by_type["icb"] == 42 and by_type["ltla"] == 296 and by_type["region"] == 9 and by_type["england"] == 1
    assert (table[table["area_type"] == "utla"]["area_code"].str.startswith("E10")).sum() == 21
    assert table["core20_share"].between(0, 1).all() and not table["core20_share"].isna().any()
    eng = table.set_index("area_code").loc["E92000001"]
    assert eng["n_lsoas"] == 33_755 and eng["residents"] == 56_489_608
    assert eng["core20_share"] == pytest.approx(0.2, abs=0.02)  # a fifth of LSOAs, so about a fifth of residents
    assert table["note"].str.contains("Census 2021 usual residents").all()


@pytest.mark.parametrize("code", sorted(HAND_COUNTS))
def test_core20_matches_hand_counts(engine, code):
    n, n_core, residents, core_residents = HAND_COUNTS[code]
    r = analysis.core20(engine, [code]).iloc[0]
    assert (r["n_lsoas"], r["n_core20_lsoas"], r["residents"], r["core20_residents"]) == (n, n_core, residents, core_residents)
    assert r["core20_share"] == pytest.approx(core_residents / residents)


def test_quintile_breakdown_adds_up_to_the_place(engine):
    q = analysis.quintile_breakdown(engine, "E54000050")
    assert q["imd_quintile"].tolist() == [1, 2, 3, 4, 5]
    assert q["n_lsoas"].sum() == 1_889 and q["residents"].sum() == 2_966_493
    assert q.loc[0, "n_lsoas"] == 667  # quintile 1 = deciles 1-2 = Core20
    assert q["share_of_residents"].sum() == pytest.approx(1.0)


def test_within_place_gap_by_department(engine):
    gaps = analysis.inequality_gaps(engine, "E54000050").set_index("measure")
    assert len(gaps) == 8
    assert gaps.at["Income_score", "department_abbr"] == "DWP"
    assert gaps.at["Education_score", "department_abbr"] == "DfE"
    assert gaps.at["Crime_score", "department_abbr"] == "HO"
    assert gaps.at["fuel_poverty", "department_abbr"] == "DESNZ"
    # the most deprived fifth is more income-deprived than the least deprived fifth
    assert gaps.at["Income_score", "gap"] == pytest.approx(gaps.at["Income_score", "q1"] - gaps.at["Income_score", "q5"])
    assert gaps.at["Income_score", "gap"] > 0.1
    lsoas = analysis.lsoa_deprivation(engine, "E54000050")
    q1 = lsoas[lsoas["imd_quintile"] == 1]
    assert gaps.at["Income_score", "n_lsoas_q1"] == len(q1) == 667


def test_a_place_with_no_lsoa_in_the_most_deprived_fifth_has_no_gap(engine):
    gaps = analysis.inequality_gaps(engine, "E09000001")
    assert gaps["gap"].isna().all() and gaps["note"].notna().all()


def test_lsoa_map_loads_only_the_places_lsoas(engine):
    geo = analysis.lsoa_boundaries(engine, "E06000001")
    assert len(geo["features"]) == 57
    assert {f["properties"]["imd_quintile"] for f in geo["features"]} <= {1, 2, 3, 4, 5}
    assert all(f["id"].startswith("E01") for f in geo["features"])
    # each shape carries its own LSOA's IMD 2025 decile and quintile
    imd = analysis.inequality.lsoa_table().set_index("lsoa_code")
    assert [(f["properties"]["imd_decile"], f["properties"]["imd_quintile"]) for f in geo["features"]] == [
        (imd.at[f["id"], "imd_decile"], imd.at[f["id"], "imd_quintile"]) for f in geo["features"]]
    icb = analysis.lsoa_boundaries(engine, "E54000050")
    assert len(icb["features"]) == 1_889
    with pytest.raises(ValueError):
        analysis.lsoa_boundaries(engine, "E92000001")
