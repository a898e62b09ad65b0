"""Output folders written as a set (``vendiscope embed --out``, ``compare --out``): the writer
records a fingerprint of every data file in ``summary.json``, written last, and readers check
the files they pair (embeddings.npy with items.parquet) against it. A run stopped between two
files therefore never passes new embeddings off with old items: the reader refuses the folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SUMMARY = "summary.json"
EDGE = 4 << 20  # bytes hashed at each end of a large file: cheap to check, and any rewrite changes them


def fingerprint_bytes(data: bytes) -> dict:
    """Size and a hash of the first and last 4 MiB (the whole content when smaller).

    >>> fingerprint_bytes(b"abc")["bytes"]
    3
    """
    h = hashlib.sha256(data if len(data) <= 2 * EDGE else data[:EDGE] + data[-EDGE:])
    return {"bytes": len(data), "sha256": h.hexdigest()}


def fingerprint(path: str | os.PathLike) -> dict:
    """:func:`fingerprint_bytes` of a file, reading at most 8 MiB of it."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if size <= 2 * EDGE:
            return fingerprint_bytes(fh.read())
        head = fh.read(EDGE)
        fh.seek(-EDGE, os.SEEK_END)
        return {"bytes": size, "sha256": hashlib.sha256(head + fh.read(EDGE)).hexdigest()}


def check_set(folder: str | os.PathLike, names: list[str]) -> None:
    """Raise a ValueError when a file in ``names`` is not the one ``summary.json`` records (a
    folder without a summary, or a summary without fingerprints, is not checked).

    >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / "a.bin").write_bytes(b"new")
    >>> _ = (d / SUMMARY).write_text(json.dumps({"files": {"a.bin": fingerprint_bytes(b"old")}}))
    >>> try:
    ...     check_set(d, ["a.bin"])
    ... except ValueError as err:
    ...     print("mixes two runs" in str(err))
    True
    """
    folder = Path(folder)
    try:
        recorded = json.loads((folder / SUMMARY).read_text()).get("files", {})
    except (OSError, ValueError):
        return
    for name in names:
        if name in recorded and (not (folder / name).is_file() or fingerprint(folder / name) != recorded[name]):
            raise ValueError(f"{folder}: {name} is not the file {SUMMARY} records, so the folder mixes two runs "
                             "(a write was interrupted?); write the folder again")
