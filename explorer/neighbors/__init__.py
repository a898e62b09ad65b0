"""Nearest neighbours: one backend for every k-NN consumer (maps, PRDC, duplicates, rarity,
memorisation, the Explore panel)."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.neighbors.exact": ["cross_knn", "distance_blocks", "knn"],
})
