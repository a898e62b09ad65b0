"""The distributed path on a local Ray (2 CPUs, loopback only): scores, contributions and
embeddings agree with the single-process path; a killed worker loses and duplicates nothing; bad
input is reported as the local path reports it."""
import os
import sys

# before ray is imported: a one-machine Ray whose every address is 127.0.0.1, and no usage report
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

import pytest  # noqa: E402

from explorer.data.errors import InputError  # noqa: E402
from explorer.distributed.session import import_ray, ray_session, resolve_address  # noqa: E402

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=300 << 20)
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")  # nothing beyond loopback
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_address_follows_rays_conventions(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) is None and resolve_address("") is None
    assert resolve_address("auto") == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "ray://127.0.0.1:10001")
    assert resolve_address("") == "ray://127.0.0.1:10001"  # --ray alone: the cluster in RAY_ADDRESS
    assert resolve_address("127.0.0.1:6379") == "127.0.0.1:6379"  # a given address wins


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(InputError, match=r"pip install 'vendiscope\[ray\]'"):
        import_ray()


def test_an_open_session_is_used_and_left_open(cluster):
    with ray_session() as session:
        assert session is cluster
    assert cluster.is_initialized()
