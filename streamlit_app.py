"""The dashboard's entry point: `streamlit run streamlit_app.py` (or `make run`).

Page code only renders what tracker/ computes; no SQL and no statistics here."""

from __future__ import annotations

import streamlit as st

from tracker.app import FAVICON, ensure_database, navigation

# A favicon from the package, not an icon font or emoji fetched from a CDN: the dashboard works with no network.
st.set_page_config(page_title="Wider Determinants Tracker", page_icon=str(FAVICON), layout="wide")
ensure_database()
navigation().run()
