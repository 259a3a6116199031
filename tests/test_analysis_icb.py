"""ICB figures, drill-down and measures built from LSOAs, on the database prepared from the bundled snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from db.engine import make_engine
from tracker.analysis import area_info, icb_drilldown, icb_figures, latest_observations, lsoa_summary
from tracker.analysis.data import get_store
from tracker.config import GEOGRAPHY_DIR, SNAPSHOT_DIR

NENC = "E54000050"  # NHS North East and North Cumbria ICB
DERBYSHIRE_ICB, DERBYSHIRE, DERBY = "E54000058", "E10000007", "E06000015"
CHESHIRE_MERSEYSIDE, ESSEX = "E54000008", "E10000012"
FIFTHS = {"Best fifth", "Second-best fifth", "Middle fifth", "Second-worst fifth", "Worst fifth"}


@pytest.fixture(scope="module")
def engine(snapshot_db_file):
    """The session's snapshot database, read only (so one in-memory analysis store serves every test)."""
    e = make_engine(f"sqlite:///{snapshot_db_file}")
    yield e
    e.dispose()


def _household_shares(icb: str) -> pd.Series:
    """Each LA's share of its households in `icb`, by hand from the bundled ONS lookup and DESNZ households."""
    lookup = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz", dtype=str)
    hh = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_households_2021.csv", dtype={"LSOA21CD": str})
    merged = lookup[["LSOA21CD", "LAD24CD", "ICB24CD"]].merge(hh[["LSOA21CD", "households"]], on="LSOA21CD")
    by_pair = merged.groupby(["LAD24CD", "ICB24CD"])["households"].sum()
    share = by_pair / by_pair.groupby(level="LAD24CD").transform("sum")
    return share.xs(icb, level="ICB24CD")


def _icb_lsoas(icb: str) -> set:
    lookup = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz", dtype=str)
    return set(lookup.loc[lookup["ICB24CD"] == icb, "LSOA21CD"])


def test_icb_fuel_poverty_is_counted_over_its_lsoas_without_a_ci(engine):
    """NENC's fuel poverty = its LSOAs' fuel-poor households over their households (DESNZ 2021 LSOA table): Westmorland
    and Furness, split between ICBs, counts by its own LSOAs in NENC. A modelled estimate: no CI, not tested."""
    shares = _household_shares(NENC)
    assert len(shares) == 14 and 0 < shares["E06000064"] < 1  # Westmorland and Furness is split
    fp = pd.read_csv(SNAPSHOT_DIR / "fuel_poverty" / "desnz_sub_regional_fuel_poverty_2021_lsoa21.csv.gz")
    fp = fp[fp["LSOA21CD"].isin(_icb_lsoas(NENC))]
    got = icb_figures(engine, "fuel-poverty-lilee", NENC)
    assert len(got) == 1
    row = got.iloc[0]
    assert row["method"] == "counted over LSOAs" and not row["approximate"]
    assert row["count"] == pytest.approx(fp["fuel_poor_households"].sum(), rel=1e-9)
    assert row["denominator"] == pytest.approx(fp["households"].sum(), rel=1e-9)
    assert row["value"] == pytest.approx(fp["fuel_poor_households"].sum() / fp["households"].sum() * 100, rel=1e-9)
    assert np.isnan(row["lci95"]) and np.isnan(row["uci95"])  # ci_method none: no Wilson interval on a model
    assert row["england_value"] == pytest.approx(3162752 / 24070861 * 100, rel=1e-6)  # DESNZ: 13.1% of England
    assert (row["comparison"], row["comparison_label"]) == ("Not compared", "Not compared")
    assert pd.isna(row["comparison_level"]) and pd.isna(row["comparison_basis"])
    assert f"{len(fp):,} LSOAs" in row["note"]


def test_icb_rate_is_recomputed_from_la_counts_with_byar_ci(engine):
    """Homelessness (owed a duty, per 1,000 households) for NENC: the LAs' counts and denominators summed, a split
    LA with its share of households, and Byar's interval computed again: a directly counted rate."""
    ind = "homelessness-owed-duty-per-1000"
    row = icb_figures(engine, ind, NENC).iloc[0]
    assert row["method"] == "recomputed from counts" and not row["approximate"]
    shares = _household_shares(NENC)
    las = latest_observations(engine, list(shares.index), [ind], all_periods=True)
    las = las[las["period"] == row["period"]].set_index("area_code")
    assert row["count"] == pytest.approx((las["count"] * shares).sum(), rel=1e-9)
    assert row["denominator"] == pytest.approx((las["denominator"] * shares).sum(), rel=1e-9)
    o, n, z = row["count"], row["denominator"], 1.959963984540054
    lower = o * (1 - 1 / (9 * o) - z / (3 * np.sqrt(o))) ** 3 / n * 1000  # Byar, written out independently
    assert row["lci95"] == pytest.approx(lower, rel=1e-9)
    assert row["comparison_basis"] == "CI computed from summed counts"
    assert "share of households" in row["note"]


def test_icb_figure_for_a_county_level_indicator_is_population_weighted_and_labelled(engine):
    """Derby and Derbyshire ICB: Derby (unitary) and the county's eight districts, each district taking the county's
    figure, weighted by ONS mid-2020 population."""
    ind = "dfe-gcse-english-maths-grade-4"
    got = icb_figures(engine, ind, DERBYSHIRE_ICB).iloc[0]
    las = latest_observations(engine, [DERBY, DERBYSHIRE], [ind], all_periods=True)
    las = las[las["period"] == got["period"]].set_index("area_code")["value"]
    pop = pd.read_csv(SNAPSHOT_DIR / "population" / "ons_mid2020_population_single_year_of_age_lad21.csv")
    pop = pop.set_index("LAD21CD")["total_population"]
    districts = [f"E0700003{i}" for i in range(2, 10)]  # Amber Valley ... South Derbyshire
    county_pop = pop[districts].sum()
    expected = (pop[DERBY] * las[DERBY] + county_pop * las[DERBYSHIRE]) / (pop[DERBY] + county_pop)
    assert got["value"] == pytest.approx(expected, rel=1e-9)
    assert got["method"] == "population-weighted average (approximate)" and got["approximate"]
    assert "mid-2020" in got["note"] and "county" in got["note"]
    assert np.isnan(got["lci95"])  # no CI is claimed for an approximate figure
    assert got["comparison"] == "Not compared"  # no test against England ...
    assert got["position"] in FIFTHS  # ... it is placed among the 42 ICBs instead


def test_icb_drilldown_lists_las_with_shares(engine):
    got = icb_drilldown(engine, NENC).set_index("la_code")
    hand = _household_shares(NENC)
    assert sorted(got.index) == sorted(hand.index)
    np.testing.assert_allclose(got["share"], hand[got.index], rtol=1e-12)
    split = got["share"] < 1  # Cumberland and Westmorland and Furness reach into Lancashire and South Cumbria ICB
    assert sorted(got.index[split]) == ["E06000063", "E06000064"]
    assert (got.loc[split, "share_basis"] == "households").all() and (got.loc[~split, "share_basis"] == "whole").all()
    assert got["population_in_icb"].sum() == pytest.approx((got["population_mid2020"] * hand[got.index]).sum())
    info = area_info(engine, "E06000064").iloc[0]
    shares = dict(part.split(": ") for part in info["icb_shares"].split("; "))
    assert set(shares) == {NENC, "E54000048"} and sum(map(float, shares.values())) == pytest.approx(1, abs=0.01)
    with pytest.raises(KeyError):
        icb_drilldown(engine, "E06000001")


def test_imd_2025_la_share_in_most_deprived_decile_from_lsoas_equals_file_10_for_all_296(engine):
    got = lsoa_summary(engine).set_index("area_code")
    f10 = pd.read_csv(SNAPSHOT_DIR / "imd" / "iod2025_lad24_summaries.csv")
    f10 = f10[f10["index_domain"] == "Index of Multiple Deprivation"].set_index("area_code")["proportion_bottom_decile"]
    assert len(f10) == 296 and sorted(got.index) == sorted(f10.index)
    diff = got.loc[f10.index, "proportion_most_deprived_decile"].round(4) - f10
    assert (diff.abs() < 1e-9).all(), diff[diff.abs() >= 1e-9].head()
    assert got["n_lsoas"].sum() == 33755
    # the same figure as the loaded district-level indicator (mhclg_deprivation, File 10)
    loaded = latest_observations(engine, list(f10.index[:20]), ["imd-proportion-most-deprived-decile"])
    assert (loaded["period"] == "IoD2025").all()
    np.testing.assert_allclose(loaded.set_index("area_code")["value"], got.loc[loaded["area_code"], "proportion_most_deprived_decile"].round(4))


def test_imd_built_from_lsoas_for_icbs(engine):
    got = lsoa_summary(engine, parent_type="icb").set_index("area_code")
    assert len(got) == 42 and got["n_lsoas"].sum() == 33755
    lookup = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz", dtype=str)
    imd = pd.read_csv(SNAPSHOT_DIR / "imd" / "imd2025_lsoa21_scores_ranks_deciles.csv.gz")
    nenc = imd[imd["lsoa21_code"].isin(lookup.loc[lookup["ICB24CD"] == NENC, "LSOA21CD"])]
    assert got.at[NENC, "proportion_most_deprived_decile"] == pytest.approx((nenc["IMD_decile"] == 1).mean(), abs=1e-12)
    assert got.at[NENC, "mean_score"] == pytest.approx(nenc["IMD_score"].mean(), abs=1e-9)


def test_icb_and_county_shares_of_most_deprived_lsoas_are_counts_over_their_lsoas(engine):
    """The issue's figure: NHS Cheshire and Merseyside ICB has 322 of its 1,601 LSOAs in IMD 2025 decile 1 = 0.2011
    (MHCLG's File 13 definition), not the population-weighted 0.202 of its local authorities' shares. Every ICB and
    county equals the count over its LSOAs, and says how it was made."""
    ind = "imd-proportion-most-deprived-decile"
    icbs = icb_figures(engine, ind).set_index("icb_code")
    cm = icbs.loc[CHESHIRE_MERSEYSIDE]
    assert (cm["count"], cm["denominator"]) == (322, 1601) and round(cm["value"], 4) == 0.2011
    assert cm["method"] == "counted over LSOAs" and not cm["approximate"] and "1,601 LSOAs" in cm["note"]
    assert np.isnan(cm["lci95"]) and cm["comparison"] == "Not compared" and cm["position"] in FIFTHS
    by_lsoa = lsoa_summary(engine, parent_type="icb").set_index("area_code")["proportion_most_deprived_decile"]
    assert len(icbs) == 42
    np.testing.assert_allclose(icbs["value"], by_lsoa.loc[icbs.index], rtol=0, atol=1e-12)
    # a county: its districts' LSOAs, by hand from the bundled IMD 2025 LSOA file and the ONS lookup
    lookup = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz", dtype=str)
    imd = pd.read_csv(SNAPSHOT_DIR / "imd" / "imd2025_lsoa21_scores_ranks_deciles.csv.gz").set_index("lsoa21_code")
    to_county = get_store(engine).parent("utla")
    essex_lads = [c for c in lookup["LAD24CD"].unique() if to_county.get(c) == ESSEX]
    assert len(essex_lads) == 12
    deciles = imd.loc[lookup.loc[lookup["LAD24CD"].isin(essex_lads), "LSOA21CD"], "IMD_decile"]
    county = latest_observations(engine, [ESSEX], [ind]).iloc[0]
    assert county["value"] == pytest.approx((deciles == 1).mean(), abs=1e-12)
    assert county["figure_method"] == "counted over LSOAs" and county["period"] == "IoD2025"
    assert county["comparison"] == "Not compared" and county["position"] in FIFTHS
