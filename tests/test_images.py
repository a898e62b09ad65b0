import numpy as np
import pytest
from PIL import Image

from explorer.data.images import ImageError, load_image


def test_modes_are_flattened_to_rgb(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.save(tmp_path / "a.png")
    im = load_image(tmp_path / "a.png")
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    Image.fromarray(np.full((3, 5), 65535, np.uint16)).save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png").getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (3, 3))
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.paste(1, (0, 0, 3, 3))
    pal.save(tmp_path / "c.png")
    assert load_image(tmp_path / "c.png").getpixel((1, 1)) == (10, 200, 30)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"), (b"hello, not an image", "not a decodable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "not a decodable image|corrupt"),
])
def test_broken_files_raise_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        load_image(path)


def test_truncated_and_missing(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(tmp_path / "t.jpg")
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(ImageError, match="dangling symlink"):
        load_image(tmp_path / "link.png")


def test_decompression_bomb_is_refused(tmp_path):
    Image.new("L", (2000, 2000)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(tmp_path / "big.png", max_pixels=1_000_000)
