"""Helpers shared by the dashboard's pages: the database, caching keyed on the data version, and the
first-start preparation from the bundled snapshot."""

from __future__ import annotations

import streamlit as st

from tracker.store import get_engine


def engine():
    return get_engine()


def ensure_database() -> None:
    """On first start, prepare the database from the bundled real snapshot, showing progress. Apart from
    this, the app only reads."""
    if st.session_state.get("_database_ready"):
        return
    from tracker.refresh import has_observations
    from tracker.store import prepare
    from db.engine import has_schema

    eng = engine()
    if not (has_schema(eng) and has_observations(eng)):
        with st.status("Preparing the database from the bundled real snapshot (first start only)…", expanded=True) as box:
            summaries = prepare(eng, progress=lambda source, stage: box.write(f"{source}: {stage}"))
            failed = [s for s in summaries if s.status == "failed"]
            box.update(label="Database ready" if not failed else "Database ready, with problems", state="complete" if not failed else "error")
            for s in failed:
                st.error(f"{s.source}: {s.error}")
    st.session_state["_database_ready"] = True
