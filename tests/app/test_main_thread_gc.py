"""Cyclic garbage is collected on the GUI thread only (app/main_thread_gc): a cycle left by the GUI thread is not
collected by another thread that allocates, but by the GUI thread's timer."""

from __future__ import annotations

import gc
import threading

from app import main_thread_gc


class Finalised:
    def __init__(self, record: list) -> None:
        self.record = record
        self.me = self  # a reference cycle: only the cyclic collector frees it

    def __del__(self) -> None:
        self.record.append(threading.current_thread())


def test_cycles_are_collected_on_the_gui_thread_not_on_the_thread_that_allocates(qtbot):
    collector = main_thread_gc.install()
    assert main_thread_gc.installed() is collector
    assert not gc.isenabled()
    ran_on: list = []
    Finalised(ran_on)

    def churn() -> None:  # fills generation 0 many times over: an automatic collection would run here
        for _ in range(20 * gc.get_threshold()[0]):
            x: list = []
            x.append(x)

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    assert ran_on == []
    qtbot.waitUntil(lambda: bool(ran_on), timeout=5 * main_thread_gc.INTERVAL_MS)
    assert ran_on == [threading.main_thread()]


def test_collect_if_due_leaves_young_garbage_alone_until_a_threshold_passes(qtbot):
    collector = main_thread_gc.install()
    gc.collect()
    ran_on: list = []
    Finalised(ran_on)
    collector.collect_if_due()  # one new object: far below the thresholds
    assert ran_on == []
    for _ in range(2 * gc.get_threshold()[0]):
        x: list = []
        x.append(x)
    collector.collect_if_due()
    assert ran_on == [threading.main_thread()]
