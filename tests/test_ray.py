"""The distributed path on a local Ray (2 CPUs, loopback only): scores, contributions and
embeddings agree with the single-process path; a killed worker loses and duplicates nothing; bad
input is reported as the local path reports it."""
import json
import os
import subprocess
import sys
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
from explorer.data.errors import InputError  # noqa: E402
from explorer.distributed.score import RayVendi  # noqa: E402
from explorer.distributed.session import import_ray, ray_session, resolve_address  # noqa: E402
from explorer.distributed.sources import open_source  # noqa: E402
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
