"""A Binance testnet account on the fake exchange, as the `cst` commands that trade reach it.

`cst execute --venue testnet` and `cst golive rollback --venue testnet` run against the in-repo
fake Binance behind ccxt's sandbox URLs (`binance_sandbox_served_by`), with keys in a file only
its owner reads, 10,000 USDT on the account and no venue setting from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.venue_redirect import SandboxRedirect, binance_sandbox_served_by

VENUE_ENV = ("AWS_ENDPOINT_URL", "CST_VENUE_API_KEY", "CST_VENUE_API_SECRET",
             "CST_VENUE_API_PASSWORD", "CST_LIVE_CONFIRM", "CST_EXCHANGE")  # fmt: skip


@dataclass
class SandboxDesk:
    """What a test of a trading command holds: the fake exchange, the sandbox redirect, the
    command's state directory, the recorded data and the keys file."""

    fake: FakeBinance
    redirect: SandboxRedirect
    state: Path
    data: Path
    keys: Path


@contextmanager
def fake_testnet_account(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    api_key: str,
    secret: str,
    *,
    also_unset: tuple[str, ...] = (),
) -> Iterator[tuple[FakeBinance, SandboxRedirect, Path]]:
    """The fake exchange serving the account, the sandbox redirect and the keys file."""
    for name in (*VENUE_ENV, *also_unset):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CST_EQUITY_USD", "10000")
    keys = tmp_path / "binance-testnet-keys.json"
    keys.write_text(json.dumps({"api_key": api_key, "secret": secret}))
    keys.chmod(0o600)
    fake = FakeBinance(
        api_key,
        secret,
        RecordedMarketData(data_dir),
        lambda: datetime.now(UTC),  # the market clock is the (moved) process clock
        balances={"USDT": Decimal("10000")},
    )
    fake.warm("BTCUSDT")
    with serve(fake) as url, binance_sandbox_served_by(url) as redirect:
        yield fake, redirect, keys
