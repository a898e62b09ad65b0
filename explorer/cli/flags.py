"""``vendiscope flag`` and ``vendiscope export``: flags kept with a dataset, and exports of its items."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("flag", help="flag items of a dataset with a reason (or --remove flags)")
    p.add_argument("source", help="the dataset, as opened in the app")
    p.add_argument("--ids", help="comma-separated item ids")
    p.add_argument("--ids-file", help="a file with one item id per line")
    p.add_argument("--reason", help="why (required to flag; with --remove: only this reason)")
    p.add_argument("--remove", action="store_true")
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.set_defaults(func=run_flag)

    p = sub.add_parser("export", help="export items with their flag reasons as CSV, Parquet or JSON")
    p.add_argument("source", help="the dataset, as opened in the app")
    p.add_argument("--out", required=True, help="output file: .csv, .parquet or .json")
    p.add_argument("--flagged", action="store_true", help="only flagged items")
    p.add_argument("--ids", help="only these comma-separated ids")
    p.add_argument("--ids-file", help="only the ids in this file (one per line)")
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.set_defaults(func=run_export)


def _ids(args: argparse.Namespace) -> list[str]:
    ids = [i for i in (args.ids or "").split(",") if i]
    if args.ids_file:
        ids += [line.strip() for line in Path(args.ids_file).read_text().splitlines() if line.strip()]
    return ids


def run_flag(args: argparse.Namespace) -> int:
    from explorer.data.datasets import load_dataset
    from explorer.store.flags import FlagStore

    dataset = load_dataset(args.source, allow_outside=True)  # ids only: no item is read
    ids = _ids(args)
    unknown = sorted(set(ids) - set(dataset.items["id"]))
    if unknown:
        raise ValueError(f"{len(unknown)} id(s) not in {dataset.name}, e.g. {unknown[:3]}")
    store = FlagStore.for_dataset(dataset.source, root=args.cache_dir)
    if args.remove:
        print(f"removed {store.remove(ids, reason=args.reason)} flag(s)", file=sys.stderr)
    else:
        if not args.reason:
            raise ValueError("--reason is required to flag items")
        print(f"added {store.add(ids, reason=args.reason)} flag(s)", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from explorer.data.datasets import load_dataset
    from explorer.store.export import export_table, write_export
    from explorer.store.flags import FlagStore

    dataset = load_dataset(args.source, allow_outside=True)  # ids only: no item is read
    reasons = FlagStore.for_dataset(dataset.source, root=args.cache_dir).reasons()
    items = dataset.items
    if args.flagged:
        items = items[items["id"].isin(reasons)]
    ids = _ids(args)
    if ids:
        items = items[items["id"].isin(ids)]
    out = write_export(export_table(items, reasons=reasons), args.out)
    print(f"exported {len(items)} item(s) to {out}", file=sys.stderr)
    return 0
