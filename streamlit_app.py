"""The dashboard's entry point: `streamlit run streamlit_app.py` (or `make run`).

Page code only renders what tracker/ computes; no SQL and no statistics here."""

from __future__ import annotations

import logging

import streamlit as st

from tracker.app import FAVICON, ensure_database, navigation, render_slot

# The server's log says whether it read the saved analysis or had to compute it (docs/deployment.md)
logging.getLogger("tracker.analysis").setLevel(logging.INFO)
if not logging.getLogger("tracker").handlers:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("tracker").addHandler(handler)
# A favicon from the package, not an icon font or emoji fetched from a CDN: the dashboard works with no network.
st.set_page_config(page_title="Wider Determinants Tracker", page_icon=str(FAVICON), layout="wide")
ensure_database()
with render_slot():  # visitors' pages are drawn in turn (TRACKER_RENDER_SLOTS at once), not all slowed together
    navigation().run()
