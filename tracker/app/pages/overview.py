"""Overview: for one headline outcome, the departments whose determinants go with it most strongly across English
local authorities, a map of the outcome, and the headline figures."""

from __future__ import annotations

import streamlit as st

from tracker.app import common as c


def render() -> None:
    st.title("Health and the departments outside DHSC")
    st.caption("How each place's health outcomes go with the wider determinants of health — housing, work, income, "
               "education, environment, crime, transport — and which Whitehall department owns each determinant.")
    cat = c.catalog()
    left, mid, right = st.columns([2, 1.2, 2])
    outcome, sex = c.choose_outcome(left, mid)
    geography = c.choose("geography", c.GEOGRAPHIES, "ltla", "Map areas", where=right, widget="radio")
    meta = cat.loc[outcome]

    england = c.fetch("latest_observations", [c.ENGLAND], [outcome], sex=sex)
    values = c.fetch("latest_observations", c.area_codes(geography), [outcome], sex=sex)
    summary = c.fetch("department_summary", outcome, sex=sex)
    national = c.fetch("place_departments", c.ENGLAND, outcome, sex=sex)

    m1, m2, m3, m4 = st.columns(4)
    if len(england):
        e = england.iloc[0]
        m1.metric(f"England ({sex.lower()}, {e['period']})", c.with_unit(e["value"], meta["unit"], meta["decimals"]),
                  help=f"{meta['title']}, {sex.lower()}, {e['period']}. Source: {meta['producer']}.")
    else:
        m1.metric("England", "–")
    n_with = int(values["value"].notna().sum())
    m2.metric("Areas with a figure", f"{n_with} of {len(c.area_codes(geography))}",
              help=f"{c.GEOGRAPHIES[geography]} with a figure for {meta['title'].lower()} ({sex.lower()}).")
    share = national.share_outside_dhsc
    m3.metric("Outside DHSC (England)", "–" if share != share else f"{share:.0%}",
              help="The share of the association held by departments other than DHSC: for England, the part of the "
                   "departments' combined score (strength of association × share of local authorities worse than "
                   "England) that is not DHSC's.")
    m4.metric("Departments with evidence", f"{int((summary['n_supporting'] > 0).sum())} of {len(summary)}")

    chart, geo = st.columns([1, 1.15])
    with chart:
        if summary.empty:
            st.info("No department could be ranked for this outcome (too few local authorities with figures).")
        else:
            # a department with one indicator has that indicator's rho for its bar, not a median: said where it shows
            one = summary["n_indicators"] == 1
            summary = summary.assign(label=[f"{s}/{n}" + (" · one indicator" if o else "")
                                            for s, n, o in zip(summary["n_supporting"], summary["n_indicators"], one)])
            st.plotly_chart(c.department_bars(summary, "median_aligned_rho",
                                              f"Departments ranked by how closely {meta['title'].lower()} goes with their indicators",
                                              "median aligned Spearman's rho", lci="lci", uci="uci", note="label"),
                            width="stretch", config=c.PLOT_CONFIG)
            st.caption(f"Each bar is the median, over the department's indicators, of how closely places' "
                       f"{meta['title'].lower()} ({sex.lower()}) follows the indicator across local authorities: 1 = "
                       "places that are worse on the indicator are always worse on the outcome, 0 = no relation. The "
                       "whiskers are a 95% interval (bootstrap over upper-tier authorities); 12/14 beside a department "
                       "means 12 of its 14 indicators go significantly with the outcome. DHSC (health) is shown in pink, every other "
                       "department in blue.")
            if one.any():
                st.markdown("**Rests on one indicator:** " + ", ".join(summary.loc[one, "department_abbr"])
                            + ": the tracker holds one indicator of theirs, so the bar is that indicator's rho, not a "
                            "median over several; read their place in this order with care.")
    with geo:
        st.plotly_chart(c.choropleth(values, geography, f"{meta['title']} ({sex.lower()}), latest period",
                                     str(meta["unit"]), reverse=meta["polarity"] == "lower_is_better"),
                        width="stretch", config=c.PLOT_CONFIG)
        missing = len(c.area_codes(geography)) - n_with
        st.caption(f"{meta['title']} for each area, latest period ({', '.join(sorted(values['period'].dropna().unique())) or 'none'}); "
                   f"darker means worse. Grey: no figure ({missing} areas" +
                   ("; the outcome is published for districts and unitaries, so counties are blank" if geography == "utla" and missing else "")
                   + "). Hover for the value and the comparison with England. "
                   f"Source: {meta['producer']}.")
    c.caveat()

    if not summary.empty:
        st.subheader("The departments and their strongest indicator")
        table = summary.assign(
            department=[c.department_label(n, d) for n, d in zip(summary["department_name"], summary["is_dhsc"])],
            strongest=summary["strongest_indicator"].map(cat["title"]),
        )[["department", "n_indicators", "n_supporting", "median_aligned_rho", "lci", "uci", "strongest", "strongest_aligned_rho"]]
        rhos = ["median_aligned_rho", "lci", "uci", "strongest_aligned_rho"]
        table[rhos] = table[rhos].map(lambda v: c.number(v, 2))  # a dash, never "None", where there is none
        table["strongest"] = table["strongest"].fillna("–")
        none = " – where none of the department's indicators has a rho with the outcome."
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            "department": "Department", "n_indicators": "Indicators", "n_supporting": "Going significantly with the outcome",
            "median_aligned_rho": st.column_config.TextColumn("Median aligned rho", help="Over its indicators." + none),
            "lci": st.column_config.TextColumn("95% interval from", help="Bootstrap over upper-tier authorities." + none),
            "uci": st.column_config.TextColumn("to", help="Bootstrap over upper-tier authorities." + none),
            "strongest": st.column_config.TextColumn("Strongest indicator", help=none.strip()),
            "strongest_aligned_rho": st.column_config.TextColumn("Its aligned rho", help=none.strip())})
        cols = st.columns(4)
        for i, row in enumerate(summary.itertuples()):
            with cols[i % 4]:
                c.link("department", f"{row.department_abbr}: its indicators and places", department=row.department_slug)


if __name__ == "__main__":
    render()
