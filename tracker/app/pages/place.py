"""Place: England, a region, an ICB, a county or a local authority. Its headline outcomes, then one section at a time
in tabs: the departments its health depends on (with the evidence and a flow diagram), its similar areas, an ICB's
local authorities, inequality inside it, and every indicator grouped by department as spine-chart rows."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from tracker.analysis import is_worse
from tracker.app import common as c
from tracker.app import similar


# Numbers in the ranking and evidence tables at a fixed number of decimals (a grid drops trailing zeros: 2.7 beside 2.64,
# 3 beside 2.8), staying numbers so a column sorts as numbers
RANKING_FORMATS = {"Score": st.column_config.NumberColumn(format="%.3f"),
                   "Largest gap (SD)": st.column_config.NumberColumn(format="%.2f")}
EVIDENCE_FORMATS = {"Gap (SD)": st.column_config.NumberColumn(format="%.2f"),
                    "rho (aligned)": st.column_config.NumberColumn(format="%.2f"),
                    "Contribution": st.column_config.NumberColumn(format="%.3f")}


def render() -> None:
    top, mid, right = st.columns([3, 2, 1])
    with top:
        code = c.choose_area()
    outcome, sex = c.choose_outcome(mid, right)
    cat = c.catalog()
    info = c.fetch("area_info", code).iloc[0]

    st.title(info["name"])
    st.caption(_describe(info))
    _parents(info)

    st.subheader("Headline health outcomes")
    kind = similar.similarity_kind(info, ask=False)  # its control is in the Similar areas section
    # every figure on the page follows the sex chosen, where the indicator is published for it; the profile against
    # England with the similar areas' columns beside (one computation, not one without peers and one with)
    profile = c.fetch("place_peer_profile", code, kind, sex=sex).join(cat[["producer", "source_url", "decimals"]],
                                                                      on="indicator_id")
    _headlines(profile, cat)

    deps = c.fetch("place_departments", code, outcome, sex=sex)
    # One section at a time, chosen in the link (?section=Inequality): only the open tab is computed and sent, so
    # the headline answer is drawn without waiting for the local-authority table, the LSOA map or every indicator
    local = info["type"] not in ("england", "region")  # England and regions have no peers and too many LSOAs
    sections = {"Departments": lambda: _departments(code, info, deps, kind, cat, outcome, sex, local)}
    if local:
        sections["Similar areas"] = lambda: similar.peers_section(code, info, profile)
    if info["type"] == "icb":
        sections["Local authorities"] = lambda: _drilldown(code, outcome, sex, cat)
    if local:
        sections["Inequality"] = lambda: similar.inequality_section(code, info)
    sections["Every indicator"] = lambda: _indicators(profile, deps.ranking, info["name"], code)
    for tab, draw in zip(st.tabs(list(sections), key="section", bind="query-params"), sections.values()):
        if tab.open:
            with tab:
                draw()


def _departments(code: str, info, deps, kind: str, cat: pd.DataFrame, outcome: str, sex: str, local: bool) -> None:
    st.subheader("The departments this place's health depends on")
    against = "england"
    if local:  # England and regions have no similar areas to rank against
        against = c.choose("rank", {"england": "England", "peers": "Similar areas"}, "england",
                           "Rank departments by where this place is worse than", widget="radio", strict=False)
    if against == "peers":
        deps = c.fetch("place_departments_against_peers", code, outcome, sex=sex, kind=kind)
        st.caption("Ranked against similar areas: each gap is measured from the value of this place's similar areas "
                   "(in the same standard deviations of local-authority values) instead of from England; the same "
                   "indicators, associations and score. The evidence table's England columns still show England.")
    _dependence(deps, cat, info["name"], outcome, sex)


def _describe(info) -> str:
    kind = c.KIND_BY_PREFIX.get(info["code"][:3], info["type"])
    parts = [f"{kind[0].upper()}{kind[1:]} · {info['code']}"]
    if info.get("region_name"):
        parts.append(f"region: {info['region_name']}")
    if info.get("n_las"):
        parts.append(f"{info['n_las']} local authorities")
    pop = info.get("population_mid2020")
    if pop == pop and pop:
        parts.append(f"population {pop:,.0f} (mid-2020)")
    return " · ".join(parts)


def _parents(info) -> None:
    """Links up the hierarchy: a district's county, a local authority's ICB."""
    links = []
    if info.get("utla_code") and info["utla_code"] != info["code"]:
        links.append((info["utla_code"], f"County: {info['utla_name']}"))
    if info.get("icb_code"):
        split = info.get("icb_shares") or ""
        links.append((info["icb_code"], f"ICB: {info['icb_name']}" + (" (largest share; split between ICBs)" if ";" in split else "")))
    for col, (code, label) in zip(st.columns(max(len(links), 1)), links):
        with col:
            c.link("place", label, icon=":material/north:", area=code)


def _headlines(profile: pd.DataFrame, cat: pd.DataFrame) -> None:
    """One card per headline outcome: value with unit, period and sex, England, the comparison as a coloured word."""
    rows = profile[profile["headline_outcome"].astype(bool)].set_index("indicator_id")
    for col, oid in zip(st.columns(len(c.OUTCOMES)), c.OUTCOMES):
        box = col.container(border=True)
        if oid not in rows.index:
            box.markdown(f"**{cat.at[oid, 'title']}**  \nNot published for this area.")
            continue
        r = rows.loc[oid]
        number, unit = c.value_parts(r["value"], r["unit"], r["decimals"])
        versus = "" if r["area_code"] == c.ENGLAND else f" · England {c.with_unit(r['england_value'], r['unit'], r['decimals'])}"
        box.markdown(f"<div style='min-height:2.6em;font-size:0.9em'><b>{r['title']}</b></div>"
                     f"<div style='font-size:1.9em;line-height:1.2'>{number} <span style='font-size:0.45em'>{unit}</span></div>"
                     f"<div style='font-size:0.85em;color:#555'>{r['sex']}, {r['period']}{versus}</div>"
                     + (c.badge(r["comparison"], r["comparison_label"]) if versus else "")
                     + (f" <span style='font-size:0.8em;color:#555'>{r['position']}</span>"
                        if versus and isinstance(r["position"], str) else ""), unsafe_allow_html=True)
        from_text = f"  \nFigure for {r['value_from_name']}." if r["value_from"] != r["area_code"] else ""
        producer = str(r["producer"]).split(" (")[0].split(",")[0]  # the full name is the link's tooltip
        box.caption(f"Source: [{producer}]({r['source_url']} \"{r['producer']}\"). Department: {r['department_abbr']}.{from_text}"
                    + (f" Figure: {r['method']}." if isinstance(r["method"], str) and r["method"] != "published" else ""))


def _dependence(deps, cat: pd.DataFrame, name: str, outcome: str, sex: str) -> None:
    outcome_title = cat.at[outcome, "title"]
    ranking, evidence = deps.ranking, deps.evidence
    ranked = ranking[ranking["rank"].notna()]
    held = ranking[ranking["held_back"].astype(bool)]
    if ranked.empty:
        st.info(f"None of the indicators that go with {outcome_title.lower()} across England puts {name} "
                "materially behind England, so no department is ranked for this place."
                + (f" Held back (resting on one indicator less than a quarter of a standard deviation from England): "
                   f"{', '.join(held['department_abbr'])}." if len(held) else ""))
        c.caveat(deps.caveat)
        return
    share = deps.share_outside_dhsc
    a, b = st.columns([1, 2])
    a.metric("Share outside DHSC", "–" if share != share else f"{share:.0%}",
             help="The part of this place's combined department score held by departments other than DHSC "
                  "(not given when the combined score is negligible: the place is close to England throughout).")
    stability = ranked["top3_stability"].iloc[0]
    changed = [t for t in str(ranked["top3_changed_by"].iloc[0]).split("; ") if t]
    a.metric("Top three unchanged with any one indicator left out", f"{stability:.0%}",
             help="Each supporting indicator (near-identical ones together) is left out in turn and the ranking "
                  "made again: the share of those runs that keep the same top three in the same order.")
    if changed:
        titles = [cat.at[i, "title"] if i in cat.index else i for i in changed]
        a.caption("Leaving out any of these changes the top three: " + "; ".join(titles[:5])
                  + (f" and {len(titles) - 5} more" if len(titles) > 5 else "") + ".")
    a.caption(f"Outcome: {outcome_title} ({sex.lower()}). A department scores when its indicators go with the "
              f"outcome across England and {name} is behind England on them: the gap (in standard deviations of "
              "local-authority values, zero where the place is better) × rho, averaged over its indicators and "
              "shrunk towards no gap when there are few. Bars: 95% interval of the rank (resampling areas and "
              "indicators).")
    with b:
        top = [f"{hi:.0f}" if hi <= len(ranked) else "not ranked" for hi in ranked["rank_uci"]]
        shown = ranked.assign(label=[f"rank {r:.0f} ({lo:.0f}–{t})" + (" · rests on one indicator" if one else "")
                                     for r, lo, t, one in zip(ranked["rank"], ranked["rank_lci"], top,
                                                               ranked["rests_on_one_indicator"])])
        st.plotly_chart(c.department_bars(shown, "score", f"Departments ranked for {name}<br>{outcome_title} ({sex.lower()})",
                                          "score (gap × rho, weighed by evidence)", note="label"),
                        width="stretch", config=c.PLOT_CONFIG)
    table = pd.concat([ranked, held])
    st.dataframe(pd.DataFrame({
        "Rank": [("–" if r != r else f"{r:.0f}") for r in table["rank"]],
        "95% interval": [("held back" if h else f"{lo:.0f}–{hi:.0f}" if hi <= len(ranked) else f"{lo:.0f}–not ranked")
                         for lo, hi, h in zip(table["rank_lci"], table["rank_uci"], table["held_back"])],
        "Department": [c.department_label(a_, d) for a_, d in zip(table["department_abbr"], table["is_dhsc"])],
        "Score": table["score"].round(3),
        "Behind England on": [f"{w} of {n}" for w, n in zip(table["n_worse"], table["n_indicators"])],
        "Largest gap (SD)": table["max_gap"].round(2),
        "Rests on one indicator": ["Yes" if x else "No" for x in table["rests_on_one_indicator"]],
    }), hide_index=True, width="stretch", column_config=RANKING_FORMATS)
    one = ranked[ranked["rests_on_one_indicator"].astype(bool)]
    st.markdown("**Rests on one indicator:** " + (", ".join(one["department_abbr"]) + " (read these ranks with care)."
                                                 if len(one) else "none of the ranked departments."))
    st.caption("Behind England on: the indicators (near-identical ones counted once) on which this place is worse "
               "than England, of those with a figure here. A department resting on one indicator is flagged; one "
               "whose single indicator is less than a quarter of a standard deviation from England is held back "
               "(not ranked) until there is more evidence.")
    c.caveat(deps.caveat)
    st.markdown("**Flow: departments → determinants → outcome**")
    st.plotly_chart(_sankey(evidence, ranking, cat, outcome_title), width="stretch", config=c.PLOT_CONFIG)
    st.caption("Width of each band = the determinant's contribution to its department's score for this place "
               "(its rho with the outcome across England × how far the place is behind England). Only determinants "
               "on which the place is behind appear; the 20 largest are shown.")
    st.markdown("**The evidence**")
    ev = evidence.join(cat[["unit", "department_abbr", "is_dhsc", "producer", "decimals"]], on="indicator_id")
    parts = [c.value_parts(v, u, d) for v, u, d in zip(ev["value"], ev["unit"], ev["decimals"])]
    table = pd.DataFrame({  # what an analyst reads first (indicator, value, England, comparison) first
        "Indicator": ev["title"],
        "Value": [p[0] + ("" if f == pc else " (county figure)")
                  for p, f, pc in zip(parts, ev["value_from"], ev["place_code"])],
        "England": [c.value_parts(v, u, d)[0] + (" (mean of LAs)" if f.startswith("mean") else "")
                    for v, u, d, f in zip(ev["england_value"], ev["unit"], ev["decimals"], ev["england_from"].fillna(""))],
        "Compared with England": [c.comparison_word(x) for x in ev["comparison_label"]],
        **({"Position among areas": [c.position_word(x) for x in ev["position"]]} if "position" in ev else {}),
        "Unit": [p[1] for p in parts],
        "Period": ev["period"],
        "Gap (SD)": ev["gap"].round(2),
        "Department": [c.department_label(a, d) for a, d in zip(ev["department_abbr"], ev["is_dhsc"])],
        "rho (aligned)": ev["aligned_rho"].round(2),
        "Contribution": ev["contribution"].round(3),
        "Producer": ev["producer"],
    })
    st.dataframe(c.style_comparison(table, "Compared with England", ev["comparison_label"].str.split(" (", regex=False).str[0]),
                 hide_index=True, width="stretch", column_config=EVIDENCE_FORMATS)
    st.caption("Every indicator that goes significantly with the outcome across local authorities (Benjamini-Hochberg "
               "q < 0.05, in the expected direction), with this place's value. Gap: how far the place is behind "
               "England, in standard deviations of local-authority values (0 where it is better; for England, how "
               "far local authorities fall short of it on average). rho: Spearman's rank correlation across local "
               "authorities, signed so that positive means a worse determinant goes with a worse outcome. Where England's "
               "figure is not published, the mean of local authorities weighted by population stands in for it.")


def _sankey(evidence: pd.DataFrame, ranking: pd.DataFrame, cat: pd.DataFrame, outcome_title: str) -> go.Figure:
    ev = evidence[evidence["contribution"] > 0].nlargest(20, "contribution")
    depts = ranking[ranking["department_slug"].isin(ev["department_slug"])]
    labels = [c.department_label(a, d) for a, d in zip(depts["department_abbr"], depts["is_dhsc"])]
    dept_index = {s: i for i, s in enumerate(depts["department_slug"])}
    ind_ids = list(dict.fromkeys(ev["indicator_id"]))
    ind_index = {i: len(labels) + k for k, i in enumerate(ind_ids)}
    labels += [t if len(t) <= 64 else t[:62] + "…" for t in cat.loc[ind_ids, "title"]]
    target = len(labels)
    labels.append(c.wrap(outcome_title, 18))  # the last column is labelled on its left: keep it narrow
    dhsc = dict(zip(ranking["department_slug"], ranking["is_dhsc"].astype(bool)))
    colour = {True: (c.DHSC_COLOUR, "rgba(204,121,167,0.35)"), False: (c.OTHER_COLOUR, "rgba(0,114,178,0.3)")}
    node_colours = [colour[dhsc[s]][0] for s in depts["department_slug"]] + \
                   [colour[dhsc[s]][0] for s in ev.drop_duplicates("indicator_id")["department_slug"]] + ["#333333"]
    src = [dept_index[s] for s in ev["department_slug"]] + [ind_index[i] for i in ev["indicator_id"]]
    dst = [ind_index[i] for i in ev["indicator_id"]] + [target] * len(ev)
    link_colours = [colour[dhsc[s]][1] for s in ev["department_slug"]] * 2
    fig = go.Figure(go.Sankey(node={"label": labels, "color": node_colours, "pad": 12, "thickness": 14},
                              link={"source": src, "target": dst, "value": list(ev["contribution"]) * 2,
                                    "color": link_colours}))
    fig.update_layout(title=c.wrap(f"Which departments' determinants go with {outcome_title.lower()} here", 90),
                      height=max(380, 28 * len(ind_ids) + 80), margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _drilldown(code: str, outcome: str, sex: str, cat: pd.DataFrame) -> None:
    st.subheader("Local authorities in this ICB")
    las = c.fetch("icb_drilldown", code)
    values = c.fetch("latest_observations", las["la_code"].tolist(), [outcome], sex=sex).set_index("area_code")
    unit, digits = cat.at[outcome, "unit"], cat.at[outcome, "decimals"]
    table = pd.DataFrame({
        "Local authority": las["la_name"], "Code": las["la_code"],
        "Share in this ICB": [f"{s:.0%}" + ("" if b == "whole" else f" (by {b})") for s, b in zip(las["share"], las["share_basis"])],
        f"{cat.at[outcome, 'title']} ({sex.lower()})": [c.with_unit(values["value"].get(x), unit, digits) for x in las["la_code"]],
        "Period": [values["period"].get(x, "–") for x in las["la_code"]],
        "Compared with England": [c.comparison_word(values["comparison_label"].get(x)) for x in las["la_code"]],
        "Position among areas": [c.position_word(values["position"].get(x)) for x in las["la_code"]],
    })
    comps = pd.Series([values["comparison"].get(x) for x in las["la_code"]], index=table.index)
    st.dataframe(c.style_comparison(table, "Compared with England", comps), hide_index=True, width="stretch")
    st.caption(f"Open a local authority (with its {cat.at[outcome, 'title'].lower()}, {sex.lower()}):")
    cols = st.columns(4)
    for i, (la, name) in enumerate(zip(las["la_code"], las["la_name"])):
        with cols[i % 4]:
            c.link("place", f"{name} · {c.with_unit(values['value'].get(la), unit, digits)}", icon=":material/location_on:", area=la)


def _indicators(profile: pd.DataFrame, ranking: pd.DataFrame, name: str, code: str) -> None:
    st.subheader("Every indicator, by department")
    legend = " ".join(c.badge(w, w) for w in ("Better", "Similar", "Worse", "Higher", "Lower", "Not compared"))
    st.markdown(f"Compared with England: {legend}. {c.LEGEND} Red-red: significantly worse than England and getting "
                "worse.", unsafe_allow_html=True)
    profile = profile.assign(worse=is_worse(profile).astype(bool).to_numpy())
    order = list(ranking["department_slug"]) + sorted(set(profile["department_slug"]) - set(ranking["department_slug"]))
    by_department = dict(tuple(profile.groupby("department_slug", sort=False)))  # one pass, not one filter each
    for slug in order:
        rows = by_department.get(slug)
        if rows is None:
            continue
        first = rows.iloc[0]
        worse = int(rows["worse"].sum())
        better = int((rows["comparison"] == "Better").sum())
        red = int(rows["red_red"].fillna(False).astype(bool).sum())
        title = (f"{c.department_label(first['department_abbr'], first['is_dhsc'])} · {first['department_name']} — "
                 f"{len(rows)} indicator{'s' if len(rows) > 1 else ''}: {worse} worse, {better} better"
                 + (f", {red} red-red" if red else ""))
        # lazy: a department's chart and table are built only while its section is open (the top-ranked one is)
        box = st.expander(title, expanded=slug == order[0], key=f"dept-{slug}", on_change="rerun")
        if box.open:
            with box:
                st.plotly_chart(c.spine(rows, name, f"{name} against England: {first['department_name']}'s indicators"),
                                width="stretch", config=c.PLOT_CONFIG, key=f"spine-{slug}")
                st.caption("Grey bar: the range across areas of the same type, worst (or lowest) on the left, best "
                           "(or highest) on the right. Black tick: England. Dot: this place, coloured by its comparison.")
                _indicator_table(rows, code)


def _indicator_table(rows: pd.DataFrame, code: str) -> None:
    parts = [c.value_parts(v, u, d) for v, u, d in zip(rows["value"], rows["unit"], rows["decimals"])]
    table = pd.DataFrame({  # what an analyst reads first (indicator, value, England, comparison) first
        "Indicator": rows["title"],
        "Value": [p[0] + ("" if f == a else f" ({n})") for p, f, a, n in
                  zip(parts, rows["value_from"], rows["area_code"], rows["value_from_name"])],
        "England": [c.value_parts(v, u, d)[0] for v, u, d in zip(rows["england_value"], rows["unit"], rows["decimals"])],
        "Compared with England": [c.comparison_word(x) for x in rows["comparison_label"]],
        "Position among areas": [c.position_word(x) for x in rows["position"]],
        "Unit": [p[1] for p in parts],
        "Similar areas": [c.value_parts(v, u, d)[0] for v, u, d in zip(rows["peer_value"], rows["unit"], rows["decimals"])],
        "Compared with similar areas": [c.comparison_word(x) for x in rows["peer_comparison_label"]],
        "Period": rows["period"] + " · " + rows["sex"],
        "Range across areas": [f"{c.number(lo, d)} to {c.number(hi, d)}"
                               for lo, hi, d in zip(rows["min_of_type"], rows["max_of_type"], rows["decimals"])],
        "Trend": rows["trend"].fillna("–"),
        "Red-red": ["worse and getting worse" if bool(x) else "" for x in rows["red_red"].fillna(False)],
        "Details": [f"indicator?indicator={i}&area={code}" for i in rows["indicator_id"]],
        "Source": rows["source_url"],
        "Producer": rows["producer"],
    }).reset_index(drop=True)
    st.dataframe(table, hide_index=True, width="stretch", column_config={  # plain: a Styler per department is slow
                     "Details": st.column_config.LinkColumn("Details", display_text="chart ↗"),
                     "Source": st.column_config.LinkColumn("Source", display_text="publisher ↗")})


if __name__ == "__main__":
    render()
