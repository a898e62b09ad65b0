"""Per-item diagnostics, one small registered class each (cleanlab's issue managers): duplicates,
memorisation, rarity and coverage, regions, class collapse, novel and missing modes.

:mod:`explorer.diagnostics.base` says how to add your own in one file.
"""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.diagnostics.base": ["Diagnostic", "DiagnosticResult", "register", "unregister"],
    "explorer.diagnostics.catalog": ["describe", "forget_plugins", "load_plugins", "registered", "run_diagnostics"],
    "explorer.diagnostics.table": ["diagnostic_table", "flag_masks", "flag_with_reasons", "reasons_of"],
})
