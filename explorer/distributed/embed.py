"""Embedding on a Ray cluster, with Ray Data as its engine:

1. Ray Data holds the item list; CPU tasks hash every item where it is read
   (:func:`explorer.embed.pipeline.digest_or_reason`).
2. Items already in the content-addressed cache are not embedded again; the rest go through
   CPU tasks that decode and preprocess them (the local path's ``decode_item`` and its reasons
   for skipping) and an actor pool that runs the model: one GPU an actor where the cluster has
   GPUs, CPU actors otherwise. A killed actor is restarted by Ray and its batch retried.
   The model is loaded once on the driver before anything is read, so one that cannot load
   fails the job at once; decode tasks get only its preprocessing
   (:meth:`~explorer.embed.models.base.Embedder.preprocessor`), never a model to build. Decode
   tasks and model actors ask for different resources, so Ray Data keeps them two operators
   that run side by side instead of fusing decoding into the actors.
3. The driver receives the vectors as they stream in, keeps each item once (by digest, so a
   retried batch adds nothing twice) and saves them to the cache in chunks, so a killed run
   resumes where it stopped; the result is assembled exactly as the local path assembles it.
"""
from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.data.datasets import Dataset
from explorer.data.errors import InputError
from explorer.embed.batches import decode_item, read_or_reason
from explorer.embed.models.base import GPU_BATCH_SIZE, Embedder, TorchImageEmbedder
from explorer.embed.pipeline import (
    FLUSH_SECONDS,
    EmbeddingResult,
    Interrupted,
    collect_result,
    digest_or_reason,
    open_store,
)
from explorer.embed.vector_store import ChunkWriter, EmbeddingStore

Progress = Callable[[int, int, str], None]
BLOCKS_PER_CPU = 4  # item blocks per CPU: enough to keep every worker busy and to spread retries
# Ray Data fuses a task map into the next actor map when both ask for the same resources, and
# then every actor decodes its own batches while no other CPU decodes. A decode task asks for
# half a CPU (a model actor for a whole one, or a GPU): the two stay separate operators, and two
# decode tasks share the core left beside the actors, as decoding waits on reads part of the time.
DECODE_CPUS = 0.5


def item_columns(items: pd.DataFrame) -> pd.DataFrame:
    """What a worker needs to read an item: its kind, path and text (nothing else travels)."""
    table = pd.DataFrame({"row": np.arange(len(items)), "kind": items["kind"].astype(str).to_numpy()})
    for column in ("path", "text"):
        table[column] = items[column].astype(object).where(items[column].notna(), None).to_numpy() \
            if column in items else None
    return table


def digest_batch(batch: pd.DataFrame) -> pd.DataFrame:
    """Ray task: each item's digest, or why it cannot be read."""
    pairs = [digest_or_reason(row) for row in batch.to_dict("records")]
    return pd.DataFrame({"row": batch["row"].to_numpy(), "digest": [d or "" for d, _ in pairs],
                         "reason": [r or "" for _, r in pairs]})


def pack(payload) -> tuple[bytes, str]:
    """A preprocessed input as ``.npy`` bytes (never a pickle) and its kind: "tensor", "array"
    or "text"; :func:`unpack` reverses it.

    >>> unpack(*pack("a caption")), unpack(*pack(np.ones(2, np.float32))).tolist()
    ('a caption', [1.0, 1.0])
    """
    kind = "text" if isinstance(payload, str) else "array" if isinstance(payload, np.ndarray) else "tensor"
    array = np.array(payload) if kind == "text" else payload if kind == "array" else payload.numpy()
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue(), kind


def unpack(data: bytes, kind: str):
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "text":
        return str(array.item())
    if kind == "tensor":
        import torch

        return torch.from_numpy(array)
    return array


def decode_batch(batch: pd.DataFrame, *, preprocessor: Embedder) -> pd.DataFrame:
    """Ray task: decode and preprocess items as the local path does, a failure kept as its reason;
    ``decoder`` is this task's process id (where decoding ran)."""
    data, kinds, reasons = [], [], []
    for row in batch.to_dict("records"):
        payload, reason = read_or_reason(lambda r: decode_item(r, preprocessor), row)
        packed = pack(payload) if reason is None else (b"", "")
        data.append(packed[0])
        kinds.append(packed[1])
        reasons.append(reason or "")
    return pd.DataFrame({"digest": batch["digest"].to_numpy(), "input": data, "payload": kinds, "reason": reasons,
                         "decoder": os.getpid()})


class EmbedBatches:
    """Ray actor: loads the model once, then embeds batch after batch."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        embedder.load()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        ok = (batch["reason"] == "").to_numpy()
        vectors: list[bytes] = [b""] * len(batch)
        if ok.any():
            inputs = [unpack(d, k) for d, k in zip(batch["input"][ok], batch["payload"][ok])]
            encoded = np.asarray(self.embedder.encode(self.embedder.collate(inputs)), dtype=np.float32)
            for i, v in zip(np.flatnonzero(ok), encoded):
                vectors[i] = v.tobytes()
        return pd.DataFrame({"digest": batch["digest"].to_numpy(), "embedding": vectors,
                             "reason": batch["reason"].to_numpy(), "worker": os.getpid(),
                             "decoder": batch["decoder"].to_numpy()})


def blocks(table: pd.DataFrame, *, batch_size: int, cpus: int) -> list[pd.DataFrame]:
    """``table`` cut into whole batches, about ``BLOCKS_PER_CPU`` blocks a CPU (one block is one task).

    >>> [len(b) for b in blocks(pd.DataFrame({"a": range(10)}), batch_size=3, cpus=1)]
    [3, 3, 3, 1]
    """
    per_block = batch_size * max(1, math.ceil(len(table) / (batch_size * BLOCKS_PER_CPU * max(cpus, 1))))
    return [table.iloc[s : s + per_block] for s in range(0, len(table), per_block)] or [table]


def embed_with_ray(
    dataset: Dataset, embedder: Embedder, *, ray, cache_dir: str | os.PathLike | None = None,
    batch_size: int | None = None, chunk_size: int = 2048, actors: int | None = None,
    progress: Progress | None = None,
) -> EmbeddingResult:
    """Embed every item of ``dataset`` on the Ray cluster ``ray`` is connected to (see the module
    docstring); the result equals :func:`explorer.embed.pipeline.embed_dataset`'s. ``actors`` caps
    the model actors (default: one per GPU, else the CPUs less one for decoding)."""
    start = time.perf_counter()
    if dataset.vectors is not None:
        raise InputError("these are precomputed embeddings; there is nothing to embed on the cluster")
    items, embedder, store = open_store(dataset, embedder, cache_dir=cache_dir)
    # before any item is read: hashing a large dataset on the cluster takes long, and a model
    # that cannot load is known in seconds (a fully cached rerun pays this load too)
    preprocessor = ready_to_decode(embedder) if len(items) else embedder
    report = progress or (lambda done, total, message: None)
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    # the driver may have no GPU of its own: the batch size follows the actors' devices, not its own
    batch_size = batch_size or (GPU_BATCH_SIZE if gpus and isinstance(embedder, TorchImageEmbedder)
                                else embedder.default_batch_size)
    report(0, len(items), "hashing items")
    digests: list[str | None] = [None] * len(items)
    reasons: dict[int, str] = {}
    if len(items):
        hashed = ray.data.from_pandas(blocks(item_columns(items), batch_size=batch_size, cpus=cpus)).map_batches(
            digest_batch, batch_format="pandas", batch_size=None).to_pandas()
        for row, digest, reason in hashed.itertuples(index=False):
            digests[int(row)] = digest or None
            if reason:
                reasons[int(row)] = reason
    cached = store.contains([d for d in digests if d is not None])
    todo: dict[str, int] = {}
    for i, d in enumerate(digests):
        if d is not None and d not in cached and d not in todo:
            todo[d] = i
    n_cached = sum(d in cached for d in digests if d is not None)
    failed: dict[str, str] = {}
    workers: set[int] = set()
    decoders: set[int] = set()
    if todo:
        jobs = item_columns(items.iloc[list(todo.values())]).assign(digest=list(todo))
        pool = actors or (gpus if gpus else max(1, cpus - 1))
        stream = (ray.data.from_pandas(blocks(jobs, batch_size=batch_size, cpus=cpus))
                  .map_batches(decode_batch, batch_format="pandas", batch_size=batch_size,
                               fn_kwargs={"preprocessor": preprocessor}, num_cpus=DECODE_CPUS)
                  .map_batches(EmbedBatches, batch_format="pandas", batch_size=batch_size,
                               fn_constructor_kwargs={"embedder": embedder}, num_cpus=1,
                               num_gpus=1 if gpus else None,
                               compute=ray.data.ActorPoolStrategy(min_size=1, max_size=pool)))
        failed, workers, decoders = _receive(stream, store, total=len(todo), chunk_size=chunk_size,
                                             report=report, message=f"embedding with {embedder.name}")
    result = collect_result(dataset, embedder, store, digests, reasons, failed, n_cached=n_cached,
                            n_computed=len(todo) - len(failed), start=start)
    return RayEmbeddingResult(**vars(result), workers=sorted(workers), decoders=sorted(decoders), gpus=gpus,
                              cpus=cpus)


def ready_to_decode(embedder: Embedder) -> Embedder:
    """``embedder``'s :meth:`~explorer.embed.models.base.Embedder.preprocessor`, built on the
    driver; a model that cannot load is an :class:`InputError` (the user's model or checkpoint),
    worded as the local path words it."""
    try:
        return embedder.preprocessor()
    except Exception as err:  # noqa: BLE001 - whatever the loader raised, said in one line
        raise InputError(f"cannot load the {embedder.name} model: {type(err).__name__}: {err}") from err


@dataclass
class RayEmbeddingResult(EmbeddingResult):
    """An embedding result, with where it was computed: the model actors' and the decode tasks'
    process ids and the cluster's CPUs and GPUs (also in ``summary.json``)."""

    workers: list[int] = field(default_factory=list)
    decoders: list[int] = field(default_factory=list)
    gpus: int = 0
    cpus: int = 0

    def summary(self) -> dict:
        return {**super().summary(), "ray": {"cpus": self.cpus, "gpus": self.gpus, "actors_used": len(self.workers),
                                             "decode_processes": len(self.decoders)}}


def _receive(stream, store: EmbeddingStore, *, total: int, chunk_size: int, report: Progress,
             message: str) -> tuple[dict[str, str], set[int], set[int]]:
    """Consume the pipeline's output: each digest once into the cache, in chunks; the failures,
    the model actors' and the decode tasks' process ids."""
    seen: set[str] = set()
    failed: dict[str, str] = {}
    workers: set[int] = set()
    decoders: set[int] = set()
    writer = ChunkWriter(store, chunk_size=chunk_size, flush_seconds=FLUSH_SECONDS)
    try:
        for batch in stream.iter_batches(batch_format="pandas", batch_size=None):
            digests: list[str] = []
            vectors: list[np.ndarray] = []
            for digest, vector, reason, worker, decoder in batch.itertuples(index=False):
                workers.add(int(worker))
                decoders.add(int(decoder))
                if digest in seen:  # a retried batch: its items are already in
                    continue
                seen.add(digest)
                if reason:
                    failed[digest] = reason
                else:
                    digests.append(digest)
                    vectors.append(np.frombuffer(vector, dtype=np.float32))
            writer.add(digests, np.stack(vectors) if vectors else None)
            report(len(seen), total, message)
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM: keep what is finished, a rerun resumes after it
        writer.flush()
        raise Interrupted(writer.saved_, total) from err
    except BaseException:  # a failure (the model cannot load...): it is reported, the finished part kept
        writer.flush()
        raise
    writer.flush()
    return failed, workers, decoders
