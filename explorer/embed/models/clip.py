"""open_clip image tower, from a pretrained tag (downloaded on first use) or a local checkpoint.

Weights for a tag are looked up in the local Hugging Face cache first; when they are absent we
probe the hub with a short timeout instead of letting the download client retry for a minute,
so callers can fall back to an offline embedder with a clear reason.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from explorer.embed.models.base import TensorTransform, TorchImageEmbedder, tensor_transform_of
from explorer.store.cache import file_digest

HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# The default model's hub repository, so checking for it needs no (slow, torch-importing)
# open_clip import; a test keeps it equal to open_clip's own table.
KNOWN_REPOS: dict[tuple[str, str | None], str] = {
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
}


def is_checkpoint_path(pretrained: str | None) -> bool:
    """A pretrained value is a local file when it exists or looks like one."""
    if not pretrained:
        return False
    return Path(pretrained).expanduser().exists() or pretrained.endswith(
        (".pt", ".pth", ".bin", ".safetensors", ".ckpt"))


def is_open_clip_model(name: str) -> bool:
    """Whether ``name`` (``ARCH``, ``ARCH/TAG`` or ``ARCH@checkpoint``) names an open_clip
    architecture: the bare form of ``clip:...``. Imports open_clip (and torch), so it is asked only
    about names no registered embedder claims.

    >>> is_open_clip_model("ViT-B-32/laion2b_s34b_b79k"), is_open_clip_model("vit-b-32"), is_open_clip_model("nope")
    (True, False, False)
    """
    arch = name.split("@", 1)[0].split("/", 1)[0]
    try:
        import open_clip
    except ImportError:
        return False
    return arch in open_clip.list_models()


PROBE_TIMEOUT = 1.0  # seconds: an unreachable hub makes the app fall back within about this


def weights_status(arch: str, pretrained: str | None, *, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Whether weights for ``arch``/``pretrained`` can be had now, and why (not).

    >>> weights_status("ViT-B-32", "no-such-tag")[0]
    False
    """
    if is_checkpoint_path(pretrained):
        path = Path(str(pretrained)).expanduser()
        return (True, f"local checkpoint {path}") if path.is_file() else (False, f"checkpoint not found: {path}")
    repo, url = KNOWN_REPOS.get((arch, pretrained)), ""
    if repo is None:
        import open_clip

        if arch not in open_clip.list_models():
            return False, f"unknown open_clip model {arch!r}"
        if pretrained is None:
            return True, "random initialisation (no pretrained weights requested)"
        cfg = open_clip.get_pretrained_cfg(arch, pretrained)
        if not cfg:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
            return False, f"unknown pretrained tag {pretrained!r} for {arch} (known: {tags})"
        repo, url = (cfg.get("hf_hub") or "").strip("/"), cfg.get("url", "")
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in HF_FILENAMES:
            hit = try_to_load_from_cache(repo_id=repo, filename=filename)
            if isinstance(hit, str):
                return True, f"cached at {hit}"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False, "weights are not in the local cache and HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/") if repo else url
    probe = f"{endpoint}/api/models/{repo}" if repo else url
    host = urlparse(probe).hostname or probe
    # an HTTPS request, not a bare TCP connect: proxies and firewalls accept connections to hosts
    # they will never let through, and a download would then hang for a minute
    try:
        with urllib.request.urlopen(urllib.request.Request(probe, method="HEAD"), timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return False, f"weights are not cached and {host} cannot be reached ({type(reason).__name__}: {reason})"
    if status >= 400:
        return False, f"weights are not cached and {host} answered HTTP {status}"
    return True, f"will download from {host}"


class ClipEmbedder(TorchImageEmbedder):
    """Image embeddings from an open_clip model.

    ``pretrained`` is a tag of ``open_clip.list_pretrained()`` or a path to a checkpoint
    (loaded with ``weights_only=True``).
    """

    modality = "image"
    default_batch_size = 128

    def __init__(self, arch: str = "ViT-B-32", *, pretrained: str | None = "laion2b_s34b_b79k",
                 device: str = "auto", modality: str = "image", precision: str = "auto") -> None:
        super().__init__(device=device, precision=precision)
        if modality not in ("image", "text"):
            raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
        self.modality = modality
        self.arch = arch
        self.pretrained = pretrained
        self._preprocess = None
        self._digest: str | None = None
        sep = "@" if is_checkpoint_path(pretrained) else "/"
        self.name = f"clip:{arch}" + (f"{sep}{pretrained}" if pretrained else "")

    def cache_key(self) -> str:
        if is_checkpoint_path(self.pretrained):
            if self._digest is None:
                self._digest = file_digest(Path(str(self.pretrained)).expanduser())
            weights = f"ckpt-{self._digest[:16]}"
        else:
            weights = self.pretrained or "random"
        tower = "" if self.modality == "image" else "-text"
        return f"clip-{self.arch}-{weights}{tower}-v1"

    def for_modality(self, modality: str) -> ClipEmbedder:
        """The same model's other tower: images and texts land in one shared space."""
        if modality == self.modality:
            return self
        return ClipEmbedder(self.arch, pretrained=self.pretrained, device=self.device, modality=modality,
                            precision=self.precision)

    def _build(self):
        import open_clip

        ok, why = weights_status(self.arch, self.pretrained)
        if not ok:
            raise RuntimeError(f"open_clip {self.arch} weights unavailable: {why}")
        if is_checkpoint_path(self.pretrained):
            model, _, preprocess = open_clip.create_model_and_transforms(self.arch, pretrained=None)
            open_clip.load_checkpoint(model, str(Path(str(self.pretrained)).expanduser()), weights_only=True)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(self.arch, pretrained=self.pretrained)
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(self.arch)
        return model

    def _load(self):
        import torch

        model = self._build()

        text = self.modality == "text"

        class Tower(torch.nn.Module):
            def __init__(self, clip):
                super().__init__()
                self.clip = clip

            def forward(self, x):
                return self.clip.encode_text(x) if text else self.clip.encode_image(x)

        return Tower(model)

    def preprocess(self, item):
        if self._preprocess is None:
            self.model  # noqa: B018 - building the model also builds its transform and tokenizer
        if self.modality == "text":
            return self._tokenizer([str(item)])[0]
        return self._preprocess(item.convert("RGB"))

    def tensor_transform(self) -> TensorTransform | None:
        """open_clip's own eval transform read as tensor ops; None for the text tower or for a
        transform with steps we do not mirror (e.g. resize_mode "longest" pads)."""
        if self.modality != "image":
            return None
        if self._preprocess is None:
            self.model  # noqa: B018 - the transform comes with the model
        return tensor_transform_of(self._preprocess)
