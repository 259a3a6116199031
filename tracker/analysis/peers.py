"""Places like this one: ONS's similar areas for local authorities, the tracker's own peer ICBs, and every figure
compared with the mean of those peers (docs/methods.md, "Compared with similar areas").

Local authorities (districts, unitaries, London boroughs, metropolitan districts and the 21 counties) take ONS's
published "similar areas" from Explore Local Statistics: 20 nearest neighbours each, on a global, economic or
demographic model, in ONS's order. ICBs have no official peer group, so the tracker builds one (peer_icbs): the
PEER_K ICBs nearest on standardised published characteristics. That grouping is the tracker's own, not an official
one, and methods say so."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd

from tracker.analysis.data import ENGLAND, Store, get_store, indicators_with_ci
from tracker.analysis.stats import NOT_COMPARED, compare
from tracker.config import PACKAGE_DATA

PLACES_DIR = PACKAGE_DATA / "places"
SIMILARITY_KINDS = ("global", "economic", "demographic")
ELS_SOURCE = ("ONS, Explore Local Statistics \"similar areas\" (nearest neighbours), cluster configuration of "
              "12 March 2026 (ONSdigital/explore-local-statistics-app)")
ELS_DATE = "2026-03-12"
ELS_URL = "https://www.ons.gov.uk/explore-local-statistics/"
TRACKER_PEERS_SOURCE = "the tracker's own peer ICBs (not an official grouping; docs/methods.md)"
PEER_K = 5  # peer ICBs per ICB: about an eighth of the 42, as small as a like-for-like group can be and still average
# ICB characteristics used for peer ICBs: column -> what it is (all from bundled published data; docs/methods.md)
ICB_PEER_INPUTS = {
    "imd_score": "IMD 2025 average score (LSOA scores weighted by Census 2021 usual residents)",
    "core20_share": "Share of residents in LSOAs in the most deprived 20% nationally (IMD 2025 deciles 1-2)",
    "share_under_16": "Share of usual residents aged 15 and under (Census 2021)",
    "share_65_plus": "Share of usual residents aged 65 and over (Census 2021)",
    "log10_density": "log10 of usual residents per km² (Census 2021 residents; area from the ONS ICB boundaries)",
}
PEER_OUT = ["peer_group", "peer_source", "n_peers", "n_peers_with_value", "peer_value", "peer_method",
            "peer_comparison", "peer_comparison_level", "peer_comparison_label", "peer_position"]
KEYS = ["indicator_id", "period", "sex"]
SIZE_DEPENDENT = ("count", "rank")
NOT_SIZED = "not compared: a count or rank depends on the area's size"


# ---------------------------------------------------------------------------------------------------------------
# ONS similar areas (local authorities)


@lru_cache(maxsize=None)
def _els_lists(kind: str) -> pd.DataFrame:
    if kind not in SIMILARITY_KINDS:
        raise ValueError(f"kind must be one of {SIMILARITY_KINDS}, not {kind!r}")
    wide = pd.read_csv(PLACES_DIR / f"els_{kind}_neighbours.csv", dtype=str, encoding="utf-8-sig")
    long = wide.melt(id_vars="AREACD", var_name="rank", value_name="peer_code").dropna()
    long["rank"] = long["rank"].astype(int)
    # ONS's 2026 lists use codes newer than the tracker's 2024 areas (Barnsley and Sheffield were re-coded in April
    # 2025 after a small boundary change): put them on the tracker's codes, as the loaders do for figures
    from tracker.geography import NEWER_CODES

    recode = {new: old for new, _name, _year, old in NEWER_CODES}
    long["AREACD"] = long["AREACD"].replace(recode)
    long["peer_code"] = long["peer_code"].replace(recode)
    return long.rename(columns={"AREACD": "area_code"}).sort_values(["area_code", "rank"]).reset_index(drop=True)


@lru_cache(maxsize=None)
def _els_names() -> pd.Series:
    names = pd.read_csv(PLACES_DIR / "els_cluster_allocation.csv", dtype=str, encoding="utf-8-sig")
    return names.set_index("AREACD")["AREANM"]


@lru_cache(maxsize=None)
def els_clusters() -> pd.DataFrame:
    """ONS's cluster of each local authority on each model (letters A-D; "[x]" = not allocated) with the cluster's
    description: area_code, area_name, kind, cluster, description."""
    alloc = pd.read_csv(PLACES_DIR / "els_cluster_allocation.csv", dtype=str, encoding="utf-8-sig")
    text = json.loads((PLACES_DIR / "els_cluster_descriptions.json").read_text(encoding="utf-8-sig"))
    out = alloc.melt(id_vars=["AREACD", "AREANM"], value_vars=["Global", "Economic", "Demographic"],
                     var_name="kind", value_name="cluster")
    out["kind"] = out["kind"].str.lower()
    out["description"] = [text.get(k, {}).get(str(c).lower()) for k, c in zip(out["kind"], out["cluster"])]
    return out.rename(columns={"AREACD": "area_code", "AREANM": "area_name"})


def similar_areas(engine, area_code: str, kind: str = "global") -> pd.DataFrame:
    """ONS's 20 similar areas of a local authority (district, unitary, borough or county) in ONS's published order:
    area_code, rank (1 = most similar), peer_code, peer_name, in_england (the tracker holds figures for English areas
    only; a Welsh or Scottish neighbour is listed but has no figures), kind, source, source_date.
    kind: "global" (default), "economic" or "demographic". KeyError for an area ONS gives no list for (England,
    regions, ICBs: use peer_icbs)."""
    store = get_store(engine)
    lists = _els_lists(kind)
    mine = lists[lists["area_code"] == area_code].copy()
    if mine.empty:
        raise KeyError(f"ONS publishes no similar areas for {area_code!r} (only for local authorities and counties)")
    names = store.areas["name"]
    mine["peer_name"] = mine["peer_code"].map(names).fillna(mine["peer_code"].map(_els_names()))
    mine["in_england"] = mine["peer_code"].str.startswith("E")
    mine["kind"], mine["source"], mine["source_date"] = kind, ELS_SOURCE, ELS_DATE
    return mine[["area_code", "rank", "peer_code", "peer_name", "in_england", "kind", "source", "source_date"]] \
        .reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# The tracker's peer ICBs


def nearest_peers(features: pd.DataFrame, k: int = PEER_K) -> pd.DataFrame:
    """For each row of `features` (index: area code; numeric columns), its k nearest other rows by Euclidean
    distance after standardising each column (mean 0, population standard deviation 1). Ties are broken by code, and
    rows are sorted by code first, so the answer does not depend on row order. Returns area_code, rank, peer_code,
    distance."""
    f = features.sort_index().astype(float)
    if f.isna().any().any():
        raise ValueError(f"missing characteristics for {list(f.index[f.isna().any(axis=1)])}")
    sd = f.std(ddof=0).replace(0, 1.0)
    z = ((f - f.mean()) / sd).to_numpy()
    dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2))
    codes = f.index.to_numpy()
    rows = []
    for i, code in enumerate(codes):
        order = sorted((d, c) for j, (d, c) in enumerate(zip(dist[i], codes)) if j != i)[:k]
        rows += [(code, r + 1, c, d) for r, (d, c) in enumerate(order)]
    return pd.DataFrame(rows, columns=["area_code", "rank", "peer_code", "distance"])


def _polygon_km2(rings) -> float:
    """Area of a polygon (outer ring minus holes) in lon/lat, on Lambert's cylindrical equal-area projection."""
    r = 6371.0088
    total = 0.0
    for n, ring in enumerate(rings):
        x = np.radians([p[0] for p in ring]) * r
        y = np.sin(np.radians([p[1] for p in ring])) * r
        a = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
        total += a if n == 0 else -a
    return total


@lru_cache(maxsize=None)
def _icb_area_km2() -> pd.Series:
    from tracker.geography import boundaries

    out = {}
    for f in boundaries("icb")["features"]:
        g = f["geometry"]
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        out[f["properties"]["code"]] = sum(_polygon_km2(p) for p in polys)
    return pd.Series(out)


def icb_characteristics(engine) -> pd.DataFrame:
    """The published characteristics peer ICBs are chosen on, one row per ICB: icb_code, icb_name, residents
    (Census 2021 usual residents), area_km2, then the ICB_PEER_INPUTS columns."""
    from tracker.analysis.inequality import lsoa_table

    store = get_store(engine)
    lsoa = lsoa_table()
    g = lsoa.assign(wscore=lsoa["imd_score"] * lsoa["residents"]).groupby("icb_code").agg(
        residents=("residents", "sum"), wscore=("wscore", "sum"), core20=("core20_residents", "sum"),
        under16=("aged_0_15", "sum"), over65=("aged_65_plus", "sum"))
    out = pd.DataFrame({"icb_code": g.index, "icb_name": g.index.map(store.areas["name"]),
                        "residents": g["residents"].to_numpy()})
    out["area_km2"] = out["icb_code"].map(_icb_area_km2()).to_numpy()
    out["imd_score"] = (g["wscore"] / g["residents"]).to_numpy()
    out["core20_share"] = (g["core20"] / g["residents"]).to_numpy()
    out["share_under_16"] = (g["under16"] / g["residents"]).to_numpy()
    out["share_65_plus"] = (g["over65"] / g["residents"]).to_numpy()
    out["log10_density"] = np.log10(out["residents"] / out["area_km2"])
    return out.sort_values("icb_code").reset_index(drop=True)


def peer_icbs(engine, icb_code: str | None = None, k: int = PEER_K) -> pd.DataFrame:
    """The tracker's peer ICBs: for each ICB (or the one given), its k nearest ICBs on the standardised
    ICB_PEER_INPUTS (icb_characteristics), by Euclidean distance. Columns area_code, area_name, rank (1 = nearest),
    peer_code, peer_name, distance (in standard deviations), source. Not an official grouping."""
    store = get_store(engine)
    table = store.derived(("peer_icbs", k), lambda: nearest_peers(
        icb_characteristics(engine).set_index("icb_code")[list(ICB_PEER_INPUTS)], k))
    if icb_code is not None:
        if icb_code not in set(table["area_code"]):
            raise KeyError(f"{icb_code!r} is not an ICB code")
        table = table[table["area_code"] == icb_code]
    names = store.areas["name"]
    out = table.assign(area_name=table["area_code"].map(names), peer_name=table["peer_code"].map(names),
                       source=TRACKER_PEERS_SOURCE)
    return out[["area_code", "area_name", "rank", "peer_code", "peer_name", "distance", "source"]].reset_index(drop=True)


def peer_groups(engine, kind: str = "global") -> pd.DataFrame:
    """Every place's peers: area_code, rank, peer_code, peer_group ("ONS similar areas (global)" or "Tracker peer
    ICBs"). Local authorities and counties from ONS (kind), ICBs from peer_icbs."""
    store = get_store(engine)

    def build():
        las = _els_lists(kind)
        las = las[las["area_code"].isin(store.areas.index)].assign(peer_group=f"ONS similar areas ({kind})")
        icbs = peer_icbs(engine)[["area_code", "rank", "peer_code"]].assign(peer_group="Tracker peer ICBs")
        return pd.concat([las, icbs], ignore_index=True)
    return store.derived(("peer_groups", kind), build)


# ---------------------------------------------------------------------------------------------------------------
# Compared with similar areas


def _peer_values(store: Store, peer_codes, key: pd.DataFrame) -> pd.DataFrame:
    """The figures of these peers (LA rows as judged, ICB figures as built) for the indicators and periods of `key`."""
    from tracker.analysis.place import area_rows

    cols = ["area_code", *KEYS, "value", "count", "denominator"]
    series = key[["indicator_id", "period"]].drop_duplicates()
    rows = area_rows(store, peer_codes, series["indicator_id"].unique(), columns=cols,
                     periods=series.itertuples(index=False, name=None))[cols]
    return rows[rows["value"].notna()].rename(columns={"area_code": "peer_code"})


def warm_peers(engine) -> None:
    """Build (and memoise in the Store, so warm() saves them) the peer groups of every kind, peer ICBs included.
    The peers' figures are read from the area rows (tracker.analysis.place.area_rows) when they are needed."""
    for kind in SIMILARITY_KINDS:
        peer_groups(engine, kind)


def with_peers(engine, rows: pd.DataFrame, kind: str = "global") -> pd.DataFrame:
    """`rows` (area_code, indicator_id, period, sex, value, lci95, uci95, lci998, uci998) with the PEER_OUT columns:
    peer_group, peer_source, n_peers (in the list), n_peers_with_value (same indicator, period and sex),
    peer_value (the pooled rate -- counts and denominators summed -- where every peer's figure is its count over its
    denominator, else the mean of the peers' values; only when at least half the list has a value; never for counts
    and ranks, which depend on an area's size), peer_method,
    peer_comparison/_level/_label (the Fingertips test used for England, against the peer value; "Not compared"
    for an indicator without confidence intervals) and peer_position ("3 of 18": the place's position among itself
    and the peers with a value, 1 = best, or 1 = highest for an indicator with no polarity)."""
    store = get_store(engine)
    out = rows.copy()
    for c in PEER_OUT:
        out[c] = None
    if out.empty:
        return out
    groups = peer_groups(engine, kind)
    n_list = groups.groupby("area_code").size()
    out["n_peers"] = out["area_code"].map(n_list).fillna(0).astype(int)
    label = groups.drop_duplicates("area_code").set_index("area_code")["peer_group"]
    out["peer_group"] = out["area_code"].map(label)
    out["peer_source"] = np.where(out["peer_group"] == "Tracker peer ICBs", TRACKER_PEERS_SOURCE,
                                  np.where(out["peer_group"].notna(), ELS_SOURCE, None))
    key = out[["area_code", *KEYS]].drop_duplicates()
    pairs = key.merge(groups[["area_code", "peer_code"]], on="area_code")
    pairs = pairs.merge(_peer_values(store, pairs["peer_code"].unique(), key), on=["peer_code", *KEYS])
    ind = store.indicators
    # a count (or a rank) depends on the area's size: its mean over other areas is no benchmark
    sized = out["indicator_id"].map(ind["value_type"]).isin(SIZE_DEPENDENT).to_numpy()
    pairs = pairs[~pairs["indicator_id"].map(ind["value_type"]).isin(SIZE_DEPENDENT)]
    mult = pairs["indicator_id"].map(ind["multiplier"]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = pairs["count"] / pairs["denominator"] * mult
    pairs["poolable"] = (pairs["indicator_id"].map(ind["value_type"]).isin(["proportion", "rate"])
                         & pairs["denominator"].gt(0) & ((pairs["value"] - implied).abs() <= 0.05 + 0.005 * pairs["value"].abs()))
    g = pairs.groupby(["area_code", *KEYS], sort=False).agg(
        n=("value", "size"), mean=("value", "mean"), count=("count", "sum"), denominator=("denominator", "sum"),
        poolable=("poolable", "all"))
    g["mult"] = g.index.get_level_values("indicator_id").map(ind["multiplier"]).astype(float)
    pooled = g["poolable"] & g["denominator"].gt(0)
    g["peer_value"] = np.where(pooled, g["count"] / g["denominator"] * g["mult"], g["mean"])
    g["peer_method"] = np.where(pooled, "pooled rate (peers' counts and denominators summed)", "mean of peers' values")
    idx = pd.MultiIndex.from_frame(out[["area_code", *KEYS]])
    have = g.reindex(idx)
    out["n_peers_with_value"] = have["n"].fillna(0).astype(int).to_numpy()
    enough = (out["n_peers_with_value"] >= np.ceil(out["n_peers"] / 2)) & (out["n_peers"] > 0)
    out["peer_value"] = np.where(enough, have["peer_value"].to_numpy(), np.nan)
    out["peer_method"] = np.where(enough, have["peer_method"].to_numpy(),
                                  np.where(sized & (out["n_peers"] > 0), NOT_SIZED, None))
    polarity = out["indicator_id"].map(ind["polarity"])
    res = compare(out["value"], out["lci95"], out["uci95"], out["peer_value"], polarity,
                  out["lci998"] if "lci998" in out else None, out["uci998"] if "uci998" in out else None)
    no_ci = ~out["indicator_id"].isin(indicators_with_ci(store)).to_numpy()
    out["peer_comparison"] = np.where(no_ci, NOT_COMPARED, res["comparison"].to_numpy())
    out["peer_comparison_level"] = np.where(no_ci, None, res["level"].to_numpy())
    out["peer_comparison_label"] = np.where(no_ci, NOT_COMPARED, res["label"].to_numpy())
    out["peer_position"] = _positions(out, pairs, ind["polarity"], enough)
    return out


def _positions(out: pd.DataFrame, pairs: pd.DataFrame, polarity_of: pd.Series, enough: pd.Series) -> list:
    """'k of n': the place's rank among itself and its peers with a value (1 = best; 1 = highest without polarity)."""
    own = out.set_index(["area_code", *KEYS])["value"]
    own = own[~own.index.duplicated()]
    p = pairs.assign(own=own.reindex(pd.MultiIndex.from_frame(pairs[["area_code", *KEYS]])).to_numpy())
    sign = np.where(p["indicator_id"].map(polarity_of) == "lower_is_better", -1.0, 1.0)
    p["ahead"] = (sign * p["value"]) > (sign * p["own"])
    ahead = p.groupby(["area_code", *KEYS])["ahead"].sum()
    idx = pd.MultiIndex.from_frame(out[["area_code", *KEYS]])
    k = ahead.reindex(idx).fillna(0).astype(int).to_numpy() + 1
    return [f"{a} of {n + 1}" if ok and v == v else None
            for a, n, ok, v in zip(k, out["n_peers_with_value"], enough, out["value"])]


def peer_benchmark(engine, area_codes, indicator_ids=None, kind: str = "global", all_periods: bool = False,
                   sex: str | None = None) -> pd.DataFrame:
    """latest_observations (same arguments) with the comparison with similar areas (with_peers' columns) beside
    England's."""
    from tracker.analysis.place import latest_observations

    return with_peers(engine, latest_observations(engine, area_codes, indicator_ids, all_periods, sex), kind)


def place_peer_profile(engine, area_code: str, kind: str = "global", sex: str | None = None) -> pd.DataFrame:
    """place_profile (against England) with with_peers' columns. A district's row that shows its county's figure is
    not compared with the district's similar areas (peer columns empty, "Not compared")."""
    from tracker.analysis.place import place_profile

    out = with_peers(engine, place_profile(engine, area_code, "england", sex), kind)
    county = (out["value_from"] != out["area_code"]).to_numpy()
    out.loc[county, ["peer_value", "peer_method", "peer_comparison_level", "peer_position"]] = None
    out.loc[county, ["peer_comparison", "peer_comparison_label"]] = NOT_COMPARED
    out["peer_value"] = out["peer_value"].astype(float)
    return out


def place_departments_against_peers(engine, area_code: str, outcome_id: str, sex: str | None = None,
                                    kind: str = "global"):
    """place_departments with the gap measured from the place's similar areas instead of England: the same
    supporting indicators, the same yardstick (SDs of local-authority values) and the same score, ranked again. A
    district's county figures are not measured against its peers (no gap). ValueError for England and regions."""
    from tracker.analysis.dependence import PlaceDepartments, place_departments, ranking_inputs
    from tracker.analysis.place import latest_observations
    from tracker.analysis.ranking import gaps, rank_departments
    from tracker.analysis.stats import POLARITY_SIGN

    store = get_store(engine)
    if area_code == ENGLAND or store.areas.at[area_code, "type"] == "region":
        raise ValueError("England and regions have no similar areas to rank against")
    base = place_departments(engine, area_code, outcome_id, sex)
    ev = base.evidence.copy()
    if ev.empty:
        return base
    obs = latest_observations(engine, [area_code], ev["indicator_id"].unique().tolist(), sex="all")
    judged = with_peers(engine, obs, kind)
    cols = ["indicator_id", "sex", "period", "peer_value", "peer_comparison_label", "peer_position"]
    ev = ev.drop(columns=["department_slug", "group", "rank", "contribution"], errors="ignore").merge(
        judged[cols], on=["indicator_id", "sex", "period"], how="left")
    sign = ev["indicator_id"].map(store.indicators["polarity"]).map(POLARITY_SIGN)
    ev["gap"] = np.where(ev["value_from"] == area_code, gaps(ev["value"], ev["peer_value"], ev["sd"], sign), np.nan)
    _, meta, groups, boot = ranking_inputs(store, outcome_id, base.sex)
    ranking, evidence = rank_departments(ev, meta, groups, boot)
    share = float(ranking["share_outside_dhsc"].iloc[0]) if len(ranking) else float("nan")
    return PlaceDepartments(area_code, outcome_id, base.sex, ranking, evidence, share)
