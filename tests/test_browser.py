"""What a person sees: the app started as the README does, in headless Chromium."""
import re
from pathlib import Path

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, lasso, wait_idle

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def test_overview_in_a_real_browser(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.get_by_text("Vendi scores per set").wait_for(timeout=240_000)
        metrics = page.locator('[data-testid="stMetric"]')
        metrics.nth(19).wait_for(timeout=120_000)
        assert metrics.count() == 20
        assert "VS q=1" in metrics.nth(2).inner_text()
        assert page.get_by_text("efficientnet-lite0", exact=False).first.is_visible()
        page.get_by_text("4,797 points").wait_for(timeout=120_000)  # the map draws every item
        page.screenshot(path=str(ARTIFACTS / "overview.png"))
        page.locator("canvas.vs-canvas").first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "overview-map.png"))
        browser.close()
    assert (ARTIFACTS / "overview.png").stat().st_size > 10_000


def open_page(page, app_url: str, title: str) -> None:
    """Open a page from the sidebar as a person does."""
    page.goto(app_url)
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title)
    link.wait_for(timeout=240_000)
    link.click()
    page.wait_for_url(re.compile(rf"/{title.lower()}(\?|$)"))  # the view rides in the query string


@pytest.mark.parametrize("path, heading", [("explore", "Explore"), ("compare", "Compare")])
def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_navigation(app_url, path, heading):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{app_url}/{path}")  # the first request this server sees
        page.locator("h1", has_text=heading).wait_for(timeout=240_000)
        nav = page.locator('[data-testid="stSidebarNav"] a')
        nav.first.wait_for(timeout=60_000)
        assert [t.split()[-1] for t in nav.all_inner_texts()] == ["Overview", "Explore", "Modes", "Compare", "Audit",
                                                                 "Representation", "Curate"]
        assert re.search(rf"/{path}(\?|$)", page.url)
        # the app's wide layout (set by app.py) applies, so the page ran inside app.py
        assert page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"] > 1000
        browser.close()


def test_modes_in_a_real_browser(app_url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_page(page, app_url, "Modes")
        page.get_by_text("Weight of mode 1").wait_for(timeout=240_000)
        images = page.locator(".vs-grid img")  # pages/_grid.py: the thumbnails inline
        images.first.wait_for(timeout=60_000)
        page.wait_for_function("[...document.querySelectorAll('.vs-grid img')]"
                               ".every(i => i.complete && i.naturalWidth)", timeout=60_000)
        # the grids get the small cached thumbnails, not the original files
        widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) in (12, 24) and all(0 < w <= 80 for w in widths), widths  # sides with items
        page.screenshot(path=str(ARTIFACTS / "modes.png"))
        browser.close()
    assert (ARTIFACTS / "modes.png").stat().st_size > 10_000


def test_compare_in_a_real_browser(app_url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        open_page(page, app_url, "Compare")
        page.get_by_text("Diversity and fidelity per set").wait_for(timeout=240_000)
        page.get_by_text("Under-represented by").wait_for(timeout=120_000)
        page.locator("canvas.vs-canvas").first.wait_for(timeout=60_000)  # the regions map
        page.screenshot(path=str(ARTIFACTS / "compare.png"))
        browser.close()
    assert (ARTIFACTS / "compare.png").stat().st_size > 10_000


def test_select_flag_and_export_in_a_real_browser(app_url, tmp_path, shared_cache):
    import re

    import pandas as pd
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        open_page(page, app_url, "Explore")
        page.locator("canvas.vs-canvas").first.wait_for(timeout=240_000)
        page.get_by_text("All filtered items").wait_for(timeout=120_000)
        page.locator("canvas.vs-canvas").first.scroll_into_view_if_needed()
        lasso(page, [(0.02, 0.02), (0.55, 0.02), (0.55, 0.55), (0.02, 0.55)])
        heading = page.get_by_text(re.compile(r"^Selection: [\d,]+ items$"))
        heading.wait_for(timeout=120_000)
        selected = int(heading.inner_text().split()[1].replace(",", ""))
        assert 0 < selected < 4797
        page.wait_for_timeout(500)
        metrics = page.locator('[data-testid="stMetric"]')
        assert metrics.count() == 5 and "VS q=1" in metrics.nth(2).inner_text()
        assert page.locator(".vs-grid img").count() > 0
        # Streamlit scrolls inside its own container, so a taller window is what shows the grid too
        page.set_viewport_size({"width": 1400, "height": 1700})
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / "explore-selection.png"))
        page.set_viewport_size({"width": 1400, "height": 1100})

        page.get_by_placeholder("e.g. off-topic, duplicate, blurry").fill("browser test")
        wait_idle(page)
        page.get_by_role("button", name=re.compile(f"Flag {selected:,} selected items")).click()
        page.get_by_text(f"Flagged {selected:,} items").wait_for(timeout=60_000)

        # the flags panel is on every page: export, then unflag one
        page.goto(app_url + "/modes")
        page.get_by_role("button", name=re.compile(r"Flags: [\d,]+ item")).click()
        with page.expect_download() as info:
            page.get_by_role("button", name="CSV", exact=True).click()
        path = tmp_path / "flagged.csv"
        info.value.save_as(path)
        page.screenshot(path=str(ARTIFACTS / "flags-panel.png"))
        table = pd.read_csv(path, keep_default_na=False)
        assert table["id"].is_unique
        ours = table[table["flag_reasons"].str.contains("browser test")]  # other tests may flag items too
        assert len(ours) == selected
        first = ours["id"].iloc[0]
        page.get_by_label("Flags to remove").click()
        page.get_by_role("option", name=f"{first} — browser test").click()
        page.keyboard.press("Escape")
        wait_idle(page)
        page.get_by_role("button", name="Unflag 1").click()
        page.get_by_text("Removed 1 flag", exact=True).wait_for(timeout=60_000)
        browser.close()
    from explorer.data.datasets import load_dataset, sample_data_dir
    from explorer.store.flags import FlagStore

    store = FlagStore.for_dataset(load_dataset(sample_data_dir()).source, root=shared_cache)
    mine = [i for i, reasons in store.reasons().items() if "browser test" in reasons]
    assert len(mine) == selected - 1 and first not in mine
    store.remove(mine, reason="browser test")
