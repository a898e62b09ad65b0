"""Export items (flagged, selected, or all) as CSV, Parquet or JSON, written atomically."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pandas as pd

from explorer.storage import atomic_write_bytes

FORMATS = ("csv", "parquet", "json")
BASE_COLUMNS = ("id", "path", "text", "set", "label")


def export_table(items: pd.DataFrame, *, reasons: dict[str, list[str]] | None = None,
                 scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The exported columns: id, path or text, set, label, any per-item ``scores`` (aligned with
    ``items``), and ``flag_reasons`` ("; "-joined).

    >>> t = export_table(pd.DataFrame({"id": ["a"], "set": ["s"], "label": ["1"]}), reasons={"a": ["dup"]})
    >>> t.to_dict("records")
    [{'id': 'a', 'set': 's', 'label': '1', 'flag_reasons': 'dup'}]
    """
    out = items[[c for c in BASE_COLUMNS if c in items.columns]].reset_index(drop=True).copy()
    if scores is not None:
        if len(scores) != len(out):
            raise ValueError(f"{len(scores)} score rows for {len(out)} items")
        out = pd.concat([out, scores.reset_index(drop=True)], axis=1)
    if reasons is not None:
        out["flag_reasons"] = ["; ".join(reasons.get(i, [])) for i in out["id"]]
    return out


def to_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """Serialise for a download or a file."""
    if fmt == "csv":
        return table.to_csv(index=False).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        return buf.getvalue()
    if fmt == "json":
        return (json.dumps(table.to_dict("records"), default=str, ensure_ascii=False, indent=1) + "\n").encode()
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def write_export(table: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None) -> Path:
    """Write ``table`` to ``path`` atomically; the format comes from the suffix unless given."""
    path = Path(path)
    fmt = fmt or path.suffix.lower().lstrip(".")
    return atomic_write_bytes(path, to_bytes(table, fmt))
