"""``vendiscope score``: Vendi scores of an embeddings file or a similarity matrix, per group at
equal n, and per-item contributions."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from explorer.cli.args import add_ray_option, positive_int
from explorer.data.errors import InputError
from explorer.data.outputs import check_set
from explorer.metrics.spectrum import DEFAULT_ORDERS, order_label, parse_orders


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="Vendi scores of an embeddings file or a similarity matrix")
    p.add_argument("input", help=".npy, .npz (with --key) or .parquet (with --column)")
    p.add_argument("--q", default=",".join(order_label(q) for q in DEFAULT_ORDERS),
                   help="orders, comma-separated (default: %(default)s)")
    p.add_argument("--kernel", type=score_kernel, default="cosine", metavar="{cosine,centred,rbf,precomputed}",
                   help="cosine (default: the plain Vendi score, comparable with published numbers), centred "
                        "cosine (centre: the items' mean), RBF on embeddings, or an n x n similarity matrix")
    p.add_argument("--sigma", type=float, help="RBF bandwidth: exp(-|x-y|^2 / (2 sigma^2)); default: median distance "
                                                "(0 is refused)")
    p.add_argument("--method", choices=("auto", "exact", "dual", "rff", "nystrom"), default="auto",
                   help="auto: dual (d x d) for cosine; exact RBF up to 3000 items, Nystrom above")
    p.add_argument("--contributions", type=Path, metavar="OUT.parquet",
                   help="write per-item contributions (id, entropy h_i, loo_delta, crowdedness); with --ray a "
                        "folder of Parquet shards")
    p.add_argument("--groups", metavar="COLUMN",
                   help="also score each group at equal n: a manifest column, or kmeans:K for K clusters")
    p.add_argument("--manifest", help="table with one row per embedding (default: items.parquet beside INPUT)")
    p.add_argument("--n-boot", type=positive_int, default=50, help="random equal-n subsets per group (default 50)")
    p.add_argument("--min-group-size", type=positive_int, default=20,
                   help="groups with fewer items are left out, and listed (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--key", help="array name inside an .npz")
    p.add_argument("--column", help="array column of a .parquet")
    p.add_argument("--rtol", type=float, help="relative eigenvalue tolerance (default: by precision)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_ray_option(p)
    p.set_defaults(func=run)


def score_kernel(text: str) -> str:
    """``--kernel``'s value, American spelling accepted; a clear error otherwise."""
    from explorer.metrics.kernel_rows import parse_kernel

    try:
        return parse_kernel(text, choices=("cosine", "centred", "rbf", "precomputed"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _read_manifest(path: Path, n: int):
    import pandas as pd

    table = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path, dtype=str)
    if len(table) != n:
        raise ValueError(f"manifest {path.name} has {len(table)} rows but the embeddings have {n}")
    return table.reset_index(drop=True)


def run(args: argparse.Namespace) -> int:
    import io

    import pandas as pd

    from explorer.data.arrays import load_array
    from explorer.maps.clusters import kmeans_labels
    from explorer.metrics.equal_n import bootstrap_scores
    from explorer.metrics.kernel_rows import kernel_rows
    from explorer.metrics.vendi import VendiAnalysis
    from explorer.store.cache import atomic_write_bytes

    if args.ray is not None:  # the distributed path: explorer.distributed, through Ray
        return run_ray(args)
    if args.sigma is not None and args.kernel != "rbf":
        raise InputError(f"--sigma is the RBF bandwidth; --kernel {args.kernel} has none")
    x = load_array(args.input, key=args.key, column=args.column, mmap=True)
    orders = parse_orders(args.q)
    analysis = VendiAnalysis(q=orders, kernel=args.kernel, method=args.method, sigma=args.sigma, rtol=args.rtol,
                             contributions=bool(args.contributions), seed=args.seed).fit(x)
    out = analysis.result().to_dict()
    out["effective_rank"] = analysis.effective_rank_
    out["kernel_describe"] = kernel_line(args, sigma=analysis.sigma_, method=analysis.method_,
                                         info=analysis.kernel_info_)
    manifest = None
    clusters = args.groups and args.groups.startswith("kmeans:")
    if args.manifest or (args.groups and not clusters) or args.contributions:
        default = Path(args.input).with_name("items.parquet")
        path = Path(args.manifest) if args.manifest else (default if default.is_file() else None)
        if path == default:  # the pair vendiscope embed wrote: refused when it mixes two runs
            check_set(default.parent, [Path(args.input).name, default.name])
        if path is None and args.groups and not clusters:
            raise ValueError("--groups needs --manifest (a table with one row per embedding)")
        manifest = _read_manifest(path, x.shape[0]) if path is not None else None
    if args.contributions:
        assert analysis.contributions_ is not None  # asked for with contributions=True
        c = analysis.contributions_.copy()
        ids = manifest["id"] if manifest is not None and "id" in manifest else pd.Series(range(len(c)))
        c.insert(0, "id", ids.astype(str).to_numpy())
        buf = io.BytesIO()
        c.to_parquet(buf, index=False)
        atomic_write_bytes(args.contributions, buf.getvalue())
        out["contributions"] = str(args.contributions)
    if args.groups:
        if args.kernel == "precomputed":
            raise InputError("--groups scores groups of embeddings; a precomputed matrix has none")
        if clusters:
            labels = kmeans_labels(np.asarray(x), k=int(args.groups.split(":", 1)[1]), seed=args.seed)
        elif manifest is None or args.groups not in manifest.columns:
            if manifest is None:
                raise ValueError("--groups needs --manifest (a table with one row per embedding)")
            raise ValueError(f"no column {args.groups!r} in the manifest (it has {list(manifest.columns)})")
        else:
            labels = manifest[args.groups].fillna("(none)").tolist()
        sizes = pd.Series(list(labels)).astype(str).value_counts()
        small = sizes[sizes < args.min_group_size]
        if len(small):  # a 4-item group would set the common size for every group: leave it out, and say so
            print(f"warning: {len(small)} group(s) below --min-group-size {args.min_group_size} left out: "
                  + ", ".join(f"{g} ({n})" for g, n in small.items()), file=sys.stderr)
            out["skipped_groups"] = {str(g): int(n) for g, n in small.items()}
        keep = ~pd.Series(list(labels)).astype(str).isin(small.index).to_numpy()
        if sum(sizes >= args.min_group_size) < 1:
            raise ValueError(f"no group has {args.min_group_size} items or more (--min-group-size)")
        # the kernel's rows of the kept items (centre, bandwidth: theirs, pooled): one kernel for every group
        rows, info = kernel_rows(np.asarray(x)[keep], kernel=args.kernel, sigma=args.sigma, seed=args.seed)
        out["groups_kernel"] = info.describe()
        table = bootstrap_scores(rows, list(np.asarray(labels, dtype=object)[keep]), q=orders,
                                 n_boot=args.n_boot, seed=args.seed)
        out["groups"] = {
            row["group"]: {"n": int(row["n"]), "n_total": int(row["n_total"]), "draws": int(row["draws"]),
                           "scores": {order_label(o): row[f"VS_{order_label(o)}"] for o in orders},
                           "ci": {order_label(o): [row[f"VS_{order_label(o)}_lo"], row[f"VS_{order_label(o)}_hi"]]
                                  for o in orders}}
            for row in table.to_dict("records")}
    print_scores(out, as_json=args.json)
    return 0


def print_scores(out: dict, *, as_json: bool) -> None:
    """The scores as JSON or as the text report."""
    from explorer.metrics.equal_n import interval_text

    if as_json:
        print(json.dumps(out))
        return
    extra = f"  sigma={out['sigma']:.4g}" if "sigma" in out else ""
    extra += f"  centre={out['centre']}" if "centre" in out else ""
    print(f"n={out['n']}  kernel={out['kernel']}  method={out['method']}{extra}  rank={out['rank']}  "
          f"eigenvalue rtol={out['eigenvalue_rtol']:.1e} ({out['eigenvalues_dropped']} dropped)")
    for q, v in out["scores"].items():
        err = out.get("approx_error", {}).get(q)
        print(f"  VS_{q:<4} {v:12.6f}" + (f"   (estimated error ±{100 * err:.2f}%)" if err is not None else ""))
    for note in out.get("warnings", []):
        print(f"warning: {note}", file=sys.stderr)
    if "groups_kernel" in out:
        print(f"  groups at equal n, kernel: {out['groups_kernel']}")
    for name, g in out.get("groups", {}).items():  # a group scored whole gets no degenerate [a, a] interval
        print(f"  [{name}] n={g['n']}/{g['n_total']}  " + "  ".join(
            f"VS_{q}={interval_text(v, *g['ci'][q], draws=g['draws'])}" for q, v in g["scores"].items()))


def _npy_ids(args: argparse.Namespace, n: int) -> list[str] | None:
    """Row names of a ``.npy`` for --contributions: the manifest's ids (items.parquet beside it by
    default, checked as the single-process path checks it), else None (row numbers)."""
    default = Path(args.input).with_name("items.parquet")
    path = Path(args.manifest) if args.manifest else (default if default.is_file() else None)
    if path is None:
        return None
    if path == default:
        check_set(default.parent, [Path(args.input).name, default.name])
    manifest = _read_manifest(path, n)
    return manifest["id"].astype(str).tolist() if "id" in manifest else None


def kernel_line(args: argparse.Namespace, *, sigma: float | None, method: str, info=None) -> str:
    """How the kernel was made, in words, the same on one machine and on Ray."""
    if args.kernel == "rbf":
        return f"RBF, sigma = {sigma:.4g} ({'given' if args.sigma else 'median distance'}), {method}"
    return info.describe() if info is not None else args.kernel


def run_ray(args: argparse.Namespace) -> int:
    """``vendiscope score INPUT --ray [ADDRESS]``."""
    from explorer.cli.distributed import quiet_ray
    from explorer.distributed.score import RayVendi
    from explorer.distributed.session import ray_session
    from explorer.distributed.sources import open_source
    from explorer.metrics.spectrum import parse_orders

    if args.groups:
        raise InputError("--groups scores groups at equal n on one machine; drop --ray for it")
    if args.key:
        raise InputError("--key reads an .npz, which is read whole on one machine; with --ray give a .npy or "
                         "a folder of Parquet shards")
    orders = parse_orders(args.q)
    with ray_session(args.ray) as ray:
        quiet_ray(ray, quiet=args.json)
        source = open_source(args.input, column=args.column, ray=ray)
        analysis = RayVendi(q=orders, kernel=args.kernel, method=args.method, sigma=args.sigma, rtol=args.rtol,
                            seed=args.seed).fit(source, ray=ray, vectors=bool(args.contributions))
        out = analysis.result().to_dict()
        out["effective_rank"] = analysis.effective_rank_
        out["kernel_describe"] = kernel_line(args, sigma=analysis.plan_.sigma, method=analysis.plan_.method,
                                             info=analysis.kernel_info_)
        if args.contributions:
            ids = _npy_ids(args, source.n) if source.kind == "npy" else None
            shards = analysis.write_contributions(source, args.contributions, ray=ray, ids=ids)
            out["contributions"] = str(args.contributions)
            out["contribution_shards"] = shards
        out["ray"] = {"blocks": analysis.n_blocks_, "seconds": {k: round(v, 3) for k, v in
                                                                analysis.stage_seconds_.items()}}
    print_scores(out, as_json=args.json)
    return 0
