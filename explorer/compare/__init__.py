"""Sample sets against a reference: the Comparison (scores, PRDC, regions, classes, novel modes,
duplicates, memorisation and every registered diagnostic), its disk cache, and ``--fail-if``."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.compare.comparison": ["Comparison", "cached_comparison"],
    "explorer.compare.gate": ["failing", "parse_conditions"],
    "explorer.compare.gather": ["gather"],
})
