"""Manifest tables read row by row: a row that cannot be read (bytes that are not UTF-8, a line
that is not JSON) is set aside with its row or line number, and only a file that cannot be read
at all is refused, with its name."""
from __future__ import annotations

import csv
import io
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


class _Lines:
    """The file's physical lines for csv.reader, with the position it has read up to, so that
    parsing can restart on the line after a bad record's first line."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.pos = lines, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _csv_records(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """The header, the good records (row number, fields) and the bad lines (line, reason) of a
    CSV as pandas reads one (comma, double quotes, blank lines skipped).

    A record with more fields than the header, or a quote left open, is a bad line: it is
    reported by its first line and parsing restarts on the next line, so one stray quote does not
    swallow the rest of the file. A record with fewer fields is padded with empty strings. Rows
    are numbered from 1 after the header, a bad line counting as one row.
    """
    # newline="" keeps each physical line's own ending, which csv needs for quoted line breaks
    lines = _Lines(list(io.StringIO(text, newline="")))
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    bad: list[tuple[int, str]] = []
    row = 0
    reader = csv.reader(lines, strict=True)
    while True:
        start = lines.pos
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problem: str | None = "a quote is never closed" if "end of data" in str(err) else str(err)
        else:
            if not fields:
                continue  # a blank line
            if header is None:
                header = fields
                continue
            problem = (f"{len(fields)} fields where the header has {len(header)}"
                       if len(fields) > len(header) else None)
        if header is None:  # no header, no column names: nothing in the file can be read
            raise ValueError(f"the header of {name} cannot be read: {problem}")
        row += 1
        if problem is None:
            records.append((row, fields + [""] * (len(header) - len(fields))))
            continue
        bad.append((start + 1, f"line {start + 1} of {name} is not a valid CSV row ({problem}); skipped"))
        lines.pos = start + 1  # the bad record may have taken later lines with it: read them again
        reader = csv.reader(lines, strict=True)
    if header is None:
        raise ValueError(f"{name} is empty")
    return header, records, bad


def _unique_columns(names: list[str]) -> list[str]:
    """Repeated column names made unique as pandas does: ``x``, ``x.1``, ``x.2``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(name if n == 0 else f"{name}.{n}")
    return out


def _read_csv(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    # undecodable bytes become lone surrogates, so one bad row does not refuse the file; rows
    # holding any are set aside below (a latin-1 "café" is not what the file's UTF-8 says)
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    header, records, bad_lines = _csv_records(text, path.name)
    columns = _unique_columns(header)
    table = pd.DataFrame([fields for _, fields in records], columns=columns, dtype=object,
                         index=[r for r, _ in records])
    bad = np.array(table.apply(lambda col: col.map(_has_surrogates)).any(axis=1), dtype=bool) if len(table) \
        else np.zeros(0, dtype=bool)
    if any(_has_surrogates(c) for c in columns):  # a header in another encoding: no row is usable
        bad[:] = True
    rejects = [(int(r), f"row {r} of {path.name} is not valid UTF-8 (save the manifest as UTF-8)")
               for r in table.index[bad]]
    rejects += bad_lines
    return table[~bad], pd.DataFrame(rejects, columns=["row", "reason"]) if rejects else _no_rejects()


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
