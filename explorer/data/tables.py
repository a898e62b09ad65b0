"""Manifest tables read row by row: a row that cannot be read (bytes that are not UTF-8, a line
that is not JSON) is set aside with its row or line number, and only a file that cannot be read
at all is refused, with its name."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")


def read_table(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The readable rows of a CSV, Parquet or JSONL manifest, indexed by their 1-based row (data
    row, or line for JSONL), and the others as a table of ``row`` and ``reason``.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "m.jsonl"
    >>> _ = p.write_bytes(b'{"path": "a.png"}\\nnot json\\n{"path": "b.png"}\\n')
    >>> rows, bad = read_table(p)
    >>> rows["path"].tolist(), bad.to_dict("records")
    (['a.png', 'b.png'], [{'row': 2, 'reason': 'line 2 of m.jsonl is not JSON: Expecting value'}])
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _read_csv(path)
        if suffix in (".parquet", ".pq"):
            table = pd.read_parquet(path)  # Parquet strings are UTF-8 by definition
            table.index = range(1, len(table) + 1)
            return table, _no_rejects()
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path)
    except (OSError, ValueError, csv.Error) as err:
        raise ValueError(f"cannot read manifest {path.name}: {err}") from None
    raise ValueError(f"unsupported manifest format {suffix!r} ({path.name}): use .csv, .parquet or .jsonl")


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame({"row": pd.Series(dtype="int64"), "reason": pd.Series(dtype="object")})


def _read_csv(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    # undecodable bytes become lone surrogates, so one bad row does not refuse the file; rows
    # holding any are set aside below (a latin-1 "café" is not what the file's UTF-8 says)
    table = pd.read_csv(path, dtype=object, keep_default_na=False, encoding="utf-8",
                        encoding_errors="surrogateescape")
    bad = np.array(table.apply(lambda col: col.map(_has_surrogates)).any(axis=1), dtype=bool)
    if any(_has_surrogates(c) for c in table.columns):  # a header in another encoding: no row is usable
        bad[:] = True
    rejects = pd.DataFrame({"row": [int(i) + 1 for i in bad.nonzero()[0]]})
    rejects["reason"] = [f"row {r} of {path.name} is not valid UTF-8 (save the manifest as UTF-8)"
                         for r in rejects["row"]]
    table.index = range(1, len(table) + 1)
    return table[~bad], rejects if len(rejects) else _no_rejects()


def _has_surrogates(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    records, lines, rejects = [], [], []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                rejects.append((number, f"line {number} of {path.name} is not valid UTF-8"))
                continue
            except ValueError as err:
                rejects.append((number, f"line {number} of {path.name} is not JSON: {str(err).split(':')[0]}"))
                continue
            if not isinstance(record, dict):
                rejects.append((number, f"line {number} of {path.name} is not a JSON object"))
                continue
            records.append(record)
            lines.append(number)
    if not records and not rejects:
        return pd.DataFrame(), _no_rejects()
    table = pd.DataFrame.from_records(records, index=lines) if records else pd.DataFrame()
    return table, pd.DataFrame(rejects, columns=["row", "reason"]) if rejects else _no_rejects()
