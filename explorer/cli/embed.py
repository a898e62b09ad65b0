"""``vendiscope embed``: embed a dataset into embeddings.npy + items.parquet, with progress."""
from __future__ import annotations

import argparse
import signal
import sys

from explorer.cli.args import add_ray_option, non_negative_int, positive_int
from explorer.embed.registry import describe_embedders

SHARD_ROWS = 65_536  # rows per Parquet shard of a --ray run (128 MiB of 512-d float32)


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="embed a dataset and write embeddings.npy + items.parquet")
    p.add_argument("source", help="image folder; CSV/Parquet/JSONL manifest (paths or texts); .txt (one text "
                                  "per line); .npy/.npz/.parquet embeddings")
    p.add_argument("--model", default="auto", help=f"embedder (default: auto). {describe_embedders()}")
    p.add_argument("--pretrained", help="open_clip pretrained tag or checkpoint path")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=positive_int, help="default: 512 on CUDA, 64-512 on CPU by model")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                   help="autocast on CUDA (auto: bf16 where supported, else fp16)")
    p.add_argument("--workers", type=non_negative_int,
                   help="decode worker processes (default: cores - 1 for image models)")
    p.add_argument("--decode", choices=("auto", "cpu", "gpu"), default="auto",
                   help="where JPEGs are decoded and resized: cpu (PIL in the workers), gpu (torchvision decode_jpeg "
                        "on the model's device; other files still use the CPU) or auto (gpu on CUDA)")
    p.add_argument("--chunk-size", type=positive_int, default=2048,
                   help="items per cache chunk: a killed job re-embeds at most this many (default %(default)s)")
    p.add_argument("--allow-outside", action="store_true",
                   help="read items whose files lie outside the dataset's folder (refused by default)")
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from explorer.data.datasets import load_dataset
    from explorer.embed.pipeline import Interrupted, embed_dataset, write_embeddings
    from explorer.embed.registry import resolve_embedder

    dataset = load_dataset(args.source, allow_outside=args.allow_outside)
    modality = dataset.modality
    embedder, notice = resolve_embedder(args.model, pretrained=args.pretrained, device=args.device,
                                        modality=modality, precision=args.precision)
    if notice and args.model != "auto":
        print(f"error: {notice.split('. Using')[0]}. Pass --model auto to fall back, or choose "
              "--model efficientnet-lite0 or pixels.", file=sys.stderr)
        return 2
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    bar = tqdm(total=0, unit="item", file=sys.stderr, disable=args.quiet)

    def progress(done: int, total: int, message: str) -> None:
        bar.total, bar.n = total, done
        bar.set_description(message)
        bar.refresh()

    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM saves the finished part, as Ctrl-C does
    try:
        if args.ray is not None:  # the distributed path: explorer.distributed, through Ray
            result = _embed_on_ray(args, dataset, embedder, progress)
        else:
            result = embed_dataset(dataset, embedder, cache_dir=args.cache_dir, batch_size=args.batch_size,
                                   chunk_size=args.chunk_size, num_workers=args.workers, decode=args.decode,
                                   progress=progress)
    except Interrupted as stop:
        bar.close()
        print(f"interrupted: {stop}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    bar.close()
    if not len(result.items):
        print(f"error: no item of {dataset.name} could be embedded; the first reasons:", file=sys.stderr)
        for row in result.skipped.head(10).itertuples(index=False):
            print(f"  {row.id}: {row.reason}", file=sys.stderr)
        return 2
    # a run on Ray writes Parquet shards (id, embedding) that Ray Data reads back where they are
    out = write_embeddings(result, args.out, shard_rows=SHARD_ROWS if args.ray is not None else None)
    summary = result.summary()
    print(f"embedded {summary['embedded']} items ({summary['from_cache']} from cache, "
          f"{summary['computed']} computed at {summary['items_per_second'] or 0:.1f} items/s) with "
          f"{summary['embedder']} -> {out}", file=sys.stderr)
    if len(result.skipped):
        print(f"skipped {len(result.skipped)} item(s), see {out / 'skipped.csv'}:", file=sys.stderr)
        for row in result.skipped.head(20).itertuples(index=False):
            print(f"  {row.id}: {row.reason}", file=sys.stderr)
    return 0


def _embed_on_ray(args: argparse.Namespace, dataset, embedder, progress):
    from explorer.cli.distributed import quiet_ray
    from explorer.data.errors import InputError
    from explorer.distributed.embed import embed_with_ray
    from explorer.distributed.session import ray_session

    if args.decode == "gpu" or args.workers is not None:
        raise InputError("--decode gpu and --workers are for one machine; with --ray, decoding runs in Ray's "
                         "CPU tasks")
    with ray_session(args.ray) as ray:
        # ray.init puts in its own SIGTERM handler, which exits with status 1 and saves nothing:
        # ours again, so SIGTERM keeps the finished part and exits 130 as on one machine (run()
        # restores the handler from before the run)
        signal.signal(signal.SIGTERM, _interrupt)
        quiet_ray(ray, quiet=True)  # vendiscope's own bar shows the progress
        return embed_with_ray(dataset, embedder, ray=ray, cache_dir=args.cache_dir, batch_size=args.batch_size,
                              chunk_size=args.chunk_size, progress=progress)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
