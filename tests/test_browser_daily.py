"""A day with your own data, in a real browser: your datasets and chosen sets first and kept
across pages and reloads, a click that opens an item while lassoing or panning, and the audit of a
folder with planted copies and near copies."""
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import CHROMIUM, CHROMIUM_ARGS, need_chromium, running_app, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def datasets(tmp_path):
    folder = tmp_path / "pets"
    rng = np.random.default_rng(1)
    for name in ("cats", "dogs"):
        (folder / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(30, 220, (24, 24, 3), dtype=np.uint8)).save(folder / name / f"{i}.png")
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, rng.normal(size=(300, 12)).astype(np.float32))
    pd.DataFrame({"set": np.array(["a", "b", "c"])[np.arange(300) % 3]}).to_parquet(tmp_path / "items.parquet")
    planted = tmp_path / "planted"
    for i in range(120):
        (planted / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(40, 216, (16, 16, 3), dtype=np.uint8)).save(planted / "a" / f"img{i:03d}.png")
    for j in range(5):
        shutil.copyfile(planted / "a" / f"img{j:03d}.png", planted / "a" / f"zcopy{j}.png")
    for j in range(5):  # near copies: the same picture with a little noise, not the same bytes
        pixels = np.asarray(Image.open(planted / "a" / f"img{10 + j:03d}.png"), np.float32)
        noisy = np.clip(pixels + rng.normal(0, 2, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(planted / "a" / f"znear{j}.png")
    return folder, vectors, planted


def near_duplicates_found(folder: Path) -> int:
    """Items in near-duplicate groups by the library's audit, embedded as the app does (pixels)."""
    from explorer.compare.audit import Audit
    from explorer.data.datasets import load_dataset
    from explorer.embed.pipeline import embed_dataset
    from explorer.embed.registry import resolve_embedder

    result = embed_dataset(load_dataset(folder), resolve_embedder("pixels")[0])
    return Audit().fit(result.embeddings, result.items).summary()["near_duplicates"]["items"]


def sidebar_dataset(page) -> str:
    """The dataset the sidebar shows as chosen (its select box's displayed value)."""
    return page.get_by_role("combobox", name="Dataset").input_value()


def test_your_data_first_kept_across_pages_and_reloads(datasets, tmp_path):
    from playwright.sync_api import sync_playwright

    need_chromium()
    folder, vectors, planted = datasets
    with running_app(str(folder), str(vectors), str(planted), cwd=tmp_path, env={"HOME": str(tmp_path)}) as (port, _):
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)  # the first dataset given, not the sample
            page.get_by_text("20 points").wait_for(timeout=240_000)
            assert str(folder) in sidebar_dataset(page)
            # unlabelled vectors in three sets, by link: the map has its points, coloured by set
            page.goto(f"{url}/explore?data={vectors}&model=pixels")
            page.get_by_text("300 points").wait_for(timeout=240_000)
            assert str(vectors) in sidebar_dataset(page)
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_label("Remove c").first.click()  # the Sets box comes before any filter
            page.get_by_text("200 points").wait_for(timeout=120_000)
            for title in ("Modes", "Compare", "Audit", "Overview", "Explore"):
                page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
                path = "" if title == "Overview" else title.lower()  # the default page lives at /
                page.wait_for_url(re.compile(rf":{port}/{path}\?.*sets=a(%2C|,)b"))
                sidebar.get_by_label("Remove b").first.wait_for(timeout=120_000)
                page.wait_for_timeout(1500)
                assert str(vectors) in sidebar_dataset(page), title
                assert sidebar.get_by_label("Remove a").count() and not sidebar.get_by_label("Remove c").count(), title
            page.reload()
            page.get_by_text("200 points").wait_for(timeout=120_000)
            assert str(vectors) in sidebar_dataset(page)
            assert sidebar.get_by_label("Remove b").count() and not sidebar.get_by_label("Remove c").count()
            # a click in lasso mode (the default drag mode) opens the item under the pointer
            canvas = page.locator("canvas.vs-canvas").first
            box = canvas.bounding_box()
            opened = None
            for fy in np.linspace(0.2, 0.8, 13):
                for fx in np.linspace(0.2, 0.8, 13):
                    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                    if page.locator(".vs-tip").is_visible():
                        opened = (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                        page.mouse.click(*opened)
                        page.get_by_role("heading", name=re.compile(r"^Item row\d+")).wait_for(timeout=60_000)
                        break
                if opened:
                    break
            assert opened, "no point found under the pointer"
            page.screenshot(path=str(Path(__file__).resolve().parent.parent / "test-artifacts" / "explore-item.png"))
            # closed, then clicked again with Pan as the drag mode: it opens again
            wait_idle(page)
            page.get_by_role("button", name="Close", exact=True).click()
            page.get_by_role("heading", name=re.compile(r"^Item row\d+")).wait_for(state="detached", timeout=60_000)
            page.get_by_role("button", name="Pan", exact=True).click()
            page.mouse.click(*opened)
            page.get_by_role("heading", name=re.compile(r"^Item row\d+")).wait_for(timeout=60_000)
            # the audit of a folder with planted copies and near copies finds all of them
            page.goto(f"{url}/audit?data={planted}&model=pixels")
            page.get_by_text("Exact copies").first.wait_for(timeout=240_000)
            cards = page.locator('[data-testid="stMetric"]')
            assert cards.first.inner_text().split()[-1] == "5"
            near = int(cards.nth(1).inner_text().split()[-1].replace(",", ""))
            assert near == near_duplicates_found(planted) and near >= 10  # each near copy and its original
            browser.close()
