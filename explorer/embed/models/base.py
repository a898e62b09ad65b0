"""What every embedder provides, device selection, and the tensor twin of an image transform."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


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

    def load(self) -> None:
        """Load the weights now (they load lazily otherwise), so that a model that cannot be
        loaded fails the job at once instead of failing every item."""

    def preprocess(self, item: Any) -> Any:
        """One decoded image (PIL) or text to the model's input."""
        raise NotImplementedError

    def preprocessor(self) -> Embedder:
        """What decode workers on other machines need, built once where the job starts: an
        embedder whose :meth:`preprocess` never builds the model and that pickles without its
        weights. Raises what the loader raises when the model cannot be loaded, so a job fails
        before any item is read. Here, for an embedder without weights: itself."""
        return self

    def encode(self, batch) -> np.ndarray:
        raise NotImplementedError

    def tensor_preprocess(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Decoded uint8 (3, h, w) tensors to the model's input batch (embedders whose
        :meth:`tensor_transform` is not None implement it)."""
        raise NotImplementedError(f"{self.name} has no tensor preprocessing")

    def tensor_transform(self) -> TensorTransform | None:
        """The preprocessing as tensor ops (see :meth:`TorchImageEmbedder.tensor_preprocess`), or
        None when it has no exact tensor twin; then images are only decoded on the CPU."""
        return None

    def for_modality(self, modality: str) -> Embedder:
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


@dataclass(frozen=True)
class TensorTransform:
    """Resize shorter side (or to ``resize`` = (h, w)), center crop, scale to [0, 1], normalise:
    the steps of a torchvision ``Compose`` that :func:`tensor_transform_of` understands."""

    resize: int | tuple[int, int]
    interpolation: str  # an InterpolationMode value: "bicubic", "bilinear", ...
    max_size: int | None
    crop: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]


def tensor_transform_of(transform) -> TensorTransform | None:
    """Read a torchvision ``Compose`` of Resize, CenterCrop, (convert to RGB), ToTensor, Normalize
    into a :class:`TensorTransform`; None for anything else, so unknown steps are never skipped.

    >>> from torchvision import transforms as T
    >>> tensor_transform_of(T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor(), T.Normalize([0.5], [0.5])]))
    TensorTransform(resize=8, interpolation='bilinear', max_size=None, crop=(8, 8), mean=(0.5,), std=(0.5,))
    """
    from torchvision import transforms as T

    resize = crop = interpolation = max_size = mean = std = None
    tensor = False
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, T.Resize) and resize is None and crop is None and not tensor:
            if step.antialias is False:  # PIL always antialiases; a tensor twin could not match
                return None
            size = step.size if isinstance(step.size, int) else tuple(step.size)
            resize = size[0] if isinstance(size, tuple) and len(size) == 1 else size
            interpolation, max_size = step.interpolation.value, step.max_size
        elif isinstance(step, T.CenterCrop) and crop is None and not tensor:
            crop = (step.size, step.size) if isinstance(step.size, int) else tuple(step.size)
            crop = crop * 2 if len(crop) == 1 else crop
        elif isinstance(step, T.ToTensor) and not tensor:
            tensor = True
        elif isinstance(step, T.Normalize) and tensor and mean is None:
            mean, std = tuple(map(float, step.mean)), tuple(map(float, step.std))
        elif getattr(step, "__name__", "") == "_convert_to_rgb" or getattr(step, "mode", None) == "RGB":
            continue  # decoded tensors are RGB already (open_clip's convert steps)
        else:
            return None
    if resize is None or not tensor:
        return None
    return TensorTransform(resize, str(interpolation), max_size, crop, mean or (0.0,), std or (1.0,))


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

    def tensor_preprocess(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Decoded uint8 (3, h, w) tensors, on any device, to the model's (b, 3, s, s) float input
        on that device: the same steps as :meth:`preprocess`, with torch ops instead of PIL.

        Images of one size are resized together. Rounding to uint8 after the resize mirrors PIL,
        which resizes in 8 bits, so the two paths differ only by the resampler's arithmetic.
        """
        import torch
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        plan = self.tensor_transform()
        if plan is None:
            raise NotImplementedError(f"{self.name} has no tensor preprocessing")
        groups: dict[tuple, list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(i)
        out = None
        mean = std = None
        for indices in groups.values():
            x = torch.stack([images[i] for i in indices]).float()
            x = F.resize(x, plan.resize, interpolation=InterpolationMode(plan.interpolation),
                         max_size=plan.max_size, antialias=True).round_().clamp_(0, 255)
            if plan.crop is not None:
                x = F.center_crop(x, list(plan.crop))
            if out is None:
                out = torch.empty((len(images), *x.shape[1:]), dtype=torch.float32, device=x.device)
                mean = torch.tensor(plan.mean, device=x.device).view(-1, 1, 1) * 255.0
                std = torch.tensor(plan.std, device=x.device).view(-1, 1, 1) * 255.0
            out[indices] = (x - mean) / std
        if out is None:
            raise ValueError("no images to preprocess")
        return out

    def _load(self):  # returns an eval-mode module mapping (b, 3, h, w) to (b, d)
        raise NotImplementedError

    @property
    def model(self):
        if self._model is None:
            self.device = resolve_device(self.device)
            self._model = self._load().to(self.device).eval()
        return self._model

    def load(self) -> None:
        self.model  # noqa: B018 - building it is the point

    def preprocessor(self) -> TorchImageEmbedder:
        """Loads the weights once, on the CPU, and drops them: that proves they load (a missing or
        broken checkpoint fails here) and builds the preprocessing that comes with the model
        (open_clip's transform and tokenizer), which then travels with this embedder; pickling
        never carries the model (:meth:`__getstate__`), and ``self.device`` is left unresolved
        for the workers, so the caller's GPU is not taken."""
        self._load()
        return self

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
