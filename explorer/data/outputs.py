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
# Summaries written before whole-file hashing hashed only the first and last EDGE bytes of a file
# over 2 * EDGE; such a summary is still honoured (see _legacy_edges), new ones never use it.
EDGE = 4 << 20
CHUNK = 1 << 20


def fingerprint_bytes(data: bytes) -> dict:
    """Size and SHA-256 of the whole content: a rewrite of any byte, even one that keeps the
    size, changes it.

    >>> fingerprint_bytes(b"abc")["bytes"]
    3
    """
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def fingerprint(path: str | os.PathLike) -> dict:
    """:func:`fingerprint_bytes` of a file, read in 1 MiB chunks (memory stays flat for any size)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": h.hexdigest()}


def _legacy_edges(path: str | os.PathLike) -> str:
    """The hash older summaries recorded for a file over 2 * EDGE: its first and last EDGE bytes."""
    with open(path, "rb") as fh:
        head = fh.read(EDGE)
        fh.seek(-EDGE, os.SEEK_END)
        return hashlib.sha256(head + fh.read(EDGE)).hexdigest()


def matches(path: str | os.PathLike, recorded: dict) -> bool:
    """Whether the file at ``path`` is the one ``recorded`` describes.

    >>> import tempfile; f = Path(tempfile.mkdtemp()) / "a.bin"; _ = f.write_bytes(b"abc")
    >>> matches(f, fingerprint_bytes(b"abc")), matches(f, fingerprint_bytes(b"abd"))
    (True, False)
    """
    if not isinstance(recorded, dict) or not Path(path).is_file() or os.path.getsize(path) != recorded.get("bytes"):
        return False
    if fingerprint(path)["sha256"] == recorded.get("sha256"):
        return True
    # a summary from before whole-file hashing: only its edge hash can be compared (a full hash
    # never equals an edge hash of other bytes, so this does not weaken new summaries)
    return recorded["bytes"] > 2 * EDGE and _legacy_edges(path) == recorded.get("sha256")


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
        if name in recorded and not matches(folder / name, recorded[name]):
            raise ValueError(f"{folder}: {name} is not the file {SUMMARY} records, so the folder mixes two runs "
                             "(a write was interrupted?); write the folder again")
        shards = {key for key in recorded if key.startswith(f"{name}/")}
        if shards and (folder / name).is_dir():  # a folder of shards (embed --ray): these files, no others
            present = {f"{name}/{p.name}" for p in (folder / name).iterdir() if p.suffix.lower() == ".parquet"}
            wrong = sorted(present ^ shards) or [k for k in sorted(shards) if not matches(folder / k, recorded[k])]
            if wrong:
                raise ValueError(f"{folder}: {wrong[0]} is missing, extra or changed against {SUMMARY}, so the folder "
                                 "mixes two runs (a write was interrupted?); write the folder again")
