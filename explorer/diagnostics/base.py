"""The diagnostics contract and registry, in the manner of cleanlab's issue managers.

A diagnostic is a small class registered by name. Run on a fitted comparison (the
:class:`ComparisonContext` below), it gives per item a score in [0, 1] (NaN where it does not
apply), a flag, and its reasons as a list of strings, plus a dataset summary. Diagnostics about
how well a sample set covers the reference score the reference items, one result per set:
``uncovered[gmm]``.

Add one in one file::

    from explorer.diagnostics import Diagnostic, DiagnosticResult, register

    @register
    class Tiny(Diagnostic):
        name = "tiny"
        description = "an item whose embedding has a small norm"

        def run(self, c):
            r = DiagnosticResult.empty(self, len(c.items_))
            ...
            return [r.finish()]

and make it known: import the file, or name it in ``VENDISCOPE_PLUGINS`` (a module or a .py
path; several separated by ``os.pathsep``), or in the ``vendiscope.diagnostics`` entry-point
group of an installed package (:mod:`explorer.diagnostics.catalog` loads them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from explorer.diagnostics.duplicates import NearDuplicates
    from explorer.diagnostics.memorization import Memorization
    from explorer.diagnostics.regions import Regions
    from explorer.metrics.ken import NovelModes
    from explorer.metrics.prdc import PRDC
    from explorer.neighbors.graph import SetNeighbors


class ComparisonContext(Protocol):
    """What a diagnostic may read from a fitted comparison (explorer.compare.Comparison); an
    audit (one dataset, no reference) offers the first six and ``neighbors_of``."""

    items_: pd.DataFrame  # one row per item: id, set[, label, digest]
    embeddings_: np.ndarray
    reference: str
    sets_: list[str]  # the sample sets (not the reference)
    index_: dict[str, np.ndarray]  # rows of each set, the reference included
    k: int
    exact_: np.ndarray  # row of an earlier identical item of the same set, or -1
    near_: dict[str, NearDuplicates]
    prdc_: dict[str, PRDC]
    memorization_: dict[str, Memorization]
    regions_: Regions
    classes_: pd.DataFrame
    class_basis_: str
    novel_: dict[str, NovelModes]
    under: float
    over: float
    collapse_floor: float
    n_modes: int
    top_items: int
    mode_floor: float

    def classes_of(self, name: str) -> np.ndarray: ...

    def neighbors_of(self, name: str) -> SetNeighbors:
        """The k-NN graph (k = ``k``) of set ``name``, made once per comparison."""
        ...


@dataclass
class DiagnosticResult:
    """One diagnostic over all items of a comparison."""

    name: str  # the column name: the kind, or KIND[SET] for a per-set diagnostic
    kind: str
    description: str
    score: np.ndarray  # [0, 1], NaN where it does not apply
    flag: np.ndarray  # bool
    reasons: list[list[str]]  # per item: why it is flagged (empty where it is not)
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, diagnostic: Diagnostic, n: int, *, of_set: str | None = None) -> DiagnosticResult:
        """A result for ``n`` items where nothing applies yet."""
        name = diagnostic.name if of_set is None else f"{diagnostic.name}[{of_set}]"
        return cls(name, diagnostic.name, diagnostic.description, np.full(n, np.nan), np.zeros(n, dtype=bool),
                   [[] for _ in range(n)])

    def flag_items(self, rows, reasons) -> None:
        """Flag ``rows`` with one reason each (a string for all, or one per row)."""
        rows = np.asarray(rows, dtype=np.int64)
        texts = [reasons] * len(rows) if isinstance(reasons, str) else list(reasons)
        for i, text in zip(rows.tolist(), texts):
            self.flag[i] = True
            self.reasons[i].append(text)

    def check(self, n: int) -> None:
        """Raise ValueError, naming this result, unless it keeps the contract over ``n`` items: a
        score in [0, 1] or NaN, a boolean flag and a list of reason strings per item. A plugin's
        mistake (a joined string for reasons, a raw distance as a score) is stopped here instead
        of surfacing as a wrong filter or a truncated reason in the app."""
        where = f"diagnostic {self.name!r}" + (f" (kind {self.kind!r})" if self.kind != self.name else "")
        score = np.asarray(self.score)
        if score.shape != (n,) or not np.issubdtype(score.dtype, np.floating):
            raise ValueError(f"{where}: score must be {n} floats, got shape {score.shape} of {score.dtype}")
        bad = ~np.isnan(score) & ((score < 0) | (score > 1))
        if bad.any():
            raise ValueError(f"{where}: scores must lie in [0, 1] or be NaN; {int(bad.sum())} do not "
                             f"(e.g. {float(score[bad][0])!r} at row {int(np.flatnonzero(bad)[0])})")
        flag = np.asarray(self.flag)
        if flag.shape != (n,) or flag.dtype != bool:
            raise ValueError(f"{where}: flag must be {n} booleans, got shape {flag.shape} of {flag.dtype}")
        if not isinstance(self.reasons, list) or len(self.reasons) != n:
            raise ValueError(f"{where}: reasons must be a list of one list per item ({n}), "
                             f"got {type(self.reasons).__name__} of length {len(self.reasons)}")
        for row, item in enumerate(self.reasons):
            if not isinstance(item, list) or not all(isinstance(text, str) for text in item):
                raise ValueError(f"{where}: reasons of row {row} must be a list of strings, got {item!r}")

    def finish(self, **summary: Any) -> DiagnosticResult:
        """Fill the summary: what it is, how many items it applies to and flags, and ``summary``."""
        applies = ~np.isnan(self.score)
        self.summary = {"description": self.description, "items": int(applies.sum()),
                        "flagged": int(self.flag.sum()),
                        "flagged_share": float(self.flag[applies].mean()) if applies.any() else 0.0, **summary}
        return self


class Diagnostic:
    """Base class: set ``name`` and ``description``, implement :meth:`run`. Parameters go in
    ``__init__`` (none by default; the comparison's own parameters are read from it).

    ``needs_reference`` is False for a diagnostic that reads only ``items_``, ``embeddings_``,
    ``index_``, ``k``, ``exact_`` and ``near_``: it then also runs in the one-dataset audit
    (:class:`explorer.compare.audit.Audit`), where there is no reference."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = True

    def run(self, c: ComparisonContext) -> list[DiagnosticResult]:
        raise NotImplementedError


REGISTRY: dict[str, type[Diagnostic]] = {}


def register(cls: type[Diagnostic]) -> type[Diagnostic]:
    """Class decorator: make a diagnostic known by its ``name`` (a later one replaces it)."""
    if not cls.name or not cls.description:
        raise ValueError(f"{cls.__name__} needs a name and a description")
    if "[" in cls.name or "]" in cls.name:
        raise ValueError(f"diagnostic name {cls.name!r} may not contain brackets (they mark the set)")
    REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)
