"""Indicator: what it measures, who produces it and which department owns it (and why), the time series for the
place against England, a map, and a scatter against a headline outcome across local authorities."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from tracker import departments
from tracker.app import common as c


def render() -> None:
    cat = c.catalog()
    # every indicator `tracker indicators` lists, those with no figures yet marked as such (and explained below)
    listed = pd.concat([cat[cat["n_periods"] > 0].sort_values("title"), cat[cat["n_periods"] == 0].sort_values("title")])
    options = {i: f"{t} ({a})" + ("" if n else " · no figures loaded yet")
               for i, t, a, n in zip(listed["id"], listed["title"], listed["department_abbr"], listed["n_periods"])}
    left, right = st.columns(2)
    with left:
        indicator = c.choose("indicator", options, "claimant-count-rate-16-64", "Indicator (type to search)")
    with right:
        area = c.choose_area()
    meta = cat.loc[indicator]
    place = c.areas().at[area, "name"]

    st.title(meta["title"])
    _metadata(meta)
    if not meta["n_periods"]:
        st.info(f"No figures loaded yet for this indicator: {_why_no_figures(meta)}", icon=":material/hourglass_empty:")
        return

    st.subheader(f"{place} over time")
    series = c.fetch("time_series", indicator, area)
    if series.empty or series["value"].isna().all():
        level = {"ltla": "districts and unitaries", "utla": "counties and unitaries"}.get(meta["la_level"], "these areas")
        st.info(f"No figures for {place} on this indicator (it is published for {level}, England and some larger "
                "areas). Choose another place above.")
    else:
        st.plotly_chart(_series_chart(series, meta, place, area == c.ENGLAND), width="stretch", config=c.PLOT_CONFIG)
        last = series.iloc[-1]
        digits = meta["decimals"]
        st.caption(c.LEGEND)
        st.caption(f"{meta['title']} for {place}" + ("" if area == c.ENGLAND else " and England")
                   + f", {series['sex'].iloc[0].lower()}, every period held. "
                   + ("Bars: 95% confidence intervals. " if series["lci95"].notna().any() else "No confidence intervals are published. ")
                   + f"Latest ({last['period']}): {c.with_unit(last['value'], meta['unit'], digits)}"
                   + ("" if area == c.ENGLAND else
                      f", England {c.with_unit(last['england_value'], meta['unit'], digits)}. Compared with England: "
                      f"{c.comparison_word(last['comparison_label'])}"
                      + (f" ({last['comparison_basis']})" if isinstance(last["comparison_basis"], str) else "")
                      + f". Position among areas: {c.position_word(last['position'])}") + ". "
                   + f"Recent trend: {last['trend'] or 'not calculated'}."
                   + (f" ICB figure: {last['method']}." if area.startswith("E54") and isinstance(last["method"], str) else "")
                   + f" Source: {meta['producer']}.")
        _peers(indicator, area, place, meta)

    left, right = st.columns([1, 1])
    with left:
        st.subheader("Map")
        # by default the areas the chosen place is one of (a county among counties, an ICB among ICBs), so it is
        # outlined; England and regions on the indicator's own level
        level = meta["la_level"] if meta["la_level"] in c.GEOGRAPHIES else "ltla"
        holding = [g for g in c.GEOGRAPHIES if area in c.area_codes(g)]
        default_geo = level if level in holding or not holding else holding[0]
        geography = c.choose("geography", c.GEOGRAPHIES, default_geo, "Map areas", widget="radio")
        values = c.fetch("latest_observations", c.area_codes(geography), [indicator])
        st.plotly_chart(c.choropleth(values, geography, f"{meta['title']}, latest period", str(meta["unit"]),
                                     highlight=area, reverse=meta["polarity"] == "lower_is_better"),
                        width="stretch", config=c.PLOT_CONFIG)
        if geography in holding:
            where = f"{place} is outlined."
        elif holding:
            where = f"{place} is not one of these areas: choose {c.GEOGRAPHIES[holding[0]]} to see it outlined."
        else:  # England (every area is its own) or a region
            where = "" if area == c.ENGLAND else f"{place} is not one of the map's areas."
        st.caption(f"Latest period for each area ({', '.join(sorted(values['period'].dropna().unique())) or 'none'}). "
                   f"Darker = worse where the indicator has a direction. {where + ' ' if where else ''}Grey: no figure.")
    with right:
        st.subheader("Against a health outcome")
        outcome, sex = c.choose_outcome()
        _scatter(indicator, outcome, sex, area, cat)


def _peers(indicator: str, area: str, place: str, meta: pd.Series) -> None:
    """The latest figure against the place's similar areas (ONS's, or the tracker's peer ICBs), beside England."""
    if area == c.ENGLAND or area.startswith("E12"):
        return
    kind = st.query_params.get("similar", "global")
    kind = kind if kind in ("global", "economic", "demographic") else "global"
    rows = c.fetch("peer_benchmark", [area], [indicator], kind=kind)
    if rows.empty or rows["peer_group"].isna().all():
        return
    r = rows.iloc[-1]
    if r["peer_value"] != r["peer_value"]:
        st.caption(f"Compared with similar areas ({r['peer_group']}): not enough of them have a figure for "
                   f"{r['period']} ({r['n_peers_with_value']} of {r['n_peers']}).")
        return
    unit, digits = meta["unit"], meta["decimals"]  # the indicator's own decimal places, as in the caption above
    st.markdown(f"**Compared with similar areas** ({r['peer_group']}), {r['period']}: similar areas "
                f"{c.with_unit(r['peer_value'], unit, digits)} ({r['peer_method']}, {r['n_peers_with_value']} of "
                f"{r['n_peers']} with a figure) · {place} {c.with_unit(r['value'], unit, digits)} · "
                + c.badge(r["peer_comparison"], r["peer_comparison_label"])
                + f" · position {r['peer_position']} (1 = best) · England {c.with_unit(r['england_value'], unit, digits)} "
                + c.badge(r["comparison"], r["comparison_label"]), unsafe_allow_html=True)


def _metadata(meta: pd.Series) -> None:
    status = c.freshness().set_index("source")
    run = status.loc[meta["source"]] if meta["source"] in status.index else None
    slugs = meta["secondary_departments"] if isinstance(meta["secondary_departments"], list) else []
    secondary = ", ".join(departments.get(s).name for s in slugs) or "none"
    released = None if run is None or run["released"] is None or pd.isna(run["released"]) else run["released"]
    freshness = "no data yet" if run is None else (
        f"{run['freshness']}" + (f"; released by the publisher {released:%d %b %Y}" if released else ""))
    a, b = st.columns([3, 2])
    with a:
        st.markdown(f"**Definition.** {meta['definition']}")
        if isinstance(meta["caveats"], str) and meta["caveats"].strip():
            with st.expander("Caveats from the publisher and the tracker"):
                st.markdown(meta["caveats"])
    with b:
        st.markdown(
            f"- **Responsible department:** {c.department_label(meta['department_name'], meta['is_dhsc'])}  \n"
            f"  _Why:_ {meta['rationale']}\n"
            f"- **Secondary departments:** {secondary}\n"
            f"- **Producer:** {meta['producer']}\n"
            f"- **Source:** [the publisher's page]({meta['source_url']}) (pipeline `{meta['source']}`, id `{meta['source_id']}`)\n"
            f"- **Licence:** {meta['licence']}\n"
            f"- **Unit:** {meta['unit']} · {str(meta['polarity']).replace('_', ' ')}\n"
            f"- **Confidence intervals:** {_ci_text(meta)}\n"
            f"- **Latest period:** {meta['latest_period'] if meta['n_periods'] else 'none loaded'} · "
            f"{c.plural(int(meta['n_periods']), 'period')} held\n"
            f"- **Freshness of the source:** {freshness}")
        c.link("department", f"More on {meta['department_abbr']}", icon=":material/account_balance:",
               department=meta["department_slug"])


def _ci_text(meta: pd.Series) -> str:
    method = meta.get("ci_method")
    if method == "none":
        return f"none, so never tested against England ({meta.get('ci_reason')})"
    if method in ("wilson", "byar"):
        name = "Wilson score" if method == "wilson" else "Byar / exact Poisson"
        return f"as published, else computed from counts ({name})"
    return "as published only"


def _why_no_figures(meta: pd.Series) -> str:
    """Why an indicator in the catalog has no rows: its source never loaded, it is fetched live only (not in the
    bundled snapshot), or its source's last load brought no rows for it."""
    from tracker.catalog import load_catalog

    spec = next((s for s in load_catalog() if s.id == meta["id"]), None)
    status = c.freshness().set_index("source")
    source = meta["source"]
    refresh = f"`tracker refresh --source {source}` fetches it from the publisher"
    if spec is not None and spec.options.get("live_only"):
        return f"it is not in the bundled offline snapshot, only in the publisher's live service; {refresh}."
    if source not in status.index or pd.isna(status.at[source, "last_success"]):
        return f"its source ({source}) has not been loaded yet; {refresh}."
    return (f"the last load of its source ({source}, {status.at[source, 'last_mode']}) brought no rows for it; "
            f"{refresh}.")


def _series_chart(series: pd.DataFrame, meta: pd.Series, place: str, is_england: bool = False) -> go.Figure:
    s = series.sort_values("period_end")
    has_ci = s["lci95"].notna().any()
    error = {"type": "data", "symmetric": False, "array": (s["uci95"] - s["value"]).tolist(),
             "arrayminus": (s["value"] - s["lci95"]).tolist(), "color": "#0072B2", "thickness": 1.2} if has_ci else None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=s["period"], y=s["value"], mode="lines+markers", name=place, error_y=error,
                             marker={"color": [c.comparison_colour(x) for x in s["comparison"]], "size": 10,
                                     "line": {"width": 1, "color": "#333"}},
                             line={"color": "#0072B2"},
                             text=[f"Compared with England: {c.comparison_word(x)}<br>Position among areas: "
                                   f"{c.position_word(p)}" for x, p in zip(s["comparison_label"], s["position"])],
                             hovertemplate=f"%{{x}}: %{{y:,.{int(meta['decimals'])}f}}<br>%{{text}}<extra>{place}</extra>"))
    if not is_england:  # England against itself would be one line drawn twice
        fig.add_trace(go.Scatter(x=s["period"], y=s["england_value"], mode="lines+markers", name="England",
                                 line={"color": "black", "dash": "dash"}, marker={"symbol": "diamond", "size": 7}))
    title = f"{meta['title']}: {place}" + ("" if is_england else " and England")
    title = c.wrap(title, 90)
    fig.update_layout(title={"text": title, "font": {"size": 15}}, showlegend=not is_england,
                      yaxis_title=str(meta["unit"])[:40], height=440, margin={"l": 10, "r": 10, "t": c.title_room(title), "b": 40},
                      # category axis labels ("2025 Q4") are tilted as needed and given the room they need
                      xaxis={"type": "category", "automargin": True}, legend={"orientation": "h", "y": -0.2, "yanchor": "top"})
    return fig


def _scatter(indicator: str, outcome: str, sex: str, area: str, cat: pd.DataFrame) -> None:
    outcome_title = cat.at[outcome, "title"]
    try:
        points = c.fetch("scatter_data", indicator, outcome, sex=sex)
    except ValueError as exc:
        st.info(f"No scatter: {exc}.")
        return
    assoc = c.fetch("associations", outcome, sex=sex).set_index("indicator_id")
    row = assoc.loc[indicator] if indicator in assoc.index else None
    first = points.iloc[0] if len(points) else None
    fig = go.Figure(go.Scatter(x=points["determinant"], y=points["outcome"], mode="markers", text=points["area_name"],
                               marker={"color": "#0072B2", "opacity": 0.55, "size": 7},
                               hovertemplate="%{text}<br>x: %{x:,.2f}<br>y: %{y:,.2f}<extra></extra>", name="local authorities"))
    mine = points[(points["area_code"] == area) | (points["icb_code"] == area)]
    if len(mine):
        fig.add_trace(go.Scatter(x=mine["determinant"], y=mine["outcome"], mode="markers", text=mine["area_name"],
                                 marker={"color": "#D55E00", "size": 11, "line": {"width": 1, "color": "black"}},
                                 hovertemplate="%{text}<br>x: %{x:,.2f}<br>y: %{y:,.2f}<extra></extra>",
                                 name=c.areas().at[area, "name"]))
    x_label = f"{cat.at[indicator, 'title']} ({first['determinant_period'] if first is not None else ''})"
    y_label = f"{outcome_title} ({sex.lower()}, {first['outcome_period'] if first is not None else ''})"
    title = c.wrap(f"{outcome_title} against this indicator across local authorities")
    fig.update_layout(title={"text": title, "font": {"size": 15}},
                      height=500, xaxis_title=x_label[:70], yaxis_title=y_label[:60],
                      margin={"l": 10, "r": 10, "t": c.title_room(title), "b": 40}, legend={"orientation": "h", "y": -0.2, "yanchor": "top"})
    st.plotly_chart(fig, width="stretch", config=c.PLOT_CONFIG)
    if row is not None and row["rho"] == row["rho"]:
        st.markdown(f"**Spearman's rho = {row['rho']:.2f}** (95% CI {row['rho_lci']:.2f} to {row['rho_uci']:.2f}), "
                    f"n = {int(row['n'])} {'districts and unitaries' if row['level'] == 'ltla' else 'upper-tier authorities'}; "
                    f"q = {row['q_value']:.2g} (Benjamini-Hochberg). "
                    + ("A worse value goes with a worse outcome." if row["aligned_rho"] > 0 else
                       "A worse value does not go with a worse outcome." if row["aligned_rho"] == row["aligned_rho"] else
                       "The indicator has no better/worse direction."))
    st.caption("Each dot is a local authority" + (" (the chosen place, or its local authorities, in orange)" if len(mine) else "")
               + ". Periods are the outcome's latest and the indicator's nearest.")
    c.caveat()


if __name__ == "__main__":
    render()
