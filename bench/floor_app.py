"""Part 6's floor: the least a Streamlit page costs in this browser on this machine. Two pages in a navigation, a
title and one small Plotly chart, NO DATA (three fixed points, labelled so): served and timed exactly as the tracker's
views are, so the report can say how much of a view's time is the tracker's own."""

import plotly.graph_objects as go
import streamlit as st


def floor_page() -> None:
    st.title("Benchmark floor: a minimal page")
    st.plotly_chart(go.Figure(go.Bar(x=["a", "b", "c"], y=[1, 3, 2]), layout={"title": "No data: three fixed bars"}))


def other_page() -> None:
    st.title("Another page")


st.navigation([st.Page(floor_page, title="Floor", url_path="place", default=True),
               st.Page(other_page, title="Other", url_path="other")]).run()
