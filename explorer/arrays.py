"""Reading user-supplied arrays (embeddings, similarity matrices) safely: never unpickles, and
says exactly what is wrong with a file that does not hold a usable 2-D numeric array."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

EMBEDDING_COLUMNS = ("embedding", "embeddings", "vector", "vectors", "emb", "features")


def load_array(path: str | os.PathLike, *, key: str | None = None, column: str | None = None,
               mmap: bool = False) -> np.ndarray:
    """A 2-D float array from ``.npy``, ``.npz`` (``key``) or ``.parquet`` (array ``column``).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.npy"; np.save(p, np.eye(2))
    >>> load_array(p).shape
    (2, 2)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
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
