"""A dust remainder (what a close leaves below the venue's amount step, closed for trading)
and the scan's one-entry rule, on the in-memory fakes and the recorded market data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.services.scan import Analysis, ScanAnalyzer
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer
from tests.support.scan import Stores

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def analysis(data_dir: Path) -> tuple[ScanAnalyzer, Analysis]:
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    return analyzer, analyzer.analyze(datetime(2021, 5, 1, tzinfo=UTC), 8)


def test_a_dust_remainder_does_not_block_a_new_entry_in_its_coin(
    analysis: tuple[ScanAnalyzer, Analysis],
) -> None:
    analyzer, result = analysis
    # Given the coins the scan enters on an empty book
    fresh = Stores().service(analyzer).execute(result)
    entered = [r.symbol for r in fresh.rows if r.client_order_id is not None]
    assert entered, "no entry on this analysis: nothing tested"
    symbol = entered[0]
    # and, on another book, only the dust a close of that coin left (0.00000877 of it, below
    # any venue's amount step: the close path answers it is dust, closed for trading)
    stores = Stores()
    price = result.prices[symbol]
    dust = Decimal("0.00000877")
    assert stores.positions.upsert(
        {
            "symbol": symbol,
            "quantity": dust,
            "cost": dust * Decimal(str(price)),
            "average_price": Decimal(str(price)),
            "realized_pnl": Decimal("-12.5"),
        },
        None,
    )
    # When the scan runs on the same analysis
    report = stores.service(analyzer).execute(result)
    # Then the coin is entered as on the empty book: the dust is no held position
    row = next(r for r in report.rows if r.symbol == symbol)
    assert row.client_order_id is not None, (
        f"{symbol}: entry refused because of a {dust} dust remainder: {row.reasons[-1]}"
    )


def test_a_dust_remainder_gets_no_exit_row_but_a_held_position_does(
    analysis: tuple[ScanAnalyzer, Analysis],
) -> None:
    analyzer, result = analysis
    symbol = next(iter(result.prices))
    price = Decimal(str(result.prices[symbol]))
    # Given a dust remainder of one coin (worth less than dust_value_usd) and, in another book,
    # a holding of the same coin worth more than it
    worth = {"dust": Decimal("0.5"), "held": Decimal("500")}
    reports = {}
    for name, value in worth.items():
        stores = Stores()
        quantity = value / price
        assert stores.positions.upsert(
            {"symbol": symbol, "quantity": quantity, "cost": value, "average_price": price},
            None,
        )
        reports[name] = stores.service(analyzer).execute(result)
    # Then only the held position is listed for its exit (the dust is never closed: no row
    # for it day after day)
    assert analyzer.settings.dust_value_usd == 10.0
    assert [e.symbol for e in reports["dust"].exits] == []
    assert [e.symbol for e in reports["held"].exits] == [symbol]
