"""Safe image decoding: every valid image becomes an upright RGB picture, every broken one a
clear reason.

Pillow's decompression-bomb check is made an error (not a warning) at a pixel budget we choose,
EXIF orientation is applied as a viewer would, and palette/alpha/16-bit images are flattened
onto a white background the same way every time.
"""
from __future__ import annotations

import io
import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.data.sources import is_virtual, read_item

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MAX_PIXELS = 64_000_000  # ~8k x 8k; larger images are treated as decompression bombs


class ImageError(Exception):
    """An item could not be decoded; ``str(err)`` is the reason shown to users."""


def load_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` to an RGB image (first frame, EXIF-rotated), or raise :class:`ImageError`.

    >>> from PIL import Image; import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"; Image.new("L", (4, 2)).save(p)
    >>> load_image(p).size, load_image(p).mode
    ((4, 2), 'RGB')
    """
    if isinstance(path, str) and is_virtual(path):
        try:
            data = read_item(path)
        except (OSError, ValueError, IndexError, KeyError, tarfile.TarError) as err:
            raise ImageError(f"cannot read the item: {err}") from None
        if not data:
            raise ImageError("empty file (0 bytes)")
        return _decode(io.BytesIO(data), max_pixels)
    path = Path(path)
    try:
        if not path.exists():
            raise ImageError("file not found" + (" (dangling symlink)" if path.is_symlink() else ""))
        if path.stat().st_size == 0:
            raise ImageError("empty file (0 bytes)")
    except OSError as err:
        raise ImageError(f"file not readable: {err}") from None
    return _decode(path, max_pixels)


def _decode(source, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(f"image too large ({w}x{h} pixels > {max_pixels}): possible decompression bomb")
                im.seek(0)
                im.load()
                return to_rgb(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"not a decodable image: {err}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError(f"corrupt or truncated image: {err}") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Flatten any mode to RGB; transparency is composited onto white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        im = Image.fromarray(((arr - lo) / (hi - lo or 1.0) * 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im
