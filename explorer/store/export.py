"""Export items (flagged, selected, or all) as CSV, Parquet or JSON, written atomically."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.store.cache import atomic_write_bytes

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


def _flat(value):
    """A list or mapping cell as JSON text (a CSV cell holds one string); anything else as it is."""
    if isinstance(value, (list, tuple, dict)) or hasattr(value, "tolist") and not np.isscalar(value):
        return json.dumps(value.tolist() if hasattr(value, "tolist") else value, default=str, ensure_ascii=False)
    return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula


def neutralize_formula(value):
    """A text cell that a spreadsheet would run as a formula, made inert as OWASP recommends: a
    leading single quote. Other cells (numbers included) are returned as they are.

    >>> neutralize_formula("=SUM(A1:A9)"), neutralize_formula("-1"), neutralize_formula(-1)
    ("'=SUM(A1:A9)", "'-1", -1)
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """Serialise for a download or a file. Parquet keeps list columns (flags, reasons) as lists,
    JSON as arrays, both exact; CSV writes them as JSON text, so no reason is ever split on its
    punctuation, and neutralises every text cell a spreadsheet would run as a formula."""
    if fmt == "csv":
        nested = [c for c in table.columns if table[c].dtype == object and table[c].map(
            lambda v: isinstance(v, (list, tuple, dict)) or hasattr(v, "tolist") and not np.isscalar(v)).any()]
        out = table.assign(**{c: table[c].map(_flat) for c in nested}) if nested else table
        text = [c for c in out.columns if out[c].dtype == object or pd.api.types.is_string_dtype(out[c])]
        out = out.assign(**{c: out[c].map(neutralize_formula) for c in text})
        out.columns = [neutralize_formula(str(c)) for c in out.columns]
        # every text cell quoted: a bare CR inside a field would otherwise end the row for readers
        return out.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        return buf.getvalue()
    if fmt == "json":
        records = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]
        return (json.dumps(records, default=str, ensure_ascii=False, indent=1) + "\n").encode()
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def _plain(value):
    """numpy arrays (as Parquet reads list columns) as lists, for JSON."""
    return [_plain(v) for v in value.tolist()] if isinstance(value, np.ndarray) else value


def write_export(table: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None) -> Path:
    """Write ``table`` to ``path`` atomically; the format comes from the suffix unless given."""
    path = Path(path)
    fmt = fmt or path.suffix.lower().lstrip(".")
    return atomic_write_bytes(path, to_bytes(table, fmt))
