"""The dataset a command reads (``SOURCE``): the options that say how to open and embed it, and
one way to do so, shared by ``audit``, ``map``, ``select`` and ``represent``."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from explorer.embed.registry import describe_embedders


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """``SOURCE`` and ``--model``, ``--allow-outside``, ``--cache-dir``, ``--quiet``."""
    parser.add_argument("source", help="the dataset (folder, manifest, texts, embeddings...)")
    parser.add_argument("--model", default="auto", help=f"embedder (default: auto). {describe_embedders()}")
    parser.add_argument("--allow-outside", action="store_true",
                        help="read items whose files lie outside the dataset's folder (refused by default)")
    parser.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def embed_source(args: argparse.Namespace, *, progress: Callable | None = None):
    """``(dataset, result)``: ``args.source`` opened and embedded (from the cache when it was
    before) with ``args.model``; a fallback from the asked embedder is said on stderr."""
    from explorer.data.datasets import load_dataset
    from explorer.embed.pipeline import embed_dataset
    from explorer.embed.registry import resolve_embedder

    dataset = load_dataset(args.source, allow_outside=args.allow_outside)
    modality = dataset.modality
    embedder, notice = resolve_embedder(args.model, modality=modality)
    if notice and dataset.vectors is None:  # precomputed vectors use no embedder: nothing to say
        print(f"notice: {notice}", file=sys.stderr)
    return dataset, embed_dataset(dataset, embedder, cache_dir=args.cache_dir, progress=progress)
