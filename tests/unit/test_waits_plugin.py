"""The opt-in waits plugin (``tests.support.waits``): the widest wall - CPU gaps first, and the
CPU of a child process counted while it still runs."""

from __future__ import annotations

import subprocess
import sys

from tests.support.waits import Waiting, _cpu_seconds, _live_descendants_cpu, widest_gaps

BUSY_THEN_WAIT = (
    "import sys, time\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < 0.3: pass\n"
    "print('busy', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_the_widest_gaps_come_first_and_only_the_top_ones() -> None:
    busy = Waiting("busy", wall=5.0, cpu=4.9)
    sleeper = Waiting("sleeper", wall=2.0, cpu=0.1)
    poller = Waiting("poller", wall=1.0, cpu=0.5)
    assert widest_gaps([busy, sleeper, poller], 2) == [sleeper, poller]


def test_a_running_child_s_cpu_counts_before_it_is_waited_for() -> None:
    # Given the CPU counted before a child that works 0.3 s of CPU and then waits
    before = _cpu_seconds()
    child = subprocess.Popen(
        [sys.executable, "-c", BUSY_THEN_WAIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "busy\n"
        # When it is measured while the child still runs (not yet waited for)
        live = _live_descendants_cpu()
        during = _cpu_seconds()
    finally:
        child.communicate("")
    # Then the child's work is counted (/proc counts in clock ticks: allow one tick per field)
    assert live >= 0.28
    assert during - before >= 0.28
