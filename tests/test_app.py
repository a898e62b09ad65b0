"""Streamlit AppTest: the pages on the sample data show the library's numbers; Explore's colours,
selections and grids."""

import io
import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import APP, app_on, drive_map, image_grids, map_points, page_file
from explorer.cli.app import AppSettings
from explorer.data.datasets import load_dataset, sample_data_dir
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder
from explorer.metrics.equal_n import group_scores
from explorer.metrics.kernel_rows import kernel_rows
from explorer.store.flags import FlagStore
from pages._common import NEUTRAL


def shown_score(at, label: str) -> float:
    """The one metric card with this label, as a number."""
    (value,) = [m.value for m in at.metric if m.label == label]
    return float(value)


@pytest.mark.slow
def test_overview_shows_the_library_scores_on_sample_data(shared_cache, monkeypatch):
    monkeypatch.setenv("VENDISCOPE_CACHE", str(shared_cache))
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    # the offline fallback is one compact line, its reason on demand
    offline = [c for c in at.caption if "Offline: using efficientnet-lite0" in c.value]
    assert len(offline) == 1 and "unavailable" in offline[0].help and not at.warning

    result = embed_dataset(load_dataset(sample_data_dir()), get_embedder("efficientnet-lite0"))
    # the default kernel: centred cosine around the chosen sets' pooled mean
    table = group_scores(kernel_rows(result.embeddings, kernel="centred")[0], result.items["set"])
    assert any(c.value.startswith(f"Kernel: centred cosine (centre: pooled mean of {len(result.items):,} items)")
               for c in at.caption)
    shown = [(m.label, m.value) for m in at.metric]
    expected = [(f"VS q={q}", f"{row[col]:.2f}") for _, row in table.iterrows()
                for q, col in zip(("0.1", "0.5", "1", "2", "inf"), ("VS_0.1", "VS_0.5", "VS_1", "VS_2", "VS_inf"))]
    assert shown == expected
    assert len(shown) == 5 * 4  # five orders for each of the four sample sets
    # the collapsed model is visibly less diverse than the real data at every order
    real, collapsed = table.set_index("group").loc["real"], table.set_index("group").loc["collapsed"]
    assert (collapsed[["VS_0.5", "VS_1", "VS_2"]] < real[["VS_0.5", "VS_1", "VS_2"]]).all()

    # narrowing the sets recomputes, around the remaining set's own mean
    next(m for m in at.sidebar.multiselect if m.label == "Sets").set_value(["real"]).run()
    assert not at.exception
    real = (result.items["set"] == "real").to_numpy()
    alone = group_scores(kernel_rows(result.embeddings[real], kernel="centred")[0], result.items["set"][real])
    assert [m.value for m in at.metric] == [f"{alone[c].iloc[0]:.2f}" for c in ("VS_0.1", "VS_0.5", "VS_1", "VS_2",
                                                                                 "VS_inf")]
    # plain cosine is one click away, and gives the plain Vendi score
    at.sidebar.selectbox(key="kernel").set_value("cosine").run()
    assert not at.exception and at.query_params["kernel"] == "cosine"
    plain = group_scores(result.embeddings[real], result.items["set"][real])
    assert at.metric[2].value == f"{plain['VS_1'].iloc[0]:.2f}" and "kernel: cosine" in at.metric[2].help
    assert np.isfinite(result.embeddings).all()


def test_overview_opens_a_text_file_with_the_offline_text_embedder(tmp_path, monkeypatch):
    texts = [f"a photo of a {animal} number {i}" for animal in ("cat", "dog", "fox") for i in range(8)]
    (tmp_path / "captions.txt").write_text("\n".join(texts))
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(tmp_path / "captions.txt")])
    at.run()
    at.sidebar.selectbox(key="source_choice").set_value(str(tmp_path / "captions.txt")).run()
    assert not at.exception, at.exception
    assert any("Offline: using minilm" in c.value for c in at.caption)
    assert [m.label for m in at.metric][:5] == ["VS q=0.1", "VS q=0.5", "VS q=1", "VS q=2", "VS q=inf"]


def test_notice_messages_count_what_was_done():
    import doctest

    import pages._notices as notices

    assert doctest.testmod(notices).failed == 0
    assert notices.flagged_message(2, 3) == "Flagged 2 items (1 was already flagged for this reason)"


@pytest.mark.slow
def test_flags_are_listed_unflagged_renamed_and_exported_from_every_page(shared_cache, monkeypatch, downloaded):
    from explorer.store.flags import FlagStore

    monkeypatch.setenv("VENDISCOPE_CACHE", str(shared_cache))
    store = FlagStore.for_dataset(str(sample_data_dir() / "manifest.csv"))
    store.add(["real/0/real_0000.png", "gmm/3/gmm_0300.png"], reason="odd one")
    store.add(["real/0/real_0000.png"], reason="blury")
    try:
        at = AppTest.from_file(APP, default_timeout=600)
        at.run()
        for page in ("explore", "modes", "audit"):
            at.switch_page(page_file(page)).run()
            assert not at.exception, (page, at.exception)
            assert any(p.proto.popover.label == "Flags: 2 item(s)" for p in at.sidebar.get("popover")), page
            assert at.sidebar.dataframe[-1].value["reason"].tolist() == ["odd one", "odd one", "blury"]
        at.sidebar.multiselect(key="unflag_pick").set_value(["gmm/3/gmm_0300.png — odd one"]).run()
        at.sidebar.button(key="unflag").click().run()
        assert not at.exception, at.exception
        assert [t.value for t in at.toast] == ["Removed 1 flag"]  # shown after the rerun, not lost with it
        assert {k: sorted(v) for k, v in store.reasons().items()} == {"real/0/real_0000.png": ["blury", "odd one"]}
        at.sidebar.selectbox(key="rename_from").set_value("blury").run()
        at.sidebar.text_input(key="rename_to").set_value("blurry").run()
        at.sidebar.button(key="rename").click().run()
        assert [t.value for t in at.toast] == ["Renamed 1 flag"]
        assert {k: sorted(v) for k, v in store.reasons().items()} == {"real/0/real_0000.png": ["blurry", "odd one"]}
        exported = pd.read_csv(io.BytesIO(downloaded(at, "CSV", where=at.sidebar)), keep_default_na=False)
        assert exported["id"].tolist() == ["real/0/real_0000.png"]  # the flags as they stand when clicked
        assert sorted(exported["flag_reasons"].iloc[0].split("; ")) == ["blurry", "odd one"]
    finally:
        store.remove(["real/0/real_0000.png", "gmm/3/gmm_0300.png"])  # the shared cache is shared


@pytest.mark.slow
def test_modes_page_shows_the_top_mode_and_its_items(sample_page):
    from explorer.metrics.vendi import VendiAnalysis

    at, result = sample_page("modes")
    a = VendiAnalysis(q=[1.0], kernel="centred", n_modes=3, top_items=12, exact_loo=False).fit(result.embeddings)
    assert at.metric[0].label == "Weight of mode 1"
    assert at.metric[0].value == f"{a.modes_[0]['weight']:.4f}"
    grids = image_grids(at)
    sides = [side for side in ("positive", "negative") if a.modes_[0][side]]
    assert [len(g) for g in grids] == [len(a.modes_[0][side]) for side in sides]  # a grid per side with items
    if len(sides) < 2:  # the first mode of non-negative features: every item loads positively on it
        assert any(c.value == "No item loads on this side of the mode." for c in at.caption)
    assert at.title[0].value == "Modes"


@pytest.mark.slow
def test_explore_filters_drive_scores_and_grid(sample_page):
    from explorer.metrics.vendi import vendi_scores

    at, result = sample_page("explore")
    assert at.subheader[0].value == f"All filtered items: {len(result.items):,} items"
    source = str(sample_data_dir())  # the dataset as the sidebar names it
    at.sidebar.multiselect(key=f"filter:{source}:label").set_value(["0", "1"]).run()
    assert not at.exception, at.exception
    keep = result.items["label"].isin(["0", "1"]).to_numpy()
    assert at.subheader[0].value == f"All filtered items: {keep.sum():,} items"
    assert len(map_points(at)[0]) == keep.sum()  # the map draws the filtered items, all of them
    rows = kernel_rows(result.embeddings, kernel="centred")[0]  # centred on all chosen sets, not the filter
    expected = vendi_scores(rows[keep], q=[1.0]).scores[1.0]
    assert shown_score(at, "VS q=1") == pytest.approx(expected, abs=0.0051)  # shown to 2 decimals
    at.selectbox(key="explore_color").set_value("entropy").run()
    assert not at.exception and len(image_grids(at)) == 1
    assert map_points(at)[1]["mode"] == "scale"
    # text search over ids and metadata
    at.sidebar.text_input(key="explore_search").set_value("real_0001").run()
    assert at.subheader[0].value == "All filtered items: 1 item"


@pytest.mark.slow
def test_explore_colours_by_cluster_and_keeps_scores_and_grid(sample_page):
    from explorer.maps.clusters import kmeans_labels

    at, result = sample_page("explore")
    colour = at.selectbox(key="explore_color")
    assert {"label", "set", "contribution h_i", "crowdedness", "cluster (k-means)", "flag"} <= set(colour.options)
    colour.set_value("cluster").run()
    assert not at.exception, at.exception
    k = at.number_input(key="explore_k")
    assert k.value == 10
    expected = kmeans_labels(result.embeddings, k=10)
    points, meta = map_points(at)
    assert sorted(meta["names"]) == sorted(f"c{i}" for i in range(10))
    assert np.array(meta["names"])[points["c"].to_numpy()].tolist() == expected.tolist()
    # the selection's scores and grid are unchanged by the colouring
    assert at.subheader[0].value == f"All filtered items: {len(result.items):,} items"
    assert len([m for m in at.metric if m.label.startswith("VS q=")]) == 5 and len(image_grids(at)) == 1

    k.set_value(4).run()
    assert not at.exception, at.exception
    assert sorted(map_points(at)[1]["names"]) == ["c0", "c1", "c2", "c3"]

    # colours are kept between reruns under what they depend on: the kernel too, since another
    # kernel gives every item another contribution
    from explorer.metrics.vendi import cached_analysis

    colour.set_value("entropy").run()
    centred = cached_analysis(kernel_rows(result.embeddings, kernel="centred")[0])["entropy"]
    np.testing.assert_allclose(map_points(at)[0]["c"], centred, rtol=1e-5)
    at.sidebar.selectbox(key="kernel").set_value("cosine").run()
    assert not at.exception, at.exception
    cosine = cached_analysis(result.embeddings)["entropy"]
    np.testing.assert_allclose(map_points(at)[0]["c"], cosine, rtol=1e-5)
    assert not np.allclose(centred, cosine, rtol=1e-3)


@pytest.mark.slow
def test_explore_box_selection_paging_and_a_clicked_item(sample_page):
    from explorer.maps.projection import umap_project
    from explorer.maps.selection import in_box
    from explorer.metrics.vendi import vendi_scores

    at, result = sample_page("explore")
    xy = umap_project(result.embeddings)  # the page's map, from the shared disk cache
    corner = [float(xy[:, 0].min()) - 1, float(xy[:, 1].min()) - 1]
    middle = [float(np.median(xy[:, 0])), float(np.median(xy[:, 1]))]
    drive_map(at, selection={"box": [corner, middle]})
    assert map_points(at)[1]["selection"] == {"box": [corner, middle]}  # this run's shape, not the run before's
    inside = in_box(xy, x=(corner[0], middle[0]), y=(corner[1], middle[1]))
    assert at.subheader[0].value == f"Selection: {inside.sum():,} items"
    expected = vendi_scores(kernel_rows(result.embeddings, kernel="centred")[0][inside], q=[1.0]).scores[1.0]
    assert shown_score(at, "VS q=1") == pytest.approx(expected, abs=0.0051)  # shown to 2 decimals
    grid = image_grids(at)[0]
    assert len(grid) == 24 and all(jpeg[:2] == b"\xff\xd8" for jpeg, _ in grid)
    # flagging the selection (inside the map's fragment) reruns the page: the sidebar counts it at once
    store = FlagStore.for_dataset(load_dataset(sample_data_dir()).source)
    before = store.table()["id"].nunique()
    next(t for t in at.text_input if t.label == "Reason").input("app test flag")
    next(b for b in at.button if b.label == f"Flag {inside.sum():,} selected items").click().run()
    assert not at.exception, at.exception
    mine = store.table().query("reason == 'app test flag'")["id"]
    try:
        assert len(mine) == inside.sum() and store.table()["id"].nunique() > before
        assert [p.proto.popover.label for p in at.sidebar.get("popover")] == \
            [f"Flags: {store.table()['id'].nunique():,} item(s)"]
        assert f"Flagged {inside.sum():,} items" in [t.value for t in at.toast]
    finally:
        store.remove(mine.tolist(), reason="app test flag")  # the shared cache is shared
    # the grid pages through the whole selection
    pages = at.number_input(key=next(k for k in at.session_state if str(k).startswith("explore_page:")))
    assert pages.max == -(-int(inside.sum()) // 24)
    pages.set_value(pages.max).run()
    assert len(image_grids(at)[0]) == int(inside.sum()) - 24 * (pages.max - 1)

    # a click opens the item, also while a lasso is the drag mode: fields, neighbours by cosine
    x = result.embeddings / np.linalg.norm(result.embeddings, axis=1, keepdims=True)
    i = 123
    sims = x @ x[i]
    nearest = [j for j in np.argsort(-sims, kind="stable") if j != i][:8]
    drive_map(at, selection=None, click=i)
    assert at.subheader[-1].value == f"Item {result.items['id'].iloc[i]}"
    neighbours = image_grids(at)[-1]
    assert [caption.rsplit(" · ", 1)[1] for _, caption in neighbours] == [f"{sims[j]:.2f}" for j in nearest]


@pytest.mark.slow
def test_grids_serve_small_cached_thumbnails(tmp_path):
    from PIL import Image

    from explorer.store.cache import cache_root

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / label / f"{i}.png")
    (tmp_path / "photos" / "a" / "broken.png").write_bytes(b"not a png")
    source = str(tmp_path / "photos")
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[source])
    at.session_state["source_choice"] = source
    # 1280-d: the pixels embedder's 3072-d vectors make every spectrum a 3072 x 3072 eigh (seconds)
    at.session_state["embedder"] = "efficientnet-lite0"
    at.switch_page(page_file("explore")).run()  # four items: laid out without UMAP
    assert not at.exception, at.exception
    assert any(e.label == "1 item skipped, with the reasons" for e in at.expander)
    grid = image_grids(at)[0]
    assert len(grid) == 4
    thumbs = sorted((cache_root() / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == 4 and all(Image.open(t).size == (72, 54) for t in thumbs)
    assert sorted(jpeg for jpeg, _ in grid) == sorted(t.read_bytes() for t in thumbs)  # the cached files, inline
    at.switch_page(page_file("modes")).run()
    assert not at.exception, at.exception
    assert {Image.open(t).size for t in (cache_root() / "thumbs").rglob("*.jpg")} == {(72, 54), (80, 60)}


@pytest.mark.slow
def test_explore_draws_every_point_of_a_large_map_and_a_lasso_takes_every_item(tmp_path):
    """30k precomputed vectors: the map draws all of them, a lasso counts every item inside."""
    from explorer.maps.projection import UmapParams, pca_reduce, projection_key
    from explorer.maps.selection import in_polygon
    from explorer.metrics.vendi import vendi_scores
    from explorer.store.cache import NPY, cached

    rng = np.random.default_rng(3)
    x = rng.normal(size=(30_000, 16)).astype(np.float32)
    np.save(tmp_path / "big.npy", x)
    # its maps were made before (reopening a dataset finds them in the cache): PCA coordinates
    # stand in for UMAP's, which would take minutes here and are not what this test is about
    draft = cached("projections", projection_key(x, UmapParams(), "draft"), lambda: pca_reduce(x, dims=2), codec=NPY)
    xy = cached("projections", projection_key(x, UmapParams(), "full"), lambda: 2 * draft, codec=NPY)
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(tmp_path / "big.npy")])
    at.session_state["source_choice"] = str(tmp_path / "big.npy")
    at.switch_page(page_file("explore")).run()
    assert not at.exception, at.exception
    points, _ = map_points(at)  # the draft first, every point of it
    assert len(points) == 30_000 and np.allclose(points[["x", "y"]].to_numpy(), draft)
    assert any(c.value.startswith("Map: draft: UMAP of 20,000 landmark items") for c in at.caption)
    deadline = time.time() + 60  # the full map, started in the background, replaces the draft
    while time.time() < deadline and np.allclose(map_points(at)[0][["x", "y"]].to_numpy(), draft):
        time.sleep(0.5)
        at.run()
    assert np.allclose(map_points(at)[0][["x", "y"]].to_numpy(), xy)
    assert any(c.value == "Map: UMAP of all 30,000 items, refined from the draft." for c in at.caption)

    lasso = [[-0.2, -0.3], [0.3, -0.2], [0.25, 0.3], [-0.3, 0.2]]
    drive_map(at, selection={"lasso": lasso})
    inside = in_polygon(xy, np.array(lasso))
    assert at.subheader[0].value == f"Selection: {inside.sum():,} items"
    expected = vendi_scores(kernel_rows(x, kernel="centred")[0][inside], q=[1.0]).scores[1.0]
    assert shown_score(at, "VS q=1") == pytest.approx(expected, abs=0.0051)  # shown to 2 decimals


def test_the_app_opens_only_what_it_was_started_with(tmp_path):
    """No path box unless enabled; with it, only paths under --allow-dir, and a refusal says the
    same whether the path exists or not (nothing of any file is shown)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("a private line\nanother private line\n")
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="source_choice").options == ["Sample: handwritten digits + model samples"]
    assert not at.sidebar.text_input

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "captions.txt").write_text("\n".join(f"a photo of a cat number {i}" for i in range(12)))
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(allow_dirs=[str(allowed)], path_box=True)
    at.session_state["source_choice"] = "Another path…"
    at.run()
    errors = []
    for path in (secret, tmp_path / "missing.txt", allowed / ".." / "secret.txt", "/etc/passwd"):
        at.sidebar.text_input(key="source_path").set_value(str(path)).run()
        assert not at.exception, at.exception
        errors.append([e.value for e in at.error])
        page_text = " ".join(m.value for m in at.markdown) + " ".join(str(e.value) for e in at.error)
        assert "private" not in page_text
    assert all(e == errors[0] for e in errors) and "opens only" in errors[0][0]
    at.sidebar.text_input(key="source_path").set_value(str(allowed / "captions.txt")).run()
    assert not at.exception and not at.error
    assert [m.label for m in at.metric][:1] == ["VS q=0.1"]


def labelled_folder(root, *, classes=("cats", "dogs"), per_class=6):
    from PIL import Image

    rng = np.random.default_rng(5)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_your_dataset_first_and_kept_across_pages_and_in_the_url(tmp_path):
    folder = labelled_folder(tmp_path / "pets")
    vectors = tmp_path / "vecs.npy"
    np.save(vectors, np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32))
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(folder), str(vectors)])
    at.session_state["embedder"] = "pixels"
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="source_choice").value == str(folder)  # the given path, not the sample
    assert at.query_params["data"] == str(folder)
    at.sidebar.multiselect(key=f"sets:{folder}").set_value(["pets"]).run()
    for page in ("explore", "modes", "compare", "overview"):
        at.switch_page(page_file(page)).run()
        assert not at.exception, (page, at.exception)
        assert at.sidebar.selectbox(key="source_choice").value == str(folder), page
        assert at.sidebar.selectbox(key="embedder").value == "pixels", page
    assert at.query_params["model"] == "pixels"

    # a link (or a reload) reopens the same view; a path the app was not given is ignored
    again = AppTest.from_file(APP, default_timeout=600)
    again.session_state["app_settings"] = AppSettings(sources=[str(folder), str(vectors)])
    again.query_params["data"] = str(vectors)
    again.query_params["model"] = "pixels"
    again.run()
    assert again.sidebar.selectbox(key="source_choice").value == str(vectors)
    assert not again.exception, again.exception
    sneaky = AppTest.from_file(APP, default_timeout=600)
    sneaky.query_params["data"] = "/etc/passwd"
    sneaky.run()
    assert sneaky.sidebar.selectbox(key="source_choice").value.startswith("Sample")


def three_set_vectors(folder, *, n=90):
    """Clustered vectors in three sets (a, b, c) with labels, beside their items.parquet."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    centre = rng.integers(0, 3, n)
    np.save(folder / "vecs.npy", (rng.normal(size=(3, 8)) * 3)[centre] + rng.normal(size=(n, 8)))
    pd.DataFrame({"id": [f"v{i:03d}" for i in range(n)], "set": np.array(["a", "b", "c"])[np.arange(n) % 3],
                  "label": [f"k{c}" for c in centre]}).to_parquet(folder / "items.parquet")
    return folder / "vecs.npy"


def test_sets_colour_and_reference_ride_in_the_url_and_across_pages(tmp_path):
    vectors = str(three_set_vectors(tmp_path / "vectors"))
    at = app_on(vectors, "explore", embedder="pixels")
    at.sidebar.multiselect(key=f"sets:{vectors}").set_value(["a", "b"]).run()
    at.sidebar.selectbox(key="compare_reference").set_value("b").run()
    # the colour menu lives in the map's fragment: the URL must follow it without a full rerun
    at.selectbox(key="explore_color").set_value("set").run()
    assert not at.exception, at.exception
    assert (at.query_params["sets"], at.query_params["colour"], at.query_params["ref"]) == ("a,b", "set", "b")
    for page in ("overview", "modes", "compare", "explore"):
        at.switch_page(page_file(page)).run()
        assert not at.exception, (page, at.exception)
        assert at.sidebar.multiselect(key=f"sets:{vectors}").value == ["a", "b"], page
        assert (at.query_params["sets"], at.query_params["colour"], at.query_params["ref"]) == ("a,b", "set", "b")
        if page == "overview":  # the chosen reference is the grey one, not a set named "real"
            palette = dict(zip(map_points(at)[1]["names"], map_points(at)[1]["palette"]))
            assert palette["b"] == NEUTRAL != palette["a"]
    assert at.selectbox(key="explore_color").value == "set"
    # Overview offers no per-item scores: it shows its default and keeps the choice for Explore
    at.selectbox(key="explore_color").set_value("entropy").run()
    at.switch_page(page_file("overview")).run()
    assert at.selectbox(key="overview_colour").value == "label" and at.query_params["colour"] == "entropy"
    at.switch_page(page_file("explore")).run()
    assert at.selectbox(key="explore_color").value == "entropy"
    # the kernel too: kept across pages, in the URL, and named where its numbers are shown
    assert "kernel" not in at.query_params  # the default, centred cosine, needs no word in the URL
    at.sidebar.selectbox(key="kernel").set_value("rbf").run()
    for page in ("compare", "modes"):
        at.switch_page(page_file(page)).run()
        assert not at.exception, (page, at.exception)
        assert at.sidebar.selectbox(key="kernel").value == "rbf" and at.query_params["kernel"] == "rbf"
        assert any("RBF, σ = " in c.value for c in at.caption), page

    # a link (or a reload) reopens the same view
    again = AppTest.from_file(APP, default_timeout=600)
    again.session_state["app_settings"] = AppSettings(sources=[vectors])
    again.query_params.update({"data": vectors, "model": "pixels", "sets": "a,c", "colour": "set", "ref": "c",
                               "kernel": "cosine"})
    again.run()
    assert not again.exception, again.exception
    assert again.sidebar.multiselect(key=f"sets:{vectors}").value == ["a", "c"]
    assert again.selectbox(key="overview_colour").value == "set"
    again.switch_page(page_file("explore")).run()
    assert not again.exception, again.exception
    assert again.sidebar.selectbox(key="compare_reference").value == "c"
    assert again.sidebar.selectbox(key="kernel").value == "cosine"
    assert again.selectbox(key="explore_color").value == "set"


def test_a_click_on_the_overview_and_compare_maps_opens_the_item(tmp_path):
    import pandas as pd

    vectors = str(three_set_vectors(tmp_path / "vectors"))
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[vectors])
    at.session_state["embedder"] = "pixels"
    at.run()
    assert not at.exception, at.exception
    assert not any(s.value.startswith("Item ") for s in at.subheader)
    drive_map(at, hover=4)  # the pointer rests on a point: its card comes from the server
    assert map_points(at)[1]["hover_card"] == {"index": 4, "img": None, "text": "v004"}
    drive_map(at, click=7)  # Overview draws every chosen item, in order
    assert at.subheader[-1].value == "Item v007"
    assert any(m.value.startswith("**Contribution** h_i") for m in at.markdown)
    at.button(key="overview_close").click().run()
    assert not any(s.value.startswith("Item ") for s in at.subheader)

    # Compare draws the reference (a) and the set looked at (b): its third point is v003
    at.switch_page(page_file("compare")).run()
    assert not at.exception, at.exception
    labels = pd.read_parquet(tmp_path / "vectors" / "items.parquet").set_index("id")["label"]
    texts = map_points(at)[0]["t"].tolist()  # what hovering shows before its card comes: with the label
    assert texts[:3] == [f"a · {labels['v000']} · v000", f"b · {labels['v001']} · v001", f"a · {labels['v003']} · v003"]
    drive_map(at, click=2)
    assert "Item v003" in [s.value for s in at.subheader]
    assert any(m.value.startswith("**Diagnostics** ") for m in at.markdown)


def test_a_broken_flag_store_or_dataset_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """A damaged flag database, a full disk when flagging, or a shard that is no tar: the visitor
    reads one line; no traceback (with server paths and code) reaches the page."""
    from explorer.store.cache import cache_root
    from explorer.store.flags import dataset_key

    folder = labelled_folder(tmp_path / "pets")
    flags = cache_root() / "flags" / f"{dataset_key(str(folder))}.sqlite"
    flags.parent.mkdir(parents=True, exist_ok=True)
    flags.write_bytes(b"not a database" * 100)
    garbage = tmp_path / "broken.tar"
    garbage.write_bytes(b"not a tar" * 100)
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["app_settings"] = AppSettings(sources=[str(folder), str(garbage)])
    at.session_state["embedder"] = "pixels"
    at.run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.sidebar.error] + [e.value for e in at.main.error]
    assert "The flags cannot be read or saved: file is not a database" in shown
    assert "This page cannot be shown: file is not a database" in shown  # the page's own flag store
    assert all("\n" not in m and "Traceback" not in m for m in shown)

    at.sidebar.selectbox(key="source_choice").set_value(str(garbage)).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(f"Cannot open {garbage}: no image samples")
    assert "broken.tar: cannot be read as a tar shard" in errors[0] and "\n" not in errors[0]



def test_the_audit_grids_page_through_every_outlier(tmp_path):
    rng = np.random.default_rng(4)
    # a tight cluster and 60 points scattered in every direction: more outliers than a page holds
    x = np.vstack([5 + 0.05 * rng.normal(size=(400, 8)), rng.normal(size=(60, 8))]).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    at = app_on(str(tmp_path / "x.npy"), "audit", embedder="pixels")
    outliers = int(next(m.value for m in at.metric if m.label == "Outliers").replace(",", ""))
    assert outliers > 24

    def outlier_grid():  # the first grid with scores (vectors show as a table)
        return next(d.value for d in at.dataframe if "score" in d.value.columns)

    assert len(outlier_grid()) == 24
    pages = at.number_input(key=f"audit_outlier_page:{outliers}")
    assert pages.max == -(-outliers // 24)
    pages.set_value(pages.max).run()
    assert len(outlier_grid()) == outliers - 24 * (pages.max - 1)
    assert (np.diff(outlier_grid()["score"].to_numpy()) <= 0).all()  # still most extreme first


def test_a_full_disk_when_flagging_is_said_and_nothing_claimed_saved():
    def page():
        import streamlit as st

        from pages._common import flag_form

        class FullDisk:
            def add(self, ids, **kw):
                raise OSError(28, "No space left on device", "/cache/flags/x.sqlite")

        flag_form(["a", "b"], FullDisk())
        st.write("still here")

    at = AppTest.from_function(page, default_timeout=60)
    at.run()
    at.text_input[0].set_value("blurry")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["The flags were not saved: No space left on device"]
    assert not at.toast and at.markdown[-1].value == "still here"


def test_explore_filters_numbers_by_range_and_many_texts_by_what_they_contain(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(6)
    np.save(tmp_path / "x.npy", rng.normal(size=(90, 8)).astype(np.float32))
    items = pd.DataFrame({"id": [f"v{i:03d}" for i in range(90)], "width": np.arange(90) * 10,
                          "caption": [f"{'red' if i % 3 else 'blue'} thing {i}" for i in range(90)]})
    items.to_parquet(tmp_path / "items.parquet")
    source = str(tmp_path / "x.npy")
    at = app_on(source, "explore", embedder="pixels")
    assert at.subheader[0].value == "All filtered items: 90 items"
    at.sidebar.slider(key=f"range:{source}:width").set_value((100, 390)).run()
    assert at.subheader[0].value == "All filtered items: 30 items"  # widths 100..390
    at.sidebar.text_input(key=f"contains:{source}:caption").set_value("BLUE").run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "All filtered items: 10 items"  # the multiples of 3 from 10 to 39
    assert "caption" not in at.selectbox(key="explore_color").options  # too many values to colour by
