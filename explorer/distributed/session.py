"""Opening a Ray session the way Ray's own tools do, so ``--ray`` behaves as users of Ray expect:

- ``--ray`` alone: the cluster in ``RAY_ADDRESS`` when it is set, else a local Ray started for
  this run (on the loopback interface, without the dashboard) and stopped after it;
- ``--ray auto``: the cluster already running on this machine (``ray start --head``);
- ``--ray ray://HOST:PORT``: a remote cluster through Ray Client; ``--ray HOST:PORT``: a GCS
  address, as ``ray.init`` takes it.

A session that is already open (``ray.init`` called by the user's own program, or a test) is
used as it is and left open.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from explorer.data.errors import InputError

RAY_EXTRA = "pip install 'vendiscope[ray]'"
# Ray picks a node address "reachable from other machines" unless told this is a one-machine
# setup; the variable is read once, when ray is first imported
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray() -> ModuleType:
    """The ``ray`` module, or an :class:`~explorer.data.errors.InputError` naming the extra:

    >>> RAY_EXTRA
    "pip install 'vendiscope[ray]'"
    """
    try:
        import ray
        import ray.data  # noqa: F401 - the extra is ray[data]; a bare ray lacks its dependencies
    except ImportError as err:
        raise InputError(f"--ray needs Ray with Ray Data, which is not installed ({err}); install the extra: "
                         f"{RAY_EXTRA}") from None
    return ray


def resolve_address(address: str | None) -> str | None:
    """The cluster ``--ray [ADDRESS]`` names: ADDRESS as given, else ``$RAY_ADDRESS``, else None
    (start a local Ray for the run).

    >>> resolve_address("auto"), resolve_address("ray://10.0.0.1:10001")
    ('auto', 'ray://10.0.0.1:10001')
    """
    address = (address or "").strip() or os.environ.get("RAY_ADDRESS", "").strip()
    return address or None


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Yield the ``ray`` module connected to the cluster ``address`` names (see the module's
    docstring); a local Ray started here is shut down on exit, a cluster is only disconnected
    from, an already open session is left as it is.

    >>> with ray_session(num_cpus=1) as ray:  # doctest: +SKIP
    ...     ray.cluster_resources()["CPU"]
    1.0
    """
    target = resolve_address(address)
    if target is None and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ENV, "0")  # a local Ray for one run listens on loopback only
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report sent home from a CLI run
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if target is None:
        # "local": a new instance, never one a `ray start` left running on this machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    else:
        try:
            ray.init(address=target, log_to_driver=False, configure_logging=False)
        except ConnectionError as err:
            raise InputError(f"cannot connect to the Ray cluster at {target}: {err}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
