"""Precomputing, after a refresh lands, what every first view needs, and saving it (tracker.analysis.data.save_store),
so the dashboard's first visitor and `tracker export` in a new process, on any host, do not wait for it."""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing

from sqlalchemy import Engine

from tracker.analysis import saved
from tracker.analysis.data import CODE_DIGEST, NOT_SAVED, get_store, headline_sex, save_store
from tracker.analysis.dependence import all_place_departments, department_summary
from tracker.analysis.icb import icb_figures, lsoa_built
from tracker.analysis.place import build_judged_rows, icb_rows, indicator_catalog
from tracker.analysis.reuse import reuse_previous
from tracker.memory import give_back_freed_memory, mapped_apart_from

log = logging.getLogger("tracker.analysis")

# what every area's and ICB's rows were built from, saved but not read again by what follows: held encoded
FINISHED_WITH = [("icb_table",), ("icb_judged",), ("built_rows",)]


def warm(engine: Engine, progress=None, second_process: bool = False) -> int | None:
    """Build the analysis of the current data: comparisons, trends and ICB figures for every area, and for each
    headline outcome (in its headline sex) the associations, department summary and place rankings; then save it.
    second_process: the headline outcomes are analysed in a forked process on the other core while this one writes
    every area's rows (the command line's prepare and refresh; never inside the dashboard's server). Returns the bytes
    saved in the database, or None when it holds no observations."""
    say = progress or (lambda _message: None)
    say("reading the data")
    gc.collect()  # a refresh's frames in reference cycles, and the memory they held, before the data is read
    give_back_freed_memory()
    saved.mark_building(engine, CODE_DIGEST)  # dashboards keep answering from the previous save meanwhile
    try:
        return _warm(engine, say, second_process)
    finally:
        saved.clear_building(engine)  # saved or failed: nothing is being built any more


def _warm(engine: Engine, say, second_process: bool) -> int | None:
    def step(message: str) -> None:
        give_back_freed_memory()  # what the last step's working frames freed: the next one's are not put on top of it
        say(message)

    store = get_store(engine)
    if store.obs.empty:
        return None
    reused = reuse_previous(store)  # a refresh of some sources: the other indicators' rows from the previous save
    step("comparisons, trends and ICB figures for every area" if reused is None else
         f"comparisons, trends and ICB figures of the {len(reused.changed)} changed indicators")
    indicator_catalog(engine)
    for parent_type in ("utla", "region", "icb"):  # the figures counted over LSOAs: all that reads the LSOA rows
        lsoa_built(store, parent_type)
    store.seal([("lsoa_rows",)])
    build_judged_rows(store)  # every area's rows, held encoded: save_store writes them out a batch at a time
    give_back_freed_memory()
    icb_rows(store)
    icb_figures(engine, all_periods=True, sex="all")
    store.seal(FINISHED_WITH)
    outcomes = [(outcome, sex) for outcome in store.indicators.index[store.indicators["headline_outcome"].astype(bool)]
                if (sex := headline_sex(store, outcome)) is not None]
    give_back_freed_memory()  # before a fork: the second process starts with less
    elsewhere = OutcomesElsewhere.start(engine, outcomes) if second_process and outcomes else None
    if elsewhere is None:
        _outcomes(engine, outcomes, say)
    else:
        say(f"departments behind the {len(outcomes)} headline outcomes, in a second process")  # given back just above
    step("similar areas and peer ICBs")
    from tracker.analysis.inequality import core20
    from tracker.analysis.peers import warm_peers

    warm_peers(engine)
    core20(engine)
    step("saving")
    if elsewhere is None:
        return save_store(store)
    try:
        return save_store(store, finish=lambda: elsewhere.join(say))
    finally:
        elsewhere.stop()


def _outcomes(engine: Engine, outcomes, say) -> None:
    store = get_store(engine)
    for outcome, sex in outcomes:
        say(f"departments behind {store.indicators.at[outcome, 'title'].lower()}")
        department_summary(engine, outcome, sex)
        all_place_departments(engine, outcome, sex)


class OutcomesElsewhere:
    """The headline outcomes' associations, department summaries and rankings, computed in a forked copy of this
    process (it starts with this process's Store, observations and area rows) while this one writes every area's
    rows; what it memoised comes back through a pipe in the save's own format (JSON and Parquet: data, never code)
    and goes into the save as it is, not into this process's Store (the commands that use this end after saving).
    If it fails, this process computes them itself: nothing is lost, it only takes longer."""

    def __init__(self, engine: Engine, outcomes, process, receive):
        self.engine, self.outcomes, self.process, self.receive = engine, outcomes, process, receive

    @classmethod
    def start(cls, engine: Engine, outcomes) -> OutcomesElsewhere | None:
        """None where processes cannot be forked (then this process computes everything)."""
        if "fork" not in multiprocessing.get_all_start_methods():
            return None
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_outcomes_child, args=(engine, outcomes, send), daemon=True,
                                  name="tracker-analysis-outcomes")
        try:
            process.start()
        except OSError as exc:  # out of memory or processes
            log.warning("could not start a second process for the headline outcomes (%s); analysing them here", exc)
            receive.close()
            return None
        finally:
            send.close()  # the child's end: once the child has gone, a read here ends instead of waiting forever
        return cls(engine, outcomes, process, receive)

    def join(self, say) -> tuple[list, list[bytes]]:
        """What the other process memoised, as it encoded it: (memo entries, parts) for save_store. If that process
        failed: computed here, into this process's Store (then nothing comes back encoded)."""
        try:
            header = json.loads(self.receive.recv_bytes())
            parts = [self.receive.recv_bytes() for _ in range(header["parts"])]
            self.process.join(timeout=60)
            if self.process.exitcode != 0:
                raise RuntimeError(f"it ended with exit code {self.process.exitcode}")
            return header["memo"], parts
        except Exception as exc:  # noqa: BLE001 - computed here instead
            log.warning("the second process analysing the headline outcomes failed (%s); analysing them here", exc)
            _outcomes(self.engine, self.outcomes, say)
            return [], []

    def stop(self) -> None:
        self.receive.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def _outcomes_child(engine: Engine, outcomes, send) -> None:
    """In the forked process: compute, then send what was memoised (the header, then each Parquet part)."""
    engine.dispose(close=False)  # the parent's pooled connections stay the parent's: this process opens its own
    # the bootstrap's matrices (a few MB each, thousands of them) from the heap, not each mapped and unmapped (that
    # cost about 1.3 s of this process's 6); it ends once its results are sent, so its heap is not kept
    mapped_apart_from(32 << 20)
    store = get_store(engine)
    before = set(store.memo)
    _outcomes(engine, outcomes, lambda _message: None)
    new = {key: store.memo[key] for key in list(store.memo) if key not in before and key not in NOT_SAVED}
    structure, parts = saved.encode_state({}, new)
    send.send_bytes(json.dumps({"memo": structure["memo"], "parts": len(parts)}).encode())
    for part in parts:
        send.send_bytes(part)
    send.close()
