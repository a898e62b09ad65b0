"""Speed and memory of the diversity engine, as ratios to bare numpy work in the same run.

1. n x d float32 unit vectors in an .npy file (default 1M x 512). Each configuration runs in a
   fresh process (so its peak memory can be read) and is timed end to end, file load included:
   - baseline:            np.load (mmap) + X^T X accumulated in float64 over batches + eigh
   - `vendiscope score`:  the CLI's code path, all five orders
   - baseline + X @ V:    the same plus one more pass projecting the rows on the eigenvectors
   - `score --contributions`: entropy split, leave-one-out, crowdedness, modes, parquet written
2. Speed-up over a naive n x n computation (K = X X^T, eigvalsh(K/n)) at n = 10k, with both
   sets of values printed.
3. RBF kernel on 100k clustered items (automatic method: Nystrom), timed, and its VS_1 against
   the exact n x n kernel on a 5k subsample (the same subsample for both).

    python benchmarks/diversity.py [--n 1000000] [--d 512] [--naive-n 10000]
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BASELINE = """
import sys, numpy as np
x = np.load(sys.argv[1], mmap_mode="r")
gram = np.zeros((x.shape[1], x.shape[1]))
for s in range(0, x.shape[0], 65536):
    b = np.asarray(x[s:s + 65536], dtype=np.float64)
    gram += b.T @ b
vals, vecs = np.linalg.eigh(gram / x.shape[0])
if sys.argv[2] == "project":
    for s in range(0, x.shape[0], 65536):
        np.asarray(x[s:s + 65536], dtype=np.float64) @ vecs
"""


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time and peak RSS (GB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # KB -> GB (max over children)
    return elapsed, peak, proc.stdout


def make_data(path: Path, n: int, d: int) -> None:
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, 100_000):
        b = rng.standard_normal((min(100_000, n - s), d), dtype=np.float32)
        out[s:s + len(b)] = b / np.linalg.norm(b, axis=1, keepdims=True)
    out.flush()
    del out


def scale(n: int, d: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        make_data(path, n, d)
        size = path.stat().st_size / 1e9
        py = sys.executable
        print(f"input: {n:,} x {d} float32 = {size:.2f} GB")
        # peak RSS is a running maximum over all children, so run the smaller jobs first
        t_base, _, _ = run([py, "-c", BASELINE, str(path), "plain"])
        t_ours, peak_ours, out = run([py, "-m", "explorer.cli", "score", str(path), "--json"])
        t_base2, _, _ = run([py, "-c", BASELINE, str(path), "project"])
        t_contrib, peak_contrib, _ = run([py, "-m", "explorer.cli", "score", str(path), "--json",
                                          "--contributions", str(Path(tmp) / "c.parquet")])
        print(f"scores:        {t_ours:7.2f} s  vs baseline {t_base:7.2f} s  ratio {t_ours / t_base:.2f}")
        print(f"contributions: {t_contrib:7.2f} s  vs baseline {t_base2:7.2f} s  ratio {t_contrib / t_base2:.2f}")
        print(f"peak memory:   {peak_contrib:.2f} GB = {peak_contrib / size:.2f}x the input "
              f"(scores only: {peak_ours:.2f} GB)")
        print("scores:", json.loads(out)["scores"])


def naive(n: int, d: int) -> None:
    from explorer.metrics.spectrum import DEFAULT_ORDERS, hill_number
    from explorer.metrics.vendi import vendi_scores

    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, d)).astype(np.float32)
    times = []
    for _ in range(5):  # best of 5: one naive run takes a minute, ours under 0.1 s
        start = time.perf_counter()
        ours = vendi_scores(x, q=DEFAULT_ORDERS).scores
        times.append(time.perf_counter() - start)
    t_ours = min(times)
    start = time.perf_counter()
    xn = x.astype(np.float64)
    xn /= np.linalg.norm(xn, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(xn @ xn.T / n)
    lam = lam[lam > 1e-12 * lam.max()]
    ref = {q: hill_number(lam, q) for q in DEFAULT_ORDERS}
    t_naive = time.perf_counter() - start
    print(f"n = {n:,}: ours {t_ours:.3f} s (best of 5), naive n x n (eigvalsh) {t_naive:.2f} s, "
          f"speed-up {t_naive / t_ours:,.0f}x")
    worst = 0.0
    for q in DEFAULT_ORDERS:
        print(f"  VS_{q:<4} ours {ours[q]:.12f}  naive {ref[q]:.12f}")
        worst = max(worst, abs(ours[q] - ref[q]))
    print(f"  largest difference {worst:.2e}" + ("" if math.isfinite(worst) else " (!)"))


def rbf(n: int, d: int, sub: int) -> None:
    from explorer.metrics.features import compute_spectrum, plan_features
    from explorer.metrics.vendi import vendi_scores

    rng = np.random.default_rng(2)
    centers = rng.standard_normal((50, d)) * 0.6
    x = (centers[rng.integers(0, 50, n)] + rng.standard_normal((n, d)) / np.sqrt(d) * 4).astype(np.float32)
    start = time.perf_counter()
    result = vendi_scores(x, kernel="rbf")
    elapsed = time.perf_counter() - start
    s = result.spectrum
    print(f"RBF on {n:,} x {d}: {elapsed:.1f} s, method {s.method}, sigma {s.sigma:.4f}, "
          f"VS_1 {result.scores[1.0]:.3f}, stated error {100 * s.approx_error[1.0]:.2f}%")
    idx = np.sort(rng.choice(n, sub, replace=False))
    exact = compute_spectrum(x[idx], plan=plan_features(x[idx], kernel="rbf", method="exact", sigma=s.sigma))
    approx = vendi_scores(x[idx], kernel="rbf", method="nystrom", sigma=s.sigma, q=[1.0])
    e, a = exact.vendi(1.0)[1.0], approx.scores[1.0]
    print(f"  on a {sub:,} subsample: exact VS_1 {e:.4f}, nystrom {a:.4f}, error {100 * abs(a - e) / e:.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--naive-n", type=int, default=10_000)
    parser.add_argument("--rbf-n", type=int, default=100_000)
    parser.add_argument("--only", choices=("naive", "scale", "rbf"))
    args = parser.parse_args()
    if args.only in (None, "naive"):
        naive(args.naive_n, args.d)
    if args.only in (None, "scale"):
        scale(args.n, args.d)
    if args.only in (None, "rbf"):
        rbf(args.rbf_n, args.d, 5000)


if __name__ == "__main__":
    main()
