"""Where a comparison's independent pieces of work run: one after the other in this process
(:data:`LOCAL`, the default), or as parallel tasks of a cluster (an object with the same ``map``,
such as :class:`explorer.distributed.compare.RayBackend`). The pieces are the functions below,
module-level so that a worker can import them; each takes the big inputs as ``shared`` arguments,
which a cluster ships once, not once a task."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from explorer.data.arrays import take_rows
from explorer.metrics.covariance import cosine_spectrum
from explorer.metrics.prdc import PRDC, prdc
from explorer.neighbors.graph import SetNeighbors, set_neighbors


class Backend(Protocol):
    def map(self, fn: Callable[..., Any], calls: Sequence[dict], *, shared: dict) -> list:
        """``[fn(**shared, **call) for call in calls]``, in order, wherever it runs."""
        ...


class LocalBackend:
    """Every call here, in order.

    >>> LOCAL.map(pow, [{"exp": 2}, {"exp": 3}], shared={"base": 2})
    [4, 8]
    """

    def map(self, fn: Callable[..., Any], calls: Sequence[dict], *, shared: dict) -> list:
        return [fn(**shared, **call) for call in calls]


LOCAL = LocalBackend()


def rows_graph(x: np.ndarray, rows: np.ndarray, *, k: int, method: str) -> SetNeighbors:
    """The k-NN graph of rows ``rows`` of ``x`` (unit rows), as :class:`~explorer.neighbors.graph.SetGraphs`
    makes it."""
    return set_neighbors(np.ascontiguousarray(take_rows(x, rows), dtype=np.float32), k=k, method=method)


def rows_spectrum(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Eigenvalues of the cosine kernel of rows ``rows`` of ``x``."""
    return cosine_spectrum(take_rows(x, rows)).eigenvalues


def rows_prdc(x: np.ndarray, reference: np.ndarray, rows: np.ndarray, *, k: int, method: str,
              real_neighbors: SetNeighbors, fake_neighbors: SetNeighbors) -> PRDC:
    """PRDC of rows ``rows`` of ``x`` against the ``reference`` rows, searched in the reference's
    own index (``real_neighbors``, built once)."""
    return prdc(take_rows(x, reference), take_rows(x, rows), k=k, method=method, real_neighbors=real_neighbors,
                fake_neighbors=fake_neighbors)
