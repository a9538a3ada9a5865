"""Point-in-time membership: which snapshot a decision day may use, unpriced members, and a
delisted member counted as a miss valued at -100 %."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.pit_universe import PIT_SCHEMA, members_on
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.services.skill_evaluation import SkillConfig, _outcomes

JAN, FEB = 18_262, 18_293  # 2020-01-01, 2020-02-01 (days since epoch)


def _pit() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "snapshot_day": [JAN, JAN, JAN, FEB, FEB],
            "cmc_rank": [1, 2, 3, 1, 2],
            "cmc_symbol": ["BTC", "LUNA", "XYZ", "BTC", "NEW"],
            "market_cap_usd": [1e11, 1e9, 1e8, 1e11, 2e9],
            "volume_24h_usd": [1e10, 1e8, 1e6, 1e10, 1e8],
            "coingecko_id": ["bitcoin", "terra-luna", None, "bitcoin", "newcoin"],
        },
        schema=PIT_SCHEMA,
    )


def test_a_snapshot_is_usable_from_the_day_after_its_date() -> None:
    # A snapshot dated D was taken at the end of D: not usable on D, usable on D + 1
    out = members_on(_pit(), [JAN, JAN + 1, FEB, FEB + 1], top_n=200)
    assert sorted(out["day"].unique().to_list()) == [JAN + 1, FEB, FEB + 1]
    on_feb_first = out.filter(pl.col("day") == FEB)
    assert on_feb_first["snapshot_day"].unique().to_list() == [JAN]  # still January's list
    assert set(out.filter(pl.col("day") == FEB + 1)["member"]) == {"bitcoin", "newcoin"}


def test_unpriced_members_stay_members_and_top_n_cuts_by_rank() -> None:
    out = members_on(_pit(), [JAN + 1], top_n=3)
    assert out["member"].to_list() == ["bitcoin", "terra-luna", "cmc:XYZ"]
    assert out["coingecko_id"].to_list() == ["bitcoin", "terra-luna", None]
    assert members_on(_pit(), [JAN + 1], top_n=2).height == 2


def test_a_member_whose_prices_stop_is_a_miss_valued_at_minus_100_percent() -> None:
    # Given a coin whose series ends 10 days after the decision while the data runs on,
    # and a coin that doubles and holds it
    d0 = 19_000
    days_dead = list(range(d0 - 5, d0 + 11))
    days_live = list(range(d0 - 5, d0 + 200))
    frame = pl.DataFrame(
        {
            "symbol": ["dead"] * len(days_dead) + ["live"] * len(days_live),
            "ts": [d * DAY_MS for d in days_dead + days_live],
            "close": [1.0] * len(days_dead) + [1.0 if d <= d0 + 3 else 2.5 for d in days_live],
            "volume": [1e6] * (len(days_dead) + len(days_live)),
            "market_cap": [1e8] * (len(days_dead) + len(days_live)),
        }
    )
    cut = cut_series(frame).frame
    rows = pl.DataFrame({"day": [d0, d0], "symbol": ["dead", "live"]})
    cfg = SkillConfig(train_end=date(2021, 6, 30), start=date(2021, 7, 8), end=date(2023, 6, 30))
    out, _, _ = _outcomes(cut, rows, cfg, data_last_day=d0 + 199)
    dead = out.filter(pl.col("symbol") == "dead").row(0, named=True)
    live = out.filter(pl.col("symbol") == "live").row(0, named=True)
    # Then the dead coin is a miss at -100 %, the live one took profit
    assert (dead["hit"], dead["trade_ret"], dead["exit_reason"]) == (0.0, -1.0, "delisted")
    assert live["hit"] == 1.0 and live["trade_ret"] == pytest.approx(1.5)
