"""The quality gate on real scan windows of the shared CoinGecko data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.quality import Severity, check_daily
from cryptosmarttrader.domain.types import ms_from_utc

pytestmark = pytest.mark.realdata

LOOKBACK = 260


@pytest.mark.parametrize("day", ["2019-06-01", "2021-06-01", "2023-06-01", "2023-12-31"])
def test_scan_window_excludes_few_coins_each_with_a_reason(data_dir: Path, day: str) -> None:
    # Given the real universe over a scan window before a date
    asof = datetime.fromisoformat(day).replace(tzinfo=UTC)
    frame = RecordedMarketData(data_dir).daily_universe(asof, LOOKBACK)
    # When the gate runs with its defaults
    result = check_daily(frame, ms_from_utc(asof))
    n = frame["symbol"].n_unique()
    # Then a minority is excluded, every exclusion has an error finding with a reason,
    assert 0 < len(result.excluded) < 0.15 * n
    errors = {f.symbol for f in result.findings if f.severity is Severity.ERROR}
    assert errors == set(result.excluded)
    assert all(f.reason for f in result.findings)
    # and the clean frame is exactly the untouched rows of the other coins
    kept = frame.filter(~pl.col("symbol").is_in(list(result.excluded)))
    assert result.clean.equals(kept)
    assert result.clean["symbol"].n_unique() == n - len(result.excluded)


def test_bitcoin_passes_a_recent_window(data_dir: Path) -> None:
    asof = datetime(2023, 12, 31, tzinfo=UTC)
    frame = RecordedMarketData(data_dir).daily_universe(asof, LOOKBACK)
    result = check_daily(frame, ms_from_utc(asof))
    for coin in ("bitcoin", "ethereum", "tether"):
        assert coin not in result.excluded
