"""Figures for the 42 integrated care boards, built from their local authorities, and measures built from LSOAs.

How an ICB figure is made (the `method` column; docs/methods.md, "ICB figures"):
* "published": the source publishes the ICB itself;
* "recomputed from counts": every LA of the ICB has a count and denominator (and the value is count/denominator):
  they are summed, an LA split between ICBs counting with its share of households in each, and the value and
  its CI are computed again (Wilson or Byar/exact) -- an exact figure;
* "sum of LA values": counts (e.g. children in temporary accommodation) are summed the same way;
* "counted over LSOAs": a measure built from LSOAs (the IoD shares of LSOAs in the most deprived 10%, fuel
  poverty) is counted again over the ICB's own LSOAs (LSOA_BUILT), as MHCLG's File 13 does;
* "population-weighted average (approximate)": otherwise, the mean of the LA values weighted by mid-2020
  population x share. For an indicator published only for upper-tier authorities, each district of a county
  takes the county's value. Needs LA values covering at least half the ICB's population.
* "population-weighted average of DSRs (approximate: no age-specific counts)": the same for a directly
  standardised rate (catalog `standardised`). Recomputing a DSR needs every LA's events and population by age
  band (stats.dsr, Dobson limits); no source the tracker reads publishes them, so the figure is an average and has
  no CI. A DSR is never "recomputed from counts": its crude count over population is not the DSR, and a Byar
  interval on that count is not the DSR's interval.
Ranks are not averaged."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import String, and_, cast, select

from db.models import AreaLink, Observation
from tracker.analysis import saved
from tracker.analysis.data import (ENGLAND, POPULATION_NOTE, Store, get_store, indicator_batches, judge,
                                   query_frame, read_observations)
from tracker.analysis.stats import rate_ci, wilson_ci
from tracker.catalog import catalog_fields
from tracker.config import GEOGRAPHY_DIR

MIN_COVERAGE = 0.5
WEIGHTED = "population-weighted average (approximate)"
WEIGHTED_DSR = "population-weighted average of DSRs (approximate: no age-specific counts)"
KEYS = ["indicator_id", "period", "sex"]
ICB_COLUMNS = ["indicator_id", "icb_code", "icb_name", "period", "period_start", "period_end", "sex", "value", "lci95",
               "uci95", "lci998", "uci998", "count", "denominator", "method", "approximate", "n_las", "n_las_with_value",
               "population_coverage", "note", "published_comparison", "n_lsoas"]


def _la_values(store: Store, obs: pd.DataFrame) -> pd.DataFrame:
    """The indicators' values (obs: some indicators' observations) on the 296 districts/unitaries; a county's value is
    given to each of its districts (from_county) for indicators published only for upper-tier authorities."""
    level = obs["indicator_id"].map(store.indicators["la_level"])
    own = obs[(obs["area_type"] == "ltla") & level.notna()].assign(from_county=False)
    counties = obs[(obs["area_type"] == "utla") & (level == "utla")]
    to_district = store.links[(store.links["parent_type"] == "utla")][["child_code", "parent_code"]]
    spread = counties.merge(to_district, left_on="area_code", right_on="parent_code").drop(columns=["parent_code"])
    spread = spread.assign(area_code=spread["child_code"], from_county=True).drop(columns=["child_code"])
    return pd.concat([own, spread], ignore_index=True)


def icb_table(store: Store) -> pd.DataFrame:
    """ICB figures for every indicator, period and sex (memoised). Columns: ICB_COLUMNS."""
    return store.derived(("icb_table",), lambda: _build(store))


def _build(store: Store) -> pd.DataFrame:
    """icb_table, built a batch of indicators at a time (data.indicator_batches): the same rows as one build."""
    icb_links = store.links[store.links["parent_type"] == "icb"][["child_code", "parent_code", "share"]]
    icb_links = icb_links.rename(columns={"child_code": "area_code", "parent_code": "icb_code"})
    icb_links["w"] = icb_links["share"] * icb_links["area_code"].map(store.population)
    per_icb = icb_links.groupby("icb_code").agg(n_las=("area_code", "size"), pop=("w", "sum"),
                                                split=("share", lambda s: bool((s < 1).any())))
    # measures built from LSOAs: counted over the ICB's own LSOAs (an LA split between ICBs is split by its LSOAs),
    # as MHCLG's File 13 does for ICBs, instead of any approximation from its local authorities
    counted = lsoa_built(store, "icb").rename(columns={"area_code": "icb_code"})
    obs = store.obs
    ids = set(obs["indicator_id"]) | set(counted["indicator_id"] if not counted.empty else [])
    return saved.joined([_build_batch(store, obs[obs["indicator_id"].isin(batch)],
                                      counted[counted["indicator_id"].isin(batch)] if not counted.empty else counted,
                                      icb_links, per_icb)
                         for batch in indicator_batches(ids)])


def _build_batch(store: Store, obs: pd.DataFrame, counted: pd.DataFrame, icb_links: pd.DataFrame,
                 per_icb: pd.DataFrame) -> pd.DataFrame:
    """The ICB figures of some indicators: obs and counted (the LSOA-built ICB figures) hold only theirs."""
    ind = store.indicators
    la = _la_values(store, obs).merge(icb_links, on="area_code")
    la = la[la["value"].notna()]
    vt = la["indicator_id"].map(ind["value_type"])
    mult = la["indicator_id"].map(ind["multiplier"]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = la["count"] / la["denominator"] * mult
    standardised = la["indicator_id"].map(catalog_fields()["standardised"]).eq(True)
    la["counts_ok"] = (la["count"].ge(0) & la["denominator"].gt(0) & ~la["from_county"] & vt.isin(["proportion", "rate"])
                       & ~standardised
                       & ((la["value"] - implied).abs() <= 0.05 + 0.005 * la["value"].abs()))
    la["sc"], la["sd"] = la["share"] * la["count"], la["share"] * la["denominator"]
    la["wv"], la["sv"] = la["w"] * la["value"], la["share"] * la["value"]
    g = la.groupby(KEYS + ["icb_code"], as_index=False).agg(
        n_las_with_value=("area_code", "size"), counts_ok=("counts_ok", "all"), from_county=("from_county", "any"),
        count=("sc", "sum"), denominator=("sd", "sum"), wv=("wv", "sum"), w=("w", "sum"), sv=("sv", "sum"),
        period_start=("period_start", "first"), period_end=("period_end", "first"))
    g = g.join(per_icb, on="icb_code")
    g["population_coverage"] = g["w"] / g["pop"]
    complete = g["n_las_with_value"] == g["n_las"]
    vt, mult = g["indicator_id"].map(ind["value_type"]), g["indicator_id"].map(ind["multiplier"]).astype(float)

    exact = complete & g["counts_ok"]
    summed = complete & ~exact & (vt == "count") & ~g["from_county"]
    weighted = ~exact & ~summed & ~vt.isin(["count", "rank"]) & (g["population_coverage"] >= MIN_COVERAGE)
    g = g[exact | summed | weighted].copy()
    exact, summed = exact[g.index], summed[g.index]
    vt, mult = vt[g.index], mult[g.index]

    g["value"] = np.select([exact, summed], [g["count"] / g["denominator"] * mult, g["sv"]], g["wv"] / g["w"])
    for c in ("lci95", "uci95", "lci998", "uci998"):
        g[c] = np.nan
    # a CI only where the catalog says the figure is a directly counted proportion (wilson) or rate (byar)
    ci_method = g["indicator_id"].map(ind["ci_method"])
    with_ci = exact & ci_method.isin(["wilson", "byar"])
    for conf, lo_col, hi_col in ((0.95, "lci95", "uci95"), (0.998, "lci998", "uci998")):
        w_lo, w_hi = wilson_ci(g["count"], g["denominator"], conf, multiplier=1)
        r_lo, r_hi = rate_ci(g["count"], g["denominator"], multiplier=1, confidence=conf)
        prop = ci_method == "wilson"
        g[lo_col] = np.where(with_ci, np.where(prop, w_lo, r_lo) * mult, np.nan)
        g[hi_col] = np.where(with_ci, np.where(prop, w_hi, r_hi) * mult, np.nan)
    g.loc[~exact, ["count", "denominator"]] = np.nan
    is_dsr = g["indicator_id"].map(catalog_fields()["standardised"]).eq(True)
    g["method"] = np.select([exact, summed, is_dsr], ["recomputed from counts", "sum of LA values", WEIGHTED_DSR], WEIGHTED)
    g["approximate"] = ~(exact | summed)
    g["note"] = [_note(m, s, fc) for m, s, fc in zip(g["method"], g["split"], g["from_county"])]

    published = obs[obs["area_type"] == "icb"].rename(columns={"area_code": "icb_code"}).assign(
        method="published", approximate=False, note=None, n_las=np.nan, n_las_with_value=np.nan,
        population_coverage=np.nan)
    published["n_las"] = published["icb_code"].map(per_icb["n_las"])
    g = g.merge(published[KEYS + ["icb_code"]], how="left", indicator=True)
    g = g[g.pop("_merge") == "left_only"]
    out = pd.concat([published, g], ignore_index=True)
    if not counted.empty:
        counted = counted.assign(approximate=False, n_las=counted["icb_code"].map(per_icb["n_las"]), n_las_with_value=np.nan,
                                 population_coverage=np.nan)
        clash = out.merge(counted[KEYS + ["icb_code"]], how="left", indicator=True)["_merge"] == "both"
        out = pd.concat([out[~clash.to_numpy()], counted], ignore_index=True)
    out["icb_name"] = out["icb_code"].map(store.areas["name"])
    out = out.reindex(columns=ICB_COLUMNS)  # n_lsoas is absent when no LSOA-built measure is loaded
    out = out.sort_values(["indicator_id", "sex", "icb_code", "period_end", "period"], kind="mergesort")
    return out.reset_index(drop=True)


def _note(method: str, split: bool, from_county: bool) -> str | None:
    notes = []
    if method.startswith("population-weighted"):
        notes.append(f"Approximate: average of the ICB's local authority values weighted by {POPULATION_NOTE}")
        if method == WEIGHTED_DSR:
            notes.append("a directly standardised rate can only be recomputed from events and population by age band, "
                         "which are not published with it, so this average has no confidence interval")
        if from_county:
            notes.append("districts of a county take the county's value (the indicator is published for counties)")
    if split and method != "published":
        notes.append("an LA split between ICBs counts with its share of households in this ICB")
    return "; ".join(notes) or None


def icb_judged(store: Store) -> pd.DataFrame:
    """icb_table with the England value and the comparison with it (memoised)."""
    def build():
        table = icb_table(store)
        eng = store.obs[store.obs["area_code"] == ENGLAND].set_index(KEYS)["value"]
        bench = pd.Series(eng.reindex(pd.MultiIndex.from_frame(table[KEYS])).to_numpy(), index=table.index)
        out = judge(table.assign(area_code=table["icb_code"]), store, bench, KEYS, by_row=True).drop(columns="area_code")
        out.insert(out.columns.get_loc("value") + 1, "england_value", bench)
        return out
    return store.derived(("icb_judged",), build)


def latest_per_series(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The row with the latest period_end of each series."""
    return frame.sort_values(keys + ["period_end", "period"], kind="mergesort").drop_duplicates(keys, keep="last")


def icb_figures(engine, indicator_id: str | None = None, icb_code: str | None = None, all_periods: bool = False,
                sex: str | None = None) -> pd.DataFrame:
    """ICB figures with their England comparison.

    Filters: indicator_id, icb_code (E54 code), sex (default: each indicator's headline sex; "all" for every sex).
    Latest period per ICB, indicator and sex unless all_periods. Columns: icb_code, icb_name, indicator_id, period,
    period_start, period_end, sex, value, england_value, lci95, uci95, lci998, uci998, count, denominator,
    comparison, comparison_level, comparison_label, comparison_basis (significance only), position (among the 42
    ICBs), method ("published", "recomputed from counts", "sum of LA values", "population-weighted average
    (approximate)", "population-weighted average of DSRs (approximate: no age-specific counts)", "counted over
    LSOAs"), approximate (bool), n_las, n_las_with_value, population_coverage,
    note (how the figure was made, including the population year)."""
    from tracker.analysis.data import headline_sex

    store = get_store(engine)
    t = icb_judged(store)
    if indicator_id is not None:
        t = t[t["indicator_id"] == indicator_id]
    if icb_code is not None:
        t = t[t["icb_code"] == icb_code]
    if sex != "all":
        wanted = {i: headline_sex(store, i, sex) for i in t["indicator_id"].unique()}
        t = t[t["sex"] == t["indicator_id"].map(wanted)]
    if not all_periods:
        t = latest_per_series(t, ["indicator_id", "icb_code", "sex"])
    cols = ["icb_code", "icb_name", "indicator_id", "period", "period_start", "period_end", "sex", "value",
            "england_value", "lci95", "uci95", "lci998", "uci998", "count", "denominator", "comparison",
            "comparison_level", "comparison_label", "comparison_basis", "position", "method", "approximate", "n_las",
            "n_las_with_value", "population_coverage", "note"]
    return t[cols].sort_values(["indicator_id", "icb_code", "sex", "period_end"], kind="mergesort").reset_index(drop=True)


def icb_drilldown(engine, icb_code: str) -> pd.DataFrame:
    """The local authorities of an ICB: la_code, la_name, share (fraction of the LA in this ICB: 1 unless the LA is
    one of the 13 split between ICBs), share_basis ("whole", "households" or "lsoa_count"), population_mid2020 (the
    LA's whole population), population_in_icb (population x share), utla_code, region_code. Sorted by la_code."""
    store = get_store(engine)
    links = store.links[(store.links["parent_type"] == "icb") & (store.links["parent_code"] == icb_code)]
    if links.empty:
        raise KeyError(f"{icb_code!r} is not an ICB code the tracker knows")
    out = pd.DataFrame({"la_code": links["child_code"].to_numpy(), "share": links["share"].to_numpy(),
                        "share_basis": links["share_basis"].to_numpy()})
    out.insert(1, "la_name", out["la_code"].map(store.areas["name"]))
    out["population_mid2020"] = out["la_code"].map(store.population)
    out["population_in_icb"] = out["population_mid2020"] * out["share"]
    out["utla_code"] = out["la_code"].map(store.parent("utla"))
    out["region_code"] = out["la_code"].map(store.parent("region"))
    return out.sort_values("la_code").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Measures built from LSOAs


LSOA_HOUSEHOLDS = GEOGRAPHY_DIR / "lsoa21_households_2021.csv"


def lsoa_summary(engine, decile_indicator: str = "imd-decile-lsoa", score_indicator: str | None = "imd-score-lsoa",
                 parent_type: str = "ltla") -> pd.DataFrame:
    """Area summaries built from LSOA rows (latest period), for parent_type "ltla", "icb" or "region"... any type the
    LSOAs link to.

    Columns: area_code, area_name, period, n_lsoas, proportion_most_deprived_decile (share of the area's LSOAs in
    decile 1, the most deprived 10% nationally, as MHCLG's File 10 "proportion of LSOAs in most deprived 10%"),
    mean_score (unweighted mean of LSOA scores: no LSOA 2021 population is bundled), households_weighted_score
    (mean weighted by DESNZ 2021 households per LSOA -- labelled so, not a population weighting)."""
    store = get_store(engine)
    return store.derived(("lsoa_summary", decile_indicator, score_indicator, parent_type),
                         lambda: _lsoa_summary(store, decile_indicator, score_indicator, parent_type)).copy()


def _lsoa_summary(store: Store, decile_id: str, score_id: str | None, parent_type: str) -> pd.DataFrame:
    o, lk = Observation.__table__, AreaLink.__table__
    ids = [decile_id] + ([score_id] if score_id else [])
    with store.engine.connect() as conn:
        rows = conn.execute(select(o.c.indicator_id, o.c.area_code, o.c.period, o.c.period_end, o.c.value).where(
            and_(o.c.indicator_id.in_(ids), o.c.category_type == ""))).fetchall()
        parents = conn.execute(select(lk.c.child_code, lk.c.parent_code).where(
            and_(lk.c.parent_type == parent_type, lk.c.child_code.like("E01%")))).fetchall()
    obs = pd.DataFrame(rows, columns=["indicator_id", "area_code", "period", "period_end", "value"])
    columns = ["area_code", "area_name", "period", "n_lsoas", "proportion_most_deprived_decile"] + (
        ["mean_score", "households_weighted_score"] if score_id else [])
    if (obs["indicator_id"] == decile_id).sum() == 0:
        return pd.DataFrame(columns=columns)
    obs["value"] = pd.to_numeric(obs["value"], errors="coerce")
    obs = obs[obs["period_end"] == obs.groupby("indicator_id")["period_end"].transform("max")]
    wide = obs.pivot_table(index="area_code", columns="indicator_id", values="value", aggfunc="first")
    period = obs.loc[obs["indicator_id"] == decile_id, "period"].max()
    link = pd.DataFrame(parents, columns=["lsoa", "parent"]).set_index("lsoa")["parent"]
    hh = pd.read_csv(LSOA_HOUSEHOLDS, dtype={"LSOA21CD": str}).set_index("LSOA21CD")["households"].astype(float)
    frame = pd.DataFrame({"parent": link}).join(wide, how="inner")
    frame["decile1"] = (frame[decile_id] == 1).astype(float).where(frame[decile_id].notna())
    frame["hh"] = hh.reindex(frame.index)
    agg = {"n_lsoas": ("decile1", "count"), "proportion_most_deprived_decile": ("decile1", "mean")}
    if score_id:
        frame["hs"] = frame[score_id] * frame["hh"]
        frame["hw"] = frame["hh"].where(frame[score_id].notna())
        agg.update(mean_score=(score_id, "mean"), hs=("hs", "sum"), hw=("hw", "sum"))
    out = frame.groupby("parent").agg(**agg)
    if score_id:
        out["households_weighted_score"] = out.pop("hs") / out.pop("hw")
    out = out.reset_index().rename(columns={"parent": "area_code"})
    out.insert(1, "area_name", out["area_code"].map(store.areas["name"]))
    out.insert(2, "period", period)
    return out[columns].sort_values("area_code").reset_index(drop=True)


# Area measures that are counts over LSOAs, and the LSOA indicator each is counted from: "decile1" = the share of the
# area's LSOAs in decile 1 (MHCLG's "proportion of LSOAs in most deprived 10% nationally"), "counts" = the sum of the
# LSOAs' counts over the sum of their denominators (DESNZ fuel-poor households over households).
LSOA_BUILT = {
    "imd-proportion-most-deprived-decile": ("imd-decile-lsoa", "decile1"),
    **{f"iod-{d}-proportion-most-deprived-decile": (f"iod-{d}-decile-lsoa", "decile1")
       for d in ("income", "employment", "education", "health", "crime", "barriers", "environment")},
    "fuel-poverty-lilee": ("fuel-poverty-lilee", "counts"),
}
LSOA_METHOD = "counted over LSOAs"


def _lsoa_rows(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(latest-period LSOA rows of the LSOA_BUILT sources, LSOA -> ltla/icb links), read once per data version."""
    def build():
        o, lk = Observation.__table__, AreaLink.__table__
        ids = sorted({src for src, _ in LSOA_BUILT.values()})
        with store.engine.connect() as conn:
            # dates as ISO text, read a slice at a time into typed columns (data.read_observations): every row as
            # Python objects at once was the highest point of a refresh's memory
            obs = read_observations(conn, select(
                o.c.indicator_id.label("source_id"), o.c.area_code.label("lsoa"), o.c.period,
                cast(o.c.period_start, String).label("period_start"), cast(o.c.period_end, String).label("period_end"),
                o.c.sex, o.c.value, o.c.count, o.c.denominator).where(and_(
                o.c.indicator_id.in_(ids), o.c.category_type == "", o.c.area_code.like("E01%"))))
            links = query_frame(conn, select(lk.c.child_code.label("lsoa"), lk.c.parent_code, lk.c.parent_type)
                                .where(and_(lk.c.parent_type.in_(["ltla", "icb"]), lk.c.child_code.like("E01%"))))
        obs = obs[obs["period_end"] == obs.groupby("source_id")["period_end"].transform("max")]
        return obs, links
    return store.derived(("lsoa_rows",), build)


def lsoa_built(store: Store, parent_type: str) -> pd.DataFrame:
    """Figures of the LSOA_BUILT measures for every area of parent_type ("icb", "utla" = the 21 counties, "region",
    "ltla"), counted over the area's LSOAs in the latest LSOA period: indicator_id, area_code, period, period_start,
    period_end, sex, value, count, denominator, n_lsoas, method ("counted over LSOAs"), note. Memoised."""
    return store.derived(("lsoa_built", parent_type), lambda: _lsoa_built(store, parent_type))


def _lsoa_built(store: Store, parent_type: str) -> pd.DataFrame:
    columns = ["indicator_id", "area_code", "period", "period_start", "period_end", "sex", "value", "lci95", "uci95",
               "lci998", "uci998", "count", "denominator", "n_lsoas", "method", "note"]
    obs, links = _lsoa_rows(store)
    if obs.empty:
        return pd.DataFrame(columns=columns)
    if parent_type == "icb":
        parent = links[links["parent_type"] == "icb"].set_index("lsoa")["parent_code"]
    else:
        to_ltla = links[links["parent_type"] == "ltla"].set_index("lsoa")["parent_code"]
        parent = to_ltla if parent_type == "ltla" else to_ltla.map(store.parent(parent_type))
        if parent_type == "utla":  # counties only: a unitary's own figure is its local authority figure
            parent = parent[parent.isin(store.areas.index[store.areas["type"] == "utla"])]
    frame = obs.assign(area_code=obs["lsoa"].map(parent)).dropna(subset=["area_code"])
    parts = []
    for target, (source, kind) in LSOA_BUILT.items():
        if target not in store.indicators.index:
            continue
        rows = frame[frame["source_id"] == source]
        if rows.empty:
            continue
        if kind == "decile1":
            rows = rows[rows["value"].notna()].assign(count=(rows["value"] == 1).astype(float), denominator=1.0)
            mult, what = 1.0, "LSOAs in decile 1 (the most deprived 10% nationally) over all its LSOAs"
        else:
            rows = rows[rows["count"].notna() & rows["denominator"].notna()]
            mult = float(store.indicators.at[target, "multiplier"] or 1)
            what = "the sum of its LSOAs' counts over the sum of their denominators"
        g = rows.groupby(["area_code", "period", "period_start", "period_end", "sex"], as_index=False).agg(
            count=("count", "sum"), denominator=("denominator", "sum"), n_lsoas=("lsoa", "size"))
        g["value"] = g["count"] / g["denominator"] * mult
        g["indicator_id"] = target
        g["note"] = [f"Counted over the area's {n:,} LSOAs (2021): {what}" for n in g["n_lsoas"]]
        parts.append(g)
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True).assign(method=LSOA_METHOD)
    for c in ("lci95", "uci95", "lci998", "uci998"):
        out[c] = np.nan  # a count over every LSOA of the area samples nothing (these measures' ci_method is none)
    return out[columns].sort_values(["indicator_id", "area_code"], kind="mergesort").reset_index(drop=True)
