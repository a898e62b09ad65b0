"""A million items through every stage, each stage's wall time and peak memory, and ratios
against baselines measured in the same run.

Data: ``--n`` unit rows of ``--dim`` from a mixture of 30 clusters of uneven size, each varying
along ``--intrinsic`` directions of its own as real embeddings do (explorer.data.synthetic.mixture;
``--intrinsic 0`` fills every dimension with noise, the worst case of approximate search).
Stages:

- score: Vendi scores of every order with per-item contributions (explorer.metrics.vendi);
- knn: the neighbour backend against exact search on a 50k subsample (time ratio, recall@10);
- map-draft, map-full: the progressive map of every item, with the share of each item's 10
  nearest 2-D neighbours in its own cluster; and the full map against umap-learn's defaults on a
  100k subsample (time ratio);
- compare: the reference (``--n`` items) against two sample sets of ``--samples`` items, one from
  the same law, one collapsed onto 10 of the 30 clusters; checks that the collapsed set's lost
  clusters, and only those, are flagged;
- prdc: PRDC on the approximate path against the exact path on 50k items (largest difference);
- lasso: a lasso holding ~30% of the map scored (explorer.metrics.subsets), once warm.

    python benchmarks/scale.py                          # 1M x 512, every stage (~40 min on 2 cores)
    python benchmarks/scale.py --n 300000 --dim 256 --samples 100000 --stages compare
    python benchmarks/scale.py --device cuda            # the GPU paths (neighbours, cuML UMAP)

Peak memory is the process's resident set sampled every 50 ms during the stage, less what it
held before the stage, next to the size of the embeddings the stage reads.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.data.synthetic import mixture  # noqa: E402

INTRINSIC: list[int | None] = [24]  # set from --intrinsic
STAGES = ("score", "knn", "map-draft", "map-full", "compare", "prdc", "lasso")


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Stage:
    """Wall time and peak resident memory of a block, sampled in a thread."""

    def __init__(self, name: str, data_bytes: int) -> None:
        self.name, self.data_bytes = name, data_bytes

    def __enter__(self) -> Stage:
        self.before = rss()
        self.peak = self.before
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        self.start = time.perf_counter()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss())
        gb = 1 << 30
        read = max(self.data_bytes, 1)
        ratios = (f"; embeddings read {self.data_bytes / gb:.2f} GB, peak/embeddings {self.peak / read:.2f}, "
                  f"stage's increase/embeddings {(self.peak - self.before) / read:.2f}" if self.data_bytes else "")
        print(f"[{self.name}] {self.seconds:,.1f} s · peak RSS {self.peak / gb:.2f} GB "
              f"(+{(self.peak - self.before) / gb:.2f} GB in the stage{ratios})", flush=True)


class StageLog:
    """A progress callback that prints each new stage a library call reports, with the seconds
    since the start: where a long stage's time goes."""

    def __init__(self) -> None:
        self.start, self.last = time.perf_counter(), ""

    def __call__(self, done: int, total: int, stage: str) -> None:
        if stage != self.last:
            print(f"    {time.perf_counter() - self.start:8.1f} s  {stage}", flush=True)
            self.last = stage


def timed(f: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = f()
    return time.perf_counter() - start, value


def stage_score(x: np.ndarray) -> None:
    from explorer.metrics.vendi import VendiAnalysis

    with Stage("score", x.nbytes):
        a = VendiAnalysis(contributions=True, exact_loo=False).fit(x)
    print(f"  VS: { {k: round(v, 2) for k, v in a.scores_.items()} }; contributions of {len(a.contributions_):,} items")


def stage_knn(x: np.ndarray, method: str) -> None:
    from explorer.maps.projection import pca_reduce
    from explorer.neighbors.exact import cross_knn as exact_cross_knn
    from explorer.neighbors.search import knn

    rng = np.random.default_rng(1)
    sub = pca_reduce(x[np.sort(rng.choice(len(x), min(len(x), 50_000), replace=False))], dims=50)
    with Stage("knn", sub.nbytes):
        t_backend, found = timed(lambda: knn(sub, k=10, method=method))
    t_exact, (truth, _) = timed(lambda: exact_cross_knn(sub, sub, k=10, exclude_self=True))
    hits = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(found.indices, truth)])
    print(f"  {len(sub):,} items, 50-d, k = 10: backend {found.report.describe()} {t_backend:.1f} s; "
          f"exact {t_exact:.1f} s; ratio {t_backend / t_exact:.2f}; recall@10 over every item {hits:.3f}")


def stage_maps(x: np.ndarray, labels: np.ndarray, cache: str, method: str, baseline: bool,
               qualities: tuple[str, ...] = ("draft", "full")) -> None:
    from explorer.maps.projection import UmapParams, umap_project
    from explorer.maps.quality import neighbour_agreement

    params = UmapParams(neighbors=method)
    for quality in qualities:
        with Stage(f"map-{quality}", x.nbytes):
            coords = umap_project(x, params=params, quality=quality, cache_dir=cache, progress=StageLog())
        print(f"  10-NN agreement with the clusters: {neighbour_agreement(coords, labels, k=10):.4f}")
    if not baseline:
        return
    import umap

    rng = np.random.default_rng(2)
    sub = np.sort(rng.choice(len(x), min(len(x), 100_000), replace=False))
    t_ours, ours = timed(lambda: umap_project(x[sub], params=params, quality="full", cache_dir=tempfile.mkdtemp()))
    t_umap, theirs = timed(lambda: umap.UMAP().fit_transform(x[sub]))
    print(f"  100k subsample: our full map {t_ours:.1f} s (agreement {neighbour_agreement(ours, labels[sub]):.4f}); "
          f"umap-learn defaults {t_umap:.1f} s (agreement {neighbour_agreement(theirs, labels[sub]):.4f}); "
          f"ratio {t_ours / t_umap:.2f} (target <= 0.5)")


def stage_compare(x: np.ndarray, labels: np.ndarray, n_samples: int, dim: int, method: str) -> None:
    from explorer.compare.comparison import Comparison

    good, good_labels = mixture(n_samples, dim=dim, seed=11, centre_seed=0, intrinsic=INTRINSIC[0])
    kept = list(range(10))
    bad, bad_labels = mixture(n_samples, dim=dim, seed=12, centre_seed=0, keep=kept, intrinsic=INTRINSIC[0])
    data = np.concatenate([x, good, bad])
    del good, bad
    sets = ["ref"] * len(x) + ["same"] * n_samples + ["collapsed"] * n_samples
    items = pd.DataFrame({"id": np.arange(len(data)).astype(str), "set": sets,
                          "label": np.concatenate([labels, good_labels, bad_labels]).astype(str)})
    began: dict[str, float] = {}  # each step of the comparison and when it first reported

    def note(done: int, total: int, stage: str) -> None:
        began.setdefault(stage, time.perf_counter())

    with Stage("compare", data.nbytes):
        c = Comparison(reference="ref", n_boot=5, neighbors=method).fit(data, items, progress=note)
    ended = time.perf_counter()
    steps = sorted(began.items(), key=lambda kv: kv[1])
    for (stage, t0), (_, t1) in zip(steps, [*steps[1:], ("", ended)]):
        print(f"  {stage}: {t1 - t0:.1f} s")
    summary = c.summary()
    for name in ("same", "collapsed"):
        s = summary["sets"][name]
        print(f"  {name}: VS1 ratio {s['vs1_ratio']:.3f}, precision {s['precision']:.3f}, recall {s['recall']:.3f}, "
              f"density {s['density']:.3f}, coverage {s['coverage']:.3f}, collapsed classes {s['collapsed_classes']}")
    flagged = {int(r["class"]) for r in summary["sets"]["collapsed"]["collapsed"]}
    lost = set(range(30)) - set(kept)
    same_flags = summary["sets"]["same"]["collapsed_classes"]
    print(f"  collapsed set: flagged classes = the 20 lost ones: {flagged == lost} "
          f"(flagged {len(flagged)}, lost {len(lost)}); same-law set flags {same_flags}")
    print(f"  neighbours: {summary['neighbors']}")
    for name in ("same", "collapsed"):
        how = summary["sets"][name]["prdc_method"]
        print(f"  {name}'s sample balls (recall): {how.get('sample_balls', how['balls'])}")


def stage_prdc(dim: int) -> None:
    from explorer.metrics.prdc import prdc

    real, _ = mixture(50_000, dim=dim, seed=21, centre_seed=0, intrinsic=INTRINSIC[0])
    fake, _ = mixture(50_000, dim=dim, seed=22, centre_seed=0, keep=list(range(20)), intrinsic=INTRINSIC[0])
    with Stage("prdc", real.nbytes + fake.nbytes):
        t_approx, approx = timed(lambda: prdc(real, fake, k=5, method="hnsw"))
    t_exact, exact = timed(lambda: prdc(real, fake, k=5, method="exact"))
    diffs = {m: abs(getattr(approx, m) - getattr(exact, m)) for m in ("precision", "recall", "density", "coverage")}
    print(f"  50k vs 50k: approximate {t_approx:.1f} s, exact {t_exact:.1f} s, ratio {t_approx / t_exact:.2f}; "
          f"largest difference {max(diffs.values()):.4f} ({ {k: round(v, 4) for k, v in diffs.items()} }; "
          f"target <= 0.01)")


def stage_lasso(x: np.ndarray, cache: str, method: str) -> None:
    from explorer.maps.projection import UmapParams, umap_project
    from explorer.maps.selection import summarize_selection
    from explorer.metrics.subsets import SubsetScorer

    xy = umap_project(x, params=UmapParams(neighbors=method), quality="draft", cache_dir=cache)
    lo, hi = np.percentile(xy, [0, 100], axis=0)
    # a box over the left part of the map, widened until it holds ~30% of the items
    for share in np.linspace(0.05, 1.0, 60):
        right = lo[0] + share * (hi[0] - lo[0])
        if (xy[:, 0] <= right).mean() >= 0.3:
            break
    lasso = {"lasso": [[lo[0] - 1, lo[1] - 1], [right, lo[1] - 1], [right, hi[1] + 1], [lo[0] - 1, hi[1] + 1]]}
    rank = np.random.default_rng(3).random(len(x))
    t_fit, scorer = timed(lambda: SubsetScorer().fit(x))
    with Stage("lasso", x.nbytes):
        t, summary = timed(lambda: summarize_selection(xy, lasso, rank_by=rank, scorer=scorer))
    print(f"  {len(summary['indices']):,} items selected: {t:.2f} s on the server (target <= 1 s); "
          f"the whole set's Gram made once in {t_fit:.1f} s when the dataset opens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--samples", type=int, default=200_000, help="items in each compared sample set")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--intrinsic", type=int, default=24, help="directions each cluster varies along (0: all)")
    parser.add_argument("--no-umap-baseline", action="store_true", help="skip umap-learn's defaults on 100k")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    method = "cuda" if args.device == "cuda" else "auto"
    print(f"{args.n:,} x {args.dim}, stages {', '.join(stages)}, device {args.device}, {os.cpu_count()} CPUs",
          flush=True)
    with Stage("data", 0):
        INTRINSIC[0] = args.intrinsic or None
        x, labels = mixture(args.n, dim=args.dim, seed=0, intrinsic=INTRINSIC[0])
    cache = tempfile.mkdtemp(prefix="vendiscope-scale-")
    if "score" in stages:
        stage_score(x)
    if "knn" in stages:
        stage_knn(x, method)
    qualities = tuple(q for q in ("draft", "full") if f"map-{q}" in stages)
    if qualities:  # the full map starts from the draft, made (and timed) first when it is missing
        stage_maps(x, labels, cache, method, baseline="full" in qualities and not args.no_umap_baseline,
                   qualities=qualities)
    if "lasso" in stages:
        stage_lasso(x, cache, method)
    if "prdc" in stages:
        stage_prdc(args.dim)
    if "compare" in stages:
        stage_compare(x, labels, args.samples, args.dim, method)


if __name__ == "__main__":
    main()
