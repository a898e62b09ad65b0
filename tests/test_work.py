"""Heavy work shared between sessions: computed once per key, cancelled when nobody waits, kept
in a memo bounded by bytes."""
import threading
import time

import numpy as np
import pytest

from explorer.store.work import Cancelled, SharedWork


def slow(seconds, result, calls, steps=20):
    def compute(job):
        calls.append(1)
        for i in range(steps):
            job.report(i, steps, "working")
            time.sleep(seconds / steps)
        return result
    return compute


def test_two_sessions_asking_at_once_compute_once():
    work, calls, out = SharedWork(), [], []
    threads = [threading.Thread(target=lambda: out.append(work.run("k", slow(0.5, 7, calls)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [7, 7, 7, 7] and len(calls) == 1 and work.computed["k"] == 1
    assert work.run("k", slow(0.5, 8, calls)) == 7 and len(calls) == 1  # from the memo


def test_work_nobody_waits_for_is_cancelled_and_work_others_wait_for_is_not():
    work, calls = SharedWork(), []
    ticks = []

    def leave_after_two_ticks(progress):
        ticks.append(progress.done)
        if len(ticks) >= 2:
            raise KeyboardInterrupt  # the session went away (Streamlit stops its script thread)

    with pytest.raises(KeyboardInterrupt):
        work.run("k", slow(2.0, 1, calls, steps=200), on_tick=leave_after_two_ticks, poll=0.05)
    time.sleep(0.2)
    assert work.get("k") is None and "k" not in work._jobs  # noqa: SLF001 - stopped, not finished later
    # one of two waiters leaves: the other still gets the result
    results, calls = [], []
    stay = threading.Thread(target=lambda: results.append(work.run("j", slow(0.6, 5, calls))))
    stay.start()
    time.sleep(0.1)
    with pytest.raises(KeyboardInterrupt):
        work.run("j", slow(0.6, 5, calls), on_tick=lambda p: (_ for _ in ()).throw(KeyboardInterrupt()), poll=0.05)
    stay.join()
    assert results == [5] and len(calls) == 1


def test_a_failure_reaches_every_waiter_and_a_retry_computes_again():
    work = SharedWork()

    def boom(job):
        time.sleep(0.2)
        raise ValueError("bad input")

    errors = []

    def ask():
        try:
            work.run("k", boom)
        except ValueError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["bad input"] * 3 and work.computed["k"] == 1
    assert work.run("k", lambda job: "fine") == "fine" and work.computed["k"] == 2


def test_the_memo_is_bounded_by_bytes_and_keeps_what_was_used_last():
    work = SharedWork(max_bytes=1_000_000)
    for name in "abc":
        work.run(name, lambda job: np.zeros(50_000))  # 400 kB each
    assert work.memo_bytes <= 1_000_000 and work.get("a") is None and work.get("c") is not None
    work.get("b")  # used last: kept
    work.run("d", lambda job: np.zeros(50_000))
    assert work.get("b") is not None and work.get("c") is None
    work.run("huge", lambda job: np.zeros(200_000))  # larger than the memo: returned, not kept
    assert work.get("huge") is None and work.get("b") is not None


def test_cancelled_reports_raise():
    from explorer.store.work import Job

    job = Job("x")
    job.report(1, 10, "stage")
    assert job.progress.fraction == 0.1 and job.progress.describe().startswith("stage: 1/10")
    job.cancelled.set()
    with pytest.raises(Cancelled):
        job.report(2, 10, "stage")


def test_inline_work_runs_in_the_callers_thread_and_is_still_shared():
    work, calls, threads_seen, out = SharedWork(workers=1), [], [], []

    def compute(job):
        threads_seen.append(threading.current_thread().name)
        return slow(0.4, 3, calls)(job)

    first = threading.Thread(target=lambda: out.append(work.run("k", compute, inline=True)), name="session-1")
    first.start()
    time.sleep(0.1)
    out.append(work.run("k", compute, inline=True))
    first.join()
    assert out == [3, 3] and len(calls) == 1 and threads_seen == ["session-1"]

    # a stopped inline thread (Streamlit's StopException is a BaseException) hands the work back
    class Stop(BaseException):
        pass

    def stopped(job):
        raise Stop()

    with pytest.raises(Stop):
        work.run("s", stopped, inline=True)
    assert work.run("s", lambda job: "again") == "again"


def test_a_stage_without_counts_says_how_long_it_has_run(monkeypatch):
    """Library work that reports no counts (k-means, a spectrum) still shows that it is alive."""
    import explorer.store.work as work

    now = [time.monotonic()]  # a stage's start is stamped by the real clock
    monkeypatch.setattr(work.time, "monotonic", lambda: now[0])
    job = work.Job("k")
    job.report(0, 0, "k-means, k = 10")
    assert job.progress.describe() == "k-means, k = 10"
    now[0] += 42.4
    assert job.progress.describe() == "k-means, k = 10 · 42 s"
    job.report(3, 10, "counted")  # a stage with counts shows them, not the time
    assert job.progress.describe().startswith("counted: 3/10") and " s left" in job.progress.describe()
    assert not job.progress.describe().endswith(" 42 s")
