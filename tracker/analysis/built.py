"""County (E10) and region (E12) figures built from their local authorities where the source does not publish them,
labelled approximate as ICB figures are (docs/methods.md, "County and region figures").

* a published county or region figure is always used as it is;
* otherwise a county takes the mean of its districts' values, and a region the mean of its local authorities' values
  (districts and unitaries, or upper-tier authorities for indicators published only for them), weighted by ONS
  mid-2020 population, when those with a value hold at least MIN_COVERAGE of its population;
* counts are summed instead, only when every local authority has one; ranks are never averaged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracker.analysis.data import POPULATION_NOTE, Store, indicator_batches
from tracker.analysis.icb import MIN_COVERAGE

METHOD_WEIGHTED = "population-weighted average (approximate)"
METHOD_SUM = "sum of LA values"
KEYS = ["indicator_id", "period", "sex"]


def built_rows(store: Store) -> pd.DataFrame:
    """Observation rows (Store.obs layout plus method and approximate) for counties and regions the source does not
    publish (memoised)."""
    return store.derived(("built_rows",), lambda: _build(store))


def _children(store: Store) -> pd.DataFrame:
    """(parent_code, parent_type, child_code, child_level, w): counties' districts; regions' districts and unitaries
    (child_level ltla) and regions' upper-tier authorities (child_level utla); w = mid-2020 population."""
    links = store.links
    counties = links[(links["parent_type"] == "utla") & links["parent_code"].str.startswith("E10")]
    county = counties[["parent_code", "child_code"]].assign(parent_type="utla", child_level="ltla")
    to_region = links[links["parent_type"] == "region"][["child_code", "parent_code"]]
    region_ltla = to_region[to_region["child_code"].isin(store.areas.index[store.areas["type"] == "ltla"])]
    region_ltla = region_ltla.assign(parent_type="region", child_level="ltla")
    # upper tier of each region: its counties and unitaries (a county's region is its districts' region)
    utla_of = store.parent("utla")
    region_utla = region_ltla.assign(child_code=region_ltla["child_code"].map(utla_of).fillna(region_ltla["child_code"]))
    region_utla = region_utla.drop_duplicates(["parent_code", "child_code"]).assign(child_level="utla")
    out = pd.concat([county, region_ltla, region_utla], ignore_index=True)
    pop = store.population
    utla_pop = pop.groupby(pop.index.map(lambda c: utla_of.get(c, c))).sum()
    out["w"] = np.where(out["child_level"] == "ltla", out["child_code"].map(pop), out["child_code"].map(utla_pop))
    return out.dropna(subset=["w"])


def _build(store: Store) -> pd.DataFrame:
    ind = store.indicators
    children = _children(store)
    # only the columns the figures are made from: each row is repeated for its county and its region below
    obs = store.obs.loc[store.obs["value"].notna() & store.obs["area_type"].isin(["ltla", "utla"]),
                        KEYS + ["area_code", "value", "period_start", "period_end", "run_id"]]
    level = obs["indicator_id"].map(ind["la_level"])
    vt = ind["value_type"]
    parts = []
    for child_level in ("ltla", "utla"):
        src = obs[level == child_level]
        kids = children[children["child_level"] == child_level]
        size = kids.groupby("parent_code").agg(n_all=("w", "size"), w_all=("w", "sum"))
        # a batch of indicators at a time: each row is repeated for its county and its region (all at once, about
        # 70 MB of working copies on the snapshot); every figure lies within one indicator, so the same rows and order
        for batch in indicator_batches(src["indicator_id"].unique()):
            rows = src[src["indicator_id"].isin(batch)].merge(kids, left_on="area_code", right_on="child_code")
            if rows.empty:
                continue
            rows["wv"] = rows["w"] * rows["value"]
            g = rows.groupby(KEYS + ["parent_code", "parent_type"], as_index=False).agg(
                wv=("wv", "sum"), w=("w", "sum"), total=("value", "sum"), n=("value", "size"),
                period_start=("period_start", "first"), period_end=("period_end", "first"), run_id=("run_id", "max"))
            g = g.join(size, on="parent_code")
            kind = g["indicator_id"].map(vt)
            summed = (kind == "count") & (g["n"] == g["n_all"])
            weighted = ~kind.isin(["count", "rank"]) & (g["w"] / g["w_all"] >= MIN_COVERAGE)
            g = g[summed | weighted].copy()
            summed = summed[g.index]
            g["value"] = np.where(summed, g["total"], g["wv"] / g["w"])
            g["method"] = np.where(summed, METHOD_SUM, METHOD_WEIGHTED)
            g["coverage"] = g["w"] / g["w_all"]
            parts.append(g)
    if not parts:
        return store.obs.iloc[:0].assign(method=None, approximate=None)
    g = pd.concat(parts, ignore_index=True)
    # a published figure wins; a region is built from districts where it can be, else from upper tier
    published = store.obs[store.obs["area_type"].isin(["utla", "region"])][KEYS + ["area_code"]]
    g = g.rename(columns={"parent_code": "area_code", "parent_type": "area_type"})
    g = g.merge(published.drop_duplicates(), how="left", indicator=True)
    g = g[g.pop("_merge") == "left_only"].drop_duplicates(KEYS + ["area_code"], keep="first")
    g["approximate"] = g["method"] == METHOD_WEIGHTED
    of = np.where(g["area_type"] == "utla", "the county's districts", "the region's local authorities")
    g["note"] = [f"Approximate: average of {o} weighted by {POPULATION_NOTE} ({c:.0%} of the population with a value)"
                 if a else f"Sum of {o}" for o, c, a in zip(of, g["coverage"], g["approximate"])]
    out = pd.DataFrame({c: g[c] if c in g.columns else np.nan for c in store.obs.columns})
    out["ci_source"] = None
    out["method"], out["approximate"] = g["method"], g["approximate"]
    return out.sort_values(["indicator_id", "sex", "area_code", "period_end", "period"], kind="mergesort").reset_index(drop=True)
