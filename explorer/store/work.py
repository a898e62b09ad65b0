"""Heavy work shared between the app's sessions: one computation per key, whoever asks first
starts it, later askers wait for the same result; work that nobody waits for any more is
cancelled; finished results stay in a memo bounded by bytes.

Computations run in a small pool of worker threads, not in the sessions' own threads, so a
session that goes away (a closed tab, a rerun) stops waiting without stopping work others still
wait for, and a few heavy jobs never run six at once on two cores. A computation reports its
progress through its :class:`Job` (``job.report(done, total, message)``), which is also where it
learns that it was cancelled: ``report`` then raises :class:`Cancelled`.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Cancelled(Exception):
    """The computation was cancelled: nobody waits for its result any more."""


@dataclass
class JobProgress:
    """Where a computation stands: ``done`` of ``total`` in its current ``stage``."""

    stage: str = "queued"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    stage_started: float = field(default_factory=time.monotonic)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def rate(self) -> float | None:
        """Units of the current stage per second, once there is something to measure."""
        seconds = time.monotonic() - self.stage_started
        return self.done / seconds if self.done and seconds > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left in the current stage at the current rate."""
        rate = self.rate
        return (self.total - self.done) / rate if rate and self.total >= self.done else None

    def describe(self) -> str:
        """``stage: done/total · rate/s · ~ETA``, as the app shows it.

        >>> JobProgress("embedding", 0, 10).describe()
        'embedding: 0/10'
        """
        text = f"{self.stage}: {self.done:,}/{self.total:,}" if self.total else self.stage
        waited = time.monotonic() - self.stage_started
        if not self.total and waited >= 1:  # a stage without counts: how long it has run, so it looks alive
            text += f" · {waited:,.0f} s"
        if self.rate:
            text += f" · {self.rate:,.1f}/s"
        if self.eta is not None and self.done < self.total:
            text += f" · about {self.eta:,.0f} s left"
        return text


class Job:
    """One shared computation in flight."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.progress = JobProgress()
        self.waiters = 0
        self.detached = False  # started in the background: runs to the end with nobody waiting
        self.cancelled = threading.Event()
        self.future: Future = Future()

    def report(self, done: int, total: int, stage: str) -> None:
        """Record progress; raises :class:`Cancelled` once nobody waits for the result."""
        if self.cancelled.is_set():
            raise Cancelled(f"{self.key!r}: nobody waits for it any more")
        if stage != self.progress.stage:
            self.progress = JobProgress(stage, done, total, started=self.progress.started)
        else:
            self.progress.done, self.progress.total = done, total


def approx_bytes(value: Any, _seen: set[int] | None = None) -> int:
    """Memory a result holds, roughly: arrays and tables by their buffers, containers summed.

    >>> approx_bytes(np.zeros(1000)) >= 8000, approx_bytes({"a": [np.zeros(10), "x"]}) > 80
    (True, True)
    """
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if hasattr(value, "memo_bytes") and not isinstance(value, type):  # an object that knows what it owns
        return int(value.memo_bytes())
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if hasattr(value, "memory_usage") and hasattr(value, "columns"):  # a DataFrame
        return int(value.memory_usage(index=True, deep=False).sum())
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(approx_bytes(k, seen) + approx_bytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return sys.getsizeof(value) + sum(approx_bytes(v, seen) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sys.getsizeof(value) + approx_bytes(vars(value), seen)
    return sys.getsizeof(value)


class SharedWork:
    """Computations shared by key, and a memo of their results bounded by ``max_bytes``.

    >>> work = SharedWork(max_bytes=1 << 20)
    >>> work.run("k", lambda job: 41 + 1), work.run("k", lambda job: 0)   # the second is the memo's
    (42, 42)
    """

    def __init__(self, *, max_bytes: int = 2 << 30, workers: int = 2) -> None:
        self.max_bytes = max_bytes
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vendiscope-work")
        self._lock = threading.Lock()
        self._memo: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._jobs: dict[Any, Job] = {}
        self.computed: dict[Any, int] = {}  # how many times each key was computed (for tests and benchmarks)
        self._background: dict[Any, Job] = {}

    @property
    def memo_bytes(self) -> int:
        return self._bytes

    def get(self, key: Any) -> Any:
        """The memoised result under ``key``, or None (nothing is computed)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key][0]
        return None

    def run(self, key: Any, compute: Callable[[Job], Any], *, on_tick: Callable[[JobProgress], None] | None = None,
            poll: float = 0.25, inline: bool = False) -> Any:
        """``compute(job)``'s result for ``key``: from the memo, by joining the computation in
        flight, or by starting it. While waiting, ``on_tick(progress)`` runs every ``poll``
        seconds in the caller's thread; if it raises (the caller went away), the caller stops
        waiting, and the computation is cancelled when it was the last one waiting.

        ``inline`` runs a computation this caller starts in its own thread (cheap work that
        must not queue behind heavy jobs in the pool); others asking meanwhile still wait for it.
        """
        while True:
            with self._lock:
                if key in self._memo:
                    self._memo.move_to_end(key)
                    return self._memo[key][0]
                job = self._jobs.get(key)
                work = None
                if job is None or job.cancelled.is_set():
                    job, work = self._start(key, compute)
                job.waiters += 1
            try:
                if work is not None:
                    if inline:
                        work()
                    else:
                        self._pool.submit(work)
                return self._wait(job, on_tick, poll)
            except Cancelled:
                continue  # cancelled by others just before this caller joined: start it again
            finally:
                self._leave(job)

    def start(self, key: Any, compute: Callable[[Job], Any]) -> None:
        """Start ``compute(job)`` in the pool unless its result is memoised or it is in flight;
        it runs to the end with nobody waiting (a map refined in the background). Ask
        :meth:`background` how it stands.

        >>> work = SharedWork()
        >>> work.start("k", lambda job: 7); work._background["k"].future.result(), work.get("k")
        (7, 7)
        """
        with self._lock:
            if key in self._memo or (key in self._jobs and not self._jobs[key].cancelled.is_set()):
                return
            job, work = self._start(key, compute)
            job.detached = True
            self._background[key] = job
        self._pool.submit(work)

    def background(self, key: Any) -> tuple[str, Any]:
        """How a background computation stands: ``("done", value)``, ``("running", progress)``,
        ``("failed", message)``, or ``("none", None)`` when it was never started here."""
        value = self.get(key)
        if value is not None:
            return "done", value
        job = self._background.get(key)
        if job is None:
            return "none", None
        if not job.future.done():
            return "running", job.progress
        err = job.future.exception()
        return ("failed", f"{type(err).__name__}: {err}") if err is not None else ("done", job.future.result())

    def wait_background(self, timeout: float | None = None) -> bool:
        """Wait until every background computation started so far has ended (benchmarks time
        the pages without a map being refined beside them); False if ``timeout`` came first.

        >>> work = SharedWork()
        >>> work.start("k", lambda job: 7); work.wait_background(timeout=5)
        True
        """
        with self._lock:
            pending = [job.future for job in self._background.values()]
        return not futures_wait(pending, timeout=timeout).not_done

    def _start(self, key: Any, compute: Callable[[Job], Any]) -> tuple[Job, Callable[[], None]]:
        job = Job(key)
        self._jobs[key] = job
        self.computed[key] = self.computed.get(key, 0) + 1

        def work() -> None:
            try:
                if job.cancelled.is_set():
                    raise Cancelled(f"{key!r}: cancelled before it started")
                value = compute(job)
            except BaseException as err:
                with self._lock:
                    if self._jobs.get(key) is job:
                        del self._jobs[key]
                if isinstance(err, Exception):
                    job.future.set_exception(err)  # every waiter sees the same failure
                    return
                # the thread that ran it inline was stopped (a rerun, a closed tab): the others
                # start it again rather than receive that thread's stop signal
                job.future.set_exception(Cancelled(f"{key!r}: its thread was stopped"))
                raise
            with self._lock:
                if self._jobs.get(key) is job:
                    del self._jobs[key]
                self._remember(key, value)
            job.future.set_result(value)

        return job, work

    def _wait(self, job: Job, on_tick: Callable[[JobProgress], None] | None, poll: float) -> Any:
        while True:
            try:
                return job.future.result(timeout=poll)
            except FutureTimeout:
                if on_tick is not None:
                    on_tick(job.progress)

    def _leave(self, job: Job) -> None:
        with self._lock:
            job.waiters -= 1
            if job.waiters == 0 and not job.future.done() and not job.detached:
                job.cancelled.set()  # nobody waits: it stops at its next report (or before it starts)

    def _remember(self, key: Any, value: Any) -> None:
        size = approx_bytes(value)
        if size > self.max_bytes:
            return  # larger than the whole memo: handed to its waiters, not kept
        if key in self._memo:
            self._bytes -= self._memo.pop(key)[1]
        self._memo[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._memo) > 1:
            _, (_, freed) = self._memo.popitem(last=False)
            self._bytes -= freed
