"""Lazy re-exports for the packages' ``__init__`` files (PEP 562).

A package's public names are imported on first use, not when the package is. So importing one
module (``explorer.metrics.prdc``) runs only the modules it needs, the import graph stays the
acyclic one the layers define, and Streamlit sessions, which import pages in parallel threads,
never meet a half-initialised package. It imports nothing from explorer: every layer may use it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]],
                                                                         list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` re-exporting, from each module named in
    ``exports``, the names listed for it.

    >>> getattr_, dir_, all_ = lazy_exports("demo", {"math": ["sqrt"]})
    >>> getattr_("sqrt")(9.0), all_
    (3.0, ['sqrt'])
    """
    where = {name: module for module, names in exports.items() for name in names}
    cache: dict[str, Any] = {}

    def __getattr__(name: str) -> Any:
        if name in cache:
            return cache[name]
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        cache[name] = getattr(importlib.import_module(where[name]), name)
        return cache[name]

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
