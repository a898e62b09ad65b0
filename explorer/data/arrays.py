"""Arrays from users, read and checked safely: files are never unpickled, a file that does not
hold a usable 2-D numeric array is explained, and rows are unit-normalised by one helper that
every cosine computation shares."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

EMBEDDING_COLUMNS = ("embedding", "embeddings", "vector", "vectors", "emb", "features")


def normalize_rows(x: np.ndarray, *, dtype: type = np.float64, zero_rows: str = "raise",
                   inplace: bool = False) -> np.ndarray:
    """Rows of ``x`` scaled to unit length, as ``dtype``.

    A zero row has no direction, so cosine is undefined there: ``zero_rows="raise"`` (the
    default) names the rows in an error, ``"keep"`` leaves them zero (for views such as a map,
    where a zero row is shown rather than refused). With ``inplace`` an ``x`` already of
    ``dtype`` is overwritten instead of copied.

    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 2.0]])).tolist()
    [[0.6, 0.8], [0.0, 1.0]]
    >>> normalize_rows(np.zeros((1, 2)), zero_rows="keep").tolist()
    [[0.0, 0.0]]
    """
    if zero_rows not in ("raise", "keep"):
        raise ValueError(f"zero_rows must be 'raise' or 'keep', got {zero_rows!r}")
    if not (inplace and isinstance(x, np.ndarray) and x.dtype == dtype):
        x = np.array(x, dtype=dtype)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    zero = norms == 0
    if zero.any():
        if zero_rows == "raise":
            rows = np.flatnonzero(zero)
            raise ValueError(f"{rows.size} row(s) have zero norm; the cosine kernel is undefined for them "
                             f"(rows {rows[:5].tolist()})")
        norms[zero] = 1.0
    x /= norms[:, None]
    return x


def row_digests(x: np.ndarray) -> list[str]:
    """A short content digest of every row (identical rows, identical digests), so that exact
    copies among precomputed vectors are found without keeping a copy of each row's bytes.

    >>> d = row_digests(np.array([[1.0, 2], [3, 4], [1, 2]]))
    >>> d[0] == d[2] != d[1]
    True
    """
    import hashlib

    rows = np.ascontiguousarray(x)
    return [hashlib.blake2b(memoryview(row).cast("B"), digest_size=16).hexdigest() for row in rows]


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise a ValueError naming the rows of ``x`` that hold NaN or inf.

    >>> check_finite(np.array([[1.0], [np.nan]]), "embeddings")
    Traceback (most recent call last):
    ...
    ValueError: embeddings: 1 row(s) contain NaN or inf, e.g. rows [1]
    """
    if np.isfinite(x.sum(dtype=np.float64)):  # fast path: one reduction, no n x d mask
        return
    bad = ~np.isfinite(x).all(axis=tuple(range(1, x.ndim)))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{what}: {rows.size} row(s) contain NaN or inf, e.g. rows {rows[:5].tolist()}")


def parquet_shards(folder: str | os.PathLike) -> list[Path]:
    """The Parquet files of a folder of shards, in row order: by name, as ``embed --ray`` numbers
    them (``part-00000.parquet``, ...); an empty list for anything else.

    >>> parquet_shards("/no/such/folder")
    []
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".parquet", ".pq") and p.is_file())


def load_array(path: str | os.PathLike, *, key: str | None = None, column: str | None = None,
               mmap: bool = False) -> np.ndarray:
    """A 2-D float array from ``.npy``, ``.npz`` (``key``), ``.parquet`` (array ``column``) or a
    folder of Parquet shards (``embed --ray``'s ``embeddings/``: their rows in file-name order).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.npy"; np.save(p, np.eye(2))
    >>> load_array(p).shape
    (2, 2)
    """
    path = Path(path).expanduser()
    shards = parquet_shards(path)
    if path.is_dir() and not shards:
        raise ValueError(f"{path} is a folder without Parquet shards; give an embeddings file "
                         "(.npy, .npz, .parquet) or a folder of .parquet shards")
    if not path.is_file() and not shards:
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if shards:  # the whole array is read: shards are a cluster's layout, not a memory map
            parts = [_parquet_column(shard, column) for shard in shards]
            dims = sorted({part.shape[1] for part in parts})
            if len(dims) > 1:
                raise ValueError(f"the shards in {path} hold vectors of different lengths {dims[:5]}")
            arr = np.concatenate(parts)
        elif suffix == ".npy":
            arr = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                names = list(data.files)
                if key is None:
                    key = names[0] if len(names) == 1 else next((n for n in EMBEDDING_COLUMNS if n in names), None)
                if key not in names:
                    raise ValueError(f"{path.name} holds arrays {names}; choose one with --key")
                arr = data[key]
        elif suffix in (".parquet", ".pq"):
            arr = _parquet_column(path, column)
        else:
            raise ValueError(f"unsupported array file {path.name}: use .npy, .npz or .parquet")
    except ValueError as err:
        if "pickle" in str(err).lower() or "python objects" in str(err).lower():
            raise ValueError(f"{path.name} holds Python objects; only plain numeric arrays are read "
                             "(pickled data is never loaded)") from None
        raise
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{path.name}: expected a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{path.name}: expected real numbers, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _parquet_column(path: Path, column: str | None) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = table.column_names
    if column is None:
        column = next((c for c in EMBEDDING_COLUMNS if c in names), None)
    if column is None or column not in names:
        raise ValueError(f"{path.name} has columns {names}; choose the embedding column with --column")
    values = table.column(column).combine_chunks()
    try:
        flat = values.flatten().to_numpy(zero_copy_only=False)
    except AttributeError:
        raise ValueError(f"column {column!r} of {path.name} is not a list/array column") from None
    lengths = np.unique(values.value_lengths().to_numpy(zero_copy_only=False))
    if lengths.size != 1:
        raise ValueError(f"column {column!r} of {path.name} has rows of different lengths {lengths[:5].tolist()}")
    return flat.reshape(len(values), int(lengths[0]))


def take_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``x[rows]``, as a view without a copy when ``rows`` is an ascending run of consecutive
    indices (a set stored in one block, the usual case): a comparison of a million items reads
    each set's rows several times, and copies would cost the embeddings' size each time.

    >>> x = np.arange(10.0).reshape(5, 2)
    >>> np.shares_memory(take_rows(x, np.array([1, 2, 3])), x), take_rows(x, np.array([3, 1])).tolist()
    (True, [[6.0, 7.0], [2.0, 3.0]])
    >>> take_rows(x, np.array([-2, -1])).tolist()
    [[6.0, 7.0], [8.0, 9.0]]
    """
    rows = np.asarray(rows)
    if (isinstance(x, np.ndarray) and rows.ndim == 1 and rows.dtype.kind in "iu" and len(rows)
            and 0 <= rows[0] and rows[-1] < len(x) and rows[-1] - rows[0] == len(rows) - 1
            and (len(rows) == 1 or bool(np.all(np.diff(rows) == 1)))):
        return x[int(rows[0]) : int(rows[-1]) + 1]
    return x[rows]


UNIT_BLOCK = 65_536  # rows checked at a time


def unit_float32(x: np.ndarray, *, tol: float = 1e-5) -> bool:
    """Whether ``x`` is a C-contiguous float32 array of rows of unit length (within ``tol``).

    >>> eye = np.eye(2, dtype=np.float32)
    >>> unit_float32(eye), unit_float32(eye.astype(np.float64)), unit_float32(np.full((1, 2), np.nan, np.float32))
    (True, False, False)
    """
    if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous):
        return False
    for start in range(0, len(x), UNIT_BLOCK):
        block = x[start : start + UNIT_BLOCK]
        if not np.abs(np.einsum("ij,ij->i", block, block, dtype=np.float64) - 1.0).max(initial=0.0) <= tol:
            return False  # (written so that a NaN row is not unit)
    return True
