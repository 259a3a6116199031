"""Data page."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("Data")
    st.info("This page is being built.")
