"""The deployment ICSs grow into (docs/deployment.md): one real PostgreSQL server, two dashboard processes (`streamlit
run`, as the systemd units start them) and a refresh worker in a third process. The dashboards read the analysis the
refresh saved in the database (neither computes it), keep answering without an error while the refresh writes, and
both show the new figures once it has landed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import AnalysisSave
from tests.conftest import _fresh_pg_database

ROOT = Path(__file__).resolve().parents[1]
LIVERPOOL = "E08000012"
PLACE = f"/place?area={LIVERPOOL}&outcome=life-expectancy&sex=Male"
NEW_INDICATOR = "Crime severity score"  # what the worker's refresh adds (ONS crime severity, bundled snapshot)
COMPUTING = "computing it in this process"  # what tracker.analysis.data logs when no save could be read,
READ = "read the saved analysis"  # and when it read one

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

_spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)


def tracker(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracker.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def page_text(browser, base: str) -> str:
    """The Place page's text once drawn, in a new session; fails on any exception shown on the page."""
    page = browser.new_page()
    try:
        page.goto(base + PLACE)
        shots.wait_rendered(page)
        assert not page.query_selector("[data-testid='stException']"), page.inner_text("body")[:2000]
        return page.inner_text("body")
    finally:
        page.close()


def test_two_dashboards_and_a_refresh_worker_on_one_postgresql(postgres_url, tmp_path):
    from playwright.sync_api import sync_playwright

    engine = _fresh_pg_database(postgres_url)
    url = engine.url.render_as_string(hide_password=False)
    base_env = {**os.environ, "TRACKER_DATABASE_URL": url}
    worker = {**base_env, "TRACKER_DATA_DIR": str(tmp_path / "worker")}
    # the first load: life expectancy (Fingertips), whose analysis the worker saves in the database
    for args in (["init"], ["refresh", "--offline", "--source", "fingertips"]):
        done = tracker(worker, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    with engine.connect() as conn:
        assert len(conn.execute(select(AnalysisSave.data_version)).all()) == 1

    dashboards = [{**base_env, "TRACKER_DATA_DIR": str(tmp_path / f"dashboard-{i}")} for i in (1, 2)]
    with shots.serve_process(dashboards[0]) as (one, first), shots.serve_process(dashboards[1]) as (two, second), \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shots.CHROMIUM, args=shots.CHROMIUM_ARGS)
        before = [page_text(browser, base) for base in (one, two)]
        assert all("Liverpool" in text and NEW_INDICATOR not in text for text in before)

        # the refresh worker lands a new source while both dashboards are being visited
        refresh = subprocess.Popen([sys.executable, "-m", "tracker.cli", "refresh", "--offline", "--source",
                                    "ons_crime_severity"], cwd=ROOT, env=worker, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        visits = 0
        while refresh.poll() is None:
            for base in (one, two):
                page_text(browser, base)  # never an error while it writes
                visits += 1
        assert refresh.returncode == 0, refresh.stdout.read()
        # each dashboard asks the database for its data version at most every 5 seconds (tracker.app.common), so
        # the new figures show within seconds of the refresh landing, not necessarily on the very next visit
        deadline = time.monotonic() + 60
        while True:
            after = [page_text(browser, base) for base in (one, two)]
            if all(NEW_INDICATOR in text for text in after) or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert all(NEW_INDICATOR in text for text in after), "a dashboard did not show the new figures within 60 s"
        browser.close()
        servers = (first, second)
    logs = [server.stdout.read().decode(errors="replace") for server in servers]
    # neither dashboard computed the analysis: both read the version the worker saved
    assert not any(COMPUTING in log for log in logs), logs
    assert all(READ in log for log in logs), logs
    with engine.connect() as conn:
        # the newer save is complete, and the one it replaced is kept (a dashboard may still be answering from it)
        assert len(conn.execute(select(AnalysisSave.data_version)).all()) == 2
    engine.dispose()
    assert visits >= 2
