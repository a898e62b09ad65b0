"""Flags: items marked with a reason (by hand, from a selection or filter, or by a diagnostic),
kept in an SQLite database in WAL mode beside the dataset's cache, so they survive the app being
killed and restarted. Every change is one transaction: it lands whole or not at all.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import pandas as pd

from explorer.store.cache import cache_root, hash_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS flags (
    id TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'manual',
    created REAL NOT NULL,
    PRIMARY KEY (id, reason)
)
"""


def dataset_key(source: str) -> str:
    """The key of a dataset's own storage (flags), from its resolved source path."""
    return hash_key("dataset", str(Path(source).expanduser().resolve()))


class FlagStore:
    """Flags of one dataset.

    >>> import tempfile
    >>> store = FlagStore("demo", root=tempfile.mkdtemp())
    >>> store.add(["a", "b"], reason="blurry")
    2
    >>> store.reasons()
    {'a': ['blurry'], 'b': ['blurry']}
    """

    def __init__(self, key: str, *, root: str | os.PathLike | None = None) -> None:
        self.path = cache_root(root=root) / "flags" / f"{key}.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(SCHEMA)

    @classmethod
    def for_dataset(cls, source: str, *, root: str | os.PathLike | None = None) -> FlagStore:
        return cls(dataset_key(source), root=root)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed flag survives a crash of the app
        return db

    def add(self, ids: Iterable[str], *, reason: str, source: str = "manual") -> int:
        """Flag ``ids`` with ``reason``; returns how many flags are new."""
        reason = reason.strip()
        if not reason:
            raise ValueError("a flag needs a reason")
        now = time.time()
        rows = [(str(i), reason, source, now) for i in dict.fromkeys(ids)]
        with closing(self._connect()) as db, db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO flags (id, reason, source, created) VALUES (?, ?, ?, ?)", rows)
            return db.total_changes - before

    def remove(self, ids: Iterable[str], *, reason: str | None = None) -> int:
        """Unflag ``ids`` (for one reason, or all); returns how many flags were removed."""
        ids = [str(i) for i in ids]
        with closing(self._connect()) as db, db:
            before = db.total_changes
            if reason is None:
                db.executemany("DELETE FROM flags WHERE id = ?", [(i,) for i in ids])
            else:
                db.executemany("DELETE FROM flags WHERE id = ? AND reason = ?", [(i, reason) for i in ids])
            return db.total_changes - before

    def rename(self, ids: Iterable[str], *, reason: str, to: str) -> int:
        """Give the flags ``reason`` of ``ids`` the reason ``to`` instead (one transaction); an item
        already flagged ``to`` keeps one flag. Returns how many flags changed.

        >>> import tempfile
        >>> store = FlagStore("demo", root=tempfile.mkdtemp())
        >>> _ = store.add(["a", "b"], reason="blury")
        >>> store.rename(["a", "b"], reason="blury", to="blurry"), store.reasons()
        (2, {'a': ['blurry'], 'b': ['blurry']})
        """
        to = to.strip()
        if not to:
            raise ValueError("a flag needs a reason")
        ids = [str(i) for i in ids]
        with closing(self._connect()) as db, db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO flags (id, reason, source, created) SELECT id, ?, source, created "
                           "FROM flags WHERE id = ? AND reason = ?", [(to, i, reason) for i in ids])
            inserted = db.total_changes - before
            db.executemany("DELETE FROM flags WHERE id = ? AND reason = ? AND reason != ?",
                           [(i, reason, to) for i in ids])
            return inserted

    def table(self) -> pd.DataFrame:
        """All flags: id, reason, source, created (UNIX time), oldest first."""
        with closing(self._connect()) as db:
            return pd.read_sql_query("SELECT id, reason, source, created FROM flags ORDER BY created, id", db)

    def reasons(self) -> dict[str, list[str]]:
        """Flag reasons per flagged id."""
        table = self.table()
        return {i: group.tolist() for i, group in table.groupby("id", sort=True)["reason"]}
