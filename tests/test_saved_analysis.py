"""The saved analysis across refreshes (issue 12 item 6): a refresh that changes nothing keeps the data version, so
the next dashboard start reads the save instead of computing it again; a refresh that changes data is answered from
the previous analysis by the dashboard until the new one is built and saved."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from sqlalchemy import select

from db.models import Run
from db.models import AnalysisSave
from tracker.analysis import data, saved
from tracker.refresh import refresh
from tracker.store import warm_analysis

SMALL = ["dwp_children_low_income"]  # the smallest bundled source: a refresh and a warm take a second or two


@pytest.fixture
def fresh_process(monkeypatch):
    """As in a new process: nothing in memory, no background build, not served by the dashboard unless a test says."""
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    monkeypatch.setattr(data, "_BUILDING", {})
    monkeypatch.setattr(data, "SERVE_PREVIOUS", set())


def _saved_at(engine):
    with engine.connect() as conn:
        return conn.execute(select(AnalysisSave.saved_at)).scalar_one()


def _not_rebuilt(*_args):
    raise AssertionError("the analysis was computed again from the database instead of read from its save")


def test_an_identical_refresh_keeps_the_version_and_the_next_start_reads_the_save(initialised_engine, fresh_process,
                                                                                monkeypatch):
    first = refresh(initialised_engine, SMALL, offline=True)
    assert first[0].status == "succeeded" and first[0].rows_changed > 0
    warm_analysis(initialised_engine)
    version = data.data_version(initialised_engine)
    assert saved.saved_versions(initialised_engine) == [(version, data.CODE_DIGEST)]
    written = _saved_at(initialised_engine)

    second = refresh(initialised_engine, SMALL, offline=True)
    assert second[0].status == "succeeded" and second[0].rows_changed == 0
    with initialised_engine.connect() as conn:  # the run is recorded all the same
        assert conn.execute(select(Run.id).where(Run.status == "succeeded")).all()[-1][0] == second[0].run_id
    assert data.data_version(initialised_engine) == version  # same data, same version

    monkeypatch.setattr(data, "_CACHE", OrderedDict())  # the next dashboard start
    monkeypatch.setattr(data, "_load", _not_rebuilt)
    store = data.get_store(initialised_engine)
    assert store.version == version and ("indicator_catalog",) in store.memo  # the warmed results came back
    assert _saved_at(initialised_engine) == written  # the same save, not a new one


def test_a_refresh_that_changes_data_changes_the_version(initialised_engine, fresh_process):
    refresh(initialised_engine, SMALL, offline=True)
    before = data.data_version(initialised_engine)
    changed = refresh(initialised_engine, ["desnz_fuel_poverty"], offline=True)
    assert changed[0].rows_changed > 0 and data.data_version(initialised_engine) != before


def test_the_dashboard_answers_from_the_previous_analysis_until_the_new_one_is_ready(initialised_engine,
                                                                                   fresh_process, monkeypatch):
    refresh(initialised_engine, SMALL, offline=True)
    warm_analysis(initialised_engine)
    old_version = data.data_version(initialised_engine)
    refresh(initialised_engine, ["desnz_fuel_poverty"], offline=True)  # new data; its analysis is not built yet
    new_version = data.data_version(initialised_engine)

    data.serve_previous(initialised_engine)  # as the dashboard runs
    served = data.get_store(initialised_engine)  # a new dashboard process: the previous save, at once
    assert served.version == old_version
    assert "fuel-poverty-lilee" not in set(served.obs["indicator_id"])
    url = initialised_engine.url.render_as_string(hide_password=False)
    builder = data._BUILDING[url]
    assert data.get_store(initialised_engine) is served or not builder.is_alive()  # one build, the old one meanwhile
    builder.join(timeout=300)
    assert not builder.is_alive()

    current = data.get_store(initialised_engine)
    assert current.version == new_version and "fuel-poverty-lilee" in set(current.obs["indicator_id"])
    # saved for the next start, on any host; the save it replaced is kept for dashboards still answering from it
    assert saved.saved_versions(initialised_engine) == [(new_version, data.CODE_DIGEST), (old_version, data.CODE_DIGEST)]


def test_a_dashboard_does_not_build_what_a_refresh_is_about_to_save(initialised_engine, fresh_process):
    """While a refresh (on any host) is loading sources or computing the analysis it will save, a dashboard answers
    from the previous save and starts no build of its own: several dashboards never all compute the same thing."""
    refresh(initialised_engine, SMALL, offline=True)
    warm_analysis(initialised_engine)
    old_version = data.data_version(initialised_engine)
    refresh(initialised_engine, ["desnz_fuel_poverty"], offline=True)  # new data; the refresh's warm not yet run
    saved.mark_building(initialised_engine, data.CODE_DIGEST)  # as a refresh worker does while it computes
    data.serve_previous(initialised_engine)
    assert data.get_store(initialised_engine).version == old_version
    assert not data._BUILDING  # no build here: the refresh will save it
    saved.clear_building(initialised_engine)  # the worker failed: the dashboard builds it itself next time
    assert data.get_store(initialised_engine).version == old_version
    builder = data._BUILDING[initialised_engine.url.render_as_string(hide_password=False)]
    builder.join(timeout=300)
    assert data.get_store(initialised_engine).version != old_version


def test_a_refresh_marks_the_analysis_it_will_save_with_the_data_it_changes(initialised_engine, fresh_process,
                                                                           monkeypatch):
    """The CLI's refresh, replay and prepare compute and save the analysis once their data lands. The mark that says
    so is written in the same transaction as the data: a dashboard that reads the new data version between the
    refresh's commit and the start of its analysis answers from the previous save and computes nothing itself."""
    refresh(initialised_engine, SMALL, offline=True)
    warm_analysis(initialised_engine)
    old_version = data.data_version(initialised_engine)
    unchanged = refresh(initialised_engine, SMALL, offline=True, analysis_follows=True)
    assert unchanged[0].rows_changed == 0 and not saved.in_progress(initialised_engine, data.CODE_DIGEST)

    changed = refresh(initialised_engine, ["desnz_fuel_poverty"], offline=True, analysis_follows=True)
    assert changed[0].rows_changed > 0
    assert saved.in_progress(initialised_engine, data.CODE_DIGEST)  # no run is running: the mark alone says it
    load = data._load
    monkeypatch.setattr(data, "_load", _not_rebuilt)  # the dashboard must not compute it
    data.serve_previous(initialised_engine)
    assert data.get_store(initialised_engine).version == old_version
    assert not data._BUILDING

    monkeypatch.setattr(data, "_load", load)  # the refresh's own process computes it
    monkeypatch.setattr(data, "_CACHE", OrderedDict())
    monkeypatch.setattr(data, "SERVE_PREVIOUS", set())
    warm_analysis(initialised_engine)
    assert not saved.in_progress(initialised_engine, data.CODE_DIGEST)
    assert saved.saved_versions(initialised_engine)[0] == (data.data_version(initialised_engine), data.CODE_DIGEST)


def test_a_save_read_lazily_never_mixes_in_a_later_save_of_the_same_data(initialised_engine, fresh_process):
    """A process reads saved results when first used; if the same data version is saved again meanwhile (another
    host's refresh, a replay), what it has not read yet is computed again, never taken from the other save."""
    refresh(initialised_engine, SMALL, offline=True)
    warm_analysis(initialised_engine)
    version = data.data_version(initialised_engine)
    _state, memo = saved.read(initialised_engine, version, data.CODE_DIGEST)
    framed = sorted((k for k in memo if saved.part_numbers(memo.pending_node(k))), key=repr)  # held in parts
    first = memo[framed[0]]  # read before the second save
    store = data.get_store(initialised_engine)
    data.save_store(store)  # the same version saved again: a new save with its own parts
    assert saved.saved_versions(initialised_engine) == [(version, data.CODE_DIGEST)]
    assert len(framed) > 5
    for key in framed[1:]:
        with pytest.raises(KeyError):
            memo[key]
    assert memo[framed[0]] is first  # what was read stays



def test_a_saves_area_rows_come_back_as_written_from_sqlite_and_postgresql(any_engine, snapshot_db_file):
    """The analysis_row table of a save, on either database: an area's slice (all periods, or each series' latest)
    reads back the values, missing values and order that were written; a newer save of the same code replaces it."""
    import pandas as pd

    from db.engine import make_engine, upgrade

    codes = ["E54000050", "E08000012", "E10000012", "E92000001"]  # an ICB, a district, a county, England
    snapshot = make_engine(f"sqlite:///{snapshot_db_file}")
    (version, digest), = saved.saved_versions(snapshot)
    written = saved.read_rows(snapshot, version, digest, codes)
    snapshot.dispose()
    assert written["approximate"].isin([True]).any() and written["approximate"].isna().any()
    assert written["lci95"].isna().any() and written["comparison_level"].isna().any()

    upgrade(any_engine)
    saved.write(any_engine, "1-1-a", digest, ({"fields": {}, "memo": []}, []), written)
    back = saved.read_rows(any_engine, "1-1-a", digest, codes)
    pd.testing.assert_frame_equal(back, written)
    latest = saved.read_rows(any_engine, "1-1-a", digest, ["E08000012"], ["life-expectancy"], latest_only=True)
    expected = written[(written["area_code"] == "E08000012") & (written["indicator_id"] == "life-expectancy")
                       & written["latest"]]
    pd.testing.assert_frame_equal(latest, expected.reset_index(drop=True))
    assert len(latest) == latest["sex"].nunique() >= 2  # one row per series: each sex's latest period
    # a peer comparison's read: given (indicator, period) pairs, exactly those series' periods, not every indicator's
    # rows for any of those periods
    la = written[written["area_code"] == "E08000012"]
    pairs = [("life-expectancy", la.loc[la["indicator_id"] == "life-expectancy", "period"].iloc[0]),
             (la["indicator_id"].iloc[-1], la["period"].iloc[-1])]
    some = saved.read_rows(any_engine, "1-1-a", digest, ["E08000012"], [i for i, _ in pairs], periods=pairs)
    expected = la[pd.MultiIndex.from_frame(la[["indicator_id", "period"]]).isin(pairs)]
    pd.testing.assert_frame_equal(some, expected.reset_index(drop=True))
    assert set(zip(some["indicator_id"], some["period"])) == set(pairs)

    # a newer save: the one it replaces stays readable (a dashboard may still be answering from it) until the next
    saved.write(any_engine, "2-2-b", digest, ({"fields": {}, "memo": []}, []), written.iloc[:10])
    assert saved.saved_versions(any_engine) == [("2-2-b", digest), ("1-1-a", digest)]
    assert len(saved.read_rows(any_engine, "2-2-b", digest, codes)) == 10
    pd.testing.assert_frame_equal(saved.read_rows(any_engine, "1-1-a", digest, codes), written)
    saved.write(any_engine, "3-3-c", digest, ({"fields": {}, "memo": []}, []), written.iloc[:5])
    assert saved.saved_versions(any_engine) == [("3-3-c", digest), ("2-2-b", digest)]
    with pytest.raises(saved.SaveReplaced):  # the oldest save's rows went with it
        saved.read_rows(any_engine, "1-1-a", digest, codes)


def test_a_saved_frame_gives_back_none_and_nan_where_each_was():
    # readers test `is None` on text columns (a missing note, a missing comparison), so a save must not turn a NaN
    # into None or back
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"note": pd.Series(["a", None, np.nan, "b", None], dtype=object),
                          "label": pd.Series(["x", "y", "z", None, "w"], dtype=object),
                          "value": [1.0, np.nan, 3.0, 4.0, 5.0]})
    parts: list[bytes] = []
    back = saved.decode(saved.encode(frame, parts), dict(enumerate(parts, start=1)))
    assert [type(v).__name__ for v in back["note"]] == ["str", "NoneType", "float", "str", "NoneType"]
    assert back["label"].tolist() == ["x", "y", "z", None, "w"]
    assert list(back.columns) == ["note", "label", "value"]


def test_a_saved_frame_has_the_schema_arrow_infers_from_all_of_it():
    # the schema is worked out from a one-row stand-in (Arrow converts a whole object column to infer its type): text
    # whose first rows are missing, yes/no answers with gaps, a column with no value and a row index that does not
    # start at 0 must still be typed, and read back, as from the whole frame
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    frame = pd.DataFrame({"label": pd.Series([None, np.nan, "Worse", None, "Better"], dtype=object),
                          "answer": pd.Series([None, True, False, None, True], dtype=object),
                          "nothing": pd.Series([None] * 5, dtype=object),
                          "value": [1.0, np.nan, 3.0, 4.0, 5.0], "when": pd.date_range("2020-01-01", periods=5)},
                         index=pd.RangeIndex(10, 20, 2))
    assert saved._schema(frame) == pa.Schema.from_pandas(frame, preserve_index=None)
    assert saved._schema(frame).pandas_metadata == pa.Schema.from_pandas(frame, preserve_index=None).pandas_metadata
    parts: list[bytes] = []
    back = saved.decode(saved.encode(frame, parts), dict(enumerate(parts, start=1)))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


def test_a_frame_held_encoded_by_batches_gives_back_the_frame_and_each_batch_alone():
    # the precompute holds every area's rows encoded, a batch of indicators per part: decoded whole it is exactly the
    # frames joined (None and NaN where each was, each distinct text one object); a few indicators' rows decode only
    # their own batch; saved as it is, a save reads it back the same
    import numpy as np
    import pandas as pd

    def batch(ids, notes):
        index = pd.RangeIndex(5, 5 + len(notes))  # as a batch comes out of its build: not from 0
        return pd.DataFrame({"indicator_id": [i for i in ids for _ in range(2)],
                             "note": pd.Series(notes, dtype=object, index=index),
                             "value": np.arange(len(notes), dtype=float)}, index=index)

    frames = [(["a", "b"], batch(["a", "b"], ["x", None, np.nan, "x"])), (["c"], batch(["c"], ["x", "y"])),
              (["d"], batch(["d"], [None, "y"]))]
    encoded = saved.Encoded.batches(iter(frames))  # encoded as each batch comes
    whole = encoded.decode()
    expected = saved.joined([frame for _ids, frame in frames])
    pd.testing.assert_frame_equal(whole, expected, check_exact=True)
    assert [type(v).__name__ for v in whole["note"]] == ["str", "NoneType", "float", "str", "str", "str", "NoneType",
                                                          "str"]
    assert len({id(v) for v in whole["note"] if isinstance(v, str)}) == 2  # "x" and "y", across the parts

    pd.testing.assert_frame_equal(encoded.rows_of(["b", "d"], ["note"]),  # only some columns decoded
                                  expected.loc[expected["indicator_id"].isin(["b", "d"]), ["note"]].reset_index(drop=True),
                                  check_exact=True)
    assert [type(v).__name__ for v in encoded.rows_of(["b"], ["note"])["note"]] == ["float", "str"]
    encoded.parts[0] = encoded.parts[2] = b"not read"  # only the batch holding "c" may be decoded
    pd.testing.assert_frame_equal(encoded.rows_of(["c"]), expected[expected["indicator_id"] == "c"].reset_index(drop=True),
                                  check_exact=True)

    parts: list[bytes] = []
    node = saved.encode({"rows": saved.Encoded.batches(frames)}, parts)
    back = saved.decode(node, dict(enumerate(parts, start=1)))
    pd.testing.assert_frame_equal(back["rows"], expected, check_exact=True)


def test_a_saves_rows_come_back_by_area_in_the_analysis_order(snapshot_db_file, fresh_process):
    # the save writes every area's rows a batch of indicators at a time; read for several areas they come back area by
    # area, each area's in the analysis' order, exactly as the process that computed them holds them
    import pandas as pd

    from tracker.analysis import place

    engine = __import__("db.engine", fromlist=["make_engine"]).make_engine(f"sqlite:///{snapshot_db_file}")
    codes = ["E92000001", "E54000050", "E12000001", "E10000007", "E07000032"]
    store = data.get_store(engine)
    assert store.rows_saved
    from_table = place.area_rows(store, codes)
    assert list(dict.fromkeys(from_table["area_code"])) == sorted(codes)
    for _code, rows in from_table.groupby("area_code"):
        key = rows[["indicator_id", "sex", "period_end"]].apply(tuple, axis=1).tolist()
        assert key == sorted(key)
    store.rows_saved = False  # as the computing process holds them before they are saved
    pd.testing.assert_frame_equal(place.area_rows(store, codes), from_table, check_exact=True)
    engine.dispose()


def test_prepare_after_an_upgrade_saves_the_new_versions_analysis_before_the_dashboard_starts(
        initialised_engine, fresh_process, monkeypatch):
    """With every source loaded, `tracker prepare` (make run's first step) loads nothing; but a new version of the
    tracker has no save of its own, and without one the dashboard's first visitor waited while a dashboard process
    computed the analysis. prepare saves it, once."""
    import sys

    import tracker.store
    from pipelines import registry

    real = registry.all_sources
    monkeypatch.setattr(registry, "all_sources", lambda: {k: v for k, v in real().items() if k in SMALL})
    assert [s.status for s in tracker.store.prepare(initialised_engine)] == ["succeeded"]
    version = data.data_version(initialised_engine)
    assert saved.saved_versions(initialised_engine) == [(version, data.CODE_DIGEST)]

    for module in ("data", "place", "reuse", "warm"):  # as if the analysis code had changed
        monkeypatch.setattr(sys.modules[f"tracker.analysis.{module}"], "CODE_DIGEST", "an-upgraded-tracker")
    assert tracker.store.prepare(initialised_engine) == []  # nothing to load ...
    assert saved.exists(initialised_engine, version, "an-upgraded-tracker")  # ... but the new version's analysis saved
    monkeypatch.setattr(tracker.store, "warm_analysis", _not_rebuilt)
    assert tracker.store.prepare(initialised_engine) == []  # saved already: not computed again
