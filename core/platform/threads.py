"""How many CPU threads torch should use now: all of its own, unless other programs are keeping the cores busy.

Why: torch's CPU kernels split each operation over an OpenMP team, and every operation ends at a barrier that
waits for the slowest thread. When another program holds one of the cores, the team's thread there runs only when
the scheduler lets it, so each of the refinement's few hundred operations per step waits for it. Measured on a
2-core machine with one busy neighbour process (benchmarks/bench_threads.py): a 128 px refinement step took 1.3 s
with two spinning threads instead of 45 ms idle, and 80 ms with one thread. A team of the cores that are actually
free avoids that.

`ThreadGovernor` reads the CPU time of the cores this process may run on (Linux /proc/stat) and its own CPU time
(/proc/self/stat) over a short window; what the cores spent beyond this process is other programs' load. Where the
/proc files are missing (macOS, Windows) it always answers the configured count. The thread count changes results
only at float rounding (reductions are split differently), so callers that need bit-identical reruns keep it fixed.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

# A load sample shorter than this is too coarse to judge: /proc/stat counts in ticks of 10 ms.
MIN_WINDOW_S = 0.25
# A core counts as taken by others when they used more than this fraction of it; the slack keeps short bursts
# (a compositor, a shell) from halving the team.
TAKEN_FRACTION = 0.4


@dataclass(frozen=True)
class CpuSample:
    """CPU ticks spent (busy, not idle) on the cores this process may use, and by this process (all its threads)."""

    when: float  # time.monotonic()
    cores_busy: int
    process: int


def _allowed_cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def read_sample(stat_path: str = "/proc/stat", self_path: str = "/proc/self/stat",
                cores: set[int] | None = None) -> CpuSample | None:
    """The current sample, or None where the /proc files are not there or not understood."""
    cores = _allowed_cores() if cores is None else cores
    try:
        with open(stat_path, encoding="ascii") as f:
            lines = f.read().splitlines()
        with open(self_path, encoding="ascii") as f:
            own = f.read()
    except OSError:
        return None
    busy = 0
    seen = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit() or int(name[3:]) not in cores:
            continue
        try:
            fields = [int(v) for v in rest.split()]
        except ValueError:
            return None
        if len(fields) < 5:
            return None
        # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
        busy += sum(fields) - fields[3] - fields[4]
        seen += 1
    # The command name in /proc/self/stat is in parentheses and may hold spaces: the fields start after ')'.
    after = own.rpartition(")")[2].split()
    if not seen or len(after) < 13 or not (after[11].isdigit() and after[12].isdigit()):
        return None
    return CpuSample(time.monotonic(), busy, int(after[11]) + int(after[12]))


def threads_for_load(max_threads: int, cores: int, others_busy_cores: float) -> int:
    """The team size: the cores other programs leave free (a core they use more than TAKEN_FRACTION of counts as
    taken), at least 1 and at most max_threads."""
    taken = math.floor(max(others_busy_cores, 0.0) + (1.0 - TAKEN_FRACTION))
    return max(1, min(max_threads, cores - taken))


class ThreadGovernor:
    """Answers torch's thread count for the next piece of work. `max_threads`: the most it uses (default: torch's
    count when the governor is made). `sample`: a CpuSample source, `clock` its time (tests pass their own)."""

    def __init__(self, max_threads: int | None = None,
                 sample: Callable[[], CpuSample | None] = read_sample, cores: int | None = None,
                 ticks_per_second: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_threads = max(1, max_threads or torch.get_num_threads())
        self._sample = sample
        self._clock = clock  # the clock of the samples' `when`
        self._cores = cores if cores is not None else len(_allowed_cores())
        self._hz = ticks_per_second or _ticks_per_second()
        self._last = sample()
        self._threads = self.max_threads
        self.others_busy_cores = 0.0  # the last measured load of other programs, in cores

    @property
    def available(self) -> bool:
        """False where the load cannot be read: then the governor always answers max_threads."""
        return self._last is not None

    def threads(self) -> int:
        """The thread count for now: re-judged when at least MIN_WINDOW_S passed since the last judgement."""
        if self._last is None:
            return self.max_threads
        if self._clock() - self._last.when < MIN_WINDOW_S:
            return self._threads  # (no file read: the app asks before every slider preview)
        now = self._sample()
        if now is None:
            return self._threads
        elapsed = now.when - self._last.when
        if elapsed < MIN_WINDOW_S:
            return self._threads
        others_ticks = (now.cores_busy - self._last.cores_busy) - (now.process - self._last.process)
        self.others_busy_cores = max(0.0, others_ticks / self._hz / elapsed)
        self._threads = threads_for_load(self.max_threads, self._cores, self.others_busy_cores)
        self._last = now
        return self._threads

    def apply(self) -> int:
        """Set torch's thread count (of the calling thread's OpenMP team) to threads(); returns it. Inside
        one_thread_beside_other_work() the calling thread keeps its one thread (returns 1)."""
        if pinned_to_one_thread():
            return 1
        n = self.threads()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return n


def _ticks_per_second() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


_pinned = threading.local()


@contextmanager
def single_threaded() -> Iterator[None]:
    """Torch on one thread for the calling thread while inside (torch's thread count is per thread).
    guided.apply_change and proxy_of_array run hundreds of small operations: each one split over a thread team
    waits for its slowest thread, and on a loaded 2-core machine that cost ~10x (apply_change at 2048 x 1536:
    5.2 s with two threads, 0.3 s with one, load average 4). A Session's ThreadGovernor still judges the model's
    regeneration inside (on a free machine two threads regenerate a 128 px stage in ~20 ms instead of ~35 ms);
    one_thread_beside_other_work() keeps it to one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@contextmanager
def one_thread_beside_other_work() -> Iterator[None]:
    """single_threaded(), with the governor's judgement set aside: for torch work while another thread of this
    process keeps a core busy, which the governor (it measures other programs' load) cannot see. The model's
    regeneration beside the thread finding a line art's regions took ~0.14 s with two threads, ~0.045 s with
    one."""
    depth = getattr(_pinned, "depth", 0)
    _pinned.depth = depth + 1
    try:
        with single_threaded():
            yield
    finally:
        _pinned.depth = depth


def pinned_to_one_thread() -> bool:
    """Whether the calling thread is inside one_thread_beside_other_work()."""
    return getattr(_pinned, "depth", 0) > 0
