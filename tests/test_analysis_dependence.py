"""Dependence on departments (tracker.analysis.dependence): associations, the department summary and the ranking of
departments for each place. Pure functions on constructed frames (labelled SYNTHETIC) and the snapshot database."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from db.engine import make_engine
from tracker.analysis import CAVEAT, associations, department_summary, place_departments, scatter_data
from tracker.analysis.data import get_store
from tracker.analysis.ranking import rank_departments
from tracker.analysis.dependence import (
    all_place_departments, association_table, associations_for, ranking_for, ranking_inputs,
    summarise_departments,
)

OUTCOMES = ["life-expectancy", "healthy-life-expectancy", "preventable-mortality-u75", "life-expectancy-inequality"]


@pytest.fixture(scope="module")
def engine(snapshot_db_file):
    e = make_engine(f"sqlite:///{snapshot_db_file}")
    yield e
    e.dispose()


def _meta(rows):
    return pd.DataFrame(rows, columns=["id", "polarity", "department_slug", "department_name", "department_abbr",
                                       "is_dhsc"]).set_index("id")


def _synthetic_pairs(seed=7, n=150):
    """SYNTHETIC: an outcome y over n areas in 50 clusters; dept "mono" has two indicators that are strictly monotone
    transforms of y (one reversed, with the matching polarity); dept "noise" has two unrelated indicators."""
    rng = np.random.default_rng(seed)
    y = rng.normal(80, 2, n)
    areas = [f"A{i:03d}" for i in range(n)]
    cols = {"mono-exp": np.exp(y / 10), "mono-neg": -(y**3), "noise-1": rng.normal(size=n), "noise-2": rng.normal(size=n)}
    pairs = pd.concat([pd.DataFrame({"indicator_id": k, "area_code": areas, "x": v, "y": y,
                                     "cluster": [f"C{i % 50:02d}" for i in range(n)]}) for k, v in cols.items()])
    meta = _meta([("mono-exp", "higher_is_better", "mono", "Mono", "M", False),
                  ("mono-neg", "lower_is_better", "mono", "Mono", "M", False),
                  ("noise-1", "higher_is_better", "noise", "Noise", "N", True),
                  ("noise-2", "no_judgement", "noise", "Noise", "N", True)])
    return pairs.reset_index(drop=True), meta


def test_association_table_aligns_by_polarity_and_ignores_row_order():
    pairs, meta = _synthetic_pairs()
    table = association_table(pairs, meta, "higher_is_better")  # e.g. life expectancy
    shuffled = association_table(pairs.sample(frac=1, random_state=3), meta, "higher_is_better")
    pd.testing.assert_frame_equal(table, shuffled)
    t = table.set_index("indicator_id")
    assert t.at["mono-exp", "rho"] == pytest.approx(1) and t.at["mono-neg", "rho"] == pytest.approx(-1)
    # higher exp(y) is better and goes with better y; lower -(y^3) is better: both "worse goes with worse"
    assert t.at["mono-exp", "aligned_rho"] == pytest.approx(1) and t.at["mono-neg", "aligned_rho"] == pytest.approx(1)
    assert t.loc[["mono-exp", "mono-neg"], "supports"].all()
    assert np.isnan(t.at["noise-2", "aligned_rho"]) and not t.at["noise-2", "supports"]
    assert "sign only" in t.at["noise-2", "note"]
    rho, p = stats.spearmanr(pairs.loc[pairs["indicator_id"] == "noise-1", "x"], pairs.loc[pairs["indicator_id"] == "noise-1", "y"])
    assert t.at["noise-1", "rho"] == pytest.approx(rho) and t.at["noise-1", "p_value"] == pytest.approx(p)
    assert list(table["indicator_id"][:2]) == ["mono-exp", "mono-neg"]  # sorted by aligned rho, ties by id


def test_department_summary_monotone_department_scores_one_and_is_deterministic():
    pairs, meta = _synthetic_pairs()
    table = association_table(pairs, meta, "higher_is_better")
    got = summarise_departments(pairs, table, meta, "higher_is_better", n_boot=300, seed=11)
    again = summarise_departments(pairs.sample(frac=1, random_state=5), table.sample(frac=1, random_state=6), meta,
                                  "higher_is_better", n_boot=300, seed=11)
    pd.testing.assert_frame_equal(got, again)
    g = got.set_index("department_slug")
    assert list(got["department_slug"]) == ["mono", "noise"]
    assert g.at["mono", "median_aligned_rho"] == pytest.approx(1)
    assert g.at["mono", "lci"] == pytest.approx(1) and g.at["mono", "uci"] == pytest.approx(1)
    assert g.at["noise", "n_indicators"] == 1  # the no-polarity indicator has no aligned rho
    assert g.at["noise", "lci"] < g.at["noise", "median_aligned_rho"] < g.at["noise", "uci"]
    assert g.at["noise", "lci"] < 0 < g.at["noise", "uci"]
    other_seed = summarise_departments(pairs, table, meta, "higher_is_better", n_boot=300, seed=12)
    assert other_seed.set_index("department_slug").at["noise", "lci"] != g.at["noise", "lci"]


def test_associations_on_the_snapshot(engine):
    got = associations(engine, "life-expectancy", "Female")
    assert (got["outcome_sex"] == "Female").all() and (got["outcome_period"] == "2023 - 25").all()
    ids = set(got["indicator_id"])
    assert not any(i.startswith("imd-") for i in ids)  # the IMD is neither a control nor a department's determinant
    assert not ids & set(OUTCOMES)
    gdhi = got.set_index("indicator_id").loc["gdhi-per-head"]
    assert gdhi["level"] == "ltla" and gdhi["supports"] and gdhi["aligned_rho"] > 0.5
    assert gdhi["aligned_lci"] < gdhi["aligned_rho"] < gdhi["aligned_uci"]
    # the same rho as scipy on the points behind it
    pts = scatter_data(engine, "gdhi-per-head", "life-expectancy", "Female")
    assert len(pts) == gdhi["n"]
    assert gdhi["rho"] == pytest.approx(stats.spearmanr(pts["determinant"], pts["outcome"]).statistic, abs=1e-12)
    # healthy life expectancy is published for upper-tier authorities: compared at that level
    hle = associations(engine, "healthy-life-expectancy")
    assert set(hle["level"].dropna()) == {"utla"} and hle["n"].max() <= 153
    # BH: q >= p, and the supported ones are exactly the significant positives
    valid = got.dropna(subset=["p_value"])
    assert (valid["q_value"] >= valid["p_value"] - 1e-15).all()
    assert (got["supports"] == (got["significant"] & (got["aligned_rho"] > 0))).all()


def test_department_summary_on_the_snapshot(engine):
    got = department_summary(engine, "preventable-mortality-u75")
    assert got["department_slug"].is_unique and len(got) >= 8
    assert ((got["lci"] <= got["median_aligned_rho"] + 1e-12) & (got["median_aligned_rho"] <= got["uci"] + 1e-12)).all()
    assert list(got["median_aligned_rho"]) == sorted(got["median_aligned_rho"], reverse=True)
    pd.testing.assert_frame_equal(department_summary(engine, "preventable-mortality-u75"), got)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_place_has_a_ranking_with_evidence(engine, outcome):
    store = get_store(engine)
    ranking, evidence = all_place_departments(engine, outcome)
    places = set(ranking["place_code"])
    las = set(store.areas.index[store.areas["type"].isin(["ltla", "utla"])]) & (
        set(store.links["child_code"]) | set(store.links["parent_code"]))
    icbs = set(store.areas.index[store.areas["type"] == "icb"])
    regions = set(store.areas.index[store.areas["type"] == "region"])
    assert "E92000001" in places and icbs <= places and las <= places and regions <= places
    assert len(icbs) == 42 and len(las) == 296 + 21 and len(regions) == 9
    ranked = ranking[["place_code", "department_slug"]].drop_duplicates()
    backed = evidence[["place_code", "department_slug"]].drop_duplicates()
    assert len(ranked.merge(backed)) == len(ranked)  # every rank has its evidence
    assert evidence[["indicator_id", "aligned_rho", "comparison_label"]].notna().all().all()
    # a gap wherever the place has a value and England (or the mean of local authorities) and their spread exist
    has_all = evidence[["value", "england_value", "sd"]].notna().all(axis=1)
    assert evidence.loc[has_all, "gap"].notna().all() and has_all.mean() > 0.9
    assert (evidence.loc[evidence["gap"].isna(), "contribution"] == 0).all()
    assert ranking["share_outside_dhsc"].dropna().between(0, 1).all()


def test_place_departments_for_a_place(engine):
    got = place_departments(engine, "E08000003", "life-expectancy")  # Manchester
    assert got.sex == "Male" and got.caveat == CAVEAT
    ranked = got.ranking["rank"].dropna()
    assert list(ranked) == list(range(1, len(ranked) + 1))
    assert 0 <= got.share_outside_dhsc <= 1
    ev = got.evidence
    assert set(ev["department_slug"]) == set(got.ranking["department_slug"])
    fuel = ev.set_index("indicator_id").loc["fuel-poverty-lilee"]
    # Manchester's fuel poverty is above England's: a positive gap, in SDs of local-authority values
    assert fuel["value_from"] == "E08000003" and fuel["value"] > fuel["england_value"]
    assert fuel["gap"] == pytest.approx((fuel["value"] - fuel["england_value"]) / fuel["sd"])
    # a modelled estimate: not tested against England, its position among districts shown apart
    assert (fuel["comparison_label"], fuel["position"]) == ("Not compared", "Worst fifth")


def test_associations_and_ranking_do_not_depend_on_the_order_of_the_data(engine):
    """Associations from a copy of the data with every observation and link shuffled; the ranking from the real
    evidence shuffled."""
    store = get_store(engine)
    shuffled = dataclasses.replace(store, obs=store.obs.sample(frac=1, random_state=42).reset_index(drop=True),
                                   links=store.links.sample(frac=1, random_state=43).reset_index(drop=True), memo={})
    outcome, sex = "life-expectancy-inequality", "Female"
    pd.testing.assert_frame_equal(associations_for(store, outcome, sex), associations_for(shuffled, outcome, sex))
    evidence, meta, groups, boot = ranking_inputs(store, outcome, sex)
    ranking, ev = ranking_for(store, outcome, sex)
    ranking2, ev2 = rank_departments(evidence.sample(frac=1, random_state=44), meta, groups, boot)
    pd.testing.assert_frame_equal(ranking, ranking2)
    pd.testing.assert_frame_equal(ev, ev2)


def test_caveat_is_in_the_methods_page():
    text = (Path(__file__).resolve().parents[1] / "docs" / "methods.md").read_text(encoding="utf-8")
    assert " ".join(CAVEAT.split()) in " ".join(text.replace("\n>", "\n").split())
    assert "causation" in CAVEAT and "never used as a control" in CAVEAT
