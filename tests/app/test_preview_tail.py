"""The preview tail's hand-over on its own (no model): jobs run in order on one other thread, at most one waits,
and the engine thread may start only what cannot overtake or disturb the job in work."""

from __future__ import annotations

import threading

from app.preview_tail import PreviewTail


def test_jobs_run_in_order_on_one_other_thread():
    tail = PreviewTail()
    seen: list[tuple[int, threading.Thread]] = []
    done = threading.Event()
    try:
        for j in range(5):
            tail.put(0, lambda j=j: seen.append((j, threading.current_thread())))
        tail.put(0, done.set)
        assert done.wait(10)
        assert [j for j, _ in seen] == list(range(5))
        threads = {t for _, t in seen}
        assert len(threads) == 1 and threading.current_thread() not in threads
    finally:
        tail.stop()


def test_one_job_waits_at_most_and_other_work_waits_for_idle():
    tail = PreviewTail()
    release, started = threading.Event(), threading.Event()

    def held():
        started.set()
        release.wait(10)

    try:
        assert tail.idle() and tail.ready_for(None) and tail.ready_for(0)
        tail.put(0, held)
        assert started.wait(10)
        # Busy with a job of key 0, the slot free: the next value of key 0 may start; anything else waits.
        assert tail.ready_for(0) and not tail.ready_for(1) and not tail.ready_for(None) and not tail.idle()
        tail.put(0, lambda: None)  # waits in the slot
        assert not tail.ready_for(0)  # a third value would wait for the slot
        third = threading.Thread(target=tail.put, args=(0, lambda: None))
        third.start()
        third.join(0.2)
        assert third.is_alive()  # put() blocks while the slot is taken
        release.set()
        third.join(10)
        assert not third.is_alive()
        tail.wait_ready(None)
        assert tail.idle() and tail.ready_for(1)
    finally:
        release.set()
        tail.stop()


def test_stop_drops_the_waiting_job_and_wakes_waiters():
    tail = PreviewTail()
    release, started = threading.Event(), threading.Event()
    ran: list[str] = []

    def held():
        started.set()
        release.wait(10)
        ran.append("held")

    tail.put(0, held)
    assert started.wait(10)
    tail.put(0, lambda: ran.append("dropped"))
    waiter = threading.Thread(target=tail.wait_ready, args=(None,))
    waiter.start()
    tail.stop(timeout=0)  # the held job still runs: do not wait for it
    waiter.join(10)
    assert not waiter.is_alive()  # woken, though the tail is still busy
    release.set()
    tail.stop()  # now wait for the thread's end
    assert ran == ["held"]
    tail.put(0, lambda: ran.append("after stop"))  # ignored
    assert ran == ["held"]
