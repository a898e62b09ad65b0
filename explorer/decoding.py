"""Decode and preprocess items into model-ready batches, in worker processes when it pays.

Decoding (file read, image decode, resize) runs in a torch DataLoader with workers, pinned
memory and prefetching, so the model never waits on the CPU; a broken item becomes a reason in
the batch's failures instead of an exception.
"""
from __future__ import annotations

import os
from typing import Iterator

from explorer.embedders import Embedder
from explorer.images import ImageError, load_image

Batch = tuple[list[str], object, dict[str, str]]  # digests, collated batch (or None), failures


def decode_item(row: dict, embedder: Embedder):
    """One item to the embedder's input, or :class:`ImageError` with the reason."""
    if row["kind"] == "text":
        if not str(row["text"]).strip():
            raise ImageError("empty text")
        return embedder.preprocess(str(row["text"]))
    return embedder.preprocess(load_image(row["path"]))


class _Batches:
    """Map-style dataset whose items are whole batches: a worker decodes and collates one batch."""

    def __init__(self, jobs: list[tuple[str, dict]], embedder: Embedder, batch_size: int) -> None:
        self.jobs = jobs
        self.embedder = embedder
        self.batch_size = batch_size

    def __len__(self) -> int:
        return (len(self.jobs) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, b: int) -> Batch:
        digests, inputs, failures = [], [], {}
        for digest, row in self.jobs[b * self.batch_size : (b + 1) * self.batch_size]:
            try:
                inputs.append(decode_item(row, self.embedder))
                digests.append(digest)
            except ImageError as err:
                failures[digest] = str(err)
            except Exception as err:  # noqa: BLE001 - a preprocessing bug must not kill the job
                failures[digest] = f"could not preprocess: {type(err).__name__}: {err}"
        return digests, self.embedder.collate(inputs) if inputs else None, failures


def default_workers(embedder: Embedder, n_items: int, batch_size: int) -> int:
    """Worker processes for decoding: none for cheap inputs or small jobs, else cores − 1."""
    if embedder.modality != "image" or embedder.name == "pixels" or n_items < 2 * batch_size:
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def decoded_batches(jobs: list[tuple[str, dict]], embedder: Embedder, *, batch_size: int,
                    num_workers: int | None = None) -> Iterator[Batch]:
    """Batches of decoded items for ``jobs`` (digest, item row), in order."""
    batches = _Batches(jobs, embedder, batch_size)
    workers = default_workers(embedder, len(jobs), batch_size) if num_workers is None else num_workers
    if workers == 0:
        for b in range(len(batches)):
            yield batches[b]
        return
    import torch

    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, shuffle=False, num_workers=workers, prefetch_factor=4,
        pin_memory=str(getattr(embedder, "device", "cpu")).startswith("cuda"), persistent_workers=False)
    yield from loader
