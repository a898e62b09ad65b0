"""A large dataset in a real browser: 200k precomputed embeddings open with a map of every point
(the draft: UMAP on landmarks, the rest placed), and a lasso drawn with the mouse returns the
selection's Vendi scores, computed over every item inside it."""
import re

import numpy as np
import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, lasso, need_chromium, running_app
from explorer.data.synthetic import mixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N = 200_000


def test_a_200k_dataset_opens_with_every_point_and_a_lasso_returns_scores(tmp_path):
    from playwright.sync_api import sync_playwright

    need_chromium()
    x, _ = mixture(N, dim=48, clusters=12, seed=3, intrinsic=6)
    vectors = tmp_path / "big.npy"
    np.save(vectors, x)
    env = {"HOME": str(tmp_path), "VENDISCOPE_CACHE": str(tmp_path / "cache")}
    with running_app(str(vectors), cwd=tmp_path, env=env) as (port, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/explore?data={vectors}")
            # every item is drawn, not a sample
            page.get_by_text(f"{N:,} points").first.wait_for(timeout=600_000)
            page.get_by_text("All filtered items").wait_for(timeout=240_000)
            page.locator("canvas.vs-canvas").first.scroll_into_view_if_needed()
            lasso(page, [(0.02, 0.02), (0.6, 0.02), (0.6, 0.98), (0.02, 0.98)])
            heading = page.get_by_text(re.compile(r"^Selection: [\d,]+ items$"))
            heading.wait_for(timeout=240_000)
            selected = int(heading.inner_text().split()[1].replace(",", ""))
            assert 1_000 < selected < N  # a real part of the map, counted over every item
            metrics = page.locator('[data-testid="stMetric"]')
            metrics.nth(2).wait_for(timeout=60_000)
            text = metrics.nth(2).inner_text()
            assert "VS q=1" in text
            value = float(text.split()[-1].replace(",", ""))
            assert 1.0 <= value <= 48.0  # a Vendi score of 48-d rows lies between 1 and the rank
            browser.close()
