"""Content-addressed embedding cache, in chunks.

Vectors are keyed by the SHA-1 of each item's content and stored per embedder key
(weights + preprocessing) in chunk files of a few thousand rows. Each chunk is written atomically
and named by the hash of what it holds, so a chunk that does not match its name is never read.
A killed job loses at most the chunk it was filling; new items add new chunks.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from explorer.store.cache import atomic_write_bytes, cache_root, hash_key, load_arrays, save_arrays

log = logging.getLogger(__name__)


def _chunk_name(digests: np.ndarray, vectors: np.ndarray) -> str:
    return hash_key(digests.astype("U40").tobytes(), np.ascontiguousarray(vectors, dtype=np.float32).tobytes())


class EmbeddingStore:
    """The cached vectors of one embedder.

    >>> import tempfile
    >>> store = EmbeddingStore("demo", root=tempfile.mkdtemp())
    >>> _ = store.add(["a" * 40], np.ones((1, 3), np.float32))
    >>> store.lookup(["a" * 40, "b" * 40])[0].tolist()
    [True, False]
    """

    def __init__(self, embedder_key: str, *, root: str | os.PathLike | None = None) -> None:
        self.embedder_key = embedder_key
        self.dir = cache_root(root=root) / "embeddings" / embedder_key
        self._index: dict[str, tuple[int, int]] | None = None
        self._chunks: list[np.ndarray] = []

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            data = load_arrays(path)
            digests, vectors = data["digests"], data["vectors"]
            if _chunk_name(digests, vectors) != path.stem or len(digests) != len(vectors):
                raise ValueError("content does not match its name")
            return digests.astype("U40"), vectors.astype(np.float32)
        except Exception as err:  # noqa: BLE001 - any unreadable chunk is set aside, never used
            log.warning("ignoring corrupt embedding chunk %s: %s", path, err)
            path.rename(path.with_suffix(".corrupt"))
            return None

    def _load_index(self) -> dict[str, tuple[int, int]]:
        if self._index is None:
            self._index, self._chunks = {}, []
            for path in sorted(self.dir.glob("*.npz")) if self.dir.is_dir() else []:
                chunk = self._read(path)
                if chunk is not None:
                    self._add_to_index(*chunk)
        return self._index

    def _add_to_index(self, digests: np.ndarray, vectors: np.ndarray) -> None:
        index = self._load_index() if self._index is None else self._index
        c = len(self._chunks)
        self._chunks.append(vectors)
        for row, d in enumerate(digests.tolist()):
            index[d] = (c, row)

    def __len__(self) -> int:
        return len(self._load_index())

    def contains(self, digests: list[str]) -> set[str]:
        """The subset of ``digests`` that the store holds."""
        index = self._load_index()
        return {d for d in digests if d in index}

    def lookup(self, digests: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """A found-mask over ``digests`` and the vectors of the found ones, in order."""
        index = self._load_index()
        hits = [index.get(d, (-1, -1)) for d in digests]
        where = np.array(hits, dtype=np.int64).reshape(-1, 2)
        found = where[:, 0] >= 0
        if not found.any():
            return found, None
        where = where[found]
        dim = self._chunks[where[0, 0]].shape[1]
        out = np.empty((len(where), dim), dtype=np.float32)
        for c in np.unique(where[:, 0]):
            sel = where[:, 0] == c
            out[sel] = self._chunks[c][where[sel, 1]]
        return found, out

    def add(self, digests: list[str], vectors: np.ndarray) -> Path:
        """Write one chunk atomically and make it visible to lookups."""
        names = np.asarray(digests, dtype="U40")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(names) != len(vectors):
            raise ValueError("need one vector per digest")
        path = self.dir / f"{_chunk_name(names, vectors)}.npz"
        if not path.exists():
            save_arrays(path, digests=names, vectors=vectors)
        if self._index is not None and (len(names) == 0 or names[0] not in self._index):
            self._add_to_index(names, vectors)
        return path

    def import_pack(self, path: str | os.PathLike) -> int:
        """Add a shipped pack (``embedder_key``, ``digests``, ``vectors``) if it is for this
        embedder; returns the number of rows imported (0 when it is for another one)."""
        path = Path(path)
        stat = path.stat()
        marker = self.dir / "imported" / hash_key(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if marker.exists():  # already in the store: skip re-reading and re-hashing the pack
            return 0
        data = load_arrays(path)
        if str(data["embedder_key"]) != self.embedder_key:
            return 0
        self.add(list(data["digests"].astype("U40")), data["vectors"].astype(np.float32))
        atomic_write_bytes(marker, b"")
        return len(data["digests"])


def write_pack(path: str | os.PathLike, *, embedder_key: str, digests: list[str], vectors: np.ndarray,
               dtype: str = "float16") -> Path:
    """Write precomputed embeddings to ship beside a dataset (``<root>/embeddings/*.npz``)."""
    return save_arrays(path, embedder_key=np.array(embedder_key), digests=np.asarray(digests, dtype="U40"),
                       vectors=np.asarray(vectors).astype(dtype))


class ChunkWriter:
    """Vectors gathered into chunks of an :class:`EmbeddingStore`: a chunk is written once
    ``chunk_size`` vectors wait or ``flush_seconds`` have passed, so a killed job loses at most one
    chunk, and at most that much work on a slow model. ``saved_`` counts what was written.

    >>> import tempfile
    >>> w = ChunkWriter(EmbeddingStore(tempfile.mkdtemp()), chunk_size=2)
    >>> w.add(["a"], np.ones((1, 3), np.float32)); w.saved_
    0
    >>> w.add(["b"], np.ones((1, 3), np.float32)); w.saved_
    2
    """

    def __init__(self, store: EmbeddingStore, *, chunk_size: int, flush_seconds: float = 30.0) -> None:
        self.store = store
        self.chunk_size = chunk_size
        self.flush_seconds = flush_seconds
        self.saved_ = 0
        self._digests: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._last = time.monotonic()

    def add(self, digests: list[str], vectors: np.ndarray | None) -> None:
        """Queue rows (one digest each; ``vectors`` None when there are none), then write a chunk
        if one is due."""
        if len(digests):
            self._vectors.append(np.asarray(vectors, dtype=np.float32).reshape(len(digests), -1))
            self._digests.extend(digests)  # both lists grow together: an interrupt keeps them paired
        if len(self._digests) >= self.chunk_size or time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write whatever waits (also what is finished when a job is interrupted)."""
        if self._digests:
            self.store.add(list(self._digests), np.concatenate(self._vectors))
            self.saved_ += len(self._digests)
            self._digests.clear()
            self._vectors.clear()
        self._last = time.monotonic()
