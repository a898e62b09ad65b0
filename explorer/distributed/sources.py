"""Embeddings read where they live, in blocks of rows for Ray tasks.

- A ``.npy`` file is cut into row ranges; each task maps the file and reads its own rows, so no
  row travels through the driver or the object store (the file must be where every worker sees
  it: a local run, or a shared filesystem).
- Anything else goes to Ray Data: a folder (or single file) of Parquet shards with an embedding
  column and, optionally, an ``id`` column, local or in object storage (``s3://``, ``gs://``...);
  a folder of ``.npy`` files.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explorer.data.arrays import EMBEDDING_COLUMNS, load_array
from explorer.data.errors import InputError

BLOCK_BYTES = 128 << 20  # rows a task reads at once: large enough that Ray's per-task cost is noise
ID_COLUMN = "id"


@dataclass
class EmbeddingSource:
    """Rows to be scored: ``kind`` "npy" (``path`` read by row ranges) or "data" (``dataset``, a
    Ray Data dataset whose ``column`` holds the vectors and ``id_column``, if any, the ids)."""

    path: str
    kind: str
    n: int
    dim: int
    column: str | None = None
    id_column: str | None = None
    dataset: Any = None

    def block_rows(self, *, block_bytes: int = BLOCK_BYTES) -> int:
        """Rows per task: ``block_bytes`` of float32 rows.

        >>> EmbeddingSource("x.npy", "npy", n=10, dim=512).block_rows()
        65536
        """
        return max(1, block_bytes // (4 * self.dim))

    def ranges(self, block_rows: int) -> list[tuple[int, int]]:
        """The row ranges [start, stop) of the tasks (npy sources).

        >>> EmbeddingSource("x.npy", "npy", n=5, dim=2).ranges(2)
        [(0, 2), (2, 4), (4, 5)]
        """
        return [(s, min(self.n, s + block_rows)) for s in range(0, self.n, block_rows)]


def is_npy(path: str) -> bool:
    return "://" not in path and Path(path).suffix.lower() == ".npy" and Path(path).is_file()


def open_source(path: str, *, column: str | None = None, ray=None) -> EmbeddingSource:
    """Describe the embeddings at ``path`` (see the module docstring); ``ray`` is needed for
    anything but a ``.npy`` file.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.npy"; np.save(p, np.ones((3, 2), np.float32))
    >>> s = open_source(str(p)); (s.kind, s.n, s.dim)
    ('npy', 3, 2)
    """
    if is_npy(path):
        x = load_array(path, mmap=True)  # checks the shape and dtype without reading the rows
        return EmbeddingSource(str(Path(path).resolve()), "npy", n=int(x.shape[0]), dim=int(x.shape[1]))
    local = "://" not in path
    if local and not Path(path).exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if local and Path(path).suffix.lower() == ".npz":
        raise InputError(f"{Path(path).name}: an .npz is read whole on one machine; with --ray give a .npy or "
                         "a folder of Parquet shards")
    if ray is None:
        raise ValueError("reading anything but a .npy needs a Ray session")
    location = str(Path(path).resolve()) if local else path
    if local and Path(path).is_dir() and not any(Path(path).rglob("*.parquet")) and any(Path(path).glob("*.npy")):
        dataset, names = ray.data.read_numpy(location), ["data"]
        column = "data"
    else:
        dataset = ray.data.read_parquet(location)
        names = list(dataset.schema().names)
    if column is None:
        column = next((c for c in EMBEDDING_COLUMNS if c in names), None)
    if column is None or column not in names:
        raise InputError(f"{path} has columns {names}; choose the embedding column with --column")
    first = dataset.select_columns([column]).take_batch(1, batch_format="numpy")[column]
    if len(first) == 0:
        raise InputError(f"{path}: no rows")
    dim = int(as_matrix(first).shape[1])
    return EmbeddingSource(location, "data", n=int(dataset.count()), dim=dim, column=column,
                           id_column=ID_COLUMN if ID_COLUMN in names else None, dataset=dataset)


def as_matrix(values) -> np.ndarray:
    """A batch's embedding column as an (n, d) array: Ray Data hands list columns over as an
    object array of rows, tensor columns as one array.

    >>> rows = np.empty(2, dtype=object); rows[0], rows[1] = np.ones(3), np.zeros(3)
    >>> as_matrix(rows).shape
    (2, 3)
    """
    values = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if values.dtype == object:
        values = np.stack([np.asarray(v) for v in values]) if len(values) else np.zeros((0, 0), np.float32)
    if values.ndim != 2:
        raise InputError(f"expected one vector per row, got an array of shape {values.shape}")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise InputError(f"expected real numbers, got dtype {values.dtype}")
    return values


def read_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a ``.npy`` (in a worker: a memory map, only these rows read)."""
    return np.asarray(load_array(path, mmap=True)[start:stop])


def content_keys(rows: np.ndarray, seed: int) -> np.ndarray:
    """A number in [0, 1) per row, from its bytes and ``seed``: a sample drawn by these keys is the
    same whatever the blocks, their order or the number of workers.

    >>> k = content_keys(np.eye(3, dtype=np.float32), 0); bool(((k >= 0) & (k < 1)).all())
    True
    """
    rows = np.ascontiguousarray(rows)
    salt = str(seed).encode()
    return np.array([int.from_bytes(hashlib.blake2b(memoryview(r).cast("B"), digest_size=8, key=salt).digest(),
                                    "little") / 2.0**64 for r in rows])


def sample_rows(source: EmbeddingSource, *, size: int, seed: int = 0) -> np.ndarray:
    """About ``size`` rows (float64) for a bandwidth or an error estimate, drawn by content keys
    from a Ray Data source in one pass (a ``.npy`` is sampled by index where it is used)."""
    rate = min(1.0, 2.0 * size / max(source.n, 1))
    column = source.column

    def keep(batch: dict) -> dict:
        x = as_matrix(batch[column])
        keys = content_keys(x, seed)
        chosen = keys < rate
        return {"key": keys[chosen], "row": x[chosen].astype(np.float64)}

    picked = source.dataset.select_columns([column]).map_batches(keep, batch_format="numpy").take_all()
    picked.sort(key=lambda r: r["key"])  # order by key, not by arrival, then keep the first ``size``
    if not picked:
        raise InputError(f"{source.path}: no rows to sample")
    return np.stack([np.asarray(r["row"], dtype=np.float64) for r in picked[:size]])
