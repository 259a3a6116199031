"""What an operator meets when things go wrong (issue 16): a prepare killed half way, a read-only data folder, a
killed refresh in `status`, leftovers of a killed save, a full disk, an uninitialised database, a replay of a run
from before migration 0003, and pages on thin or odd data. Kills are real signals to real processes; the
read-only folder is a read-only bind mount (or, where mounting is not allowed, immutable files); the full disk is
a small tmpfs."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from db.engine import make_engine
from db.models import Observation, Run
from tests.test_refresh_faults import (  # noqa: F401 - fixtures and helpers
    FINGERTIPS_IDS, KILLED_DURING_LOAD, cli, engine, observations, prepared_db, run_of, start, wait_for_line,
)
from tracker.config import PROJECT_ROOT

SMALL = ["desnz_fuel_poverty", "dwp_children_low_income", "ons_crime_severity"]  # registry order

PREPARE_KILLED_IN_DWP = """
import sys, time
import pipelines.registry as registry
import tracker.refresh as refresh_module

real_sources, real_load = registry.all_sources, refresh_module.load_observations
registry.all_sources = lambda: {k: v for k, v in real_sources().items() if k in sys.argv[1].split(",")}

def load(conn, frames, run_id, ids, **options):
    if "children-relative-low-income-count" in ids:
        print("LOADING", flush=True)
        time.sleep(120)
    return real_load(conn, frames, run_id, ids, **options)

refresh_module.load_observations = load
from tracker.cli import main
main(["prepare"])
"""


def test_prepare_resumes_after_it_was_killed(tmp_path, monkeypatch):
    import tracker.store
    from pipelines import registry
    from tracker.store import prepare

    url = f"sqlite:///{tmp_path / 'tracker.sqlite'}"
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    log = tmp_path / "stderr.txt"
    proc = start(PREPARE_KILLED_IN_DWP, ",".join(SMALL), stderr=log)
    try:
        wait_for_line(proc, "LOADING", log)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()

    real = registry.all_sources
    monkeypatch.setattr(registry, "all_sources", lambda: {k: v for k, v in real().items() if k in SMALL})
    monkeypatch.setattr(tracker.store, "warm_analysis", lambda *a, **k: None)  # not what this test is about
    engine = make_engine(url)
    summaries = prepare(engine)  # the first source landed before the kill; the other two never did
    assert [(s.source, s.status) for s in summaries] == [("dwp_children_low_income", "succeeded"),
                                                         ("ons_crime_severity", "succeeded")]
    assert prepare(engine) == []  # now there is nothing left to do
    engine.dispose()


# ---- a read-only data folder ---------------------------------------------------------------------------------------

@contextmanager
def read_only(folder: Path):
    """`folder` read-only for everyone, root included: a read-only bind mount over itself, else immutable files."""
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if mounted:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)  # lazy: an engine may still hold the file
            mounted = False
    targets = [str(p) for p in [folder, *folder.rglob("*")]]
    if not mounted and subprocess.run(["chattr", "+i", *targets], capture_output=True).returncode != 0:
        pytest.skip("this machine allows neither a read-only bind mount nor immutable files")
    try:
        assert not os.access(folder, os.W_OK)
        yield
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=True)  # lazy: an engine may still hold the file
        else:
            subprocess.run(["chattr", "-i", *targets], check=True)


def tracker_command(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_DATABASE_URL"}
    env["TRACKER_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "tracker.cli", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_read_commands_work_on_a_read_only_data_folder_and_writes_say_what_to_do(prepared_db, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(prepared_db, folder / "tracker.sqlite")
    before = (folder / "tracker.sqlite").read_bytes()
    with read_only(folder):
        status = tracker_command("status", "--format", "json", data_dir=folder)
        assert status.returncode == 0, status.stderr
        assert '"source":"fingertips"' in status.stdout.replace(" ", "")
        areas = tracker_command("areas", "--type", "icb", "--format", "csv", data_dir=folder)
        assert areas.returncode == 0, areas.stderr
        assert len(areas.stdout.splitlines()) == 43  # header and the 42 ICBs
        export = tracker_command("export", "--area", "E06000001", "--output", "-", data_dir=folder)
        assert export.returncode == 0, export.stderr
        assert "Hartlepool" in export.stdout

        refresh = tracker_command("refresh", "--offline", "--source", "fingertips", data_dir=folder)
        assert refresh.returncode == 1
        assert "Traceback" not in refresh.stderr and len(refresh.stderr.strip().splitlines()) == 1
        assert refresh.stderr.strip().startswith("tracker: error: cannot write"), refresh.stderr
        assert str(folder) in refresh.stderr
    assert (folder / "tracker.sqlite").read_bytes() == before


def test_the_dashboard_opens_on_a_read_only_data_folder(prepared_db, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(prepared_db, folder / "tracker.sqlite")
    monkeypatch.setenv("TRACKER_DATA_DIR", str(folder))
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{folder / 'tracker.sqlite'}")
    with read_only(folder):
        at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=300)
        at.query_params.update({"area": "E06000001"})
        at.run()
        at.switch_page("tracker/app/pages/data.py")
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        assert [b.label for b in at.get("download_button")][:2] == ["Download CSV", "Download Excel (xlsx)"]


# ---- status tells the truth and never writes ------------------------------------------------------------------------

def test_status_shows_a_killed_run_as_interrupted_without_writing(engine, tmp_path, capsys):
    log = tmp_path / "stderr.txt"
    proc = start(KILLED_DURING_LOAD, str(engine.url), stderr=log)
    try:
        wait_for_line(proc, "LOADED", log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    with engine.begin() as conn:  # as a bulk build killed midway leaves it: status must not rebuild it
        conn.execute(text("DROP INDEX ix_observation_area"))
    database = Path(engine.url.database)
    before = database.read_bytes()

    import json

    from tracker.cli import main

    main(["status", "--format", "json"])
    rows = {r["source"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fingertips"]["last_status"] == "interrupted"
    assert "stopped before it finished" in rows["fingertips"]["last_error"]
    with engine.connect() as conn:
        indexes = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
        assert conn.execute(select(Run.status).order_by(Run.id.desc()).limit(1)).scalar() == "running"
    assert "ix_observation_area" not in indexes
    assert database.read_bytes() == before


# ---- leftovers and one-line messages ----------------------------------------------------------------------------------

KILLED_WHILE_SAVING = """
import sys, time
from db.engine import make_engine
from tracker.analysis import saved
from tracker.analysis.data import get_store, save_store

real_insert, calls = saved.insert, []

def slow_insert(table):
    calls.append(table)
    if len(calls) == 3:  # some parts written, inside the save's transaction
        print("WRITING", flush=True)
        time.sleep(120)
    return real_insert(table)

saved.insert = slow_insert
save_store(get_store(make_engine(sys.argv[1])))
"""


def test_a_save_killed_midway_leaves_nothing_behind(engine, tmp_path):
    """The analysis is saved in the database in one transaction: a process killed while writing it leaves no part
    of it (and no file) behind, and the next save works."""
    from sqlalchemy import func, select

    from db.models import AnalysisPart, AnalysisSave
    from tracker.analysis.data import get_store, save_store

    log = tmp_path / "stderr.txt"
    proc = start(KILLED_WHILE_SAVING, str(engine.url), stderr=log)
    try:
        wait_for_line(proc, "WRITING", log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AnalysisPart)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(AnalysisSave)).scalar() == 0
    assert not list(Path(engine.url.database).parent.glob("**/*.tmp"))
    assert save_store(get_store(engine)) > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AnalysisSave)).scalar() == 1


def test_a_full_disk_is_one_line_and_keeps_the_data(prepared_db, tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    size_mb = prepared_db.stat().st_size // (1024 * 1024) + 2
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a small tmpfs")
    try:
        shutil.copy(prepared_db, folder / "tracker.sqlite")
        with (folder / "filler").open("wb") as fh:  # fill the disk
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        result = tracker_command("refresh", "--offline", "--source", "fingertips", data_dir=folder)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr + result.stdout
        assert "the disk is full" in result.stderr + result.stdout
        (folder / "filler").unlink()
        engine = make_engine(f"sqlite:///{folder / 'tracker.sqlite'}")
        copy = make_engine(f"sqlite:///{prepared_db}")
        assert observations(engine, FINGERTIPS_IDS) == observations(copy, FINGERTIPS_IDS)
        engine.dispose()
        copy.dispose()
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_export_on_an_uninitialised_database_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    code, _, err = cli(capsys, "export", "--area", "E06000001", "--output", "-")
    assert code == 1
    assert err == (f"tracker: error: the database at sqlite:///{tmp_path / 'empty.sqlite'} is not set up yet; "
                   "run `tracker prepare` first\n")


# ---- replaying a run from before migration 0003 --------------------------------------------------------------------

def test_replaying_a_run_from_before_migration_0003_is_refused(engine, tmp_path, monkeypatch, capsys):
    from tracker.config import paths

    content = (PROJECT_ROOT / "tracker/data/snapshot/fingertips/"
               "phof_93861_pm25_attributable_mortality_new_method_all_areas_2018_to_2020.csv").read_bytes()
    checksum = hashlib.sha256(content).hexdigest()
    target = paths().archive_dir / checksum[:2] / f"{checksum}.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(content))
    location = "https://fingertips.phe.org.uk/api/all_data/csv/by_indicator_id?indicator_ids=93861"
    with engine.begin() as conn:  # as migration 0003 leaves a run recorded before it: no payload details
        run_id = conn.execute(insert(Run).values(
            source="fingertips", mode="live", status="succeeded", started_at=datetime(2025, 1, 1),
            finished_at=datetime(2025, 1, 1), locations=[location], checksums={location: checksum},
            payload_meta=None)).inserted_primary_key[0]
    before = observations(engine, FINGERTIPS_IDS)

    code, _, err = cli(capsys, "replay", str(run_id))

    assert code == 2
    assert f"run {run_id} (fingertips) was recorded before the tracker kept payload details (migration 0003)" in err
    assert "refresh fingertips instead" in err
    assert observations(engine, FINGERTIPS_IDS) == before


# ---- pages on thin or odd data --------------------------------------------------------------------------------------

@pytest.fixture
def thin_database(snapshot_db_file, tmp_path, monkeypatch):
    """The snapshot with two Persons life-expectancy rows added (the outcome is otherwise published by sex only),
    and a life-expectancy sex planted as a database older than its validation could hold it."""
    target = tmp_path / "thin.sqlite"
    shutil.copy(snapshot_db_file, target)
    engine = make_engine(f"sqlite:///{target}")
    cols = ", ".join(c.name for c in Observation.__table__.columns if c.name != "sex")
    with engine.begin() as conn:
        for sex, areas in (("Persons", "('E92000001', 'E06000001')"), ("[click](http://example.com)", "('E92000001')")):
            conn.execute(text(
                f"INSERT INTO observation ({cols}, sex) SELECT {cols}, :sex FROM observation "
                f"WHERE indicator_id = 'life-expectancy' AND sex = 'Male' AND area_code IN {areas} "
                "AND period = (SELECT MAX(period) FROM observation WHERE indicator_id = 'life-expectancy')"), {"sex": sex})
        conn.execute(text("DELETE FROM analysis_part"))  # changed behind the saved analysis' back: build it again
        conn.execute(text("DELETE FROM analysis_save"))
    engine.dispose()
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{target}")
    return target


@pytest.mark.parametrize("page, params", [
    ("overview", {"outcome": "life-expectancy", "sex": "Persons"}),
    ("place", {"area": "E06000001", "outcome": "life-expectancy", "sex": "Persons"}),
    ("department", {"department": "department-for-work-and-pensions", "outcome": "life-expectancy", "sex": "Persons"}),
    ("indicator", {"indicator": "claimant-count-rate-16-64", "area": "E06000001", "outcome": "life-expectancy",
                   "sex": "Persons"}),
])
def test_pages_degrade_on_thin_data_and_never_render_data_labels_as_markdown(thin_database, page, params):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=300)
    at.query_params.update(params)
    at.run()
    if page != "overview":
        at.switch_page(f"tracker/app/pages/{page}.py")
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    sexes = [r for r in at.radio if r.key == "_widget_sex"]
    if page != "department":  # the department page has no sex choice
        # the planted sex is shown as written, not as a link
        assert "\\[click\\]\\(http\\://example\\.com\\)" in sexes[0].options


def test_a_failed_excel_export_says_why_on_the_page(prepared_db, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    target = tmp_path / "inf.sqlite"
    shutil.copy(prepared_db, target)
    engine = make_engine(f"sqlite:///{target}")
    with engine.begin() as conn:  # as a database loaded before non-finite values were refused could hold
        conn.execute(text("UPDATE observation SET value = 9e999 WHERE area_code = 'E06000001'"))
        conn.execute(text("DELETE FROM analysis_part"))  # changed behind the saved analysis' back: build it again
        conn.execute(text("DELETE FROM analysis_save"))
    engine.dispose()
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{target}")
    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=300)
    at.query_params.update({"area": "E06000001"})
    at.run()
    at.switch_page("tracker/app/pages/data.py")
    at.query_params.update({"area": "E06000001"})  # switching pages clears the address: Hartlepool's link again
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Data dictionary (CSV)"]
    (error,) = [e.value for e in at.error]
    assert error.startswith("The Excel file could not be made: ") and "NAN/INF" in error


def test_the_dashboard_workbook_is_made_again_for_new_data(prepared_db, tmp_path, monkeypatch):
    """The Excel file is cached by the database and its data version: after a refresh (here: another database with
    a changed figure) the page makes it again instead of serving the previous data's workbook."""
    from tracker.app.pages import data as data_page

    changed = tmp_path / "changed.sqlite"
    shutil.copy(prepared_db, changed)
    engine = make_engine(f"sqlite:///{changed}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE observation SET value = 9e999 WHERE area_code = 'E06000001'"))
    engine.dispose()
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{prepared_db}")
    before = data_page._workbook(f"sqlite:///{prepared_db}#1", "E06000001", (), False)
    assert before.startswith(b"PK")  # an xlsx is a zip
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{changed}")
    with pytest.raises(TypeError, match="NAN/INF"):  # made from the changed figures, not the cached workbook
        data_page._workbook(f"sqlite:///{changed}#2", "E06000001", (), False)
