"""Offline means offline (issue 14 item 5): in Debian's Chromium, the dashboard asks nothing of any host but the
tracker's own server (no font, favicon or icon CDN, no tile server), its favicon is served locally, and users see
no Streamlit "Deploy" button (toolbarMode = "minimal" in .streamlit/config.toml)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.test_app_browser import app, shots  # noqa: F401  (the served app fixture)

pytestmark = pytest.mark.browser


def test_pages_request_nothing_off_the_local_server_and_show_no_deploy_button(app):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=180_000)
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shots.CHROMIUM, args=shots.CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        context.on("request", lambda request: requested.append(request.url))
        page = context.new_page()
        for path in ("/?outcome=life-expectancy&sex=Male&geography=ltla",
                     "/place?area=E54000050&outcome=life-expectancy&sex=Male",
                     "/indicator?indicator=claimant-count-rate-16-64&area=E06000001"):
            page.goto(app + path)
            shots.wait_rendered(page)
            icon = page.locator("link[rel~='icon']").first.get_attribute("href")
            assert urlparse(page.evaluate("h => new URL(h, document.baseURI).href", icon)).hostname == "127.0.0.1"
            expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
            expect(page.get_by_text("Deploy", exact=True)).to_have_count(0)
        browser.close()
    assert requested
    offsite = sorted({u for u in requested
                      if not u.startswith(("data:", "blob:")) and urlparse(u).hostname != "127.0.0.1"})
    assert not offsite, f"requests off the local server: {offsite}"
