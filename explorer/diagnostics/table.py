"""The per-item table of diagnostics, as the app and ``vendiscope compare --out`` show it, and
what is read back from it: which items a diagnostic flags and why."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from explorer.diagnostics.base import DiagnosticResult


def diagnostic_table(results: Mapping[str, DiagnosticResult], ids: Iterable) -> pd.DataFrame:
    """One row per item: ``id``, a score column per diagnostic, ``flags`` (the names of the
    diagnostics that flag the item, a list) and ``reasons`` (a list of ``{"diagnostic",
    "reason"}``), structured so that no reason is ever split on its own punctuation.

    >>> from explorer.diagnostics.base import DiagnosticResult
    >>> r = DiagnosticResult("dup", "dup", "", np.array([1.0, 0.0]), np.array([True, False]), [["a; b"], []])
    >>> t = diagnostic_table({"dup": r}, ["x", "y"])
    >>> t["flags"].tolist(), t["reasons"][0]
    ([['dup'], []], [{'diagnostic': 'dup', 'reason': 'a; b'}])
    """
    out = pd.DataFrame({"id": list(ids)})
    for name, r in results.items():
        out[name] = r.score
    flags: list[list[str]] = [[] for _ in range(len(out))]
    reasons: list[list[dict]] = [[] for _ in range(len(out))]
    for name, r in results.items():
        for i in np.flatnonzero(r.flag):
            flags[i].append(name)
            reasons[i].extend({"diagnostic": name, "reason": text} for text in r.reasons[i])
    out["flags"] = flags
    out["reasons"] = reasons
    return out


def score_columns(table: pd.DataFrame) -> list[str]:
    """The diagnostic score columns of a :func:`diagnostic_table` (read back from disk too)."""
    return [c for c in table.columns if c not in ("id", "region", "flags", "reasons")]


def flag_masks(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each diagnostic that flags anything, the mask of the items it flags.

    >>> t = pd.DataFrame({"id": ["a", "b"], "d": [1.0, 0.0], "flags": [["d"], []], "reasons": [[], []]})
    >>> {k: v.tolist() for k, v in flag_masks(t).items()}
    {'d': [True, False]}
    """
    out = {name: np.zeros(len(table), dtype=bool) for name in score_columns(table)}
    for i, names in enumerate(table["flags"]):
        for name in names:
            out[name][i] = True
    return {name: mask for name, mask in out.items() if mask.any()}


def reasons_of(table: pd.DataFrame, diagnostic: str) -> dict[str, list[str]]:
    """The reasons ``diagnostic`` gives, per flagged item id, whole.

    >>> t = diagnostic_table({"d": DiagnosticResult("d", "d", "", np.ones(1), np.ones(1, bool), [["x (a; b)"]])}, ["i"])
    >>> reasons_of(t, "d")
    {'i': ['x (a; b)']}
    """
    out: dict[str, list[str]] = {}
    for item, reasons in zip(table["id"], table["reasons"]):
        texts = [r["reason"] for r in reasons if r["diagnostic"] == diagnostic]
        if texts:
            out[str(item)] = texts
    return out


def flag_with_reasons(store, table: pd.DataFrame, diagnostic: str) -> int:
    """Flag every item ``diagnostic`` flags in a :class:`~explorer.store.flags.FlagStore`, each
    with its own reasons (prefixed by the diagnostic's name); returns how many flags are new."""
    by_reason: dict[str, list[str]] = {}
    for item, texts in reasons_of(table, diagnostic).items():
        for text in texts:
            by_reason.setdefault(f"{diagnostic}: {text}", []).append(item)
    return sum(store.add(ids, reason=reason, source=f"diagnostic:{diagnostic}") for reason, ids in by_reason.items())
