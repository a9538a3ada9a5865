"""The TA-Lib path gives the reference definition's values on every real series.

``domain/indicators.py`` computes regular series with TA-Lib and keeps the original polars
expressions as the definition (``Indicator.reference``). Here both run over whole real universes
in one long frame each — every CoinGecko coin (stale ticks, flat stretches, zero and missing
volumes, prices down to 1e-9) and every Binance daily pair with its highs and lows — and every
output column must match: the same nulls, values equal to 1e-9.
"""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain import indicators as ind
from cryptosmarttrader.domain.agents.technical import INDICATORS

pytestmark = pytest.mark.realdata

TECHNICAL = list(INDICATORS)  # what the technical agent computes
OTHERS = [
    ind.Ema("close", 20, "ema20"),
    ind.Bbands("close", 20, 2.0),
    ind.Stddev("close", 20, "sd"),
]


# TA-Lib's windows are running sums: exact to 1e-9 of the series' own price scale (a band width
# or a MACD crossing zero has no meaningful relative error)
SCALED = {"macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower", "sd"}


def _assert_matches_reference(frame: pl.DataFrame, specs: list[ind.Indicator]) -> None:
    fast = ind.add_indicators(frame, *specs)
    reference = frame.with_columns(e for s in specs for e in s.reference("symbol"))
    scale = frame.select(pl.col("close").abs().max().over("symbol"))["close"].to_numpy()
    for name in (n for s in specs for n in s.outputs):
        got, expected = fast[name], reference[name]
        assert (got.is_null() == expected.is_null()).all(), f"{name}: nulls differ"
        g = got.to_numpy().astype(np.float64)
        e = expected.to_numpy().astype(np.float64)
        defined = ~np.isnan(e)
        assert defined.sum() > 10_000, name
        if name in SCALED:
            error = np.abs(g[defined] - e[defined]) / scale[defined]
            assert error.max() < 1e-9, f"{name}: {error.max():.2e} of the price scale"
        else:
            np.testing.assert_allclose(g[defined], e[defined], rtol=1e-9, atol=0.0, err_msg=name)


def test_every_coingecko_coin_matches_the_reference(data_dir: Path) -> None:
    # Given every CoinGecko daily series in one long frame (572 coins)
    frame = RecordedMarketData(data_dir).daily_all()
    assert frame["symbol"].n_unique() > 500
    # Then what the technical agent computes (and the EMA) equals the reference definition
    _assert_matches_reference(frame, [*TECHNICAL, OTHERS[0]])


def test_every_binance_daily_pair_matches_the_reference(data_dir: Path) -> None:
    frame = RecordedMarketData(data_dir).ohlcv_all("1d").sort("symbol", "ts")
    _assert_matches_reference(frame, [*TECHNICAL, *OTHERS, ind.Atr(period=14)])
