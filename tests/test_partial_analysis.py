"""A refresh that changes one source recomputes only what it must (issue 12 item 6): the analysis of the new data
reuses the previous save's rows of every unchanged indicator, and what it saves is exactly what a full build saves.

The change is a labelled fault test (synthetic): one source's figures in the snapshot database raised by 5% in a new
succeeded run, as a refresh that fetched revised figures would leave them."""

from __future__ import annotations

from collections import OrderedDict

import pandas as pd
import pytest
from sqlalchemy import delete, text

from db.models import AnalysisPart, AnalysisSave
from tracker.analysis import data, saved
from tracker.analysis.reuse import LSOA_BUILT_KEYS, PER_INDICATOR, reuse_previous
from tracker.analysis.warm import warm

SOURCE = "dwp_children_low_income"


@pytest.fixture
def fresh_process(monkeypatch):
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    monkeypatch.setattr(data, "_BUILDING", {})
    monkeypatch.setattr(data, "SERVE_PREVIOUS", set())


def _change_one_source(engine, source: str) -> set[str]:
    """SYNTHETIC (fault test): the source's figures x 1.05, stamped with a new run. Returns the indicators changed."""
    with engine.begin() as conn:
        conn.execute(text(
            "insert into run (source, mode, status, started_at, finished_at, locations, checksums, rows_read, "
            "rows_loaded, rows_rejected, rows_unmapped, rows_changed, problems) values (:s, 'offline', 'succeeded', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '[]', '{}', 0, 0, 0, 0, 1, '{}')"), {"s": source})
        run = conn.execute(text("select max(id) from run")).scalar()
        conn.execute(text("update observation set value = value * 1.05, run_id = :r where run_id in "
                          "(select id from run where source = :s and id < :r)"), {"r": run, "s": source})
        return {r[0] for r in conn.execute(text("select distinct indicator_id from observation where run_id = :r"),
                                           {"r": run})}


def _assert_same(partial, full, where=()):
    assert type(partial) is type(full), where
    if isinstance(full, pd.DataFrame):
        pd.testing.assert_frame_equal(partial, full, check_exact=True, obj=repr(where))
    elif isinstance(full, pd.Series):
        pd.testing.assert_series_equal(partial, full, check_exact=True, obj=repr(where))
    elif isinstance(full, (tuple, list)):
        assert len(partial) == len(full), where
        for i, (p, f) in enumerate(zip(partial, full)):
            _assert_same(p, f, (*where, i))
    elif isinstance(full, dict):
        assert list(partial) == list(full), where
        for k in full:
            _assert_same(partial[k], full[k], (*where, k))
    else:
        assert partial == full or (partial != partial and full != full), where  # NaN equals NaN here


def test_a_one_source_refresh_reuses_the_other_indicators_and_saves_what_a_full_build_saves(snapshot_engine,
                                                                                          fresh_process, monkeypatch):
    engine = snapshot_engine
    previous = data.data_version(engine)
    assert saved.exists(engine, previous, data.CODE_DIGEST)  # tracker prepare saved the snapshot's analysis
    changed = _change_one_source(engine, SOURCE)
    version = data.data_version(engine)
    assert changed and version != previous

    store = data.get_store(engine)
    reused = reuse_previous(store)
    assert reused is not None and reused.previous_version == previous
    assert reused.changed == changed  # only the source's own indicators are computed again
    assert len(store.indicators) - len(changed) >= 50  # ... and every other one is reused
    assert set(PER_INDICATOR) <= set(reused.frames)
    assert {k for k in LSOA_BUILT_KEYS if k in store.memo} <= set(reused.frames)  # LSOA data unchanged: reused whole
    warm(engine)
    partial_state, partial_memo = saved.read(engine, version, data.CODE_DIGEST)
    partial_memo = {key: partial_memo[key] for key in partial_memo}  # read now: the full build below replaces it

    # the full build of the same data, as if there had been no previous save
    with engine.begin() as conn:
        conn.execute(delete(AnalysisPart))
        conn.execute(delete(AnalysisSave))
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    warm(engine)
    full_state, full_memo = saved.read(engine, version, data.CODE_DIGEST)

    _assert_same(partial_state, full_state, ("state",))
    # a full build also saves small lookups it made in passing (an area's parent, which indicators have CIs); the
    # partial build, which did not need them, leaves them to be made on first use
    assert set(partial_memo) <= set(full_memo)
    assert {k[0] for k in set(full_memo) - set(partial_memo)} <= {"parent", "with_ci", "sexes"}
    assert any(k[0] == "pairs" for k in reused.frames)  # the associations of unchanged outcomes, too
    assert any(k[0] == "boot" for k in reused.frames)  # and their unchanged determinants' bootstrap columns
    for key in partial_memo:
        _assert_same(partial_memo[key], full_memo[key], key)


def test_a_changed_geography_builds_in_full(snapshot_engine, fresh_process):
    engine = snapshot_engine
    _change_one_source(engine, SOURCE)
    with engine.begin() as conn:  # SYNTHETIC (fault test): an ICB boundary moved with the refresh
        conn.execute(text("update area_link set share = share * 0.5 where rowid = "
                          "(select min(rowid) from area_link where parent_type = 'icb' and share = 1 "
                          "and child_code not like 'E01%')"))
    assert reuse_previous(data.get_store(engine)) is None
