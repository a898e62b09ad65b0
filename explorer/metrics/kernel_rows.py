"""Kernels as row transforms: every kernel the app offers is the cosine kernel of some rows, so
one cosine machinery (dual d×d spectra, equal-n draws, contributions, selection) serves them all.

- ``cosine``: the plain Vendi score's kernel, k(x, y) = cos(x, y); the rows are the inputs.
- ``centred``: centred cosine, k(x, y) = cos(x − μ, y − μ) with a common centre μ (the
  reference's mean when sets are compared with a reference, the pooled mean otherwise). Pooled
  CNN and CLIP features share a large mean direction that holds most of the plain cosine
  spectrum (84% on the sample digits), so plain VS stays near 2–3 whatever the data; centring
  removes that shared direction and lets the differences between items speak.
- ``rbf``: exp(−‖x − y‖² / (2σ²)) with σ the median distance (of the reference when sets are
  compared, pooled otherwise), as ``RANDOM_FEATURES`` random Fourier frequencies: unit rows
  whose inner products approximate the kernel (entrywise error ~1/√r). Their rank is capped at
  2r, so orders below 1 are unreliable once a set has more items than that (see
  :func:`explorer.metrics.features.approximation_error`).

An item exactly at the centre has no direction: it gets a private extra axis, so such items are
identical to each other and orthogonal to every other item (a set of identical items still
scores 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from explorer.data.arrays import check_finite, normalize_rows, take_rows

ROW_KERNELS = ("centred", "cosine")  # exact row kernels; the app's default first
KERNELS = (*ROW_KERNELS, "rbf")  # every kernel this module makes rows for
RANDOM_FEATURES = 1024  # RBF frequencies (2,048 feature columns)
ALIASES = {"centered": "centred", "centred-cosine": "centred", "centered-cosine": "centred"}
BLOCK = 65_536  # rows handled in float64 at a time: no float64 copy of a million rows


def parse_kernel(name: str, *, choices: tuple[str, ...] = ROW_KERNELS) -> str:
    """The kernel's canonical name; American spelling accepted.

    >>> parse_kernel("centered"), parse_kernel("cosine")
    ('centred', 'cosine')
    """
    kernel = ALIASES.get(name.strip().lower(), name.strip().lower())
    if kernel not in choices:
        raise ValueError(f"unknown kernel {name!r}; choose from {', '.join(choices)}")
    return kernel


@dataclass(frozen=True)
class KernelInfo:
    """How rows were made: the kernel and, for centred cosine, where its centre came from."""

    kernel: str
    centre_origin: str | None = None  # e.g. "pooled mean of 4,000 items", "mean of the reference 'real'"
    sigma: float | None = None  # RBF bandwidth
    sigma_origin: str | None = None  # e.g. "median distance, pooled"
    n_features: int | None = None  # RBF random Fourier frequencies

    def describe(self) -> str:
        """One line for captions and reports.

        >>> KernelInfo("centred", "pooled mean of 10 items").describe()
        'centred cosine (centre: pooled mean of 10 items)'
        >>> KernelInfo("rbf", sigma=2.0, sigma_origin="median distance, pooled", n_features=8).describe()
        'RBF, σ = 2 (median distance, pooled), 8 random Fourier frequencies'
        """
        if self.kernel == "centred":
            return f"centred cosine (centre: {self.centre_origin})"
        if self.kernel == "rbf":
            return (f"RBF, σ = {self.sigma:.4g} ({self.sigma_origin}), {self.n_features:,} random Fourier "
                    "frequencies")
        return self.kernel  # cosine, or a precomputed matrix

    def to_dict(self) -> dict:
        """Plain JSON: the kernel, its centre or bandwidth, and the line :meth:`describe` gives.

        >>> KernelInfo("cosine").to_dict()
        {'name': 'cosine', 'describe': 'cosine'}
        """
        out: dict = {"name": self.kernel, "describe": self.describe()}
        if self.kernel == "centred":
            out["centre"] = self.centre_origin
        if self.kernel == "rbf":
            out |= {"sigma": self.sigma, "sigma_origin": self.sigma_origin, "method": "rff",
                    "n_features": self.n_features}
        return out


def mean_row(x: np.ndarray, *, rows: np.ndarray | None = None) -> np.ndarray:
    """The mean of ``x``'s rows (or of the rows where the boolean ``rows`` is set), in float64,
    summed block by block.

    >>> mean_row(np.array([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]), rows=np.array([True, True, False])).tolist()
    [2.0, 3.0]
    """
    index = np.arange(x.shape[0]) if rows is None else np.flatnonzero(rows)
    if index.size == 0:
        raise ValueError("the centre needs at least one item")
    total = np.zeros(x.shape[1])
    for start in range(0, index.size, BLOCK):
        total += np.asarray(x[index[start : start + BLOCK]]).sum(0, dtype=np.float64)
    return total / index.size


def centred_rows(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit rows of ``x − centre`` as float32; rows at the centre share one private extra axis.

    >>> rows = centred_rows(np.array([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), np.array([1.0, 1.0]))
    >>> rows.astype(float).round(3).tolist()
    [[0.707, -0.707, 0.0], [-0.707, -0.707, 0.0], [0.0, 0.0, 1.0]]
    """
    centre = np.asarray(centre, dtype=np.float64)
    if centre.shape != (x.shape[1],):
        raise ValueError(f"the centre has shape {centre.shape}, the rows {x.shape[1]} columns")
    out = np.empty((x.shape[0], x.shape[1]), dtype=np.float32)
    at_centre = np.zeros(x.shape[0], dtype=bool)
    for start in range(0, x.shape[0], BLOCK):
        block = np.asarray(x[start : start + BLOCK], dtype=np.float64) - centre
        check_finite(block, "embeddings")
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        # a row within round-off of the centre has no direction of its own
        zero = norms <= 1e-9 * max(1.0, float(np.abs(centre).max(initial=0.0)))
        at_centre[start : start + len(block)] = zero
        norms[zero] = 1.0
        block[zero] = 0.0
        out[start : start + len(block)] = block / norms[:, None]
    if at_centre.any():
        out = np.hstack([out, at_centre[:, None].astype(np.float32)])
    return out


def kernel_rows(
    x: np.ndarray, *, kernel: str = "centred", centre: np.ndarray | None = None, centre_origin: str | None = None,
    sigma: float | None = None, sigma_origin: str | None = None, n_features: int = RANDOM_FEATURES, seed: int = 0,
) -> tuple[np.ndarray, KernelInfo]:
    """Rows whose cosine kernel is ``kernel`` on ``x``, with how they were made.

    ``centre`` (centred cosine only) defaults to the pooled mean of ``x``; pass the reference's
    mean when sets are compared with a reference, and say so in ``centre_origin``. ``sigma``
    (RBF only) defaults to the median distance between items of ``x``.

    >>> x = np.array([[0.0, 1.0], [0.0, -1.0], [2.0, 0.0], [-2.0, 0.0]])
    >>> rows, info = kernel_rows(x)
    >>> info.describe(), rows[:2].round(3).tolist()
    ('centred cosine (centre: pooled mean of 4 items)', [[0.0, 1.0], [0.0, -1.0]])
    """
    kernel = parse_kernel(kernel, choices=KERNELS)
    if kernel == "cosine":
        return normalize_rows(x, dtype=np.float32), KernelInfo("cosine")
    if kernel == "rbf":
        return rbf_rows(x, sigma=sigma, sigma_origin=sigma_origin, n_features=n_features, seed=seed)
    if centre is None:
        centre, centre_origin = mean_row(x), f"pooled mean of {x.shape[0]:,} items"
    return centred_rows(x, centre), KernelInfo("centred", centre_origin or "given centre")


def rbf_rows(x: np.ndarray, *, sigma: float | None = None, sigma_origin: str | None = None,
             n_features: int = RANDOM_FEATURES, seed: int = 0) -> tuple[np.ndarray, KernelInfo]:
    """Random Fourier feature rows (float32, unit norm) of the RBF kernel with bandwidth ``sigma``
    (default: the median distance between items of ``x``).

    >>> rows, info = rbf_rows(np.array([[0.0], [1.0], [3.0]]), n_features=4)
    >>> rows.shape, info.sigma, bool(np.allclose((rows ** 2).sum(1), 1, atol=1e-6))
    ((3, 8), 2.0, True)
    """
    from explorer.metrics.kernels import RandomFourierFeatures, median_sigma

    if sigma is None:
        sigma, sigma_origin = median_sigma(x), f"median distance of {x.shape[0]:,} items, pooled"
    rff = RandomFourierFeatures(sigma=check_sigma(sigma), n_features=n_features, seed=seed).fit(x.shape[1])
    out = np.empty((x.shape[0], 2 * n_features), dtype=np.float32)
    for start in range(0, x.shape[0], BLOCK // 8):  # 2r float64 columns a row while mapped
        block = np.asarray(x[start : start + BLOCK // 8], dtype=np.float64)
        check_finite(block, "embeddings")
        out[start : start + len(block)] = rff.transform(block)
    return out, KernelInfo("rbf", sigma=float(sigma), sigma_origin=sigma_origin or "given", n_features=n_features)


def check_sigma(sigma: float) -> float:
    """An RBF bandwidth, refused unless a positive finite number (0 is not "use the median").

    >>> check_sigma(0.0)
    Traceback (most recent call last):
    ...
    explorer.data.errors.InputError: sigma must be a positive number (leave it out for the median distance), got 0.0
    """
    from explorer.data.errors import InputError

    value = float(sigma)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"sigma must be a positive number (leave it out for the median distance), got {sigma}")
    return value


def set_kernel_rows(
    x: np.ndarray, *, kernel: str, sets: np.ndarray | None = None, reference: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, KernelInfo]:
    """:func:`kernel_rows` of a pool of sets: the centred kernel's centre and the RBF bandwidth
    come from the ``reference`` set's rows when one is named (sets are then comparable with it),
    else from all rows (the pooled mean, the pooled median distance).

    >>> x = np.array([[1.0, 0.0], [3.0, 0.0], [9.0, 9.0]])
    >>> rows, info = set_kernel_rows(x, kernel="centred", sets=np.array(["r", "r", "s"]), reference="r")
    >>> info.describe(), rows[0].round(3).tolist()
    ("centred cosine (centre: mean of the reference 'r', 2 items)", [-1.0, 0.0])
    """
    kernel = parse_kernel(kernel, choices=KERNELS)
    if reference is None or kernel == "cosine":
        return kernel_rows(x, kernel=kernel, seed=seed)
    if sets is None:
        raise ValueError("a reference needs the set of every row")
    made = set_kernel_map(x, kernel=kernel, sets=sets, reference=reference, seed=seed)
    return kernel_rows(x, kernel=kernel, centre=made.centre, centre_origin=made.info.centre_origin,
                       sigma=made.info.sigma, sigma_origin=made.info.sigma_origin, seed=seed)


@dataclass(frozen=True)
class KernelRowMap:
    """The kernel's rows of ``x``, made a block at a time when asked (``rows[idx]``) instead of
    held: a comparison of a million items needs them only for its equal-n subsets and spectra,
    and a held copy would cost as much memory as the embeddings. Centred rows always carry the
    "at the centre" axis (see the module docstring); ``basis`` (from
    :func:`explorer.metrics.kernels.span_basis`) rewrites them in fewer dimensions.

    >>> x = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0]])
    >>> rows = KernelRowMap(x, KernelInfo("centred", "given"), centre=np.array([2.0, 0.0]))
    >>> rows.shape, rows[np.array([0, 2])].round(3).tolist()
    ((3, 3), [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    """

    x: np.ndarray
    info: KernelInfo
    centre: np.ndarray | None = None
    rff: Any = None  # fitted RandomFourierFeatures for rbf
    basis: np.ndarray | None = None

    @property
    def width(self) -> int:
        """Columns before ``basis``."""
        return 2 * self.rff.n_features if self.rff is not None else self.x.shape[1] + 1

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.x), self.width if self.basis is None else self.basis.shape[1]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows) -> np.ndarray:
        """The kernel's rows of ``x[rows]`` (an index array, a mask or a slice) as float32, made
        ``BLOCK // 8`` rows at a time: the float64 work of a 200k-row subset's random features
        would otherwise take GBs at once."""
        index = np.arange(len(self.x))[rows]
        out = np.empty((len(index), self.shape[1]), dtype=np.float32)
        step = BLOCK // 8
        for start in range(0, len(index), step):
            part = index[start : start + step]
            block = np.asarray(take_rows(self.x, part), dtype=np.float64)
            check_finite(block, "embeddings")
            if self.rff is not None:
                made = self.rff.transform(block)
            else:
                assert self.centre is not None, "a centred map has a centre"
                made = centred_rows(block, self.centre)
                if made.shape[1] == block.shape[1]:  # no row at the centre: the shared axis is zero
                    made = np.hstack([made, np.zeros((len(made), 1), dtype=made.dtype)])
            out[start : start + len(part)] = made if self.basis is None else made @ self.basis
        return out

    def reduced(self) -> KernelRowMap:
        """The same rows in the directions they use (:func:`explorer.metrics.kernels.span_basis`)."""
        from explorer.metrics.kernels import span_basis

        return KernelRowMap(self.x, self.info, self.centre, self.rff, span_basis(self))

    def fingerprint(self) -> list:
        """What the rows depend on besides ``x``, for cache keys (never the rows themselves)."""
        return [self.info.to_dict(), None if self.centre is None else np.asarray(self.centre).tolist(),
                None if self.rff is None else [self.rff.seed, self.rff.n_features, self.rff.sigma]]


def set_kernel_map(x: np.ndarray, *, kernel: str, sets: np.ndarray, reference: str,
                   seed: int = 0) -> KernelRowMap:
    """:func:`set_kernel_rows` for ``centred`` and ``rbf``, made when asked (:class:`KernelRowMap`).

    >>> x = np.array([[1.0, 0.0], [3.0, 0.0], [9.0, 9.0]])
    >>> rows = set_kernel_map(x, kernel="centred", sets=np.array(["r", "r", "s"]), reference="r")
    >>> rows.info.describe(), rows[np.array([0])].round(3).tolist()
    ("centred cosine (centre: mean of the reference 'r', 2 items)", [[-1.0, 0.0, 0.0]])
    """
    from explorer.metrics.kernels import RandomFourierFeatures, median_sigma

    kernel = parse_kernel(kernel, choices=KERNELS)
    in_ref = np.asarray(sets).astype(str) == str(reference)
    if kernel == "centred":
        info = KernelInfo("centred", f"mean of the reference {reference!r}, {int(in_ref.sum()):,} items")
        return KernelRowMap(x, info, centre=mean_row(x, rows=in_ref))
    if kernel == "rbf":
        sigma = check_sigma(median_sigma(np.asarray(x[np.flatnonzero(in_ref)]), seed=seed))
        rff = RandomFourierFeatures(sigma=sigma, n_features=RANDOM_FEATURES, seed=seed).fit(x.shape[1])
        info = KernelInfo("rbf", sigma=sigma, sigma_origin=f"median distance of the reference {reference!r}",
                          n_features=RANDOM_FEATURES)
        return KernelRowMap(x, info, rff=rff)
    raise ValueError(f"the {kernel} kernel's rows are the embeddings themselves")
