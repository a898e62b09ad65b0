"""Raw pixels: always available, no weights. Good for small, aligned images such as digits."""
from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.embed.models.base import Embedder


class PixelEmbedder(Embedder):
    """Resize to ``size`` x ``size`` RGB and flatten to [0, 1] values (3·size² dimensions).

    >>> e = PixelEmbedder(size=4)
    >>> e.encode(e.collate([e.preprocess(Image.new("RGB", (9, 9), "white"))])).shape
    (1, 48)
    """

    name = "pixels"
    default_batch_size = 512

    def __init__(self, *, size: int = 32) -> None:
        self.size = size

    @property
    def dim(self) -> int:
        return 3 * self.size * self.size

    def cache_key(self) -> str:
        return f"pixels-v1-{self.size}"

    def preprocess(self, item: Image.Image) -> np.ndarray:
        im = item.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        return (np.asarray(im, dtype=np.float32) / 255.0).reshape(-1)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(batch, dtype=np.float32)
