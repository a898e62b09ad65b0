"""Thumbnails: small, made once per content, placeholders for broken items, damaged entries redone."""
import io
import tarfile

import pytest
from PIL import Image

import explorer.store.thumbnails as thumbs
from explorer.store.cache import cache_root, file_digest
from explorer.store.thumbnails import placeholder_file, thumbnail, thumbnail_file, thumbnail_files


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (640, 360), (200, 30, 30)).save(path)
    return path


@pytest.fixture
def decodes(monkeypatch):
    """Count the decodes the thumbnails module asks for."""
    calls = []
    real = thumbs.load_image

    def counting(path, **kwargs):
        calls.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(thumbs, "load_image", counting)
    return calls


@pytest.mark.parametrize("shape", [(640, 360), (90, 1200), (20, 20)])
def test_thumbnail_fits_the_size_keeps_the_aspect_and_never_enlarges(tmp_path, shape):
    path = tmp_path / "im.png"
    Image.new("RGB", shape, (10, 120, 200)).save(path)
    im = Image.open(io.BytesIO(thumbnail(path, size=64)))
    assert im.format == "JPEG" and im.mode == "RGB"
    assert max(im.size) <= 64
    if max(shape) > 64:
        assert max(im.size) == 64 and abs(im.size[0] / im.size[1] - shape[0] / shape[1]) < 0.1
    else:
        assert im.size == shape


def test_second_call_reads_the_cache_without_decoding(photo, decodes):
    first = thumbnail_file(photo, size=96)
    assert first.is_relative_to(cache_root() / "thumbs") and file_digest(photo) in first.name
    assert thumbnail_file(photo, size=96) == first
    assert thumbnail(photo, size=96) == first.read_bytes()
    assert len(decodes) == 1
    # a given digest (as the embedding results carry) finds the same file without reading the photo
    assert thumbnail_file("/nowhere/else.png", size=96, digest=file_digest(photo)) == first
    assert len(decodes) == 1
    thumbnail_file(photo, size=48)  # another size is another thumbnail
    assert len(decodes) == 2


def test_same_content_under_another_name_shares_the_thumbnail(photo, decodes):
    copy = photo.with_name("copy.png")
    copy.write_bytes(photo.read_bytes())
    assert thumbnail_file(copy) == thumbnail_file(photo)
    assert len(decodes) == 1


def test_edited_file_gets_a_new_thumbnail(photo):
    before = thumbnail(photo, size=32)
    Image.new("RGB", (640, 360), (20, 200, 30)).save(photo)
    after = thumbnail(photo, size=32)
    assert before != after and Image.open(io.BytesIO(after)).getpixel((16, 8))[1] > 150


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_broken_items_get_the_placeholder(tmp_path, content, decodes):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    assert thumbnail(path, size=64) == placeholder_file(size=64).read_bytes()
    calls = len(decodes)
    thumbnail(path, size=64)  # a broken content is remembered like any other
    assert len(decodes) == calls


def test_missing_files_and_items_without_a_path_get_the_placeholder(tmp_path):
    expected = placeholder_file(size=40).read_bytes()
    assert thumbnail(tmp_path / "gone.png", size=40) == expected
    assert thumbnail_file(None, size=40).read_bytes() == expected
    assert thumbnail_file(float("nan"), size=40).read_bytes() == expected
    # a known digest whose file is gone for now is not marked broken for good
    photo = tmp_path / "later.png"
    Image.new("RGB", (50, 50), (0, 0, 255)).save(photo)
    digest = file_digest(photo)
    photo.rename(tmp_path / "away.png")
    assert thumbnail(photo, size=40, digest=digest) == expected
    (tmp_path / "away.png").rename(photo)
    assert thumbnail(photo, size=40, digest=digest) != expected


@pytest.mark.parametrize("damage", [b"", b"\xff\xd8 cut short", b"garbage"])
def test_damaged_cache_entry_is_made_again(photo, decodes, damage):
    entry = thumbnail_file(photo, size=64)
    good = entry.read_bytes()
    entry.write_bytes(damage)
    assert thumbnail_file(photo, size=64).read_bytes() == good
    assert len(decodes) == 2
    assert not list(entry.parent.glob(".*.tmp"))  # written through a temporary file and a rename


def test_items_inside_a_tar_shard(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (0, 200, 0)).save(buf, format="PNG")
    with tarfile.open(tmp_path / "shard.tar", "w") as tar:
        info = tarfile.TarInfo("s1.png")
        info.size = len(buf.getvalue())
        tar.addfile(info, io.BytesIO(buf.getvalue()))
    im = Image.open(io.BytesIO(thumbnail(f"{tmp_path / 'shard.tar'}::s1.png", size=30)))
    assert im.size == (30, 20)
    assert thumbnail(f"{tmp_path / 'shard.tar'}::missing.png", size=30) == placeholder_file(size=30).read_bytes()


def test_batch_keeps_the_order_and_mixes_good_and_broken(tmp_path, decodes):
    paths = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (100 + i, 80), (20 * i, 0, 0)).save(path)
        paths.append(path)
    (tmp_path / "bad.png").write_bytes(b"nope")
    paths.insert(5, tmp_path / "bad.png")
    files = thumbnail_files(paths, size=50)
    assert [Image.open(f).size[0] for f in files] == [50] * len(paths)
    assert files[5].read_bytes() == placeholder_file(size=50).read_bytes()
    assert len(set(files)) == len(paths)
    assert len(decodes) == len(paths)
    assert thumbnail_files(paths, size=50, digests=[None] * len(paths)) == files
    assert len(decodes) == len(paths)
    with pytest.raises(ValueError):
        thumbnail_files(paths, digests=["x"])


def test_a_batch_with_digests_finds_cached_ones_without_threads_and_redoes_damaged_ones(tmp_path, decodes,
                                                                                       monkeypatch):
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (60 + i, 40), (0, 30 * i, 0)).save(path)
        paths.append(path)
    digests = [file_digest(p) for p in paths]
    first = thumbnail_files(paths[:3], size=32, digests=digests[:3])  # half of them cached
    first[1].write_bytes(b"\xff\xd8 cut short")  # and one of those damaged
    pools = []
    real = thumbs.ThreadPoolExecutor
    monkeypatch.setattr(thumbs, "ThreadPoolExecutor", lambda **kw: pools.append(kw) or real(**kw))
    decodes.clear()
    files = thumbnail_files(paths, size=32, digests=digests)
    assert files[:3] == first and [Image.open(f).size[0] for f in files] == [32] * 6
    assert sorted(decodes) == sorted(map(str, [paths[1], *paths[3:]]))  # the damaged one and the new ones
    assert pools == [{"max_workers": 3}]  # threads for the three new ones only
    decodes.clear()
    assert thumbnail_files(paths, size=32, digests=digests) == files
    assert decodes == [] and len(pools) == 1  # all cached: no decode, no thread pool


def test_a_grid_shows_the_thumbnails_inline_and_escapes_captions(photo, tmp_path):
    """pages/_grid.py: one HTML element; a label from the user's data is text, never markup."""
    from streamlit.testing.v1 import AppTest

    from conftest import image_grids

    def page(files, captions):
        from pages._grid import image_grid

        image_grid(files, captions, width=40)

    files = [str(thumbnail_file(photo, size=40)), str(placeholder_file(size=40))]
    hostile = '<img src=x onerror="alert(1)"> & "quoted"'
    at = AppTest.from_function(page, args=(files, ["real · 3", hostile])).run()
    assert not at.exception
    (grid,) = image_grids(at)
    assert grid == [(open(files[0], "rb").read(), "real · 3"), (open(files[1], "rb").read(), hostile)]
    body = at.get("html")[0].proto.body
    assert hostile not in body and "<img src=x" not in body and "&lt;img src=x onerror=&quot;alert(1)&quot;" in body
