"""What a new user tripped on (issue 14), under Streamlit's AppTest as they open each page from a link: the Place
page's figures follow the sex chosen, every code or name the command line accepts opens its page, no raw "None" or
doubled labels, chart titles that fit and tables that lead with what an analyst reads, and figures shown with the
indicator's own decimal places. Figures are checked against the bundled source files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.test_app_pages import database_url, life_expectancy, open_page, texts  # noqa: F401  (fixtures)
from tracker.catalog import load_catalog

LIVERPOOL, CHESHIRE_MERSEYSIDE, HARTLEPOOL, ENGLAND = "E08000012", "E54000008", "E06000001", "E92000001"
FIRST_COLUMNS = ["Indicator", "Value", "England", "Compared with England"]


def cards(at) -> str:
    """The headline cards' text (value, unit, sex and period, England)."""
    return "\n".join(m.value for m in at.markdown if "font-size:1.9em" in m.value)


def test_place_headline_cards_follow_the_sex_in_the_link_and_the_control(open_page):
    at = open_page("place", area=LIVERPOOL, outcome="life-expectancy", sex="Female")
    female, male = life_expectancy(LIVERPOOL, "Female"), life_expectancy(LIVERPOOL, "Male")
    assert (female, male) == (80.6, 76.7)  # as published for Liverpool, 2023-25
    shown = cards(at)
    assert f"{female:.1f} <span" in shown and f"Female, 2023 - 25 · England {life_expectancy(ENGLAND, 'Female'):.1f} years" in shown
    assert "Male, 2023 - 25" not in shown

    at = open_page("place", area=CHESHIRE_MERSEYSIDE, outcome="life-expectancy", sex="Male")
    assert "Male, 2023 - 25" in cards(at)
    at.radio(key="_widget_sex").set_value("Female").run()
    assert not at.exception
    assert "Female, 2023 - 25" in cards(at) and "Male, 2023 - 25" not in cards(at)
    # the indicator tables in their section follow it too, where an indicator is published by sex
    at.session_state["section"] = "Every indicator"
    at.session_state["dept-department-of-health-and-social-care"] = True
    at.run()
    periods = pd.concat([d.value for d in at.dataframe if "Range across areas" in d.value])["Period"]
    assert periods.str.endswith("· Female").any() and not periods.str.endswith("· Male").any()


@pytest.mark.parametrize("params, title", [
    ({"department": "DLUHC"}, "Ministry of Housing, Communities and Local Government"),  # a historical name
    ({"department": "dclg"}, "Ministry of Housing, Communities and Local Government"),
    ({"department": "DWP"}, "Department for Work and Pensions"),  # an abbreviation
    ({"department": "Department for Education"}, "Department for Education"),  # a name
])
def test_department_names_the_cli_accepts_open_the_department(open_page, params, title):
    at = open_page("department", **params)
    assert not at.warning, [w.value for w in at.warning]
    assert at.title[0].value == title
    assert at.query_params["department"] != params["department"]  # the link now carries the slug


def test_department_with_no_indicators_is_not_called_unknown(open_page):
    at = open_page("department", department="MOD")  # a ministerial department that owns no indicator here
    assert not at.warning
    assert any("holds no indicators owned by Ministry of Defence (MOD)" in i.value for i in at.info)


def test_codes_in_any_case_open_their_page(open_page):
    at = open_page("place", area=LIVERPOOL.lower(), outcome="LIFE-EXPECTANCY", sex="female")
    assert not at.warning and at.title[0].value == "Liverpool"
    assert at.query_params["area"] == LIVERPOOL and at.query_params["sex"] == "Female"


def test_indicator_listed_by_the_cli_without_figures_says_why(open_page):
    listed = {s.id for s in load_catalog()}
    assert "employment-rate-fingertips" in listed  # `tracker indicators` lists it
    at = open_page("indicator", indicator="employment-rate-fingertips", area=HARTLEPOOL)
    assert not at.warning, [w.value for w in at.warning]
    assert at.title[0].value == "Percentage of people aged 16-64 in employment"
    (info,) = [i.value for i in at.info if "No figures" in i.value]
    assert info.startswith("No figures loaded yet for this indicator: it is not in the bundled offline snapshot")
    assert "`tracker refresh --source fingertips`" in info
    assert "0 periods held" in texts(at)


def test_no_raw_none_in_department_and_freshness_tables(open_page):
    at = open_page("department", department="department-of-health-and-social-care", outcome="life-expectancy",
                   sex="Male")
    rho = at.dataframe[0].value["Aligned rho with life expectancy at birth"]
    assert rho.notna().all() and "None" not in set(rho)
    assert "–" in set(rho)  # the headline outcomes themselves have no rho with an outcome
    at = open_page("data", area=HARTLEPOOL)
    freshness = at.dataframe[0].value
    assert freshness.notna().all().all() and not (freshness == "None").any().any()
    nomis = freshness[freshness["Source"].str.startswith("NOMIS")].iloc[0]  # never loaded offline
    assert (nomis["Last checked"], nomis["Latest period"], nomis["Released by the publisher"]) == ("–", "–", "–")


def test_england_chart_is_not_england_and_england_and_periods_are_counted_right(open_page):
    at = open_page("indicator", indicator="claimant-count-rate-16-64", area=ENGLAND, outcome="life-expectancy")
    series = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "England and England" not in series["layout"]["title"]["text"]
    names = [t.get("name") for t in series["data"]]
    assert names.count("England") == 1
    at = open_page("indicator", indicator="crime-severity-score", area=HARTLEPOOL)
    assert "· 1 period held" in texts(at)


def chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


def test_chart_titles_wrap_and_tables_lead_with_what_an_analyst_reads(open_page):
    at = open_page("overview", outcome="healthy-life-expectancy", sex="Female", geography="ltla")
    titles = chart_titles(at)
    assert len(titles) == 2 and all(titles)
    # both charts sit in half the page: no line longer than fits there (plotly cuts a long title off)
    assert max(len(line) for t in titles for line in t.split("<br>")) <= 48
    assert "healthy life expectancy at birth" in " ".join(titles).replace("<br>", " ")

    at = open_page("place", area=HARTLEPOOL, outcome="life-expectancy", sex="Male")
    evidence = next(d.value for d in at.dataframe if "rho (aligned)" in d.value)
    assert list(evidence.columns[:4]) == FIRST_COLUMNS
    at = open_page("place", state={"dept-department-for-work-pensions": True}, area=HARTLEPOOL,
                   outcome="life-expectancy", sex="Male", section="Every indicator")
    table = next(d.value for d in at.dataframe if "Range across areas" in d.value)
    assert list(table.columns[:4]) == FIRST_COLUMNS

    at = open_page("indicator", indicator="homelessness-owed-duty-per-1000", area=HARTLEPOOL)
    series = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert series["layout"]["xaxis"]["automargin"] is True  # quarter labels ("2025 Q4") get the room they need
    assert max(len(line) for line in series["layout"]["title"]["text"].split("<br>")) <= 90


def test_figures_are_shown_with_the_indicators_own_decimal_places(open_page):
    decimals = {s.id: s.decimals for s in load_catalog()}
    at = open_page("place", state={"dept-ministry-of-housing-communities-local-government": True},
                   area=HARTLEPOOL, outcome="life-expectancy", sex="Male", section="Every indicator")
    table = next(d.value for d in at.dataframe if "Range across areas" in d.value
                 and "Housing affordability ratio" in " ".join(d.value["Indicator"]))
    from tracker.analysis import place_profile
    from tracker.store import get_engine

    profile = place_profile(get_engine(), HARTLEPOOL, sex="Male").set_index("title")
    checked = 0
    for _, row in table.iterrows():
        p = profile.loc[row["Indicator"]]
        if pd.isna(p["value"]) or row["Value"].endswith(")"):
            continue
        digits = decimals[p["indicator_id"]]
        expected = f"{p['value']:,.{digits}f}"
        assert row["Value"].lstrip("£").rstrip("%") == expected, (row["Indicator"], row["Value"], expected)
        checked += 1
    assert checked >= 3
    # a ratio, shown with two places as ONS publishes it (not rounded to one, nor at full precision)
    ratio = table[table["Indicator"].str.startswith("Housing affordability ratio")].iloc[0]
    assert (ratio["Value"], ratio["England"]) == (f"{affordability(HARTLEPOOL):.2f}", f"{affordability(ENGLAND):.2f}")
    assert ratio["Value"] == "4.86"


def affordability(code: str) -> float:
    """As published: ONS Explore Local Statistics, housing affordability ratio, latest year."""
    from tracker.config import SNAPSHOT_DIR

    frame = pd.read_csv(SNAPSHOT_DIR / "housing" / "ons_els_housing_affordability_ratio_2002_to_2025.csv.gz",
                        encoding="utf-8-sig")
    return float(frame[(frame["areacd"] == code) & (frame["period"] == "2025-04-01")]["observation"].iloc[0])
