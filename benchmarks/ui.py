"""The app's response, each against a bare reference measured in the same run:

1. the server compute of a map selection (lasso indices, their Vendi scores, the grid's order)
   at --n items against the bare numpy work for the same numbers;
2. the Explore page through Streamlit's AppTest, warm (as after any click), on the sample data
   and on an --n-item precomputed-embeddings dataset: a plain rerun, the rerun after a new lasso
   and after a colour change, against an AppTest rerun of a trivial page. AppTest reruns the
   whole page, so these are upper bounds;
3. what the browser waits for: the server time of the map's fragment alone (in the browser a
   lasso or a colour change reruns only that fragment), timed inside the page: after a new lasso
   against the bare numpy work for the same selection (its polygon test, exact Vendi scores and
   order), after a colour change against a rerun of the fragment with nothing changed, and after
   choosing k-means colouring (a new k each time) against the same k-means alone. Targets on the
   sample data, warm: lasso and colour change within 300 ms;
4. choosing another reference on the Compare page (sample data) against the same comparison made
   from scratch, without the per-set results the page reuses.

    python benchmarks/ui.py [--n 100000] [--d 512] [--data DIR] [--cache DIR] [--profile OUT.prof]

The first page run embeds nothing (the vectors are given) but makes the UMAP map, the analysis
and the clusters; pass the same --data and --cache again to skip that.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.maps.selection import in_polygon, summarize_selection  # noqa: E402
from explorer.metrics.subsets import SubsetScorer  # noqa: E402

FRAGMENT_SECONDS: dict[str, list[float]] = {}  # fragment name -> server time of each of its runs


def time_fragments() -> None:
    """Time every fragment the pages define from now on (st.fragment wrapped): the server work a
    fragment-only rerun does, measured in AppTest's full reruns. functools.wraps keeps the name
    and module Streamlit derives a fragment's id from."""
    import streamlit as st

    original = st.fragment

    def timed(func=None, *, run_every=None):
        if func is None:
            return lambda f: timed(f, run_every=run_every)

        @functools.wraps(func)
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                FRAGMENT_SECONDS.setdefault(func.__name__, []).append(time.perf_counter() - start)

        return original(run, run_every=run_every)

    st.fragment = timed


def fragment_time(action, name: str = "map_and_selection") -> float:
    """Seconds the fragment ``name`` ran during ``action()`` (one full AppTest rerun)."""
    FRAGMENT_SECONDS.pop(name, None)
    action()
    runs = FRAGMENT_SECONDS.get(name)
    if not runs:
        raise SystemExit(f"the fragment {name} did not run")
    return runs[-1]


def best(f, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def selection_compute(n: int, d: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    xy = rng.standard_normal((n, 2)) * 3
    entropy = rng.random(n)
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    lasso = {"x": (np.cos(angles) * 3).tolist(), "y": (np.sin(angles) * 3).tolist()}  # ~40% of the points

    shape = {"lasso": np.column_stack([lasso["x"], lasso["y"]]).tolist()}

    scorer = SubsetScorer().fit(x)  # made once per dataset in the app

    def ours():
        return summarize_selection(xy, shape, rank_by=entropy, scorer=scorer)

    def bare():
        idx = np.flatnonzero(in_polygon(xy, np.column_stack([lasso["x"], lasso["y"]])))
        b = x[idx].astype(np.float64)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        lam = np.linalg.eigvalsh(b.T @ b / len(idx))
        np.argsort(-entropy[idx])
        return lam

    ours()
    t_ours, t_bare = best(ours), best(bare)
    n_sel = len(ours()["indices"])
    print(f"{n:,} items x {d}, lasso holding {n_sel:,}: selection update {1000 * t_ours:.0f} ms, "
          f"bare numpy {1000 * t_bare:.0f} ms, ratio {t_ours / t_bare:.2f}")


def make_dataset(folder: Path, n: int, d: int) -> Path:
    """Clustered vectors (40 centres) in two sets with ten labels, as ``vendiscope embed`` writes
    them: embeddings.npy and items.parquet. Kept when the folder already holds the same shape."""
    path = folder / "embeddings.npy"
    if path.is_file() and np.load(path, mmap_mode="r").shape == (n, d):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centre = rng.integers(0, 40, n)
    x = rng.standard_normal((40, d), dtype=np.float32)[centre] + 0.7 * rng.standard_normal((n, d), dtype=np.float32)
    np.save(path, x)
    pd.DataFrame({"id": [f"item{i:06d}" for i in range(n)],
                  "set": np.where(rng.random(n) < 0.5, "real", "model"),
                  "label": (centre % 10).astype(str)}).to_parquet(folder / "items.parquet")
    return path


def bare_lasso(x: np.ndarray, xy: np.ndarray, shape: dict, rank: np.ndarray) -> float:
    """Seconds of the bare numpy work for a lasso's numbers: which points, their exact cosine
    Vendi spectrum (d x d, float64) and their order."""
    def work():
        idx = np.flatnonzero(in_polygon(xy, np.asarray(shape["lasso"])))
        b = x[idx].astype(np.float64)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        lam = np.linalg.eigvalsh(b.T @ b / len(idx))
        np.argsort(-rank[idx])
        return lam

    return best(work, 3)


def page_rerun(source: Path | None, *, repeats: int, profile: str | None, lasso: list | None = None,
               colours: tuple[str, str] = ("set", "label"), data: tuple | None = None, kmeans: int = 0,
               compare: bool = False) -> None:
    from streamlit.testing.v1 import AppTest

    from conftest import APP, drive_map, page_file
    from explorer.cli.app import AppSettings

    # widget values set before the first run make Streamlit log a harmless "missing ScriptRunContext"
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    at = AppTest.from_file(APP, default_timeout=3600)
    if source is not None:
        at.session_state["app_settings"] = AppSettings(sources=[str(source)])
        at.session_state["source_choice"] = str(source)
    at.switch_page(page_file("explore"))
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the Explore page failed: {at.exception}")
    heading = at.subheader[0].value if len(at.subheader) else "(no subheader)"
    # the full map is refined in the background after a draft: time the page after it, not beside it
    from pages._common import shared_work

    start = time.perf_counter()
    shared_work().wait_background()
    if (waited := time.perf_counter() - start) > 1:
        at.run()  # the page now shows the refined map
        print(f"  (waited {waited:.0f} s for the full map refined in the background before timing)")
    warm = best(at.run, repeats)
    trivial = AppTest.from_string("import streamlit as st\nst.title('Trivial')\nst.write('hello')")
    trivial.run()
    bare = best(trivial.run, repeats)
    print(f"Explore on {heading.split(': ')[-1]}: first run {cold:.1f} s, warm rerun {1000 * warm:.0f} ms, "
          f"trivial page {1000 * bare:.0f} ms, ratio {warm / bare:.1f}")
    if lasso is not None:
        times, inside = [], []
        for k in range(repeats):  # a new shape each time: the selection is computed, not remembered
            shape = {"lasso": [[x * (1 + 0.01 * k), y] for x, y in lasso]}
            start = time.perf_counter()
            inside.append(fragment_time(lambda shape=shape: drive_map(at, selection=shape)))
            times.append(time.perf_counter() - start)
        print(f"  a new lasso ({at.subheader[0].value}): whole page {1000 * statistics.median(times):.0f} ms, "
              f"ratio {statistics.median(times) / bare:.1f} to the trivial page")
        if data is not None:
            numpy = bare_lasso(data[0], data[1], {"lasso": lasso}, data[2])
            print(f"    map fragment {1000 * statistics.median(inside):.0f} ms (target 300 ms on the sample data), "
                  f"bare numpy {1000 * numpy:.0f} ms, ratio {statistics.median(inside) / numpy:.1f}")
    times, inside = [], []
    for k in range(repeats):
        start = time.perf_counter()
        inside.append(fragment_time(lambda k=k: at.selectbox(key="explore_color").set_value(colours[k % 2]).run()))
        times.append(time.perf_counter() - start)
    plain = statistics.median(fragment_time(at.run) for _ in range(repeats))
    print(f"  a colour change ({' / '.join(colours)}): whole page {1000 * statistics.median(times):.0f} ms, "
          f"ratio {statistics.median(times) / bare:.1f} to the trivial page")
    print(f"    map fragment {1000 * statistics.median(inside):.0f} ms (target 300 ms on the sample data), "
          f"fragment rerun with nothing changed {1000 * plain:.0f} ms, ratio {statistics.median(inside) / plain:.1f}")
    if kmeans and data is not None:
        from explorer.maps.clusters import kmeans_labels

        at.selectbox(key="explore_color").set_value("cluster").run()  # k = 10, the page's default
        inside, alone = [], []
        for k in range(kmeans, kmeans + 3):  # a new k each time: computed, not remembered
            inside.append(fragment_time(lambda k=k: at.number_input(key="explore_k").set_value(k).run()))
            start = time.perf_counter()
            kmeans_labels(data[0], k=k)
            alone.append(time.perf_counter() - start)
        page, alone_s = statistics.median(inside), statistics.median(alone)
        print(f"  k-means colouring (k = {kmeans}..{kmeans + 2}, new each time): map fragment {1000 * page:.0f} ms, "
              f"the same k-means alone {1000 * alone_s:.0f} ms, ratio {page / alone_s:.2f}")
        at.selectbox(key="explore_color").set_value(colours[0]).run()
    if compare and data is not None:
        compare_reference(at, data[0], data[3])
    if profile:
        profile_rerun(at, profile)
        if lasso is not None:  # and one new lasso, a shape not drawn before
            from conftest import drive_map

            shape = {"lasso": [[x * 0.97, y * 1.01] for x, y in lasso]}
            profile_rerun(at, profile.replace(".prof", "") + "-lasso.prof",
                          action=lambda: drive_map(at, selection=shape), what="one new lasso")


def compare_reference(at, x: np.ndarray, items: pd.DataFrame) -> None:
    """Compare with its default reference, then another: the page's time for the change against
    the same comparison from scratch (no per-set results reused, nothing read from disk)."""
    import shutil

    from conftest import page_file
    from explorer.compare.comparison import Comparison
    from explorer.store.cache import cache_root

    # whole comparisons kept on disk by an earlier run would answer at once: keep only what the
    # page is meant to reuse, the per-set results ("compare-sets")
    shutil.rmtree(cache_root() / "compare", ignore_errors=True)
    at.switch_page(page_file("compare")).run()
    if at.exception:
        raise SystemExit(f"the Compare page failed: {at.exception}")
    choice = at.sidebar.selectbox(key="compare_reference")
    first = choice.value
    other = next(s for s in choice.options if s != first)
    start = time.perf_counter()
    choice.set_value(other).run()
    page = time.perf_counter() - start
    start = time.perf_counter()
    Comparison(reference=other).fit(x, items)
    scratch = time.perf_counter() - start
    print(f"  Compare, reference {first} -> {other}: page {page:.1f} s, the comparison from scratch "
          f"{scratch:.1f} s, ratio {page / scratch:.2f}")


def map_lasso(xy: np.ndarray) -> list:
    """A 60-gon around the middle of the map holding roughly a third of the items."""
    centre, radius = np.median(xy, axis=0), np.percentile(np.abs(xy - np.median(xy, axis=0)), 50, axis=0)
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    return np.column_stack([centre[0] + radius[0] * 1.2 * np.cos(angles),
                            centre[1] + radius[1] * 1.2 * np.sin(angles)]).tolist()


def profile_rerun(at, out: str, *, action=None, what: str = "one warm rerun") -> None:
    """cProfile ``action`` (default: one warm rerun). The page runs in the script runner's
    thread, which a profiler started here would not see, so the profiler is started inside that
    thread."""
    import cProfile

    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    profiler, original = cProfile.Profile(), ScriptRunner._run_script

    def profiled(self, rerun_data):
        profiler.enable()
        try:
            return original(self, rerun_data)
        finally:
            profiler.disable()

    ScriptRunner._run_script = profiled
    try:
        (action or at.run)()
    finally:
        ScriptRunner._run_script = original
    profiler.dump_stats(out)
    print(f"profile of {what} written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--data", type=Path, help="folder for the generated dataset (default: a temporary one)")
    parser.add_argument("--cache", type=Path, help="VENDISCOPE_CACHE for the page (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one warm Explore rerun here (and of a new lasso "
                                          "beside it, as NAME-lasso.prof)")
    parser.add_argument("--skip-selection", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--kmeans", type=int, default=5, help="first k of the k-means colouring rows (0: skip)")
    parser.add_argument("--skip-compare", action="store_true", help="no reference change on Compare")
    args = parser.parse_args()
    time_fragments()
    if not args.skip_selection:
        selection_compute(args.n, args.d)
    if args.skip_page:
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VENDISCOPE_CACHE"] = str(args.cache or Path(tmp) / "cache")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from explorer.data.datasets import load_dataset, sample_data_dir
        from explorer.embed.pipeline import embed_dataset
        from explorer.embed.registry import resolve_embedder
        from explorer.maps.projection import umap_project
        from explorer.metrics.vendi import cached_analysis

        sample = embed_dataset(load_dataset(sample_data_dir()), resolve_embedder("auto")[0])
        xy = umap_project(sample.embeddings)
        rank = np.asarray(cached_analysis(sample.embeddings)["entropy"])
        page_rerun(None, repeats=args.repeats, profile=None, lasso=map_lasso(xy), kmeans=args.kmeans,
                   data=(sample.embeddings, xy, rank, sample.items), compare=not args.skip_compare)
        if args.n:
            source = make_dataset(args.data or Path(tmp) / "data", args.n, args.d)
            x = np.load(source)
            xy = umap_project(x)
            page_rerun(source, repeats=args.repeats, profile=args.profile, lasso=map_lasso(xy), kmeans=args.kmeans,
                       data=(x, xy, np.asarray(cached_analysis(x)["entropy"]), None))


if __name__ == "__main__":
    main()
