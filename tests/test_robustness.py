"""The bad-input corpus: valid odd images are embedded, broken items are reported by name,
nothing crashes; and a job killed with SIGKILL resumes losing at most one chunk."""
import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer.data.datasets import load_dataset, load_image_folder, load_manifest
from explorer.data.images import load_image
from explorer.embed.pipeline import embed_dataset
from explorer.embed.registry import get_embedder

VALID = {"cmyk.jpg", "16bit.png", "palette_alpha.png", "rgba.png", "exif_rotated.jpg", "animated.gif",
         "one_pixel.png", "panorama.png", "ünïcødé 名前.png", "plain.jpg"}
BROKEN = {"truncated.jpg": "truncated", "zero.png": "empty", "text.png": "not a decodable image",
          "random.jpg": "not a decodable image", "bomb.png": "decompression bomb",
          "dangling.png": "dangling symlink", "loop.png": "not found"}


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (48, 64, 3), np.uint8)
    Image.fromarray(noise).save(root / "plain.jpg")
    Image.fromarray(noise).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray((rng.integers(0, 65535, (20, 30))).astype(np.uint16)).save(root / "16bit.png")
    pal = Image.fromarray(noise).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.info["transparency"] = 0
    pal.save(root / "palette_alpha.png", transparency=0)
    Image.fromarray(np.dstack([noise, np.full((48, 64), 128, np.uint8)])).save(root / "rgba.png")
    tall = Image.new("RGB", (20, 60), "red")
    tall.paste((0, 0, 255), (0, 0, 20, 10))  # blue band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer rotates 90° clockwise
    tall.save(root / "exif_rotated.jpg", exif=exif)
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    Image.new("RGB", (1, 1), "white").save(root / "one_pixel.png")
    Image.new("RGB", (6000, 40), "green").save(root / "panorama.png")
    Image.new("RGB", (8, 8), "blue").save(root / "ünïcødé 名前.png")
    jpg = (root / "plain.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    (root / "zero.png").write_bytes(b"")
    (root / "text.png").write_text("this is not a png")
    (root / "random.jpg").write_bytes(rng.integers(0, 255, 4096, np.uint8).tobytes())
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, format="PNG")  # tiny file, 144 Mpixel
    (root / "bomb.png").write_bytes(bomb.getvalue())
    (root / "dangling.png").symlink_to(root / "missing.png")
    os.symlink("loop.png", root / "loop.png")
    return root


def test_exif_orientation_is_applied(corpus):
    im = load_image(corpus / "exif_rotated.jpg")
    assert im.size == (60, 20)  # rotated to landscape
    right = np.asarray(im)[:, -5:].mean(axis=(0, 1))
    assert right[2] > 150 and right[0] < 100  # the blue band ends up on the right, as a viewer shows it


@pytest.mark.parametrize("model", ["pixels", "efficientnet-lite0"])
def test_corpus_valid_embedded_broken_reported(corpus, tmp_path, model):
    result = embed_dataset(load_image_folder(corpus), get_embedder(model, device="cpu"), cache_dir=tmp_path / "c",
                           batch_size=4, num_workers=0 if model == "pixels" else 1)
    assert set(result.items["id"]) == VALID
    assert np.isfinite(result.embeddings).all()
    reasons = dict(zip(result.skipped["id"], result.skipped["reason"]))
    assert set(reasons) == set(BROKEN)
    for name, words in BROKEN.items():
        assert words in reasons[name], (name, reasons[name])


def test_cli_report_names_every_broken_file(corpus, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "explorer.cli", "embed", str(corpus), "--model", "pixels",
                           "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in BROKEN:
        assert name in proc.stderr
    assert set(pd.read_csv(tmp_path / "out" / "skipped.csv")["id"]) == set(BROKEN)


def test_duplicate_paths_in_a_manifest_share_one_embedding(corpus, tmp_path):
    pd.DataFrame({"path": ["plain.jpg", "plain.jpg", "zero.png"]}).to_csv(corpus / "m.csv", index=False)
    result = embed_dataset(load_manifest(corpus / "m.csv"), get_embedder("pixels"), cache_dir=tmp_path / "c")
    assert result.items["id"].tolist() == ["plain.jpg", "plain.jpg#2"] and result.n_computed == 1
    np.testing.assert_array_equal(result.embeddings[0], result.embeddings[1])


def test_bad_embedding_files_are_explained(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        load_dataset(tmp_path / "x.npy")
    pd.DataFrame({"embedding": [np.ones(3), np.ones(4)]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(ValueError, match="different lengths"):
        load_dataset(tmp_path / "ragged.parquet")


@pytest.mark.slow
def test_sigkill_midway_loses_at_most_one_chunk(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(240):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(src / f"{i:03d}.png")
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "explorer.cli", "embed", str(src), "--model", "efficientnet-lite0",
           "--device", "cpu", "--batch-size", "8", "--chunk-size", "16", "--workers", "0",
           "--cache-dir", str(cache), "--out", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = cache / "embeddings" / "efficientnet-lite0-57934424-v1-224"
    deadline = time.time() + 240
    while len(list(chunks.glob("*.npz"))) < 3 and time.time() < deadline:
        assert proc.poll() is None, "the job finished before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = sum(len(np.load(p)["digests"]) for p in chunks.glob("*.npz"))
    assert saved >= 48 and saved < 240
    assert not list(chunks.glob("*.corrupt"))
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = pd.read_json(tmp_path / "out" / "summary.json", typ="series")
    assert summary["from_cache"] == saved and summary["computed"] == 240 - saved
    assert summary["embedded"] == 240


def children(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for t in os.listdir(f"/proc/{p}/task")
                    for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            continue
        out.update(kids)
        todo.extend(kids)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] not in "ZX"
    except OSError:
        return False


def sigint_as_from_a_terminal() -> None:
    """In the child before exec: Ctrl-C's default action. A suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python keeps an inherited SIG_IGN, so the
    embed would never see the Ctrl-C these tests send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_no_decode_worker_outlives_a_killed_embed(tmp_path, sig):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(600):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(root / f"{i}.jpg")
    env = {**os.environ, "VENDISCOPE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "explorer.cli", "embed", str(root), "--model", "efficientnet-lite0",
                             "--workers", "2", "--batch-size", "16", "--out", str(tmp_path / "out"), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=sigint_as_from_a_terminal)
    deadline, workers = time.time() + 120, set()
    while time.time() < deadline and len(workers) < 2:
        workers = children(proc.pid)
        time.sleep(0.2)
    assert len(workers) >= 2, "the decode workers never started"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if alive(w)], "decode workers outlived the embed"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_embed_keeps_the_finished_part_and_a_rerun_resumes(tmp_path, sig):
    """Fewer items than one chunk (2,048): before, an interrupted embed kept none of them."""
    import re
    import threading

    src = tmp_path / "imgs"
    src.mkdir()
    rng = np.random.default_rng(2)
    for i in range(300):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(src / f"{i:03d}.png")
    cmd = [sys.executable, "-m", "explorer.cli", "embed", str(src), "--model", "efficientnet-lite0", "--device",
           "cpu", "--batch-size", "8", "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
           "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the progress bar as it moves
                            preexec_fn=sigint_as_from_a_terminal)
    seen = bytearray()
    def read() -> None:
        while chunk := proc.stderr.read1(4096):
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.time() + 240
    def embedded() -> int:
        counts = re.findall(rb"embedding with [^:]+:[^\r]*?(\d+)/300 \[", bytes(seen))
        return int(counts[-1]) if counts else 0

    while time.time() < deadline and embedded() < 40:
        assert proc.poll() is None, seen.decode(errors="replace")
        time.sleep(0.1)
    os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C reaches the whole process group
    assert proc.wait(timeout=120) == 130, bytes(seen).decode(errors="replace")[-800:]
    reader.join(timeout=10)
    said = re.search(r"interrupted: saved (\d+) of 300 items; rerun to resume", seen.decode(errors="replace"))
    assert said, seen.decode(errors="replace")[-500:]
    saved = int(said.group(1))
    assert 40 <= saved < 300
    resumed = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = pd.read_json(tmp_path / "out" / "summary.json", typ="series")
    assert summary["from_cache"] == saved and summary["computed"] == 300 - saved


def test_embed_fails_when_no_item_could_be_embedded(tmp_path, capsys):
    from explorer.cli import main

    (tmp_path / "imgs").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "imgs" / name).write_bytes(b"not an image")
    assert main(["embed", str(tmp_path / "imgs"), "--model", "pixels", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no item of imgs could be embedded" in err and "a.png" in err
