"""Department: its indicators (with how each goes with the chosen health outcome), the places where they are worst,
and a map of how many of them each place is worse than England on."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tracker.app import common as c


def render() -> None:
    cat = c.catalog()
    depts = cat.drop_duplicates("department_slug").sort_values(["is_dhsc", "department_name"])
    options = {s: f"{n} ({a})" for s, n, a in zip(depts["department_slug"], depts["department_name"], depts["department_abbr"])}
    top, o1, o2 = st.columns([2, 2, 1])
    _no_indicators(options)
    slug = c.choose("department", options, "department-for-work-pensions", "Department", where=top)
    outcome, sex = c.choose_outcome(o1, o2)
    mine = cat[cat["department_slug"] == slug]
    first = mine.iloc[0]
    outcome_title = cat.at[outcome, "title"]

    st.title(first["department_name"])
    st.caption(("The health department. " if bool(first["is_dhsc"]) else "A department outside health. ")
               + f"The tracker holds {len(mine)} indicators it owns (as policy owner; the producer is named beside each).")

    summary = c.fetch("department_summary", outcome, sex=sex).set_index("department_slug")
    assoc = c.fetch("associations", outcome, sex=sex).set_index("indicator_id")
    if slug in summary.index:
        s = summary.loc[slug]
        m1, m2, m3 = st.columns(3)
        m1.metric("Median aligned rho", f"{s['median_aligned_rho']:.2f}",
                  help=f"With {outcome_title.lower()} ({sex.lower()}), across English local authorities; positive = "
                       "places worse on the department's indicators are worse on the outcome.")
        m2.metric("95% interval (bootstrap)", f"{s['lci']:.2f} to {s['uci']:.2f}")
        m3.metric("Indicators going with the outcome", f"{int(s['n_supporting'])} of {int(s['n_indicators'])}",
                  help="Significantly (Benjamini-Hochberg q < 0.05) and in the expected direction.")
        rank = list(summary.index).index(slug) + 1
        st.caption(f"Ranked {rank} of {len(summary)} departments for {outcome_title.lower()} ({sex.lower()}).")
    c.caveat()

    st.subheader("Its indicators")
    table = pd.DataFrame({
        "Indicator": mine["title"],
        # a dash, not a blank or "None", where there is no rho; the column's help says why
        f"Aligned rho with {outcome_title.lower()}": [c.number(assoc["aligned_rho"].get(i), 2) for i in mine["id"]],
        "Used in the ranking": ["yes" if bool(assoc["supports"].get(i, False)) else "" for i in mine["id"]],
        "Latest period": mine["latest_period"].fillna("–"), "Local authorities": mine["n_las_latest"],
        "Domain": mine["domain"], "Producer": mine["producer"], "Why this department": mine["rationale"],
        "Details": [f"indicator?indicator={i}" for i in mine["id"]],
        "Source": mine["source_url"],
    })
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        f"Aligned rho with {outcome_title.lower()}": st.column_config.TextColumn(
            help="– where the indicator is not used as a determinant: health outcomes, counts, ranks, no "
                 "better/worse direction, or too few local authorities with figures."),
        "Details": st.column_config.LinkColumn(display_text="chart ↗"),
        "Source": st.column_config.LinkColumn(display_text="publisher ↗")})
    st.caption("Aligned rho: Spearman's rank correlation across local authorities, signed so that positive means a "
               "worse value goes with a worse outcome; – where the indicator is not used as a determinant "
               "(health outcomes, counts, ranks, too few areas).")

    st.subheader("Where its indicators are worst")
    geography = c.choose("geography", c.GEOGRAPHIES, "ltla", "Areas", widget="radio")
    counts = c.fetch("department_places", slug, c.area_codes(geography))
    if counts.empty:
        st.info("None of this department's indicators is published for these areas.")
        return
    left, right = st.columns([1, 1.2])
    with left:
        worst = counts.head(15)
        st.dataframe(pd.DataFrame({"Area": worst["area_name"], "Code": worst["area_code"],
                                   "Worse on": worst["worse"],  # what the table is ordered by: the two columns after
                                   "Significantly worse": worst["significantly_worse"],
                                   "In worst fifth (no test)": worst["worst_fifth"], "Of": worst["compared"],
                                   "Open": [f"place?area={a}" for a in worst["area_code"]]}),
                     hide_index=True, width="stretch",
                     column_config={"Open": st.column_config.LinkColumn(display_text="place ↗")})
        st.caption("The 15 areas that fare worst on most of the department's indicators (of the indicators "
                   "with a direction), ordered by **Worse on**, the sum of the two counts after it, which are kept "
                   "apart: **Significantly worse** counts the indicators on which the area is worse "
                   "than England at 95% confidence (Compared with England); **In worst fifth (no test)** counts those "
                   "that cannot be tested (no confidence interval) on which it is in the worst fifth of areas "
                   "(Position among areas), a position, not a significance judgement. Latest period of each "
                   "indicator.")
    with right:
        frame = counts.assign(value=counts["worse"], period="latest periods", comparison_label=[
            f"significantly worse on {s}, in the worst fifth on {f} (no test), of {n} indicators"
            for s, f, n in zip(counts["significantly_worse"], counts["worst_fifth"], counts["compared"])])
        st.plotly_chart(c.choropleth(frame, geography, f"Number of {first['department_abbr']} indicators where the area "
                                     "is worse", "indicators", reverse=True),
                        width="stretch", config=c.PLOT_CONFIG)
        st.caption("Darker: worse on more of the department's indicators, counting those on which the area is "
                   "significantly worse than England (95%) and, on indicators with no confidence interval to test, "
                   "those on which it is in the worst fifth of areas (a position, not a test); hover for the two "
                   "apart. Grey: no figures.")


def _no_indicators(options: dict[str, str]) -> None:
    """A department the tracker knows (any name the command line accepts) that owns none of its indicators: say
    so, rather than calling the name unknown."""
    from tracker import departments

    asked = st.query_params.get("department")
    if not asked or c.resolve("department", asked, options) in options:
        return
    try:
        dept = departments.resolve(asked)
    except ValueError:
        return  # not a department: choose() says the link is unknown
    st.info(f"The tracker holds no indicators owned by {dept.name} ({dept.abbreviation}), so there is nothing to "
            "show for it. Another department is shown below instead.")
    st.query_params.pop("department", None)
    st.session_state.pop("_last_department", None)


if __name__ == "__main__":
    render()
