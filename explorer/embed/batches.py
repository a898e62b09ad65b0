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
            payload, reason = read_or_reason(self.read, row)
            if reason is None:
                inputs.append(payload)
                digests.append(digest)
            else:
                failures[digest] = reason
        return digests, self.collate(inputs) if inputs else None, failures


def read_or_reason(read, row: dict) -> tuple[Any, str | None]:
    """``(read(row), None)``, or ``(None, reason)`` when the item cannot be used: the reason a
    skipped item gets, wherever it is decoded (DataLoader workers, Ray tasks).

    >>> read_or_reason(lambda row: 1 / 0, {})
    (None, 'could not preprocess: ZeroDivisionError: division by zero')
    """
    try:
        return read(row), None
    except ImageError as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 - a preprocessing bug must not kill the job
        return None, f"could not preprocess: {type(err).__name__}: {err}"
