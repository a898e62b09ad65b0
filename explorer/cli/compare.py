"""``vendiscope compare``: sample sets against a reference, as text or JSON, with ``--fail-if``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer.cli.args import add_neighbors_option, add_ray_option, positive_int
from explorer.cli.progress import progress_bar
from explorer.embed.registry import describe_embedders


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare sample sets with a reference: diversity, coverage, regions, "
                                       "novel modes, duplicates, memorisation")
    p.add_argument("samples", nargs="+", metavar="SAMPLES", help="sample sets: dataset paths, or set names with --in")
    p.add_argument("--reference", required=True, metavar="REF", help="the reference set (path, or set name with --in)")
    p.add_argument("--in", dest="within", metavar="DATASET", help="one dataset holding all sets (a 'set' column)")
    p.add_argument("--model", default="auto", help=f"embedder (default: auto). {describe_embedders()}")
    p.add_argument("--kernel", type=kernel_choice, default="centred", metavar="{centred,cosine,rbf}",
                   help="kernel of the Vendi scores, spectra, class scores and novel modes: centred cosine (default; "
                        "centre = the reference's mean), cosine (the plain Vendi score) or rbf (bandwidth = the "
                        "reference's median distance). PRDC, regions, duplicates and memorisation use cosine")
    p.add_argument("--k", type=positive_int, default=5, help="neighbours for the k-NN balls (default %(default)s)")
    p.add_argument("--clusters", type=positive_int,
                   help="reference regions (default: 20, fewer for small references)")
    p.add_argument("--near-threshold", type=float, help="cosine for near duplicates (default: relative to spacing)")
    p.add_argument("--copy-threshold", type=float, help="cosine for memorised copies (default: relative to spacing)")
    p.add_argument("--n-boot", type=positive_int, default=20,
                   help="equal-n random subsets for the intervals (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="also write summary.json and diagnostics.parquet (per item) here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--fail-if", action="append", default=[], metavar="EXPR",
                   help="exit 1 when a condition holds for a set, e.g. 'coverage<0.8' or 'gmm.vs1_ratio<0.9'")
    p.add_argument("--allow-outside", action="store_true",
                   help="read items whose files lie outside their dataset's folder (refused by default)")
    add_neighbors_option(p)
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_option(p)
    p.set_defaults(func=run)


def kernel_choice(text: str) -> str:
    """``--kernel``'s value, American spelling accepted; a clear error otherwise."""
    from explorer.metrics.kernel_rows import KERNELS, parse_kernel

    try:
        return parse_kernel(text, choices=KERNELS)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    from explorer.compare.comparison import cached_comparison
    from explorer.compare.gate import failing, parse_conditions
    from explorer.compare.gather import gather
    from explorer.data.outputs import fingerprint_bytes
    from explorer.distributed.compare import backend_for
    from explorer.store.cache import atomic_write_bytes
    from explorer.store.export import to_bytes

    conditions = parse_conditions(args.fail_if)  # a malformed condition fails before any work
    # with --ray the sets' graphs, equal-n subsets, spectra and PRDC run as Ray tasks
    with progress_bar(quiet=args.quiet) as progress, backend_for(args.ray, use_ray=args.ray is not None) as backend:
        x, items, embedder, notice = gather(args.reference, args.samples, within=args.within, model=args.model,
                                            cache_dir=args.cache_dir, progress=progress,
                                            allow_outside=args.allow_outside)
        if notice:
            print(f"notice: {notice}", file=sys.stderr)
        reference = args.reference if args.within else (Path(args.reference).stem or args.reference)
        params = {"k": args.k, "n_clusters": args.clusters, "near_threshold": args.near_threshold,
                  "copy_threshold": args.copy_threshold, "n_boot": args.n_boot, "seed": args.seed,
                  "neighbors": args.neighbors, "kernel": args.kernel}
        summary, table = cached_comparison(x, items, reference=reference, cache_dir=args.cache_dir,
                                           progress=progress, backend=backend, **params)
    summary = {"embedder": embedder, **summary}
    if "prompt" in items:  # generations: diversity within and across prompts per set (explorer.curate.prompts)
        from explorer.curate.prompts import per_prompt_of_sets

        summary["per_prompt"] = per_prompt_of_sets(x, items, reference=reference, seed=args.seed,
                                                   kernel=args.kernel, cache_dir=args.cache_dir)
    metrics = {name: {k: v for k, v in s.items() if isinstance(v, (int, float))}
               for name, s in summary["sets"].items()}
    hits = failing(metrics, conditions)
    summary["fail_if"] = {"conditions": args.fail_if, "failed": hits}
    if args.out:  # the per-item table first, then the summary with its fingerprint: a set
        per_item = items[["id", "set", *[c for c in ("path", "text", "label") if c in items]]].merge(table, on="id")
        data = to_bytes(per_item, "parquet")
        atomic_write_bytes(args.out / "diagnostics.parquet", data)
        files = {"files": {"diagnostics.parquet": fingerprint_bytes(data)}}
        atomic_write_bytes(args.out / "summary.json", json.dumps({**summary, **files}, indent=1).encode())
    if args.json:
        print(json.dumps(summary))
    else:
        print(report(summary))
        if "per_prompt" in summary:
            from explorer.curate.prompts import prompt_report

            print("\n" + prompt_report(summary["per_prompt"]))
    for line in hits:
        print(f"fail-if: {line}", file=sys.stderr)
    return 1 if hits else 0


def _mode(m: dict) -> str:
    return f"#{m['mode'] + 1} w={m['weight']:.3f} e.g. {', '.join(m['top'][:3])}"


def report(summary: dict) -> str:
    """The summary as a short text report."""
    ref = summary["reference"]
    lines = [f"reference {ref}: {summary['n_reference']:,} items; sets compared at n = {summary['equal_n']:,}; "
             f"k = {summary['k']}; classes by {summary['class_basis']}"]
    kernel = summary.get("kernel")
    if kernel:
        lines.append(f"kernel: {kernel['describe']}, for {', '.join(kernel['applies_to'])}; "
                     f"{', '.join(kernel['cosine_geometry'])} use the cosine geometry of the embeddings")
    for name, s in summary["sets"].items():
        vs = "  ".join(f"VS_{q} {s['vs'][q]:.2f} [{s['vs_ci'][q][0]:.2f}, {s['vs_ci'][q][1]:.2f}] "
                       f"({s[f'vs{q}_ratio']:.2f}x)" for q in summary["orders"])
        lines += [f"\n{name}: {s['n']:,} items",
                  f"  {vs}",
                  f"  precision {s['precision']:.3f}  recall {s['recall']:.3f}  density {s['density']:.3f}  "
                  f"coverage {s['coverage']:.3f}",
                  f"  under-represented regions {', '.join(s['underrepresented']) or 'none'} "
                  f"({s['underrepresented_share']:.1%} of the reference); over-represented "
                  f"{', '.join(s['overrepresented']) or 'none'}",
                  f"  collapsed classes: {', '.join(c['class'] for c in s['collapsed']) or 'none'}",
                  f"  memorised {s['memorized_share']:.1%} (cosine >= {s['copy_threshold']:.4f}); "
                  f"exact duplicates {s['exact_duplicate_share']:.1%}; near duplicates {s['near_duplicate_share']:.1%} "
                  f"in {s['near_duplicate_groups']} group(s) (cosine >= {s['near_threshold']:.4f})",
                  f"  novel modes (KEN {s['ken']:.3f}, mass {s['novel_mass']:.3f}): "
                  + ("; ".join(_mode(m) for m in s["novel_modes"][:3]) or "none"),
                  "  missing modes: " + ("; ".join(_mode(m) for m in s["missing_modes"][:3]) or "none")]
    return "\n".join(lines)
