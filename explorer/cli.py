"""The ``vendiscope`` command line: score, embed, compare, flag, export, app."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from explorer.vendi import DEFAULT_ORDERS, order_label, parse_orders


def _read_manifest(path: Path, n: int):
    import pandas as pd

    table = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path, dtype=str)
    if len(table) != n:
        raise ValueError(f"manifest {path.name} has {len(table)} rows but the embeddings have {n}")
    return table.reset_index(drop=True)


def _cmd_score(args: argparse.Namespace) -> int:
    import io

    import pandas as pd

    from explorer.analysis import bootstrap_scores, kmeans_labels
    from explorer.arrays import load_array
    from explorer.diversity import VendiAnalysis
    from explorer.storage import atomic_write_bytes

    x = load_array(args.input, key=args.key, column=args.column, mmap=True)
    orders = parse_orders(args.q)
    analysis = VendiAnalysis(q=orders, kernel=args.kernel, method=args.method, sigma=args.sigma, rtol=args.rtol,
                             contributions=bool(args.contributions), seed=args.seed).fit(x)
    out = analysis.result().to_dict()
    out["effective_rank"] = analysis.effective_rank_
    manifest = None
    clusters = args.groups and args.groups.startswith("kmeans:")
    if args.manifest or (args.groups and not clusters) or args.contributions:
        default = Path(args.input).with_name("items.parquet")
        path = Path(args.manifest) if args.manifest else (default if default.is_file() else None)
        if path is None and args.groups and not clusters:
            raise ValueError("--groups needs --manifest (a table with one row per embedding)")
        manifest = _read_manifest(path, x.shape[0]) if path is not None else None
    if args.contributions:
        c = analysis.contributions_.copy()
        ids = manifest["id"] if manifest is not None and "id" in manifest else pd.Series(range(len(c)))
        c.insert(0, "id", ids.astype(str).to_numpy())
        buf = io.BytesIO()
        c.to_parquet(buf, index=False)
        atomic_write_bytes(args.contributions, buf.getvalue())
        out["contributions"] = str(args.contributions)
    if args.groups:
        if args.kernel != "cosine":
            raise ValueError("--groups compares groups on the cosine kernel")
        if clusters:
            labels = kmeans_labels(np.asarray(x), k=int(args.groups.split(":", 1)[1]), seed=args.seed)
        elif args.groups not in manifest.columns:
            raise ValueError(f"no column {args.groups!r} in the manifest (it has {list(manifest.columns)})")
        else:
            labels = manifest[args.groups].fillna("(none)")
        table = bootstrap_scores(np.asarray(x), labels, q=orders, n_boot=args.n_boot, seed=args.seed)
        out["groups"] = {
            row["group"]: {"n": int(row["n"]), "n_total": int(row["n_total"]),
                           "scores": {order_label(o): row[f"VS_{order_label(o)}"] for o in orders},
                           "ci": {order_label(o): [row[f"VS_{order_label(o)}_lo"], row[f"VS_{order_label(o)}_hi"]]
                                  for o in orders}}
            for row in table.to_dict("records")}
    if args.json:
        print(json.dumps(out))
        return 0
    extra = f"  sigma={out['sigma']:.4g}" if "sigma" in out else ""
    print(f"n={out['n']}  kernel={out['kernel']}  method={out['method']}{extra}  rank={out['rank']}  "
          f"eigenvalue rtol={out['eigenvalue_rtol']:.1e} ({out['eigenvalues_dropped']} dropped)")
    for q, v in out["scores"].items():
        err = out.get("approx_error", {}).get(q)
        print(f"  VS_{q:<4} {v:12.6f}" + (f"   (±{100 * err:.2f}% vs exact on a subsample)" if err is not None else ""))
    for name, g in out.get("groups", {}).items():
        print(f"  [{name}] n={g['n']}/{g['n_total']}  " + "  ".join(
            f"VS_{q}={v:.3f} [{g['ci'][q][0]:.3f}, {g['ci'][q][1]:.3f}]" for q, v in g["scores"].items()))
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from explorer.datasets import load_dataset
    from explorer.embedders import resolve_embedder
    from explorer.embedding import embed_dataset, write_embeddings

    dataset = load_dataset(args.source)
    modality = "text" if (dataset.items["kind"] == "text").any() else "image"
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

    result = embed_dataset(dataset, embedder, cache_dir=args.cache_dir, batch_size=args.batch_size,
                           chunk_size=args.chunk_size, num_workers=args.workers, decode=args.decode,
                           progress=progress)
    bar.close()
    out = write_embeddings(result, args.out)
    summary = result.summary()
    print(f"embedded {summary['embedded']} items ({summary['from_cache']} from cache, "
          f"{summary['computed']} computed at {summary['items_per_second'] or 0:.1f} items/s) with "
          f"{summary['embedder']} -> {out}", file=sys.stderr)
    if len(result.skipped):
        print(f"skipped {len(result.skipped)} item(s), see {out / 'skipped.csv'}:", file=sys.stderr)
        for row in result.skipped.head(20).itertuples(index=False):
            print(f"  {row.id}: {row.reason}", file=sys.stderr)
    return 0


def _ids(args: argparse.Namespace) -> list[str]:
    ids = [i for i in (args.ids or "").split(",") if i]
    if args.ids_file:
        ids += [line.strip() for line in Path(args.ids_file).read_text().splitlines() if line.strip()]
    return ids


def _cmd_flag(args: argparse.Namespace) -> int:
    from explorer.datasets import load_dataset
    from explorer.flags import FlagStore

    dataset = load_dataset(args.source)
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


def _cmd_export(args: argparse.Namespace) -> int:
    from explorer.datasets import load_dataset
    from explorer.export import export_table, write_export
    from explorer.flags import FlagStore

    dataset = load_dataset(args.source)
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


def app_script() -> Path:
    """The Streamlit entry script, which lives beside the package in a source checkout."""
    script = Path(__file__).resolve().parent.parent / "app.py"
    if not script.is_file():
        raise FileNotFoundError(f"app.py not found next to the explorer package ({script}); "
                                "run vendiscope from a source checkout (pip install -e .)")
    return script


def _cmd_app(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_script()),
           "--server.address", args.host, "--server.port", str(args.port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    if args.paths:
        cmd += ["--", *[str(Path(p).expanduser().resolve()) for p in args.paths]]
    print(f"Vendiscope at http://{args.host}:{args.port}", file=sys.stderr)
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vendiscope", description="Dataset diversity explorer.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="Vendi scores of an embeddings file or a similarity matrix")
    p.add_argument("input", help=".npy, .npz (with --key) or .parquet (with --column)")
    p.add_argument("--q", default=",".join(order_label(q) for q in DEFAULT_ORDERS),
                   help="orders, comma-separated (default: %(default)s)")
    p.add_argument("--kernel", choices=("cosine", "rbf", "precomputed"), default="cosine",
                   help="cosine or RBF on embeddings, or an n x n similarity matrix")
    p.add_argument("--sigma", type=float, help="RBF bandwidth: exp(-|x-y|^2 / (2 sigma^2)); default: median distance")
    p.add_argument("--method", choices=("auto", "exact", "dual", "rff", "nystrom"), default="auto",
                   help="auto: dual (d x d) for cosine; exact RBF up to 3000 items, Nystrom above")
    p.add_argument("--contributions", type=Path, metavar="OUT.parquet",
                   help="write per-item contributions (id, entropy h_i, loo_delta, crowdedness)")
    p.add_argument("--groups", metavar="COLUMN",
                   help="also score each group at equal n: a manifest column, or kmeans:K for K clusters")
    p.add_argument("--manifest", help="table with one row per embedding (default: items.parquet beside INPUT)")
    p.add_argument("--n-boot", type=int, default=50, help="random equal-n subsets per group (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--key", help="array name inside an .npz")
    p.add_argument("--column", help="array column of a .parquet")
    p.add_argument("--rtol", type=float, help="relative eigenvalue tolerance (default: by precision)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("embed", help="embed a dataset and write embeddings.npy + items.parquet")
    p.add_argument("source", help="image folder; CSV/Parquet/JSONL manifest (paths or texts); .txt (one text "
                                  "per line); .npy/.npz/.parquet embeddings")
    p.add_argument("--model", default="auto",
                   help="auto, pixels, efficientnet-lite0, minilm, clip:ARCH[/TAG|@PATH]")
    p.add_argument("--pretrained", help="open_clip pretrained tag or checkpoint path")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, help="default: 512 on CUDA, 64-512 on CPU by model")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                   help="autocast on CUDA (auto: bf16 where supported, else fp16)")
    p.add_argument("--workers", type=int, help="decode worker processes (default: cores - 1 for image models)")
    p.add_argument("--decode", choices=("auto", "cpu", "gpu"), default="auto",
                   help="where JPEGs are decoded and resized: cpu (PIL in the workers), gpu (torchvision decode_jpeg "
                        "on the model's device; other files still use the CPU) or auto (gpu on CUDA)")
    p.add_argument("--chunk-size", type=int, default=2048,
                   help="items per cache chunk: a killed job re-embeds at most this many (default %(default)s)")
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_embed)

    from explorer import compare_cli

    compare_cli.add_parser(sub)

    p = sub.add_parser("flag", help="flag items of a dataset with a reason (or --remove flags)")
    p.add_argument("source", help="the dataset, as opened in the app")
    p.add_argument("--ids", help="comma-separated item ids")
    p.add_argument("--ids-file", help="a file with one item id per line")
    p.add_argument("--reason", help="why (required to flag; with --remove: only this reason)")
    p.add_argument("--remove", action="store_true")
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.set_defaults(func=_cmd_flag)

    p = sub.add_parser("export", help="export items with their flag reasons as CSV, Parquet or JSON")
    p.add_argument("source", help="the dataset, as opened in the app")
    p.add_argument("--out", required=True, help="output file: .csv, .parquet or .json")
    p.add_argument("--flagged", action="store_true", help="only flagged items")
    p.add_argument("--ids", help="only these comma-separated ids")
    p.add_argument("--ids-file", help="only the ids in this file (one per line)")
    p.add_argument("--cache-dir", help="cache folder (default: $VENDISCOPE_CACHE or ~/.cache/vendiscope)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("app", help="launch the app (default: the bundled sample data)")
    p.add_argument("paths", nargs="*", help="datasets to open")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=_cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
