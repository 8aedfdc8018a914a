"""What the benchmark scripts share: the machine's load average, printed beside the figures, and the note that
says when other work competed for the CPUs (absolute times inflated, so compare the ratios of one run)."""

from __future__ import annotations

import os

TIMES_INFLATED = "absolute times are inflated; compare the ratios."


def load_average() -> float:
    """The one-minute load average; NaN where the system has none (Windows)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def print_load_note(load: float, consequence: str = TIMES_INFLATED, before: str = "") -> None:
    """One line when the load average exceeds the CPUs (`before` goes ahead of it, e.g. a blank line)."""
    if load > (os.cpu_count() or 1):
        print(f"{before}note: load average {load:.1f} exceeds the {os.cpu_count()} CPUs: {consequence}")
