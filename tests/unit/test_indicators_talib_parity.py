"""The project's vectorized indicators equal TA-Lib on real recorded series.

Real data: Binance spot daily and hourly candles and CoinGecko daily closes (``data_dir``). All
symbols of a timeframe are computed in one long frame (``over("symbol")``) and compared series by
series with ``talib`` on the same numbers, from TA-Lib's first defined bar on.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import talib

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain import indicators as ind

pytestmark = pytest.mark.realdata

RTOL = 1e-9
PAIRS = ["BTC/USDT", "ETH/USDT", "DOGE/USDT", "SOL/USDT", "XRP/USDT"]

Arr = npt.NDArray[np.float64]


def _ours(frame: pl.DataFrame) -> pl.DataFrame:
    c, h, lo = pl.col("close"), pl.col("high"), pl.col("low")
    macd_line, macd_signal, macd_hist = ind.macd(c, 12, 26, 9)
    upper, middle, lower = ind.bbands(c, 20, 2.0)
    frame = ind.add_rsi(frame.sort("symbol", "ts"), "close", "RSI14_STEPS", 14)
    frame = ind.add_macd(frame, "close", "MACD_STEPS", 12, 26, 9)
    return frame.with_columns(
        SMA50=ind.sma(c, 50),
        EMA20=ind.ema(c, 20),
        EMA200=ind.ema(c, 200),
        RSI14=ind.rsi(c, 14),
        MACD=macd_line,
        MACD_SIGNAL=macd_signal,
        MACD_HIST=macd_hist,
        BB_UPPER=upper,
        BB_MIDDLE=middle,
        BB_LOWER=lower,
        ATR14=ind.atr(h, lo, c, 14),
        ROC10=ind.roc(c, 10),
        STDDEV20=ind.stddev(c, 20),
    )


REFERENCE: dict[str, Callable[[Arr, Arr, Arr], Arr]] = {
    "SMA50": lambda h, lo, c: talib.SMA(c, 50),
    "EMA20": lambda h, lo, c: talib.EMA(c, 20),
    "EMA200": lambda h, lo, c: talib.EMA(c, 200),
    "RSI14": lambda h, lo, c: talib.RSI(c, 14),
    "MACD": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[0],
    "MACD_SIGNAL": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[1],
    "MACD_HIST": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[2],
    "BB_UPPER": lambda h, lo, c: talib.BBANDS(c, 20, 2.0, 2.0)[0],
    "BB_MIDDLE": lambda h, lo, c: talib.BBANDS(c, 20, 2.0, 2.0)[1],
    "BB_LOWER": lambda h, lo, c: talib.BBANDS(c, 20, 2.0, 2.0)[2],
    "ATR14": lambda h, lo, c: talib.ATR(h, lo, c, 14),
    "RSI14_STEPS": lambda h, lo, c: talib.RSI(c, 14),
    "MACD_STEPS_signal": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[1],
    "MACD_STEPS_hist": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[2],
    "ROC10": lambda h, lo, c: talib.ROC(c, 10),
    "STDDEV20": lambda h, lo, c: talib.STDDEV(c, 20, 1.0),
}


def _assert_parity(ours: pl.DataFrame, symbol: str, name: str) -> None:
    series = ours.filter(pl.col("symbol") == symbol)
    h, lo, c = (series[k].to_numpy().astype(np.float64) for k in ("high", "low", "close"))
    expected = REFERENCE[name](h, lo, c)
    got = series[name].to_numpy().astype(np.float64)
    defined = ~np.isnan(expected)
    assert defined.sum() > 100, f"{symbol} {name}: too few defined bars to compare"
    # TA-Lib shows MACD only once its signal is defined; ours shows the line from the slow EMA on
    first = int(np.argmax(defined))
    assert np.isnan(got[: first - 8 if name == "MACD" else first]).all()
    np.testing.assert_allclose(
        got[defined], expected[defined], rtol=RTOL, atol=1e-12, err_msg=f"{symbol} {name}"
    )


@pytest.fixture(scope="module")
def daily(data_dir: Path) -> pl.DataFrame:
    frame = RecordedMarketData(data_dir).ohlcv_all("1d")
    return _ours(frame.filter(pl.col("symbol").is_in(PAIRS)))


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("symbol", PAIRS)
def test_daily_binance_indicators_match_talib(daily: pl.DataFrame, symbol: str, name: str) -> None:
    # Given real daily candles of several pairs computed together in one long frame
    # Then each indicator equals TA-Lib's on that pair alone, from its first defined bar
    _assert_parity(daily, symbol, name)


def test_hourly_btc_indicators_match_talib_over_45k_bars(data_dir: Path) -> None:
    # Given the real BTC/USDT hourly series (tens of thousands of bars)
    ours = _ours(
        RecordedMarketData(data_dir).ohlcv_all("1h").filter(pl.col("symbol") == "BTC/USDT")
    )
    assert ours.height > 40_000
    # Then no indicator drifts from TA-Lib over the long recursion
    for name in REFERENCE:
        _assert_parity(ours, "BTC/USDT", name)


def test_coingecko_closes_match_talib(data_dir: Path) -> None:
    # Given CoinGecko daily closes (close only: high = low = close)
    frame = (
        RecordedMarketData(data_dir)
        .daily_all()
        .filter(pl.col("symbol").is_in(["bitcoin", "ethereum", "chainlink"]))
        .select("symbol", "ts", "close", high=pl.col("close"), low=pl.col("close"))
    )
    ours = _ours(frame)
    for symbol in ["bitcoin", "ethereum", "chainlink"]:
        for name in ("SMA50", "EMA20", "RSI14", "MACD_HIST", "BB_UPPER", "ROC10"):
            _assert_parity(ours, symbol, name)


def test_ta_lib_is_imported_without_pandas_and_answers_as_with_it() -> None:
    from tests.support.fresh_interpreter import run_fresh

    probe = (
        "import numpy as np\n"
        "{first}"
        "from cryptosmarttrader.domain.indicators import _ta, _talib\n"
        "_talib()\n"
        "without = 'pandas' not in sys.modules\n"
        "close = np.cos(np.arange(60, dtype=np.float64) / 5.0) + 10.0\n"
        "(rsi,) = _ta('RSI', close, timeperiod=14)\n"
        "import pandas\n"
        "answer = [without, float(pandas.Series([1.5, 2.0]).sum()), rsi[14:].tolist()]\n"
    )
    # Given a process computing an indicator (TA-Lib), and one that imported pandas first
    lean = run_fresh(probe.format(first=""), ("pandas",)).answer
    with_pandas = run_fresh(probe.format(first="import pandas\n"), ("pandas",)).answer
    # Then TA-Lib came without pandas, pandas still imports afterwards, and the values are
    # TA-Lib's own either way
    assert lean[0] is True and with_pandas[0] is False
    assert lean[1] == 3.5
    assert lean[2] == with_pandas[2] and len(lean[2]) == 46


def test_another_thread_imports_pandas_while_ta_lib_is_imported_without_it() -> None:
    from tests.support.fresh_interpreter import run_fresh

    # Given TA-Lib's import held open (its first step waits) while another thread imports pandas
    probe = (
        "import builtins, threading\n"
        "from cryptosmarttrader.domain import indicators\n"
        "started, other_done = threading.Event(), threading.Event()\n"
        "real_import = builtins.__import__\n"
        "def slow_import(name, *args, **kwargs):\n"
        "    if name == 'talib._ta_lib' or (name == 'talib' and threading.current_thread()\n"
        "            is threading.main_thread() and not started.is_set()):\n"
        "        started.set(); other_done.wait(60)\n"
        "    return real_import(name, *args, **kwargs)\n"
        "builtins.__import__ = slow_import\n"
        "seen = {}\n"
        "def other():\n"
        "    started.wait(60)\n"
        "    try:\n"
        "        import pandas\n"
        "        seen['other'] = float(pandas.Series([1.5, 2.0]).sum())\n"
        "    except ImportError as exc:\n"
        "        seen['other'] = repr(exc)\n"
        "    other_done.set()\n"
        "worker = threading.Thread(target=other); worker.start()\n"
        "talib = indicators._talib()\n"
        "worker.join(60); builtins.__import__ = real_import\n"
        "answer = [seen.get('other'), started.is_set(),\n"
        "          [type(f).__name__ for f in sys.meta_path].count('_NoPandasOnThisThread')]\n"
    )
    other, overlapped, finders_left = run_fresh(probe, ("pandas",)).answer
    # Then that thread got pandas itself, and the refusal is gone once TA-Lib is imported
    assert overlapped is True
    assert other == 3.5
    assert finders_left == 0
