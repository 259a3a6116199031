"""The tracker's geography: areas, how they nest, old-code mapping, loading and boundaries.

Self-contained for now: each engine is a SQLite file in a temporary folder, created by the migrations."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import func, insert, select, text

from db.engine import make_engine, upgrade
from db.models import Area, AreaCodeHistory, AreaLink, Department, Indicator, Observation, Run
from tracker.geography import AreaMapper, boundaries, build_geography, list_areas, load_geography


def _new_engine(folder):
    engine = make_engine(f"sqlite:///{folder}/tracker.sqlite")
    upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def frames():
    return build_geography()


@pytest.fixture(scope="module")
def engine(tmp_path_factory, frames):
    engine = _new_engine(tmp_path_factory.mktemp("geo"))
    load_geography(engine, frames)
    yield engine
    engine.dispose()


def _links(engine, parent_type: str) -> pd.DataFrame:
    sql = text(
        "SELECT l.child_code, l.parent_code, l.share, l.share_basis, c.type AS child_type "
        "FROM area_link l JOIN area c ON c.code = l.child_code WHERE l.parent_type = :t"
    )
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sql, {"t": parent_type}).mappings().all())


def test_selectable_area_counts(engine):
    counts = {t: len(list_areas(engine, t)) for t in ("england", "region", "icb", "utla", "ltla")}
    assert counts == {"england": 1, "region": 9, "icb": 42, "utla": 153, "ltla": 296}
    with engine.connect() as conn:
        n_lsoa = conn.execute(select(func.count()).select_from(Area).where(Area.type == "lsoa")).scalar()
    assert n_lsoa == 33_755


def test_icbs_use_2024_codes_with_ods_codes(engine):
    icb = list_areas(engine, "icb").set_index("code")
    assert {"E54000063", "E54000064"} <= set(icb.index)
    assert not {"E54000052", "E54000053"} & set(icb.index)  # the 2022 Surrey Heartlands / Sussex codes
    assert icb["nhs_code"].notna().all()
    assert icb.loc["E54000050", "name"] == "NHS North East and North Cumbria Integrated Care Board"


def test_utlas_are_counties_plus_single_tier_authorities(engine):
    utla = list_areas(engine, "utla").set_index("code")
    prefixes = utla.index.str[:3].value_counts().to_dict()
    assert prefixes == {"E10": 21, "E06": 63, "E08": 36, "E09": 33}
    assert utla["region_code"].notna().all()  # counties via their own link, unitaries via their ltla link
    with engine.connect() as conn:
        types = dict(conn.execute(select(Area.code, Area.type).where(Area.code.in_(["E06000001", "E10000003"]))).all())
    # A unitary has one Area row typed "ltla"; only E10 counties are typed "utla".
    assert types == {"E06000001": "ltla", "E10000003": "utla"}
    ltla_utla = _links(engine, "utla")
    assert ltla_utla["child_code"].is_unique and len(ltla_utla) == 296  # every ltla has one upper tier
    assert ((ltla_utla["child_code"] == ltla_utla["parent_code"]) == ~ltla_utla["parent_code"].str.startswith("E10")).all()


def test_every_ltla_is_in_an_icb_and_split_shares_sum_to_one(engine):
    links = _links(engine, "icb")
    ltla = links[links["child_type"] == "ltla"]
    assert set(ltla["child_code"]) == set(list_areas(engine, "ltla")["code"])
    totals = ltla.groupby("child_code")["share"].sum()
    assert (totals - 1).abs().max() < 1e-9
    split = ltla[ltla["child_code"].duplicated(keep=False)]
    assert split["child_code"].nunique() == 13
    assert set(split["share_basis"]) == {"households"}
    whole = ltla[~ltla["child_code"].isin(split["child_code"])]
    assert set(whole["share_basis"]) == {"whole"} and (whole["share"] == 1.0).all()


def test_every_lsoa_has_one_ltla_and_one_icb(engine):
    for parent_type in ("ltla", "icb"):
        lsoa = _links(engine, parent_type).query("child_type == 'lsoa'")
        assert len(lsoa) == 33_755 and lsoa["child_code"].is_unique


def test_known_places(engine):
    ltla = list_areas(engine, "ltla").set_index("code")
    hartlepool = ltla.loc["E06000001"]
    assert (hartlepool["name"], hartlepool["region_code"], hartlepool["utla_code"], hartlepool["icb_code"]) == (
        "Hartlepool", "E12000001", "E06000001", "E54000050",
    )
    assert not ltla.index.isin(["E07000026", "E07000027", "E07000028"]).any()  # the Cumbrian districts are gone
    icb = _links(engine, "icb").set_index(["child_code", "parent_code"])
    assert icb.loc[("E06000001", "E54000050"), "share_basis"] == "whole"
    for la in ("E06000060", "E06000065"):  # Buckinghamshire, North Yorkshire
        rows = icb.loc[la]
        assert len(rows) >= 2 and set(rows["share_basis"]) == {"households"}
    # The main ICB of a split LA is the one holding most of its households.
    assert ltla.loc["E06000065", "icb_code"] == "E54000051"  # Humber and North Yorkshire
    assert list_areas(engine, "utla").set_index("code").loc["E10000003", "name"] == "Cambridgeshire"


def test_area_mapper(engine, frames):
    mapper = AreaMapper.from_engine(engine)
    # A former district merged into a new unitary is not the unitary: its value must not become the unitary's.
    assert mapper.map("E07000026") is None
    assert mapper.why_unmapped("E07000026") == (
        "E07000026 (Allerdale) was merged into E06000063 (Cumberland): a former area's value is not the new authority's"
    )
    merges = AreaMapper.from_engine(engine, allow_merges=True)  # for summing counts such as population
    assert merges.map("E07000026") == "E06000063"
    assert merges.map(" e07000004 ") == "E06000060"  # Aylesbury Vale -> Buckinghamshire, tolerant of case/space
    assert mapper.map("E10000023") == "E06000065"  # North Yorkshire county -> same-boundary unitary
    assert mapper.map("E10000002") == "E06000060"  # Buckinghamshire county -> same-boundary unitary
    assert mapper.map("E08000038") == "E08000016"  # Barnsley's 2025 code -> 2024 code
    for current in ("E06000001", "E92000001", "E12000001", "E54000063", "E10000003"):
        assert mapper.map(current) == current and mapper.why_unmapped(current) == ""

    assert mapper.map("E10000006") is None
    assert mapper.why_unmapped("E10000006") == (
        "E10000006 (Cumbria) was split between E06000063 (Cumberland) and E06000064 (Westmorland and Furness)"
    )
    assert mapper.map("E99999999") is None
    assert mapper.why_unmapped("E99999999") == "E99999999 is not an English area code the tracker knows"
    assert mapper.map("E54000052") is None and "boundary" in mapper.why_unmapped("E54000052")
    assert mapper.map(None) is None

    mapped = merges.map_series(pd.Series(["E07000026", "E10000006", None, "E06000001"], index=[5, 6, 7, 8]))
    assert list(mapped.index) == [5, 6, 7, 8]
    assert mapped[5] == "E06000063" and mapped[8] == "E06000001"
    assert mapped[[6, 7]].isna().all()

    from_frames = AreaMapper.from_frames(frames)
    codes = pd.Series(["E07000026", "E10000021", "E07000246", "E06000001"])
    assert mapper.map_series(codes).equals(from_frames.map_series(codes))


def test_code_history_rows(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(AreaCodeHistory.old_code, AreaCodeHistory.current_code)).all()
    history = pd.DataFrame(rows, columns=["old_code", "current_code"])
    successors = history.groupby("old_code")["current_code"].apply(sorted).to_dict()
    assert successors["E10000021"] == ["E06000061", "E06000062"]  # Northamptonshire: one row per successor
    assert successors["E06000028"] == ["E06000058"]  # Bournemouth -> BCP
    assert successors["E07000246"] == ["E06000066"]  # Somerset West and Taunton (2019-2023) -> Somerset
    assert set(history["old_code"]).isdisjoint(set(list_areas(engine, "ltla")["code"]))


def test_loading_twice_gives_the_same_tables(tmp_path, frames):
    engine = _new_engine(tmp_path)

    def row_counts():
        with engine.connect() as conn:
            return {t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar() for t in (Area, AreaLink, AreaCodeHistory)}

    first = load_geography(engine, frames)
    counts = row_counts()
    second = load_geography(engine, frames)
    assert row_counts() == counts
    assert counts == {"area": 34_124, "area_link": len(frames["area_link"]), "area_code_history": len(frames["area_code_history"])}
    assert first["areas_inserted"] == 34_124 and second["areas_inserted"] == second["areas_updated"] == 0
    assert {k: first[k] for k in ("england", "region", "icb", "utla", "ltla", "lsoa")} == {
        "england": 1, "region": 9, "icb": 42, "utla": 153, "ltla": 296, "lsoa": 33_755,
    }


def test_reload_keeps_areas_that_observations_use(tmp_path, frames):
    """Observations reference area.code: a reload must not fail on them, and must fix renamed areas."""
    engine = _new_engine(tmp_path)
    load_geography(engine, frames)
    with engine.begin() as conn:
        conn.execute(
            insert(Area),
            [
                {"code": "E07000026", "name": "Allerdale", "type": "ltla", "vintage": "LAD22"},  # used below
                {"code": "E07000027", "name": "Barrow-in-Furness", "type": "ltla", "vintage": "LAD22"},  # unused
            ],
        )
        conn.execute(Area.__table__.update().where(Area.code == "E06000001").values(name="wrong"))
        conn.execute(insert(Department), [{"slug": "d", "name": "D", "abbreviation": "D", "is_dhsc": False}])
        conn.execute(
            insert(Indicator),
            [dict(id="i", title="t", domain="d", unit="u", value_type="v", polarity="p", department_slug="d",
                  secondary_departments=[], producer="p", rationale="r", definition="d", licence="OGL",
                  source="s", source_id="s", area_types=[], headline_outcome=False)],
        )
        conn.execute(
            insert(Run),
            [dict(id=1, source="s", mode="offline", status="succeeded", started_at=datetime(2024, 1, 1), locations=[],
                  checksums={}, rows_read=0, rows_loaded=0, rows_rejected=0, rows_unmapped=0, rows_changed=0, problems={})],
        )
        conn.execute(
            insert(Observation),
            [dict(indicator_id="i", area_code=code, period="2020", period_start=date(2020, 1, 1),
                  period_end=date(2020, 12, 31), value=1.0, run_id=1) for code in ("E07000026", "E06000001")],
        )

    result = load_geography(engine, frames)
    assert (result["areas_updated"], result["areas_deleted"], result["stale_areas_kept"]) == (1, 1, 1)
    with engine.connect() as conn:
        names = dict(conn.execute(select(Area.code, Area.name).where(Area.code.like("E0%0000%"))).all())
    assert names["E06000001"] == "Hartlepool"
    assert "E07000026" in names and "E07000027" not in names
    assert "E07000026" not in set(list_areas(engine, "ltla")["code"])  # kept, but not offered for selection
    assert AreaMapper.from_engine(engine, allow_merges=True).map("E07000026") == "E06000063"  # still has its successor


@pytest.mark.parametrize("area_type, n", [("ltla", 296), ("utla", 153), ("icb", 42), ("region", 9)])
def test_boundaries_match_the_areas(engine, area_type, n):
    geo = boundaries(area_type)
    codes = [f["properties"]["code"] for f in geo["features"]]
    assert len(codes) == n
    assert set(codes) == set(list_areas(engine, area_type)["code"])
    assert all(f["properties"]["name"] for f in geo["features"])


def test_unknown_types_are_refused(engine):
    with pytest.raises(ValueError):
        list_areas(engine, "lsoa")
    with pytest.raises(ValueError):
        boundaries("lsoa")


def test_split_falls_back_to_lsoa_counts_when_households_are_missing():
    from tracker.geography import GEOGRAPHY_DIR, LSOA_HOUSEHOLDS, LSOA_LOOKUP, _ltla_icb_links

    lsoa = pd.read_csv(GEOGRAPHY_DIR / LSOA_LOOKUP, dtype=str)
    households = pd.read_csv(GEOGRAPHY_DIR / LSOA_HOUSEHOLDS, dtype={"LSOA21CD": str})
    hart = lsoa.loc[lsoa["LAD24CD"] == "E07000089", "LSOA21CD"]  # Hart: 45 LSOAs in Frimley, 14 in Hampshire and IoW
    households.loc[households["LSOA21CD"] == hart.iloc[0], "households"] = None
    links = _ltla_icb_links(lsoa, households).set_index(["child_code", "parent_code"])
    assert links.loc[("E07000089", "E54000034"), "share"] == pytest.approx(45 / 59)
    assert set(links.loc["E07000089", "share_basis"]) == {"lsoa_count"}
    assert set(links.loc["E06000060", "share_basis"]) == {"households"}  # other LAs are unaffected
