"""The app's response at 100k items, each against a bare reference measured in the same run:

1. the server compute of a map selection (lasso indices, their Vendi scores, the grid's top
   items) against the bare numpy work for the same numbers;
2. a full warm rerun of the Explore page (every cache warm, as after any click), run through
   Streamlit's AppTest on a 100k-item precomputed-embeddings dataset, against an AppTest rerun
   of a trivial page. The issue's target is a warm rerun within 1 s.

    python benchmarks/ui.py [--n 100000] [--d 512] [--data DIR] [--cache DIR] [--profile OUT.prof]

The first page run embeds nothing (the vectors are given) but makes the UMAP map, the analysis
and the clusters; pass the same --data and --cache again to skip that.
"""
from __future__ import annotations

import argparse
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

    def ours():
        return summarize_selection(x, xy, {"lasso": [lasso]}, rank_by=entropy)

    def bare():
        idx = np.flatnonzero(in_polygon(xy, np.column_stack([lasso["x"], lasso["y"]])))
        b = x[idx].astype(np.float64)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        lam = np.linalg.eigvalsh(b.T @ b / len(idx))
        np.argsort(-entropy[idx])[:24]
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


def page_rerun(source: Path, *, repeats: int, colour: str | None, profile: str | None,
               lasso: dict | None = None) -> None:
    from streamlit.testing.v1 import AppTest

    # widget values set before the first run make Streamlit log a harmless "missing ScriptRunContext"
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=3600)
    at.session_state["cli_sources"] = [str(source)]
    at.session_state["source_choice"] = str(source)
    if colour:
        at.session_state["explore_color"] = colour
    at.switch_page("pages/explore.py")
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the Explore page failed: {at.exception}")
    heading = at.subheader[0].value if len(at.subheader) else "(no subheader)"
    warm = best(at.run, repeats)

    trivial = AppTest.from_string("import streamlit as st\nst.title('Trivial')\nst.write('hello')")
    trivial.run()
    bare = best(trivial.run, repeats)
    colour = at.sidebar.selectbox(key="explore_color").value
    print(f"Explore page on {heading.split(': ')[-1]} (colour by {colour}): first run {cold:.1f} s, "
          f"warm rerun {1000 * warm:.0f} ms, trivial page {1000 * bare:.0f} ms, ratio {warm / bare:.1f}")
    if lasso is not None:
        start = time.perf_counter()
        with_selection(at, lasso)
        first = time.perf_counter() - start
        again = best(lambda: with_selection(at, lasso), repeats)
        print(f"  after a lasso ({at.subheader[0].value}): first rerun {1000 * first:.0f} ms "
              f"(selection computed), warm rerun {1000 * again:.0f} ms, ratio {again / bare:.1f}")
    if profile:
        profile_rerun(at, profile)


def with_selection(at, lasso: dict) -> None:
    """Rerun as if a lasso had been drawn on the map: AppTest has no plotly widget, so the
    selection goes in as the chart's widget state, the way the browser sends it (private API)."""
    import json

    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    states = WidgetStates()
    states.CopyFrom(at._tree.get_widget_states())
    state = states.widgets.add()
    state.id = at.get("plotly_chart")[0].proto.id
    state.string_value = json.dumps({"selection": {"points": [], "point_indices": [], "box": [],
                                                   "lasso": [lasso]}})
    at._run(states)
    if at.exception:
        raise SystemExit(f"the Explore page failed: {at.exception}")


def map_lasso(source: Path) -> dict:
    """A 60-gon around the middle of the map holding roughly a third of the items."""
    from explorer.maps.projection import umap_project

    xy = umap_project(np.load(source))  # the page's map, from the disk cache
    centre, radius = np.median(xy, axis=0), np.percentile(np.abs(xy - np.median(xy, axis=0)), 50, axis=0)
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    return {"x": (centre[0] + radius[0] * 1.2 * np.cos(angles)).tolist(),
            "y": (centre[1] + radius[1] * 1.2 * np.sin(angles)).tolist()}


def profile_rerun(at, out: str) -> None:
    """cProfile one warm rerun. The page runs in the script runner's thread, which a profiler
    started here would not see, so the profiler is started inside that thread."""
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
        at.run()
    finally:
        ScriptRunner._run_script = original
    profiler.dump_stats(out)
    print(f"profile of one warm rerun written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--data", type=Path, help="folder for the generated dataset (default: a temporary one)")
    parser.add_argument("--cache", type=Path, help="VENDISCOPE_CACHE for the page (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one warm Explore rerun here")
    parser.add_argument("--skip-selection", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    args = parser.parse_args()
    if not args.skip_selection:
        selection_compute(args.n, args.d)
    if args.skip_page:
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VENDISCOPE_CACHE"] = str(args.cache or Path(tmp) / "cache")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        source = make_dataset(args.data or Path(tmp) / "data", args.n, args.d)
        page_rerun(source, repeats=args.repeats, colour=None, profile=args.profile, lasso=map_lasso(source))
        page_rerun(source, repeats=args.repeats, colour="cluster", profile=None)


if __name__ == "__main__":
    main()
