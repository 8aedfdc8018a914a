from __future__ import annotations

import os

import pytest

# Qt runs headless in tests; a developer with a display can still override this.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

# The test models are tiny: one thread is as fast, and avoids OpenMP spin-waiting against other work on the machine.
torch.set_num_threads(1)


def pytest_sessionstart(session):
    """The full-resolution kernels compiled before the first test (a fresh clone compiles them for ~15 s on 2
    cores; later runs load numba's cache in milliseconds). Otherwise the app's background warm-up compiles them
    while the first app tests run, and whichever test first needs a kernel waits for every compile before it,
    inside its own timeout."""
    from core.fullres import kernels

    kernels.warm_up()


# Linux refuses to start a process with an environment string over 128 KiB, and pytest exports each test's id as
# PYTEST_CURRENT_TEST: a test whose id is made from a huge parameter cannot start a subprocess. Refused at collection.
_LONGEST_TEST_ID = 1000


def pytest_collection_modifyitems(config, items):
    long_ids = [item.nodeid[:120] + "…" for item in items if len(item.nodeid) > _LONGEST_TEST_ID]
    if long_ids:
        raise pytest.UsageError(f"test ids over {_LONGEST_TEST_ID} characters (give the parametrize `ids=`): "
                                + "; ".join(long_ids))


# CI shows only the end of a run, so the failing tests' names come after pytest's last line of counts.
_failed_reports: list = []


def pytest_runtest_logreport(report):
    if report.failed:
        _failed_reports.append(report)


def pytest_unconfigure(config):
    if not _failed_reports:
        return
    names = "; ".join(
        f"{r.nodeid[:300]} ({r.when}): {_first_line(r)}" for r in _failed_reports[:5]
    )
    print(f"\nfailed: {names}")


def _first_line(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(report.longrepr)
    return message.splitlines()[0][:300] if message else ""
