"""Diversity metrics, one module each: Vendi scores (vendi), spectra and Hill numbers
(spectrum), the streaming covariance (covariance), kernels and their feature maps (kernels,
features), per-item contributions (contributions), equal-n scores (equal_n), precision/recall/
density/coverage (prdc), novel modes (ken) and kernels as row transforms (kernel_rows)."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.metrics.covariance": ["CovarianceAccumulator", "cosine_spectrum"],
    "explorer.metrics.equal_n": ["bootstrap_scores", "group_scores"],
    "explorer.metrics.kernel_rows": ["KernelInfo", "kernel_rows"],
    "explorer.metrics.ken": ["NovelModes", "novel_modes"],
    "explorer.metrics.prdc": ["PRDC", "prdc"],
    "explorer.metrics.spectrum": ["DEFAULT_ORDERS", "Spectrum", "hill_number", "order_label", "parse_orders"],
    "explorer.metrics.vendi": ["VendiAnalysis", "VendiResult", "kernel_spectrum", "vendi_scores"],
})
