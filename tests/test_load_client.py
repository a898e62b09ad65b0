"""The browserless visitor of benchmarks/load.py (benchmarks/st_session.py) against a real
`vendiscope app`: it opens pages by their script hashes and draws a lasso as the map component
does, and the server answers with exactly the items inside the lasso."""
import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as Polygon

from conftest import running_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from st_session import Session, map_points  # noqa: E402


@pytest.mark.slow
def test_a_browserless_session_opens_pages_and_its_lasso_selects_the_items_inside(tmp_path, shared_cache):
    env = {"VENDISCOPE_CACHE": str(shared_cache), "HOME": str(tmp_path)}

    async def visit(url: str):
        async with Session(url, timeout=600) as s:
            home = await s.run()
            assert home.status == "FINISHED_SUCCESSFULLY" and "Vendi scores per set" in " ".join(home.texts)
            assert {"", "explore", "modes", "compare"} <= set(s.pages)
            modes = await s.run(page="modes")
            assert "Weight of mode 1" in modes.texts
            grids = [e for e in s.elements if e.kind == "html" and 'class="vs-grid"' in e.proto.body]
            assert grids and "data:image/jpeg;base64," in grids[0].proto.body  # thumbnails inline
            await s.run(page="explore")
            the_map = s.component("vendiscope_map")
            points = map_points(s)
            xy = np.c_[points["x"], points["y"]]
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            poly = [lo + f * (hi - lo) for f in ([0.1, 0.1], [0.6, 0.1], [0.6, 0.7], [0.1, 0.7])]
            lasso = await s.run(widgets={the_map.id: {"selection": {"lasso": [p.tolist() for p in poly]},
                                                      "hover": None}}, fragment=the_map.fragment)
            assert lasso.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"  # the map's fragment, not the page
            # resting on a point: the map's hover card is sent, its points are not (the browser has
            # them cached), and they are the same points
            shape = {"lasso": [p.tolist() for p in poly]}
            hover = await s.run(widgets={the_map.id: {"selection": shape, "hover": 3}}, fragment=the_map.fragment)
            names = set(hover.sent_in_full)
            assert any(n.endswith("vendiscope_map") for n in names), names
            assert not any(n.endswith("vendiscope_points") for n in names), names
            assert json.loads(s.component("vendiscope_map").proto.json)["hover_card"]["index"] == 3
            assert map_points(s)["digest"] == points["digest"]
            blob = s.component("vendiscope_points").proto.bytes
            assert hover.bytes < len(blob) / 4, (hover.bytes, len(blob))  # two runs, a fraction of the points
            return lasso.texts, int(Polygon(np.array(poly)).contains_points(xy).sum())

    with running_app(cwd=tmp_path, env=env, timeout=120) as (port, _):
        texts, inside = asyncio.run(visit(f"http://127.0.0.1:{port}"))
    assert 0 < inside < 10_000
    assert f"Selection: {inside:,} items" in texts
