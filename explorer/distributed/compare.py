"""``vendiscope compare --ray``: the comparison's independent pieces as Ray tasks. Every set's
k-NN graph is made at once in tasks of its own; each set's equal-n subsets and spectrum are scored
in tasks (the subsets drawn on the driver, in the local path's sequence, so the numbers are the
same); each sample set's precision, recall, density, coverage and memorisation are searched in
the reference's index, made once and put in the object store once, in parallel tasks. The rest
(regions, classes, novel modes, diagnostics) is cheap and runs on the driver."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from explorer.compare.backend import LOCAL, Backend


class RayBackend:
    """A comparison backend whose calls are Ray tasks; the ``shared`` arguments (the embeddings,
    the reference's index) are put in the object store once and read there by every task.

    >>> RayBackend(ray).map(pow, [{"exp": 2}, {"exp": 3}], shared={"base": 2})  # doctest: +SKIP
    [4, 8]
    """

    def __init__(self, ray) -> None:
        self.ray = ray

    def map(self, fn: Callable[..., Any], calls: Sequence[dict], *, shared: dict) -> list:
        if not calls:
            return []
        refs = {name: self.ray.put(value) for name, value in shared.items()}
        task = self.ray.remote(fn)
        return self.ray.get([task.remote(**refs, **call) for call in calls])


@contextlib.contextmanager
def backend_for(address: str | None, *, use_ray: bool) -> Iterator[Backend]:
    """The backend ``--ray [ADDRESS]`` asks for: Ray tasks in a session opened as
    :func:`explorer.distributed.session.ray_session` opens it, or :data:`LOCAL` without ``use_ray``.

    >>> with backend_for(None, use_ray=False) as b:
    ...     b is LOCAL
    True
    """
    if not use_ray:
        yield LOCAL
        return
    from explorer.distributed.session import ray_session

    with ray_session(address) as ray:
        yield RayBackend(ray)
