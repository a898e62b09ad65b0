"""``vendiscope audit``: one dataset on its own: exact and near duplicates, outliers, rarity."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from explorer.cli.args import add_neighbors_option, positive_int
from explorer.cli.progress import progress_bar
from explorer.cli.source import add_source_options, embed_source


def add_parser(sub) -> None:
    p = sub.add_parser("audit", help="one dataset on its own: exact and near duplicates, outliers, rare items")
    add_source_options(p)
    p.add_argument("--k", type=positive_int, default=5, help="neighbours for outliers and rarity (default %(default)s)")
    p.add_argument("--near-threshold", type=float, help="cosine for near duplicates (default: relative to spacing)")
    p.add_argument("--out", type=Path, help="also write summary.json and diagnostics.parquet (per item) here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_neighbors_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from explorer.compare.audit import cached_audit
    from explorer.data.outputs import fingerprint_bytes
    from explorer.store.cache import atomic_write_bytes
    from explorer.store.export import to_bytes

    with progress_bar(quiet=args.quiet) as progress:
        dataset, result = embed_source(args, progress=progress)
        if len(result.items) < 2:
            raise ValueError(f"{len(result.items)} item(s) of {dataset.name} could be embedded; an audit needs 2")
        name = dataset.sets[0] if len(dataset.sets) == 1 else dataset.name
        summary, table = cached_audit(result.embeddings, result.items, cache_dir=args.cache_dir, progress=progress,
                                      k=args.k, near_threshold=args.near_threshold, name=name,
                                      neighbors=args.neighbors)
    summary = {"dataset": dataset.name, "embedder": result.embedder_key, "skipped": int(len(result.skipped)),
               **summary}
    if args.out:  # the per-item table first, then the summary with its fingerprint: a set
        per_item = result.items[["id", *[c for c in ("path", "text", "set", "label") if c in result.items]]]
        data = to_bytes(per_item.merge(table, on="id"), "parquet")
        atomic_write_bytes(args.out / "diagnostics.parquet", data)
        files = {"files": {"diagnostics.parquet": fingerprint_bytes(data)}}
        atomic_write_bytes(args.out / "summary.json", json.dumps({**summary, **files}, indent=1).encode())
    print(json.dumps(summary) if args.json else report(summary))
    return 0


def _groups(groups: list[list[str]], shown: int = 3) -> str:
    return "; ".join(" = ".join(g[:4]) + (f" (+{len(g) - 4})" if len(g) > 4 else "") for g in groups[:shown])


def report(summary: dict) -> str:
    """The audit as a short text report."""
    exact, near = summary["exact_duplicates"], summary["near_duplicates"]
    lines = [f"{summary['dataset']}: {summary['n']:,} items audited ({summary['skipped']:,} skipped); "
             f"embedder {summary['embedder']}",
             f"  exact duplicates: {exact['items']:,} copies in {exact['groups']:,} group(s)"
             + (f", e.g. {_groups(exact['largest'])}" if exact["groups"] else ""),
             f"  near duplicates: {near['items']:,} items in {near['groups']:,} group(s) at cosine >= "
             f"{near['threshold']:.4f}" + (f", e.g. {_groups(near['largest'])}" if near["groups"] else ""),
             f"  outliers: {summary['outliers']:,}; rare (top 1% k-NN radius): {summary['rare']:,}"]
    return "\n".join(lines)
