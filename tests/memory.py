"""The peak memory of a piece of work, for tests that bound it (issue 29: full resolution within 1.5 GB).

The work runs in a fresh Python process (nothing the test process holds or freed counts), as a script: `setup`
(imports, inputs, a small warm-up run that loads the compiled kernels), then `work`. What is measured is the
process's peak resident set during `work` above its resident set just before it: Linux's VmHWM after resetting it
(writing 5 to /proc/self/clear_refs), so every allocation counts (numpy, torch, numba's own, Pillow's), not only
those tracemalloc sees. Where the peak cannot be reset, the growth of ru_maxrss is used (a lower bound: an earlier
peak of the setup hides part of the work's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import resource
import sys

_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(field)


{setup}
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak resident set (VmHWM) starts again from the present one
    before, reset = _status("VmRSS"), True
except OSError:
    before, reset = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT, False
{work}
after = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT
print("PEAK_GROWTH", after - before)
"""


def peak_growth(work: str, setup: str = "", timeout: float = 300, root: Path = ROOT) -> int:
    """Bytes by which the resident set of a fresh Python process peaks during `work` (a script's text, run after
    `setup`, at module level: names that setup defines are seen), with `root` (this repository, or another
    checkout to compare with) as its folder and on its path. RuntimeError with the child's error when the work
    fails."""
    script = _SCRIPT.format(setup=textwrap.dedent(setup), work=textwrap.dedent(work))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the measured work failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("PEAK_GROWTH ")]
    return int(lines[-1].split()[1])
