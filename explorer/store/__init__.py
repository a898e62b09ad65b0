"""What is kept on disk: the one disk cache (key, compute, atomic write, verified read), flags,
exports and thumbnails."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.store.cache": ["atomic_write_bytes", "cache_root", "cached", "hash_key"],
    "explorer.store.export": ["export_table", "write_export"],
    "explorer.store.flags": ["FlagStore"],
})
