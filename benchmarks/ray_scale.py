"""Vendi scores of ``--n`` x ``--dim`` embeddings on a local Ray cluster against the
single-process path, on the same ``.npy``: wall time and its ratio, the distributed run's stages,
peak memory per Ray worker, and the largest relative difference between the two runs' scores.

    python benchmarks/ray_scale.py                       # 4M x 512 (an 8 GB .npy in a temp folder)
    python benchmarks/ray_scale.py --n 500000 --cpus 2   # smaller
    python benchmarks/ray_scale.py --path x.npy          # your own embeddings

Each path runs in a process of its own, so neither inherits the other's memory. Memory is the
resident set sampled every 100 ms: ``rss`` counts the pages of the memory-mapped file a process
has touched (the kernel can drop them), ``anon`` only its private memory (what it really needs).
The Ray run's time includes starting and stopping the local cluster, shown apart as ``startup``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def memory(pid: int) -> tuple[int, int]:
    """(rss, anonymous resident bytes) of a process, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                fields[key] = int(value.split()[0]) * 1024
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (children not included)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Peak (rss, anon) and CPU time per process of interest, sampled every ``every`` seconds:
    CPU seconds say what the work cost whatever else the machine was running."""

    def __init__(self, pids, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.peaks: dict[int, list[int]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for pid, name in self.pids():
                try:
                    rss, anon = memory(pid)
                except OSError:
                    continue
                peak = self.peaks.setdefault(pid, [0, 0, name, 0.0])
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)
                peak[3] = max(peak[3], cpu_seconds(pid))
            time.sleep(self.every)

    def stop(self) -> dict[int, list]:
        self.done.set()
        self.join()
        return self.peaks


def ray_workers():
    """(pid, title) of this machine's Ray worker processes."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if title.startswith("ray::"):
            yield proc.pid, title.split()[0]


def write_data(path: Path, n: int, dim: int) -> None:
    """``n`` unit rows from a 30-cluster mixture, written half a million rows at a time."""
    from explorer.data.synthetic import mixture

    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    step = 500_000
    for i, start in enumerate(range(0, n, step)):
        stop = min(n, start + step)
        out[start:stop] = mixture(stop - start, dim=dim, seed=i + 1, centre_seed=0, intrinsic=24)[0]
    out.flush()
    del out


def run_local(path: str) -> dict:
    from explorer.data.arrays import load_array
    from explorer.metrics.vendi import VendiAnalysis

    sampler = Sampler(lambda: [(os.getpid(), "driver")])
    sampler.start()
    t0, cpu0 = time.perf_counter(), cpu_seconds(os.getpid())
    analysis = VendiAnalysis(contributions=False).fit(load_array(path, mmap=True))
    seconds = time.perf_counter() - t0
    peaks = sampler.stop()
    peaks[os.getpid()][3] = cpu_seconds(os.getpid()) - cpu0
    return {"seconds": seconds, "scores": {str(k): v for k, v in analysis.scores_.items()},
            "memory": {str(pid): p for pid, p in peaks.items()}}


def run_ray(path: str, cpus: int, block_mb: int) -> dict:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    from explorer.distributed.score import RayVendi
    from explorer.distributed.session import ray_session
    from explorer.distributed.sources import open_source

    t0 = time.perf_counter()
    with ray_session(None, num_cpus=cpus) as ray:
        started = time.perf_counter()
        source = open_source(path)
        workers = {pid: cpu_seconds(pid) for pid, _ in ray_workers()}  # CPU they had used before the fit
        sampler = Sampler(lambda: [(os.getpid(), "driver"), *ray_workers()])
        sampler.start()
        cpu0 = cpu_seconds(os.getpid())
        analysis = RayVendi(block_rows=max(1, (block_mb << 20) // (4 * source.dim))).fit(source, ray=ray)
        fitted = time.perf_counter()
        peaks = sampler.stop()
        for pid, peak in peaks.items():
            peak[3] -= cpu0 if pid == os.getpid() else workers.get(pid, 0.0)
        blocks = analysis.n_blocks_
    total = time.perf_counter() - t0
    return {"seconds": total, "startup": started - t0, "fit": fitted - started,
            "shutdown": total - (fitted - t0), "stages": analysis.stage_seconds_, "blocks": blocks,
            "scores": {str(k): v for k, v in analysis.scores_.items()},
            "memory": {str(pid): p for pid, p in peaks.items()}}


def child(args: argparse.Namespace, which: str) -> dict:
    command = [sys.executable, __file__, "--run", which, "--path", str(args.path), "--cpus", str(args.cpus),
               "--block-mb", str(args.block_mb)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{which} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--block-mb", type=int, default=128, help="float32 rows per Ray task, in MiB")
    parser.add_argument("--path", type=Path, help="an existing .npy (default: synthetic data in a temp folder)")
    parser.add_argument("--run", choices=("local", "ray"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run == "local":
        print(json.dumps(run_local(str(args.path))))
        return
    if args.run == "ray":
        print(json.dumps(run_ray(str(args.path), args.cpus, args.block_mb)))
        return
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        if args.path is None:
            args.path = Path(tmp) / "x.npy"
            t = time.perf_counter()
            write_data(args.path, args.n, args.dim)
            print(f"data: {args.n:,} x {args.dim} float32 ({gib(args.path.stat().st_size)}) written in "
                  f"{time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        with open(args.path, "rb") as fh:  # into the page cache first: neither run pays for the disk
            while fh.read(64 << 20):
                pass
        print(f"file read once into the page cache in {time.perf_counter() - t:.0f} s")
        local = child(args, "local")
        dist = child(args, "ray")
    ratio = dist["seconds"] / local["seconds"]
    diff = max(abs(dist["scores"][q] - v) / abs(v) for q, v in local["scores"].items())
    print(f"single process: {local['seconds']:.1f} s ({sum(p[3] for p in local['memory'].values()):.1f} CPU s); "
          f"peak rss {gib(max(p[0] for p in local['memory'].values()))}, "
          f"anon {gib(max(p[1] for p in local['memory'].values()))}")
    print(f"ray ({args.cpus} CPUs, {dist['blocks']} blocks of {args.block_mb} MiB): {dist['seconds']:.1f} s = "
          f"startup {dist['startup']:.1f} + fit {dist['fit']:.1f} + shutdown {dist['shutdown']:.1f}; "
          f"fit stages " + ", ".join(f"{k} {v:.1f} s" for k, v in dist["stages"].items()))
    cpu_local = sum(p[3] for p in local["memory"].values())
    cpu_ray = sum(p[3] for p in dist["memory"].values())
    print(f"ratio ray / single process: {ratio:.2f} (fit only: {dist['fit'] / local['seconds']:.2f}); CPU seconds "
          f"of the fit {cpu_ray:.1f} vs {cpu_local:.1f} ({cpu_ray / cpu_local:.2f}); load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for pid, (rss, anon, name, cpu) in sorted(dist["memory"].items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:<28} pid {pid:>7}: peak rss {gib(rss)}, anon {gib(anon)}, {cpu:.1f} CPU s in the fit")
    print(f"largest relative score difference: {diff:.1e}")


if __name__ == "__main__":
    main()
