"""``vendiscope represent``: each value of an attribute, and each intersection of two, against a
target share, with its diversity at equal n; under-represented and low-diversity groups flagged."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from explorer.cli.args import positive_int
from explorer.cli.progress import progress_bar
from explorer.cli.source import add_source_options, embed_source


def add_parser(sub) -> None:
    p = sub.add_parser("represent", help="representation by attribute: share against a target and diversity at "
                                         "equal n per value and per intersection of two attributes")
    add_source_options(p)
    p.add_argument("--by", required=True, metavar="COLUMN[,COLUMN]",
                   help="one or two attributes: item columns (label, set, any metadata) or kmeans:K regions")
    p.add_argument("--target", default="uniform", metavar="uniform|FILE.csv",
                   help="target shares: uniform (default), or a CSV of value,share (and attribute)")
    p.add_argument("--kernel", default="centred", choices=("centred", "cosine"),
                   help="centred cosine around the pooled mean (default) or the plain cosine (Vendi score)")
    p.add_argument("--min-size", type=positive_int, default=10,
                   help="groups with fewer items are counted but not scored (default %(default)s)")
    p.add_argument("--n-boot", type=positive_int, default=30, help="equal-n random subsets per group (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the groups table (.csv, .parquet or .json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from explorer.curate.represent import cached_represent, read_target
    from explorer.store.export import write_export

    by = [b.strip() for b in args.by.split(",") if b.strip()]
    target = None if args.target.strip().lower() == "uniform" else read_target(args.target)
    if args.out and args.out.suffix.lower().lstrip(".") not in ("csv", "parquet", "json"):
        raise ValueError(f"--out {args.out.name}: write .csv, .parquet or .json")
    with progress_bar(quiet=args.quiet) as progress:
        dataset, result = embed_source(args, progress=progress)
    report = cached_represent(result.embeddings, result.items, by=by, target=target, kernel=args.kernel,
                              n_boot=args.n_boot, min_size=args.min_size, seed=args.seed, cache_dir=args.cache_dir)
    groups = report.groups.drop(columns=["parts"])
    if args.out:
        write_export(groups, args.out)
    summary = {"dataset": dataset.name, "embedder": result.embedder_key, "skipped": int(len(result.skipped)),
               "target_file": None if target is None else str(args.target), **report.summary,
               "groups": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                          for row in groups.to_dict("records")]}
    print(json.dumps(summary) if args.json else text_report(summary))
    return 0


def text_report(summary: dict) -> str:
    """The report as text: a line per group, flagged groups marked."""
    from explorer.metrics.equal_n import interval_text

    lines = [f"{summary['dataset']}: {summary['n']:,} items, by {', '.join(summary['by'])}; "
             f"VS_1 at equal n with {summary['level']:.0%} intervals; kernel {summary['kernel']}; "
             f"target {summary['target_file'] or 'uniform'}",
             f"  under-represented: {summary['rules']['under_represented']}",
             f"  low diversity: {summary['rules']['low_diversity']}",
             f"  scored: {summary['rules']['scored']}"]
    attribute = None
    for g in summary["groups"]:
        if g["attribute"] != attribute:
            attribute = g["attribute"]
            lines.append(f"\n{attribute} (equal n = {summary['equal_n'][attribute]:,})")
        vs = ("not scored" if g["vs1"] is None else
              "VS_1 " + interval_text(g["vs1"], g["vs1_lo"], g["vs1_hi"], draws=g["draws"]))
        ratio = "" if g["ratio"] is None else f" ({g['ratio']:.2f}x)"
        lines.append(f"  {'!' if g['reason'] else ' '} {g['group']}: n {g['n']:,}  share {g['share']:.1%} vs target "
                     f"{g['target_share']:.1%}{ratio}  {vs}" + (f"  <- {g['reason']}" if g["reason"] else ""))
    flagged = summary["under_represented"] + summary["low_diversity"]
    lines.append(f"\nflagged: {len(summary['under_represented'])} under-represented, "
                 f"{len(summary['low_diversity'])} low-diversity group(s)"
                 + (": " + ", ".join(flagged) if flagged else ""))
    return "\n".join(lines)
