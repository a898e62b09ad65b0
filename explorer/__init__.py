"""Vendiscope: dataset diversity explorer (Vendi scores, spectra, embeddings, maps).

The library never imports Streamlit; heavy dependencies (torch, umap) load on first use.
"""
from explorer.diversity import VendiAnalysis, kernel_spectrum, vendi_scores
from explorer.vendi import DEFAULT_ORDERS, cosine_spectrum

__version__ = "0.1.0"
__all__ = ["DEFAULT_ORDERS", "VendiAnalysis", "cosine_spectrum", "kernel_spectrum", "vendi_scores", "__version__"]
