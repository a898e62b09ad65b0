"""Vendi scores on a Ray cluster: the covariance C = Σ φ_i φ_iᵀ / n is a sum over items, so each
task accumulates the feature rows of one block in float64 (a
:class:`~explorer.metrics.covariance.CovarianceAccumulator`, exactly as the single-process path
does batch by batch) and the partial sums are merged in a tree of merge tasks, ``FAN_IN`` at a
time, never all on the driver. Contributions are a second pass: C's eigenbasis is put in the object store once
and every task projects its own rows on it, writing one Parquet shard of per-item results.

The cosine kernel runs the dual path; the RBF kernel runs through random Fourier features fitted
once on the driver (same seed, bandwidth and frequencies on every worker), so the scores equal the
single-process ``--method rff`` ones. Centred cosine takes one more pass first: the pooled mean,
summed per block like the covariance; every task then centres its rows on it (one extra column,
for rows at the centre, as the single-process rows have when any row is there).
"""
from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.data.arrays import load_array
from explorer.data.errors import InputError
from explorer.distributed.sources import EmbeddingSource, as_matrix, read_rows, sample_rows
from explorer.metrics.contributions import item_contributions
from explorer.metrics.covariance import CovarianceAccumulator
from explorer.metrics.features import FeaturePlan, approximation_error, plan_features
from explorer.metrics.kernel_rows import KernelInfo, centred_rows
from explorer.metrics.kernels import median_sigma
from explorer.metrics.spectrum import DEFAULT_ORDERS, Spectrum
from explorer.metrics.vendi import VendiResult
from explorer.store.cache import atomic_write_bytes

FAN_IN = 4  # partial sums merged per task: a tree of depth log4(blocks)
BATCH = 16384  # rows mapped to features at a time inside a task (as the single-process path)
ERROR_SAMPLE = 2000  # rows for the RBF approximation error (as VendiAnalysis)


def task_rows(x: np.ndarray, centre: np.ndarray | None, *, extra_axis: bool = True) -> np.ndarray:
    """A block's rows as the kernel sees them: as they are, or centred unit rows (centred cosine).
    While accumulating, every block carries the extra axis of rows at the centre, so that all have
    the same width; the fit drops it again when no row was there (``extra_axis=False``), so the
    spectrum and its eigenvectors are the single-process ones.

    >>> task_rows(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([1.0, 1.0])).astype(float).round(3).tolist()
    [[0.707, -0.707, 0.0], [0.0, 0.0, 1.0]]
    """
    if centre is None:
        return x
    rows = centred_rows(x, centre)
    if rows.shape[1] > x.shape[1]:
        if not extra_axis:
            raise ValueError("a row at the centre in a pass that found none")
        return rows
    return np.hstack([rows, np.zeros((len(rows), 1), rows.dtype)]) if extra_axis else rows


def block_accumulator(x: np.ndarray, plan: FeaturePlan, batch_size: int = BATCH, *,
                      centre: np.ndarray | None = None) -> CovarianceAccumulator:
    """Σ φ_i φ_iᵀ over the rows of one block, in float64.

    >>> from explorer.metrics.features import FeaturePlan
    >>> block_accumulator(np.eye(3), FeaturePlan("cosine", "dual")).n_
    3
    """
    acc = CovarianceAccumulator(normalize=False, kernel=plan.kernel, method=plan.method)
    for _, phi in plan.batches(task_rows(x, centre), batch_size):
        acc.update_features(phi)
    return acc


def npy_block(path: str, start: int, stop: int, plan: FeaturePlan,
              centre: np.ndarray | None = None) -> CovarianceAccumulator:
    """Task: the accumulator of rows [start, stop) of a ``.npy``, read where the task runs."""
    return block_accumulator(read_rows(path, start, stop), plan, centre=centre)


def npy_sum(path: str, start: int, stop: int) -> tuple[np.ndarray, int]:
    """Task: the float64 sum and the count of rows [start, stop) of a ``.npy``."""
    x = read_rows(path, start, stop)
    return x.sum(0, dtype=np.float64), len(x)


def sum_rows(batch: dict, *, column: str) -> dict:
    """Ray Data batch function: one row holding the batch's float64 column sums and count."""
    x = as_matrix(batch[column])
    return {"n": np.array([len(x)]), "sum": np.array([x.sum(0, dtype=np.float64).tobytes()], dtype=object)}


def pooled_mean(source: EmbeddingSource, *, ray, rows: int) -> np.ndarray:
    """The mean of every row of ``source``: a pass of per-block sums (d floats each) added up on
    the driver.

    >>> pooled_mean(open_source("embeddings.npy"), ray=ray, rows=65536)  # doctest: +SKIP
    """
    if source.kind == "npy":
        task = ray.remote(npy_sum)
        parts = ray.get([task.remote(source.path, a, b) for a, b in source.ranges(rows)])
    else:
        table = source.dataset.select_columns([source.column]).map_batches(
            sum_rows, batch_size=rows, batch_format="numpy", fn_kwargs={"column": source.column}).take_all()
        parts = [(np.frombuffer(r["sum"], dtype=np.float64), int(r["n"])) for r in table if int(r["n"])]
    n = sum(count for _, count in parts)
    if not n:
        raise InputError("no rows to score")
    return np.sum([total for total, _ in parts], axis=0) / n


def partial_rows(batch: dict, *, column: str, plan: FeaturePlan, centre: np.ndarray | None = None) -> dict:
    """Ray Data batch function: one row holding the batch's float64 partial sum (a Ray Data column
    cannot hold an accumulator, so its Gram matrix travels as bytes)."""
    x = as_matrix(batch[column])
    if not len(x):
        return {"n": np.zeros(0, np.int64), "dim": np.zeros(0, np.int64), "gram": np.array([], dtype=object)}
    acc = block_accumulator(x, plan, centre=centre)
    assert acc.gram_ is not None  # a non-empty block
    return {"n": np.array([acc.n_]), "dim": np.array([acc.gram_.shape[0]]),
            "gram": np.array([acc.gram_.tobytes()], dtype=object)}


def merge_partials(*parts, kernel: str = "cosine", method: str = "dual") -> CovarianceAccumulator:
    """Task: one accumulator from several (accumulators, or Arrow tables of :func:`partial_rows`)."""
    out = CovarianceAccumulator(normalize=False, kernel=kernel, method=method)
    for part in parts:
        if isinstance(part, CovarianceAccumulator):
            out.merge(part)
            continue
        for row in part.to_pylist():
            acc = CovarianceAccumulator(normalize=False, kernel=kernel, method=method)
            acc.gram_ = np.frombuffer(row["gram"], dtype=np.float64).reshape(row["dim"], row["dim"]).copy()
            acc.n_, acc.total_weight_ = int(row["n"]), float(row["n"])
            out.merge(acc)
    return out


def tree_reduce(ray, refs: list, *, kernel: str, method: str, fan_in: int = FAN_IN) -> CovarianceAccumulator:
    """Merge the partial sums behind ``refs`` level by level, ``fan_in`` per task."""
    if not refs:
        raise InputError("no rows to score")
    merge = ray.remote(merge_partials)
    while len(refs) > 1:
        refs = [merge.remote(*refs[i : i + fan_in], kernel=kernel, method=method)
                for i in range(0, len(refs), fan_in)]
    acc = ray.get(refs[0])
    return acc if isinstance(acc, CovarianceAccumulator) else merge_partials(acc, kernel=kernel, method=method)


class RayVendi:
    """Vendi scores (and per-item contributions) of embeddings too large for one process, computed
    by Ray tasks; results as :class:`~explorer.metrics.vendi.VendiAnalysis` gives them.

    >>> a = RayVendi(q=[1.0])  # doctest: +SKIP
    >>> a.fit(open_source("embeddings.npy"), ray=ray).scores_  # doctest: +SKIP
    {1.0: 41.2...}
    """

    def __init__(self, *, q: Sequence[float] = DEFAULT_ORDERS, kernel: str = "cosine", method: str = "auto",
                 sigma: float | None = None, rtol: float | None = None, n_features: int = 1024,
                 seed: int = 0, block_rows: int | None = None) -> None:
        self.q = q
        self.kernel = kernel
        self.method = method
        self.sigma = sigma
        self.rtol = rtol
        self.n_features = n_features
        self.seed = seed
        self.block_rows = block_rows

    def _plan(self, source: EmbeddingSource) -> tuple[FeaturePlan, np.ndarray | None]:
        """The feature plan, and for RBF the rows its error is estimated on."""
        if self.kernel in ("cosine", "centred"):
            if self.method not in ("auto", "dual"):
                raise InputError(f"with --ray the {self.kernel} kernel runs the dual (d x d) path, "
                                 f"not --method {self.method}")
            return FeaturePlan("cosine", "dual"), None
        if self.kernel != "rbf":
            raise InputError("with --ray the kernel is cosine, centred or rbf (a precomputed matrix is scored on "
                             "one machine)")
        if self.method not in ("auto", "rff"):
            raise InputError(f"with --ray the RBF kernel runs through random Fourier features (--method rff), "
                             f"not --method {self.method}")
        if source.kind == "npy":  # the single-process path's own sample: same rows, same bandwidth
            sample = load_array(source.path, mmap=True)  # indexed by the sample's rows only
            sigma = self.sigma or median_sigma(sample, seed=self.seed)
        else:
            sample = sample_rows(source, size=ERROR_SAMPLE, seed=self.seed)
            sigma = self.sigma or median_sigma(sample, seed=self.seed)
        plan = plan_features(np.asarray(sample[:2]), kernel="rbf", method="rff", sigma=sigma, seed=self.seed,
                             n_features=self.n_features)
        return plan, sample

    def fit(self, source: EmbeddingSource, *, ray, vectors: bool = False) -> RayVendi:
        """One distributed pass: scores, spectrum (with eigenvectors when ``vectors``)."""
        t0 = time.perf_counter()
        plan, sample = self._plan(source)
        rows = self.block_rows or source.block_rows()
        centre, self.kernel_info_ = None, None
        if self.kernel == "centred":  # a pass of its own: every block is centred on the same mean
            centre = pooled_mean(source, ray=ray, rows=rows)
            self.kernel_info_ = KernelInfo("centred", f"pooled mean of {source.n:,} items")
        t1 = time.perf_counter()
        if source.kind == "npy":
            task = ray.remote(npy_block)
            plan_ref, centre_ref = ray.put(plan), ray.put(centre)
            refs = [task.remote(source.path, a, b, plan_ref, centre_ref) for a, b in source.ranges(rows)]
        else:
            partials = source.dataset.select_columns([source.column]).map_batches(
                partial_rows, batch_size=rows, batch_format="numpy",
                fn_kwargs={"column": source.column, "plan": plan, "centre": centre})
            refs = partials.to_arrow_refs()
        self.n_blocks_ = len(refs)
        acc = tree_reduce(ray, refs, kernel=plan.kernel, method=plan.method)
        self.extra_axis_ = False
        if centre is not None and acc.gram_ is not None:
            self.extra_axis_ = bool(acc.gram_[-1, -1] > 0)  # some row sits at the centre
            if not self.extra_axis_:  # a zero axis: gone, as in the single-process rows
                acc.gram_ = acc.gram_[:-1, :-1]
        t2 = time.perf_counter()
        spectrum = acc.spectrum(rtol=self.rtol, vectors=vectors)
        spectrum = replace(spectrum, n=acc.n_, sigma=plan.sigma)
        if self.kernel_info_ is not None:
            spectrum = replace(spectrum, kernel="centred", centre=self.kernel_info_.centre_origin)
        if plan.method == "rff" and sample is not None:
            spectrum = replace(spectrum, approx_error=approximation_error(sample, plan, q=self.q, seed=self.seed))
        self.plan_, self.spectrum_, self.centre_ = plan, spectrum, centre
        self.scores_ = spectrum.vendi(self.q)
        self.effective_rank_ = spectrum.effective_rank
        self.stage_seconds_ = {"plan_and_centre": t1 - t0, "accumulate_and_merge": t2 - t1,
                               "eigendecomposition": time.perf_counter() - t2}
        return self

    def result(self) -> VendiResult:
        return VendiResult(self.scores_, self.spectrum_)

    def write_contributions(self, source: EmbeddingSource, out: str | Path, *, ray,
                            ids: Sequence[str] | None = None) -> int:
        """Second pass: per-item entropy h_i, first-order leave-one-out change of VS₁ and
        crowdedness, as Parquet shards in the folder ``out`` (``id`` first). ``ids`` name the rows
        of a ``.npy`` (default: row numbers); a dataset brings its own ``id`` column. Returns the
        number of shards. Needs :meth:`fit` with ``vectors=True``."""
        if getattr(self, "spectrum_", None) is None or self.spectrum_.eigenvectors is None:
            raise ValueError("call fit(..., vectors=True) first")
        t0 = time.perf_counter()
        folder = clear_shards(out)
        basis = ray.put((self.plan_, self.spectrum_, self.centre_, self.extra_axis_))
        rows = self.block_rows or source.block_rows()
        if source.kind == "npy":
            if ids is not None and len(ids) != source.n:
                raise InputError(f"{len(ids)} ids for {source.n} rows")
            task = ray.remote(npy_contributions)
            done = ray.get([task.remote(source.path, a, b, None if ids is None else list(ids[a:b]), basis,
                                        str(folder / f"part-{i:05d}.parquet"))
                            for i, (a, b) in enumerate(source.ranges(rows))])
            shards = len(done)
        else:
            if source.id_column is None:
                raise InputError(f"{source.path} has no 'id' column to name the rows of --contributions")
            (source.dataset.select_columns([source.id_column, source.column])
             .map_batches(batch_contributions, batch_size=rows, batch_format="numpy",
                          fn_kwargs={"column": source.column, "id_column": source.id_column, "basis": basis})
             .write_parquet(str(folder)))
            shards = len(list(folder.glob("*.parquet")))
        self.stage_seconds_["contributions"] = time.perf_counter() - t0
        return shards


def contribution_table(x: np.ndarray, *, plan: FeaturePlan, spectrum: Spectrum,
                       centre: np.ndarray | None = None, extra_axis: bool = False) -> pd.DataFrame:
    """Per-item entropy, first-order leave-one-out change of VS₁ and crowdedness of a block's rows,
    against the whole set's spectrum (n = ``spectrum.n``): the single-process formulas.

    >>> from explorer.metrics.covariance import cosine_spectrum
    >>> s = cosine_spectrum(np.eye(3), vectors=True)
    >>> t = contribution_table(np.eye(3)[:1], plan=FeaturePlan("cosine", "dual"), spectrum=s)
    >>> round(float(t.entropy[0]), 4), round(float(t.crowdedness[0]), 4)  # log 3 and 1/3: three orthogonal items
    (1.0986, 0.3333)
    """
    c = item_contributions(task_rows(x, centre, extra_axis=extra_axis), plan=plan, spectrum=spectrum, n_modes=1,
                           top_items=1, exact_loo=False,
                           batch_size=BATCH)
    lam = spectrum.eigenvalues
    h = float(-(lam * np.log(lam)).sum())
    w = 1.0 / spectrum.n  # the block's own size must not stand in for n (item_contributions' w)
    loo = math.exp(h) * np.expm1(w * (h - c.entropy) / max(1.0 - w, 1e-300))
    return pd.DataFrame({"entropy": c.entropy, "loo_delta": loo, "crowdedness": c.crowdedness})


def npy_contributions(path: str, start: int, stop: int, ids: list[str] | None, basis, out_file: str) -> int:
    """Task: the contributions of rows [start, stop) of a ``.npy``, written as one shard."""
    plan, spectrum, centre, extra_axis = basis
    table = contribution_table(read_rows(path, start, stop), plan=plan, spectrum=spectrum, centre=centre,
                               extra_axis=extra_axis)
    table.insert(0, "id", ids if ids is not None else [str(i) for i in range(start, stop)])
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(out_file, buf.getvalue())
    return len(table)


def batch_contributions(batch: dict, *, column: str, id_column: str, basis) -> dict:
    """Ray Data batch function: the contributions of a batch's rows, with their ids."""
    import ray

    plan, spectrum, centre, extra_axis = ray.get(basis)
    x = as_matrix(batch[column])
    table = contribution_table(x, plan=plan, spectrum=spectrum, centre=centre,
                               extra_axis=extra_axis) if len(x) else pd.DataFrame(
        {"entropy": [], "loo_delta": [], "crowdedness": []})
    return {"id": np.asarray(batch[id_column]).astype(str), **{c: table[c].to_numpy() for c in table.columns}}


def clear_shards(out: str | Path) -> Path:
    """The folder ``out``, created, with the Parquet shards of an earlier run removed (so the new
    shards are never read together with stale ones); anything else in it is refused."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--contributions with --ray writes a folder of Parquet shards; {folder} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    others = [p.name for p in folder.iterdir() if p.suffix != ".parquet"]
    if others:
        raise InputError(f"{folder} holds other files ({', '.join(others[:3])}); give an empty or new folder")
    for old in folder.glob("*.parquet"):
        old.unlink()
    return folder
