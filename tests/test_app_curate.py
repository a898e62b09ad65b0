"""The Curate page in AppTest: it chooses k items with the library's selection, draws them on the
map, compares them with random and k-center subsets, flags and exports them."""
import io

import numpy as np
import pandas as pd

from conftest import app_on, map_points
from explorer.curate.select import cached_selection
from explorer.data.datasets import load_dataset
from explorer.data.synthetic import mixture
from explorer.store.flags import FlagStore


def test_the_curate_page_picks_k_items_shows_them_and_flags_them(tmp_path, downloaded):
    x, labels = mixture(400, dim=16, clusters=5, unevenness=0.3, seed=8)
    np.save(tmp_path / "x.npy", x)
    items = pd.DataFrame({"id": [f"v{i:03d}" for i in range(len(x))], "label": [f"c{c}" for c in labels]})
    items.to_parquet(tmp_path / "items.parquet")
    source = str(tmp_path / "x.npy")
    at = app_on(source, "curate", embedder="pixels")
    assert at.title[0].value == "Curate"
    at.number_input(key="curate_k").set_value(12).run()
    at.selectbox(key="curate_per").set_value("label").run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Diverse subset: 12 items"
    summary, picks = cached_selection(x, load_dataset(source).items, k=12, per="label")  # what the library chose
    shown = next(d.value for d in at.dataframe if "gain" in d.value.columns)
    assert shown["id"].tolist() == picks["id"].tolist()
    assert shown["label"].value_counts().to_dict() == {c: m for c, m in summary["quotas"].items() if m}
    points, meta = map_points(at)
    assert (points["c"] == 1).sum() == 12 and meta["names"] == ["other items", "chosen"]
    assert [m.label for m in at.metric] == ["VS q=1 subset", "VS q=1 best random", "VS q=1 k-center"]
    assert float(at.metric[0].value) == round(summary["scores"]["1"], 2)
    assert float(at.metric[0].value) >= float(at.metric[1].value)

    at.button(key="curate_flag").click().run()
    assert [t.value for t in at.toast] == ["Flagged 12 items"]
    store = FlagStore.for_dataset(load_dataset(source).source)
    assert store.reasons() == {i: ["diverse subset k=12 per label"] for i in picks["id"]}
    # the subset just flagged stays as it is; an item flagged for a problem is left out of the next
    at.number_input(key="curate_k").set_value(10).run()
    first = next(d.value for d in at.dataframe if "gain" in d.value.columns)["id"].tolist()
    assert first == cached_selection(x, load_dataset(source).items, k=10, per="label")[1]["id"].tolist()
    store.add([first[0]], reason="blurry")
    at.number_input(key="curate_k").set_value(11).run()
    assert not at.exception, at.exception
    again = next(d.value for d in at.dataframe if "gain" in d.value.columns)
    assert len(again) == 11 and first[0] not in again["id"].tolist()
    subset = pd.read_csv(io.BytesIO(downloaded(at, "Subset CSV")), keep_default_na=False)
    assert subset["id"].tolist() == again["id"].tolist() and subset["rank"].tolist() == list(range(1, 12))
