"""Small thumbnails for the app's grids, made once and kept on disk by content.

A grid shows a few dozen items per rerun; handing the original files to the browser would
re-encode every full image on every rerun. Instead each item is decoded once (safely, through
:func:`explorer.data.images.load_image`), shrunk to a small JPEG and stored under
``cache_root()/thumbs``, named by the SHA-1 of the item's bytes and the size, so a renamed or
moved file reuses its thumbnail and an edited one gets a new one. Items that cannot be decoded
get a placeholder instead of an error.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

from explorer.data.images import ImageError, load_image
from explorer.data.sources import is_virtual, read_item
from explorer.store.cache import Codec, cached, entry_path, file_digest

FORMAT = "v1"  # part of every file name: changing size rules, format or quality must not reuse old files
QUALITY = 85
_READ_ERRORS = (OSError, ValueError, IndexError, KeyError, tarfile.TarError)


def thumbnail(path: str | os.PathLike, *, size: int = 128, digest: str | None = None, root=None) -> bytes:
    """JPEG bytes of ``path`` shrunk to fit ``size`` x ``size`` (never enlarged); a placeholder
    when the item cannot be read or decoded.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"; Image.new("RGB", (400, 100)).save(p)
    >>> Image.open(io.BytesIO(thumbnail(p, size=64, root=p.parent / "cache"))).size
    (64, 16)
    """
    return thumbnail_file(path, size=size, digest=digest, root=root).read_bytes()


def thumbnail_file(path: str | os.PathLike | None, *, size: int = 128, digest: str | None = None,
                   root=None) -> Path:
    """Path of the cached thumbnail of ``path``, made on the first call.

    ``digest`` (the SHA-1 of the item's bytes, as in ``EmbeddingResult.items["digest"]``) lets a
    cached thumbnail be found without reading the original at all.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("L", (10, 300)).save(d / "tall.png")
    >>> thumbnail_file(d / "tall.png", size=32, root=d / "cache").name.endswith("-32-v1.jpg")
    True
    """
    if path is None or (isinstance(path, float) and path != path):  # an item without a file (NaN)
        return placeholder_file(size=size, root=root)
    path = os.fspath(path)
    trusted = digest is not None
    if digest is None:
        try:
            digest = content_digest(path)
        except _READ_ERRORS:
            return placeholder_file(size=size, root=root)  # unreadable now: nothing to key it by
    key = _key(digest, size)

    def make() -> bytes:
        try:
            return _encode(load_image(path), size)
        except ImageError:
            if trusted:
                # a digest handed in may belong to a file that is only missing for now: do not
                # tie the placeholder to that content for good
                raise _NotNow from None
            return placeholder_file(size=size, root=root).read_bytes()  # these very bytes never decode

    try:
        cached(KIND, key, make, codec=JPEG, root=root)
    except _NotNow:
        return placeholder_file(size=size, root=root)
    return entry_path(KIND, key, JPEG, root=root)


def thumbnail_files(paths: Sequence, *, size: int = 128, digests: Sequence | None = None, root=None,
                    workers: int = 8) -> list[Path]:
    """:func:`thumbnail_file` for many items, the missing ones decoded in parallel threads
    (Pillow releases the GIL while decoding and resizing).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (90, 90)).save(d / "a.png")
    >>> [p.suffix for p in thumbnail_files([d / "a.png", d / "gone.png"], size=16, root=d / "c")]
    ['.jpg', '.jpg']
    """
    paths = list(paths)
    digests = list(digests) if digests is not None else [None] * len(paths)
    if len(digests) != len(paths):
        raise ValueError(f"{len(digests)} digests for {len(paths)} paths")
    digests = [d if isinstance(d, str) and d else None for d in digests]

    def one(pair) -> Path:
        return thumbnail_file(pair[0], size=size, digest=pair[1], root=root)

    pairs = list(zip(paths, digests))
    # items whose thumbnail is on disk are found here; threads only for the ones to decode (a pool
    # per grid cost more CPU than the cached grid itself, on every rerun of a busy app)
    todo = [i for i, (_, d) in enumerate(pairs)
            if d is None or not entry_path(KIND, _key(d, size), JPEG, root=root).exists()]
    if len(todo) <= 1 or workers <= 1:
        made = {i: one(pairs[i]) for i in todo}
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            made = dict(zip(todo, pool.map(one, [pairs[i] for i in todo])))
    return [made[i] if i in made else one(pair) for i, pair in enumerate(pairs)]


def _key(digest: str, size: int) -> str:
    return f"{digest}-{size}-{FORMAT}"


def content_digest(path: str) -> str:
    """SHA-1 of an item's bytes, the key of its thumbnail: a file, or ``CONTAINER::MEMBER``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"; _ = p.write_bytes(b"abc")
    >>> content_digest(str(p)) == hashlib.sha1(b"abc").hexdigest()
    True
    """
    if is_virtual(path):
        return hashlib.sha1(read_item(path)).hexdigest()
    stat = os.stat(path)
    return _file_digest(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    # keyed by size and mtime as well, so an edited file is hashed again; a grid's rerun is not
    return file_digest(path)


def placeholder_file(*, size: int = 128, root=None) -> Path:
    """A grey square with a cross, shown for items that cannot be decoded."""

    def draw() -> bytes:
        im = Image.new("RGB", (size, size), (236, 236, 236))
        pen = ImageDraw.Draw(im)
        pad, width = size // 4, max(1, size // 24)
        pen.line([(pad, pad), (size - pad, size - pad)], fill=(160, 160, 160), width=width)
        pen.line([(pad, size - pad), (size - pad, pad)], fill=(160, 160, 160), width=width)
        return _jpeg(im)

    key = f"placeholder-{size}-{FORMAT}"
    cached(KIND, key, draw, codec=JPEG, root=root)
    return entry_path(KIND, key, JPEG, root=root)


def _encode(im: Image.Image, size: int) -> bytes:
    im.thumbnail((size, size), Image.Resampling.LANCZOS)  # keeps the aspect ratio, never enlarges
    return _jpeg(im)


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=QUALITY, optimize=True)
    return buf.getvalue()


def _is_complete_jpeg(data: bytes) -> bool:
    """Writes are atomic, so a damaged entry comes from outside (disk, hand edits): a JPEG's start
    and end markers, which a truncated or foreign file lacks, tell it apart; it is redone then."""
    return data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"


class _NotNow(Exception):
    """The item cannot be decoded now, and its thumbnail must not be cached as broken."""


KIND = "thumbs"
# served to the browser as files, so stored as plain JPEGs (no checksum frame), checked by markers
JPEG = Codec("jpg", bytes, bytes, framed=False, check=_is_complete_jpeg)
