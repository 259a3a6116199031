"""`tracker prepare` and `tracker refresh` analyse the headline outcomes in a second process while the first writes
every area's rows (tracker.analysis.warm OutcomesElsewhere): what they save must be what one process would have
saved, and a second process that fails must cost only time."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import OrderedDict

import pandas as pd
import pytest

from db.engine import make_engine
from tracker.analysis import data, saved
from tracker.analysis.warm import warm
from tracker.refresh import refresh

warming = sys.modules["tracker.analysis.warm"]  # the module (tracker.analysis's own `warm` is the function)

SOURCES = ["fingertips", "dwp_children_low_income"]  # headline outcomes and a determinant, loaded in seconds


@pytest.fixture
def two_copies(initialised_engine, tmp_path, monkeypatch):
    """Two engines on identical copies of one loaded database (the same data version), nothing in memory."""
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    monkeypatch.setattr(data, "SERVE_PREVIOUS", set())
    assert all(s.status == "succeeded" for s in refresh(initialised_engine, SOURCES, offline=True))
    source = sqlite3.connect(str(initialised_engine.url.database))
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    engine = make_engine(f"sqlite:///{copy}")
    yield initialised_engine, engine
    engine.dispose()


def _saved(engine) -> tuple[dict, list]:
    """The save's memo, decoded, by key; and its area rows in order."""
    with sqlite3.connect(str(engine.url.database)) as conn:
        parts = dict(conn.execute("SELECT seq, payload FROM analysis_part").fetchall())
        rows = conn.execute("SELECT * FROM analysis_row ORDER BY area_code, seq").fetchall()
    structure = json.loads(parts.pop(0))
    memo = {saved.decode(key, parts): saved.decode(value, parts) for key, value in structure["memo"]}
    return memo, rows


def _assert_same(one: dict, other: dict) -> None:
    assert set(one) == set(other)
    for key, value in one.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, other[key], obj=repr(key))
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(value, other[key], obj=repr(key))
        else:
            assert repr(value) == repr(other[key]), key


def test_a_second_process_saves_what_one_process_would(two_copies):
    here, there = two_copies
    messages = []
    size_here = warm(here)
    size_there = warm(there, messages.append, second_process=True)
    assert any("in a second process" in m for m in messages)
    memo_here, rows_here = _saved(here)
    memo_there, rows_there = _saved(there)
    outcomes = {key[1] for key in memo_here if key[0] == "department_summary"}
    assert outcomes, "the loaded sources hold a headline outcome"
    assert {key[1] for key in memo_there if key[0] == "place_ranking"} == outcomes
    _assert_same(memo_here, memo_there)
    assert rows_here == rows_there and size_here == size_there


def _fails(*_args):
    raise RuntimeError("the second process fails")


def test_when_the_second_process_fails_this_one_analyses_the_outcomes_and_saves_them(two_copies, monkeypatch, caplog):
    here, there = two_copies
    warm(here)
    monkeypatch.setattr(warming, "_outcomes_child", _fails)  # the forked process runs this and dies with exit code 1
    warm(there, second_process=True)
    assert "the second process analysing the headline outcomes failed" in caplog.text
    _assert_same(_saved(here)[0], _saved(there)[0])
