"""Embedding throughput: model alone, decoding alone, end to end, and the cache.

Prints images/s for
  (a) the model alone on synthetic tensors already in memory,
  (b) decode + resize + normalise alone (the DataLoader workers, no model),
  (c) end to end (`embed_dataset` on JPEG files, empty cache),
and the ratio c / min(a, b) (1.0 = decoding fully hidden behind the model). (b) and (c) are
measured per decode mode: cpu (PIL in the workers) and gpu (workers read bytes; decode_jpeg and
the resize run on the model's device, timed after a warm-up call so nvJPEG's start-up is not
counted). Then the second run on unchanged data (all from cache) as a speed-up over the first,
and adding 10 files.

    python benchmarks/embed.py [--model efficientnet-lite0] [--n 400] [--size 256] [--device auto]
                               [--decode cpu|gpu|both]   # default: both on CUDA, else cpu
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from explorer.data.datasets import load_image_folder
from explorer.embed.decoding import decoded_batches, default_workers
from explorer.embed.models.base import resolve_device
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder


def make_jpegs(root: Path, n: int, size: int, start: int = 0) -> None:
    """Smooth random colour fields with noise: JPEGs that decode like photos, not like flat colour."""
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        low = rng.integers(0, 255, (8, 8, 3), np.uint8)
        img = Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC)
        arr = np.asarray(img, np.int16) + rng.integers(-20, 20, (size, size, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(root / f"{i:06d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--decode", choices=("cpu", "gpu", "both"),
                        help="decode mode(s) to time (default: both when the device is CUDA, else cpu)")
    args = parser.parse_args()
    import torch

    embedder = get_embedder(args.model, device=args.device)
    on_cuda = resolve_device(args.device).startswith("cuda")
    decode = args.decode or ("both" if on_cuda else "cpu")
    modes = ["cpu", "gpu"] if decode == "both" else [decode]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        root.mkdir()
        make_jpegs(root, args.n, args.size)
        dataset = load_image_folder(root)
        jobs = [(str(i), row) for i, row in enumerate(dataset.items.to_dict("records"))]
        workers = default_workers(embedder, args.n, args.batch_size)

        def sync() -> None:  # CUDA runs asynchronously: wait for it before reading the clock
            if str(getattr(embedder, "device", "cpu")).startswith("cuda"):
                torch.cuda.synchronize()

        sample = next(decoded_batches(jobs[: args.batch_size], embedder, batch_size=args.batch_size,
                                      num_workers=0))[1]
        embedder.encode(sample)  # load weights, warm up kernels
        sync()
        start = time.perf_counter()
        for _ in range(max(1, args.n // args.batch_size)):
            embedder.encode(sample)
        sync()
        model_rate = max(1, args.n // args.batch_size) * args.batch_size / (time.perf_counter() - start)

        decode_rate, e2e_rate = {}, {}
        cache = Path(tmp) / "cache"
        for mode in modes:
            for _ in decoded_batches(jobs[: args.batch_size], embedder, batch_size=args.batch_size,
                                     num_workers=0, decode=mode):
                pass  # warm-up: nvJPEG and the resize kernels start once per process
            sync()
            start = time.perf_counter()
            decoded = sum(len(d) for d, _, _ in decoded_batches(jobs, embedder, batch_size=args.batch_size,
                                                                num_workers=workers, decode=mode))
            sync()
            decode_rate[mode] = decoded / (time.perf_counter() - start)
            run = embed_dataset(dataset, embedder, cache_dir=cache / mode, batch_size=args.batch_size, decode=mode)
            e2e_rate[mode] = run.n_computed / run.seconds
            if mode == modes[0]:
                first = run

        mode = modes[0]
        second = embed_dataset(dataset, embedder, cache_dir=cache / mode, batch_size=args.batch_size, decode=mode)
        make_jpegs(root, 10, args.size, start=args.n)
        third = embed_dataset(load_image_folder(root), embedder, cache_dir=cache / mode, batch_size=args.batch_size,
                              decode=mode)

    device = getattr(embedder, "device", "cpu")
    print(f"{args.model} on {device}, {args.n} JPEGs of {args.size}px, batch {args.batch_size}, "
          f"{workers} decode worker(s)")
    print(f"(a) model alone:        {model_rate:9.1f} images/s")
    for mode in modes:
        print(f"(b) decode + resize:    {decode_rate[mode]:9.1f} images/s  [decode={mode}]")
        print(f"(c) end to end:         {e2e_rate[mode]:9.1f} images/s  [decode={mode}]")
        print(f"ratio c / min(a, b):    {e2e_rate[mode] / min(model_rate, decode_rate[mode]):9.2f}  [decode={mode}]")
    if len(modes) == 2:
        fast, slow = sorted(modes, key=lambda m: -e2e_rate[m])
        print(f"faster end to end: decode={fast} ({e2e_rate[fast] / e2e_rate[slow]:.2f}x decode={slow}) on {device}")
    print(f"second run (all cached): {second.seconds:.3f} s vs {first.seconds:.2f} s: "
          f"{first.seconds / second.seconds:,.0f}x faster ({second.n_computed} computed)")
    print(f"after adding 10 files: {third.n_computed} computed, {third.n_cached} from cache")


if __name__ == "__main__":
    main()
