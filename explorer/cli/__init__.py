"""The ``vendiscope`` command line: score, embed, compare, diagnostics, flag, export, app."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {"explorer.cli.parser": ["build_parser", "main"]})
