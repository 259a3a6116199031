"""Department page."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("Department")
    st.info("This page is being built.")
