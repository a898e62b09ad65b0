"""On-disk cache and atomic writes.

Everything heavy (embeddings, projections) is stored under one cache root, keyed by a hash of
the content and the parameters that produced it, and written atomically so that a killed process
never leaves a half-written file that a later run would read.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "VENDISCOPE_CACHE"


def cache_root(*, root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root``, else ``$VENDISCOPE_CACHE``, else ``~/.cache/vendiscope``.

    >>> cache_root(root="/tmp/vs-cache").name
    'vs-cache'
    """
    if root is None:
        root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vendiscope"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def hash_key(*parts: Any) -> str:
    """A short, stable hex key for the given parts (JSON-serialised, bytes hashed as they are).

    >>> hash_key("a", 1) == hash_key("a", 1) != hash_key("a", 2)
    True
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, (bytes, bytearray, memoryview)):
            h.update(b"b")
            h.update(bytes(part))
        else:
            h.update(b"j")
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:32]


def file_digest(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes (hex): the content identity used by the embedding cache."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Atomically save arrays as an uncompressed ``.npz`` (no pickled objects allowed)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load an ``.npz`` written by :func:`save_arrays`; never unpickles."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def json_memo(kind: str, key: str, compute, *, root: str | os.PathLike | None = None):
    """Return ``compute()``'s JSON-serialisable result, stored under ``kind/key.json`` so that a
    new process gets it without recomputing."""
    path = cache_root(root=root) / kind / f"{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # unreadable entry: recompute and overwrite it
    value = compute()
    atomic_write_bytes(path, json.dumps(value).encode())
    return value
