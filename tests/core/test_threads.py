"""The thread governor (core/platform/threads.py): reading the CPU load, the team size it answers, and the session and
CLI using it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from core.editing.session import Session, run_to_end
from core.platform.threads import MIN_WINDOW_S, CpuSample, ThreadGovernor, read_sample, threads_for_load
from tests.core.cli_util import run_cli
from tests.core.engine_util import tiny_model

STAT = """cpu  900 0 300 5000 100 0 0 0 0 0
cpu0 400 0 100 2500 50 0 0 0 0 0
cpu1 300 0 100 2500 50 0 0 0 0 0
cpu2 200 0 100 0 0 0 0 0 0 0
intr 1 2 3
"""
# The command name holds a space and a ')': fields are counted after the last ')'.
SELF = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 70 30 0 0 20 0 3 0 100 0 0\n"


def _write(tmp_path: Path, stat: str = STAT, own: str = SELF) -> tuple[str, str]:
    (tmp_path / "stat").write_text(stat)
    (tmp_path / "self").write_text(own)
    return str(tmp_path / "stat"), str(tmp_path / "self")


def test_read_sample_counts_only_the_allowed_cores_and_this_process(tmp_path):
    stat, own = _write(tmp_path)
    s = read_sample(stat, own, cores={0, 1})
    # busy = everything but idle and iowait: cpu0 400+100, cpu1 300+100 (cpu2 is not ours).
    assert s.cores_busy == 900
    assert s.process == 70 + 30  # utime + stime


@pytest.mark.parametrize("stat, own", [("garbage\n", SELF), (STAT, "4242 (x) S 1\n"), ("cpu0 1 2\n", SELF),
                                       ("cpu0 1 2 x 4 5\n", SELF), (STAT, SELF.replace(" 70 30 ", " 70 ?? "))])
def test_read_sample_gives_none_for_what_it_does_not_understand(tmp_path, stat, own):
    assert read_sample(*_write(tmp_path, stat, own), cores={0, 1}) is None


def test_read_sample_gives_none_without_proc(tmp_path):
    assert read_sample(str(tmp_path / "no-stat"), str(tmp_path / "no-self"), cores={0}) is None


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="Linux /proc only")
def test_read_sample_reads_this_machine():
    s = read_sample()
    assert s is not None and s.cores_busy > 0 and s.process >= 0


@pytest.mark.parametrize("others, expected", [(0.0, 4), (0.3, 4), (0.45, 3), (1.0, 3), (1.3, 3), (1.5, 2),
                                               (3.9, 1), (8.0, 1)])
def test_threads_for_load_leaves_the_cores_others_use(others, expected):
    assert threads_for_load(4, 4, others) == expected


def test_threads_for_load_never_exceeds_the_configured_count():
    assert threads_for_load(2, 8, 0.0) == 2
    assert threads_for_load(2, 8, 7.0) == 1


class FakeCpu:
    """A CpuSample source the test moves by hand: `advance(seconds, others_cores, own_cores)`."""

    def __init__(self, hz: int = 100) -> None:
        self.hz = hz
        self.now = CpuSample(0.0, 0, 0)
        self.reads = 0

    def __call__(self) -> CpuSample:
        self.reads += 1
        return self.now

    def clock(self) -> float:
        return self.now.when

    def advance(self, seconds: float, others: float, own: float) -> None:
        n = self.now
        self.now = CpuSample(n.when + seconds, n.cores_busy + round((others + own) * seconds * self.hz),
                             n.process + round(own * seconds * self.hz))


def test_governor_answers_the_free_cores_and_follows_the_load():
    cpu = FakeCpu()
    g = ThreadGovernor(2, sample=cpu, cores=2, ticks_per_second=cpu.hz, clock=cpu.clock)
    cpu.advance(1.0, others=0.0, own=2.0)  # our own two busy threads are not "others"
    assert g.threads() == 2
    cpu.advance(1.0, others=1.0, own=1.0)  # a neighbour holds a core
    assert g.threads() == 1 and g.others_busy_cores == pytest.approx(1.0)
    cpu.advance(0.5, others=0.0, own=1.0)  # it ended
    assert g.threads() == 2


def test_governor_waits_for_a_long_enough_window():
    cpu = FakeCpu()
    g = ThreadGovernor(2, sample=cpu, cores=2, ticks_per_second=cpu.hz, clock=cpu.clock)
    cpu.advance(MIN_WINDOW_S / 2, others=2.0, own=0.0)
    reads = cpu.reads
    assert g.threads() == 2  # too short a sample to judge: the last answer stands
    assert cpu.reads == reads  # ... and nothing was read for it
    cpu.advance(MIN_WINDOW_S, others=2.0, own=0.0)
    assert g.threads() == 1


def test_governor_without_proc_answers_the_configured_count():
    g = ThreadGovernor(3, sample=lambda: None, cores=2)
    assert not g.available and g.threads() == 3


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_a_governor_keeps_one_thread_beside_other_work(restore_threads):
    """Inside one_thread_beside_other_work() (the model's regeneration while another thread of the app finds a
    line art's regions) a Session's governor does not set its team again: with two threads there the model
    stalled ~3x. Inside plain single_threaded() it still judges (the model alone, in the middle of full-res
    passes, takes two threads on a free machine)."""
    from core.platform.threads import one_thread_beside_other_work, pinned_to_one_thread, single_threaded

    torch.set_num_threads(2)
    g = ThreadGovernor(2, sample=lambda: None, cores=2)  # no load readings: two threads
    assert g.apply() == 2 and torch.get_num_threads() == 2
    with one_thread_beside_other_work():
        assert pinned_to_one_thread()
        with one_thread_beside_other_work():  # nested: still pinned on the way out of the inner one
            pass
        assert g.apply() == 1 and torch.get_num_threads() == 1
    assert not pinned_to_one_thread() and torch.get_num_threads() == 2
    with single_threaded():
        assert torch.get_num_threads() == 1 and g.apply() == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2


class Scripted:
    """A governor stand-in that answers from a script and records what it answered (apply() sets torch's count)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers, self.given = list(answers), []

    def apply(self) -> int:
        n = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        torch.set_num_threads(n)
        self.given.append(n)
        return n


def test_session_refine_rejudges_the_threads_before_every_step(restore_threads):
    session = Session(tiny_model(seed=1), "cpu")
    assert session.governor is None  # off unless asked for: reruns stay bit-identical
    session.governor = governor = Scripted([2, 1, 2, 1, 2, 1, 2, 1, 2])
    seen = []  # (threads while the step ran, the governor's latest answer, how many answers so far)
    run_to_end(session.refine(steps=3, preview_every=0),
               lambda step: seen.append((torch.get_num_threads(), governor.given[-1], len(governor.given))))
    # 2 transitions x 3 steps, each run with the count judged just before it (a fresh answer per step).
    assert len(seen) == 6
    assert all(used == answered for used, answered, _ in seen)
    assert len({n for _, _, n in seen}) == 6 and {used for used, _, _ in seen} == {1, 2}


def test_session_propagate_uses_the_governed_count(restore_threads):
    session = Session(tiny_model(seed=1), "cpu")
    session.governor = Scripted([1])
    torch.set_num_threads(2)
    session.propagate(0)
    assert session.governor.given == [1] and torch.get_num_threads() == 1


def test_session_asked_to_adapt_gets_a_governor_on_the_cpu_only():
    assert isinstance(Session(tiny_model(seed=1), "cpu", adapt_threads=True).governor, ThreadGovernor)


def test_cli_threads_fixes_the_count(tmp_path, capsys, restore_threads):
    code, out, err = run_cli(["info", "--threads", "0"], capsys)
    assert code == 2 and "--threads must be at least 1" in err
    code, out, err = run_cli(["info", "--threads", "1"], capsys)
    assert code == 0 and torch.get_num_threads() == 1


@pytest.mark.skipif(sys.platform != "linux", reason="the load is read from Linux /proc")
def test_real_governor_on_this_machine_answers_within_its_bounds():
    g = ThreadGovernor(2)
    assert g.available
    assert 1 <= g.threads() <= 2
