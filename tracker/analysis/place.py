"""Places: every indicator for an area with its benchmark comparison, trend and red-red flag; time series;
the indicator catalog and area facts. All public functions take an SQLAlchemy engine and return DataFrames."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

from tracker.analysis.built import built_rows
from tracker.analysis import saved
from tracker.analysis.data import (CODE_DIGEST, ENGLAND, POPULATION_NOTE, Store, get_store, headline_sex,
                                   indicator_batches, judge, la_rows)
from tracker.analysis.icb import icb_judged, icb_table, latest_per_series, lsoa_built
from tracker.analysis.stats import NOT_COMPARED, WORSE
from tracker.analysis.trends import recent_trends
from tracker.catalog import catalog_fields
from tracker.memory import give_back_freed_memory

log = logging.getLogger("tracker.analysis")

KEYS = ["indicator_id", "period", "sex"]
SERIES = ["indicator_id", "area_code", "sex"]
BENCHMARKS = ("england", "region", "icb")


def _bench(values: pd.Series, frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """values indexed by keys -> one value per row of frame (NaN where missing)."""
    return values.reindex(pd.MultiIndex.from_frame(frame[keys])).to_numpy()


def _with_meta(store: Store, frame: pd.DataFrame) -> pd.DataFrame:
    ind = store.indicators
    return frame.assign(value_type=frame["indicator_id"].map(ind["value_type"]),
                        polarity=frame["indicator_id"].map(ind["polarity"]),
                        trend_method=frame["indicator_id"].map(catalog_fields()["trend_method"]),
                        multiplier=frame["indicator_id"].map(ind["multiplier"]).astype(float))


def _trends(store: Store, frame: pd.DataFrame, series: list[str], key: str) -> pd.DataFrame:
    return store.derived(("trends", key), lambda: recent_trends(_with_meta(store, frame), series))


JUDGED = ("judged_rows",)


def judged_rows(store: Store) -> pd.DataFrame:
    """Every observation of England, regions and local authorities with: england_value,
    comparison (vs England), quintile group, min/max of areas of the same type, recent trend and red-red flag.
    Memoised per data version."""
    return store.derived(JUDGED, lambda: _judged_rows(store))


def judged_rows_of(store: Store, indicator_ids, columns=None) -> pd.DataFrame:
    """judged_rows of these indicators alone, only `columns` if given (while the rows are held encoded, only their
    batches are decoded)."""
    return store.rows_of(JUDGED, lambda: _judged_rows(store), indicator_ids, columns)


def build_judged_rows(store: Store) -> None:
    """Build judged_rows and hold it encoded, a batch of indicators per part (the precompute: the rows are about
    85 MB as frames on the snapshot, and it reads them a batch at a time)."""
    store.held(JUDGED, lambda: _judged_rows(store))


def _judged_rows(store: Store) -> saved.Encoded:
    """judged_rows, built a batch of indicators at a time (indicator_batches) and encoded as each batch is built: the
    same rows and order as one build (judging every area's rows at once peaked about 200 MB higher on the snapshot,
    and holding the batches as frames, then joining them, about 170 MB)."""
    obs = store.obs[store.obs["area_type"] != "icb"]  # ICB figures: icb_rows
    # counties and regions the source does not publish: measures built from LSOAs counted over their LSOAs, the
    # others built from their local authorities (method says how)
    lsoa, built = _lsoa_built_rows(store), built_rows(store)
    known_trends = store.memo.get(("trends", "areas"))  # reused from a previous save, or None
    ids = sorted(set(obs["indicator_id"]) | set(lsoa["indicator_id"]) | set(built["indicator_id"]))
    trends = []

    def batches():
        for batch in indicator_batches(ids):
            part = obs[obs["indicator_id"].isin(batch)].assign(method=None, approximate=None)
            part = with_built(part, lsoa[lsoa["indicator_id"].isin(batch)])
            part = with_built(part, built[built["indicator_id"].isin(batch)])
            if known_trends is None:
                trends.append(recent_trends(_with_meta(store, part), SERIES))
            yield batch, _judged(store, part, trends[-1] if known_trends is None else
                                 known_trends[known_trends["indicator_id"].isin(batch)])

    rows = saved.Encoded.batches(batches())
    if known_trends is None:
        store.derived(("trends", "areas"), lambda: saved.joined(trends))
    return rows


def _judged(store: Store, obs: pd.DataFrame, trends: pd.DataFrame) -> pd.DataFrame:
    """Some indicators' rows (obs) judged: england_value, comparison, quintile, min/max of type, trend, red-red."""
    eng = obs[obs["area_code"] == ENGLAND].set_index(KEYS)["value"]
    level = obs["indicator_id"].map(store.indicators["la_level"])
    is_la = obs["area_type"].isin(["ltla", "utla"])
    group = np.where(is_la & (obs["area_type"] == "ltla") & (level == "ltla"), "ltla",
                     np.where(is_la, "utla", obs["area_type"]))
    main = obs.assign(group=group, extra=False)
    # counties of district-level indicators are ranked among all upper-tier authorities: unitaries join their group
    extra = main[(main["group"] == "ltla") & main["area_code"].isin(store.utla_codes)].assign(group="utla", extra=True)
    frame = pd.concat([main, extra], ignore_index=True)
    del obs, main, extra
    frame["england_value"] = _bench(eng, frame, KEYS)
    gkeys = KEYS + ["group"]
    frame = judge(frame, store, frame["england_value"], gkeys)
    grouped = frame.groupby(gkeys, sort=False)["value"]
    frame["min_of_type"], frame["max_of_type"] = grouped.transform("min"), grouped.transform("max")
    frame = frame[~frame.pop("extra")].drop(columns="group")
    is_eng = frame["area_code"] == ENGLAND
    frame.loc[is_eng, ["comparison", "comparison_label"]] = NOT_COMPARED
    frame.loc[is_eng, ["comparison_level", "comparison_basis", "quintile", "position"]] = None  # the benchmark itself
    frame = frame.merge(trends, on=SERIES, how="left")
    return _red_red(frame, SERIES).sort_values(SERIES + ["period_end", "period"], kind="mergesort")


def _lsoa_built_rows(store: Store) -> pd.DataFrame:
    """County (E10) and region figures of the measures built from LSOAs, counted over their LSOAs (method "counted
    over LSOAs", not approximate): with_built adds them where the source publishes none for that area and period."""
    built = pd.concat([lsoa_built(store, t).assign(area_type=t) for t in ("utla", "region")], ignore_index=True)
    return built.drop(columns="n_lsoas", errors="ignore").assign(ci_source=None, approximate=False)


def with_built(obs: pd.DataFrame, built: pd.DataFrame) -> pd.DataFrame:
    """obs plus the built rows whose area, indicator, period and sex obs does not already hold."""
    if built.empty:
        return obs
    key = KEYS + ["area_code"]
    have = built.merge(obs[key].drop_duplicates(), how="left", indicator=True)["_merge"] == "both"
    return pd.concat([obs, built[~have.to_numpy()]], ignore_index=True)


def _red_red(frame: pd.DataFrame, series: list[str]) -> pd.DataFrame:
    """red_red: significantly worse than England (95%) in the series' latest period and getting worse."""
    latest = frame["period_end"] == frame.groupby(series)["period_end"].transform("max")
    worse_ci = (frame["comparison"] == WORSE) & frame["comparison_level"].isin(["95%", "99.8%"])
    frame["red_red"] = latest & worse_ci & frame["trend"].fillna("").str.endswith("getting worse")
    return frame


def icb_rows(store: Store) -> pd.DataFrame:
    """ICB figures with England comparison, min/max across ICBs, recent trend and red-red (memoised)."""
    def build():
        t = icb_judged(store).rename(columns={"icb_code": "area_code"})
        grouped = t.groupby(KEYS, sort=False)["value"]
        t["min_of_type"], t["max_of_type"] = grouped.transform("min"), grouped.transform("max")
        t["area_type"] = "icb"
        trends = _trends(store, icb_table(store).rename(columns={"icb_code": "area_code"}), SERIES, "icbs")
        return _red_red(t.merge(trends, on=SERIES, how="left"), SERIES)
    return store.derived(("icb_rows",), build)


def _area_type(store: Store, code: str) -> str:
    if code not in store.areas.index:
        raise KeyError(f"{code!r} is not an area code the tracker knows (LSOAs are not listed here)")
    return store.areas.at[code, "type"]


def _sex_filter(store: Store, frame: pd.DataFrame, sex: str | None) -> pd.DataFrame:
    if sex == "all":
        return frame
    wanted = {i: headline_sex(store, i, sex) for i in frame["indicator_id"].unique()}
    return frame[frame["sex"] == frame["indicator_id"].map(wanted)]


OBS_OUT = ["area_code", "area_name", "area_type", "indicator_id", "period", "period_start", "period_end", "sex", "value",
           "lci95", "uci95", "lci998", "uci998", "count", "denominator", "england_value", "comparison",
           "comparison_level", "comparison_label", "comparison_basis", "position", "position_only", "trend", "trend_method", "red_red", "icb_code", "icb_value",
           "icb_method", "figure_method", "approximate", "ci_source", "note"]


def latest_observations(engine, area_codes, indicator_ids=None, all_periods: bool = False,
                        sex: str | None = None, extra=()) -> pd.DataFrame:
    """Observations for the given areas (England, regions, ICBs, counties, districts/unitaries), latest period per
    indicator unless all_periods.

    sex: None = each indicator's headline sex, "Male"/"Female"/"Persons" where published, "all" = every sex.
    Columns (OBS_OUT): the value and CIs, england_value, comparison with England (comparison: Better/Worse/Similar,
    Higher/Lower, or Not compared -- a significance judgement only; comparison_level "95%" or "99.8%";
    comparison_label e.g. "Worse (99.8%)"; comparison_basis: the publisher's judgement, a published CI or a CI
    computed from counts), position (among areas of the same type: "Best fifth" .. "Worst fifth", "Highest fifth"
    .. "Lowest fifth" without polarity; position_only: True where the indicator has no CI to test), trend (recent trend of the series, Fingertips'
    words), red_red (significantly worse than England and getting worse, latest period), icb_code/icb_value (for a
    local authority: its ICB -- the one with the largest share for a split LA -- and the ICB figure for the same
    period), icb_method (how that ICB figure -- or, for an ICB's own row, its figure -- was made), figure_method (how
    this row's figure was made: "published", an ICB method, or "counted over LSOAs" for a county's or region's
    measure built from LSOAs), approximate (ICB
    rows: True for a population-weighted figure), ci_source ("published" or "computed from
    counts (...)"). extra: further columns of the area rows to keep (an export's run_id). Sorted by area_code,
    indicator_id, sex, period_end."""
    store = get_store(engine)
    codes = [area_codes] if isinstance(area_codes, str) else list(area_codes)
    for c in codes:
        _area_type(store, c)
    ids = None if indicator_ids is None else [indicator_ids] if isinstance(indicator_ids, str) else list(indicator_ids)
    out = area_rows(store, codes, ids, latest_only=not all_periods)
    return _sex_filter(store, out[OBS_OUT + list(extra)], sex).reset_index(drop=True)


def area_rows(store: Store, area_codes, indicator_ids=None, latest_only: bool = False, columns=None,
              periods=None) -> pd.DataFrame:
    """The rows of these areas (and indicators), all periods or each series' latest: the analysis_row table's
    columns (or only `columns`) plus area_name, area_type and icb_code. periods: (indicator_id, period) pairs, only
    those (a peer comparison needs the periods its place has, indicator by indicator). Read from the saved table when the
    Store's rows are saved (a dashboard process holds only what it shows), else from the frame built in memory
    (memoised until saved)."""
    codes = list(area_codes)
    if store.rows_saved:
        try:
            rows = saved.read_rows(store.engine, store.version, CODE_DIGEST, codes, indicator_ids, latest_only, columns,
                                   periods)
            return _with_area_facts(store, rows)
        except saved.SaveReplaced as exc:  # a newer save replaced it: build this version's rows here
            log.warning("%s: building the rows in this process", exc)
            store.rows_saved = False
    every = area_rows_frame(store)
    keep = every["area_code"].isin(codes)
    if indicator_ids is not None:
        keep &= every["indicator_id"].isin(list(indicator_ids))
    if latest_only:
        keep &= every["latest"]
    if periods is not None:
        wanted = pd.MultiIndex.from_tuples(list(periods), names=["indicator_id", "period"])
        keep &= pd.MultiIndex.from_frame(every[["indicator_id", "period"]]).isin(wanted)
    rows = every.loc[keep, list(every.columns) if columns is None else [c for c in every.columns if c in columns]]
    return _with_area_facts(store, rows.reset_index(drop=True))


def _with_area_facts(store: Store, rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.assign(area_name=rows["area_code"].map(store.areas["name"]),
                       area_type=rows["area_code"].map(store.areas["type"]))
    is_la = rows["area_type"].isin(["ltla", "utla"])
    rows["icb_code"] = rows["area_code"].map(store.parent("icb")).where(is_la)
    return rows


def area_rows_frame(store: Store) -> pd.DataFrame:
    """Every area's rows (area_row_chunks) in one frame, memoised: what area_rows reads while the rows are not saved."""
    # by area, each area's rows in their order: as the table gives them (saved.read_rows)
    return store.derived(("area_rows",), lambda: pd.concat(list(area_row_chunks(store)), ignore_index=True)
                         .sort_values("area_code", kind="mergesort", ignore_index=True))


# a batch of indicators' rows is written about 150 areas at a time (about 10,000 rows): the working copies of a whole
# batch's rows (up to 40,000) peaked about 35 MB higher
AREAS_PER_CHUNK = 150


def area_row_chunks(store: Store) -> Iterator[pd.DataFrame]:
    """judged_rows and icb_rows together, every period, in the analysis_row table's layout, a batch of indicators at a
    time and some areas at a time (each area's rows of each batch in the analysis' order, batches in indicator order):
    with each LA row its ICB's figure for the same period and how each figure was made. save_store writes them to the
    table chunk by chunk; judged_rows is read a batch at a time (judged_rows_of), never held whole."""
    icbs = icb_rows(store).rename(columns={"method": "icb_method"})
    icb_index = icbs.set_index(KEYS + ["area_code"])
    icb_of = store.parent("icb")
    # the run that loaded each row's own observation (an export's "Loaded on"; none for a figure built here): an area
    # row carries it from its observation, an ICB figure takes the run of the ICB's published figure
    published = store.obs.loc[store.obs["area_type"] == "icb", ["area_code", *KEYS, "run_id"]]
    icb_run = published.drop_duplicates(["area_code", *KEYS]).set_index(["area_code", *KEYS])["run_id"]
    icbs["run_id"] = _bench(icb_run, icbs, ["area_code", *KEYS])
    for batch in indicator_batches(set(store.indicators.index) | set(icbs["indicator_id"])):
        rows, icb_batch = judged_rows_of(store, batch), icbs[icbs["indicator_id"].isin(batch)]
        codes = sorted(set(rows["area_code"]) | set(icb_batch["area_code"]))
        for at in range(0, len(codes), AREAS_PER_CHUNK):
            chunk = codes[at:at + AREAS_PER_CHUNK]
            yield _area_row_chunk(store, pd.concat([rows[rows["area_code"].isin(chunk)],
                                                    icb_batch[icb_batch["area_code"].isin(chunk)]], ignore_index=True),
                                  icb_index, icb_of)
            give_back_freed_memory()  # what this chunk's working copies freed, before the next chunk is built


def _area_row_chunk(store: Store, out: pd.DataFrame, icb_index: pd.DataFrame, icb_of: pd.Series) -> pd.DataFrame:
    """Some areas' judged rows and ICB figures (out) as area rows (area_row_chunks)."""
    area_type = out["area_code"].map(store.areas["type"])
    is_la = area_type.isin(["ltla", "utla"])
    icb_key = out[KEYS].assign(area_code=out["area_code"].map(icb_of).where(is_la))
    out["icb_value"] = np.where(is_la, _bench(icb_index["value"], icb_key, KEYS + ["area_code"]), np.nan)
    la_method = _bench(icb_index["icb_method"], icb_key, KEYS + ["area_code"])
    method = out.pop("method")
    built = method.notna()  # a county or region figure built from its LSOAs or local authorities: its own method
    out["icb_method"] = np.where(built, method, np.where(is_la, la_method, out["icb_method"]))
    out["figure_method"] = np.where(area_type == "icb", out["icb_method"], np.where(built, method, "published"))
    out["method"] = np.where(area_type == "icb", out["icb_method"], method)  # the row's own, as place_profile shows
    out["approximate"] = out["approximate"].astype(object).where((area_type == "icb") | built, None)
    out["run_id"] = out["run_id"].where(~built)  # a figure built here: no observation of its own
    out["latest"] = out.index.isin(latest_per_series(out, SERIES).index)
    out = out.sort_values(["area_code", "indicator_id", "sex", "period_end"], kind="mergesort")
    return saved.typed_rows(out).reset_index(drop=True)


PROFILE_OUT = ["indicator_id", "title", "domain", "department_slug", "department_name", "department_abbr", "is_dhsc",
               "unit", "value_type", "polarity", "headline_outcome", "area_code", "value_from", "value_from_name",
               "period", "period_end", "sex", "value", "lci95", "uci95", "benchmark", "benchmark_code",
               "benchmark_value", "england_value", "comparison", "comparison_level", "comparison_label", "comparison_basis",
               "position", "position_only", "min_of_type",
               "max_of_type", "trend", "trend_method", "red_red", "approximate", "method", "ci_source", "note"]


def place_profile(engine, area_code: str, benchmark: str = "england", sex: str | None = None) -> pd.DataFrame:
    """Every indicator for one place (England, a region, an ICB, a county or a district/unitary), latest period.

    benchmark: "england" (default), "region" (the area's region) or "icb" (for a local authority: its ICB figure).
    A district whose indicator is published only for its county shows the county's figure (value_from is then the
    county); an ICB shows ICB figures (method/approximate say how each was made). Columns (PROFILE_OUT): indicator
    metadata and its department (the policy owner), value and CIs, benchmark_value and comparison with the chosen
    benchmark, england_value, min/max across areas of the same type in that period, trend, red_red (always against
    England), ci_source and note. Sorted by domain, department and indicator."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, not {benchmark!r}")
    store = get_store(engine)
    atype = _area_type(store, area_code)
    if atype == "icb":
        rows = area_rows(store, [area_code], latest_only=True).assign(ci_source=None)
    else:
        county = store.parent("utla").get(area_code)
        with_county = atype == "ltla" and county and county != area_code
        rows = area_rows(store, [area_code, county] if with_county else [area_code], latest_only=True)
        own = rows[rows["area_code"] == area_code]  # method/approximate: None unless built from local authorities
        parts = [own]
        if with_county:
            # indicators published only for upper-tier authorities: the district shows its county's figure
            utla_only = store.indicators.index[store.indicators["la_level"] == "utla"]
            cty = rows[(rows["area_code"] == county) & rows["indicator_id"].isin(utla_only)
                       & ~rows["indicator_id"].isin(own["indicator_id"])]
            parts.append(cty.assign(method=None, approximate=None))
        rows = pd.concat(parts, ignore_index=True)
    rows = latest_per_series(_sex_filter(store, rows, sex), ["indicator_id", "sex"])
    rows = rows.assign(value_from=rows["area_code"], area_code=area_code)
    rows["value_from_name"] = rows["value_from"].map(store.areas["name"])
    rows["benchmark"] = benchmark
    rows["benchmark_code"], rows["benchmark_value"] = ENGLAND, rows["england_value"]
    if benchmark != "england" and atype != "england":
        rows = _against(store, rows, area_code, benchmark)
    ind = store.indicators
    meta = ["title", "domain", "department_slug", "department_name", "department_abbr", "is_dhsc", "unit",
            "value_type", "polarity", "headline_outcome"]
    rows = rows.join(ind[meta], on="indicator_id")
    for c in PROFILE_OUT:
        if c not in rows.columns:
            rows[c] = None
    return rows[PROFILE_OUT].sort_values(["domain", "department_slug", "indicator_id"], kind="mergesort").reset_index(drop=True)


def _against(store: Store, rows: pd.DataFrame, area_code: str, benchmark: str) -> pd.DataFrame:
    """Re-compare rows with the area's region or ICB instead of England."""
    code = store.parent("region" if benchmark == "region" else "icb").get(area_code)
    if code is None:
        rows["benchmark_code"], rows["benchmark_value"] = None, np.nan
        rows[["comparison", "comparison_label"]] = NOT_COMPARED
        rows[["comparison_level", "comparison_basis"]] = None
        return rows
    values = area_rows(store, [code]).set_index(KEYS)["value"]
    rows["benchmark_code"] = code
    rows["benchmark_value"] = _bench(values, rows, KEYS)
    # the publisher's judgement is against England, so it does not carry over; the position among areas of the
    # same type does not depend on the benchmark and is kept
    again = judge(rows.assign(group="one"), store, rows["benchmark_value"], ["group"], published_judgement=False)
    for c in ("comparison", "comparison_level", "comparison_label", "comparison_basis"):
        rows[c] = again[c]
    return rows


def time_series(engine, indicator_id: str, area_code: str, sex: str | None = None) -> pd.DataFrame:
    """Every period of one indicator for one area with England alongside: period, period_start, period_end, sex,
    value, lci95, uci95, england_value, comparison, comparison_label, comparison_basis, position (among areas of the
    same type), trend (the recent trend, on every row),
    method and approximate (ICB figures). sex as in latest_observations (default the headline sex)."""
    get_store(engine).indicator(indicator_id)
    rows = latest_observations(engine, [area_code], [indicator_id], all_periods=True, sex=sex)
    # how the figure was made: an ICB's own figures vary; a local authority's are as published (its icb_method
    # describes its ICB's figure, which this series does not show)
    rows["method"] = rows["figure_method"]
    cols = ["period", "period_start", "period_end", "sex", "value", "lci95", "uci95", "england_value", "comparison",
            "comparison_label", "comparison_basis", "position", "trend", "method", "approximate"]
    return rows[cols].reset_index(drop=True)


def indicator_catalog(engine) -> pd.DataFrame:
    """The indicators with their department (policy owner) and what data the tracker holds for each: id, title,
    domain, unit, value_type, polarity, multiplier, default_sex, ci_method, ci_reason, headline_outcome,
    department_slug, department_name,
    department_abbr, is_dhsc, secondary_departments, producer, source, source_id, source_url, definition, rationale,
    caveats, licence, la_level ("ltla", "utla" or None), latest_period, n_periods, n_las_latest (local authorities
    with a figure in the latest period, at la_level: of 296 districts/unitaries or 153 upper-tier), has_ci. Sorted by id."""
    store = get_store(engine)
    return store.derived(("indicator_catalog",), lambda: _catalog(store)).copy()


def _catalog(store: Store) -> pd.DataFrame:
    # only the columns used: copies of every column of the local-authority rows peaked about 100 MB higher (snapshot)
    obs = store.obs[["indicator_id", "area_code", "area_type", "period", "period_end", "lci95"]]
    level = obs["indicator_id"].map(store.indicators["la_level"])
    la = pd.concat([la_rows(store, obs[level == lv], lv) for lv in ("ltla", "utla")])  # each at its own level
    latest = obs.sort_values("period_end").groupby("indicator_id")["period"].last()
    la_latest = la[la["period_end"] == la.groupby("indicator_id")["period_end"].transform("max")]
    out = store.indicators.drop(columns=["id"]).reset_index()
    out["latest_period"] = out["id"].map(latest)
    out["n_periods"] = out["id"].map(obs.groupby("indicator_id")["period"].nunique()).fillna(0).astype(int)
    out["n_las_latest"] = out["id"].map(la_latest.groupby("indicator_id")["area_code"].nunique()).fillna(0).astype(int)
    out["has_ci"] = out["id"].isin(set(obs.loc[obs["lci95"].notna(), "indicator_id"].unique()))
    return out.sort_values("id").reset_index(drop=True)


def area_info(engine, code: str) -> pd.DataFrame:
    """One row about an area: code, name, type, nhs_code, region_code/region_name, utla_code/utla_name (upper tier
    of a district), icb_code/icb_name (the ICB with the largest share), icb_shares ("E54...: 0.62; E54...: 0.38" for
    one of the 13 LAs split between ICBs, else the one ICB), n_las (local authorities in an ICB, region or county),
    population_mid2020 (districts, ICBs, regions: summed from the ONS mid-2020 estimates) and population_note."""
    store = get_store(engine)
    atype = _area_type(store, code)
    links = store.links
    row = {"code": code, "name": store.areas.at[code, "name"], "type": atype, "nhs_code": store.areas.at[code, "nhs_code"]}
    for ptype in ("region", "utla", "icb"):
        parent = store.parent(ptype).get(code) if atype in ("ltla", "utla") else None
        if ptype == "utla" and atype != "ltla":
            parent = None
        row[f"{ptype}_code"] = parent
        row[f"{ptype}_name"] = store.areas["name"].get(parent) if parent else None
    mine = links[(links["child_code"] == code) & (links["parent_type"] == "icb")].sort_values("share", ascending=False)
    row["icb_shares"] = "; ".join(f"{p}: {s:.2f}" for p, s in zip(mine["parent_code"], mine["share"])) or None
    children = links[(links["parent_code"] == code) & links["child_code"].isin(store.areas.index[store.areas["type"] == "ltla"])
                     & (links["parent_type"] == ("utla" if atype in ("utla", "ltla") else atype))]
    row["n_las"] = int(len(children)) if atype in ("icb", "region", "utla") else None
    if atype == "ltla":
        row["population_mid2020"] = store.population.get(code)
    elif atype == "england":
        row["population_mid2020"] = float(store.population.sum())
    else:
        row["population_mid2020"] = float((children["child_code"].map(store.population) * children["share"]).sum())
    row["population_note"] = POPULATION_NOTE
    return pd.DataFrame([row])
