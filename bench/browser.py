"""Part 6: page speed as a user sees it. `streamlit run` serves the prepared snapshot database and Debian's Chromium
(Playwright, /usr/bin/chromium) opens each view by its shared link and times it to its last change a reader can see,
once the page is drawn (its run done, every chart and map drawn) and has stopped changing; and, from the same visits,
to its last change of any kind (shots.WATCH_CHANGES).

- views: England, an ICB, a county and a local authority (Place page, its default section), the ICB's Inequality and
  Every indicator sections, and the Overview, Indicator, Department and Data pages; the first visit after the server
  started, then `visits` warm visits (p50 and p95);
- concurrent visitors: N browser pages at once (one Chromium, a context each: the lightest real client), each on the
  Place page of a different ICB; the median and slowest time to drawn, against one visitor alone;
- the server's CPU per render (its process's CPU time over the visits), so the cost of a render is known apart from
  the browser's on the same two cores;
- the server process's memory (resident now and its peak) after the views and after the concurrent visitors;
- the floor: the same measurements of a minimal Streamlit page with no data (bench/floor_app.py), on its own server."""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from typing import NamedTuple

from bench.common import PROJECT_ROOT, cpu_seconds, percentile

_spec = importlib.util.spec_from_file_location("screenshots", PROJECT_ROOT / "scripts" / "screenshots.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)

ICB, COUNTY, LA = "E54000050", "E10000012", "E08000012"
VIEWS = {
    "Place: England": "/place?area=E92000001&outcome=life-expectancy&sex=Male",
    "Place: ICB (E54000050)": f"/place?area={ICB}&outcome=life-expectancy&sex=Male",
    "Place: county (E10000012)": f"/place?area={COUNTY}&outcome=life-expectancy&sex=Male",
    "Place: local authority (E08000012)": f"/place?area={LA}&outcome=life-expectancy&sex=Male",
    # the Place page draws one section at a time (Departments by default, above): its two heaviest others
    "Place: ICB, Inequality tab": f"/place?area={ICB}&outcome=life-expectancy&sex=Male&section=Inequality",
    "Place: ICB, Every indicator tab": f"/place?area={ICB}&outcome=life-expectancy&sex=Male&section=Every+indicator",
    "Overview: England": "/?outcome=life-expectancy&sex=Male&geography=ltla",
    "Indicator (ICB)": f"/indicator?indicator=claimant-count-rate-16-64&area={ICB}&outcome=life-expectancy",
    "Department (ICB)": f"/department?department=department-for-work-pensions&area={ICB}",
    "Data (ICB)": f"/data?area={ICB}",
}
# Place pages of different ICBs, for the concurrent visitors (NENC, Cheshire and Merseyside, Greater Manchester ...)
ICBS = ["E54000050", "E54000008", "E54000057", "E54000054", "E54000048", "E54000027", "E54000029", "E54000025",
        "E54000062", "E54000063", "E54000064", "E54000022", "E54000023", "E54000024", "E54000026", "E54000028",
        "E54000030", "E54000031", "E54000032", "E54000034"]
TITLE = "[data-testid=\"stMain\"] h1"  # every page starts with its title: its script has started


def new_context(browser):
    """A browser context (a visitor) whose pages record when they last changed from the start (shots.WATCH_CHANGES)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(shots.WATCH_CHANGES)
    return context


def visit(context, url: str) -> Drawn:
    """Seconds from navigation to the page drawn (_drawn_times), in a new tab (a new Streamlit session); the context
    comes from new_context."""
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        done = _drawn_times([page], t0)
        if not done:
            raise TimeoutError(f"{url} was not drawn in time")
        return done[0]
    finally:
        page.close()


def _memory_mb(pid: int) -> dict:
    """The server process's resident memory now and its high-water mark (Linux /proc VmRSS, VmHWM), in MiB."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    return {key: round(int(fields[name].split()[0]) / 1024) for key, name in (("now", "VmRSS"), ("peak", "VmHWM"))}


# milliseconds since the page last changed once it is drawn (shots.SINCE_DRAWN, and its title is there: else a page
# whose script has not started yet looks drawn), -1 before; and since its last change a reader can see
SINCE_DRAWN = (f"() => [document.querySelector('{TITLE}') ? ({shots.SINCE_DRAWN})() : -1,"
               f" ({shots.SINCE_SEEN})()]")


class Drawn(NamedTuple):
    """Seconds from navigation to a page drawn: its last change a reader can see (the goals' figure) and its last
    change of any kind (also fallback content inside a canvas: shots.WATCH_CHANGES), reported beside it."""
    seen: float
    any: float


def _drawn_times(pages: list, t0: float, timeout: float = 600) -> dict[int, Drawn]:
    """Seconds from t0 until each page was drawn, once it is drawn and has not changed at all for shots.QUIET_MS (the
    pages' contexts come from new_context). The pages are polled in turn every 50 ms with page.evaluate, not
    Playwright's wait_for_function, which on this machine added up to 2 s of its own."""
    done: dict[int, Drawn] = {}
    deadline = t0 + timeout
    while len(done) < len(pages) and time.perf_counter() < deadline:  # the pages not drawn by then are left out
        for i, page in enumerate(pages):
            if i in done:
                continue
            try:
                since, seen = page.evaluate(SINCE_DRAWN)
            except Exception:  # noqa: BLE001 - the document is still being replaced (navigation): not drawn yet
                since = seen = -1
            if since >= shots.QUIET_MS:
                now = time.perf_counter() - t0
                done[i] = Drawn(now - seen / 1000, now - since / 1000)
        time.sleep(0.05)
    return done


def _concurrent(browser, base: str, n: int, pid: int) -> dict:
    """n visitors open the Place page of n different ICBs at once; each one's seconds to drawn. Playwright's sync
    API is one thread, so the pages load concurrently in the browser and are polled in turn (every 50 ms)."""
    contexts = [new_context(browser) for _ in range(n)]
    pages = [c.new_page() for c in contexts]
    cpu = cpu_seconds(pid)
    t0 = time.perf_counter()
    for i, page in enumerate(pages):
        page.goto(base + f"/place?area={ICBS[i % len(ICBS)]}&outcome=life-expectancy&sex=Male", wait_until="commit")
    done = _drawn_times(pages, t0)
    for c in contexts:
        c.close()
    times = [d.seen for d in done.values()]
    return {"visitors": n, "finished": len(times), "median_seconds": round(statistics.median(times), 2),
            "slowest_seconds": round(max(times), 2), "server_cpu_seconds": round(cpu_seconds(pid) - cpu, 2)}


def _floor(browser, visits: int, concurrency: tuple[int, ...]) -> dict:
    """The same measurements of bench/floor_app.py (a title and one small chart, no data) on its own server: what any
    Streamlit page costs here, so a view's time can be read against it."""
    with shots.serve_process(script="bench/floor_app.py") as (base, server):
        context = new_context(browser)
        out = _view_times(context, base + "/place", visits, server.pid)
        out["concurrent"] = [_concurrent(browser, base, n, server.pid) for n in concurrency]
        out["server_memory_mb"] = _memory_mb(server.pid)
        context.close()
    _ratios(out["concurrent"])
    return out


def _view_times(context, url: str, visits: int, pid: int) -> dict:
    """A view's first visit and `visits` warm ones (p50, p95), to its last change a reader can see and (the same
    visits) to its last change of any kind; the server's CPU time per warm render."""
    first = visit(context, url)
    cpu = cpu_seconds(pid)
    warm = [visit(context, url) for _ in range(visits)]
    seen, any_ = [d.seen for d in warm], [d.any for d in warm]
    return {"first_seconds": round(first.seen, 2), "warm_p50": round(percentile(seen, 50), 2),
            "warm_p95": round(percentile(seen, 95), 2), "first_any_seconds": round(first.any, 2),
            "warm_any_p50": round(percentile(any_, 50), 2), "warm_any_p95": round(percentile(any_, 95), 2),
            "server_cpu_per_warm_render": round((cpu_seconds(pid) - cpu) / visits, 3)}


def _ratios(rows: list[dict]) -> None:
    single = rows[0]["median_seconds"] if rows else None
    for row in rows:
        row["ratio_to_one"] = round(row["median_seconds"] / single, 2) if single else None


def measure(visits: int = 20, concurrency: tuple[int, ...] = (1, 5, 10)) -> dict:
    """Child task (TRACKER_DATABASE_URL points at the prepared snapshot database)."""
    from playwright.sync_api import sync_playwright

    out: dict = {"visits": visits, "views": [], "concurrent": []}
    started = time.perf_counter()
    with shots.serve_process() as (base, server), sync_playwright() as p:
        out["server_start_seconds"] = round(time.perf_counter() - started, 2)
        pid = server.pid
        browser = p.chromium.launch(executable_path=shots.CHROMIUM, args=shots.CHROMIUM_ARGS)
        context = new_context(browser)
        for name, path in VIEWS.items():
            out["views"].append({"view": name, "path": path, **_view_times(context, base + path, visits, pid)})
        out["server_memory_after_views_mb"] = _memory_mb(pid)
        for n in concurrency:
            out["concurrent"].append(_concurrent(browser, base, n, pid))
        out["server_memory_mb"] = _memory_mb(pid)
        out["floor"] = _floor(browser, visits, concurrency)
        browser.close()
    _ratios(out["concurrent"])
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    return out

