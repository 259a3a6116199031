"""The tracker's geography: English areas, how they nest, old codes and boundaries.

Everything is read from the bundled files in tracker.config.GEOGRAPHY_DIR (see ATTRIBUTION.md there); nothing
reads the network or the shared/ folder at run time.

Area types (Area.type):
  england  E92000001                                       vintage CTRY24
  region   9 E12 regions (LAD to region, Dec 2024)          vintage RGN24
  icb      42 E54 ICBs (April 2024 codes, ODS code in nhs_code)  vintage ICB24
  utla     the 21 E10 two-tier counties only                vintage UTLA23
  ltla     296 LAD24 districts, unitaries, mets, London boroughs  vintage LAD24
  lsoa     33,755 LSOA 2021                                 vintage LSOA21

A unitary authority (E06), metropolitan district (E08) or London borough (E09) is both a lower- and an upper-tier
authority with one code. It has ONE Area row, typed "ltla"; upper-tier membership lives in AreaLink rows
(child ltla -> parent utla, parent_type "utla"), with a self-link for those whose UTLA code is their own code.
So the 153 selectable UTLAs are the distinct parents of the "utla" links: use list_areas(engine, "utla").

Links (AreaLink, child -> parent): ltla->utla, ltla->region, utla(E10)->region, region->england, icb->england,
ltla->icb, lsoa->ltla, lsoa->icb. A unitary's region link is its ltla->region link (one row serves both tiers).
13 LAs are split between ICBs; their ltla->icb share is the LA's households in that ICB over the LA's households
(DESNZ 2021 households per LSOA, share_basis "households"), falling back to LSOA counts ("lsoa_count") if any LSOA
of the LA lacks households. Every other link has share 1.0, share_basis "whole".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, bindparam, delete, select

from db.columns import per_distinct
from db.load import insert_rows
from db.models import Area, AreaCodeHistory, AreaLink, Observation
from tracker.config import GEOGRAPHY_DIR

ENGLAND_CODE = "E92000001"
LISTABLE_TYPES = ("england", "region", "icb", "utla", "ltla")

LSOA_LOOKUP = "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz"
LAD_UTLA = "lad23_utla23.csv"
LAD_REGION = "lad24_rgn24.csv"
LAD_HISTORY = "lad_code_history_2016_2024.csv"
LSOA_HOUSEHOLDS = "lsoa21_households_2021.csv"

# area type -> (GeoJSON file, code property, name property)
BOUNDARY_FILES: dict[str, tuple[str, str, str]] = {
    "ltla": ("lad24_england_bsc.geojson", "LAD24CD", "LAD24NM"),
    "utla": ("ctyua23_england_bsc.geojson", "CTYUA23CD", "CTYUA23NM"),
    "icb": ("icb23_england_bsc.geojson", "ICB23CD", "ICB23NM"),
    "region": ("rgn23_england_buc.geojson", "RGN23CD", "RGN23NM"),
}

# Former county (E10) codes. The LAD code-history file covers districts only, so these are written out here.
# A county whose districts all went into one unitary maps to it. A county whose districts went to several current
# areas gets one row per successor, and AreaMapper then refuses to map it (its figures cannot be given to one area).
# (old_code, old_name, last_year, successors)
FORMER_COUNTIES: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("E10000002", "Buckinghamshire", 2019, ("E06000060",)),  # 4 districts -> Buckinghamshire UA, April 2020
    ("E10000023", "North Yorkshire", 2022, ("E06000065",)),  # 7 districts -> North Yorkshire UA, April 2023
    ("E10000027", "Somerset", 2022, ("E06000066",)),  # its districts -> Somerset UA, April 2023
    # Dorset county's Christchurch district (E07000048) went to BCP (E06000058), the rest to Dorset UA
    # (E06000059) in April 2019: the old county does not fit in one current area, so it is treated as split.
    ("E10000009", "Dorset", 2018, ("E06000058", "E06000059")),
    ("E10000006", "Cumbria", 2022, ("E06000063", "E06000064")),  # -> Cumberland + Westmorland and Furness
    ("E10000021", "Northamptonshire", 2020, ("E06000061", "E06000062")),  # -> North + West Northamptonshire
]

# Codes newer than the tracker's 2024 vintage. In April 2025 a small Barnsley/Sheffield boundary change gave both
# authorities new codes; the areas are almost identical, so 2025-coded data are placed on the 2024 codes.
# last_year here is the first year the newer code is used.
NEWER_CODES: list[tuple[str, str, int, str]] = [
    # 2013-14 recodes (same areas, or minor boundary changes) before the 2016 start of the code-history file; the
    # ELS files name these successors in their "Obsolete code" notes
    ("E06000048", "Northumberland", 2013, "E06000057"),
    ("E08000020", "Gateshead", 2013, "E08000037"),
    ("E07000097", "East Hertfordshire", 2013, "E07000242"),
    ("E07000100", "St Albans", 2014, "E07000240"),
    ("E07000101", "Stevenage", 2013, "E07000243"),
    ("E07000104", "Welwyn Hatfield", 2014, "E07000241"),
    ("E08000038", "Barnsley", 2025, "E08000016"),
    ("E08000039", "Sheffield", 2025, "E08000019"),
]

# Codes the tracker recognises but deliberately does not map, with the reason shown by AreaMapper.why_unmapped.
# The 2022 ICB codes: Surrey Heartlands and Sussex changed boundary in April 2023 (the ONS lookups put 4 LSOA 2011s of
# Chichester in Surrey Heartlands in July 2022 and all of Chichester in Sussex in April 2024), which is why they were
# re-coded. A value for the old ICB is not a value for the new one, so it is not carried over.
KNOWN_UNMAPPED: dict[str, str] = {
    "E54000052": "E54000052 (NHS Surrey Heartlands ICB, 2022 boundary) changed boundary in April 2023 and became "
    "E54000063; figures on the old boundary are not comparable, so they are not mapped",
    "E54000053": "E54000053 (NHS Sussex ICB, 2022 boundary) changed boundary in April 2023 and became "
    "E54000064; figures on the old boundary are not comparable, so they are not mapped",
}


def _read(name: str, **kwargs) -> pd.DataFrame:
    return pd.read_csv(GEOGRAPHY_DIR / name, dtype=str, **kwargs)


def _area_frame(rows: pd.DataFrame, area_type: str, vintage: str, nhs_code: pd.Series | None = None) -> pd.DataFrame:
    out = pd.DataFrame({"code": rows.iloc[:, 0].to_numpy(), "name": rows.iloc[:, 1].to_numpy()})
    out["type"] = area_type
    out["vintage"] = vintage
    out["nhs_code"] = None if nhs_code is None else nhs_code.to_numpy()
    return out


def _links(child: pd.Series, parent: pd.Series, parent_type: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "child_code": child.to_numpy(),
            "parent_code": parent.to_numpy(),
            "parent_type": parent_type,
            "share": 1.0,
            "share_basis": "whole",
        }
    )


def _ltla_icb_links(lsoa: pd.DataFrame, households: pd.DataFrame | None = None) -> pd.DataFrame:
    """ltla -> icb links; an LA split between ICBs is weighted by its households in each ICB.
    households (LSOA21CD, households) defaults to the bundled DESNZ 2021 file."""
    hh = _read(LSOA_HOUSEHOLDS) if households is None else households[["LSOA21CD", "households"]].copy()
    hh["households"] = pd.to_numeric(hh["households"], errors="coerce")
    df = lsoa[["LSOA21CD", "LAD24CD", "ICB24CD"]].merge(hh, on="LSOA21CD", how="left")
    df["n"] = 1
    # An LA with any LSOA lacking households falls back to LSOA counts, so its shares are on one basis.
    missing = df.groupby("LAD24CD")["households"].apply(lambda s: s.isna().any())
    pairs = df.groupby(["LAD24CD", "ICB24CD"], as_index=False).agg(households=("households", "sum"), n=("n", "sum"))
    pairs["basis"] = pairs["LAD24CD"].map(missing).map({True: "lsoa_count", False: "households"})
    weight = pairs["households"].where(pairs["basis"] == "households", pairs["n"]).astype(float)
    pairs["share"] = weight / weight.groupby(pairs["LAD24CD"]).transform("sum")
    n_icbs = pairs.groupby("LAD24CD")["ICB24CD"].transform("size")
    whole = n_icbs == 1
    pairs.loc[whole, "share"] = 1.0
    pairs.loc[whole, "basis"] = "whole"
    return pd.DataFrame(
        {
            "child_code": pairs["LAD24CD"].to_numpy(),
            "parent_code": pairs["ICB24CD"].to_numpy(),
            "parent_type": "icb",
            "share": pairs["share"].to_numpy(dtype=float),
            "share_basis": pairs["basis"].to_numpy(),
        }
    )


def _code_history(current_ltla: set[str]) -> pd.DataFrame:
    """Old English LA codes -> current 2024 codes, from the ONS code history (2016-2024) plus the lists above."""
    hist = _read(LAD_HISTORY)
    hist = hist[hist["ltla24_code"].str.startswith("E")]
    rows = []
    for yy in range(16, 25):
        part = hist[[f"ltla{yy}_code", f"ltla{yy}_name", "ltla24_code"]].copy()
        part.columns = ["old_code", "old_name", "current_code"]
        part["last_year"] = 2000 + yy
        rows.append(part)
    long = pd.concat(rows, ignore_index=True)
    long = long[long["old_code"] != long["current_code"]]
    long = long[~long["old_code"].isin(current_ltla)]  # a current code is never "old"
    # One row per (old, current): the name and year the old code was last used.
    long = long.sort_values("last_year").drop_duplicates(["old_code", "current_code"], keep="last")
    extra = [
        {"old_code": c, "current_code": s, "old_name": n, "last_year": y}
        for c, n, y, successors in FORMER_COUNTIES
        for s in successors
    ] + [{"old_code": c, "current_code": s, "old_name": n, "last_year": y} for c, n, y, s in NEWER_CODES]
    out = pd.concat([long[["old_code", "current_code", "old_name", "last_year"]], pd.DataFrame(extra)], ignore_index=True)
    out["last_year"] = out["last_year"].astype(int)
    return out.sort_values(["old_code", "current_code"]).reset_index(drop=True)


def build_geography() -> dict[str, pd.DataFrame]:
    """The area, area_link and area_code_history tables as DataFrames (columns as in db.models)."""
    lsoa = _read(LSOA_LOOKUP)
    utla = _read(LAD_UTLA)
    utla = utla[utla["LAD23CD"].str.startswith("E")]
    rgn = _read(LAD_REGION)

    ltla = lsoa[["LAD24CD", "LAD24NM"]].drop_duplicates()
    icb = lsoa[["ICB24CD", "ICB24NM", "ICB24CDH"]].drop_duplicates()
    regions = rgn[["RGN24CD", "RGN24NM"]].drop_duplicates()
    counties = utla.loc[utla["UTLA23CD"].str.startswith("E10"), ["UTLA23CD", "UTLA23NM"]].drop_duplicates()
    area = pd.concat(
        [
            pd.DataFrame([{"code": ENGLAND_CODE, "name": "England", "type": "england", "vintage": "CTRY24", "nhs_code": None}]),
            _area_frame(regions, "region", "RGN24"),
            _area_frame(icb, "icb", "ICB24", icb["ICB24CDH"]),
            _area_frame(counties, "utla", "UTLA23"),
            _area_frame(ltla, "ltla", "LAD24"),
            _area_frame(lsoa[["LSOA21CD", "LSOA21NM"]], "lsoa", "LSOA21"),
        ],
        ignore_index=True,
    )

    county_region = utla.merge(rgn, left_on="LAD23CD", right_on="LAD24CD")[["UTLA23CD", "RGN24CD"]]
    county_region = county_region[county_region["UTLA23CD"].str.startswith("E10")].drop_duplicates()
    links = pd.concat(
        [
            _links(utla["LAD23CD"], utla["UTLA23CD"], "utla"),  # includes the unitary self-links
            _links(rgn["LAD24CD"], rgn["RGN24CD"], "region"),
            _links(county_region["UTLA23CD"], county_region["RGN24CD"], "region"),
            _links(regions["RGN24CD"], pd.Series([ENGLAND_CODE] * len(regions)), "england"),
            _links(icb["ICB24CD"], pd.Series([ENGLAND_CODE] * len(icb)), "england"),
            _ltla_icb_links(lsoa),
            _links(lsoa["LSOA21CD"], lsoa["LAD24CD"], "ltla"),
            _links(lsoa["LSOA21CD"], lsoa["ICB24CD"], "icb"),
        ],
        ignore_index=True,
    )
    history = _code_history(set(ltla["LAD24CD"]))

    # Cheap consistency checks: a bad bundled file should fail here, not as a foreign-key error mid-load.
    codes = set(area["code"].tolist())  # (tolist: iterating pandas' Arrow-backed text is ten times slower)
    assert area["code"].is_unique, "duplicate area codes"
    assert set(links["child_code"].tolist()) | set(links["parent_code"].tolist()) <= codes, "link to unknown area"
    assert not links.duplicated(["child_code", "parent_code"]).any(), "duplicate area links"
    assert set(history["current_code"].tolist()) <= codes, "code history points at an unknown area"
    assert county_region["UTLA23CD"].is_unique, "a county in two regions"
    icb_shares = links[(links["parent_type"] == "icb") & links["child_code"].isin(ltla["LAD24CD"])]
    assert (icb_shares.groupby("child_code")["share"].sum() - 1).abs().max() < 1e-9, "LA shares do not sum to 1"
    return {"area": area, "area_link": links, "area_code_history": history}


class AreaMapper:
    """Maps area codes found in source data to the tracker's current codes.

    map() returns the code itself when it is current, the current code of an old code that was recoded with the
    same area (a county that became a unitary, a 2025 recode), or None: unknown codes, old codes whose area went
    to several current areas, and former districts merged into a larger unitary (Allerdale -> Cumberland), whose
    value is not the new area's. allow_merges=True maps those too (for summing counts such as population).
    """

    def __init__(self, area: pd.DataFrame, history: pd.DataFrame, allow_merges: bool = False):
        self._names: dict[str, str] = dict(zip(area["code"].tolist(), area["name"].tolist()))
        # History wins over the area table: a retired area kept in the database for old observations is not current.
        self._current = set(self._names) - set(history["old_code"])
        successors: dict[str, list[str]] = {}
        self._old_names: dict[str, str] = {}
        for old, cur, name in zip(history["old_code"], history["current_code"], history["old_name"]):
            successors.setdefault(old, []).append(cur)
            self._old_names[old] = name
        self._successors = {k: sorted(v) for k, v in successors.items()}
        single = {old: v[0] for old, v in self._successors.items() if len(v) == 1}
        # A merge: one of several former areas (not a county recoded as the same-boundary unitary) now inside
        # one current area. Its value is not the new area's, so observations are not mapped by default.
        predecessors: dict[str, list[str]] = {}
        for old, cur in single.items():
            if not old.startswith("E10"):
                predecessors.setdefault(cur, []).append(old)
        self._merged = {
            old: cur for old, cur in single.items() if not old.startswith("E10") and len(predecessors[cur]) > 1
        }
        self._lookup: dict[str, str] = {c: c for c in self._current}
        self._lookup.update({old: cur for old, cur in single.items() if allow_merges or old not in self._merged})

    @classmethod
    def from_frames(cls, frames: dict[str, pd.DataFrame], allow_merges: bool = False) -> AreaMapper:
        return cls(frames["area"], frames["area_code_history"], allow_merges)

    @classmethod
    def from_engine(cls, engine: Engine, allow_merges: bool = False) -> AreaMapper:
        a, h = Area.__table__, AreaCodeHistory.__table__
        with engine.connect() as conn:
            area = _frame(conn.execute(select(a.c.code, a.c.name)), ["code", "name"])
            hist = _frame(
                conn.execute(select(h.c.old_code, h.c.current_code, h.c.old_name)), ["old_code", "current_code", "old_name"]
            )
        return cls(area, hist, allow_merges)

    @staticmethod
    def _clean(code) -> str | None:
        if code is None or (isinstance(code, float) and math.isnan(code)) or code is pd.NA:
            return None
        code = str(code).strip().upper()
        return code or None

    def map(self, code) -> str | None:
        code = self._clean(code)
        return self._lookup.get(code) if code else None

    def map_series(self, codes: pd.Series) -> pd.Series:
        """map() over a column; missing (None) where unmapped. Keeps the index."""
        get = self._lookup.get
        mapped = per_distinct(  # codes are nearly always clean already: the exact lookup first
            codes, lambda distinct: [get(c) or (get(c.strip().upper()) if isinstance(c, str) else None)
                                     for c in distinct.tolist()])
        return pd.Series(mapped, index=codes.index, dtype=object)

    def why_unmapped(self, code) -> str:
        """Why map(code) is None, for run reports; "" when the code maps."""
        clean = self._clean(code)
        if clean is None:
            return "missing area code"
        if clean in self._lookup:
            return ""
        if clean in KNOWN_UNMAPPED:
            return KNOWN_UNMAPPED[clean]
        if clean in self._merged:
            cur = self._merged[clean]
            return (
                f"{clean} ({self._old_names[clean]}) was merged into {cur} ({self._names.get(cur, '?')}): "
                "a former area's value is not the new authority's"
            )
        if clean in self._successors:
            parts = [f"{c} ({self._names.get(c, '?')})" for c in self._successors[clean]]
            return f"{clean} ({self._old_names[clean]}) was split between {', '.join(parts[:-1])} and {parts[-1]}"
        return f"{clean} is not an English area code the tracker knows"

    def name(self, code: str) -> str | None:
        return self._names.get(code)


def _tuples(df: pd.DataFrame) -> list[tuple]:
    """Rows as tuples of plain Python values for the DBAPI driver (missing -> None), column by column for speed."""
    columns = []
    for c in df.columns:
        values, missing = df[c].to_numpy(dtype=object).tolist(), df[c].isna().tolist()
        columns.append([None if m else v for v, m in zip(values, missing)])
    return list(zip(*columns))


def _records(df: pd.DataFrame) -> list[dict]:
    return [dict(zip(map(str, df.columns), row)) for row in _tuples(df)]


def _bulk_insert(conn, table, df: pd.DataFrame) -> None:
    insert_rows(conn, table.name, [str(c) for c in df.columns], _tuples(df))


def _frame(result, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in result], columns=columns)


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_geography(engine: Engine, frames: dict[str, pd.DataFrame] | None = None) -> dict[str, int]:
    """Sync the area, area_link and area_code_history tables with the bundled geography, in one transaction.

    Observations reference area.code, so areas are not deleted wholesale: new areas are inserted, changed ones
    updated, and areas no longer in the geography are deleted only when no observation uses them (otherwise kept,
    and counted in "stale_areas_kept"). Links and code history reference nothing but areas, so they are replaced.
    Returns counts per area type (utla = the 153 listed by list_areas) plus the table and sync counts.
    """
    frames = frames or build_geography()
    area, links, history = frames["area"], frames["area_link"], frames["area_code_history"]
    area_t, link_t, hist_t, obs_t = Area.__table__, AreaLink.__table__, AreaCodeHistory.__table__, Observation.__table__
    cols = ["code", "name", "type", "vintage", "nhs_code"]

    with engine.begin() as conn:
        conn.execute(delete(link_t))
        conn.execute(delete(hist_t))

        existing = _frame(conn.execute(select(*[area_t.c[c] for c in cols])), cols)
        merged = area.merge(existing, on="code", how="left", suffixes=("", "_db"), indicator=True)
        new = merged.loc[merged["_merge"] == "left_only", cols]
        both = merged[merged["_merge"] == "both"]
        differs = pd.Series(False, index=both.index)
        for c in cols[1:]:
            a, b = both[c].astype(object), both[f"{c}_db"].astype(object)
            differs |= ~((a == b) | (a.isna() & b.isna()))
        changed = both.loc[differs, cols]

        if len(new):
            _bulk_insert(conn, area_t, new)
        if len(changed):
            # executemany UPDATE: keys other than b_code become the SET clause.
            recs = [{**r, "b_code": r.pop("code")} for r in _records(changed)]
            conn.execute(area_t.update().where(area_t.c.code == bindparam("b_code")), recs)

        stale = sorted(set(existing["code"].tolist()) - set(area["code"].tolist()))
        deleted = 0
        for chunk in _chunks(stale):
            used = select(obs_t.c.area_code).where(obs_t.c.area_code.in_(chunk))
            deleted += conn.execute(delete(area_t).where(area_t.c.code.in_(chunk), area_t.c.code.not_in(used))).rowcount

        _bulk_insert(conn, link_t, links)
        _bulk_insert(conn, hist_t, history)

    counts = area["type"].value_counts().to_dict()
    counts["utla"] = links.loc[links["parent_type"] == "utla", "parent_code"].nunique()
    counts = {t: int(counts.get(t, 0)) for t in ("england", "region", "icb", "utla", "ltla", "lsoa")}
    counts.update(
        area_link=len(links),
        area_code_history=len(history),
        areas_inserted=len(new),
        areas_updated=len(changed),
        areas_deleted=deleted,
        stale_areas_kept=len(stale) - deleted,
    )
    return counts


def list_areas(engine: Engine, area_type: str) -> pd.DataFrame:
    """Areas a user can select, sorted by code: columns code, name, type, nhs_code, region_code, utla_code, icb_code.

    "utla" lists all 153 upper-tier authorities (E10 counties plus unitaries, mets and London boroughs, whose Area
    row is typed "ltla"). Retired areas kept for old observations are not listed. For ltlas, utla_code is the upper tier and icb_code the ICB holding the largest share of
    the LA (13 LAs are split; AreaLink has every ICB with its share). Parents that do not apply are None.
    """
    if area_type not in LISTABLE_TYPES:
        raise ValueError(f"area_type must be one of {LISTABLE_TYPES}, not {area_type!r}")
    a, l = Area.__table__, AreaLink.__table__
    if area_type == "utla":
        codes = select(l.c.parent_code).where(l.c.parent_type == "utla").distinct()
    elif area_type == "england":
        codes = select(a.c.code).where(a.c.type == area_type)
    else:
        # Only areas of the current geography, which all have a parent link: a retired area that load_geography
        # kept because observations still use it has no links.
        codes = select(a.c.code).where(a.c.type == area_type, a.c.code.in_(select(l.c.child_code)))
    with engine.connect() as conn:
        areas = _frame(
            conn.execute(select(a.c.code, a.c.name, a.c.nhs_code).where(a.c.code.in_(codes))), ["code", "name", "nhs_code"]
        )
        links = _frame(
            conn.execute(
                select(l.c.child_code, l.c.parent_code, l.c.parent_type, l.c.share).where(l.c.child_code.in_(codes))
            ),
            ["child_code", "parent_code", "parent_type", "share"],
        )
    areas.insert(2, "type", area_type)

    def parent(ptype: str) -> pd.Series:
        p = links[links["parent_type"] == ptype].sort_values(["share", "parent_code"], ascending=[False, True])
        return areas["code"].map(p.drop_duplicates("child_code").set_index("child_code")["parent_code"])

    areas["region_code"] = parent("region") if area_type in ("ltla", "utla") else None
    areas["utla_code"] = parent("utla") if area_type == "ltla" else None
    areas["icb_code"] = parent("icb") if area_type == "ltla" else None
    areas = areas.astype(object).where(areas.notna(), None)
    return areas.sort_values("code").reset_index(drop=True)


def boundaries(area_type: str) -> dict:
    """Parsed GeoJSON for "ltla", "utla", "icb" or "region", each feature with properties "code" and "name" added.

    Read afresh on each call, not cached: its callers keep only what they derive from it (the dashboard's map
    shapes, the ICBs' areas), and the parsed file, about 24 MB of Python objects, stayed in every dashboard process.
    """
    if area_type not in BOUNDARY_FILES:
        raise ValueError(f"no boundaries for {area_type!r}; choose from {sorted(BOUNDARY_FILES)}")
    file, code_key, name_key = BOUNDARY_FILES[area_type]
    geo = json.loads(Path(GEOGRAPHY_DIR / file).read_text(encoding="utf-8"))
    for feature in geo["features"]:
        props = feature["properties"]
        props["code"] = props[code_key]
        props["name"] = props[name_key]
    return geo
