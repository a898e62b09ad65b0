"""The Curate page in headless Chromium: choose a diverse subset of the sample data and download it."""
import re

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_select_then_export_a_diverse_subset_in_a_real_browser(app_url, tmp_path):
    import pandas as pd
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        page.goto(app_url)
        link = page.locator('[data-testid="stSidebarNav"] a', has_text="Curate")
        link.wait_for(timeout=240_000)
        link.click()
        page.wait_for_url(re.compile(r"/curate(\?|$)"))
        page.get_by_text(re.compile(r"^Diverse subset: 50 items$")).wait_for(timeout=240_000)
        k = page.get_by_label("Items to choose (k)")
        k.fill("17")
        k.press("Enter")
        page.get_by_text(re.compile(r"^Diverse subset: 17 items$")).wait_for(timeout=120_000)
        page.locator("canvas.vs-canvas").first.wait_for(timeout=60_000)  # the subset on the map
        wait_idle(page, timeout=120_000)  # the run's stale elements, an old button among them, leave when it ends
        button = page.get_by_role("button", name=re.compile("Subset CSV"))
        assert button.count() == 1
        with page.expect_download() as info:
            button.click()
        path = tmp_path / "diverse-subset.csv"
        info.value.save_as(path)
        browser.close()
    table = pd.read_csv(path, keep_default_na=False)
    assert len(table) == 17 and table["id"].is_unique
    assert table["rank"].tolist() == list(range(1, 18))
