"""Helpers shared by CLI commands: one-line errors, date parsing, state directory."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False)

# The venue options of every command that reaches an exchange with the user's keys
# (`cst execute`, `cst golive rollback`): one spelling, one help text.
ExchangeOption = Annotated[
    str | None,
    typer.Option(
        "--exchange", help="binance, kraken or kucoin (default: CST_EXCHANGE or binance)."
    ),
]
KeysFileOption = Annotated[
    Path | None,
    typer.Option(
        "--keys-file",
        help="testnet/live: JSON {api_key, secret[, password]} readable by you only (chmod 600); "
        "default: CST_VENUE_API_KEY and CST_VENUE_API_SECRET (CST_VENUE_API_PASSWORD for KuCoin).",
    ),
]


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
