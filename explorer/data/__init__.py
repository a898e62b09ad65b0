"""Datasets in, one items table out: image folders, manifests, texts, precomputed embeddings,
webdataset shards and image tables; safe image decoding and array reading.

The bottom layer: it imports nothing else from explorer.
"""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.data.arrays": ["check_finite", "load_array", "normalize_rows"],
    "explorer.data.datasets": ["Dataset", "load_dataset", "sample_data_dir"],
    "explorer.data.images": ["ImageError", "load_image"],
})
