"""Which tests wait instead of work: opt-in plugin, ``pytest -p tests.support.waits``.

For each test (set-up, call and tear-down together) it records the wall time and the CPU
time (user + system) of the test process, of the child processes it waited for
(``getrusage`` of ``RUSAGE_SELF`` and ``RUSAGE_CHILDREN``) and of its descendants still
running (``/proc``: jsii's node process, servers), and prints at the end of the run
the tests whose wall time exceeds their CPU time the most: a test that sleeps, polls, waits
on a socket or on a retry backoff shows there with a low CPU share, a busy one does not (on
a loaded machine every test's wall time also holds the time it waited for a core, so compare
CPU shares). ``--waits-top=N`` sets how many are printed (30 by default). Without ``-n 0`` each xdist worker measures its own
tests and the table is not printed (use ``-n 0``, or run module by module).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Waiting:
    nodeid: str
    wall: float
    cpu: float

    @property
    def gap(self) -> float:
        return self.wall - self.cpu


_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _live_descendants_cpu() -> float:
    """CPU seconds used so far by the descendants still running (and the children they waited
    for), read from ``/proc``: a child nobody has waited for yet (jsii's node process for the
    CDK, a server process) is not in ``RUSAGE_CHILDREN``. 0 where ``/proc`` is missing."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = sum(int(field) for field in fields[11:15]) * _TICK_S  # u, s, cu, cs
    me = os.getpid()
    total = 0.0
    for pid in used:
        ancestor = parents.get(pid)
        while ancestor is not None and ancestor not in (me, 0, 1):
            ancestor = parents.get(ancestor)
        if ancestor == me:
            total += used[pid]
    return total


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return waited + _live_descendants_cpu()


_measured: list[Waiting] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--waits-top",
        type=int,
        default=30,
        help="how many tests the waits table lists (largest wall - CPU first)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    wall = time.perf_counter()
    cpu = _cpu_seconds()
    yield
    _measured.append(Waiting(item.nodeid, time.perf_counter() - wall, _cpu_seconds() - cpu))


def widest_gaps(measured: list[Waiting], top: int) -> list[Waiting]:
    """The ``top`` tests with the largest wall - CPU gap, largest first."""
    return sorted(measured, key=lambda waiting: waiting.gap, reverse=True)[:top]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if not _measured:
        return
    top = int(config.getoption("--waits-top"))
    terminalreporter.write_sep("=", f"largest wall - CPU gaps (top {top})")
    terminalreporter.write_line(f"{'wall s':>8} {'cpu s':>8} {'gap s':>8} {'cpu %':>6}  test")
    for waiting in widest_gaps(_measured, top):
        share = 100 * waiting.cpu / waiting.wall if waiting.wall > 0 else 100.0
        terminalreporter.write_line(
            f"{waiting.wall:8.2f} {waiting.cpu:8.2f} {waiting.gap:8.2f} {share:6.0f}  "
            f"{waiting.nodeid}"
        )
    wall = sum(waiting.wall for waiting in _measured)
    cpu = sum(waiting.cpu for waiting in _measured)
    terminalreporter.write_line(
        f"{len(_measured)} tests: {wall:.1f} s wall, {cpu:.1f} s CPU, {wall - cpu:.1f} s waiting"
    )
