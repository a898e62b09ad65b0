"""Vendiscope: dataset diversity explorer (Vendi scores, spectra, embeddings, maps, diagnostics).

The public API, in one import::

    from explorer import load_dataset, resolve_embedder, embed_dataset, VendiAnalysis, Comparison

Names load on first use (:mod:`explorer.lazy`); the library never imports Streamlit, and torch and
umap load only when a computation needs them. Subpackages, bottom layer first (each imports only
from those before it): data, store, embed, neighbors, metrics, maps, diagnostics, compare, curate,
distributed, cli.
"""
from explorer.lazy import lazy_exports

__version__ = "0.1.0"
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.compare.comparison": ["Comparison", "cached_comparison"],
    "explorer.curate.prompts": ["prompt_diversity"],
    "explorer.curate.represent": ["Representation", "represent"],
    "explorer.curate.select": ["DiverseSubset", "diverse_subset"],
    "explorer.data.datasets": ["Dataset", "load_dataset", "sample_data_dir"],
    "explorer.diagnostics.base": ["Diagnostic", "DiagnosticResult", "register"],
    "explorer.diagnostics.catalog": ["registered"],
    "explorer.embed.pipeline": ["EmbeddingResult", "embed_dataset"],
    "explorer.embed.registry": ["get_embedder", "resolve_embedder"],
    "explorer.maps.clusters": ["kmeans_labels"],
    "explorer.maps.projection": ["umap_project"],
    "explorer.metrics.covariance": ["CovarianceAccumulator", "cosine_spectrum"],
    "explorer.metrics.equal_n": ["bootstrap_scores", "group_scores"],
    "explorer.metrics.kernel_rows": ["kernel_rows"],
    "explorer.metrics.ken": ["novel_modes"],
    "explorer.metrics.prdc": ["prdc"],
    "explorer.metrics.spectrum": ["DEFAULT_ORDERS"],
    "explorer.metrics.vendi": ["VendiAnalysis", "kernel_spectrum", "vendi_scores"],
    "explorer.store.export": ["export_table", "write_export"],
    "explorer.store.flags": ["FlagStore"],
})
