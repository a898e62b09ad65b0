"""Regenerate the embeddings shipped with the sample data (``digits/embeddings/*.npz``).

They let the app open the sample data in seconds on a CPU; tests/test_sample_data.py re-embeds a
subset with the same library code and checks it matches. Run: ``python sample_data/make_embeddings.py``.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from explorer.data.datasets import load_dataset
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder
from explorer.embed.vector_store import write_pack

SHIPPED = ("efficientnet-lite0",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "digits")
    parser.add_argument("--models", default=",".join(SHIPPED))
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    dataset.packs = []  # embed from scratch, not from the packs being replaced
    for name in args.models.split(","):
        embedder = get_embedder(name, device="cpu")
        with tempfile.TemporaryDirectory() as cache:
            result = embed_dataset(dataset, embedder, cache_dir=cache,
                                   progress=lambda d, t, m: print(f"\r{m}: {d}/{t}", end="", flush=True))
        print()
        if len(result.skipped):
            raise SystemExit(f"{len(result.skipped)} sample items failed to embed:\n{result.skipped}")
        out = write_pack(args.data / "embeddings" / f"{name}.npz", embedder_key=embedder.cache_key(),
                         digests=list(result.items["digest"]), vectors=result.embeddings)
        print(f"{name}: {len(result.items)} x {result.embeddings.shape[1]} -> {out} "
              f"({out.stat().st_size / 1e6:.1f} MB, {result.summary()['items_per_second']} items/s)")


if __name__ == "__main__":
    main()
