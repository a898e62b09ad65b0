"""Diverse subset selection: speed of k picks from n × d (target: 10k from 1M × 512 in ≤ 5 min
on 2 cores) against the one-at-a-time greedy measured in the same run, and the quality targets
(subset VS₁ ≥ the best of 20 random subsets and ≥ 0.98× a k-center subset of the same k).
Named select_subset.py: a script called select.py would shadow the standard library's select
module, which subprocess imports.

    python benchmarks/select_subset.py                       # 1M × 512, 10k picks (~4 GB of memory)
    python benchmarks/select_subset.py --n 100000 --k 2000   # a quick run
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from explorer.curate.greedy import blocked_greedy
from explorer.curate.select import DiverseSubset, near_threshold
from explorer.data.synthetic import mixture
from explorer.metrics.kernel_rows import kernel_rows


def one_at_a_time_seconds(rows: np.ndarray, picks: int) -> float:
    """Seconds a pick of the plain greedy: every key brought up to date after every pick."""
    key = np.zeros(len(rows))
    start = time.perf_counter()
    i = 0
    for _ in range(picks):
        sims = rows @ rows[i]
        key += sims.astype(np.float64) ** 2
        key[i] = np.inf
        i = int(np.argmin(key))
    return (time.perf_counter() - start) / picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10_000)
    parser.add_argument("--quality-n", type=int, default=20_000, help="items for the quality targets")
    parser.add_argument("--quality-k", type=int, default=200)
    args = parser.parse_args()

    print(f"quality: {args.quality_n:,} x 64 mixture (30 uneven clusters), k = {args.quality_k}, 20 random subsets")
    x, _ = mixture(args.quality_n, dim=64, clusters=30, seed=3)
    for kernel in ("centred", "cosine"):
        s = DiverseSubset(k=args.quality_k, kernel=kernel, q=[1.0, 2.0]).fit(x)
        best, kc = s.random_scores_["best"][1.0], s.kcenter_scores_[1.0]
        print(f"  {s.kernel_info_.describe()}: VS1 {s.scores_[1.0]:.2f}, best random {best:.2f} "
              f"({s.scores_[1.0] / best:.3f}x, target >= 1), mean random {s.random_scores_['mean'][1.0]:.2f}, "
              f"k-center {kc:.2f} ({s.scores_[1.0] / kc:.3f}x, target >= 0.98)")

    print(f"speed: {args.k:,} picks from {args.n:,} x {args.dim} float32")
    start = time.perf_counter()
    x, _ = mixture(args.n, dim=args.dim, clusters=30, seed=0)
    print(f"  data made in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    rows, info = kernel_rows(x, kernel="centred")
    del x
    t_rows = time.perf_counter() - start
    start = time.perf_counter()
    thr = near_threshold(rows)
    t_near = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    picks, _ = blocked_greedy(rows, k=args.k, near=thr, first=0)
    t_greedy, cpu_greedy = time.perf_counter() - start, time.process_time() - cpu
    total = t_rows + t_near + t_greedy
    per_pick = one_at_a_time_seconds(rows, 30)
    baseline = per_pick * args.k
    print(f"  kernel rows ({info.describe()}) {t_rows:.1f} s; near-duplicate threshold {thr:.4f} "
          f"{t_near:.1f} s; blocked greedy {t_greedy:.1f} s ({cpu_greedy:.1f} CPU s); total {total:.1f} s "
          f"(target <= 300 s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  one-at-a-time greedy, measured on 30 picks: {per_pick * 1e3:.0f} ms a pick, "
          f"{baseline:.0f} s for {args.k:,} -> blocked is {baseline / t_greedy:.1f}x faster")
    print(f"  10x the items costs 10x the greedy (O(n d) a pick, O(n d k) in all): ~{10 * t_greedy:.0f} s "
          f"for {10 * args.n:,} items, and {10 * args.n * args.dim * 4 / 2**30:.0f} GiB of float32 rows in memory")
    assert len(set(picks.tolist())) == args.k


if __name__ == "__main__":
    main()
