"""The disk cache and atomic writes.

Everything heavy (maps, analyses, comparisons, thumbnails) is stored under one cache root through
:func:`cached`: a key hashed from the content and the parameters that produced it, then the
computation, then an atomic write, then a verified read, so a killed process never leaves a
half-written entry that a later run would trust. A file that is updated in place rather than keyed
by its content (the file-digest memo of :mod:`explorer.embed.pipeline`) uses the same two halves,
:func:`read_entry` and :func:`write_entry`, so it too is checksummed and rebuilt when damaged.

The one store with its own verified format is the content-addressed embedding store,
:mod:`explorer.embed.vector_store`: each chunk is named by the hash of what it holds and set aside
when it does not match its name, so it needs no checksum frame (it uses the same atomic writes).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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
    """A short, stable hex key for the given parts (JSON-serialised; bytes and arrays hashed as
    they are, an array with its dtype and shape, and never copied when contiguous: the
    embeddings of a million items are hashed in place).

    >>> hash_key("a", 1) == hash_key("a", 1) != hash_key("a", 2)
    True
    >>> hash_key(np.zeros(2, np.float32)) != hash_key(np.zeros(2, np.float64))
    True
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            h.update(b"a" + json.dumps([str(array.dtype), list(array.shape)]).encode())
            h.update(memoryview(array).cast("B") if array.size else b"")  # type: ignore[arg-type]
        elif isinstance(part, (bytes, bytearray, memoryview)):
            h.update(b"b")
            h.update(part)
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
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load an ``.npz`` written by :func:`save_arrays`; never unpickles."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@dataclass(frozen=True)
class Codec:
    """How a cached value becomes bytes and back. ``check`` rejects bytes that decode but are not a
    complete entry (e.g. a JPEG without its end marker)."""

    suffix: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    framed: bool = True  # prefix a checksum; False for files served as they are (thumbnails)
    check: Callable[[bytes], bool] | None = None


def _npy_bytes(value: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(value), allow_pickle=False)
    return buf.getvalue()


def _parquet_bytes(table) -> bytes:
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def _read_parquet(data: bytes):
    import pandas as pd

    return pd.read_parquet(io.BytesIO(data))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buf.getvalue()


def _read_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


JSON = Codec("json", lambda v: json.dumps(v).encode(), lambda b: json.loads(b.decode()))
NPY = Codec("npy", _npy_bytes, lambda b: np.load(io.BytesIO(b), allow_pickle=False))
PARQUET = Codec("parquet", _parquet_bytes, _read_parquet)
NPZ = Codec("npz", _npz_bytes, _read_npz)  # a dict of arrays, never pickled
MISSING = object()  # what read_entry returns for an absent or damaged entry
MAGIC = b"VSC1"  # framed entries: magic, SHA-256 of the payload, payload


def _frame(data: bytes) -> bytes:
    return MAGIC + hashlib.sha256(data).digest() + data


def _unframe(raw: bytes) -> bytes | None:
    head = len(MAGIC) + 32
    if len(raw) < head or raw[: len(MAGIC)] != MAGIC:
        return None
    data = raw[head:]
    return data if hashlib.sha256(data).digest() == raw[len(MAGIC) : head] else None


def entry_path(kind: str, key: str, codec: Codec, *, root: str | os.PathLike | None = None) -> Path:
    """Where :func:`cached` keeps the entry ``key`` of ``kind``."""
    return cache_root(root=root) / kind / key[:2] / f"{key}.{codec.suffix}"


def read_entry(path: Path, codec: Codec) -> Any:
    """The value stored at ``path``, or :data:`MISSING` when there is none or it fails its
    checksum, its codec or its check (it is then recomputed and overwritten)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return MISSING
    data = _unframe(raw) if codec.framed else raw
    if data is None or (codec.check is not None and not codec.check(data)):
        return MISSING
    try:
        return codec.decode(data)
    except Exception:  # noqa: BLE001 - a damaged entry of any kind is recomputed, never trusted
        return MISSING


def write_entry(path: Path, value: Any, codec: Codec) -> bytes:
    """Write ``value`` to ``path`` atomically, framed with its checksum when the codec is, so
    :func:`read_entry` trusts it only whole; returns the encoded payload."""
    data = codec.encode(value)
    atomic_write_bytes(path, _frame(data) if codec.framed else data)
    return data


def cached(kind: str, key: str, compute: Callable[[], Any], *, codec: Codec = JSON,
           root: str | os.PathLike | None = None) -> Any:
    """The one disk cache: the entry ``key`` of ``kind`` if it reads back whole, else
    ``compute()``, written atomically and returned as read back from the written bytes, so the
    first call and every later one return the same thing (JSON turns tuples into lists).

    ``key`` must name the content and every parameter that shapes the value (:func:`hash_key`).

    >>> import tempfile; root = tempfile.mkdtemp()
    >>> cached("demo", hash_key("x", 1), lambda: {"n": (1, 2)}, root=root)
    {'n': [1, 2]}
    >>> cached("demo", hash_key("x", 1), lambda: 1 / 0, root=root)   # a hit computes nothing
    {'n': [1, 2]}
    """
    path = entry_path(kind, key, codec, root=root)
    value = read_entry(path, codec)
    if value is not MISSING:
        return value
    return codec.decode(write_entry(path, compute(), codec))
