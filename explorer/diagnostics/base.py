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

from collections.abc import Iterator, MutableSequence
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


class Reasons(MutableSequence):
    """Each item's reasons, one list of strings per item, stored only for items that have some:
    a million items times a dozen diagnostics would otherwise hold twelve million empty lists
    (measured, 0.6 GB of a 500k-item comparison's 1.7 GB peak). Reads and writes as the list of
    lists it stands for; ``reasons[i].append(text)`` works on an item without reasons too.

    >>> r = Reasons(3)
    >>> r[1].append("far from the rest")
    >>> list(r), len(r), r.stored()
    ([[], ['far from the rest'], []], 3, 1)
    """

    def __init__(self, n: int) -> None:
        self._n = n
        self._rows: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return self._n

    def _index(self, i: int) -> int:
        j = i + self._n if i < 0 else i
        if not 0 <= j < self._n:
            raise IndexError(f"item {i} of {self._n}")
        return j

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, Reasons)) and len(other) == self._n and list(self) == list(other)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        j = self._index(int(i))
        return self._rows[j] if j in self._rows else _Pending(self._rows, j)

    def __setitem__(self, i, value) -> None:
        self._rows[self._index(int(i))] = value

    def __delitem__(self, i) -> None:
        raise TypeError("one entry per item: reasons cannot be deleted, only emptied")

    def insert(self, index: int, value) -> None:
        raise TypeError("one entry per item: reasons cannot be inserted")

    def __iter__(self) -> Iterator[list[str]]:
        return (self[j] for j in range(self._n))

    def copy(self) -> list[list[str]]:
        """A plain list of lists."""
        return [list(r) for r in self]

    def stored(self) -> int:
        """How many items have a list of their own."""
        return len(self._rows)

    def items(self) -> Iterator[tuple[int, list[str]]]:
        """(item, reasons) of the items that have a list of their own."""
        return iter(self._rows.items())


class _Pending(list):
    """The empty reasons of an item, kept by the item once something is added to them."""

    def __init__(self, rows: dict[int, list[str]], j: int) -> None:
        super().__init__()
        self._rows, self._j = rows, j

    def _target(self) -> list[str]:
        return self._rows.setdefault(self._j, self)  # another pending list of the item may have won

    def append(self, text) -> None:
        list.append(self._target(), text)

    def extend(self, texts) -> None:
        list.extend(self._target(), texts)

    def insert(self, index, text) -> None:
        list.insert(self._target(), index, text)

    def __setitem__(self, index, value) -> None:
        list.__setitem__(self._target(), index, value)

    def __iadd__(self, texts):  # type: ignore[misc]
        target = self._target()
        list.extend(target, texts)
        return target  # ``reasons[i] += [...]`` then stores the list that holds them

    def __reduce__(self):
        return list, (list(self),)  # a plain list once pickled (its owner is pickled apart)


@dataclass
class DiagnosticResult:
    """One diagnostic over all items of a comparison."""

    name: str  # the column name: the kind, or KIND[SET] for a per-set diagnostic
    kind: str
    description: str
    score: np.ndarray  # [0, 1], NaN where it does not apply
    flag: np.ndarray  # bool
    reasons: list[list[str]] | Reasons  # per item: why it is flagged (empty where it is not)
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, diagnostic: Diagnostic, n: int, *, of_set: str | None = None) -> DiagnosticResult:
        """A result for ``n`` items where nothing applies yet."""
        name = diagnostic.name if of_set is None else f"{diagnostic.name}[{of_set}]"
        return cls(name, diagnostic.name, diagnostic.description, np.full(n, np.nan), np.zeros(n, dtype=bool),
                   Reasons(n))

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
        if not isinstance(self.reasons, (list, Reasons)) or len(self.reasons) != n:
            raise ValueError(f"{where}: reasons must be a list of one list per item ({n}), "
                             f"got {type(self.reasons).__name__} of length {len(self.reasons)}")
        rows = self.reasons.items() if isinstance(self.reasons, Reasons) else enumerate(self.reasons)
        for row, item in rows:
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
