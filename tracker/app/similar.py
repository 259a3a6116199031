"""The Place page's sections on places like this one (ONS similar areas, the tracker's peer ICBs, the comparison with
them) and on inequality inside the place (Core20, its LSOAs by national IMD quintile on a map, the within-place gap
per determinant). Numbers come from tracker.analysis (peers.py, inequality.py); this module only draws them."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from tracker.app import common as c

KINDS = {"global": "Global (overall)", "economic": "Economic", "demographic": "Demographic"}
QUINTILE_COLOURS = ["#54278f", "#756bb1", "#9e9ac8", "#cbc9e2", "#f2f0f7"]  # 1 most deprived (dark) .. 5


def similarity_kind(info, *, ask: bool = True) -> str:
    """The kind of ONS similarity chosen for a local authority (kept in the URL as `similar`), default global; with
    ask, the control that chooses it is drawn here."""
    if info["type"] not in ("ltla", "utla"):
        return "global"
    if not ask:
        return c.chosen("similar", KINDS, "global")
    return c.choose("similar", KINDS, "global", "Similar areas: ONS model", widget="radio", strict=False)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A table as CSV for Excel: UTF-8 with a byte-order mark, text that could run as a formula neutralised."""
    from tracker.exports import neutralise

    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object:
            safe[col] = [neutralise(v) if isinstance(v, str) else v for v in safe[col]]
    return ("\ufeff" + safe.to_csv(index=False)).encode("utf-8")


def download(frame: pd.DataFrame, label: str, name: str, key: str) -> None:
    st.download_button(label, data=csv_bytes(frame), file_name=name, mime="text/csv", key=key,
                       icon=":material/download:")


def peers_section(code: str, info, profile: pd.DataFrame) -> None:
    """Who the place is compared with (a local authority: ONS's list of the chosen kind; an ICB: its peer ICBs with
    the characteristics they were chosen on), then its headline outcomes against them (profile: the place's profile
    against those similar areas). For ICBs, counties and local authorities."""
    st.subheader("Compared with similar areas")
    kind = similarity_kind(info)
    if info["type"] == "icb":
        peers = c.fetch("peer_icbs", code)
        inputs = c.fetch("icb_characteristics")
        st.markdown("**Peer ICBs** (the tracker's own grouping, not an official one): the "
                    f"{len(peers)} ICBs nearest to this one on deprivation (IMD 2025 score, Core20 share), age "
                    "structure and population density, each standardised; see docs/methods.md, section 9.")
        shown = inputs[inputs["icb_code"].isin([code, *peers["peer_code"]])].set_index("icb_code").loc[[code, *peers["peer_code"]]]
        table = pd.DataFrame({
            "Rank": ["this ICB", *peers["rank"].astype(str)],
            "ICB": [n.removeprefix("NHS ").removesuffix(" Integrated Care Board") for n in shown["icb_name"]],
            "Distance (SDs)": ["–", *[f"{d:.2f}" for d in peers["distance"]]],
            "IMD score": [f"{x:.1f}" for x in shown["imd_score"]],
            "Core20": [f"{x:.0%}" for x in shown["core20_share"]],
            "Under 16": [f"{x:.1%}" for x in shown["share_under_16"]],
            "65 and over": [f"{x:.1%}" for x in shown["share_65_plus"]],
            "Per km²": [f"{x:,.0f}" for x in shown["residents"] / shown["area_km2"]],
        })
        st.dataframe(table, hide_index=True, width="stretch")
        download(peers, "Download peer ICBs (CSV)", f"peer-icbs-{code}.csv", "dl-peers")
    else:
        try:
            peers = c.fetch("similar_areas", code, kind)
        except KeyError:
            st.info("ONS publishes no similar areas for this area.")
            return
        st.markdown(f"**ONS similar areas ({kind} model)**: the 20 local authorities ONS's Explore "
                    "Local Statistics lists as most similar, in ONS's order.")
        with st.expander(f"The {len(peers)} similar areas, most similar first", expanded=False):
            st.dataframe(pd.DataFrame({"Rank": peers["rank"], "Code": peers["peer_code"], "Area": peers["peer_name"],
                                       "Figures in the tracker": ["yes" if e else "no (outside England)"
                                                                  for e in peers["in_england"]]}),
                         hide_index=True, width="stretch")
            download(peers, "Download the list (CSV)", f"similar-areas-{kind}-{code}.csv", "dl-similar")
        st.caption(f"Source: {peers['source'].iloc[0]} ({peers['source_date'].iloc[0]}), "
                   "https://www.ons.gov.uk/explore-local-statistics/. Open Government Licence v3.0.")
    _headline_peers(profile)


def _headline_peers(profile: pd.DataFrame) -> None:
    """The headline outcomes against the similar areas, beside England."""
    heads = profile[profile["headline_outcome"].astype(bool) & profile["peer_group"].notna()]
    if heads.empty:
        return
    digits = [c.decimals(i) for i in heads["indicator_id"]]  # each outcome's own decimal places, as on its card

    def shown(values):
        return [c.value_parts(v, u, d)[0] for v, u, d in zip(values, heads["unit"], digits)]

    table = pd.DataFrame({
        "Outcome": heads["title"].str.replace(" (slope index of inequality)", "", regex=False),
        "Period": heads["period"] + " · " + heads["sex"],
        "Value": shown(heads["value"]),
        "England": shown(heads["england_value"]),
        "vs England": [c.comparison_word(x) for x in heads["comparison_label"]],
        "Similar areas": shown(heads["peer_value"]),
        "vs similar areas": [c.comparison_word(x) for x in heads["peer_comparison_label"]],
        "Position": heads["peer_position"].fillna("–"),
    })
    st.dataframe(c.style_comparison(table, "vs similar areas", heads["peer_comparison"].reset_index(drop=True)),
                 hide_index=True, width="stretch")
    st.caption("Similar areas: the pooled rate of the peers (their counts over their denominators) where every "
               "peer's figure is a count over a denominator, else the mean of the peers' values; shown when at least "
               "half of the peers have a figure. Compared the same way as with England (the place's 95%/99.8% "
               "confidence interval against the value); an indicator without confidence intervals is not compared "
               "(see Position: 1 = best among the place and its peers). Values in each outcome's unit, as on its card. "
               "vs England / vs similar areas: the comparison with each.")


def inequality_section(code: str, info) -> None:
    """Core20, the LSOAs by national IMD quintile (map and table) and the within-place gap per determinant (for
    ICBs, counties and local authorities: England and regions have too many LSOAs for one map)."""
    st.subheader("Inequality inside this place")
    core = c.fetch("core20", [code]).iloc[0]
    a, b, d = st.columns(3)
    a.metric("Core20 share of residents", f"{core['core20_share']:.1%}",
             help="Share of Census 2021 usual residents living in LSOAs in the most deprived 20% of England's LSOAs "
                  "(IMD 2025 deciles 1-2): NHS England's Core20PLUS5 population.")
    b.metric("Core20 LSOAs", f"{int(core['n_core20_lsoas']):,} of {int(core['n_lsoas']):,}")
    d.metric("Usual residents (Census 2021)", f"{int(core['residents']):,}")
    breakdown = c.fetch("quintile_breakdown", code)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(_lsoa_map(c.version(), code, info["name"]), width="stretch", config=c.PLOT_CONFIG)
    with right:
        st.markdown("**LSOAs by national IMD 2025 quintile**")
        st.dataframe(pd.DataFrame({
            "Quintile": breakdown["quintile_label"], "LSOAs": breakdown["n_lsoas"],
            "Residents": breakdown["residents"].map("{:,.0f}".format),
            "Share of residents": breakdown["share_of_residents"].map("{:.1%}".format)}), hide_index=True, width="stretch")
        download(breakdown, "Download the breakdown (CSV)", f"imd-quintiles-{code}.csv", "dl-quintiles")
        download(c.fetch("lsoa_deprivation", code), "Download its LSOAs (CSV)", f"lsoas-{code}.csv", "dl-lsoas")
    st.markdown("**The gap between its most and least deprived fifth**, by the department that owns each determinant "
                "(columns 1-5: the place's LSOAs in each national IMD quintile; IoD 2025 domain scores, fuel poverty %)")
    gaps = c.fetch("inequality_gaps", code)
    cells = pd.DataFrame([_same_decimals(row) for row in gaps[["q1", "q2", "q3", "q4", "q5", "gap"]].to_numpy()],
                         columns=["1 most", "2", "3", "4", "5 least", "Gap (most − least deprived)"])
    st.dataframe(pd.DataFrame({
        "Department": [c.department_label(a, d) if a else "–" for a, d in zip(gaps["department_abbr"], gaps["is_dhsc"])],
        "Determinant (LSOA level)": [t.split(" (")[0] + (" (%)" if u.startswith("%") else "")
                                     for t, u in zip(gaps["title"], gaps["unit"])],
        **cells,
    }), hide_index=True, width="stretch")
    download(gaps, "Download the gaps (CSV)", f"inequality-gaps-{code}.csv", "dl-gaps")
    st.caption("Fifths are England-wide IMD 2025 quintiles of LSOAs (1 = the most deprived 20% of England's LSOAs), "
               "so a place may have none in a fifth. IoD domain scores: the mean of its LSOAs' scores weighted by "
               "Census 2021 usual residents; fuel poverty: fuel-poor households over households (DESNZ 2021). The "
               "IMD is built from these domains, so part of each gap is there by construction: read them side by "
               "side (which department's determinant differs most), not as causes. Sources: MHCLG IoD 2025, ONS "
               "Census 2021, DESNZ; OGL v3.0.")


def _same_decimals(values) -> list[str]:
    """One determinant's figures at one number of decimals, set by its largest (a share 0.422, a score 1.10, a
    percentage 17.3), so the fifths and the gap read side by side; a dash where there is none."""
    biggest = max((abs(v) for v in values if v == v), default=0.0)
    digits = 3 if biggest < 1 else 2 if biggest < 10 else 1
    return [c.number(v, digits) for v in values]


def _shapes(code: str) -> tuple[str, list[str], list[int], list[str]]:
    """The place's LSOAs as a data: URL (coordinates to 4 decimals, about 10 m) with codes, quintiles and names."""
    from tracker.analysis import lsoa_boundaries

    def ring(points, outer: bool):
        # plotly draws with d3-geo, which reads an anticlockwise outer ring (the GeoJSON standard's order, as in the
        # LSOA file) as "everything but this shape": give it clockwise outer rings and anticlockwise holes
        pts = [[round(x, 4), round(y, 4)] for x, y in points]
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
        return pts[::-1] if (area > 0) == outer else pts

    def polygon(rings):
        return [ring(r, i == 0) for i, r in enumerate(rings)]

    geo = lsoa_boundaries(c.engine(), code)
    for f in geo["features"]:
        g = f["geometry"]
        coords = [polygon(p) for p in g["coordinates"]] if g["type"] == "MultiPolygon" else polygon(g["coordinates"])
        f["geometry"] = {"type": g["type"], "coordinates": coords}
    feats = geo["features"]
    return (c.geojson_url(geo), [f["id"] for f in feats], [f["properties"]["imd_quintile"] for f in feats],
            [f"{f['properties']['LSOA21NM']} ({f['id']})" for f in feats])


@st.cache_resource(show_spinner=False, max_entries=16)
def _lsoa_map(version_key: str, code: str, name: str) -> go.Figure:
    """One figure per place and data version, shared by every session (st.plotly_chart only reads it): building
    a choropleth of 1,500-2,000 LSOAs took about 0.2 s of every render."""
    url, codes, quintiles, names = _shapes(code)
    scale = []
    for i, colour in enumerate(QUINTILE_COLOURS):
        scale += [[i / 5, colour], [(i + 1) / 5, colour]]
    fig = go.Figure(go.Choropleth(
        geojson=url, locations=codes, z=quintiles, zmin=0.5, zmax=5.5, colorscale=scale,
        text=[f"<b>{n}</b><br>IMD 2025 quintile {q}{' (Core20)' if q == 1 else ''}" for n, q in zip(names, quintiles)],
        hovertemplate="%{text}<extra></extra>", marker_line_color="white", marker_line_width=0.2,
        colorbar={"title": {"text": "IMD quintile"}, "tickvals": [1, 2, 3, 4, 5],
                  "ticktext": ["1 most deprived", "2", "3", "4", "5 least deprived"], "thickness": 12, "len": 0.7}))
    fig.update_geos(fitbounds="locations", visible=False, projection_type="mercator")
    fig.update_layout(title={"text": c.wrap(f"{name}: LSOAs by national IMD 2025 quintile"), "font": {"size": 15}},
                      height=520, margin={"l": 0, "r": 0, "t": 50, "b": 0})
    return fig
