"""The distributed path on a local Ray (2 CPUs, loopback only): scores, contributions and
embeddings agree with the single-process path; a killed worker loses and duplicates nothing; bad
input is reported as the local path reports it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# before ray is imported: a one-machine Ray whose every address is 127.0.0.1, and no usage report
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

from explorer.cli.parser import main  # noqa: E402
from explorer.data.datasets import load_dataset  # noqa: E402
from explorer.data.errors import InputError  # noqa: E402
from explorer.distributed.score import RayVendi  # noqa: E402
from explorer.distributed.session import import_ray, ray_session, resolve_address  # noqa: E402
from explorer.distributed.sources import open_source  # noqa: E402
from explorer.embed.models.base import TorchImageEmbedder  # noqa: E402
from explorer.embed.models.pixels import PixelEmbedder  # noqa: E402
from explorer.metrics.kernel_rows import centred_rows  # noqa: E402
from explorer.metrics.vendi import VendiAnalysis  # noqa: E402

ray = pytest.importorskip("ray")
ORDERS = (0.1, 0.5, 1.0, 2.0, np.inf)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=300 << 20)
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")  # nothing beyond loopback
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def clustered(rng, n=3000, d=48, k=12):
    centres = rng.normal(size=(k, d))
    return (centres[rng.integers(0, k, n)] + 0.4 * rng.normal(size=(n, d))).astype(np.float32)


def assert_scores_close(a: dict, b: dict, rtol=1e-9):
    assert a.keys() == b.keys()
    for q in a:
        assert abs(a[q] - b[q]) <= rtol * abs(b[q]), (q, a[q], b[q])


def write_shards(folder: Path, x: np.ndarray, ids: list[str], parts: int) -> None:
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(x)), parts)):
        emb = pa.FixedSizeListArray.from_arrays(pa.array(x[rows].ravel()), x.shape[1])
        pq.write_table(pa.table({"id": [ids[r] for r in rows], "embedding": emb}), folder / f"part-{i:05d}.parquet")


def test_address_follows_rays_conventions(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) is None and resolve_address("") is None
    assert resolve_address("auto") == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "ray://127.0.0.1:10001")
    assert resolve_address("") == "ray://127.0.0.1:10001"  # --ray alone: the cluster in RAY_ADDRESS
    assert resolve_address("127.0.0.1:6379") == "127.0.0.1:6379"  # a given address wins


def test_missing_extra_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(InputError, match=r"pip install 'vendiscope\[ray\]'"):
        import_ray()
    np.save(tmp_path / "x.npy", np.eye(3, dtype=np.float32))
    assert main(["score", str(tmp_path / "x.npy"), "--ray"]) == 2
    assert "vendiscope[ray]" in capsys.readouterr().err


def test_cosine_scores_agree_with_one_process(cluster, tmp_path, rng):
    x = clustered(rng)
    np.save(tmp_path / "x.npy", x)
    local = VendiAnalysis(q=ORDERS, contributions=False).fit(x)
    # 7 blocks: a tree of two levels of merges
    dist = RayVendi(q=ORDERS, block_rows=450).fit(open_source(str(tmp_path / "x.npy")), ray=cluster)
    assert dist.n_blocks_ == 7 and dist.spectrum_.n == len(x)
    assert_scores_close(dist.scores_, local.scores_)
    np.testing.assert_allclose(dist.spectrum_.eigenvalues, local.spectrum_.eigenvalues, rtol=1e-9, atol=1e-15)


@pytest.mark.slow
def test_rbf_runs_through_the_same_random_features(cluster, tmp_path, rng):
    x = clustered(rng, n=1500)
    np.save(tmp_path / "x.npy", x)
    local = VendiAnalysis(q=ORDERS, kernel="rbf", method="rff", n_features=256, contributions=False,
                          seed=3).fit(x)
    dist = RayVendi(q=ORDERS, kernel="rbf", n_features=256, seed=3, block_rows=400).fit(
        open_source(str(tmp_path / "x.npy")), ray=cluster)
    assert dist.spectrum_.method == "rff" and dist.spectrum_.sigma == local.sigma_
    assert_scores_close(dist.scores_, local.scores_)
    assert dist.spectrum_.approx_error == local.spectrum_.approx_error
    with pytest.raises(InputError, match="random Fourier"):
        RayVendi(kernel="rbf", method="nystrom").fit(open_source(str(tmp_path / "x.npy")), ray=cluster)


def test_cli_score_and_contributions_match_the_local_cli(cluster, tmp_path, rng, capsys):
    x = clustered(rng, n=1200)
    np.save(tmp_path / "embeddings.npy", x)
    pd.DataFrame({"id": [f"item-{i}" for i in range(len(x))]}).to_parquet(tmp_path / "items.parquet")
    assert main(["score", str(tmp_path / "embeddings.npy"), "--json", "--contributions",
                 str(tmp_path / "local.parquet")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["score", str(tmp_path / "embeddings.npy"), "--json", "--contributions",
                 str(tmp_path / "shards"), "--ray"]) == 0
    dist = json.loads(capsys.readouterr().out)
    assert dist.pop("ray")["blocks"] >= 1 and dist.pop("contribution_shards") >= 1
    assert {k: v for k, v in dist.items() if k not in ("scores", "contributions", "effective_rank")} == \
        {k: v for k, v in local.items() if k not in ("scores", "contributions", "effective_rank")}
    assert_scores_close(dist["scores"], local["scores"])
    a = pd.read_parquet(tmp_path / "local.parquet").set_index("id")
    b = pd.read_parquet(tmp_path / "shards").set_index("id")
    assert len(b) == len(a) and b.index.is_unique and set(b.index) == set(a.index)
    for column in ("entropy", "loo_delta", "crowdedness"):
        np.testing.assert_allclose(b.loc[a.index, column], a[column], rtol=1e-9, atol=1e-12)


def test_centred_cosine_on_ray_equals_the_local_cli_with_its_contributions(cluster, tmp_path, rng, capsys):
    x = clustered(rng, n=1200).astype(np.float64) + 3.0  # a shared offset: the direction centring takes out
    x[7] = (x.sum(0) - x[7]) / (len(x) - 1)  # now the mean itself: a row at the centre has an axis of its own
    assert centred_rows(x, x.mean(0)).shape[1] == x.shape[1] + 1  # (float64: float32 would miss it by 8e-6)
    np.save(tmp_path / "embeddings.npy", x)
    pd.DataFrame({"id": [f"item-{i}" for i in range(len(x))]}).to_parquet(tmp_path / "items.parquet")
    args = ["score", str(tmp_path / "embeddings.npy"), "--json", "--kernel", "centred", "--contributions"]
    assert main([*args, str(tmp_path / "local.parquet")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*args, str(tmp_path / "shards"), "--ray"]) == 0
    dist = json.loads(capsys.readouterr().out)
    dist.pop("ray"), dist.pop("contribution_shards")
    assert dist["kernel"] == "centred" and dist["centre"] == "pooled mean of 1,200 items"
    assert dist["kernel_describe"] == local["kernel_describe"] == "centred cosine (centre: pooled mean of 1,200 items)"
    assert {k: v for k, v in dist.items() if k not in ("scores", "contributions", "effective_rank")} == \
        {k: v for k, v in local.items() if k not in ("scores", "contributions", "effective_rank")}
    # the means are summed in other blocks and orders: float32 rows may round apart in the last bit
    assert_scores_close(dist["scores"], local["scores"], rtol=1e-6)
    assert dist["scores"]["1"] > 1.5 * json.loads(_cosine_scores(tmp_path, capsys))["scores"]["1"]
    a = pd.read_parquet(tmp_path / "local.parquet").set_index("id")
    b = pd.read_parquet(tmp_path / "shards").set_index("id").loc[a.index]
    for column in ("entropy", "loo_delta", "crowdedness"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-5, atol=1e-9)
    # five blocks, the row at the centre in one of them: its axis is kept, as in the local rows
    blocks = RayVendi(q=ORDERS, kernel="centred", block_rows=250).fit(open_source(str(tmp_path / "embeddings.npy")),
                                                                      ray=cluster, vectors=True)
    alone = VendiAnalysis(q=ORDERS, kernel="centred", contributions=False).fit(x)
    assert blocks.n_blocks_ == 5 and blocks.extra_axis_ and blocks.spectrum_.eigenvectors.shape[0] == x.shape[1] + 1
    assert_scores_close(blocks.scores_, alone.scores_, rtol=1e-6)
    # Ray Data shards take the same two passes; with no row at the centre, its axis is dropped again
    y = clustered(rng, n=900) + 3.0
    ids = [f"r{i}" for i in range(len(y))]
    write_shards(tmp_path / "parts", y, ids, parts=3)
    source = open_source(str(tmp_path / "parts"), ray=cluster)
    shards = RayVendi(q=ORDERS, kernel="centred", block_rows=250).fit(source, ray=cluster, vectors=True)
    one = VendiAnalysis(q=ORDERS, kernel="centred").fit(y)
    assert not shards.extra_axis_ and shards.spectrum_.eigenvectors.shape[0] == y.shape[1]
    assert shards.spectrum_.n_dropped == one.spectrum_.n_dropped
    assert_scores_close(shards.scores_, one.scores_, rtol=1e-6)
    shards.write_contributions(source, tmp_path / "contrib", ray=cluster)
    got = pd.read_parquet(tmp_path / "contrib").set_index("id").loc[ids]
    np.testing.assert_allclose(got["entropy"], one.contributions_["entropy"], rtol=1e-5)


def _cosine_scores(folder: Path, capsys) -> str:
    assert main(["score", str(folder / "embeddings.npy"), "--json"]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_parquet_shards_read_by_ray_data(cluster, tmp_path, rng):
    x = clustered(rng, n=900)
    ids = [f"r{i}" for i in range(len(x))]
    write_shards(tmp_path / "shards", x, ids, parts=3)
    source = open_source(str(tmp_path / "shards"), ray=cluster)
    assert (source.kind, source.n, source.dim, source.id_column) == ("data", 900, 48, "id")
    dist = RayVendi(q=ORDERS, block_rows=200).fit(source, ray=cluster, vectors=True)
    local = VendiAnalysis(q=ORDERS).fit(x)
    assert_scores_close(dist.scores_, local.scores_)
    dist.write_contributions(source, tmp_path / "contrib", ray=cluster)
    got = pd.read_parquet(tmp_path / "contrib").set_index("id").loc[ids]
    assert len(got) == len(x)
    np.testing.assert_allclose(got["entropy"], local.contributions_["entropy"], rtol=1e-9)
    np.testing.assert_allclose(got["loo_delta"], local.contributions_["loo_delta"], rtol=1e-9, atol=1e-12)


def test_an_open_session_is_used_and_left_open(cluster):
    with ray_session() as session:
        assert session is cluster
    assert cluster.is_initialized()


def image_folder(root: Path, n: int, rng) -> Path:
    """``n`` small PNGs in two label folders, plus a corrupt file and an empty one."""
    from PIL import Image

    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((24, 20)).save(folder / f"img{i:03d}.png")
    (root / "a" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    (root / "b" / "empty.jpg").write_bytes(b"")
    return root


def shards_of(folder: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((folder / "embeddings").glob("part-*.parquet"))],
                     ignore_index=True)


@pytest.mark.slow
def test_embed_then_score_on_ray_equals_the_local_path(cluster, tmp_path, rng, capsys):
    data = image_folder(tmp_path / "images", 30, rng)
    local, dist = tmp_path / "local", tmp_path / "dist"
    assert main(["embed", str(data), "--model", "pixels", "--out", str(local), "--quiet",
                 "--cache-dir", str(tmp_path / "cache-local")]) == 0
    assert main(["embed", str(data), "--model", "pixels", "--out", str(dist), "--quiet", "--batch-size", "8",
                 "--cache-dir", str(tmp_path / "cache-ray"), "--ray"]) == 0
    capsys.readouterr()
    # the same items, in the same order, and the same skipped items with the same reasons
    pd.testing.assert_frame_equal(pd.read_parquet(dist / "items.parquet"), pd.read_parquet(local / "items.parquet"))
    assert (dist / "skipped.csv").read_bytes() == (local / "skipped.csv").read_bytes()
    skipped = pd.read_csv(local / "skipped.csv")
    assert sorted(skipped["id"]) == ["a/corrupt.png", "b/empty.jpg"]
    # the same vectors, row for row
    shards = shards_of(dist)
    assert shards["id"].tolist() == pd.read_parquet(local / "items.parquet")["id"].tolist()
    a, b = np.load(local / "embeddings.npy"), np.stack(shards["embedding"].to_numpy())
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= 0.9999
    summary = json.loads((dist / "summary.json").read_text())
    assert summary["computed"] == 30 and summary["skipped"] == 2 and summary["ray"]["cpus"] == 2
    assert "embeddings/part-00000.parquet" in summary["files"] and "embeddings.npy" not in summary["files"]
    # score from the shards, on the cluster, as the local path scores its .npy
    assert main(["score", str(local / "embeddings.npy"), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["scores"]
    assert main(["score", str(dist / "embeddings"), "--json", "--ray"]) == 0
    assert_scores_close(json.loads(capsys.readouterr().out)["scores"], expected)
    # ... and without Ray: the local score, and the loader that compare and the app share
    assert main(["score", str(dist / "embeddings"), "--json", "--contributions", str(tmp_path / "c.parquet")]) == 0
    assert_scores_close(json.loads(capsys.readouterr().out)["scores"], expected)
    assert pd.read_parquet(tmp_path / "c.parquet")["id"].tolist() == shards["id"].tolist()  # items.parquet's ids
    from_shards, from_npy = load_dataset(dist / "embeddings"), load_dataset(local / "embeddings.npy")
    assert from_shards.items["id"].tolist() == from_npy.items["id"].tolist()
    np.testing.assert_allclose(from_shards.vectors, from_npy.vectors, rtol=1e-6, atol=1e-7)
    # a rerun embeds nothing again: everything comes from the cache
    assert main(["embed", str(data), "--model", "pixels", "--out", str(dist), "--quiet",
                 "--cache-dir", str(tmp_path / "cache-ray"), "--ray"]) == 0
    again = json.loads((dist / "summary.json").read_text())
    assert (again["from_cache"], again["computed"], again["embedded"]) == (30, 0, 30)
    # a shard another run left behind would add rows: the folder is refused, as a mixed .npy pair is
    (dist / "embeddings" / "part-00001.parquet").write_bytes((dist / "embeddings" / "part-00000.parquet").read_bytes())
    with pytest.raises(ValueError, match="part-00001.parquet is missing, extra or changed"):
        load_dataset(dist / "embeddings")


def actor_processes() -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if title.startswith("ray::") and "MapWorker" in title and "EmbedBatches" in title:
            found.append(proc)
    return found


class SlowPixels(PixelEmbedder):
    """Pixels, a batch every 0.1 s: the job is still running when its worker is killed."""

    def encode(self, batch):
        time.sleep(0.1)
        return super().encode(batch)


def test_a_killed_actor_loses_and_duplicates_nothing(cluster, tmp_path, rng):
    import ray.cloudpickle

    from explorer.distributed.embed import embed_with_ray
    from explorer.embed.pipeline import embed_dataset

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's embedder, for the workers
    dataset = load_dataset(str(image_folder(tmp_path / "images", 120, rng)))
    killed: list[int] = []

    def kill_one_actor(done: int, total: int, message: str) -> None:
        if done and not killed and done < total:
            procs = actor_processes()
            assert procs, "no model actor found"
            killed.append(procs[0].pid)
            os.kill(procs[0].pid, signal.SIGKILL)

    result = embed_with_ray(dataset, SlowPixels(), ray=cluster, cache_dir=tmp_path / "cache", batch_size=4,
                            chunk_size=16, progress=kill_one_actor)
    assert killed and killed[0] in result.workers and len(result.workers) >= 2  # killed mid-job, then replaced
    local = embed_dataset(dataset, PixelEmbedder(), cache_dir=tmp_path / "cache-local")
    assert result.items["id"].tolist() == local.items["id"].tolist()  # nothing lost, nothing twice
    assert result.items["id"].is_unique and len(result.items) == 120 and result.n_computed == 120
    np.testing.assert_array_equal(result.embeddings, local.embeddings)
    pd.testing.assert_frame_equal(result.skipped, local.skipped)


def test_compare_on_ray_equals_the_local_comparison(cluster, rng):
    """Graphs, equal-n subsets, spectra and PRDC as Ray tasks: the very numbers of the local path."""
    from explorer.compare.comparison import Comparison
    from explorer.distributed.compare import RayBackend

    centres = rng.normal(size=(6, 24))
    labels = rng.integers(0, 6, 900)
    x = (centres[labels] + 0.5 * rng.normal(size=(900, 24))).astype(np.float32)
    sets = np.array(["real"] * 400 + ["model"] * 300 + ["collapsed"] * 200)
    collapsed = np.flatnonzero(sets == "collapsed")  # a model that only makes classes 0 and 1
    labels[collapsed] %= 2
    x[collapsed] = (centres[labels[collapsed]] + 0.5 * rng.normal(size=(200, 24))).astype(np.float32)
    items = pd.DataFrame({"id": [f"i{j}" for j in range(900)], "set": sets, "label": labels.astype(str)})
    local = Comparison(reference="real", n_boot=4).fit(x, items).summary()
    dist = Comparison(reference="real", n_boot=4).fit(x, items, backend=RayBackend(cluster)).summary()
    assert json.dumps(dist, sort_keys=True) == json.dumps(local, sort_keys=True)
    assert local["sets"]["collapsed"]["collapsed"]  # a comparison that finds something


@pytest.mark.slow
def test_cli_compare_ray_matches_the_local_cli(cluster, tmp_path, rng, capsys):
    real, model = rng.normal(size=(150, 8)), rng.normal(size=(120, 8))
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "model.npy", model)
    args = ["compare", "--reference", str(tmp_path / "real.npy"), str(tmp_path / "model.npy"), "--json",
            "--n-boot", "3", "--quiet"]
    assert main([*args, "--cache-dir", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*args, "--cache-dir", str(tmp_path / "dist"), "--ray"]) == 0
    assert json.loads(capsys.readouterr().out) == local


@pytest.mark.slow
def test_cli_starts_a_local_ray_and_stops_it(tmp_path, rng):
    """``--ray`` alone without RAY_ADDRESS: a Ray of its own, on loopback, gone when the run ends
    (the session's leftover-process check would catch a raylet left behind)."""
    x = clustered(rng, n=500)
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    done = subprocess.run([sys.executable, "-m", "explorer.cli", "score", str(tmp_path / "x.npy"), "--json",
                           "--ray"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_scores_close(json.loads(done.stdout)["scores"],
                        json.loads(json.dumps(VendiAnalysis(q=ORDERS, contributions=False).fit(x)
                                              .result().to_dict()))["scores"])


class BuildsForItsTransform(TorchImageEmbedder):
    """Like open_clip: the preprocessing comes with the model, so a decode task that lacked it would
    build the model. Every build appends its process id to ``log``."""

    name = "builds-for-its-transform"

    def __init__(self, log: Path) -> None:
        super().__init__(device="cpu")
        self.log = str(log)
        self.size: int | None = None

    def cache_key(self) -> str:
        return "builds-for-its-transform-v1"

    def _load(self):
        import torch

        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        self.size = 6
        return torch.nn.Flatten()

    def preprocess(self, item):
        import torch

        if self.size is None:
            self.model  # noqa: B018 - as ClipEmbedder does: the transform comes with the model
        pixels = np.asarray(item.convert("RGB").resize((self.size, self.size)), dtype=np.float32) / 255.0
        return torch.from_numpy(pixels.reshape(-1))


class CannotLoad(BuildsForItsTransform):
    def _load(self):
        raise FileNotFoundError("no weights here")


def test_the_model_loads_once_on_the_driver_and_decoding_runs_beside_the_actors(cluster, tmp_path, rng):
    import ray.cloudpickle

    from explorer.distributed.embed import embed_with_ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's embedders, for the workers
    dataset = load_dataset(str(image_folder(tmp_path / "images", 40, rng)))
    calls: list[tuple] = []
    with pytest.raises(InputError, match="cannot load the builds-for-its-transform model: FileNotFoundError: "
                                         "no weights here"):
        embed_with_ray(dataset, CannotLoad(tmp_path / "never.txt"), ray=cluster, cache_dir=tmp_path / "cache",
                       progress=lambda *args: calls.append(args))
    assert calls == []  # failed before any item was hashed or decoded
    log = tmp_path / "builds.txt"
    result = embed_with_ray(dataset, BuildsForItsTransform(log), ray=cluster, cache_dir=tmp_path / "cache",
                            batch_size=4, actors=1)
    assert len(result.items) == 40 and sorted(result.skipped["id"]) == ["a/corrupt.png", "b/empty.jpg"]
    # built once on the driver and once in each model actor: no decode task built a model
    assert sorted(int(pid) for pid in log.read_text().split()) == sorted([os.getpid(), *result.workers])
    # decoding ran in processes of its own, not fused into the model actors
    assert result.decoders and not set(result.decoders) & set(result.workers)
    assert result.summary()["ray"]["decode_processes"] == len(result.decoders)


def test_a_checkpoint_that_cannot_load_is_an_input_error_at_once(cluster, tmp_path, rng, tiny_clip, capsys):
    arch, _, _ = tiny_clip
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    data = image_folder(tmp_path / "images", 4, rng)
    assert main(["embed", str(data), "--model", f"clip:{arch}@{broken}", "--out", str(tmp_path / "out"), "--quiet",
                 "--cache-dir", str(tmp_path / "cache"), "--ray"]) == 2
    assert f"error: cannot load the clip:{arch}@{broken} model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


SLOW_EMBED = """
import sys, time
from explorer.cli.parser import main
from explorer.embed.models.pixels import PixelEmbedder
from explorer.embed.registry import register_embedder

class SlowPixels(PixelEmbedder):
    def encode(self, batch):
        time.sleep(0.2)
        return super().encode(batch)

register_embedder("slow-pixels", lambda spec, **kw: SlowPixels(), description="pixels, a batch every 0.2 s")
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_embed_on_ray_exits_130_and_keeps_the_finished_part(cluster, tmp_path, rng):
    """ray.init installs a SIGTERM handler that exits 1; the command keeps its own."""
    import threading

    data = image_folder(tmp_path / "images", 160, rng)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # a driver of the test's cluster: ray.init replaces the handler on connecting as on starting
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EMBED, "embed", str(data), "--model", "slow-pixels",
                             "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                             "--batch-size", "4", "--chunk-size", "4", "--ray",
                             cluster.get_runtime_context().gcs_address],
                            stderr=subprocess.PIPE, env=env)
    err = bytearray()
    embedding = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read1(4096):
            err.extend(chunk)
            if b"embedding with" in err:
                embedding.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert embedding.wait(240), err.decode(errors="replace")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 130, err.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    assert "interrupted: saved" in err.decode(errors="replace")
    assert not (tmp_path / "out").exists()
