"""Every known diagnostic: the built-in ones (imported here, which registers them) and the
plugins named in ``VENDISCOPE_PLUGINS`` or the ``vendiscope.diagnostics`` entry points; and
running them on a fitted comparison."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

# importing the built-in diagnostics registers them
import explorer.diagnostics.collapse  # noqa: F401
import explorer.diagnostics.coverage  # noqa: F401
import explorer.diagnostics.duplicates  # noqa: F401
import explorer.diagnostics.memorization  # noqa: F401
import explorer.diagnostics.novelty  # noqa: F401
import explorer.diagnostics.outliers  # noqa: F401
import explorer.diagnostics.regions  # noqa: F401
from explorer.data.errors import InputError
from explorer.diagnostics.base import REGISTRY, ComparisonContext, Diagnostic, DiagnosticResult

PLUGINS_ENV = "VENDISCOPE_PLUGINS"
ENTRY_POINTS = "vendiscope.diagnostics"


def registered() -> dict[str, type[Diagnostic]]:
    """Every known diagnostic by name: the built-in ones and the plugins'."""
    load_plugins()
    return dict(REGISTRY)


def describe(name: str) -> str:
    """What a diagnostic (or a per-set column such as ``uncovered[gmm]``) means."""
    kind = name.split("[", 1)[0]
    cls = registered().get(kind)
    return cls.description if cls is not None else ""


_loaded: set[str] = set()
_SCANNED = "<entry points>"  # in _loaded once the installed packages' entry points were loaded


def forget_plugins() -> None:
    """Load the plugins again on the next :func:`registered`: after ``VENDISCOPE_PLUGINS`` changed,
    or a package with a ``vendiscope.diagnostics`` entry point was installed (the installed
    packages are otherwise read once per process; a running app finds a new one after a restart)."""
    _loaded.clear()


def load_plugins() -> None:
    """Import the diagnostics named in ``VENDISCOPE_PLUGINS`` and the ``vendiscope.diagnostics``
    entry points, once each. A plugin that fails to import is an :class:`InputError` (exit 2) that
    names it and says why: the plugin is the user's code or setting, not a bug of ours."""
    names = [n for n in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if n.strip()]
    for name in names:
        if name in _loaded:
            continue
        try:
            if name.endswith(".py"):
                path = Path(name).expanduser()
                spec = importlib.util.spec_from_file_location(f"vendiscope_plugin_{path.stem}", path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - whatever the plugin raised, said with its name
            raise InputError(f"diagnostic plugin {name!r} (from {PLUGINS_ENV}) failed to load: "
                             f"{type(err).__name__}: {err}") from err
        _loaded.add(name)
    if _SCANNED in _loaded:  # reading every installed package's metadata took 2% of a busy app's CPU
        return
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        if entry.value not in _loaded:
            try:
                entry.load()
            except Exception as err:  # noqa: BLE001 - an installed package's plugin: the user's setup
                raise InputError(f"diagnostic plugin {entry.name!r} ({entry.value}, entry point {ENTRY_POINTS}) "
                                 f"failed to load: {type(err).__name__}: {err}") from err
            _loaded.add(entry.value)
    _loaded.add(_SCANNED)


def run_diagnostics(c: ComparisonContext, names: list[str] | None = None, *,
                    reference: bool = True) -> dict[str, DiagnosticResult]:
    """Run the registered diagnostics (or those in ``names``) on a fitted comparison, or, with
    ``reference=False``, those that need no reference on an audit. Every result is checked
    against the contract (:meth:`DiagnosticResult.check`); one that breaks it is a ValueError
    naming the diagnostic."""
    known = {n: cls for n, cls in registered().items() if reference or not cls.needs_reference}
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ValueError(f"unknown diagnostic(s) {unknown}; the registered ones are {sorted(known)}")
    out: dict[str, DiagnosticResult] = {}
    for name, cls in known.items():
        if names is None or name in names:
            for result in cls().run(c):
                result.check(len(c.items_))
                out[result.name] = result
    return out
