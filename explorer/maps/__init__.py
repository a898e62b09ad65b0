"""The 2-D map and what users do on it: UMAP projection, k-means clusters, box and lasso
selections, filters and the neighbours of an item."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.maps.clusters": ["kmeans_labels"],
    "explorer.maps.projection": ["UmapParams", "umap_project"],
    "explorer.maps.selection": ["in_box", "in_polygon", "nearest_items", "percentile_mask", "select_points",
                                "summarize_selection"],
})
