"""decode="gpu" (torchvision decode_jpeg + tensor preprocessing on the embedder's device), run on
the CPU here: it must embed and skip exactly what the PIL path does, with near-equal vectors."""
import io

import numpy as np
import pytest
from PIL import Image

from explorer.data.datasets import load_image_folder
from explorer.embed.decoding import decoded_batches, resolve_decode
from explorer.embed.gpu_decode import RawJpeg, jpeg_bytes
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder

# Measured on this corpus (efficientnet-lite0, CPU): per-item cosine between the two paths is
# >= 0.9992 (lowest: gray.jpg 0.99923 and tiny.jpg, 31x17 upscaled 7x, 0.99931, where PIL's
# 8-bit two-pass resize and torch's float resize round 1-3 levels apart); the 320x240 photos agree
# to >= 0.9997. 0.995 leaves room for other CPUs/BLAS and nvJPEG's slightly different IDCT.
MIN_COSINE = 0.995
ON_DEVICE = {"photo_a.jpg", "photo_b.jpg", "photo_c.jpg", "square.jpeg", "tiny.jpg", "gray.jpg"}
CPU_WAY = {"rotated.jpg", "cmyk.jpg", "progressive.jpg", "graphic.png", "not_a_jpeg.jpg"}
BROKEN = {"truncated.jpg": "truncated", "bomb.jpg": "decompression bomb", "empty.jpg": "empty"}


def photo(rng, w, h):
    """A smooth colour field with noise: resizes like a photo, unlike flat colour."""
    low = Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    return Image.fromarray(np.clip(np.asarray(low, np.int16) + rng.integers(-20, 20, (h, w, 3)), 0, 255)
                           .astype(np.uint8))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    photo(rng, 320, 240).save(root / "photo_a.jpg", quality=90)
    photo(rng, 320, 240).save(root / "photo_b.jpg", quality=90)  # same size as a: resized together
    photo(rng, 200, 500).save(root / "photo_c.jpg", quality=90)
    photo(rng, 224, 224).save(root / "square.jpeg", quality=90)
    photo(rng, 31, 17).save(root / "tiny.jpg", quality=90)
    photo(rng, 120, 90).convert("L").save(root / "gray.jpg")
    photo(rng, 120, 90).save(root / "graphic.png")
    photo(rng, 120, 90).convert("CMYK").save(root / "cmyk.jpg")
    photo(rng, 120, 90).save(root / "progressive.jpg", progressive=True)
    photo(rng, 120, 90).save(root / "not_a_jpeg.jpg", format="PNG")
    tall = photo(rng, 40, 90)
    exif = Image.Exif()
    exif[0x0112] = 6  # a viewer rotates it 90° clockwise
    tall.save(root / "rotated.jpg", exif=exif)
    data = (root / "photo_a.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "bomb.jpg").write_bytes(with_jpeg_size(data, 9000, 9000))  # 81 Mpixel header, 10 kB file
    (root / "empty.jpg").write_bytes(b"")
    return root


def with_jpeg_size(data: bytes, w: int, h: int) -> bytes:
    """The JPEG ``data`` with its frame header claiming ``w`` x ``h`` pixels."""
    i = data.index(b"\xff\xc0")  # baseline SOF0: marker, length(2), precision(1), height(2), width(2)
    return data[: i + 5] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + data[i + 9 :]


def rows(root):
    return {r["id"]: r for r in load_image_folder(root).items.to_dict("records")}


def test_only_plain_jpegs_go_to_the_device(folder):
    raw = {name for name, row in rows(folder).items() if jpeg_bytes(row) is not None}
    assert raw == ON_DEVICE | {"truncated.jpg"}  # its header is fine; the device decoder rejects it
    assert isinstance(jpeg_bytes(rows(folder)["photo_a.jpg"]), RawJpeg)
    assert jpeg_bytes(rows(folder)["bomb.jpg"]) is None  # rejected from the header, never decoded


@pytest.mark.parametrize("workers", [0, 1])
def test_gpu_mode_matches_cpu_mode(folder, tmp_path, workers):
    embedder = get_embedder("efficientnet-lite0", device="cpu")
    ds = load_image_folder(folder)
    cpu = embed_dataset(ds, embedder, cache_dir=tmp_path / "cpu", batch_size=8, num_workers=workers, decode="cpu")
    gpu = embed_dataset(ds, embedder, cache_dir=tmp_path / "gpu", batch_size=8, num_workers=workers, decode="gpu")
    assert list(gpu.items["id"]) == list(cpu.items["id"])
    assert set(gpu.items["id"]) == ON_DEVICE | CPU_WAY
    reasons = dict(zip(gpu.skipped["id"], gpu.skipped["reason"]))
    assert reasons == dict(zip(cpu.skipped["id"], cpu.skipped["reason"]))
    for name, words in BROKEN.items():
        assert words in reasons[name], (name, reasons[name])
    a, b = cpu.embeddings, gpu.embeddings
    cosine = dict(zip(cpu.items["id"], (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
    assert min(cosine.values()) >= MIN_COSINE, cosine
    for name in CPU_WAY:  # same PIL path in both modes: identical up to batch composition
        assert cosine[name] > 0.99999, name


def test_decode_mode_is_not_part_of_the_cache_key(folder, tmp_path):
    """Vectors cached by one mode serve the other (see the comment in embed_dataset)."""
    embedder = get_embedder("efficientnet-lite0", device="cpu")
    ds = load_image_folder(folder)
    first = embed_dataset(ds, embedder, cache_dir=tmp_path, batch_size=8, num_workers=0, decode="gpu")
    again = embed_dataset(ds, embedder, cache_dir=tmp_path, batch_size=8, num_workers=0, decode="cpu")
    assert again.n_computed == 0 and again.n_cached == first.n_computed
    assert again.embedder_key == first.embedder_key


def test_tensor_preprocess_matches_pil_pixel_for_pixel(folder):
    """The tensor twin of the transform lands within a few 8-bit levels of PIL's output."""
    import torch

    from explorer.data.images import load_image
    from explorer.embed.gpu_decode import decode_jpegs

    embedder = get_embedder("efficientnet-lite0", device="cpu")
    names = sorted(ON_DEVICE)
    images = decode_jpegs([(folder / n).read_bytes() for n in names], device="cpu")
    x = embedder.tensor_preprocess(images)
    y = torch.stack([embedder.preprocess(load_image(folder / n)) for n in names])
    level = 2 / 255  # one 8-bit step after Normalize(0.5, 0.5)
    assert x.shape == y.shape == (len(names), 3, 224, 224)
    assert (x - y).abs().max() <= 3.01 * level and (x - y).abs().mean() < 0.5 * level


def test_auto_and_validation():
    assert resolve_decode("auto", get_embedder("efficientnet-lite0", device="cpu")) == "cpu"
    assert resolve_decode("gpu", get_embedder("efficientnet-lite0", device="cpu")) == "gpu"
    assert resolve_decode("gpu", get_embedder("minilm", device="cpu")) == "cpu"  # texts: nothing to decode
    with pytest.raises(ValueError, match="no tensor preprocessing"):
        resolve_decode("gpu", get_embedder("pixels"))
    with pytest.raises(ValueError, match="decode must be one of"):
        next(decoded_batches([], get_embedder("pixels"), batch_size=4, decode="nvjpeg"))


def test_open_clip_transform_has_a_tensor_twin(tiny_clip, tmp_path):
    arch, ckpt, _ = tiny_clip
    embedder = get_embedder(f"clip:{arch}@{ckpt}", device="cpu")
    plan = embedder.tensor_transform()
    assert plan is not None and plan.crop == (64, 64) and plan.interpolation == "bicubic"
    assert plan.mean[0] == pytest.approx(0.48145466)
    assert embedder.for_modality("text").tensor_transform() is None
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    photo(rng, 160, 120).save(buf, "JPEG", quality=90)
    root = tmp_path / "one"
    root.mkdir()
    (root / "a.jpg").write_bytes(buf.getvalue())
    ds = load_image_folder(root)
    a = embed_dataset(ds, embedder, cache_dir=tmp_path / "c1", num_workers=0, decode="cpu").embeddings[0]
    b = embed_dataset(ds, embedder, cache_dir=tmp_path / "c2", num_workers=0, decode="gpu").embeddings[0]
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= MIN_COSINE
