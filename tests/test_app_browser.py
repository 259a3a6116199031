"""The dashboard end to end in a real browser: Debian's Chromium (/usr/bin/chromium, never a downloaded browser)
driven by Playwright, against `streamlit run streamlit_app.py` serving a copy of the database prepared from the
bundled snapshot. A shared link opens the right place, the figures on screen are the published ones (read here from
the snapshot's source files), a local authority link drills down, and the Data page's CSV download is the place's
evidence pack. Screenshots of every page go to test-artifacts/screenshots/."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tracker" / "data" / "snapshot"
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
ICB, HARTLEPOOL = "E54000050", "E06000001"

pytestmark = pytest.mark.browser

_spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)


def life_expectancy(code: str, sex: str = "Male", period: str = "2023 - 25") -> float:
    """Life expectancy at birth as published (Fingertips 90366, the bundled source file)."""
    frame = pd.read_csv(SNAPSHOT / "outcomes" / "fingertips_90366_life_expectancy_at_birth_lad_2015-17_to_2023-25.csv")
    row = frame[(frame["area_code"] == code) & (frame["inequality"] == sex) & (frame["period"] == period)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


@pytest.fixture(scope="module")
def app(snapshot_db_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    shutil.copy(snapshot_db_file, folder / "tracker.sqlite")
    # the copy holds the analysis prepare saved in the database: the server starts warm, as after a refresh
    env = {"TRACKER_DATA_DIR": str(folder), "TRACKER_DATABASE_URL": f"sqlite:///{folder / 'tracker.sqlite'}"}
    with shots.serve(env) as base:
        yield base


@pytest.fixture(scope="module")
def page(app):
    from playwright.sync_api import sync_playwright

    from playwright.sync_api import expect

    # The server's first view builds every comparison and association (tens of seconds on a busy CI machine);
    # Streamlit can draw part of a page while it works, so checks wait for what they look for, not a fixed time.
    expect.set_options(timeout=180_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shots.CHROMIUM, args=shots.CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
        yield context.new_page()
        browser.close()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_shared_link_drill_down_and_csv_download(app, page):
    from playwright.sync_api import expect

    england, hartlepool = life_expectancy("E92000001"), life_expectancy(HARTLEPOOL)

    # a shared link to an ICB opens that ICB, with England's published figure beside its own
    page.goto(f"{app}/place?area={ICB}&outcome=life-expectancy&sex=Male")
    shots.wait_rendered(page)
    expect(page.get_by_role("heading", name="NHS North East and North Cumbria Integrated Care Board")).to_be_visible()
    expect(page.get_by_text(f"Male, 2023 - 25 · England {england:.1f} years").first).to_be_visible()
    assert "Traceback" not in page.content()
    shoot(page, "place-icb")
    # its map of LSOAs by IMD quintile (in the Inequality section: the tab opens it and puts it in the link) is drawn
    # offline, every one of the ICB's bundled LSOA boundaries an area on it (drawn seconds after the map's frame:
    # shots.wait_rendered waits for the areas)
    page.get_by_role("tab", name="Inequality").click()
    page.wait_for_url("**/place?*section=Inequality*")
    shots.wait_rendered(page)
    with gzip.open(ROOT / "tracker" / "data" / "places" / "lsoa21_bsc" / f"{ICB}.geojson.gz", "rt") as handle:
        lsoas = len(json.load(handle)["features"])
    assert lsoas > 1000 and page.locator("path.choroplethlocation").count() == lsoas

    # each of its local authorities is a link showing its own published figure; it opens that place
    page.get_by_role("tab", name="Local authorities").click()
    shots.wait_rendered(page)
    page.get_by_role("link", name=f"Hartlepool · {hartlepool:.1f} years").click()
    page.wait_for_url(f"**/place?*area={HARTLEPOOL}*")
    shots.wait_rendered(page)
    expect(page.get_by_role("heading", name="Hartlepool")).to_be_visible()
    expect(page.get_by_text(f"{hartlepool:.1f} years", exact=True).first).to_be_visible()
    shoot(page, "place-la")

    # back to the ICB through its link, then the Data page keeps the place and downloads its pack
    page.get_by_role("link", name="ICB: NHS North East and North Cumbria Integrated Care Board").click()
    page.wait_for_url(f"**/place?*area={ICB}*")
    shots.wait_rendered(page)
    page.get_by_role("link", name="Data and methods").click()
    page.wait_for_url(f"**/data?*area={ICB}*")
    shots.wait_rendered(page)
    expect(page.get_by_role("heading", name="Download the evidence pack for NHS North East and North Cumbria Integrated Care Board")).to_be_visible()
    # the place box shows the place the page is for (it showed England, its first option, after the page link)
    expect(page.locator("[data-testid='stSelectbox'] input").first).to_have_value(
        "NHS North East and North Cumbria Integrated Care Board · ICB · E54000050")
    shoot(page, "data")
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename.startswith(f"pack-{ICB}-") and download.suggested_filename.endswith(".csv")
    pack = pd.read_csv(io.BytesIO(Path(download.path()).read_bytes()), encoding="utf-8-sig", dtype={"Period": str})
    row = pack[(pack["Area code"] == HARTLEPOOL) & (pack["Indicator ID"] == "life-expectancy") & (pack["Sex"] == "Male")]
    assert row["Period"].tolist() == ["2023 - 25"]
    assert row["Value"].iloc[0] == pytest.approx(hartlepool)
    assert row["ICB code"].iloc[0] == ICB
    assert ICB in set(pack["Area code"])


def test_every_page_renders_from_a_shared_link(app, page):
    views = {
        "overview": "/?outcome=preventable-mortality-u75&sex=Persons&geography=icb",
        "department": f"/department?department=department-for-work-pensions&area={ICB}",
        "indicator": f"/indicator?indicator=claimant-count-rate-16-64&area={HARTLEPOOL}&outcome=life-expectancy",
        "unknown-area": "/place?area=E99999999",
    }
    for name, path in views.items():
        page.goto(app + path)
        shots.wait_rendered(page)
        assert "Traceback" not in page.content()
        shoot(page, name)
    from playwright.sync_api import expect

    expect(page.get_by_text("which the tracker does not know")).to_be_visible()
    page.get_by_role("button", name="Show England instead").click()
    shots.wait_rendered(page)
    expect(page.get_by_role("heading", name="England", exact=True)).to_be_visible()


def test_an_icb_a_county_and_a_region_each_show_outcomes_and_a_ranking_with_intervals(app, page):
    """Walk one ICB, one county and one region from shared links: each has its headline outcomes (a county's and a
    region's built from their local authorities where not published, and labelled so) and the department ranking
    with its 95% intervals, the "rests on one indicator" column and the top-3 stability."""
    from playwright.sync_api import expect

    for code, heading, shot in [(ICB, "NHS North East and North Cumbria Integrated Care Board", "ranking-icb"),
                                ("E10000012", "Essex", "ranking-county"), ("E12000002", "North West", "ranking-region")]:
        page.goto(f"{app}/place?area={code}&outcome=preventable-mortality-u75&sex=Male")
        shots.wait_rendered(page)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_text("Top three unchanged with any one indicator left out")).to_be_visible()
        expect(page.get_by_text("Rests on one indicator:").first).to_be_visible()
        assert "Not published for this area" not in page.content() and "Traceback" not in page.content()
        if code != ICB:
            expect(page.get_by_text("population-weighted average (approximate)").first).to_be_visible()
        shoot(page, shot)


def test_similar_areas_and_inequality_in_the_browser(app, page):
    from playwright.sync_api import expect

    # Hartlepool against its ONS similar areas (global model), beside England: its tab
    page.goto(f"{app}/place?area={HARTLEPOOL}&outcome=life-expectancy&sex=Male")
    shots.wait_rendered(page)
    page.get_by_role("tab", name="Similar areas").click()
    page.wait_for_url("**/place?*section=Similar*")
    shots.wait_rendered(page)
    expect(page.get_by_role("heading", name="Compared with similar areas")).to_be_visible()
    expect(page.get_by_text("ONS similar areas (global model)")).to_be_visible()
    expect(page.get_by_text("Explore Local Statistics", exact=False).first).to_be_visible()
    assert "Traceback" not in page.content()
    shoot(page, "place-la-similar-areas")

    # its pack carries the comparison with the neighbour mean: the 19 English neighbours' published figures
    neighbours = pd.read_csv(ROOT / "tracker" / "data" / "places" / "els_global_neighbours.csv", dtype=str,
                             encoding="utf-8-sig").set_index("AREACD").loc[HARTLEPOOL].tolist()
    english = [life_expectancy(code) for code in neighbours if code.startswith("E")]
    page.goto(f"{app}/data?area={HARTLEPOOL}")
    shots.wait_rendered(page)
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="Download CSV").click()
    pack = pd.read_csv(io.BytesIO(Path(info.value.path()).read_bytes()), encoding="utf-8-sig", dtype={"Period": str})
    row = pack[(pack["Area code"] == HARTLEPOOL) & (pack["Indicator ID"] == "life-expectancy") & (pack["Sex"] == "Male")].iloc[0]
    assert row["Similar areas"] == "ONS similar areas (global)"
    assert row["Similar areas value"] == pytest.approx(sum(english) / len(english))
    assert row["Similar areas with a figure"] == 19
    own = life_expectancy(HARTLEPOOL)
    assert row["Compared with similar areas"] == "Not compared"  # no CI published: its position instead
    assert row["Position among similar areas"] == f"{sum(p > own for p in english) + 1} of 20"

    # an ICB: Core20 share and its LSOAs drawn on a map by national IMD quintile
    page.goto(f"{app}/place?area={ICB}&outcome=life-expectancy&sex=Male&section=Inequality")
    shots.wait_rendered(page)
    expect(page.get_by_role("heading", name="Inequality inside this place")).to_be_visible()
    expect(page.get_by_text(f"{1_024_863 / 2_966_493:.1%}", exact=True).first).to_be_visible()  # hand count, LSOA files
    lsoa_map = page.locator(".js-plotly-plot", has_text="LSOAs by national IMD 2025 quintile")
    expect(lsoa_map).to_be_visible()
    lsoa_map.scroll_into_view_if_needed()
    assert lsoa_map.locator("path.choroplethlocation").count() >= 1_889
    shoot(page, "place-icb-inequality")
