"""Places like this one: ONS's similar areas for local authorities, the tracker's peer ICBs (tested on their
properties), and the comparison with them, on the database prepared from the bundled snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tracker.analysis as analysis
from db.engine import make_engine
from tracker.analysis.peers import nearest_peers
from tracker.analysis.stats import compare

HARTLEPOOL = "E06000001"
# ONS Explore Local Statistics, global model (scripts/config/clusters/global-neighbours.csv, 2026), Hartlepool's row
# as published, most similar first.
HARTLEPOOL_GLOBAL = ["E08000018", "E06000003", "E07000171", "E08000008", "E07000038", "W06000022", "E07000033",
                     "E07000010", "E08000036", "E08000023", "E08000017", "E06000004", "E08000024", "E07000141",
                     "E08000005", "E07000076", "E07000108", "E08000027", "E08000030", "E06000021"]


@pytest.fixture(scope="module")
def engine(snapshot_db_file):
    e = make_engine(f"sqlite:///{snapshot_db_file}")
    yield e
    e.dispose()


def test_hartlepool_lists_its_ons_global_neighbours_in_the_published_order(engine):
    got = analysis.similar_areas(engine, HARTLEPOOL)
    assert got["peer_code"].tolist() == HARTLEPOOL_GLOBAL
    assert got["rank"].tolist() == list(range(1, 21))
    assert got.loc[0, "peer_name"] == "Rotherham"
    # a Welsh neighbour is listed (ONS lists it) but the tracker holds no figures for it
    assert got.set_index("peer_code").at["W06000022", "in_england"] == False  # noqa: E712
    assert got["source"].str.contains("Explore Local Statistics").all()
    assert (got["source_date"] == "2026-03-12").all()


def test_the_user_picks_the_kind_of_similarity(engine):
    glob = analysis.similar_areas(engine, HARTLEPOOL, "global")["peer_code"].tolist()
    econ = analysis.similar_areas(engine, HARTLEPOOL, "economic")["peer_code"].tolist()
    assert len(econ) == 20 and econ != glob
    with pytest.raises(ValueError):
        analysis.similar_areas(engine, HARTLEPOOL, "nearest")
    with pytest.raises(KeyError):
        analysis.similar_areas(engine, "E54000050")  # ICBs have the tracker's own peers instead


def test_every_icb_has_peers_and_never_itself(engine):
    peers = analysis.peer_icbs(engine)
    assert peers["area_code"].nunique() == 42
    assert (peers.groupby("area_code").size() == analysis.PEER_K).all()
    assert not (peers["area_code"] == peers["peer_code"]).any()
    assert peers["peer_code"].str.startswith("E54").all()
    assert (peers.groupby("area_code")["distance"].apply(lambda d: d.is_monotonic_increasing)).all()
    assert peers["source"].str.contains("not an official grouping").all()


def test_peer_characteristics_are_published_figures(engine):
    chars = analysis.icb_characteristics(engine)
    assert len(chars) == 42 and not chars.isna().any().any()
    assert chars["residents"].sum() == 56_489_608  # Census 2021 usual residents, summed over England's LSOAs
    assert chars["core20_share"].between(0, 1).all() and chars["share_65_plus"].between(0.05, 0.35).all()


def test_peer_method_is_deterministic_symmetric_and_independent_of_row_order(engine):
    chars = analysis.icb_characteristics(engine).set_index("icb_code")[list(analysis.peers.ICB_PEER_INPUTS)]
    first = nearest_peers(chars, k=41)  # every other ICB: the full distance table
    d = first.set_index(["area_code", "peer_code"])["distance"]
    swapped = d.copy()
    swapped.index = swapped.index.swaplevel()
    assert np.allclose(d.sort_index().to_numpy(), swapped.sort_index().to_numpy())  # d(a, b) == d(b, a)
    shuffled = chars.sample(frac=1.0, random_state=7)
    assert not shuffled.index.equals(chars.index)
    pd.testing.assert_frame_equal(nearest_peers(shuffled), nearest_peers(chars))
    assert nearest_peers(chars)["area_code"].value_counts().eq(5).all()


def test_hartlepools_comparison_with_its_neighbours_is_the_england_rule_against_their_value(engine):
    rows = analysis.peer_benchmark(engine, [HARTLEPOOL], ["life-expectancy"], sex="Male")
    assert len(rows) == 1
    r = rows.iloc[0]
    assert r["peer_group"] == "ONS similar areas (global)" and r["n_peers"] == 20
    # the peers' own published figures for the same period and sex, from the same API
    peers = analysis.latest_observations(engine, HARTLEPOOL_GLOBAL[:5] + HARTLEPOOL_GLOBAL[6:], ["life-expectancy"],
                                         sex="Male")
    peers = peers[peers["period"] == r["period"]]
    assert r["n_peers_with_value"] == len(peers) == 19  # the Welsh neighbour has no English figure
    assert r["peer_method"] == "mean of peers' values"  # life expectancy is not a count over a denominator
    assert r["peer_value"] == pytest.approx(peers["value"].mean())
    expected = compare(r["value"], r["lci95"], r["uci95"], r["peer_value"], "higher_is_better", r["lci998"], r["uci998"])
    assert r["peer_comparison_label"] == expected["label"].iloc[0]
    better = int((peers["value"] > r["value"]).sum())
    assert r["peer_position"] == f"{better + 1} of 20"


def test_pooled_rate_where_every_peer_has_counts(engine):
    rows = analysis.peer_benchmark(engine, ["E54000050"], None)
    pooled = rows[rows["peer_method"].fillna("").str.startswith("pooled")]
    assert not pooled.empty
    r = pooled.iloc[0]
    peers = analysis.peer_icbs(engine, "E54000050")["peer_code"].tolist()
    figs = analysis.latest_observations(engine, peers, [r["indicator_id"]], all_periods=True, sex="all")
    figs = figs[(figs["period"] == r["period"]) & (figs["sex"] == r["sex"])]
    mult = analysis.indicator_catalog(engine).set_index("id").at[r["indicator_id"], "multiplier"]
    assert r["peer_value"] == pytest.approx(figs["count"].sum() / figs["denominator"].sum() * mult)


def test_rank_departments_against_peers_keeps_england_as_the_default(engine):
    england = analysis.place_departments(engine, HARTLEPOOL, "life-expectancy")
    peers = analysis.place_departments_against_peers(engine, HARTLEPOOL, "life-expectancy")
    assert set(peers.evidence["indicator_id"]) == set(england.evidence["indicator_id"])
    assert {"peer_value", "peer_comparison_label", "peer_position"} <= set(peers.evidence.columns)
    # no gap from peers is claimed without a peer value; a gap is measured from the peers' value in the same SDs
    assert peers.evidence.loc[peers.evidence["peer_value"].isna(), "gap"].isna().all()
    row = peers.evidence.dropna(subset=["gap"]).iloc[0]
    sign = 1 if analysis.indicator_catalog(engine).set_index("id").at[row["indicator_id"], "polarity"] == "lower_is_better" else -1
    assert row["gap"] == pytest.approx(max(0.0, min(3.0, (row["value"] - row["peer_value"]) / row["sd"] * sign)))
    with pytest.raises(ValueError):
        analysis.place_departments_against_peers(engine, "E92000001", "life-expectancy")


def test_counts_are_not_compared_with_similar_areas(engine):
    cat = analysis.indicator_catalog(engine).set_index("id")
    counts = cat.index[cat["value_type"] == "count"].tolist()
    rows = analysis.peer_benchmark(engine, [HARTLEPOOL], counts)
    assert not rows.empty
    assert rows["peer_value"].isna().all() and rows["peer_position"].isna().all()
    assert (rows["peer_comparison"] == "Not compared").all()
    assert rows["peer_method"].str.contains("depends on the area's size").all()


def test_every_local_authority_and_county_has_ons_similar_areas(engine):
    groups = analysis.peers.peer_groups(engine)
    areas = analysis.peers.get_store(engine).areas
    las = set(areas.index[areas["type"].isin(["ltla", "utla"])])
    have = set(groups["area_code"])
    assert las <= have  # 296 districts and unitaries and 21 counties
    # Barnsley's and Sheffield's 2025 codes (E08000038/39) are read as the tracker's 2024 codes
    sheffield = analysis.similar_areas(engine, "E08000019")
    assert len(sheffield) == 20 and "E08000039" not in set(groups["peer_code"])
