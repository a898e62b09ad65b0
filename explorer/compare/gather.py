"""The sets to compare, gathered into one embedding space: sets of one dataset, or one dataset per
set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explorer.data.datasets import Dataset, load_dataset
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import resolve_embedder


def gather(reference: str, samples: list[str], *, within: str | None = None, model: str = "auto", cache_dir=None,
           progress=None, allow_outside: bool = False) -> tuple[np.ndarray, pd.DataFrame, str, str | None]:
    """Embeddings and items of the reference and sample sets in one space.

    With ``within`` (a dataset), the names are sets of it; otherwise each name is a dataset path
    whose items form one set named after it. Returns (embeddings, items, embedder name, notice).

    >>> from explorer.data.datasets import sample_data_dir
    >>> x, items, name, _ = gather("real", ["collapsed"], within=str(sample_data_dir()), model="pixels")
    >>> x.shape, sorted(items["set"].unique()), name
    ((2797, 3072), ['collapsed', 'real'], 'pixels-v1-32')
    """
    names = [reference, *samples]
    if len(set(names)) != len(names):
        # comparing a set with itself is how people ask for a one-dataset audit: say where it is
        hint = ""
        if reference in samples:
            hint = (f"; to look at one dataset on its own (exact and near duplicates, outliers, rare items), run "
                    f"`vendiscope audit {within or reference}`" + (" (all its sets as one pool)" if within else ""))
        raise ValueError(f"each set may be named once: {names}{hint}")
    if within:
        dataset = load_dataset(within, allow_outside=allow_outside)
        missing = [n for n in names if n not in dataset.sets]
        if missing:
            raise ValueError(f"{dataset.name} has no set(s) {missing}; its sets are {dataset.sets}")
        parts: list[tuple[Dataset, str | None]] = [(dataset.select_sets(names), None)]
    else:
        parts = [(load_dataset(n, allow_outside=allow_outside), Path(n).stem or n) for n in names]
    modality = "text" if any((d.items["kind"] == "text").any() for d, _ in parts) else "image"
    embedder, notice = resolve_embedder(model, modality=modality)
    xs, tables = [], []
    for dataset, set_name in parts:
        result = embed_dataset(dataset, embedder, cache_dir=cache_dir, progress=progress)
        items = result.items.copy()
        if set_name is not None:
            items["set"] = set_name
            items["id"] = set_name + "/" + items["id"].astype(str)
        xs.append(result.embeddings)
        tables.append(items)
    return np.vstack(xs), pd.concat(tables, ignore_index=True), embedder.cache_key(), notice
