"""Server compute of a map selection at 100k items: the indices inside a lasso, their Vendi scores
and the grid's top items, against the bare numpy work for the same numbers in the same run.

    python benchmarks/ui.py [--n 100000] [--d 512]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from explorer.selection import in_polygon, summarize_selection


def best(f, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d), dtype=np.float32)
    xy = rng.standard_normal((args.n, 2)) * 3
    entropy = rng.random(args.n)
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
    print(f"{args.n:,} items x {args.d}, lasso holding {n_sel:,}: selection update {1000 * t_ours:.0f} ms, "
          f"bare numpy {1000 * t_bare:.0f} ms, ratio {t_ours / t_bare:.2f}")


if __name__ == "__main__":
    main()
