"""Overview page."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("Overview")
    st.info("This page is being built.")
