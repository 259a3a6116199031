"""Precomputing, after a refresh lands, what every first view needs, and saving it (tracker.analysis.data.save_store),
so the dashboard's first visitor and `tracker export` in a new process, on any host, do not wait for it."""

from __future__ import annotations

from sqlalchemy import Engine

from tracker.analysis import saved
from tracker.analysis.data import CODE_DIGEST, get_store, headline_sex, save_store
from tracker.analysis.dependence import all_place_departments, department_summary
from tracker.analysis.icb import icb_figures
from tracker.analysis.place import icb_rows, indicator_catalog, judged_rows
from tracker.analysis.reuse import reuse_previous


def warm(engine: Engine, progress=None) -> int | None:
    """Build the analysis of the current data: comparisons, trends and ICB figures for every area, and for each
    headline outcome (in its headline sex) the associations, department summary and place rankings; then save it.
    Returns the bytes saved in the database, or None when it holds no observations."""
    say = progress or (lambda _message: None)
    say("reading the data")
    saved.mark_building(engine, CODE_DIGEST)  # dashboards keep answering from the previous save meanwhile
    try:
        return _warm(engine, say)
    finally:
        saved.clear_building(engine)  # saved or failed: nothing is being built any more


def _warm(engine: Engine, say) -> int | None:
    store = get_store(engine)
    if store.obs.empty:
        return None
    reused = reuse_previous(store)  # a refresh of some sources: the other indicators' rows from the previous save
    say("comparisons, trends and ICB figures for every area" if reused is None else
        f"comparisons, trends and ICB figures of the {len(reused.changed)} changed indicators")
    indicator_catalog(engine)
    judged_rows(store), icb_rows(store)  # every area's rows: save_store writes them out a few areas at a time
    icb_figures(engine, all_periods=True, sex="all")
    for outcome in store.indicators.index[store.indicators["headline_outcome"].astype(bool)]:
        sex = headline_sex(store, outcome)
        if sex is None:
            continue
        say(f"departments behind {store.indicators.at[outcome, 'title'].lower()}")
        department_summary(engine, outcome, sex)
        all_place_departments(engine, outcome, sex)
    say("similar areas and peer ICBs")
    from tracker.analysis.inequality import core20
    from tracker.analysis.peers import warm_peers

    warm_peers(engine)
    core20(engine)
    say("saving")
    return save_store(store)
