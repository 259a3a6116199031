"""What a refresh does when the network or the publisher misbehaves, all over real HTTP on 127.0.0.1.

Each test starts from a database initialised with departments, geography and catalog and holding the bundled
Fingertips data (prepared once per module and copied per test: initialising takes seconds). Fingertips is then
refreshed live from a local server next to a second source, and after each fault: that source's rows are
exactly as before, its run row says failed with a message naming the URL and the problem, and the other source
still loads. The second source is the real ONS crime severity parser fed its bundled real file (CSV) over HTTP from a
separate local server (its own live client reads ONS's data tool workbook: tests/test_pipeline_spreadsheets.py);
the registry is pointed at these two sources for the refresh and CLI tests.

Served Fingertips bodies are the real bundled API extract for indicator 93861 (Fingertips' own CSV); the faults
(HTML page, renamed column, cut-short body) are built from it at run time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from db.engine import make_engine
from db.models import Observation, Run
from pipelines.fingertips import FingertipsSource
from pipelines.http import HttpClient
from pipelines.ons_crime import SCORE_FILE, CrimeSeveritySource
from tracker.catalog import load_catalog
from tracker.config import PROJECT_ROOT, SNAPSHOT_DIR, paths

DATA = "/all_data/csv/by_indicator_id"
META = "/indicator_metadata/csv/by_indicator_id"
REAL_CSV = (SNAPSHOT_DIR / "fingertips/phof_93861_pm25_attributable_mortality_new_method_all_areas_2018_to_2020.csv").read_bytes()
METADATA = (Path(__file__).parent / "fixtures/fingertips/indicator_metadata_csv_synthetic_90362_93015_93861.csv").read_bytes()
CATALOG = load_catalog()
FINGERTIPS_IDS = [s.id for s in CATALOG if s.source == "fingertips"]
CRIME_IDS = [s.id for s in CATALOG if s.source == "ons_crime_severity"]
TWO_SOURCES = ["fingertips", "ons_crime_severity"]


# ---- databases --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared_db(tmp_path_factory):
    from tracker.refresh import refresh
    from tracker.store import initialise
    from tests.conftest import data_dir

    folder = tmp_path_factory.mktemp("faults-db")
    with data_dir(folder):
        engine = make_engine(f"sqlite:///{folder / 'tracker.sqlite'}")
        initialise(engine)
        (summary,) = refresh(engine, ["fingertips"], offline=True)
        engine.dispose()
    assert summary.status == "succeeded", summary.error
    return folder / "tracker.sqlite"


@pytest.fixture
def engine(prepared_db, tmp_path, monkeypatch):
    target = tmp_path / "tracker.sqlite"
    shutil.copy(prepared_db, target)
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{target}")
    eng = make_engine(f"sqlite:///{target}")
    yield eng
    eng.dispose()


def observations(engine, ids) -> list[tuple]:
    t = Observation.__table__
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t).where(t.c.indicator_id.in_(ids)).order_by(*t.primary_key.columns))]


def run_of(engine, run_id) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(select(Run.status, Run.error).where(Run.id == run_id)).one())


def runs_of(engine, source) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Run).where(Run.source == source)).scalar()


# ---- servers ----------------------------------------------------------------------------------------------------

class CrimeOverHttp(CrimeSeveritySource):
    """The real crime severity source, its bundled real file fetched over HTTP."""

    has_live = True

    def __init__(self, url: str):
        self.url = url

    def fetch(self, http, specs):
        yield http.get(self.name, self.url)


@pytest.fixture(scope="module")
def crime_url():
    body = (SNAPSHOT_DIR / SCORE_FILE).read_bytes()
    server = make_server("127.0.0.1", 0, lambda environ, start: Response(body, mimetype="text/csv")(environ, start), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/crime_severity.csv"
    server.shutdown()


@pytest.fixture
def two_sources(monkeypatch, crime_url, httpserver):
    """Fingertips (base URL: the local server) and the crime source, as the refresh and the CLI see them."""
    monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", httpserver.url_for("/"))
    sources = {"fingertips": FingertipsSource(), "ons_crime_severity": CrimeOverHttp(crime_url)}
    monkeypatch.setattr("pipelines.registry.all_sources", lambda: sources)
    httpserver.expect_request(META).respond_with_data(METADATA, content_type="text/csv")
    return sources


def good_data(request) -> Response:
    # every area-type call gets the all-areas extract; each call keeps its own areas (501 districts and
    # unitaries, 502 counties, 6 regions and England), which together are the bundled rows
    return Response(REAL_CSV, mimetype="text/csv")


@pytest.fixture
def reset_server():
    """Accepts a connection, reads the request and resets it (SO_LINGER 0 makes close() send RST)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


def client(timeout: float = 3, retries: int = 2) -> HttpClient:
    return HttpClient(timeout=timeout, retries=retries, backoff=0.01)


def refresh_two(engine, http):
    from tracker.refresh import refresh

    fingertips, crime = refresh(engine, TWO_SOURCES, http=http)
    assert crime.status == "succeeded", crime.error  # the other source loads whatever happened to Fingertips
    assert len(observations(engine, CRIME_IDS)) == crime.rows_loaded > 0
    return fingertips


# ---- retried faults ---------------------------------------------------------------------------------------------

def test_server_error_is_retried_then_succeeds(engine, httpserver, two_sources):
    before = observations(engine, FINGERTIPS_IDS)
    httpserver.expect_oneshot_request(DATA).respond_with_data("Internal Server Error", status=500)
    httpserver.expect_request(DATA).respond_with_handler(good_data)
    result = refresh_two(engine, client())
    assert result.status == "succeeded", result.error
    first, second = [(req.full_path, resp.status_code) for req, resp in httpserver.log[:2]]
    assert first[0] == second[0] and (first[1], second[1]) == (500, 200)
    # the live extract is the bundled one, so every stored row stays as it was
    after = observations(engine, FINGERTIPS_IDS)
    assert result.rows_loaded > 1000 and result.rows_changed == 0
    assert sorted(after) == sorted(before)


def test_rate_limit_waits_for_retry_after_then_succeeds(engine, httpserver, two_sources):
    httpserver.expect_oneshot_request(DATA).respond_with_data("Too Many Requests", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request(DATA).respond_with_handler(good_data)
    started = time.perf_counter()
    result = refresh_two(engine, client())
    assert result.status == "succeeded", result.error
    assert result.stages["fetch"] >= 1.0 and time.perf_counter() - started >= 1.0
    assert [resp.status_code for _, resp in httpserver.log[:2]] == [429, 200]


# ---- faults that fail the source --------------------------------------------------------------------------------

def slow(request) -> Response:
    time.sleep(0.6)
    return good_data(request)


def content_length_too_long(request) -> Response:
    response = Response(REAL_CSV[: len(REAL_CSV) // 2], mimetype="text/csv")
    response.headers["Content-Length"] = str(len(REAL_CSV))
    return response


HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Fingertips | Public health data</title></head>"
             b"<body><h1>Sorry, the service is unavailable</h1></body></html>\n")
CUT_MID_RECORD = REAL_CSV[: REAL_CSV.index(b"\n", len(REAL_CSV) // 2) + 40]
RENAMED = REAL_CSV.replace(b",Value,", b",Indicator value,", 1)

FAULTS = {
    # name: (handler or None for the reset server, client timeout, phrases the error must contain)
    "timeout": (slow, 0.25, ["{data} timed out after 0.25 s"]),
    "reset": (None, 3, ["could not connect to {data}", "ConnectionResetError"]),
    "content_length_too_long": (content_length_too_long, 3, ["the response from {data} was cut short", "IncompleteRead"]),
    "cut_mid_record": (lambda r: Response(CUT_MID_RECORD, mimetype="text/csv"), 3, ["{data}?", "looks truncated: it does not end with a line break"]),
    "html_page": (lambda r: Response(HTML_PAGE, mimetype="text/html"), 3, ["{data}?", "returned an HTML page instead of CSV"]),
    "renamed_column": (
        lambda r: Response(RENAMED, mimetype="text/csv"), 3,
        ["fingertips: {data}?", "missing or renamed column(s) Value;", "expected Indicator ID, Indicator Name,",
         "found Indicator ID,", "Indicator value"],
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_fails_fingertips_clearly_and_keeps_its_data(fault, engine, httpserver, two_sources, reset_server, monkeypatch):
    handler, timeout, phrases = FAULTS[fault]
    if handler is None:
        monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", reset_server)
    else:
        httpserver.expect_request(DATA).respond_with_handler(handler)
    base = os.environ["TRACKER_FINGERTIPS_BASE_URL"].rstrip("/")
    before = observations(engine, FINGERTIPS_IDS)

    result = refresh_two(engine, client(timeout=timeout, retries=1))

    assert result.status == "failed"
    for phrase in phrases:
        assert phrase.format(data=base + DATA) in result.error
    assert run_of(engine, result.run_id) == ("failed", result.error)
    assert observations(engine, FINGERTIPS_IDS) == before


# ---- the command line ---------------------------------------------------------------------------------------------

def cli(capsys, *args) -> tuple[int, list[dict], str]:
    from tracker.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return exit_info.value.code, results, err


@pytest.fixture
def fast_http(monkeypatch):
    monkeypatch.setenv("TRACKER_HTTP_TIMEOUT", "3")
    monkeypatch.setenv("TRACKER_HTTP_RETRIES", "1")
    monkeypatch.setenv("TRACKER_HTTP_BACKOFF", "0.01")


def test_cli_exit_code_is_1_when_a_source_failed(engine, httpserver, two_sources, fast_http, capsys):
    before = observations(engine, FINGERTIPS_IDS)
    httpserver.expect_request(DATA).respond_with_data(HTML_PAGE, content_type="text/html")
    code, results, _ = cli(capsys, "refresh", "--source", "fingertips", "--source", "ons_crime_severity", "--log-format", "json")
    status = {r["source"]: (r["status"], r["error"]) for r in results}
    assert code == 1
    assert status["fingertips"][0] == "failed" and "returned an HTML page instead of CSV" in status["fingertips"][1]
    assert status["ons_crime_severity"] == ("succeeded", "")
    assert observations(engine, FINGERTIPS_IDS) == before


def test_cli_exit_code_is_0_when_all_succeeded(engine, httpserver, two_sources, fast_http, capsys):
    httpserver.expect_request(DATA).respond_with_handler(good_data)
    code, results, _ = cli(capsys, "refresh", "--source", "fingertips", "--source", "ons_crime_severity", "--log-format", "json")
    assert code == 0
    assert {r["source"]: r["status"] for r in results} == {"fingertips": "succeeded", "ons_crime_severity": "succeeded"}


def test_cli_exit_code_is_2_for_an_unknown_source(engine, two_sources, capsys):
    code, results, err = cli(capsys, "refresh", "--source", "fingertips", "--source", "nosuch")
    assert code == 2 and results == []
    assert err == "tracker: error: unknown source 'nosuch'; valid: fingertips, ons_crime_severity\n"


# ---- killed and concurrent refreshes ------------------------------------------------------------------------------

KILLED_DURING_LOAD = """
import sys, time
import pandas as pd
import tracker.refresh as refresh_module
from db.engine import make_engine

real_load = refresh_module.load_observations

def load_then_hang(conn, frames, run_id, ids, **options):
    frames = [frames] if isinstance(frames, pd.DataFrame) else frames
    doubled = (f.assign(value=pd.to_numeric(f["value"], errors="coerce") * 2) for f in frames)  # every value changes
    result = real_load(conn, doubled, run_id, ids, **options)
    print("LOADED", flush=True)  # inside the transaction, not committed
    time.sleep(120)
    return result

refresh_module.load_observations = load_then_hang
refresh_module.refresh(make_engine(sys.argv[1]), ["fingertips"], offline=True)
"""

HOLDS_LOCK = """
import sys, time
from pathlib import Path
from tracker.geography import AreaMapper
from tracker.refresh import refresh
from db.engine import make_engine

go = Path(sys.argv[2])
real_from_engine = AreaMapper.from_engine.__func__

def wait_for_go(cls, engine):  # refresh() calls this holding the lock, outside any transaction
    print("HOLDING", flush=True)
    while not go.exists():
        time.sleep(0.05)
    return real_from_engine(cls, engine)

AreaMapper.from_engine = classmethod(wait_for_go)
(summary,) = refresh(make_engine(sys.argv[1]), ["ons_crime_severity"], offline=True)
print("DONE", summary.status, flush=True)
"""


def start(script: str, *args: str, stderr: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=PROJECT_ROOT, env=os.environ.copy(),
        stdout=subprocess.PIPE, stderr=stderr.open("w"), text=True,
    )


def wait_for_line(proc: subprocess.Popen, expected: str, stderr: Path) -> None:
    line = proc.stdout.readline().strip()
    if line != expected:
        proc.kill()
        raise AssertionError(f"subprocess said {line!r}, not {expected!r}: {stderr.read_text()[-2000:]}")


def test_refresh_killed_inside_its_load_transaction_leaves_previous_data(engine, tmp_path):
    from tracker.refresh import refresh

    before = observations(engine, FINGERTIPS_IDS)
    log = tmp_path / "stderr.txt"
    proc = start(KILLED_DURING_LOAD, str(engine.url), stderr=log)
    try:
        wait_for_line(proc, "LOADED", log)
        assert observations(engine, FINGERTIPS_IDS) == before  # readers keep seeing the committed data meanwhile
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
    assert observations(engine, FINGERTIPS_IDS) == before
    with engine.connect() as conn:
        killed_run = conn.execute(select(func.max(Run.id)).where(Run.source == "fingertips")).scalar()
    assert run_of(engine, killed_run) == ("running", None)

    (summary,) = refresh(engine, ["ons_crime_severity"], offline=True)  # the next refresh (any source) runs
    assert summary.status == "succeeded"
    status, error = run_of(engine, killed_run)
    assert status == "failed" and error.startswith("interrupted")
    assert observations(engine, FINGERTIPS_IDS) == before


def test_second_refresh_while_one_holds_the_lock_exits_3_and_changes_nothing(engine, tmp_path, capsys):
    before = observations(engine, FINGERTIPS_IDS)
    runs_before = runs_of(engine, "fingertips")
    go, log = tmp_path / "go", tmp_path / "stderr.txt"
    proc = start(HOLDS_LOCK, str(engine.url), str(go), stderr=log)
    try:
        wait_for_line(proc, "HOLDING", log)
        code, results, err = cli(capsys, "refresh", "--source", "fingertips", "--offline")
        assert code == 3 and results == []
        assert f"tracker: another refresh is running (lock {paths().lock_file}); wait for it to finish" in err
        go.touch()
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read().strip() == "DONE succeeded"
    finally:
        proc.kill()
    assert runs_of(engine, "fingertips") == runs_before
    assert observations(engine, FINGERTIPS_IDS) == before
    with FileLock(str(paths().lock_file)).acquire(timeout=0):  # released when the holder finished
        pass
