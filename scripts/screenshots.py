"""Screenshots of the dashboard for the README (docs/screenshots/*.png), taken in Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--area E54000050]

Serves the app with the database the tracker is configured with (TRACKER_DATABASE_URL / TRACKER_DATA_DIR; run
`tracker prepare` first), opens each page through a shared link and saves a full-page PNG. No browser download:
Playwright drives /usr/bin/chromium."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(env: dict | None = None, timeout: float = 120):
    """Run `streamlit run streamlit_app.py` on a free local port; yield its base URL; stop it afterwards."""
    with serve_process(env, timeout) as (base, _proc):
        yield base


@contextmanager
def serve_process(env: dict | None = None, timeout: float = 120, script: str = "streamlit_app.py"):
    """serve(), yielding (base URL, the server's process); `script` (from the project folder) is the app to run."""
    port = free_port()
    cmd = [str(ROOT / ".venv" / "bin" / "streamlit"), "run", script, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    env = {"MALLOC_ARENA_MAX": "2", **os.environ, **(env or {})}  # as `make run` and deploy/ start the dashboard
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
                time.sleep(0.5)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# Streamlit's own run state, on its app element: "running" until the browser has had the script's last message. The
# "running" status widget cannot say it: the minimal toolbar (.streamlit/config.toml) shows it only now and then, and a
# page looked done seconds before its charts arrived.
SCRIPT_DONE = ("document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
               " === 'notRunning'")
BUSY = "[data-testid=\"stStatusWidget\"], [data-testid=\"stSpinner\"]"  # the run's widget (when shown), a spinner
NAV = "[data-testid=\"stSidebarNav\"]"  # the pages' navigation: the app script has started
# Every plotly chart drawn: its SVG is there, and a map's areas too. A map's SVG comes seconds before its areas: plotly
# fetches the (empty) base-map topology first, and that fetch's answer waits for the rest of the page to be drawn.
CHARTS_DRAWN = ("[...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                ".every(c => c.querySelector('.main-svg')"
                " && (!(c.querySelector('.js-plotly-plot')?._fullData || []).some(t => t.type === 'choropleth'"
                " && t.visible === true && (t.locations || []).length)"
                " || !!c.querySelector('path.choroplethlocation')))")


# When the page last changed. Streamlit draws a run's elements after the run's last message has arrived (a chart's code
# is loaded when first used), and the browser can be busy for seconds between two changes: the run's end and the charts
# seen so far can come well before the last of the page. A page is drawn once it has stopped changing for QUIET_MS.
# Two clocks: __lastChange, any change; __lastSeen, a change a reader can see: not one inside a <canvas>, whose
# children are fallback content a browser never draws (a data grid writes its accessibility table there, debounced,
# about 0.3 s after the grid is drawn).
WATCH_CHANGES = ("if (window.__lastChange === undefined) { window.__lastChange = window.__lastSeen = performance.now();"
                 " new MutationObserver((ms) => { const t = performance.now(); window.__lastChange = t;"
                 " if (ms.some(m => !(m.target.closest ? m.target : m.target.parentElement)?.closest('canvas')))"
                 " window.__lastSeen = t; })"
                 ".observe(document, {childList: true, subtree: true, characterData: true}); }")
QUIET_MS = 2500
# the milliseconds since the page last changed, once the run is done and every chart drawn; -1 before
SINCE_DRAWN = (f"() => ({SCRIPT_DONE} && !document.querySelector('{BUSY}') && {CHARTS_DRAWN}"
               f" && !!document.querySelector('{NAV}')) ? performance.now() - window.__lastChange : -1")
# the milliseconds since the last change a reader can see (WATCH_CHANGES)
SINCE_SEEN = "() => performance.now() - window.__lastSeen"


def wait_rendered(page, timeout: float = 240_000) -> None:
    """Wait until the page is drawn: Streamlit has run the page script to the end (the browser has the run's last
    message: SCRIPT_DONE), no spinner is left (a cached call being computed), every plotly chart has drawn, maps with
    their areas (CHARTS_DRAWN), and nothing on the page has changed for QUIET_MS (a rerun would)."""
    page.wait_for_selector(NAV, timeout=timeout)
    page.evaluate(f"() => {{ {WATCH_CHANGES} }}")  # unless the page's context watches from the start
    page.wait_for_function(f"() => ({SINCE_DRAWN})() >= {QUIET_MS}", timeout=timeout, polling=100)


def shots(base: str, out: Path, area: str, height: int = 1000) -> list[Path]:
    """One PNG per page. Streamlit scrolls inside its own container, so a taller viewport (height) shows more."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    views = {
        "overview": "/?outcome=life-expectancy&sex=Male&geography=ltla",
        "place": f"/place?area={area}&outcome=life-expectancy&sex=Male",
        "department": f"/department?department=department-for-work-pensions&area={area}",
        "indicator": f"/indicator?indicator=claimant-count-rate-16-64&area={area}&outcome=life-expectancy",
        "data": f"/data?area={area}",
    }
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": height})
        # a new server's first view loads the saved analysis while Streamlit already draws placeholders: open it
        # once before the shots, so the first screenshot is not of a half-drawn page
        page.goto(base + views["overview"])
        wait_rendered(page)
        for name, path in views.items():
            page.goto(base + path)
            wait_rendered(page)
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            saved.append(target)
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--area", default="E54000050", help="the place shown (default NHS North East and North Cumbria ICB)")
    parser.add_argument("--height", type=int, default=1000, help="viewport height in pixels (taller shows more)")
    args = parser.parse_args()
    with serve() as base:
        for path in shots(base, Path(args.out), args.area, args.height):
            print(path)


if __name__ == "__main__":
    sys.exit(main())
