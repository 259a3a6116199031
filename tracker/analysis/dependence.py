"""Dependence on departments: how each headline outcome goes with each department's determinants across local
authorities, a department-level summary, and for each place the departments its health depends on.

Association, not causation: see CAVEAT. docs/methods.md ("Dependence on departments") gives every choice and why.
The pure functions (association_table, summarise_departments, rank_departments) take frames and are deterministic
whatever the order of their input rows; the engine-level functions build those frames from the database."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracker.analysis.data import (
    ENGLAND, Store, get_store, headline_sex, la_rows, population_weighted_utla,
)
from tracker.analysis.icb import latest_per_series
from tracker.analysis.ranking import BOOT_DRAWS, gaps, near_duplicate_groups, rank_departments
from tracker.analysis.stats import (
    POLARITY_SIGN, WORSE, WORST_FIFTH, bh_adjust, spearman, spearman_ci, weighted_rank_correlation,
)

CAVEAT = (
    "Association, not causation. These figures show how places' health outcomes go with wider determinants across "
    "English local authorities (ecological data): they do not show that a determinant causes the outcome, or that "
    "changing it would change health. Places differ in many ways at once (confounding), so one determinant may stand "
    "in for others it travels with; relations between areas need not hold for the people within them (the ecological "
    "fallacy); results can change with the areas used (the modifiable areal unit problem) and with the period. The "
    "Index of Multiple Deprivation is never used as a control: its domains are the determinants themselves (income, "
    "employment, education, health, crime, housing and living environment), so adjusting for it would remove the "
    "very effects being shown. A department's rank reflects the indicators the tracker holds for it."
)

MIN_AREAS = 20  # fewer local authorities than this: no association is computed
ALPHA = 0.05  # Benjamini-Hochberg false discovery rate
N_BOOT = 500
SEED = 20240401
ASSOC_COLUMNS = ["outcome_id", "outcome_sex", "outcome_period", "indicator_id", "title", "department_slug",
                 "department_name", "department_abbr", "is_dhsc", "polarity", "sex", "period", "level", "n", "rho",
                 "rho_lci", "rho_uci", "aligned_rho", "aligned_lci", "aligned_uci", "p_value", "q_value", "significant",
                 "supports", "note"]


def _excluded(ind: pd.DataFrame) -> pd.Series:
    """Why an indicator is not a determinant in this analysis ("" when it is one)."""
    ids = ind.index.to_series()
    reason = pd.Series("", index=ind.index, dtype=object)
    rules = [
        (ind["headline_outcome"].astype(bool), "a headline outcome"),
        (ind["domain"] == "health outcome", "a health outcome, not a determinant"),
        (ids.str.startswith("imd-"), "the overall IMD: a composite of every department's domains"),
        (ids.str.startswith("iod-health-"), "the IoD health domain is built from health outcomes"),
        (ids.str.startswith("iod-") & ids.str.contains("proportion-most-deprived"),
         "the domain's average score is used instead (one measure per domain)"),
        (ind["value_type"].isin(["count", "rank"]), "a count or rank, which follows the size of the area"),
        (ind["la_level"].isna(), "no local authority figures"),
    ]
    for mask, why in reversed(rules):
        reason[mask.to_numpy()] = why
    return reason


def _la_values(store: Store, rows: pd.DataFrame, level: dict[str, str]) -> pd.DataFrame:
    """LA values of several indicators, each at its comparison `level` ('ltla' or 'utla'): indicator_id, period,
    period_end, area_code, value, level. At upper tier a district-level indicator uses published county figures where
    they exist, else the population-weighted mean of the county's districts."""
    keys = ["indicator_id", "period", "period_end"]
    rows = rows[rows["value"].notna()]
    at = rows["indicator_id"].map(level)
    lower = rows[(at == "ltla") & (rows["area_type"] == "ltla")]
    upper = rows[at == "utla"]
    published = la_rows(store, upper, "utla")
    weighted = population_weighted_utla(
        store, upper[upper["indicator_id"].map(store.indicators["la_level"]) == "ltla"], keys)
    upper = pd.concat([published[keys + ["area_code", "value"]], weighted], ignore_index=True)
    upper = upper.drop_duplicates(keys + ["area_code"])  # a published county figure wins
    out = pd.concat([lower[keys + ["area_code", "value"]], upper], ignore_index=True)
    return out.assign(level=out["indicator_id"].map(level))


def _usable_periods(values: pd.DataFrame) -> pd.DataFrame:
    """(indicator_id, level, period, period_end) with at least MIN_AREAS local authorities."""
    n = values.groupby(["indicator_id", "level", "period", "period_end"]).size().rename("n").reset_index()
    return n[n["n"] >= MIN_AREAS]


def association_pairs(store: Store, outcome_id: str, sex: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The aligned data behind the associations for an outcome (memoised): (pairs, choices).

    pairs: indicator_id, area_code, x (determinant), y (outcome), cluster (upper-tier authority, for the bootstrap).
    choices: one row per determinant: indicator_id, sex, level, period, outcome_sex, outcome_period, note."""
    out_sex = headline_sex(store, outcome_id, sex)
    return store.derived(("pairs", outcome_id, out_sex), lambda: _pairs(store, outcome_id, out_sex))


def _pairs(store: Store, outcome_id: str, out_sex: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    ind = store.indicators
    o_level = ind.at[outcome_id, "la_level"] if outcome_id in ind.index else None
    reasons = _excluded(ind)
    dets = [d for d in ind.index[reasons == ""] if d != outcome_id]
    level = {d: "ltla" if (o_level == "ltla" and ind.at[d, "la_level"] == "ltla") else "utla" for d in dets}
    # only the columns used: copies of every column of the local-authorities' rows (and a split of every observation
    # by indicator for the outcome's) peaked about 150 MB higher on the snapshot
    obs = store.obs[["indicator_id", "area_code", "area_type", "sex", "period", "period_end", "value"]]
    rows = obs[obs["indicator_id"].isin(dets) & obs["area_type"].isin(["ltla", "utla"])]
    la_sexes = rows.groupby("indicator_id")["sex"].unique()
    d_sex = {}  # sex-matched where the determinant is published by sex for local authorities
    for d in dets:
        have = set(la_sexes.get(d, []))
        d_sex[d] = next((c for c in (out_sex, headline_sex(store, d)) if c in have), min(have) if have else None)
    values = _la_values(store, rows[rows["sex"] == rows["indicator_id"].map(d_sex)], level)

    choices = pd.DataFrame({"indicator_id": dets, "sex": [d_sex[d] for d in dets], "level": [level[d] for d in dets]})
    o_rows = obs[(obs["indicator_id"] == outcome_id) & (obs["sex"] == out_sex) & obs["area_type"].isin(["ltla", "utla"])]
    levels = sorted(set(level.values())) if o_level is not None else []
    outcome = [_la_values(store, o_rows, {outcome_id: lv}) for lv in levels]
    o_periods = _usable_periods(pd.concat(outcome, ignore_index=True)) if outcome else pd.DataFrame()
    if o_periods.empty:  # thin data: too few areas with the outcome for any association; say so, never fail
        choices = choices.assign(period=None, outcome_sex=out_sex, outcome_period=None,
                                 note=f"too few areas: fewer than {MIN_AREAS} local authorities have the outcome")
        empty = pd.DataFrame({"indicator_id": pd.Series(dtype=object), "area_code": pd.Series(dtype=object),
                              "x": pd.Series(dtype=float), "y": pd.Series(dtype=float), "cluster": pd.Series(dtype=object)})
        return empty, choices.sort_values("indicator_id").reset_index(drop=True)
    outcome = pd.concat(outcome, ignore_index=True)
    o_periods = o_periods.sort_values(["level", "period_end", "period"])
    o_periods = o_periods.drop_duplicates("level", keep="last").set_index("level")  # the outcome's latest period
    periods = _usable_periods(values)
    periods = periods[periods["level"].isin(o_periods.index)].copy()
    periods["gap"] = (periods["period_end"] - pd.to_datetime(periods["level"].map(o_periods["period_end"]))).abs()
    chosen = periods.sort_values(["indicator_id", "gap", "period_end", "period"], ascending=[True, True, False, False])
    chosen = chosen.drop_duplicates("indicator_id").set_index("indicator_id")["period"]  # the nearest period

    choices["period"] = choices["indicator_id"].map(chosen)
    choices["outcome_sex"] = out_sex
    choices["outcome_period"] = choices["level"].map(o_periods["period"])
    choices["note"] = np.where(choices["period"].isna(), f"fewer than {MIN_AREAS} local authorities with figures", "")

    x = values.merge(choices[["indicator_id", "period"]], on=["indicator_id", "period"])
    y = outcome.merge(o_periods["period"].reset_index(), on=["level", "period"])
    pairs = x.rename(columns={"value": "x"}).merge(
        y[["level", "area_code", "value"]].rename(columns={"value": "y"}), on=["level", "area_code"])
    pairs["cluster"] = pairs["area_code"].map(store.parent("utla")).fillna(pairs["area_code"])
    cols = ["indicator_id", "area_code", "x", "y", "cluster"]
    pairs = pairs[cols].sort_values(["indicator_id", "area_code"]).reset_index(drop=True)
    return pairs, choices.sort_values("indicator_id").reset_index(drop=True)


def association_table(pairs: pd.DataFrame, meta: pd.DataFrame, outcome_polarity: str) -> pd.DataFrame:
    """Spearman's rho per determinant from `pairs` (indicator_id, area_code, x, y), with n, a 95% CI (Fisher z,
    Bonett-Wright SE), p-value and Benjamini-Hochberg q-value across all determinants given.

    meta: indexed by indicator_id with polarity. aligned_rho = rho x sign(determinant) x sign(outcome), where sign
    is +1 when a higher value is worse: positive means "worse determinant goes with worse outcome". A determinant
    with no polarity keeps rho (sign only) and has no aligned_rho. supports: aligned_rho > 0 and q < ALPHA.
    Sorted by aligned_rho (largest first, missing last), then indicator_id. Row order of `pairs` does not matter."""
    rows = []
    o_sign = POLARITY_SIGN[outcome_polarity]
    for det, g in pairs.sort_values(["indicator_id", "area_code"]).groupby("indicator_id", sort=True):
        rho, p, n = spearman(g["x"], g["y"])
        rows.append({"indicator_id": det, "n": n, "rho": rho, "p_value": p})
    cols = ["indicator_id", "n", "rho", "p_value"]
    out = pd.DataFrame(rows, columns=cols)
    out["rho_lci"], out["rho_uci"] = spearman_ci(out["rho"].to_numpy(float), out["n"].to_numpy(float))
    sign = out["indicator_id"].map(meta["polarity"]).map(POLARITY_SIGN).astype(float) * o_sign
    out["aligned_rho"] = out["rho"] * sign
    lo, hi = out["rho_lci"] * sign, out["rho_uci"] * sign
    out["aligned_lci"], out["aligned_uci"] = np.fmin(lo, hi), np.fmax(lo, hi)
    out["q_value"] = bh_adjust(out["p_value"].to_numpy(float))
    out["significant"] = out["q_value"] < ALPHA
    out["supports"] = out["significant"] & (out["aligned_rho"] > 0)
    out["note"] = np.where(sign.isna(), "no polarity: sign only, not used in the department ranking", "")
    return out.sort_values(["aligned_rho", "indicator_id"], ascending=[False, True], na_position="last",
                           kind="mergesort").reset_index(drop=True)


def associations(engine, outcome_id: str, sex: str | None = None) -> pd.DataFrame:
    """The association of a headline outcome with every wider-determinant indicator across local authorities.

    sex: the outcome's sex (default its headline sex); each determinant uses the same sex where it is published
    by sex, else its own headline sex. Each pair is taken in the outcome's latest period and the determinant's
    nearest period, at district level when both are published for districts, otherwise at upper-tier level (county
    figures as published, or district values weighted by population). Columns (ASSOC_COLUMNS): the choices made
    (sex, period, level), n, rho and its 95% CI, aligned_rho (positive = worse determinant goes with worse outcome)
    and its CI, p_value, q_value (Benjamini-Hochberg across all determinants for this outcome and sex), significant,
    supports (significant and aligned_rho > 0: used in the department ranking) and note."""
    store = get_store(engine)
    store.indicator(outcome_id)
    return associations_for(store, outcome_id, headline_sex(store, outcome_id, sex)).copy()


def associations_for(store: Store, outcome_id: str, out_sex: str) -> pd.DataFrame:
    """associations() on a Store (memoised)."""
    return store.derived(("associations", outcome_id, out_sex), lambda: _associations(store, outcome_id, out_sex))


def _associations(store: Store, outcome_id: str, out_sex: str) -> pd.DataFrame:
    ind = store.indicators
    pairs, choices = association_pairs(store, outcome_id, out_sex)
    table = association_table(pairs, ind, ind.at[outcome_id, "polarity"])
    if choices.empty:
        return pd.DataFrame(columns=ASSOC_COLUMNS)
    out = choices.rename(columns={"note": "choice_note"}).merge(table, on="indicator_id", how="left")
    out["note"] = out["choice_note"].where(out["choice_note"] != "", out["note"]).fillna("")
    out["significant"] = out["significant"].fillna(False).astype(bool)
    out["supports"] = out["supports"].fillna(False).astype(bool)
    out["outcome_id"] = outcome_id
    meta = ["title", "department_slug", "department_name", "department_abbr", "is_dhsc", "polarity"]
    out = out.join(ind[meta], on="indicator_id")
    return out[ASSOC_COLUMNS].sort_values(["aligned_rho", "indicator_id"], ascending=[False, True],
                                          na_position="last", kind="mergesort").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# By department


def bootstrap_aligned_rho(pairs: pd.DataFrame, meta: pd.DataFrame, outcome_polarity: str, n_boot: int = N_BOOT,
                          seed: int = SEED, known: tuple[list, pd.DataFrame] | None = None) -> pd.DataFrame:
    """B x determinant aligned rho from a cluster bootstrap: upper-tier authorities (all their districts together)
    resampled with replacement, the same draw for every determinant. pairs: indicator_id, area_code, x, y, cluster;
    meta: polarity by indicator id. Deterministic for a seed, whatever the row order.

    known: (clusters, columns) of an earlier bootstrap with this seed and n_boot (boot_for); a determinant's column
    is taken from it instead of computed again when the clusters drawn from are the same (the same draws) and the
    caller vouches that the determinant's pairs are unchanged."""
    pairs = pairs.sort_values(["indicator_id", "area_code"])
    clusters = np.sort(pairs["cluster"].unique())
    if known is not None and (list(known[0]) != clusters.tolist() or len(known[1]) != n_boot):
        known = None
    rng = np.random.default_rng(seed)
    draws = (rng.multinomial(len(clusters), np.full(len(clusters), 1 / len(clusters)), size=n_boot)  # B x clusters
             if len(clusters) else np.zeros((n_boot, 0), dtype=int))  # thin data: no pairs, no departments
    position = pd.Series(np.arange(len(clusters)), index=clusters)
    o_sign = POLARITY_SIGN[outcome_polarity]
    boot = {}
    for det, g in pairs.groupby("indicator_id", sort=True):
        if known is not None and det in known[1].columns:
            boot[det] = known[1][det].to_numpy()
            continue
        w = draws[:, position[g["cluster"]].to_numpy()]
        sign = POLARITY_SIGN[meta.at[det, "polarity"]] * o_sign
        boot[det] = weighted_rank_correlation(g["x"].to_numpy(float), g["y"].to_numpy(float), w) * sign
    return pd.DataFrame(boot, index=pd.RangeIndex(n_boot))


def summarise_departments(pairs: pd.DataFrame, table: pd.DataFrame, meta: pd.DataFrame, outcome_polarity: str,
                          n_boot: int = N_BOOT, seed: int = SEED, bootstrap=bootstrap_aligned_rho) -> pd.DataFrame:
    """For each department: the median aligned rho over its determinants (those with a polarity), with a 95%
    percentile interval from a cluster bootstrap that resamples upper-tier authorities (all their districts together)
    with replacement, the same draw for every indicator so the median is recomputed coherently.

    pairs: indicator_id, area_code, x, y, cluster. table: association_table output. meta: indicator metadata with
    department_slug, department_name, department_abbr, is_dhsc, polarity. Deterministic for a given seed and
    independent of row order. Columns: department_slug, department_name, department_abbr, is_dhsc, n_indicators,
    n_supporting, median_aligned_rho, lci, uci, strongest_indicator, strongest_aligned_rho."""
    used = table[table["aligned_rho"].notna()].copy()
    used["department_slug"] = used["indicator_id"].map(meta["department_slug"])
    boot = bootstrap(pairs[pairs["indicator_id"].isin(used["indicator_id"])], meta, outcome_polarity, n_boot, seed)
    rows = []
    for dept, g in used.sort_values("indicator_id").groupby("department_slug", sort=True):
        stacked = np.column_stack([boot[d] for d in g["indicator_id"]])
        medians = np.nanmedian(stacked, axis=1)
        best = g.sort_values(["aligned_rho", "indicator_id"], ascending=[False, True]).iloc[0]
        rows.append({"department_slug": dept, "n_indicators": len(g), "n_supporting": int(g["supports"].sum()),
                     "median_aligned_rho": float(g["aligned_rho"].median()),
                     "lci": float(np.nanpercentile(medians, 2.5)), "uci": float(np.nanpercentile(medians, 97.5)),
                     "strongest_indicator": best["indicator_id"], "strongest_aligned_rho": float(best["aligned_rho"])})
    cols = ["department_slug", "department_name", "department_abbr", "is_dhsc", "n_indicators", "n_supporting",
            "median_aligned_rho", "lci", "uci", "strongest_indicator", "strongest_aligned_rho"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c not in ("department_name", "department_abbr", "is_dhsc")])
    names = meta.drop_duplicates("department_slug").set_index("department_slug")
    for c in ("department_name", "department_abbr", "is_dhsc"):
        out[c] = out["department_slug"].map(names[c])
    return out[cols].sort_values(["median_aligned_rho", "department_slug"], ascending=[False, True],
                                 kind="mergesort").reset_index(drop=True)


def department_summary(engine, outcome_id: str, sex: str | None = None) -> pd.DataFrame:
    """How strongly the outcome goes with each department's indicators: median aligned rho over the department's
    determinants with a 95% cluster-bootstrap interval (500 resamples of upper-tier authorities, fixed seed), the
    number of indicators and of those supporting (significant after BH, aligned rho > 0), and the strongest one.
    See summarise_departments for the columns. Sorted by median_aligned_rho, largest first."""
    store = get_store(engine)
    store.indicator(outcome_id)
    out_sex = headline_sex(store, outcome_id, sex)

    def build():
        pairs, _ = association_pairs(store, outcome_id, out_sex)
        table = associations_for(store, outcome_id, out_sex)
        return summarise_departments(pairs, table, store.indicators, store.indicators.at[outcome_id, "polarity"],
                                     bootstrap=lambda *args: boot_for(store, outcome_id, out_sex, *args))
    return store.derived(("department_summary", outcome_id, out_sex), build).copy()


def boot_for(store: Store, outcome_id: str, out_sex: str, pairs: pd.DataFrame, meta: pd.DataFrame,
             outcome_polarity: str, n_boot: int, seed: int = SEED) -> pd.DataFrame:
    """bootstrap_aligned_rho for an outcome of a Store, its columns kept in the memo ("boot", outcome, sex, n_boot,
    seed) as (clusters, columns): a build after a refresh (tracker.analysis.reuse) puts there the previous build's
    columns of the determinants whose pairs are unchanged, and only the others are computed again."""
    key = ("boot", outcome_id, out_sex, n_boot, seed)
    with store.lock:
        known = store.memo.get(key)
        boot = bootstrap_aligned_rho(pairs, meta, outcome_polarity, n_boot, seed, known=known)
        store.memo[key] = (np.sort(pairs["cluster"].unique()).tolist(), boot)
    return boot


# ---------------------------------------------------------------------------------------------------------------
# By place


def place_evidence(store: Store, outcome_id: str, out_sex: str) -> pd.DataFrame:
    """For every place (England, each region, ICB, county and district/unitary) and every supporting determinant:
    the place's latest value, the England value, the comparison (descriptive only), sd (of local-authority values
    in that period) and gap (ranking.gaps: SDs from England, positive = worse, 0 when better) (memoised)."""
    return store.derived(("place_evidence", outcome_id, out_sex), lambda: _place_evidence(store, outcome_id, out_sex))


def is_worse(frame: pd.DataFrame) -> pd.Series:
    """1.0 where a row (with `comparison`, `comparison_level`, `position`, `position_only`) is significantly worse than England (95%
    CI), or -- for an indicator without CIs -- in the worst fifth of areas; else 0.0. The one definition of
    "worse" used by the rankings, the Place page and the Department page."""
    ci_worse = (frame["comparison"] == WORSE) & frame["comparison_level"].isin(["95%", "99.8%"])
    quint = frame["position_only"].fillna(False).astype(bool) & (frame["position"] == WORST_FIFTH)
    return (ci_worse | quint).astype(float)


def department_places(engine, department_slug: str, area_codes) -> pd.DataFrame:
    """Per area (of `area_codes`): on how many of the department's indicators (latest period, headline sex) it is
    worse than England (see is_worse) and on how many it was compared (a direction and a comparison, or a position
    for an indicator without a test). Columns area_code, area_name, worse (= significantly_worse, a significance
    judgement, + worst_fifth, a position on indicators that cannot be tested), compared; sorted most-worse first,
    then by name."""
    from tracker.analysis.place import latest_observations

    store = get_store(engine)
    ids = store.indicators.index[store.indicators["department_slug"] == department_slug].tolist()
    rows = latest_observations(engine, area_codes, ids)
    rows = rows[rows["value"].notna()].assign(polarity=lambda f: f["indicator_id"].map(store.indicators["polarity"]))
    compared = (rows["comparison"].ne("Not compared") | rows["position_only"].fillna(False).astype(bool)) \
        & rows["polarity"].ne("no_judgement")
    worse = is_worse(rows).astype(bool) & compared
    significant = worse & (rows["comparison"] == WORSE)
    out = pd.DataFrame({"area_code": rows["area_code"], "area_name": rows["area_name"], "worse": worse,
                        "significantly_worse": significant, "worst_fifth": worse & ~significant, "compared": compared})
    out = out.groupby(["area_code", "area_name"], as_index=False)[
        ["worse", "significantly_worse", "worst_fifth", "compared"]].sum()
    return out.sort_values(["worse", "compared", "area_name"], ascending=[False, True, True]).reset_index(drop=True)


def _place_evidence(store: Store, outcome_id: str, out_sex: str) -> pd.DataFrame:
    from tracker.analysis.place import icb_rows, judged_rows_of

    table = associations_for(store, outcome_id, out_sex)
    sup = table[table["supports"]][["indicator_id", "sex", "aligned_rho", "q_value"]]
    ind = store.indicators
    sign = ind["polarity"].map(POLARITY_SIGN)
    keys = ["indicator_id", "period", "sex"]
    cols = ["indicator_id", "sex", "area_code", "period", "value", "england_value", "england_from", "comparison_label",
            "position", "sd", "gap"]
    # the supporting determinants' rows, only the columns used (every column of them peaked about 60 MB higher)
    every = judged_rows_of(store, sup["indicator_id"].unique(), [
        "indicator_id", "sex", "area_code", "area_type", "period", "period_end", "value", "england_value",
        "comparison_label", "position"]).merge(sup[["indicator_id", "sex"]], on=["indicator_id", "sex"])
    every = every[every["value"].notna()]
    level = every["indicator_id"].map(ind["la_level"])
    # the yardstick: the standard deviation of local-authority values at the indicator's own level, in each period
    own = pd.concat([every[(level == "ltla") & (every["area_type"] == "ltla")],
                     la_rows(store, every[level == "utla"], "utla")], ignore_index=True)
    sd = own.groupby(keys)["value"].std()
    # where England itself is not published (e.g. the ONS Health Index), the yardstick's centre is the mean of
    # local-authority values weighted by mid-2020 population, and the evidence says so
    utla_of = store.parent("utla")
    utla_pop = store.population.groupby(store.population.index.map(lambda c: utla_of.get(c, c))).sum()
    w = own["area_code"].map(store.population).fillna(own["area_code"].map(utla_pop))
    sums = own.assign(w=w, wv=w * own["value"]).dropna(subset=["w"]).groupby(keys)[["wv", "w"]].sum()
    la_mean = sums["wv"] / sums["w"]

    def with_gap(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        at = pd.MultiIndex.from_frame(frame[keys])
        frame["sd"] = sd.reindex(at).to_numpy()
        estimated = frame["england_value"].isna()
        frame["england_value"] = frame["england_value"].fillna(pd.Series(la_mean.reindex(at).to_numpy(), frame.index))
        frame["england_from"] = np.where(estimated & frame["england_value"].notna(),
                                         "mean of local authorities weighted by population", "published")
        frame["gap"] = gaps(frame["value"], frame["england_value"], frame["sd"], frame["indicator_id"].map(sign))
        return frame

    rows = with_gap(latest_per_series(every, ["indicator_id", "area_code", "sex"]))
    level = rows["indicator_id"].map(ind["la_level"])

    # local authorities: districts/unitaries and counties; a district takes its county's row for county-level data
    ltla = rows[(rows["area_type"] == "ltla") & (level == "ltla")]
    utla = la_rows(store, rows, "utla")
    to_utla = store.parent("utla")
    districts = store.areas.index[store.areas["type"] == "ltla"]
    county_level = utla[utla["indicator_id"].map(ind["la_level"]) == "utla"]
    spread = pd.DataFrame({"place_code": districts, "area_code": [to_utla.get(c, c) for c in districts]}).merge(
        county_level, on="area_code")
    counties = utla[utla["area_type"] == "utla"].assign(place_code=lambda f: f["area_code"])
    regions = rows[rows["area_type"] == "region"].assign(place_code=lambda f: f["area_code"])
    la_ev = pd.concat([ltla.assign(place_code=ltla["area_code"]), spread, counties, regions], ignore_index=True)
    la_ev = la_ev.drop_duplicates(["place_code", "indicator_id"])

    icb = icb_rows(store).merge(sup[["indicator_id", "sex"]], on=["indicator_id", "sex"])
    icb = with_gap(latest_per_series(icb[icb["value"].notna()], ["indicator_id", "area_code", "sex"]))
    icb = icb.assign(place_code=icb["area_code"])[cols + ["place_code"]]

    # England cannot be apart from itself: its gap is the mean shortfall of local authorities (at the indicator's
    # own level, latest period; zero for those better than England)
    own_latest = pd.concat([ltla, county_level], ignore_index=True)
    shortfall = own_latest.groupby("indicator_id")["gap"].mean()
    eng = rows[rows["area_code"] == ENGLAND].set_index("indicator_id")
    england = pd.DataFrame({"indicator_id": shortfall.index, "gap": shortfall.to_numpy(), "place_code": ENGLAND,
                            "area_code": ENGLAND})
    england = england.join(eng[["sex", "period", "value", "sd", "england_from"]], on="indicator_id")
    england["england_value"] = england["value"]
    england["england_from"] = england["england_from"].fillna("not published")
    england["comparison_label"] = [f"local authorities fall short of England by {g:.2f} SD on average" if g == g
                                   else "not computed (no spread of local-authority values)" for g in england["gap"]]

    ev = pd.concat([la_ev, icb, england], ignore_index=True)
    ev = ev.merge(sup[["indicator_id", "aligned_rho", "q_value"]], on="indicator_id")
    ev["title"] = ev["indicator_id"].map(ind["title"])
    ev = ev.rename(columns={"area_code": "value_from"})
    keep = ["place_code", "indicator_id", "title", "sex", "period", "value_from", "value", "england_value",
            "england_from", "comparison_label", "position", "sd", "gap", "aligned_rho", "q_value"]
    return ev[keep].sort_values(["place_code", "indicator_id"]).reset_index(drop=True)


@dataclass(frozen=True)
class PlaceDepartments:
    """place_departments' answer: the ranking, the evidence behind each rank, the share outside DHSC."""

    area_code: str
    outcome_id: str
    sex: str
    ranking: pd.DataFrame
    evidence: pd.DataFrame
    share_outside_dhsc: float
    caveat: str = CAVEAT


def all_place_departments(engine, outcome_id: str, sex: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranking, evidence) of rank_departments for every place at once (memoised)."""
    store = get_store(engine)
    store.indicator(outcome_id)
    ranking, evidence = ranking_for(store, outcome_id, headline_sex(store, outcome_id, sex))
    return ranking.copy(), evidence.copy()


def ranking_for(store: Store, outcome_id: str, out_sex: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """all_place_departments() on a Store (memoised; read only)."""
    return place_ranking(store, outcome_id, out_sex), ranked_evidence(store, outcome_id, out_sex)


# The ranking and its evidence are memoised (and saved) apart: the ranking is small (a row per place and department)
# and the evidence large (a row per place and determinant), and exports read only the ranking, so a process that
# reads the saved analysis decodes the evidence only where a page shows it.
def place_ranking(store: Store, outcome_id: str, out_sex: str) -> pd.DataFrame:
    """Every place's department ranking for the outcome (rank_departments' first frame; memoised; read only)."""
    return store.derived(("place_ranking", outcome_id, out_sex), lambda: _rank(store, outcome_id, out_sex)[0])


def ranked_evidence(store: Store, outcome_id: str, out_sex: str) -> pd.DataFrame:
    """The evidence behind every place's ranking (rank_departments' second frame; memoised; read only)."""
    return store.derived(("ranked_evidence", outcome_id, out_sex), lambda: _rank(store, outcome_id, out_sex)[1])


def _rank(store: Store, outcome_id: str, out_sex: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rank_departments for every place, both frames memoised (the ranking under "place_ranking", the evidence under
    "ranked_evidence"): whichever is asked for first computes both."""
    ranking, evidence = rank_departments(*ranking_inputs(store, outcome_id, out_sex))
    with store.lock:
        store.memo.setdefault(("place_ranking", outcome_id, out_sex), ranking)
        store.memo.setdefault(("ranked_evidence", outcome_id, out_sex), evidence)
    return ranking, evidence


def ranking_inputs(store: Store, outcome_id: str, out_sex: str):
    """(evidence, indicator metadata, groups of near-duplicate determinants, bootstrap aligned rho): what
    rank_departments needs for every place."""
    evidence = place_evidence(store, outcome_id, out_sex)
    pairs, _ = association_pairs(store, outcome_id, out_sex)
    pairs = pairs[pairs["indicator_id"].isin(evidence["indicator_id"].unique())]
    groups = near_duplicate_groups(pairs, store.indicators["department_slug"])
    boot = boot_for(store, outcome_id, out_sex, pairs, store.indicators, store.indicators.at[outcome_id, "polarity"],
                    BOOT_DRAWS)
    return evidence, store.indicators, groups, boot


def place_departments(engine, area_code: str, outcome_id: str, sex: str | None = None) -> PlaceDepartments:
    """The departments a place's health (the outcome, in `sex`) depends on, ranked, with the evidence.

    Place: England, a region or county (published figures, else built from its local authorities), an ICB (its ICB
    figures) or a district/unitary (a district uses its county's figure for county-level indicators). Evidence:
    every determinant that goes significantly (BH q < 0.05) with the outcome in the expected direction, with the
    place's value, the England value, gap (SDs of local-authority values from England, positive = worse, 0 when
    better; for England the mean shortfall of local authorities), aligned_rho and contribution. Score, rank
    interval, "rests on one indicator", held-back departments and top-3 stability: tracker.analysis.ranking.
    Returns PlaceDepartments(ranking, evidence, share_outside_dhsc, caveat)."""
    store = get_store(engine)
    if area_code not in store.areas.index:
        raise KeyError(f"{area_code!r} is not an area code the tracker knows")
    store.indicator(outcome_id)
    out_sex = headline_sex(store, outcome_id, sex)
    ranking, evidence = ranking_for(store, outcome_id, out_sex)  # read only: the place's rows are copied out
    mine = ranking[ranking["place_code"] == area_code].reset_index(drop=True)
    ev = evidence[evidence["place_code"] == area_code].reset_index(drop=True)
    share = float(mine["share_outside_dhsc"].iloc[0]) if len(mine) else float("nan")
    return PlaceDepartments(area_code, outcome_id, out_sex, mine, ev, share)


def scatter_data(engine, indicator_id: str, outcome_id: str, sex: str | None = None) -> pd.DataFrame:
    """The points behind one association: area_code, area_name, determinant (x), outcome (y), with the periods, sex
    and level used (as in associations), region_code and icb_code (largest share) for colouring."""
    store = get_store(engine)
    store.indicator(indicator_id)
    pairs, choices = association_pairs(store, outcome_id, sex)
    pick = choices[choices["indicator_id"] == indicator_id]
    if pick.empty:
        raise ValueError(f"{indicator_id} is not used as a determinant of {outcome_id}: "
                         f"{_excluded(store.indicators).get(indicator_id) or 'no local authority figures'}")
    c = pick.iloc[0]
    out = pairs[pairs["indicator_id"] == indicator_id][["area_code", "x", "y"]].rename(
        columns={"x": "determinant", "y": "outcome"})
    out.insert(1, "area_name", out["area_code"].map(store.areas["name"]))
    out["determinant_period"], out["determinant_sex"] = c["period"], c["sex"]
    out["outcome_period"], out["outcome_sex"], out["level"] = c["outcome_period"], c["outcome_sex"], c["level"]
    out["region_code"] = out["area_code"].map(store.parent("region"))
    out["icb_code"] = out["area_code"].map(store.parent("icb"))
    return out.sort_values("area_code").reset_index(drop=True)
