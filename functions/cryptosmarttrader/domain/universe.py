"""Which instruments are growth candidates at all.

Stablecoins and wrapped tokens track another asset by design, so they are never ranked. For
CoinGecko coins the metadata's categories decide (adapters.recorded_data.CoinMeta); for exchange
pairs, where no categories exist, the base asset's ticker is matched against these lists.
"""

from __future__ import annotations

from typing import Final

STABLE_BASES: Final = frozenset(
    {
        "USDT", "USDC", "BUSD", "TUSD", "DAI", "USDP", "PAX", "FDUSD", "GUSD", "USDD", "FRAX",
        "LUSD", "SUSD", "USTC", "UST", "EURS", "EURT", "PYUSD", "USDE", "PAXG", "XAUT",
    }
)  # fmt: skip
WRAPPED_BASES: Final = frozenset(
    {"WBTC", "WETH", "WBNB", "STETH", "WSTETH", "RETH", "CBETH", "BTCB"}
)


def is_tradable_pair(symbol: str) -> bool:
    """False for ``USDC/USDT``, ``WBTC/USDT`` and the like; True for other ``BASE/QUOTE`` pairs."""
    base = symbol.split("/", 1)[0].upper()
    return base not in STABLE_BASES and base not in WRAPPED_BASES
