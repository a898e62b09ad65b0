"""What every embedder provides, and device selection."""
from __future__ import annotations

import numpy as np
from PIL import Image


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is returned as given.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class Embedder:
    """Maps items to vectors. Subclasses set ``name``/``modality`` and implement the hooks.

    ``cache_key`` identifies weights and preprocessing without loading the model, so cached
    embeddings are found without importing torch. ``preprocess`` runs per item on the CPU (it may
    run in worker processes); ``encode`` runs on a stacked batch.
    """

    name: str = ""
    modality: str = "image"
    default_batch_size: int = 64

    @property
    def batch_size_hint(self) -> int:
        return self.default_batch_size

    def cache_key(self) -> str:
        raise NotImplementedError

    def preprocess(self, item: Image.Image | str):
        raise NotImplementedError

    def encode(self, batch) -> np.ndarray:
        raise NotImplementedError

    def for_modality(self, modality: str) -> "Embedder":
        """This embedder (or its twin tower) for items of ``modality``; an error if it has none."""
        if modality != self.modality:
            raise ValueError(f"{self.name} embeds {self.modality}s, but these items are {modality}s; "
                             f"choose an embedder for {modality}s")
        return self

    def collate(self, items: list):
        """Stack preprocessed items into one batch."""
        first = items[0]
        if isinstance(first, np.ndarray):
            return np.stack(items)
        if isinstance(first, str):
            return list(items)
        import torch

        return torch.stack(items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


PRECISIONS = ("auto", "bf16", "fp16", "fp32")
GPU_BATCH_SIZE = 512  # large batches keep a GPU busy; CPUs gain nothing past ~64


class TorchImageEmbedder(Embedder):
    """A torch model run in inference mode; on CUDA under autocast (``precision`` "auto" = bf16
    where supported, else fp16; "fp32" disables it)."""

    def __init__(self, *, device: str = "auto", precision: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = device
        self.precision = precision
        self._model = None

    @property
    def batch_size_hint(self) -> int:
        """Default batch size for the resolved device."""
        return GPU_BATCH_SIZE if resolve_device(self.device).startswith("cuda") else self.default_batch_size

    def _autocast_dtype(self):
        import torch

        if self.precision == "fp32" or not self.device.startswith("cuda"):
            return None
        if self.precision == "fp16" or (self.precision == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16

    def __getstate__(self) -> dict:
        # decode workers need the preprocessing, never a copy of the model's weights
        return {**self.__dict__, "_model": None}

    def _load(self):  # returns an eval-mode module mapping (b, 3, h, w) to (b, d)
        raise NotImplementedError

    @property
    def model(self):
        if self._model is None:
            self.device = resolve_device(self.device)
            self._model = self._load().to(self.device).eval()
        return self._model

    def encode(self, batch) -> np.ndarray:
        import torch

        model = self.model
        x = batch.to(self.device, non_blocking=True)
        dtype = self._autocast_dtype()
        with torch.inference_mode():
            if dtype is not None:
                with torch.autocast("cuda", dtype=dtype):
                    out = model(x)
            else:
                out = model(x)
        return out.float().cpu().numpy()
