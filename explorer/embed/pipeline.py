"""Embed a dataset: cached vectors are reused, new items are decoded, embedded and cached in
chunks, broken items are skipped with a reason.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.data.datasets import Dataset
from explorer.data.errors import InputError
from explorer.data.outputs import SUMMARY, fingerprint_bytes
from explorer.data.sources import is_virtual, read_item
from explorer.embed.decoding import DECODE_MODES, decoded_batches
from explorer.embed.models.base import Embedder
from explorer.embed.vector_store import ChunkWriter, EmbeddingStore
from explorer.store.cache import MISSING, NPZ, atomic_write_bytes, cache_root, file_digest, read_entry, write_entry
from explorer.store.export import to_bytes

Progress = Callable[[int, int, str], None]
FLUSH_SECONDS = 30.0
SHARDS = "embeddings"  # the folder of Parquet shards in an output folder written with shard_rows


class Interrupted(KeyboardInterrupt):
    """Embedding stopped part-way; ``saved`` items of ``total`` are in the cache, so a rerun
    computes only the rest."""

    def __init__(self, saved: int, total: int) -> None:
        super().__init__(f"saved {saved:,} of {total:,} items; rerun to resume")
        self.saved, self.total = saved, total


@dataclass
class EmbeddingResult:
    """Vectors for the items that could be embedded, aligned row for row with ``items``."""

    embeddings: np.ndarray
    items: pd.DataFrame
    skipped: pd.DataFrame
    embedder: str
    embedder_key: str
    n_cached: int
    n_computed: int
    seconds: float

    def summary(self) -> dict:
        return {
            "embedder": self.embedder, "embedder_key": self.embedder_key,
            "embedded": int(len(self.items)), "skipped": int(len(self.skipped)),
            "from_cache": self.n_cached, "computed": self.n_computed,
            "dim": int(self.embeddings.shape[1]) if self.embeddings.ndim == 2 else 0,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.n_computed / self.seconds, 1) if self.seconds > 0 else None,
        }


def item_digest(row: dict) -> str:
    """SHA-1 of an item's content: the file bytes for images, the UTF-8 text for texts."""
    if row["kind"] == "text":
        return hashlib.sha1(("text\x00" + str(row["text"])).encode()).hexdigest()
    return file_digest(row["path"])


def unreadable_reason(path: str, err: Exception) -> str:
    """Why a file could not be read, in words; never raises, even for a path the system refuses
    to look at (a part over 255 bytes, a path over PATH_MAX, a NUL byte).

    >>> unreadable_reason("/no/such.png", FileNotFoundError(2, "No such file or directory"))
    'file not found'
    """
    if isinstance(err, FileNotFoundError):
        try:
            return "file not found (dangling symlink)" if os.path.islink(path) else "file not found"
        except (OSError, ValueError):
            return "file not found"
    if isinstance(err, ValueError):
        return f"unusable path: {err}"
    if getattr(err, "errno", None) == errno.ELOOP:
        return "file not found (symlink loop)"
    if getattr(err, "errno", None) == errno.ENAMETOOLONG:
        return "unusable path: a name over 255 bytes or a path over the system's limit"
    return f"file not readable: {getattr(err, 'strerror', None) or err}"


def digest_or_reason(row: dict) -> tuple[str | None, str | None]:
    """An item's content digest, or the reason it cannot be read (the memo-free twin of the
    per-item step of :func:`embed_dataset`, for workers that hash items where they are).

    >>> digest_or_reason({"kind": "image", "path": "/no/such.png"})
    (None, 'file not found')
    """
    if row["kind"] == "text":
        return item_digest(row), None
    path = str(row["path"])
    if is_virtual(path):
        try:
            return hashlib.sha1(read_item(path)).hexdigest(), None
        except (OSError, ValueError, IndexError, KeyError) as err:
            return None, f"cannot read the item: {err}"
    try:
        return item_digest(row), None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        return None, unreadable_reason(path, err)


def _digests(items: pd.DataFrame, *, cache_dir=None) -> tuple[list[str | None], dict[int, str]]:
    """Content digests of all items. File digests are remembered by (path, size, mtime), so an
    unchanged dataset is not re-read on every open."""
    memo_path = cache_root(root=cache_dir) / "digests" / "files.npz"
    memo: dict[str, tuple[int, int, str]] = {}
    # read through the cache's checksummed frame: a torn or damaged memo reads as MISSING and is
    # rebuilt from the files, never trusted
    data = read_entry(memo_path, NPZ)
    if data is not MISSING:
        try:
            memo = {p: (int(s), int(m), str(d)) for p, s, m, d in
                    zip(data["paths"].tolist(), data["sizes"], data["mtimes"], data["digests"].tolist(), strict=True)}
        except (KeyError, ValueError):  # checksummed but not a memo (another version's layout)
            memo = {}
    digests: list[str | None] = []
    reasons: dict[int, str] = {}
    changed = False
    for i, row in enumerate(items.to_dict("records")):
        if row["kind"] == "text":
            digests.append(item_digest(row))
            continue
        path = row["path"]
        if is_virtual(path):  # inside a tar shard or a table: hash the member's bytes
            digest, reason = digest_or_reason(row)
            digests.append(digest)
            if reason is not None:
                reasons[i] = reason
            continue
        try:
            stat = os.stat(path)
            hit = memo.get(path)
            if hit is not None and hit[:2] == (stat.st_size, stat.st_mtime_ns):
                digests.append(hit[2])
                continue
            digest = item_digest(row)
            memo[path] = (stat.st_size, stat.st_mtime_ns, digest)
            changed = True
            digests.append(digest)
        except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
            digests.append(None)
            reasons[i] = unreadable_reason(path, err)
    if changed:
        paths = list(memo)
        write_entry(memo_path, {"paths": np.array(paths, dtype=str),
                                "sizes": np.array([memo[p][0] for p in paths], np.int64),
                                "mtimes": np.array([memo[p][1] for p in paths], np.int64),
                                "digests": np.array([memo[p][2] for p in paths], dtype="U40")}, NPZ)
    return digests, reasons


def open_store(dataset: Dataset, embedder: Embedder, *,
               cache_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, Embedder, EmbeddingStore]:
    """The items of ``dataset``, the embedder for their modality (one kind of item per run) and its
    vector store, with the dataset's shipped packs imported: what every embedding path starts from."""
    items = dataset.items.reset_index(drop=True)
    kinds = set(items["kind"]) if len(items) else set()
    if len(kinds) > 1:
        raise ValueError(f"this dataset mixes {', '.join(sorted(kinds))} items; embed each kind separately")
    if kinds:
        embedder = embedder.for_modality(kinds.pop())
    store = EmbeddingStore(embedder.cache_key(), root=cache_dir)
    for pack in dataset.packs:
        store.import_pack(pack)
    return items, embedder, store


def embed_dataset(
    dataset: Dataset,
    embedder: Embedder,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    chunk_size: int = 2048,
    num_workers: int | None = None,
    decode: str = "auto",
    progress: Progress | None = None,
) -> EmbeddingResult:
    """Embed every item of ``dataset`` with ``embedder``, reusing and filling the disk cache.

    ``decode`` is where JPEGs are decoded and resized: "cpu" (PIL in worker processes), "gpu"
    (``decode_jpeg`` on the embedder's device) or "auto" (gpu on CUDA where the embedder supports
    it); see :func:`explorer.embed.decoding.resolve_decode`.

    >>> from explorer.data.datasets import load_image_folder, sample_data_dir
    >>> from explorer.embed.registry import get_embedder
    >>> ds = load_image_folder(sample_data_dir() / "real").items.head(3)
    >>> r = embed_dataset(Dataset(ds, "d", "d"), get_embedder("pixels"))
    >>> r.embeddings.shape
    (3, 3072)
    """
    start = time.perf_counter()
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    if dataset.vectors is not None:
        return _precomputed(dataset, start)
    items, embedder, store = open_store(dataset, embedder, cache_dir=cache_dir)
    # The decode mode is deliberately not part of the cache key: the device path's resize differs
    # from PIL's by 1-3 8-bit levels (cosine >= 0.999 per item, tests/test_gpu_decode.py), the
    # same order as bf16 autocast, which is not in the key either; keying on it would re-embed a dataset
    # whenever "auto" resolves differently (laptop vs GPU box), orphan the shipped sample packs on
    # CUDA machines, and need torch just to name the key. A "gpu" run mixes both paths anyway.
    report = progress or (lambda done, total, message: None)
    report(0, len(items), "hashing items")
    digests, reasons = _digests(items, cache_dir=cache_dir)

    cached = store.contains([d for d in digests if d is not None])
    todo: dict[str, int] = {}
    for i, d in enumerate(digests):
        if d is not None and d not in cached and d not in todo:
            todo[d] = i
    n_cached = sum(d in cached for d in digests if d is not None)

    records = items.to_dict("records") if todo else []
    jobs = [(digest, records[i]) for digest, i in todo.items()]
    # the hint resolves the device, which imports torch: only pay for it when there is work
    batch_size = batch_size or (embedder.batch_size_hint if jobs else 1)
    if jobs:
        try:  # a model that cannot be loaded fails the job here, not every item one by one
            embedder.load()
        except Exception as err:  # noqa: BLE001 - whatever the loader raised, said in one line
            # the model the user chose (a checkpoint path, weights not downloaded): an input error
            raise InputError(f"cannot load the {embedder.name} model: {type(err).__name__}: {err}") from err
    failed: dict[str, str] = {}
    # a killed job loses at most one chunk, and at most FLUSH_SECONDS of work on slow models
    writer = ChunkWriter(store, chunk_size=chunk_size, flush_seconds=FLUSH_SECONDS)
    done = 0
    try:
        for digests_ok, batch, failures in decoded_batches(jobs, embedder, batch_size=batch_size,
                                                            num_workers=num_workers, decode=decode):
            failed.update(failures)
            encoded = np.asarray(embedder.encode(batch), dtype=np.float32) if digests_ok else None
            writer.add(digests_ok, encoded)
            done += len(digests_ok) + len(failures)
            report(done, len(jobs), f"embedding with {embedder.name}")
    except BaseException as err:  # Ctrl-C, SIGTERM (as KeyboardInterrupt), a cancelled app job
        writer.flush()  # keep what is finished: a rerun resumes after it
        raise Interrupted(writer.saved_, len(jobs)) from err
    writer.flush()
    return collect_result(dataset, embedder, store, digests, reasons, failed, n_cached=n_cached,
                          n_computed=len(todo) - len(failed), start=start)


def collect_result(dataset: Dataset, embedder: Embedder, store: EmbeddingStore, digests: list[str | None],
                   reasons: dict[int, str], failed: dict[str, str], *, n_cached: int, n_computed: int,
                   start: float) -> EmbeddingResult:
    """The result of an embedding run: every item whose digest is in ``store`` and not ``failed``,
    in the dataset's order, and the skipped ones with their reasons (``reasons`` by row, for items
    never read; ``failed`` by digest, for items that could not be decoded)."""
    items = dataset.items.reset_index(drop=True)
    reasons = dict(reasons)
    keep = []
    for i, d in enumerate(digests):
        if d is None:
            continue
        if d in failed:
            reasons[i] = failed[d]
        else:
            keep.append(i)
    kept_digests = [str(digests[i]) for i in keep]
    found, vectors = store.lookup(kept_digests)
    if not found.all():  # cannot happen unless the cache folder was removed underneath us
        raise RuntimeError("embedding cache lost rows during this run")
    dim = vectors.shape[1] if vectors is not None else 0
    skipped = items.loc[sorted(reasons), [c for c in ("id", "path", "text") if c in items.columns]].copy()
    skipped["reason"] = [reasons[i] for i in sorted(reasons)]
    return EmbeddingResult(
        embeddings=vectors if vectors is not None else np.zeros((0, dim), np.float32),
        items=items.iloc[keep].assign(digest=kept_digests).reset_index(drop=True),
        skipped=_with_rejected(dataset, skipped),
        embedder=embedder.name,
        embedder_key=embedder.cache_key(),
        n_cached=n_cached,
        n_computed=n_computed,
        seconds=time.perf_counter() - start,
    )


def _precomputed(dataset: Dataset, start: float) -> EmbeddingResult:
    """Precomputed embeddings: rows with NaN/inf (or all zeros) are skipped with a reason."""
    x = np.asarray(dataset.vectors, dtype=np.float32)
    finite = np.isfinite(x).all(axis=1).astype(bool)  # an array, also for the type checker
    nonzero = np.abs(np.where(finite[:, None], x, 0)).sum(axis=1) > 0
    keep = finite & nonzero
    items = dataset.items.reset_index(drop=True)
    skipped = items.loc[~keep, ["id"]].copy()
    skipped["reason"] = np.where(finite[~keep], "all-zero embedding", "embedding contains NaN or inf")
    return EmbeddingResult(
        embeddings=x[keep], items=items[keep].reset_index(drop=True), skipped=_with_rejected(dataset, skipped),
        embedder="precomputed", embedder_key=f"precomputed-{dataset.source}", n_cached=0,
        n_computed=int(keep.sum()), seconds=time.perf_counter() - start)


def _with_rejected(dataset: Dataset, skipped: pd.DataFrame) -> pd.DataFrame:
    """The skipped items, after the rows or files that never became items (bad manifest rows...)."""
    if not len(dataset.rejected):
        return skipped.reset_index(drop=True)
    return pd.concat([dataset.rejected, skipped], ignore_index=True)


def write_embeddings(result: EmbeddingResult, out_dir: str | os.PathLike, *, shard_rows: int | None = None) -> Path:
    """Write ``embeddings.npy`` (or, with ``shard_rows``, Parquet shards of id and embedding in
    ``embeddings/``, as ``--ray`` runs do), ``items.parquet`` (row i describes embedding i),
    ``skipped.csv`` and, last, ``summary.json`` with the fingerprints of the others, each
    atomically: a reader refuses a folder whose files come from two runs
    (:mod:`explorer.data.outputs`). The other layout's files of an earlier run are removed."""
    import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}

    def put(name: str, data: bytes) -> None:  # one file at a time: shards of a large run never all in memory
        atomic_write_bytes(out / name, data)
        files[name] = fingerprint_bytes(data)

    old_shards = sorted((out / SHARDS).glob("part-*.parquet")) if (out / SHARDS).is_dir() else []
    if shard_rows is None:
        buf = io.BytesIO()
        np.save(buf, result.embeddings.astype(np.float32), allow_pickle=False)
        put("embeddings.npy", buf.getvalue())
    else:
        for i, start in enumerate(range(0, len(result.items), shard_rows)):
            put(f"{SHARDS}/part-{i:05d}.parquet", _shard_bytes(result, start, start + shard_rows))
    buf = io.BytesIO()
    result.items.to_parquet(buf, index=False)
    put("items.parquet", buf.getvalue())
    # ids and reasons come from file names and manifests: neutralised so a spreadsheet runs no formula
    put("skipped.csv", to_bytes(result.skipped, "csv"))
    for stale in [*old_shards, out / "embeddings.npy"]:
        if stale.relative_to(out).as_posix() not in files:
            stale.unlink(missing_ok=True)
    summary = {**result.summary(), "files": files}
    atomic_write_bytes(out / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
    return out


def _shard_bytes(result: EmbeddingResult, start: int, stop: int) -> bytes:
    """Rows [start, stop) as a Parquet table of ``id`` and ``embedding`` (fixed-size float32 lists)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.ascontiguousarray(result.embeddings[start:stop], dtype=np.float32)
    table = pa.table({"id": result.items["id"].iloc[start:stop].astype(str).tolist(),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
