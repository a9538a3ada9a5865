"""Exchange domain: capabilities, client-ID formats, retry policy, error mapping, model checks."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import ccxt
import pytest

from cryptosmarttrader.adapters.ccxt_exchange import map_ccxt_error
from cryptosmarttrader.domain.exchange import (
    CAPABILITIES,
    BookLevel,
    ExchangeId,
    FatalExchangeError,
    InvalidPayloadError,
    NotSupportedByExchange,
    OrderBook,
    OrderNotFoundError,
    RetryableExchangeError,
    RetryPolicy,
    RetryRunner,
    Ticker,
    capabilities_for,
    validate_candle,
)
from cryptosmarttrader.domain.types import ClientOrderId, DomainError, Price, Quantity, Symbol

HEX64 = "9f2c4e1a7b3d5f608192a3b4c5d6e7f8a9b0c1d2e3f405162738495a6b7c8d9e"
BTC = Symbol("BTC/USDT")

# ------------------------------------------------------------------ capabilities and client IDs


@pytest.mark.parametrize(
    ("venue", "param", "length"),
    [
        (ExchangeId.KRAKEN, "cl_ord_id", 32),
        (ExchangeId.BINANCE, "newClientOrderId", 36),
        (ExchangeId.KUCOIN, "clientOid", 40),
    ],
)
def test_each_venue_gets_our_id_in_its_own_param_and_length(
    venue: ExchangeId, param: str, length: int
) -> None:
    spec = CAPABILITIES[venue].client_id
    assert spec.param == param
    assert spec.format(ClientOrderId(HEX64)) == HEX64[:length]


def test_a_32_hex_order_id_fits_every_venue_unchanged() -> None:
    cid = ClientOrderId(HEX64[:32])
    assert {v: c.client_id.format(cid) for v, c in CAPABILITIES.items()} == dict.fromkeys(
        CAPABILITIES, HEX64[:32]
    )


def test_kraken_rejects_a_hex_id_between_free_text_and_uuid_lengths() -> None:
    # Kraken takes a 32-hex short UUID or <= 18 chars of free text; 20 hex is neither.
    spec = CAPABILITIES[ExchangeId.KRAKEN].client_id
    short = type(spec)(param=spec.param, max_len=20, pattern=spec.pattern)
    with pytest.raises(DomainError, match="does not match the venue format"):
        short.format(ClientOrderId(HEX64))


def test_unknown_timeframe_and_venue_are_refused() -> None:
    with pytest.raises(NotSupportedByExchange, match="timeframe '8h'"):
        CAPABILITIES[ExchangeId.KRAKEN].require_timeframe("8h")
    assert CAPABILITIES[ExchangeId.BINANCE].require_timeframe("1h") == 3_600_000
    with pytest.raises(DomainError, match="unsupported exchange"):
        capabilities_for("ftx")


def test_funding_is_declared_only_where_offered() -> None:
    assert {v for v, c in CAPABILITIES.items() if c.supports_funding} == {ExchangeId.BINANCE}


# ------------------------------------------------------------------ retry policy


def test_backoff_cap_doubles_then_saturates() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=3.0, max_total_s=60)
    assert [policy.backoff_cap(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_scales_the_cap_by_the_random_draw() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    assert policy.delay(3, 0.25) == 1.0
    assert policy.delay(3, 0.0) == 0.0
    with pytest.raises(DomainError):
        policy.delay(1, 1.5)


def _failing(times: int, error: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "ok"

    return calls, call


def test_runner_retries_only_retryable_errors_up_to_max_attempts() -> None:
    # Given a call that fails retryably twice
    calls, call = _failing(2, RetryableExchangeError("kraken", "fetch_ohlcv", "timeout"))
    sleeps: list[float] = []
    runner = RetryRunner(
        RetryPolicy(max_attempts=3, base_delay_s=1.0), sleeps.append, lambda: 1.0, lambda: 0.0
    )

    # When run
    result = runner.run(call)

    # Then it succeeds on the third attempt after waits of 1s and 2s
    assert (result, len(calls), sleeps) == ("ok", 3, [1.0, 2.0])


def test_runner_does_not_retry_fatal_errors() -> None:
    calls, call = _failing(1, FatalExchangeError("binance", "fetch_tickers", "BadSymbol"))
    runner = RetryRunner(RetryPolicy(), lambda _: None, lambda: 1.0, lambda: 0.0)
    with pytest.raises(FatalExchangeError):
        runner.run(call)
    assert len(calls) == 1


def test_runner_stops_when_the_next_wait_would_exceed_max_total_time() -> None:
    # Given 5 s already spent and a 4 s budget
    calls, call = _failing(5, RetryableExchangeError("kucoin", "fetch_ohlcv", "503"))
    clock = iter([0.0, 5.0])
    runner = RetryRunner(
        RetryPolicy(max_attempts=10, base_delay_s=1.0, max_total_s=4.0),
        lambda _: None,
        lambda: 1.0,
        lambda: next(clock),
    )
    with pytest.raises(RetryableExchangeError):
        runner.run(call)
    assert len(calls) == 1


# ------------------------------------------------------------------ ccxt error mapping


@pytest.mark.parametrize(
    ("ccxt_error", "expected"),
    [
        (ccxt.NetworkError, RetryableExchangeError),
        (ccxt.RequestTimeout, RetryableExchangeError),
        (ccxt.DDoSProtection, RetryableExchangeError),
        (ccxt.RateLimitExceeded, RetryableExchangeError),
        (ccxt.ExchangeNotAvailable, RetryableExchangeError),
        (ccxt.OnMaintenance, RetryableExchangeError),
        (ccxt.InvalidNonce, RetryableExchangeError),
        (ccxt.BadResponse, RetryableExchangeError),
        (ccxt.NullResponse, RetryableExchangeError),
        (ccxt.BadSymbol, FatalExchangeError),
        (ccxt.BadRequest, FatalExchangeError),
        (ccxt.AuthenticationError, FatalExchangeError),
        (ccxt.PermissionDenied, FatalExchangeError),
        (ccxt.AccountSuspended, FatalExchangeError),
        (ccxt.InvalidOrder, FatalExchangeError),
        (ccxt.InsufficientFunds, FatalExchangeError),
        (ccxt.ArgumentsRequired, FatalExchangeError),
        (ccxt.ExchangeError, FatalExchangeError),
        (ccxt.NotSupported, NotSupportedByExchange),
        (ccxt.OrderNotFound, OrderNotFoundError),
    ],
)
def test_each_ccxt_exception_maps_by_its_most_specific_class(
    ccxt_error: type[ccxt.BaseError], expected: type[Exception]
) -> None:
    mapped = map_ccxt_error(ccxt_error("boom"), "binance", "fetch_ohlcv")
    assert type(mapped) is expected
    assert str(mapped).startswith(f"binance fetch_ohlcv: {ccxt_error.__name__}: boom")
    assert mapped.retryable is (expected is RetryableExchangeError)


# ------------------------------------------------------------------ payload validation


def _level(price: str, amount: str = "1") -> BookLevel:
    return BookLevel(Price.of(price), Quantity.of(amount))


def test_locked_or_crossed_books_and_unsorted_sides_are_rejected() -> None:
    with pytest.raises(InvalidPayloadError, match="crossed book"):
        OrderBook("kucoin", BTC, None, (_level("100"),), (_level("100"),))
    with pytest.raises(InvalidPayloadError, match="bids not strictly descending"):
        OrderBook("kucoin", BTC, None, (_level("99"), _level("99.5")), (_level("101"),))
    with pytest.raises(InvalidPayloadError, match="one side of the book is empty"):
        OrderBook("kucoin", BTC, None, (), (_level("101"),))
    book = OrderBook("kucoin", BTC, None, (_level("99"), _level("98")), (_level("101"),))
    assert book.mid == Decimal(100)


def test_crossed_ticker_quote_is_rejected() -> None:
    with pytest.raises(InvalidPayloadError, match="crossed quote"):
        Ticker("kraken", BTC, None, Price.of(10), Price.of(11), Price.of(10), None)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([3_600_000, "1", "2", "0.5", None, "1"], "close is missing"),
        ([3_600_000, "1", "2", "0.5", "1", "-1"], "volume must be >= 0"),
        ([3_600_000, "1", "0.9", "0.5", "1", "1"], "high/low do not bound"),
        ([3_600_001, "1", "2", "0.5", "1", "1"], "not aligned"),
        ([3_600_000, "1", "2", "0.5", "NaN", "1"], "close is not finite"),
    ],
)
def test_bad_candles_are_rejected_with_a_reason(row: list[object], reason: str) -> None:
    with pytest.raises(InvalidPayloadError, match=reason):
        validate_candle(row, "binance", 3_600_000)
