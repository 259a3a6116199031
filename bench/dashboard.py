"""Part 5: each dashboard page's render time under Streamlit's AppTest, on the database prepared from the bundled
snapshot, in one process, following users: the app opens on its default page in a new process ("app start": this
run also builds the analysis Store), a user then opens each page ("first render": the page's own data not cached
yet), and a later session opens it again ("warm render": what every later visitor waits for)."""

from __future__ import annotations

import time

from bench.common import PROJECT_ROOT, peak_rss_mb

APP = PROJECT_ROOT / "streamlit_app.py"


def pages() -> list[tuple[str, str]]:
    """(module, title) of every dashboard page, from tracker.app.PAGES."""
    from tracker.app import PAGES

    return [(module, title) for module, title, _icon in PAGES]


def _render(page_file: str | None, timeout: float) -> tuple[float, list[str]]:
    """A new session: the app's default page, then (if given) `page_file`; the seconds of the last run."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    t = time.perf_counter()
    at.run()
    if page_file is not None:
        at.switch_page(page_file)
        t = time.perf_counter()
        at.run()
    seconds = time.perf_counter() - t
    return seconds, [str(getattr(e, "message", e))[:300] for e in at.exception]


def measure(timeout: float = 300) -> dict:
    """Child task (TRACKER_DATABASE_URL points at the prepared snapshot database)."""
    from tracker.app.common import PAGE_FILES

    listed = pages()
    default = listed[0][0]
    start, errors = _render(None, timeout)
    out = []
    for module, title in listed:
        page_file = None if module == default else str(PAGE_FILES[module].relative_to(APP.parent))
        first, first_errors = (start, errors) if module == default else _render(page_file, timeout)
        warm, warm_errors = _render(page_file, timeout)
        out.append({"page": module, "title": title, "first_seconds": round(first, 3), "warm_seconds": round(warm, 3),
                    "errors": sorted(set(first_errors + warm_errors))})
    return {"app_start_seconds": round(start, 3), "default_page": default, "pages": out, "peak_rss_mb": peak_rss_mb()}
