"""Progress on the terminal for long commands: rich bars fed by the services' progress callback.

Shown on stderr when stdout is a terminal and the command prints text (never with ``--json``),
so piped or captured output stays exactly the result. ``CST_PROGRESS=always|never`` overrides
the terminal check (``auto``, the default).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptosmarttrader.ports import Progress

__all__ = ["progress_bars", "show_progress", "working"]


def show_progress(as_json: bool = False) -> bool:
    """Whether to draw progress: never for JSON output; else CST_PROGRESS, else a terminal."""
    if as_json:
        return False
    mode = os.environ.get("CST_PROGRESS", "auto").strip().lower()
    if mode in {"always", "1", "true", "yes"}:
        return True
    if mode in {"never", "0", "false", "no"}:
        return False
    return sys.stdout.isatty()


def _silent(step: str, done: int, total: int | None) -> None:
    """No progress drawn."""


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Progress]:
    """A callback for services: one bar per step, with count, elapsed and remaining time."""
    if not enabled:
        yield _silent
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def report(step: str, done: int, total: int | None) -> None:
        task = tasks.get(step)
        if task is None:
            task = tasks[step] = bars.add_task(step, total=total)
        bars.update(task, completed=done, total=total)

    with bars:
        yield report


@contextlib.contextmanager
def working(message: str, enabled: bool) -> Iterator[None]:
    """A spinner with the elapsed time, for a step that reports no count (a subprocess, a
    deployment)."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn(message),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as spinner:
        spinner.add_task(message, total=None)
        yield
