"""The department ranking for a place: how far the place is from England on each supporting determinant, times how
strongly that determinant goes with the outcome, weighed by how much independent evidence there is.

Pure functions on frames (deterministic whatever the order of their input rows); docs/methods.md, section 7.3,
gives every choice, why, and a worked example from the bundled data.

* gap: the place's distance from England in standard deviations of local-authority values, signed so that positive
  is worse and set to zero when the place is better (capped at GAP_CAP). It does not use the comparison category.
* contribution of a determinant = aligned rho x gap. Near-duplicate determinants (LA values with |rho| >=
  DUPLICATE_RHO, same department) are one line of evidence: the group counts once, with its largest contribution.
* department score = sum of its groups' contributions / (number of its groups with a figure + PRIOR_WEIGHT): the
  mean, shrunk towards "no gap" as if one more indicator showed none, so one indicator weighs less than several.
* a department whose positive evidence is one group with a gap under MIN_SINGLE_GAP is held back: shown, not ranked;
  one with a score of zero (the place is no worse than England on any of its determinants) is not ranked either.
* share outside DHSC: the part of the ranked departments' total score held by departments other than DHSC, given
  only when that total is at least MIN_TOTAL (a place close to England on everything has no share worth giving).
* rank interval: BOOT_DRAWS draws that resample areas (the bootstrap rho of every determinant, clusters of upper-tier
  authorities) and, within each department, its groups of determinants; 2.5th and 97.5th percentiles of the rank.
* top-3 stability: the share of leave-one-out runs (each group of determinants left out in turn) that keep the
  place's top three in the same order, and the determinants whose removal changes it."""

from __future__ import annotations

import numpy as np
import pandas as pd

GAP_CAP = 3.0  # SDs: one extreme area (City of London, Isles of Scilly) cannot dominate a score
MIN_SINGLE_GAP = 0.25  # SDs: a department resting on one determinant closer to England than this is held back
MIN_TOTAL = 0.1  # a share of less than this (a typical rho of 0.4 x a quarter SD) is not a share worth giving
PRIOR_WEIGHT = 1.0  # the score counts one extra determinant showing no gap
DUPLICATE_RHO = 0.95  # |Spearman rho| between two determinants' LA values above which they are one line of evidence
MIN_COMMON = 20  # local authorities two determinants must share to be compared
BOOT_DRAWS = 200
SEED = 20240401

RANKING_COLUMNS = ["place_code", "rank", "rank_lci", "rank_uci", "department_slug", "department_name",
                   "department_abbr", "is_dhsc", "score", "n_indicators", "n_worse", "max_gap",
                   "rests_on_one_indicator", "held_back", "share_of_total", "share_outside_dhsc", "top3_stability",
                   "top3_changed_by"]


def gaps(value, england, sd, polarity_sign) -> np.ndarray:
    """Polarity-aligned gap to England in SDs: (value - England) / SD x sign (+1 where higher is worse), zero where
    the place is better or equal, capped at GAP_CAP; NaN where anything is missing or SD is not positive."""
    v, e, s, p = (np.asarray(x, dtype=float) for x in (value, england, sd, polarity_sign))
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(s > 0, (v - e) / s * p, np.nan)
    return np.where(np.isnan(g), np.nan, np.clip(g, 0.0, GAP_CAP))


def near_duplicate_groups(values: pd.DataFrame, departments: pd.Series) -> pd.Series:
    """indicator_id -> group: determinants of the same department whose local-authority values (values: indicator_id,
    area_code, x) have |Spearman rho| >= DUPLICATE_RHO over at least MIN_COMMON common areas are joined (connected
    components); a group is named by its first member id. Singletons are their own group."""
    ids = np.sort(values["indicator_id"].unique())
    group = {i: i for i in ids}
    wide = values.pivot_table(index="area_code", columns="indicator_id", values="x", aggfunc="first")
    dept = departments.reindex(ids)
    for _, members in dept.groupby(dept, sort=True):
        cols = sorted(members.index)
        if len(cols) < 2:
            continue
        corr = wide[cols].rank().corr(min_periods=MIN_COMMON).abs()  # Spearman = Pearson on ranks (pairwise)
        for a_pos, a in enumerate(cols):
            for b in cols[a_pos + 1:]:
                if corr.at[a, b] >= DUPLICATE_RHO:
                    ga, gb = _find(group, a), _find(group, b)
                    group[max(ga, gb)] = min(ga, gb)
    return pd.Series({i: _find(group, i) for i in ids}, name="group", dtype=object)


def _find(group: dict, i: str) -> str:
    while group[i] != i:
        i = group[i]
    return i


class _Layout:
    """Columns (determinants) sorted by department, group and id; the index arrays reduceat needs."""

    def __init__(self, ind: pd.DataFrame):
        self.ind = ind.sort_values(["department_slug", "group", "indicator_id"]).reset_index(drop=True)
        g = self.ind["group"].to_numpy()
        self.group_starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        groups = self.ind.iloc[self.group_starts]
        d = groups["department_slug"].to_numpy()
        self.dept_starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])  # over groups
        self.departments = d[self.dept_starts]
        self.group_dept = np.repeat(np.arange(len(self.dept_starts)), np.diff(np.r_[self.dept_starts, len(d)]))
        self.group_ids = groups["group"].to_numpy()


def _scores(G: np.ndarray, rho: np.ndarray, lay: _Layout, w: np.ndarray | None = None):
    """Per place (rows) and department: score, whether the department has evidence, groups with a figure, groups with
    a positive contribution, the largest gap among those, and each group's contribution (P x groups)."""
    C = G * rho  # P x I; NaN where the place has no figure
    Cg = np.fmax.reduceat(np.where(np.isnan(C), -np.inf, C), lay.group_starts, axis=1)
    Gg = np.fmax.reduceat(np.where(np.isnan(G), -np.inf, G), lay.group_starts, axis=1)
    avail = np.isfinite(Cg)
    Cg = np.where(avail, Cg, 0.0)
    w = np.ones(Cg.shape[1]) if w is None else w
    pos = (Cg > 0) & (w > 0)
    num = np.add.reduceat(Cg * w, lay.dept_starts, axis=1)
    n = np.add.reduceat(avail * w, lay.dept_starts, axis=1)
    npos = np.add.reduceat(pos.astype(float), lay.dept_starts, axis=1)
    max_gap = np.fmax.reduceat(np.where(pos, Gg, -np.inf), lay.dept_starts, axis=1)
    score = num / (n + PRIOR_WEIGHT)
    has = n > 0
    held = (npos == 1) & (max_gap < MIN_SINGLE_GAP)
    return score, has, n, npos, np.where(np.isfinite(max_gap), max_gap, np.nan), held, Cg


def _ranks(score: np.ndarray, has: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each department per place: by score, held-back departments after the others, ties by
    department slug (column order); 0 where the department has no evidence."""
    key = np.where(has, -score + np.where(held, 1e6, 0.0), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, key.shape[1] + 1)[None, :].repeat(key.shape[0], 0), axis=1)
    return np.where(has, ranks, 0)


def _top3(score, has, held) -> np.ndarray:
    """The first three ranked departments with a positive score (column indices, -1 padding), P x 3."""
    key = np.where(has & ~held & (score > 0), -score, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :3]
    ok = np.take_along_axis(np.isfinite(key), order, axis=1)
    out = np.where(ok, order, -1)
    return np.pad(out, ((0, 0), (0, 3 - out.shape[1])), constant_values=-1)


def rank_departments(evidence: pd.DataFrame, meta: pd.DataFrame, groups: pd.Series | None = None,
                     boot_rho: pd.DataFrame | None = None, n_boot: int = BOOT_DRAWS,
                     seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank departments for each place from its evidence (see the module docstring).

    evidence: place_code, indicator_id, aligned_rho (> 0), gap (gaps(): >= 0, NaN when the place has no figure),
    plus any descriptive columns. meta: indexed by indicator id with department_slug, department_name,
    department_abbr, is_dhsc. groups: indicator_id -> group of near-duplicates (default: each its own). boot_rho:
    B x indicator bootstrap aligned rho (default: the point rho in every draw, so only determinants are resampled).
    Returns (ranking, evidence): ranking has RANKING_COLUMNS (rank is empty for a held-back department);
    evidence gains department_slug, group, rank and contribution (to its department's score; 0 for a near-duplicate
    that is not its group's largest). Input row order does not matter."""
    ev = evidence.copy()
    ev["department_slug"] = ev["indicator_id"].map(meta["department_slug"])
    grp = groups.to_dict() if groups is not None else {}
    ev["group"] = [grp.get(i, i) for i in ev["indicator_id"]]
    if ev.empty:
        return pd.DataFrame(columns=RANKING_COLUMNS), ev.assign(rank=pd.Series(dtype=float), contribution=0.0)
    ind = ev.groupby("indicator_id", as_index=False).agg(department_slug=("department_slug", "first"),
                                                         group=("group", "first"), aligned_rho=("aligned_rho", "first"))
    lay = _Layout(ind)
    places = np.sort(ev["place_code"].unique())
    cols = lay.ind["indicator_id"].to_numpy()
    G = ev.pivot_table(index="place_code", columns="indicator_id", values="gap", aggfunc="first", dropna=False)
    G = G.reindex(index=places, columns=cols).to_numpy(float)
    rho = lay.ind["aligned_rho"].to_numpy(float)
    score, has, n, npos, max_gap, held, Cg = _scores(G, rho, lay)
    rank = _ranks(score, has, held)

    # uncertainty: resample areas (through the bootstrap rho) and each department's groups of determinants
    rng = np.random.default_rng(seed)
    if boot_rho is not None:
        brho = boot_rho.reindex(columns=cols).to_numpy(float)
        n_boot = brho.shape[0]
    sizes = np.diff(np.r_[lay.dept_starts, len(lay.group_ids)])
    boot_ranks = np.empty((n_boot,) + rank.shape, dtype=np.int16)
    for b in range(n_boot):
        w = np.concatenate([rng.multinomial(k, np.full(k, 1.0 / k)) for k in sizes]).astype(float)
        r = np.clip(brho[b], 0, None) if boot_rho is not None else rho
        s, h, _, _, _, hb, _ = _scores(G, np.nan_to_num(r), lay, w)
        boot_ranks[b] = _ranks(s, has, hb | ~h)
    lo = np.percentile(boot_ranks, 2.5, axis=0, method="lower")
    hi = np.percentile(boot_ranks, 97.5, axis=0, method="higher")

    # stability of the top three when each group of determinants is left out in turn
    top = _top3(score, has, held)
    same = np.zeros(len(places))
    changed: list[list[str]] = [[] for _ in places]
    for k, start in enumerate(lay.group_starts):
        end = lay.group_starts[k + 1] if k + 1 < len(lay.group_starts) else len(cols)
        G_loo = G.copy()
        G_loo[:, start:end] = np.nan
        s, h, _, _, _, hb, _ = _scores(G_loo, rho, lay)
        keep = (_top3(s, h, hb) == top).all(axis=1)
        same += keep
        for p in np.flatnonzero(~keep):
            changed[p].append(lay.group_ids[k])
    n_groups = len(lay.group_starts)

    depts = lay.departments
    P, D = score.shape
    r = pd.DataFrame({"place_code": np.repeat(places, D), "department_slug": np.tile(depts, P),
                      "score": score.ravel(), "has": has.ravel(), "n_indicators": n.ravel().astype(int),
                      "n_worse": npos.ravel().astype(int), "max_gap": max_gap.ravel(), "held_back": held.ravel(),
                      "order": rank.ravel(), "rank_lci": lo.ravel().astype(float), "rank_uci": hi.ravel().astype(float),
                      "top3_stability": np.repeat(same / n_groups, D),
                      "top3_changed_by": np.repeat(["; ".join(c) for c in changed], D)})
    r = r[r["has"]].drop(columns="has")
    r["rests_on_one_indicator"] = r["n_worse"] == 1
    ranked = ~r["held_back"] & (r["score"] > 0)  # a department on which the place is no worse is not ranked
    r["rank"] = r["order"].where(ranked).astype(float)
    r[["rank_lci", "rank_uci"]] = r[["rank_lci", "rank_uci"]].where(ranked)
    names = meta.drop_duplicates("department_slug").set_index("department_slug")
    for c in ("department_name", "department_abbr", "is_dhsc"):
        r[c] = r["department_slug"].map(names[c])
    counted = r["score"].where(~r["held_back"], 0.0)
    total = counted.groupby(r["place_code"]).transform("sum")
    outside = counted.where(~r["is_dhsc"].astype(bool), 0.0).groupby(r["place_code"]).transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        r["share_of_total"] = np.where(total > 0, counted / total, np.nan)
        r["share_outside_dhsc"] = np.where(total >= MIN_TOTAL, outside / total, np.nan)
    r = r.sort_values(["place_code", "order"], kind="mergesort")
    ranking = r[RANKING_COLUMNS].reset_index(drop=True)

    # each determinant's contribution to its department's score (the group's largest counts, once)
    C = pd.DataFrame(G * rho, index=places, columns=cols)
    contrib = C.stack(future_stack=True).rename("c").reset_index().rename(columns={"level_0": "place_code",
                                                                                     "level_1": "indicator_id"})
    contrib.columns = ["place_code", "indicator_id", "c"]
    contrib["group"] = contrib["indicator_id"].map(lay.ind.set_index("indicator_id")["group"])
    contrib = contrib.dropna(subset=["c"]).sort_values(["place_code", "group", "c", "indicator_id"],
                                                       ascending=[True, True, False, True], kind="mergesort")
    contrib["lead"] = ~contrib.duplicated(["place_code", "group"])
    ev = ev.merge(contrib[["place_code", "indicator_id", "c", "lead"]], on=["place_code", "indicator_id"], how="left")
    denom = r.set_index(["place_code", "department_slug"])["n_indicators"] + PRIOR_WEIGHT
    key = pd.MultiIndex.from_frame(ev[["place_code", "department_slug"]])
    ev["contribution"] = np.where(ev["lead"].fillna(False).astype(bool),
                                  ev["c"].fillna(0.0) / denom.reindex(key).to_numpy(), 0.0)
    ev = ev.drop(columns=["c", "lead"]).merge(r[["place_code", "department_slug", "order", "rank"]],
                                              on=["place_code", "department_slug"], how="left")
    ev = ev.sort_values(["place_code", "order", "contribution", "indicator_id"], ascending=[True, True, False, True],
                        kind="mergesort").drop(columns="order").reset_index(drop=True)
    return ranking, ev
