"""Which instruments are growth candidates at all, and why the others are not.

Stablecoins, wrapped and bridged representations, lending receipts (Compound cTokens, Aave
aTokens), liquid-staking derivatives, synthetic and tokenized-asset trackers all follow another
asset's price by design: they are never ranked, and each exclusion carries its reason.

For CoinGecko coins the metadata's categories decide (:func:`coin_exclusion`); where a category is
used loosely by the source (CoinGecko tags the SPX6900 meme coin ``Bridged-Tokens`` because copies
of it exist on other chains, and the treasury-backed OHM ``Crypto-Backed Tokens``) the rule asks
for corroboration by the name or the ticker's shape. For exchange pairs, where no categories exist,
the base ticker is matched against explicit lists and the receipt-ticker shape
(:func:`pair_exclusion`): a known issuer prefix on a known underlying (``CUSDC``, ``STETH``,
``WBTC``, ``TBTC``, ``SETH``, ``RETH``, ``CBETH``...) or a liquid-staking suffix (``ETHX``). The
underlyings are a short explicit list, never every ticker: ``CEL`` is not ``C`` + ``EL``, ``CRO``
not ``C`` + ``RO``, ``SNX`` not ``S`` + ``NX``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = [
    "SPOT_QUOTES",
    "STABLE_BASES",
    "WRAPPED_BASES",
    "coin_exclusion",
    "is_tradable_pair",
    "pair_exclusion",
    "receipt_ticker",
    "spot_quote",
    "usdt_rate_pair",
]

STABLE_BASES: Final = frozenset(
    {
        "USDT", "USDC", "BUSD", "TUSD", "DAI", "USDP", "PAX", "FDUSD", "GUSD", "USDD", "FRAX",
        "LUSD", "SUSD", "USTC", "UST", "EURS", "EURT", "PYUSD", "USDE", "PAXG", "XAUT", "HUSD",
        "USDK", "USDN", "VAI", "FEI",
    }
)  # fmt: skip
# Fiat currencies quoted against USD on Kraken (``EUR/USD``) and against USDT elsewhere.
FIAT_BASES: Final = frozenset({"USD", "EUR", "GBP", "AUD", "CAD", "CHF", "JPY"})
WRAPPED_BASES: Final = frozenset(
    {"WBTC", "WETH", "WBNB", "STETH", "WSTETH", "RETH", "CBETH", "BTCB", "RENBTC", "WNXM",
     "BETH", "WBETH", "HBTC"}
)  # fmt: skip

# Assets that receipts, wrappers and staking derivatives are issued on (explicit, short).
_UNDERLYING: Final = (
    "WBTC|BTC|WETH|STETH|ETH|USDC|USDT|DAI|SAI|SOL|AVAX|MATIC|BNB|DOT|ATOM|LINK|UNI|COMP|BAT|"
    "REP|APT|NEAR|FTM|XRP|KSM"
)
# Issuer prefixes: Compound c, Aave a, Lido st / wst, Synthetix s, Threshold t, wrapped w,
# Rocket Pool r, Coinbase cb, Marinade m, Binance b, StakeWise os, Swell sw, Frax frx / sfrx,
# Liquid Collective ls, Origin o, ether.fi we, Renzo ez, Kelp rs, ren, Huobi h, Jito / Ankr.
_PREFIX: Final = "WST|SFRX|FRX|ANKR|JITO|REN|CB|ST|OS|SW|LS|WE|EZ|RS|BN|C|A|S|T|W|R|M|B|O|J|H"
_RECEIPT: Final = re.compile(rf"^(?:{_PREFIX})(?:{_UNDERLYING})$|^(?:ETH|MATIC|BNB|SOL|AVAX)X$")
_BRIDGED_SUFFIX: Final = re.compile(rf"^(?:{_UNDERLYING}|USD[A-Z]?)\.[A-Z]{{1,3}}$")
_REPRESENTATION_WORDS: Final = re.compile(
    r"\b(?:bridged|bridge|wrapped|peg|staked|restaked|compound|aave|synth|tokenized)\b|-peg\b",
    re.IGNORECASE,
)

_STABLE_CATEGORIES: Final = frozenset(
    {"stablecoins", "bridged usdc", "bridged usdt", "bridged dai"}
)
_TRACKER_CATEGORIES: Final[dict[str, str]] = {
    "tokenized gold": "tokenized commodity: tracks the price of gold",
    "tokenized silver": "tokenized commodity: tracks the price of silver",
    "tokenized commodities": "tokenized commodity: tracks a commodity's price",
    "tokenized treasury bonds (t-bonds)": "tokenized bond: tracks US Treasury bonds",
    "tokenized treasury bills (t-bills)": "tokenized bond: tracks US Treasury bills",
    "compound tokens": "lending receipt (Compound cToken): a claim on a deposit of another asset",
    "ctoken": "lending receipt (Compound cToken): a claim on a deposit of another asset",
    "aave tokens": "lending receipt (Aave aToken): a claim on a deposit of another asset",
    "atoken": "lending receipt (Aave aToken): a claim on a deposit of another asset",
    "tokenized btc": "tokenized BTC: tracks bitcoin's price",
    "synthetic asset": "synthetic asset: tracks another asset's price",
    "wrapped-tokens": "wrapped token: a 1:1 claim on another asset",
}


def _clean(categories: Iterable[str]) -> list[str]:
    return [c.strip().lower() for c in categories]


def receipt_ticker(ticker: str) -> bool:
    """True for a ticker shaped like a receipt of a known asset (``CUSDC``, ``STETH``, ``ETHX``,
    ``USDC.E``); case-insensitive."""
    t = ticker.strip().upper()
    return bool(_RECEIPT.match(t) or _BRIDGED_SUFFIX.match(t))


def coin_exclusion(
    symbol: str, name: str, categories: Iterable[str], coin_id: str = ""
) -> str | None:
    """Why a CoinGecko coin is not a growth candidate (its categories, corroborated where the
    source uses them loosely), or None when it is one."""
    cats = _clean(categories)
    stable = [
        c
        for c in cats
        if c in _STABLE_CATEGORIES or c.endswith(" stablecoin") or c == "yield-bearing stablecoin"
    ]
    if stable:
        return f"stablecoin (category '{stable[0]}'): tracks a currency, not a growth asset"
    for c in cats:
        if c in _TRACKER_CATEGORIES:
            return f"{_TRACKER_CATEGORIES[c]} (category '{c}')"
    for c in cats:
        if c.endswith("staking tokens") or c.startswith("liquid staked "):
            return f"liquid-staking derivative: a claim on a staked asset (category '{c}')"
    evidence = receipt_ticker(symbol) or bool(_REPRESENTATION_WORDS.search(f"{name} {coin_id}"))
    for c in cats:
        bridged = c in {"bridged-tokens", "binance-peg tokens"} or c.startswith("bridged ")
        if bridged and evidence:
            return f"bridged representation of another chain's asset (category '{c}')"
        if c == "crypto-backed tokens" and evidence:
            return f"crypto-backed receipt: a claim on another asset (category '{c}')"
    if receipt_ticker(symbol) and _REPRESENTATION_WORDS.search(name):
        return f"receipt token: ticker {symbol.upper()} and name '{name}' name another asset"
    return None


def pair_exclusion(pair: str) -> str | None:
    """Why an exchange pair's base is not a growth candidate, or None (``SOL/USDT`` → None)."""
    base = pair.split("/", 1)[0].strip().upper()
    if base in STABLE_BASES:
        return f"stablecoin base {base}: tracks a currency, not a growth asset"
    if base in FIAT_BASES:
        return f"fiat currency base {base}: a currency, not a growth asset"
    if base in WRAPPED_BASES:
        return f"wrapped or staked base {base}: a claim on another asset"
    if receipt_ticker(base):
        return f"receipt-shaped base {base}: an issuer prefix or suffix on another asset's ticker"
    return None


def is_tradable_pair(symbol: str) -> bool:
    """False for ``USDC/USDT``, ``WBTC/USDT``, ``CUSDC/USDT`` and the like; True for other
    ``BASE/QUOTE`` pairs."""
    return pair_exclusion(symbol) is None


# The quote of each venue's liquid spot book: Kraken's is USD (ccxt's unified ``USD``, Kraken's
# own asset id ``ZUSD``); the others' USDT.
SPOT_QUOTES: Final[Mapping[str, str]] = {"kraken": "USD"}


def spot_quote(exchange: str) -> str:
    """The quote currency of ``exchange``'s liquid universe (``USD`` on Kraken, else ``USDT``)."""
    return SPOT_QUOTES.get(exchange, "USDT")


def usdt_rate_pair(exchange: str) -> str | None:
    """The venue's own market that converts its universe's quote into USDT (``USDT/USD`` on
    Kraken), ingested hourly beside its universe so the arbitrage agent can compare its USD
    prices with the other venues' USDT ones at the same hour; None when it quotes USDT."""
    quote = spot_quote(exchange)
    return None if quote == "USDT" else f"USDT/{quote}"
