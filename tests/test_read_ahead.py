"""The refresh prepares the next payload in a worker thread while the current one is inserted
(tracker.refresh.read_ahead): order kept, at most one item ahead, the worker's errors raised in the caller, the
worker stopped when the caller stops, and progress reported from the caller's thread."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from db.models import Run
from tracker.refresh import read_ahead
from tests.test_refresh import FuelTestSource, REAL_FILE, SPEC, engine  # noqa: F401 - the fixture
from tracker.geography import AreaMapper
from tracker.refresh import run_source


def test_items_arrive_in_order_at_most_one_ahead():
    produced = []

    def items():
        for n in range(6):
            produced.append(n)
            yield n

    seen = []
    for item in read_ahead(items()):
        # the worker may have prepared the next item (in the hand-over) and be preparing the one after: no more
        assert len(produced) <= item + 3
        seen.append(item)
    assert seen == list(range(6))


def test_an_error_in_the_worker_is_raised_in_the_caller_after_the_items_before_it():
    def items():
        yield 1
        raise ValueError("payload 2 is not a CSV")

    seen = []
    with pytest.raises(ValueError, match="payload 2 is not a CSV"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == [1]


def test_the_worker_stops_when_the_caller_stops():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    waited: list[float] = []
    for item in read_ahead(items(), waited):
        if item == 2:
            break  # e.g. an insert failed: the read-ahead generator is closed
    assert closed.wait(5), "the worker's generator was not closed"
    assert len(produced) < 10
    assert len(waited) == 3  # one wait per item taken


def test_progress_is_reported_from_the_callers_thread(engine):  # noqa: F811
    threads = set()
    summary = run_source(engine, FuelTestSource(REAL_FILE.read_text(encoding="utf-8")), [SPEC], offline=True,
                         mapper=AreaMapper.from_engine(engine),
                         progress=lambda _source, _message: threads.add(threading.get_ident()))
    assert summary.status == "succeeded" and summary.rows_loaded > 300
    assert threads == {threading.get_ident()}  # Streamlit's progress bar only works from the script's thread
    assert set(summary.stages) == {"fetch", "parse", "validate", "load"} and summary.stages["load"] >= 0
    with engine.connect() as conn:
        assert conn.execute(select(Run.status).where(Run.id == summary.run_id)).scalar() == "succeeded"
