"""Decode JPEGs on the model's device with ``torchvision.io.decode_jpeg`` (nvJPEG on CUDA).

Workers only read a JPEG's bytes and parse its header (PIL reads the size without decoding, so
a decompression bomb is caught before any pixels exist). The main process decodes a batch in one
call on the device and resizes, crops and normalises it there with the embedder's
:meth:`~explorer.embed.models.base.TorchImageEmbedder.tensor_preprocess`.

Everything the device decoder would not reproduce as the CPU path does goes the CPU way
(``load_image`` + ``preprocess``) in the worker: files that are not JPEGs, CMYK/YCCK, progressive
JPEGs (nvJPEG decodes those one by one on the host, slower than parallel workers), EXIF-rotated
ones (``decode_jpeg`` applies orientation on the CPU only) and bombs. A JPEG the device decoder
rejects is decoded by PIL in the main process, so a broken file gets the same reason as always.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from explorer.data.images import MAX_PIXELS, ImageError
from explorer.data.sources import is_virtual, read_item
from explorer.embed.batches import Batch, ItemBatches, decode_item
from explorer.embed.models.base import Embedder, resolve_device

if TYPE_CHECKING:
    import torch

JPEG_SUFFIXES = (".jpg", ".jpeg")
EXIF_ORIENTATION = 0x0112
# decoded pixels per decode_jpeg call: a batch of 512 large photos would not fit a GPU at once
DEVICE_PIXELS_PER_CALL = 1 << 28


@dataclass
class RawJpeg:
    """A JPEG's file bytes, its pixel count (from the header) and its item row."""

    data: bytes
    pixels: int
    row: dict


def jpeg_bytes(row: dict, *, max_pixels: int = MAX_PIXELS) -> RawJpeg | None:
    """The bytes of a JPEG that the device decoder reproduces exactly, else None (then the item
    takes the CPU path, which also gives any broken item its reason).

    >>> jpeg_bytes({"kind": "image", "path": "a.png"}) is None
    True
    """
    path = str(row.get("path", ""))
    if row.get("kind") != "image" or not path.lower().endswith(JPEG_SUFFIXES):
        return None
    try:
        data = read_item(path) if is_virtual(path) else Path(path).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb warning here just means the CPU path rejects it
            with Image.open(io.BytesIO(data)) as im:  # parses the header, decodes nothing
                w, h = im.size
                ok = (im.format == "JPEG" and im.mode in ("RGB", "L") and 0 < w * h <= max_pixels
                      and not (im.info.get("progressive") or im.info.get("progression"))
                      and im.getexif().get(EXIF_ORIENTATION, 1) == 1)
    except Exception:  # noqa: BLE001 - unreadable or odd: the CPU path says why
        return None
    return RawJpeg(data, w * h, row) if ok else None


class RawBatches(ItemBatches):
    """Batches whose JPEGs are raw bytes (:class:`RawJpeg`) and other items CPU-preprocessed."""

    def read(self, row: dict):
        raw = jpeg_bytes(row)
        return raw if raw is not None else decode_item(row, self.embedder)

    def collate(self, inputs: list) -> list:
        return inputs  # stacked by finish_batch, after decoding on the device


def decode_jpegs(datas: list[bytes], *, device: str) -> list[torch.Tensor | None]:
    """Decode JPEG bytes to uint8 (3, h, w) RGB tensors on ``device``; None where one fails.

    >>> from PIL import Image; b = io.BytesIO(); Image.new("RGB", (5, 4)).save(b, "JPEG")
    >>> [tuple(x.shape) if x is not None else x for x in decode_jpegs([b.getvalue(), b"junk"], device="cpu")]
    [(3, 4, 5), None]
    """
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image IO in favour of TorchCodec; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        try:  # one call for all: on CUDA nvJPEG decodes a batch together
            return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))
        except Exception:  # noqa: BLE001 - one bad file fails the whole call: retry one by one
            pass
        out: list[torch.Tensor | None] = []
        for t in tensors:
            try:
                out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
            except Exception:  # noqa: BLE001 - the CPU path will give the reason
                out.append(None)
        return out


def _cpu_fallback(row: dict, embedder: Embedder):
    """PIL decode + preprocess in the main process: the tensor, or the failure reason."""
    try:
        return decode_item(row, embedder), None
    except ImageError as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 - as in the workers: a preprocessing bug must not kill the job
        return None, f"could not preprocess: {type(err).__name__}: {err}"


def _calls(indices: list[int], pixels: list[int]) -> list[list[int]]:
    """Split ``indices`` into decode calls of at most DEVICE_PIXELS_PER_CALL pixels (one or more items)."""
    calls: list[list[int]] = [[]]
    total = 0
    for i, n in zip(indices, pixels):
        if calls[-1] and total + n > DEVICE_PIXELS_PER_CALL:
            calls.append([])
            total = 0
        calls[-1].append(i)
        total += n
    return [c for c in calls if c]


def finish_batch(batch: Batch, embedder: Embedder) -> Batch:
    """Decode a :class:`RawBatches` batch's JPEGs on the embedder's device, preprocess them there,
    and stack them with the CPU-preprocessed items, in order, into one batch on that device."""
    import torch

    digests, inputs, failures = batch
    if not inputs:
        return digests, None, failures
    failures = dict(failures)
    device = resolve_device(getattr(embedder, "device", "cpu"))
    ready: dict[int, torch.Tensor] = {}  # position in the batch -> preprocessed (3, s, s) or (b, 3, s, s)
    raw = [i for i, x in enumerate(inputs) if isinstance(x, RawJpeg)]
    fallback = [i for i, x in enumerate(inputs) if not isinstance(x, RawJpeg)]
    for call in _calls(raw, [inputs[i].pixels for i in raw]):
        images = decode_jpegs([inputs[i].data for i in call], device=device)
        ok = [i for i, image in zip(call, images) if image is not None]
        fallback += [i for i, image in zip(call, images) if image is None]
        if not ok:
            continue
        try:
            x = embedder.tensor_preprocess([image for image in images if image is not None])
        except Exception:  # noqa: BLE001 - e.g. out of device memory: these items go the CPU way
            fallback += ok
            continue
        ready.update({i: x[k] for k, i in enumerate(ok)})
        del images  # full-size decoded images: free them before the next call
    for i in fallback:
        item = inputs[i]
        if isinstance(item, RawJpeg):
            item, reason = _cpu_fallback(item.row, embedder)
            if reason is not None:
                failures[digests[i]] = reason
                continue
        ready[i] = item
    keep = sorted(ready)
    if not keep:
        return [], None, failures
    out = torch.stack([ready[i].to(device, non_blocking=True) for i in keep])
    return [digests[i] for i in keep], out, failures
