"""Helpers shared by CLI commands: one-line errors, date parsing, state directory."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def parse_day(value: str, option: str = "--asof") -> datetime:
    """YYYY-MM-DD → midnight UTC. Anything else is an error naming the option."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        fail(f"{option} must be a date YYYY-MM-DD, got {value!r}")
    return day


def state_dir(explicit: Path | None) -> Path:
    """Where the embedded local AWS keeps its state between runs."""
    if explicit is not None:
        return explicit
    return Path(os.environ.get("CST_STATE_DIR", ".cst"))
