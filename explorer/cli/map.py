"""``vendiscope map``: the 2-D map of every embedded item, as ``id, x, y`` in a Parquet file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.cli.args import add_neighbors_option
from explorer.cli.progress import progress_bar
from explorer.cli.source import add_source_options, embed_source


def add_parser(sub) -> None:
    p = sub.add_parser("map", help="the 2-D UMAP map of every item (draft in about a minute per million items, "
                                   "or full)")
    add_source_options(p)
    p.add_argument("--out", type=Path, required=True, help="Parquet file to write: id, x, y (one row per item)")
    p.add_argument("--quality", choices=("draft", "full"), default="full",
                   help="draft: UMAP on 20,000 landmarks, the rest placed near them; full: UMAP on every item, "
                        "refined from the draft (default %(default)s; the same below 20,000 items)")
    add_neighbors_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from explorer.maps.projection import UmapParams, map_quality, umap_project
    from explorer.store.cache import atomic_write_bytes
    from explorer.store.export import to_bytes

    if args.out.suffix.lower() != ".parquet":
        raise ValueError(f"--out {args.out}: the map is written as Parquet; give a .parquet file")
    with progress_bar(quiet=args.quiet) as progress:
        dataset, result = embed_source(args, progress=progress)
        if not len(result.items):
            raise ValueError(f"no item of {dataset.name} could be embedded")
        params = UmapParams(neighbors=args.neighbors)
        coords = umap_project(result.embeddings, params=params, quality=args.quality, cache_dir=args.cache_dir,
                              progress=progress)
    made = map_quality(len(coords), params, args.quality)
    table = pd.DataFrame({"id": result.items["id"].astype(str).to_numpy(), "x": coords[:, 0], "y": coords[:, 1]})
    atomic_write_bytes(args.out, to_bytes(table, "parquet"))
    skipped = f"; {len(result.skipped):,} skipped" if len(result.skipped) else ""
    print(f"wrote the {made} map of {len(table):,} items to {args.out}{skipped}", file=sys.stderr)
    return 0
