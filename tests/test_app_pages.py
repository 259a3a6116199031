"""Every dashboard page under Streamlit's AppTest, as a user opens it from a shared link (query parameters): no
exception, the expected controls, and figures that match the published source files in the bundled snapshot.

The analysis behind the pages takes tens of seconds to build for a database, so the tests share one private copy of
the snapshot database (module scope, like conftest's snapshot_engine but built once); the app only reads it."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tracker.config import SNAPSHOT_DIR

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "streamlit_app.py"
ENGLAND, NENC, HARTLEPOOL = "E92000001", "E54000050", "E06000001"
NENC_NAME = "NHS North East and North Cumbria Integrated Care Board"
LIVERPOOL = "E08000012"
FIFTHS = {"Best fifth", "Second-best fifth", "Middle fifth", "Second-worst fifth", "Worst fifth"}
SIGNIFICANCE = {"Better", "Similar", "Worse", "Higher", "Lower", "Not compared"}


def life_expectancy(code: str, sex: str = "Male", period: str = "2023 - 25") -> float:
    """As published: Fingertips 90366 (the bundled extract)."""
    frame = pd.read_csv(SNAPSHOT_DIR / "outcomes" / "fingertips_90366_life_expectancy_at_birth_lad_2015-17_to_2023-25.csv")
    row = frame[(frame["area_code"] == code) & (frame["inequality"] == sex) & (frame["period"] == period)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


def claimant_count(code: str, year: str = "2025") -> float:
    """As published: ONS Explore Local Statistics, Claimant Count % of residents aged 16-64."""
    with gzip.open(SNAPSHOT_DIR / "employment" / "ons_els_claimant_count_pct_16_64_2001_to_2025.csv.gz", "rt",
                   encoding="utf-8-sig") as fh:
        frame = pd.read_csv(fh, dtype=str)
    row = frame[(frame["areacd"] == code) & (frame["period"] == f"{year}-01-01/P1Y")]
    assert len(row) == 1
    return float(row["observation"].iloc[0])


@pytest.fixture(scope="module")
def database_url(snapshot_db_file, tmp_path_factory):
    target = tmp_path_factory.mktemp("app") / "app.sqlite"
    shutil.copy(snapshot_db_file, target)
    return f"sqlite:///{target}"


@pytest.fixture
def open_page(database_url, monkeypatch):
    """open_page("place", area=...) -> the AppTest after the page has run from a link with those query parameters."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRACKER_DATABASE_URL", database_url)

    def open_(page: str, state: dict | None = None, **params) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.query_params.update(params)
        at.run()
        if page != "overview":
            at.switch_page(f"tracker/app/pages/{page}.py")
            for key, value in (state or {}).items():
                at.session_state[key] = value
            at.run()
        assert not at.exception, [e.message for e in at.exception]
        return at
    return open_


def texts(at) -> str:
    """Everything written as markdown, captions, metrics and page links, in one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [f"{m.label}: {m.value}" for m in at.metric] + [p.value for p in at.get("page_link")]
    return "\n".join(parts)


def test_overview_ranks_departments_and_maps_the_outcome(open_page):
    at = open_page("overview", outcome="life-expectancy", sex="Male")
    assert at.title[0].value == "Health and the departments outside DHSC"
    assert at.selectbox(key="_widget_outcome").value == "life-expectancy"
    assert at.radio(key="_widget_sex").options == ["Male", "Female"]  # life expectancy is published by sex only
    assert at.radio(key="_widget_geography").value == "ltla"
    england = next(m for m in at.metric if m.label.startswith("England"))
    assert england.label == "England (male, 2023 - 25)"
    assert england.value == f"{life_expectancy(ENGLAND):.1f} years"
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the department ranking and the map
    assert "DHSC (health)" in charts[0].proto.spec  # DHSC labelled apart from the other departments
    # the map draws each district once: coloured where it has a figure, grey only where it has none
    from tracker.app.common import map_shapes
    traces = json.loads(charts[1].proto.spec)["data"]
    located = [set(t["locations"]) for t in traces]
    coloured = next(set(t["locations"]) for t in traces if t.get("colorscale") != [[0, "#eeeeee"], [1, "#eeeeee"]])
    assert sum(map(len, located)) == len(set().union(*located)) == len(map_shapes("ltla")[1])
    assert len(coloured) > 290
    for grey in (t for t in traces if set(t["locations"]) != coloured):  # carrying its own areas' shapes alone
        shapes = json.loads(base64.b64decode(grey["geojson"].split(",", 1)[1]))
        assert sorted(f["id"] for f in shapes["features"]) == sorted(grey["locations"])
    assert "Association, not causation" in texts(at)
    departments = at.dataframe[0].value
    assert "Department of Health and Social Care (health)" in set(departments["department"])
    # a department ranked on a single indicator is said to rest on it, in the chart and under it
    single = departments.loc[departments["n_indicators"] == 1, "department"]
    assert len(single) and charts[0].proto.spec.count("one indicator") == len(single)
    line = next(m.value for m in at.markdown if m.value.startswith("**Rests on one indicator:**"))
    from tracker import analysis
    from tracker.store import get_engine

    summary = analysis.department_summary(get_engine(), "life-expectancy", sex="Male")
    assert line.split("** ")[1].split(":")[0].split(", ") == summary.loc[summary["n_indicators"] == 1, "department_abbr"].tolist()
    assert at.query_params["outcome"] == "life-expectancy" and at.query_params["sex"] == "Male"


def test_choosing_another_outcome_updates_the_link(open_page):
    at = open_page("overview")
    at.selectbox(key="_widget_outcome").set_value("preventable-mortality-u75").run()
    assert not at.exception
    assert at.query_params["outcome"] == "preventable-mortality-u75"
    assert at.radio(key="_widget_sex").options == ["Persons", "Male", "Female"]
    assert at.query_params["sex"] == "Male"  # the sex chosen is kept where the new outcome is published for it
    at.radio(key="_widget_sex").set_value("Persons").run()
    assert at.query_params["sex"] == "Persons"
    at.selectbox(key="_widget_outcome").set_value("life-expectancy").run()
    assert at.query_params["sex"] == "Male"  # no persons figure: back to the outcome's headline sex
    assert not at.exception and not at.warning


def test_place_shows_published_values_grouped_by_department(open_page):
    at = open_page("place", state={"dept-department-for-work-pensions": True}, area=HARTLEPOOL,
                   outcome="life-expectancy", sex="Male")
    assert at.title[0].value == "Hartlepool"
    shown = texts(at)
    assert f"{life_expectancy(HARTLEPOOL):.1f} <span" in shown  # the headline card: value, then its unit
    assert f"Male, 2023 - 25 · England {life_expectancy(ENGLAND):.1f} years" in shown
    assert "Association, not causation" in shown
    evidence = next(d.value for d in at.dataframe if "rho (aligned)" in d.value)
    assert {"Department", "Indicator", "Value", "England", "Compared with England", "Position among areas",
            "rho (aligned)"} <= set(evidence)
    assert set(evidence["Compared with England"].str.replace(r" \(.*\)$", "", regex=True)) <= SIGNIFICANCE
    charts = at.get("plotly_chart")
    assert len(charts) == 2 and "sankey" in charts[1].proto.spec  # the ranking and the flow diagram

    # every indicator, grouped by department, in its own section (the DWP one opened)
    at.session_state["section"] = "Every indicator"
    at.run()
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert any(label.startswith("DWP · Department for Work and Pensions") for label in labels)
    assert any(label.startswith("DHSC (health) · Department of Health and Social Care") for label in labels)
    tables = [d.value for d in at.dataframe]
    dwp_table = next(t for t in tables if "Range across areas" in t  # the open DWP section's table
                     and "Claimant Count, % of residents aged 16 to 64" in set(t["Indicator"]))
    row = dwp_table[dwp_table["Indicator"] == "Claimant Count, % of residents aged 16 to 64"].iloc[0]
    assert row["Value"] == f"{claimant_count(HARTLEPOOL):.1f}%"
    assert row["England"] == f"{claimant_count(ENGLAND):.1f}%"
    assert row["Period"] == "2025 · Persons"
    # no CI to test: significance says so, and the position among areas is its own column
    assert row["Compared with England"] == "Not compared" and row["Position among areas"] in FIFTHS
    legend = texts(at)
    assert "**Compared with England** is a test of significance" in legend
    assert "**Position among areas** is where the value falls among areas of the same type" in legend
    # the open departments' spine charts (the top-ranked one and DWP); the ranking's charts are in their own section
    assert "spine-department-for-work-pensions" in [ch.key for ch in at.get("plotly_chart")]
    assert all(ch.key.startswith("spine-") for ch in at.get("plotly_chart"))


def test_liverpool_shows_fingertips_published_judgement_and_its_position_apart(open_page):
    """The bundled Fingertips life-expectancy file has no CIs but says Liverpool is "Worse" than England: the card
    shows that judgement, the fifth beside it under its own name."""
    at = open_page("place", area=LIVERPOOL, outcome="life-expectancy", sex="Male", section="Every indicator")
    shown = texts(at)
    card = next(m.value for m in at.markdown if "Life expectancy at birth</b>" in m.value)
    assert ">Worse (95%)</span>" in card and ">Worst fifth</span>" in card
    assert "fifth</span>" not in card.split(">Worse (95%)</span>")[0]
    assert "Position among areas" in shown


def test_place_draws_one_section_at_a_time_opened_by_its_tab_or_its_link(open_page):
    def drawn(at) -> set[str]:
        frames = [d.value for d in at.dataframe]
        return ({"ranking"} if any("95% interval" in f for f in frames) else set()) \
            | ({"local authorities"} if any("Share in this ICB" in f for f in frames) else set()) \
            | ({"LSOA map"} if any("LSOAs by national IMD" in ch.proto.spec for ch in at.get("plotly_chart")) else set()) \
            | ({"every indicator"} if any(e.label.startswith("DWP · ") for e in at.expander) else set())

    at = open_page("place", area=NENC, outcome="life-expectancy", sex="Male")
    assert [t.label for t in at.tabs] == ["Departments", "Similar areas", "Local authorities", "Inequality",
                                          "Every indicator"]
    assert drawn(at) == {"ranking"}  # the headline answer; the other sections are not computed until opened
    at.session_state["section"] = "Inequality"
    at.run()
    assert not at.exception and drawn(at) == {"LSOA map"}
    assert at.title[0].value == NENC_NAME and "font-size:1.9em" in " ".join(m.value for m in at.markdown)  # cards stay

    assert drawn(open_page("place", area=NENC, section="Local authorities")) == {"local authorities"}
    assert drawn(open_page("place", area=NENC, section="Every indicator")) == {"every indicator"}
    assert drawn(open_page("place", area=NENC, section="No such section")) == {"ranking"}  # ignored
    # England and a region have no similar areas, local authorities' table or LSOA map: no tabs for them
    assert [t.label for t in open_page("place", area=ENGLAND).tabs] == ["Departments", "Every indicator"]
    assert [t.label for t in open_page("place", area=HARTLEPOOL).tabs] == ["Departments", "Similar areas",
                                                                          "Inequality", "Every indicator"]


def test_icb_drills_down_to_its_local_authorities(open_page):
    at = open_page("place", area=NENC, outcome="life-expectancy", sex="Male", section="Local authorities")
    assert at.title[0].value == NENC_NAME
    links = [p.value for p in at.get("page_link")]
    assert f"Hartlepool · {life_expectancy(HARTLEPOOL):.1f} years" in links
    assert sum(link.split(" · ")[0] in {"Hartlepool", "Middlesbrough", "Sunderland", "Gateshead"} for link in links) == 4
    hartlepool = next(p for p in at.get("page_link") if p.value.startswith("Hartlepool"))
    assert hartlepool.proto.query_string == f"area={HARTLEPOOL}"
    drill = next(d.value for d in at.dataframe if "Local authority" in d.value)
    assert len(drill) == 14
    assert drill.loc[drill["Code"] == HARTLEPOOL, "Share in this ICB"].iloc[0] == "100%"
    assert set(drill["Compared with England"].str.replace(r" \(.*\)$", "", regex=True)) <= SIGNIFICANCE
    assert set(drill["Position among areas"]) <= FIFTHS


def test_department_lists_its_indicators_and_where_they_are_worst(open_page):
    at = open_page("department", department="department-for-work-pensions", outcome="life-expectancy", sex="Male")
    assert at.title[0].value == "Department for Work and Pensions"
    indicators = at.dataframe[0].value
    assert "Claimant Count, % of residents aged 16 to 64" in set(indicators["Indicator"])
    assert set(indicators["Producer"]) >= {"Office for National Statistics (via ONS Explore Local Statistics)"}
    worst = at.dataframe[1].value
    significant, fifth = worst["Significantly worse"], worst["In worst fifth (no test)"]
    assert len(worst) == 15 and (significant + fifth <= worst["Of"]).all()
    assert (significant + fifth).is_monotonic_decreasing
    assert (worst["Worse on"] == significant + fifth).all()  # what the order is by, shown beside its two parts
    hover = next(t["text"][0] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"] if t.get("text"))
    assert "significantly worse on " in hover and " in the worst fifth on " in hover  # the map keeps them apart too
    assert "a position, not a significance judgement" in texts(at)
    assert len(at.get("plotly_chart")) == 1  # the map
    assert "Association, not causation" in texts(at)


def test_indicator_shows_metadata_series_map_and_scatter(open_page):
    at = open_page("indicator", indicator="claimant-count-rate-16-64", area=HARTLEPOOL, outcome="life-expectancy")
    assert at.title[0].value == "Claimant Count, % of residents aged 16 to 64"
    shown = texts(at)
    assert "**Responsible department:** Department for Work and Pensions" in shown
    assert "**Licence:** Open Government Licence v3.0" in shown
    assert "**Freshness of the source:** current (next release expected by " in shown  # by the data's period
    assert (f"Latest (2025): {claimant_count(HARTLEPOOL):.1f}%, England {claimant_count(ENGLAND):.1f}%") in shown
    assert "Compared with England: Not compared. Position among areas: " in shown  # no CI: a position, no test
    assert "**Confidence intervals:** as published, else computed from counts (Wilson score)" in shown
    assert "Spearman's rho =" in shown and "n = " in shown
    assert "Association, not causation" in shown
    assert len(at.get("plotly_chart")) == 3  # time series, map, scatter


def test_similar_areas_line_keeps_the_indicators_decimal_places(open_page):
    # Essex and England published whole numbers for 2025 (3.0% and 4.0%): shown as 3.0% and 4.0%, as in the caption
    # above the line and on the Place page, never "3%" beside a peer mean of "3.2%"
    essex = "E10000012"
    assert claimant_count(essex).is_integer() and claimant_count(ENGLAND).is_integer()
    at = open_page("indicator", indicator="claimant-count-rate-16-64", area=essex, outcome="life-expectancy")
    line = next(m.value for m in at.markdown if m.value.startswith("**Compared with similar areas**"))
    assert f"· Essex {claimant_count(essex):.1f}% ·" in line
    assert f"England {claimant_count(ENGLAND):.1f}% " in line


def test_indicator_map_shows_the_chosen_place_among_its_own_kind_of_area(database_url, monkeypatch):
    # a shared link to a county on a district-level indicator: the map opens on counties and unitaries, with Essex
    # outlined; on districts it is not one of the areas, and the caption says so instead of claiming an outline
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRACKER_DATABASE_URL", database_url)
    essex, caption = "E10000012", lambda at: next(x.value for x in at.caption if x.value.startswith("Latest period for each"))
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params.update(indicator="claimant-count-rate-16-64", area=essex, outcome="life-expectancy")
    at.switch_page("tracker/app/pages/indicator.py")  # the link's page is the session's first
    at.run()
    assert not at.exception
    assert at.radio(key="_widget_geography").value == "utla"
    chart = next(ch for ch in at.get("plotly_chart") if "latest period" in ch.proto.spec)
    assert f'"locations":["{essex}"]' in chart.proto.spec.replace(" ", "")  # the outline trace
    assert "Essex is outlined." in caption(at)
    at.radio(key="_widget_geography").set_value("ltla").run()
    assert not at.exception
    assert "Essex is not one of these areas: choose Counties and unitaries (UTLA) to see it outlined." in caption(at)
    assert "is outlined" not in caption(at)


def test_headline_outcomes_against_similar_areas_keep_their_decimal_places(open_page):
    # Fingertips publishes Gateshead's male healthy life expectancy for 2022 - 24 as "58": its card and this table say
    # 58.0 years, at the outcome's own decimal places
    from tracker.catalog import display_decimals

    gateshead = "E08000037"
    frame = pd.read_csv(SNAPSHOT_DIR / "outcomes" / "fingertips_90362_healthy_life_expectancy_ua_2015-17_to_2022-24.csv")
    row = frame[(frame["area_code"] == gateshead) & (frame["inequality"] == "Male") & (frame["period"] == "2022 - 24")]
    published = float(row["value"].iloc[0])
    assert published.is_integer()
    at = open_page("place", area=gateshead, outcome="life-expectancy", sex="Male", section="Similar areas")
    heads = next(d.value for d in at.dataframe if "vs similar areas" in d.value and "Outcome" in d.value)
    hle = heads[heads["Outcome"] == "Healthy life expectancy at birth"].iloc[0]
    assert hle["Value"] == f"{published:.{display_decimals()['healthy-life-expectancy']}f}" == "58.0"


def test_data_page_download_is_the_tracker_export_pack(open_page, capsysbinary):
    at = open_page("data", area=HARTLEPOOL)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download Excel (xlsx)", "Data dictionary (CSV)"]
    overdue = " ".join(w.value for w in at.warning)
    assert "DESNZ sub-regional fuel poverty (latest 2021; expected by 23 Jun 2024)" in overdue
    assert "NOMIS" not in overdue  # no data yet (live only): nothing to be overdue
    freshness = at.dataframe[0].value.set_index("Source")
    assert freshness.loc["OHID Fingertips", "Last run"] == "succeeded"
    assert freshness.loc["NOMIS (ONS labour market statistics)", "Freshness"].startswith("no data yet")
    assert str(freshness.loc["DESNZ sub-regional fuel poverty", "Released by the publisher"]) == "2023-04-27"
    assert "Methods: how the tracker calculates its numbers" in texts(at)

    from tracker.app.pages.data import pack
    from tracker.cli import main

    with pytest.raises(SystemExit) as done:
        main(["export", "--area", HARTLEPOOL, "--format", "csv", "--output", "-"])
        raise SystemExit(0)
    assert (done.value.code or 0) == 0
    assert pack(HARTLEPOOL, "csv", (), False) == capsysbinary.readouterr().out


@pytest.mark.parametrize("page, params, what", [
    ("place", {"area": "E99999999"}, "place “E99999999”"),
    ("indicator", {"indicator": "no-such-indicator"}, "indicator “no-such-indicator”"),
    ("department", {"department": "ministry-of-magic"}, "department “ministry-of-magic”"),
    ("overview", {"outcome": "'; DROP TABLE observation;--"}, "health outcome “ DROP TABLE observation--”"),
])
def test_unknown_code_in_a_link_gets_a_friendly_message(open_page, page, params, what):
    at = open_page(page, **params)
    assert [w.value for w in at.warning] == [
        f"The link asks for the {what}, which the tracker does not know. It may be mistyped, or a code that has been "
        "replaced. Use the button below to go back."]
    assert not at.exception
    at.button[0].click().run()
    assert not at.exception and not at.warning


@pytest.mark.parametrize("code, name", [("E10000012", "Essex"), ("E12000002", "North West")])
def test_county_and_region_have_headline_outcomes_and_a_ranking_with_intervals(open_page, code, name):
    at = open_page("place", area=code, outcome="preventable-mortality-u75", sex="Male")
    assert at.title[0].value == name
    shown = texts(at)
    assert shown.count("Not published for this area") == 0  # built from its local authorities where not published
    assert "population-weighted average (approximate)" in shown
    ranking = next(d.value for d in at.dataframe if "95% interval" in d.value)
    assert {"Rank", "95% interval", "Department", "Score", "Behind England on", "Largest gap (SD)",
            "Rests on one indicator"} <= set(ranking)
    assert set(ranking["Rests on one indicator"]) <= {"Yes", "No"}
    assert any(m.label == "Top three unchanged with any one indicator left out" for m in at.metric)
    evidence = next(d.value for d in at.dataframe if "Gap (SD)" in d.value)
    assert (evidence["Gap (SD)"].dropna() >= 0).all()
    # the grid shows these numbers at fixed decimals (it would drop trailing zeros: 2.7 beside 2.64), still numbers
    shown_as = {name: cfg["type_config"]["format"] for table in at.dataframe
                for name, cfg in json.loads(table.proto.columns).items() if "format" in cfg.get("type_config", {})}
    assert shown_as == {"Score": "%.3f", "Largest gap (SD)": "%.2f", "Gap (SD)": "%.2f", "rho (aligned)": "%.2f",
                        "Contribution": "%.3f"}
    assert pd.api.types.is_float_dtype(ranking["Largest gap (SD)"]) and pd.api.types.is_float_dtype(evidence["Gap (SD)"])


# ONS Explore Local Statistics, global model, Hartlepool's published row (most similar first)
HARTLEPOOL_GLOBAL = ["E08000018", "E06000003", "E07000171", "E08000008", "E07000038", "W06000022", "E07000033",
                     "E07000010", "E08000036", "E08000023", "E08000017", "E06000004", "E08000024", "E07000141",
                     "E08000005", "E07000076", "E07000108", "E08000027", "E08000030", "E06000021"]


def test_place_compares_hartlepool_with_its_ons_similar_areas(open_page):
    at = open_page("place", area=HARTLEPOOL, outcome="life-expectancy", sex="Male", section="Similar areas")
    assert at.radio(key="_widget_similar").value == "global"
    listed = next(d.value for d in at.dataframe if "Figures in the tracker" in d.value)
    assert listed["Code"].tolist() == HARTLEPOOL_GLOBAL
    assert listed.loc[listed["Code"] == "W06000022", "Figures in the tracker"].iloc[0] == "no (outside England)"
    assert "Explore Local Statistics" in texts(at) and "2026-03-12" in texts(at)
    heads = next(d.value for d in at.dataframe if "vs similar areas" in d.value and "Outcome" in d.value)
    le = heads[heads["Outcome"] == "Life expectancy at birth"].iloc[0]
    peers = [life_expectancy(c) for c in HARTLEPOOL_GLOBAL if c.startswith("E")]
    own = life_expectancy(HARTLEPOOL)
    assert le["Similar areas"] == f"{sum(peers) / len(peers):.1f}"  # the mean of the 19 English neighbours
    assert le["Value"] == f"{own:.1f}"
    # published without confidence intervals: against England the publisher's own judgement (Fingertips says
    # "Worse"); against the peers no test can be made, so its position among them instead
    assert le["vs England"] == "Worse (95%)" and le["vs similar areas"] == "Not compared"
    assert le["Position"] == f"{sum(p > own for p in peers) + 1} of 20"

    # another ONS model; then rank the departments against those similar areas instead of England
    at.radio(key="_widget_similar").set_value("economic").run()
    assert not at.exception and at.query_params["similar"] == "economic"
    assert "ONS similar areas (economic model)" in texts(at)
    # (the Departments section, from a link that carries the model chosen: its control is in the other section)
    at = open_page("place", area=HARTLEPOOL, outcome="life-expectancy", sex="Male", similar="economic")
    at.radio(key="_widget_rank").set_value("peers").run()
    assert not at.exception and at.query_params["rank"] == "peers" and at.query_params["similar"] == "economic"
    assert "Ranked against similar areas" in texts(at)


def test_icb_place_shows_core20_lsoa_map_quintiles_and_gaps(open_page):
    at = open_page("place", area=NENC, outcome="life-expectancy", sex="Male", section="Inequality")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Core20 share of residents"] == f"{1_024_863 / 2_966_493:.1%}"  # hand count from the LSOA files
    assert metrics["Core20 LSOAs"] == "667 of 1,889"
    quint = next(d.value for d in at.dataframe if "Share of residents" in d.value)
    assert quint["LSOAs"].tolist()[0] == 667 and quint["LSOAs"].sum() == 1_889
    gaps = next(d.value for d in at.dataframe if "Gap (most − least deprived)" in d.value)
    assert len(gaps) == 8 and {"DWP", "DfE", "HO", "DESNZ"} <= {d.split(" ")[0] for d in gaps["Department"]}
    for _, row in gaps.iloc[:, 2:].iterrows():  # a determinant's fifths and gap at one number of decimals
        assert len({cell.partition(".")[2].__len__() for cell in row if cell != "–"}) == 1, row.tolist()
        assert not any(cell.startswith("-") and not cell.strip("-0.") for cell in row), row.tolist()  # no "-0.00"
    lsoa_map = next(ch for ch in at.get("plotly_chart") if "LSOAs by national IMD 2025 quintile" in ch.proto.spec)
    assert lsoa_map.proto.spec.count('"E01') >= 1_889  # every LSOA of the ICB is drawn
    labels = [b.label for b in at.get("download_button")]
    assert {"Download the breakdown (CSV)", "Download the gaps (CSV)"} <= set(labels)

    at = open_page("place", area=NENC, outcome="life-expectancy", sex="Male", section="Similar areas")
    peers = next(d.value for d in at.dataframe if "Distance (SDs)" in d.value)
    assert len(peers) == 6 and peers["Rank"].iloc[0] == "this ICB"
    assert "not an official one" in texts(at)
    assert "Download peer ICBs (CSV)" in [b.label for b in at.get("download_button")]
