"""The Streamlit dashboard: one module per page under tracker/app/pages, shared helpers in
tracker/app/common.py. Pages render what tracker.analysis computes.

Pages are files (not callables) so that AppTest.switch_page() can open each one in tests; each page module has a
render() function that runs when Streamlit executes the file."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from tracker.app.common import PAGE_FILES, ensure_database, render_slot  # noqa: F401  (re-exported for streamlit_app.py)

FAVICON = Path(__file__).resolve().parent / "static" / "favicon.png"
PAGES = [
    ("overview", "Overview", ":material/map:"),
    ("place", "Place", ":material/location_on:"),
    ("department", "Department", ":material/account_balance:"),
    ("indicator", "Indicator", ":material/show_chart:"),
    ("data", "Data and methods", ":material/download:"),
]


def navigation():
    pages = [st.Page(PAGE_FILES[module], title=title, icon=icon, url_path=module, default=(module == "overview"))
             for module, title, icon in PAGES]
    return st.navigation(pages)
