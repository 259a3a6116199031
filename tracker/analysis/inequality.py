"""Who inside a place carries the burden: Core20 (residents in the most deprived fifth of England's LSOAs), the
place's LSOAs by national IMD quintile, and the gap between its most and least deprived fifth on each LSOA-level
determinant, with the department that owns it (docs/methods.md, "Core20 and inequality inside a place").

Everything here is built from bundled LSOA files (read once per process): IMD 2025 (MHCLG File 7), Census 2021
usual residents by LSOA (ONS), DESNZ fuel poverty 2021 by LSOA, the ONS LSOA21 lookups and the LSOA 2021 BSC
boundaries split by ICB (tracker/data/places/ATTRIBUTION.md)."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache

import numpy as np
import pandas as pd

from tracker.analysis.data import ENGLAND, get_store
from tracker.config import GEOGRAPHY_DIR, PACKAGE_DATA, SNAPSHOT_DIR

PLACES_DIR = PACKAGE_DATA / "places"
RESIDENTS_FILE = PLACES_DIR / "census2021_usual_residents_age6_lsoa21.csv.gz"
IMD_FILE = SNAPSHOT_DIR / "imd" / "imd2025_lsoa21_scores_ranks_deciles.csv.gz"
FUEL_FILE = SNAPSHOT_DIR / "fuel_poverty" / "desnz_sub_regional_fuel_poverty_2021_lsoa21.csv.gz"
RESIDENTS_NOTE = "Census 2021 usual residents by LSOA (ONS), not the IoD 2025 mid-2022 denominators"
CORE20_NOTE = ("Core20: LSOAs in the most deprived 20% of England's LSOAs on the IMD 2025 (deciles 1-2, MHCLG); "
               "residents: " + RESIDENTS_NOTE)
QUINTILES = {1: "1 most deprived", 2: "2", 3: "3", 4: "4", 5: "5 least deprived"}
# LSOA-level determinant -> (title, catalog indicator whose department owns it, unit)
MEASURES = {
    "Income_score": ("Income deprivation (IoD 2025 income score)", "iod-income-average-score", "score (rate)"),
    "Employment_score": ("Employment deprivation (IoD 2025 employment score)", "iod-employment-average-score", "score (rate)"),
    "Education_score": ("Education, skills and training deprivation (IoD 2025 score)", "iod-education-average-score", "score"),
    "Health_score": ("Health deprivation and disability (IoD 2025 score)", "iod-health-average-score", "score"),
    "Crime_score": ("Crime (IoD 2025 score)", "iod-crime-average-score", "score"),
    "Housing_and_Services_score": ("Barriers to housing and services (IoD 2025 score)", "iod-barriers-average-score", "score"),
    "Environment_score": ("Living environment deprivation (IoD 2025 score)", "iod-environment-average-score", "score"),
    "fuel_poverty": ("Households in fuel poverty (LILEE, DESNZ 2021)", "fuel-poverty-lilee", "% of households"),
}
AGES = {"Aged 15 years and under": "aged_0_15", "Aged 16 to 24 years": "aged_16_24", "Aged 25 to 34 years": "aged_25_34",
        "Aged 35 to 49 years": "aged_35_49", "Aged 50 to 64 years": "aged_50_64", "Aged 65 years and over": "aged_65_plus"}


@lru_cache(maxsize=1)
def lsoa_table() -> pd.DataFrame:
    """One row per LSOA 2021 in England: lsoa_code, lsoa_name, ltla_code, icb_code, utla_code, region_code,
    residents (and the six Census age groups), imd_decile, imd_quintile, imd_score, core20 (deciles 1-2),
    core20_residents, the seven IoD domain scores, households and fuel_poor_households."""
    look = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz", dtype=str,
                       usecols=["LSOA21CD", "LSOA21NM", "LAD24CD", "ICB24CD"])
    utla = pd.read_csv(GEOGRAPHY_DIR / "lad23_utla23.csv", dtype=str).set_index("LAD23CD")["UTLA23CD"]
    region = pd.read_csv(GEOGRAPHY_DIR / "lad24_rgn24.csv", dtype=str).set_index("LAD24CD")["RGN24CD"]
    res = pd.read_csv(RESIDENTS_FILE, dtype={"LSOA21CD": str}).drop(columns="LSOA21NM").rename(columns=AGES)
    res["residents"] = res[list(AGES.values())].sum(axis=1)
    imd = pd.read_csv(IMD_FILE, usecols=["lsoa21_code", "IMD_decile", "IMD_score", *[m for m in MEASURES if m.endswith("_score") and m != "fuel_poverty"]])
    fuel = pd.read_csv(FUEL_FILE, usecols=["LSOA21CD", "households", "fuel_poor_households"])
    t = (look.rename(columns={"LSOA21CD": "lsoa_code", "LSOA21NM": "lsoa_name", "LAD24CD": "ltla_code", "ICB24CD": "icb_code"})
         .merge(res.rename(columns={"LSOA21CD": "lsoa_code"}), on="lsoa_code", how="left", validate="1:1")
         .merge(imd.rename(columns={"lsoa21_code": "lsoa_code"}), on="lsoa_code", how="left", validate="1:1")
         .merge(fuel.rename(columns={"LSOA21CD": "lsoa_code"}), on="lsoa_code", how="left", validate="1:1"))
    t["utla_code"] = t["ltla_code"].map(utla).fillna(t["ltla_code"])
    t["region_code"] = t["ltla_code"].map(region)
    t["imd_decile"] = t["IMD_decile"].astype(int)
    t["imd_quintile"] = (t["imd_decile"] + 1) // 2
    t["imd_score"] = t.pop("IMD_score")
    t["core20"] = t["imd_decile"] <= 2
    t["core20_residents"] = np.where(t["core20"], t["residents"], 0)
    return t.drop(columns="IMD_decile")


def _lsoas_of(engine, area_code: str) -> tuple[pd.DataFrame, str]:
    store = get_store(engine)
    if area_code not in store.areas.index:
        raise KeyError(f"{area_code!r} is not an area code the tracker knows")
    atype = store.areas.at[area_code, "type"]
    t = lsoa_table()
    column = {"england": None, "region": "region_code", "icb": "icb_code", "utla": "utla_code", "ltla": "ltla_code"}[atype]
    return (t if column is None else t[t[column] == area_code]), atype


def core20(engine, area_codes=None) -> pd.DataFrame:
    """Core20 for England, every region, ICB, county and local authority (or the codes given): area_code, area_name,
    area_type, residents, core20_residents, core20_share (of residents), n_lsoas, n_core20_lsoas, note.
    A unitary is listed once (as a local authority)."""
    store = get_store(engine)

    def build():
        t = lsoa_table()
        parts = [t.assign(area_code=ENGLAND)]
        for column in ("region_code", "icb_code", "ltla_code"):
            parts.append(t.assign(area_code=t[column]))
        counties = t[t["utla_code"].str.startswith("E10")]
        parts.append(counties.assign(area_code=counties["utla_code"]))
        g = pd.concat(parts, ignore_index=True).groupby("area_code").agg(
            residents=("residents", "sum"), core20_residents=("core20_residents", "sum"),
            n_lsoas=("lsoa_code", "size"), n_core20_lsoas=("core20", "sum")).reset_index()
        g["core20_share"] = g["core20_residents"] / g["residents"]
        g["area_name"] = g["area_code"].map(store.areas["name"])
        g["area_type"] = g["area_code"].map(store.areas["type"])
        g["note"] = CORE20_NOTE
        order = g["area_type"].map({"england": 0, "region": 1, "icb": 2, "utla": 3, "ltla": 4})
        g = g.assign(o=order).sort_values(["o", "area_code"]).drop(columns="o")
        return g[["area_code", "area_name", "area_type", "residents", "core20_residents", "core20_share", "n_lsoas",
                  "n_core20_lsoas", "note"]].reset_index(drop=True)
    out = store.derived(("core20",), build)
    if area_codes is not None:
        codes = [area_codes] if isinstance(area_codes, str) else list(area_codes)
        missing = [c for c in codes if c not in set(out["area_code"])]
        if missing:
            raise KeyError(f"no Core20 figure for {missing} (England, regions, ICBs, counties and local authorities)")
        out = out.set_index("area_code").loc[codes].reset_index()
    return out.copy()


def lsoa_deprivation(engine, area_code: str) -> pd.DataFrame:
    """The place's LSOAs: lsoa_code, lsoa_name, ltla_code, imd_decile, imd_quintile (national: 1 = most deprived
    fifth of England's LSOAs), quintile_label, core20, residents, imd_score."""
    t, _ = _lsoas_of(engine, area_code)
    out = t[["lsoa_code", "lsoa_name", "ltla_code", "imd_decile", "imd_quintile", "core20", "residents", "imd_score"]]
    out = out.assign(quintile_label=out["imd_quintile"].map(QUINTILES))
    return out.sort_values("lsoa_code").reset_index(drop=True)


def quintile_breakdown(engine, area_code: str) -> pd.DataFrame:
    """The place's LSOAs and residents by national IMD 2025 quintile: imd_quintile (1 = most deprived),
    quintile_label, n_lsoas, residents, share_of_residents, share_of_lsoas. All five quintiles, zero where none."""
    t, _ = _lsoas_of(engine, area_code)
    g = t.groupby("imd_quintile").agg(n_lsoas=("lsoa_code", "size"), residents=("residents", "sum"))
    g = g.reindex(range(1, 6), fill_value=0)
    g["share_of_residents"] = g["residents"] / g["residents"].sum()
    g["share_of_lsoas"] = g["n_lsoas"] / g["n_lsoas"].sum()
    g = g.reset_index().rename(columns={"index": "imd_quintile"})
    g.insert(1, "quintile_label", g["imd_quintile"].map(QUINTILES))
    return g


def inequality_gaps(engine, area_code: str) -> pd.DataFrame:
    """Each LSOA-level determinant for the place by national IMD quintile of its LSOAs, and the gap between its most
    and least deprived fifth: measure, title, indicator_id (the catalog indicator that carries the department),
    department_abbr, department_name, is_dhsc, unit, q1..q5 (IoD scores: mean of LSOA scores weighted by Census 2021
    residents; fuel poverty: fuel-poor households over households, %), gap (q1 - q5; higher = more deprived in the
    most deprived fifth), n_lsoas_q1, n_lsoas_q5, note. gap is empty when the place has no LSOA in one of the two."""
    store = get_store(engine)
    t, _ = _lsoas_of(engine, area_code)
    rows = []
    by_q = t.groupby("imd_quintile")
    n = by_q.size().reindex(range(1, 6), fill_value=0)
    for measure, (title, indicator_id, unit) in MEASURES.items():
        if measure == "fuel_poverty":
            s = by_q.apply(lambda f: 100 * f["fuel_poor_households"].sum() / f["households"].sum()
                           if f["households"].sum() > 0 else np.nan, include_groups=False)
        else:
            s = by_q.apply(lambda f, m=measure: np.average(f[m], weights=f["residents"]) if f["residents"].sum() > 0
                           else np.nan, include_groups=False)
        s = s.reindex(range(1, 6))
        meta = store.indicators.loc[indicator_id] if indicator_id in store.indicators.index else None
        rows.append({
            "measure": measure, "title": title, "indicator_id": indicator_id,
            "department_abbr": None if meta is None else meta["department_abbr"],
            "department_name": None if meta is None else meta["department_name"],
            "is_dhsc": None if meta is None else bool(meta["is_dhsc"]), "unit": unit,
            **{f"q{q}": float(s[q]) for q in range(1, 6)},
            "gap": float(s[1] - s[5]), "n_lsoas_q1": int(n[1]), "n_lsoas_q5": int(n[5]),
            "note": None if n[1] and n[5] else "no LSOA in the most or the least deprived national fifth: no gap",
        })
    return pd.DataFrame(rows)


def _icb_shapes(icb_code: str) -> dict:
    """One ICB's bundled LSOA boundaries, read afresh (10-20 ms): the dashboard keeps the map it draws from them
    (tracker.app.similar), and a cache of the parsed files held 2-4 MB of Python objects per ICB in every process."""
    path = PLACES_DIR / "lsoa21_bsc" / f"{icb_code}.geojson.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def lsoa_boundaries(engine, area_code: str) -> dict:
    """GeoJSON FeatureCollection of the place's LSOAs (ONS LSOA 2021 BSC boundaries), each feature with id and
    properties LSOA21CD, LSOA21NM, imd_decile, imd_quintile. Reads only the files of the ICBs the place's LSOAs lie
    in, so a local authority or an ICB loads a few hundred kilobytes, not England's 17 MB. ValueError for England
    and regions (too many LSOAs for one page)."""
    t, atype = _lsoas_of(engine, area_code)
    if atype in ("england", "region"):
        raise ValueError("LSOA maps are drawn for ICBs, counties and local authorities only")
    # plain dicts: a pandas lookup per LSOA cost ~0.3 s for an ICB's 1,500-2,000 LSOAs
    imd = dict(zip(t["lsoa_code"], zip(t["imd_decile"].tolist(), t["imd_quintile"].tolist())))
    features = []
    for icb in sorted(t["icb_code"].unique()):
        for f in _icb_shapes(icb)["features"]:
            code = f["properties"]["LSOA21CD"]
            if code in imd:
                decile, quintile = imd[code]
                features.append({"type": "Feature", "id": code, "geometry": f["geometry"], "properties": {
                    "LSOA21CD": code, "LSOA21NM": f["properties"].get("LSOA21NM"),
                    "imd_decile": int(decile), "imd_quintile": int(quintile)}})
    return {"type": "FeatureCollection", "features": features}
