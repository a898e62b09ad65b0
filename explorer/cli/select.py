"""``vendiscope select``: a diverse subset of a dataset, written as its ids in pick order with each
pick's gain, and the subset's scores against random and farthest-point subsets of the same k."""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from explorer.cli.args import positive_int
from explorer.cli.progress import progress_bar
from explorer.cli.source import add_source_options, embed_source
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label

OUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json"}


def add_parser(sub) -> None:
    p = sub.add_parser("select", help="choose k diverse items (greedy Vendi), with class quotas, without flagged "
                                      "items or near duplicates")
    add_source_options(p)
    p.add_argument("--k", type=positive_int, required=True, help="how many items to choose")
    p.add_argument("--per", metavar="COLUMN", help="class column: each class gets its quota of the k picks")
    p.add_argument("--quotas", choices=("proportional", "equal"), default="proportional",
                   help="with --per: quotas proportional to class sizes, at least 1 each (default), or equal")
    p.add_argument("--exclude-flagged", action="store_true",
                   help="never choose an item that has a flag (other than a saved subset's)")
    p.add_argument("--q", default=",".join(order_label(q) for q in DEFAULT_ORDERS),
                   help="orders to score the subset at, comma-separated (default: %(default)s)")
    p.add_argument("--kernel", choices=("centred", "cosine"), default="centred",
                   help="centred cosine (centre: the pooled mean; default) or the plain cosine of the Vendi score")
    p.add_argument("--near-threshold", type=float,
                   help="cosine at which two items are near duplicates (default: relative to spacing, as audit)")
    p.add_argument("--keep-near-duplicates", action="store_true", help="allow near duplicates in the subset")
    p.add_argument("--n-random", type=positive_int, default=20, help="random subsets to compare with (default 20)")
    p.add_argument("--no-compare", action="store_true", help="skip the random and k-center comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, metavar="SUBSET.parquet",
                   help="the picks (.parquet with the summary in its metadata, .csv or .json)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from explorer.curate.select import cached_selection, flagged_ids
    from explorer.metrics.spectrum import parse_orders
    from explorer.store.cache import atomic_write_bytes
    from explorer.store.flags import FlagStore

    fmt = OUT_FORMATS.get(args.out.suffix.lower())
    if fmt is None:  # refused before any work
        raise ValueError(f"--out must end in {', '.join(OUT_FORMATS)}, got {args.out.name}")
    orders = parse_orders(args.q)
    with progress_bar(quiet=args.quiet) as progress:
        dataset, result = embed_source(args, progress=progress)
        flagged = flagged_ids(FlagStore.for_dataset(dataset.source, root=args.cache_dir)) if args.exclude_flagged \
            else []
        summary, picks = cached_selection(
            result.embeddings, result.items, k=args.k, per=args.per, exclude_ids=flagged, cache_dir=args.cache_dir,
            progress=progress, q=orders, quotas=args.quotas, kernel=args.kernel, near_threshold=args.near_threshold,
            dedupe=not args.keep_near_duplicates, n_random=args.n_random, compare=not args.no_compare, seed=args.seed)
    summary = {"dataset": dataset.name, "embedder": result.embedder_key, "out": str(args.out), **summary}
    atomic_write_bytes(args.out, subset_bytes(picks.drop(columns=["row"]), summary, fmt))
    print(json.dumps(summary) if args.json else report(summary, picks))
    return 0


def subset_bytes(picks, summary: dict, fmt: str) -> bytes:
    """The picks as a file; a Parquet file carries the summary in its metadata (``vendiscope.select``)."""
    from explorer.store.export import to_bytes

    data = to_bytes(picks, fmt)  # CSV cells neutralised against spreadsheet formulas
    if fmt != "parquet":
        return data
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           b"vendiscope.select": json.dumps(summary).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def report(summary: dict, picks) -> str:
    """The subset as a short text report."""
    def scores(values: dict) -> str:
        return "  ".join(f"VS_{q} {v:.2f}" for q, v in values.items())

    lines = [f"{summary['dataset']}: chose {summary['k']:,} of {summary['n']:,} items "
             f"({summary['excluded']:,} flagged left out) on {summary['kernel']}; {summary['objective']}",
             f"  subset    {scores(summary['scores'])}"]
    if "random" in summary:
        lines += [f"  random    {scores(summary['random']['mean'])}  (mean of {summary['random']['draws']})",
                  f"  best rnd  {scores(summary['random']['best'])}",
                  f"  k-center  {scores(summary['kcenter'])}"]
    if summary["near_threshold"] is not None:
        lines.append(f"  no two chosen items at cosine >= {summary['near_threshold']:.4f} (near duplicates)")
    if summary["quotas"]:
        lines.append(f"  quotas by {summary['per']}: " + ", ".join(f"{c} {m}" for c, m in summary["quotas"].items()))
    head = ", ".join(f"{i} (+{g:.2f})" for i, g in zip(picks["id"][:5], picks["gain"][:5]))
    lines.append(f"  first picks (VS_2 gain): {head}{' ...' if len(picks) > 5 else ''}")
    lines.append(f"  written to {summary['out']}")
    return "\n".join(lines)
