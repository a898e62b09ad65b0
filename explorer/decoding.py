"""Decode and preprocess items into model-ready batches, in worker processes when it pays.

Decoding (file read, image decode, resize) runs in a torch DataLoader with workers, pinned
memory and prefetching, so the model never waits on the CPU; a broken item becomes a reason in
the batch's failures instead of an exception.

``decode="gpu"`` moves JPEG decoding onto the model's device (:mod:`explorer.gpu_decode`): the
workers then only read bytes, and the main process decodes and resizes whole batches there.
"""
from __future__ import annotations

import os
from typing import Iterator

from explorer.embedders import Embedder, resolve_device
from explorer.images import ImageError, load_image

Batch = tuple[list[str], object, dict[str, str]]  # digests, collated batch (or None), failures
DECODE_MODES = ("auto", "cpu", "gpu")


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


def default_workers(embedder: Embedder, n_items: int, batch_size: int) -> int:
    """Worker processes for decoding: none for cheap inputs or small jobs, else cores − 1."""
    if embedder.modality != "image" or embedder.name == "pixels" or n_items < 2 * batch_size:
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def resolve_decode(decode: str, embedder: Embedder) -> str:
    """Where JPEGs are decoded: ``"cpu"`` (PIL in the workers) or ``"gpu"`` (decode_jpeg on the
    embedder's device, which may be the CPU). ``"auto"`` picks gpu only on CUDA and only for an
    embedder whose preprocessing has a tensor twin. "gpu" stays a choice, not the rule, because
    it has not been measured faster here (no GPU); ``benchmarks/embed.py --decode both`` says.

    >>> from explorer.embedders import get_embedder
    >>> resolve_decode("auto", get_embedder("pixels")), resolve_decode("cpu", get_embedder("pixels"))
    ('cpu', 'cpu')
    """
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    if decode == "cpu" or embedder.modality != "image":
        return "cpu"
    if decode == "auto":
        if not resolve_device(getattr(embedder, "device", "cpu")).startswith("cuda"):
            return "cpu"
        return "gpu" if embedder.tensor_transform() is not None else "cpu"
    if embedder.tensor_transform() is None:
        raise ValueError(f"{embedder.name} has no tensor preprocessing, so it cannot decode on the device; "
                         "use decode='cpu' (--decode cpu)")
    return "gpu"


def decoded_batches(jobs: list[tuple[str, dict]], embedder: Embedder, *, batch_size: int,
                    num_workers: int | None = None, decode: str = "cpu") -> Iterator[Batch]:
    """Batches of decoded items for ``jobs`` (digest, item row), in order; ``decode`` as in
    :func:`resolve_decode` (with "gpu" a batch is already on the embedder's device)."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    # resolving may import torch or build the model: only worth it when there is work
    mode = resolve_decode(decode, embedder) if jobs else "cpu"
    if mode == "gpu":
        from explorer.gpu_decode import RawBatches, finish_batch

        batches: _Batches = RawBatches(jobs, embedder, batch_size)
    else:
        batches = _Batches(jobs, embedder, batch_size)
    workers = default_workers(embedder, len(jobs), batch_size) if num_workers is None else num_workers
    if workers == 0:
        loader: Iterator[Batch] = (batches[b] for b in range(len(batches)))
    else:
        import torch

        loader = iter(torch.utils.data.DataLoader(
            batches, batch_size=None, shuffle=False, num_workers=workers, prefetch_factor=4,
            pin_memory=str(getattr(embedder, "device", "cpu")).startswith("cuda"), persistent_workers=False))
    for batch in loader:
        yield finish_batch(batch, embedder) if mode == "gpu" else batch

