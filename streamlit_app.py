"""The dashboard's entry point: `streamlit run streamlit_app.py` (or `make run`).

Page code only renders what tracker/ computes; no SQL and no statistics here."""

from __future__ import annotations

import streamlit as st

from tracker.app import ensure_database, navigation

st.set_page_config(page_title="Wider Determinants Tracker", page_icon=":material/health_and_safety:", layout="wide")
ensure_database()
navigation().run()
