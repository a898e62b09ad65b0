"""Decode and preprocess items into model-ready batches, in worker processes when it pays.

Decoding (file read, image decode, resize, :mod:`explorer.embed.batches`) runs in a torch
DataLoader with workers, pinned memory and prefetching, so the model never waits on the CPU; a
broken item becomes a reason in the batch's failures instead of an exception.

``decode="gpu"`` moves JPEG decoding onto the model's device (:mod:`explorer.embed.gpu_decode`): the
workers then only read bytes, and the main process decodes and resizes whole batches there.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from explorer.embed.batches import Batch, ItemBatches
from explorer.embed.gpu_decode import RawBatches, finish_batch
from explorer.embed.models.base import Embedder, resolve_device

DECODE_MODES = ("auto", "cpu", "gpu")


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

    >>> from explorer.embed.registry import get_embedder
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
    batches = RawBatches(jobs, embedder, batch_size) if mode == "gpu" else ItemBatches(jobs, embedder, batch_size)
    workers = default_workers(embedder, len(jobs), batch_size) if num_workers is None else num_workers
    if workers == 0:
        loader: Iterator[Batch] = (batches[b] for b in range(len(batches)))
    else:
        import torch

        loader = iter(torch.utils.data.DataLoader(
            batches,  # type: ignore[arg-type]  # map-style (__len__, __getitem__), not a torch Dataset subclass
            batch_size=None, shuffle=False, num_workers=workers, prefetch_factor=4,
            pin_memory=str(getattr(embedder, "device", "cpu")).startswith("cuda"), persistent_workers=False))
    for batch in loader:
        yield finish_batch(batch, embedder) if mode == "gpu" else batch

