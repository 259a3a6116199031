"""A refresh that changes one source recomputes only what it must (issue 12 item 6): the analysis of the new data takes
the rows of every indicator whose data did not change from the previous save, and computes only the changed
indicators' rows; what compares indicators with each other (associations, department summaries, place rankings) is
always computed again.

Only frames built one indicator at a time are reused (PER_INDICATOR): each row of them depends on its own indicator's
observations, its catalog entry and the geography, nothing else. An indicator counts as changed when its observations
(every column, run id included), its catalog/indicator row or its headline age differ from the previous save's, by
value. Any doubt means a full build: no previous save of this code, a different geography or population, a different
set of indicator fields, or a reused frame whose layout or order could differ from a full build's.

Also reused: the LSOA-built frames when the LSOA rows are the same (read and compared), and for each unchanged outcome
the association pairs and bootstrap columns of its unchanged determinants (each depends on that determinant and the
outcome alone; a bootstrap column only when the same clusters are drawn from, dependence.bootstrap_aligned_rho).
tests/test_partial_analysis.py checks that every saved frame equals a full build's, exactly."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from tracker.analysis import saved
from tracker.analysis.data import CODE_DIGEST, Store

log = logging.getLogger("tracker.analysis")

# memo key -> the columns its builder sorts it by; they identify a row, so sorting a spliced frame by them gives the
# full build's order (checked: duplicates mean a full build)
PER_INDICATOR = {
    ("built_rows",): ["indicator_id", "sex", "area_code", "period_end", "period"],
    ("trends", "areas"): ["indicator_id", "area_code", "sex"],
    ("judged_rows",): ["indicator_id", "area_code", "sex", "period_end", "period"],
    ("icb_table",): ["indicator_id", "sex", "icb_code", "period_end", "period"],
    ("icb_judged",): ["indicator_id", "sex", "icb_code", "period_end", "period"],
    ("trends", "icbs"): ["indicator_id", "area_code", "sex"],
}
LSOA_BUILT_KEYS = [("lsoa_built", t) for t in ("utla", "region", "icb", "ltla")]  # functions of the LSOA rows alone


@dataclass
class Reused:
    previous_version: str
    changed: set[str]  # indicators computed again
    indicators: int  # indicators in all
    frames: list[tuple]  # memo keys taken from the previous save (spliced or whole)


def previous_save(store: Store) -> tuple[Store, dict] | None:
    """The newest save of this code for an earlier data version, as (its Store fields, its memo), or None."""
    versions = [v for v, digest in saved.saved_versions(store.engine) if digest == CODE_DIGEST and v != store.version]
    if not versions:
        return None
    try:
        return saved.read(store.engine, versions[0], CODE_DIGEST)
    except Exception as exc:  # noqa: BLE001 - an unreadable save: build in full
        log.warning("could not read the previous saved analysis (%s): building in full", exc)
        return None


def reuse_previous(store: Store) -> Reused | None:
    """Fill store.memo with the per-indicator frames of the previous save, the changed indicators' rows computed
    again. None (nothing filled: the caller builds in full) when there is no previous save or any doubt."""
    if any(key in store.memo for key in PER_INDICATOR):
        return None  # already built (or read from this version's save)
    found = previous_save(store)
    if found is None:
        return None
    state, memo = found
    if not all(key in memo for key in PER_INDICATOR):
        return None
    try:
        return _reuse(store, state, memo)
    except KeyError as exc:  # an entry of the previous save could not be read (it was replaced meanwhile)
        log.info("the previous analysis could not be read (%s): building in full", exc)
        return None


def _reuse(store: Store, state: dict, memo) -> Reused | None:
    changed = _changed_indicators(store, state)
    if changed is None:
        return None
    frames: dict = {}
    lsoa_same = _same_lsoa_rows(store, memo)
    if lsoa_same:
        frames.update({k: memo[k] for k in LSOA_BUILT_KEYS if k in memo})
    else:
        from tracker.analysis.icb import LSOA_BUILT
        changed |= set(LSOA_BUILT) & set(store.indicators.index)
    sub = _sub_store(store, changed, frames)
    for key, columns in PER_INDICATOR.items():
        spliced = _splice(memo[key], sub.memo[key], changed, columns)
        if spliced is None:
            log.info("the previous analysis cannot be reused for %r: building in full", key)
            return None
        frames[key] = spliced
    if not lsoa_same:  # computed afresh in the sub-store: they do not depend on which observations it holds
        frames.update({k: sub.memo[k] for k in LSOA_BUILT_KEYS if k in sub.memo})
    for key in [k for k in memo if k[0] == "pairs" and k[1] not in changed]:  # a changed outcome: all computed again
        pairs = _pairs_spliced(store, changed, key, memo[key])
        if pairs is not None:
            frames[key] = pairs
    for key in [k for k in memo if k[0] == "boot" and k[1] not in changed]:  # bootstrap columns, likewise
        clusters, columns = memo[key]
        frames[key] = (clusters, columns.drop(columns=[c for c in columns.columns if c in changed]))
    with store.lock:
        store.memo.update(frames)
    reused = Reused(state["version"], changed, len(store.indicators), list(frames))
    log.info("analysis of data version %s: %d of %d indicators changed since %s (%s); reused %d frames",
             store.version, len(changed), len(store.indicators), reused.previous_version,
             ", ".join(sorted(changed)) or "none", len(frames))
    return reused


def _changed_indicators(store: Store, state: dict) -> set[str] | None:
    """The indicators whose rows differ from the previous save's; None when the geography differs."""
    if not (store.areas.equals(state["areas"]) and store.links.equals(state["links"])
            and store.utla_codes == state["utla_codes"] and store.population.equals(state["population"])):
        return None
    old_ind, new_ind = state["indicators"], store.indicators
    if list(old_ind.columns) != list(new_ind.columns) or not old_ind.dtypes.equals(new_ind.dtypes):
        return None
    ids = set(new_ind.index) | set(old_ind.index)
    changed = ids - (set(new_ind.index) & set(old_ind.index))
    for i in ids - changed:
        if not new_ind.loc[[i]].equals(old_ind.loc[[i]]):
            changed.add(i)
    old_age, new_age = state["headline_ages"], store.headline_ages
    changed |= {i for i in set(old_age.index) | set(new_age.index) if old_age.get(i) != new_age.get(i)}
    old_obs, new_obs = state["obs"], store.obs
    if list(old_obs.columns) != list(new_obs.columns) or not old_obs.dtypes.equals(new_obs.dtypes):
        return None
    old_split = dict(tuple(old_obs.groupby("indicator_id", sort=False)))
    new_split = dict(tuple(new_obs.groupby("indicator_id", sort=False)))
    for i in set(old_split) | set(new_split):
        old, new = old_split.get(i), new_split.get(i)
        if old is None or new is None or not old.reset_index(drop=True).equals(new.reset_index(drop=True)):
            changed.add(i)
    return changed


def _same_lsoa_rows(store: Store, memo: dict) -> bool:
    from tracker.analysis.icb import _lsoa_rows

    old = memo.get(("lsoa_rows",))
    if old is None:
        return False
    new = _lsoa_rows(store)  # one read; memoised in the store, so the analysis does not read it again
    return all(o.equals(n) for o, n in zip(old, new))


def _sub_store(store: Store, indicators: set[str], frames: dict | None = None) -> Store:
    """A Store holding only these indicators' observations; with `frames`, the per-indicator frames built in it."""
    from tracker.analysis.place import icb_rows, judged_rows

    obs = store.obs[store.obs["indicator_id"].isin(indicators)].reset_index(drop=True)
    sub = Store(version=store.version, indicators=store.indicators, areas=store.areas, links=store.links,
                utla_codes=store.utla_codes, population=store.population, obs=obs,
                headline_ages=store.headline_ages, run_finished=store.run_finished, engine=store.engine)
    if frames is not None:
        sub.memo.update({k: v for k, v in store.memo.items() if k == ("lsoa_rows",)})
        sub.memo.update(frames)  # the LSOA-built frames when they are reused: not built again in the sub-store
        judged_rows(sub)
        icb_rows(sub)
    return sub


def _pairs_spliced(store: Store, changed: set[str], key: tuple, previous: tuple) -> tuple | None:
    """The association pairs of an unchanged outcome (key: "pairs", outcome, sex): the previous ones of the unchanged
    determinants, the changed determinants' computed again (each determinant is paired with the outcome alone)."""
    from tracker.analysis.dependence import _pairs

    _, outcome, sex = key
    fresh_pairs, fresh_choices = _pairs(_sub_store(store, changed | {outcome}), outcome, sex)
    old_pairs, old_choices = previous
    pairs = _splice(old_pairs, fresh_pairs, changed, ["indicator_id", "area_code"])
    choices = _splice(old_choices, fresh_choices, changed, ["indicator_id"])
    if pairs is None or choices is None:
        log.info("the previous analysis cannot be reused for %r: computing it in full", key)
        return None
    return pairs, choices


def _splice(previous: pd.DataFrame, fresh: pd.DataFrame, changed: set[str], columns: list[str]) -> pd.DataFrame | None:
    """previous' rows of the unchanged indicators with fresh's rows of the changed ones, in the full build's order;
    None when the two do not have the same layout or the order is not fixed by `columns`."""
    kept = previous[~previous["indicator_id"].isin(changed)]
    fresh = fresh[fresh["indicator_id"].isin(changed)]
    if list(fresh.columns) != list(previous.columns):
        return None
    if not fresh.empty and not kept.empty:
        fresh = _as_kept(fresh, kept)
        if fresh is None:
            return None
    out = pd.concat([kept, fresh], ignore_index=True) if not fresh.empty else kept
    out = out.sort_values(columns, kind="mergesort").reset_index(drop=True)
    if out.duplicated(columns).any() or not out.dtypes.equals(previous.dtypes if not kept.empty else fresh.dtypes):
        return None
    return out


def _as_kept(fresh: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame | None:
    """fresh with kept's dtypes. Built from a few indicators, a text column can come out as pandas' str dtype where
    the full build has object (or the reverse: all missing, or all text): the same text either way, so it is
    converted; to object only when it holds no missing value (str's missing value is NaN, an object column's may be
    None). Any other difference: None."""
    fresh = fresh.copy()
    for c in fresh.columns:
        a, b = fresh[c].dtype, kept[c].dtype
        if a == b:
            continue
        text = all(isinstance(v, str) for v in fresh[c].dropna())
        if not text or {str(a), str(b)} != {"str", "object"} or (str(b) == "object" and fresh[c].isna().any()):
            return None
        fresh[c] = fresh[c].astype(b)
    return fresh
