"""One batch of items decoded and preprocessed for an embedder, with every failure kept as a
reason. Runs in DataLoader workers (:mod:`explorer.embed.decoding`)."""
from __future__ import annotations

from typing import Any

from explorer.data.images import ImageError, load_image
from explorer.embed.models.base import Embedder

Batch = tuple[list[str], Any, dict[str, str]]  # digests, collated batch (or None), failures


def decode_item(row: dict, embedder: Embedder):
    """One item to the embedder's input, or :class:`ImageError` with the reason."""
    if row["kind"] == "text":
        if not str(row["text"]).strip():
            raise ImageError("empty text")
        return embedder.preprocess(str(row["text"]))
    return embedder.preprocess(load_image(row["path"]))


class ItemBatches:
    """Map-style dataset whose items are whole batches: a worker decodes and collates one batch."""

    def __init__(self, jobs: list[tuple[str, dict]], embedder: Embedder, batch_size: int) -> None:
        self.jobs = jobs
        self.embedder = embedder
        self.batch_size = batch_size

    def __len__(self) -> int:
        return (len(self.jobs) + self.batch_size - 1) // self.batch_size

    def read(self, row: dict):
        """One item's payload for the batch (runs in a worker)."""
        return decode_item(row, self.embedder)

    def collate(self, inputs: list):
        return self.embedder.collate(inputs)

    def __getitem__(self, b: int) -> Batch:
        digests, inputs, failures = [], [], {}
        for digest, row in self.jobs[b * self.batch_size : (b + 1) * self.batch_size]:
            try:
                inputs.append(self.read(row))
                digests.append(digest)
            except ImageError as err:
                failures[digest] = str(err)
            except Exception as err:  # noqa: BLE001 - a preprocessing bug must not kill the job
                failures[digest] = f"could not preprocess: {type(err).__name__}: {err}"
        return digests, self.collate(inputs) if inputs else None, failures
