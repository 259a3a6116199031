"""The Streamlit dashboard: one module per page under tracker/app/pages, shared helpers in
tracker/app/common.py. Pages render what tracker.analysis computes."""

from __future__ import annotations

import streamlit as st

from tracker.app.common import ensure_database  # noqa: F401  (re-exported for streamlit_app.py)

PAGES = [
    ("overview", "Overview", "🗺️"),
    ("place", "Place", "📍"),
    ("department", "Department", "🏛️"),
    ("indicator", "Indicator", "📈"),
    ("data", "Data and methods", "⬇️"),
]


def navigation():
    from importlib import import_module

    pages = [
        st.Page(import_module(f"tracker.app.pages.{module}").render, title=title, icon=icon, url_path=module,
                default=(module == "overview"))
        for module, title, icon in PAGES
    ]
    return st.navigation(pages)
