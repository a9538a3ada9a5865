"""`cst execute`: one execution cycle over the embedded local AWS (what the hourly Lambda runs).

``--venue paper`` (default) fills on the recorded bars; ``--venue testnet`` sends real signed
orders to the exchange's sandbox (ccxt sandbox mode; Binance spot only: KuCoin and Kraken spot
have none, refused with the reason); ``--venue live`` sends real orders with real money after a
typed confirmation. The keys of a real venue come from ``--keys-file`` (a JSON file readable by
its owner only) or from ``CST_VENUE_API_KEY`` / ``CST_VENUE_API_SECRET`` (and
``CST_VENUE_API_PASSWORD`` for KuCoin); they are held as ``SecretStr``, never printed, and no
error message carries them. The cycle is the deployed one (``wiring.trading_cycle``): the same
RiskGuard, kill-switch, client order IDs, reconciliation and balance check.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from cryptosmarttrader.cli._common import ExchangeOption, KeysFileOption, fail, state_dir
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue
    from cryptosmarttrader.adapters.secrets import ExchangeCredentials
    from cryptosmarttrader.domain.clock import Clock
    from cryptosmarttrader.services.trading_cycle import CycleReport

VENUES: Final = ("paper", "testnet", "live")
EXCHANGES: Final = ("binance", "kraken", "kucoin")
KEY_ENV: Final = "CST_VENUE_API_KEY"
SECRET_ENV: Final = "CST_VENUE_API_SECRET"  # noqa: S105 - a variable name
PASSWORD_ENV: Final = "CST_VENUE_API_PASSWORD"  # noqa: S105 - a variable name
LIVE_CONFIRM_ENV: Final = "CST_LIVE_CONFIRM"
EQUITY_ENV: Final = "CST_EQUITY_USD"
NOTHING_SENT: Final = "nothing was sent"


def execute(
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Run the cycle as of this past UTC instant (ISO 8601, e.g. "
            "2022-09-29T02:10:00Z); default now.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the cycle report as JSON.")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."
        ),
    ] = None,
    venue: Annotated[
        str,
        typer.Option(
            "--venue",
            help="Where orders go: paper (default, recorded bars), testnet (the exchange's "
            "sandbox, real signed orders) or live (real money: asks for a typed confirmation).",
        ),
    ] = "paper",
    exchange: ExchangeOption = None,
    keys_file: KeysFileOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help=f"live without a terminal (cron, CI): confirms only together with "
            f"{LIVE_CONFIRM_ENV}='live EXCHANGE'; at a terminal the typed confirmation is asked.",
        ),
    ] = False,
) -> None:
    """Send the recorded decisions through the RiskGuard to the venue, book what filled, value
    the book and move the risk level: the hourly execution Lambda, locally.

    Run it after `cst scan` with --at a little after the scan's date: the paper venue fills each
    order on the first recorded hourly bar opening after it was sent, once --at has reached it.
    A testnet or live venue trades now (no --at) the capital CST_EQUITY_USD names.
    """
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.domain.clock import FixedClock
    from cryptosmarttrader.settings import AwsResources, TradingSettings
    from cryptosmarttrader.wiring import resolve_data_dir, trading_cycle
    from cst_devtools.local_aws import embedded_aws

    if venue not in VENUES:
        fail(f"--venue must be one of {', '.join(VENUES)}, got {venue!r}")
    chosen = exchange if exchange is not None else os.environ.get("CST_EXCHANGE", "binance")
    if chosen not in EXCHANGES:
        fail(f"--exchange (or CST_EXCHANGE) must be one of {', '.join(EXCHANGES)}, got {chosen!r}")
    clock: Clock = SystemClock()
    real: CcxtVenue | None = None
    if venue != "paper":
        real = real_venue(venue, chosen, at, keys_file, yes, clock)
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at must be an ISO 8601 instant like 2022-09-29T02:10:00Z, got {at!r}")
        if when.tzinfo is None:
            fail(f"--at needs a UTC offset (e.g. a trailing Z), got {at!r}")
        if when > datetime.now(UTC):
            fail(f"--at {at} is in the future: only past instants replay")
        clock = FixedClock(when.astimezone(UTC))
    try:
        settings = TradingSettings(exchange=chosen)
        resources = AwsResources()
        market = RecordedMarketData(resolve_data_dir(data))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    with embedded_aws(state_dir(state), resources) as aws:
        cycle = trading_cycle(
            market,
            clock,
            aws.clients,
            resources,
            settings,
            InMemoryMetrics(),
            real_venue=real,
            paper=real is None,  # --venue paper is the paper venue, whatever CST_VENUE_MODE says
        )
        try:
            report = cycle.run()
        except ValueError as exc:  # DomainError: e.g. a replay before the stored risk state
            fail(_first_line(exc))
    _print(report, as_json, venue if real is None else f"{venue} ({chosen})")


def _first_line(exc: BaseException) -> str:
    """An error's first line, sanitized (a ccxt message can carry a signed query string)."""
    from cryptosmarttrader.domain.sanitize import sanitize_text

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return sanitize_text(text)


def real_venue(
    venue: str,
    exchange: str,
    at: str | None,
    keys_file: Path | None,
    yes: bool,
    clock: Clock,
    *,
    cancels_only: bool = False,
) -> CcxtVenue:
    """The ccxt venue of ``--venue testnet|live``, after every check; a one-line refusal
    (nothing sent) otherwise. Order: what the venue supports, the keys, the capital, then
    (live) the operator's confirmation; only then is a client built.

    ``cancels_only``: the venue of `cst golive rollback`, which only cancels the ledger's open
    orders (by their client order IDs) and looks orders up, as the deployed rollback's venue
    (``venues.execution_venue(cancels_only=True)``): no capital is traded, so neither
    ``CST_EQUITY_USD`` nor the live confirmation is asked; the keys and (live) their
    permissions are checked the same way."""
    from cryptosmarttrader.domain.exchange import ExchangeId
    from cryptosmarttrader.domain.venue import VenueMode, sandbox_support

    if venue == "testnet":
        support = sandbox_support(ExchangeId(exchange))
        if not support.available:
            fail(f"--venue testnet is refused for {exchange}: {support.note}; {NOTHING_SENT}")
    if at is not None:
        fail(
            f"--at replays past instants on the paper venue only: a {venue} venue trades now "
            "(drop --at)"
        )
    keys = _keys(keys_file)
    if keys is None:
        fail(
            f"--venue {venue} needs the {exchange} account's API keys: --keys-file PATH (JSON "
            f"api_key, secret) or {KEY_ENV} and {SECRET_ENV}; {NOTHING_SENT}"
        )
    if exchange == "kucoin" and keys.password is None:
        fail(f"KuCoin keys need their passphrase (password, or {PASSWORD_ENV}); {NOTHING_SENT}")
    if not cancels_only and not os.environ.get(EQUITY_ENV):
        fail(
            f"--venue {venue} trades the capital you name: set {EQUITY_ENV} (e.g. 1000, no "
            "more than the account holds for the product; every cycle reconciles the account "
            f"with the ledger); {NOTHING_SENT}"
        )
    if venue == "live" and not cancels_only:
        _confirm_live(exchange, yes)
    from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, ccxt_client
    from cryptosmarttrader.domain.exchange import ExchangeError

    mode = VenueMode(venue)
    try:
        real = CcxtVenue(ccxt_client(exchange, mode, keys.ccxt_config()), clock, mode)
    except (ExchangeError, ValueError) as exc:
        fail(f"{venue} venue on {exchange} unavailable: {_first_line(exc)}; {NOTHING_SENT}")
    if mode is VenueMode.LIVE:  # what the key may do, before its first signed balance read
        from cryptosmarttrader.adapters.key_permissions import KeyPermissionChecks, KeyRefusedError
        from cryptosmarttrader.venues import verify_trading_keys

        try:
            verify_trading_keys(real, exchange, KeyPermissionChecks(clock))
        except KeyRefusedError as exc:
            fail(f"{_first_line(exc)}; {NOTHING_SENT}")
    try:  # one signed read first: keys the venue refuses stop here, before any order
        real.fetch_balances()
    except ExchangeError as exc:
        fail(
            f"the {exchange} {venue} account could not be read with these keys: "
            f"{_first_line(exc)}; no order was sent"
        )
    return real


def _keys(keys_file: Path | None) -> ExchangeCredentials | None:
    """The account's keys: ``--keys-file`` when given, else the environment; None when neither
    names any. Errors name the file, the variable or the field, never a value."""
    from pydantic import ValidationError

    from cryptosmarttrader.adapters.secrets import ExchangeCredentials

    if keys_file is not None:
        raw = _read_keys_file(keys_file)
        where = f"--keys-file {keys_file}"
    else:
        key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
        if not key and not secret:
            return None
        if not key or not secret:
            missing = KEY_ENV if not key else SECRET_ENV
            fail(f"{missing} is not set (both {KEY_ENV} and {SECRET_ENV} are needed)")
        raw = {"api_key": key, "secret": secret}
        if os.environ.get(PASSWORD_ENV):
            raw["password"] = os.environ[PASSWORD_ENV]
        where = "the environment"
    try:
        return ExchangeCredentials.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "value" for e in exc.errors()})
        fail(f"keys from {where} malformed: fields {fields} (expected api_key, secret[, password])")


def _read_keys_file(path: Path) -> object:
    try:
        info = path.stat()
    except OSError as exc:
        fail(f"--keys-file {path}: {exc.strerror or 'not readable'}")
    if not stat.S_ISREG(info.st_mode):
        fail(f"--keys-file {path} is not a regular file")
    if info.st_mode & 0o077:
        fail(
            f"--keys-file {path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o}): "
            f"chmod 600 {path}"
        )
    try:
        raw: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError):
        fail(f"--keys-file {path} is not a JSON object with api_key and secret")
    if not isinstance(raw, dict):
        fail(f"--keys-file {path} is not a JSON object with api_key and secret")
    return raw


def _interactive() -> bool:
    """Whether a person can answer a prompt: stdin is a terminal."""
    return sys.stdin.isatty()


def _confirm_live(exchange: str, yes: bool) -> None:
    """Real money needs an explicit confirmation naming the exchange: typed at a terminal
    (``--yes`` does not skip it there); without a terminal, ``--yes`` together with
    ``CST_LIVE_CONFIRM='live <exchange>'``, so neither a copied command line nor a stray
    variable alone sends real orders."""
    phrase = f"live {exchange}"
    if _interactive():
        typed = typer.prompt(
            f'Real orders with real money on {exchange}. Type "{phrase}" to go on',
            default="",
            show_default=False,
            err=True,
        )
        if typed.strip() != phrase:
            fail(f'live trading not confirmed (expected "{phrase}"); {NOTHING_SENT}')
        return
    if not yes:
        fail(
            "--venue live without a terminal needs --yes and "
            f"{LIVE_CONFIRM_ENV}='{phrase}' (no one can type the confirmation); {NOTHING_SENT}"
        )
    if os.environ.get(LIVE_CONFIRM_ENV) != phrase:
        fail(
            f"--yes without a terminal also needs {LIVE_CONFIRM_ENV}='{phrase}' (the exchange "
            f"this run may trade real money on); {NOTHING_SENT}"
        )


def _print(report: CycleReport, as_json: bool, venue: str) -> None:
    if as_json:
        typer.echo(jsonout.dumps(report.model_dump(mode="json"), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    equity = "unknown" if report.equity is None else f"{report.equity:,.2f}"
    cash = "unknown" if report.cash is None else f"{report.cash:,.2f}"
    console = Console()
    console.print(
        f"execution cycle at {report.at:%Y-%m-%d %H:%M} UTC on the {venue} venue: sent "
        f"{report.dispatched}, refused "
        f"{report.cancelled_new}, updated {report.updated}, expired {report.expired}, "
        f"flattened {report.flattened}"
    )
    console.print(
        f"equity {equity} USD, cash {cash}, fees {report.fees:,.2f}, risk level "
        f"{report.risk_level}" + (f" ({report.risk_transition})" if report.risk_transition else "")
    )
    for record in report.unreadable_records:  # why the equity (or the cash) is unknown
        console.print(f"stored {record}", style="bold yellow", markup=False)
    for record in report.sweep_unreadable:  # not cancelled by the kill-switch sweep
        console.print(
            f"kill-switch sweep could not cancel the open {record}: it may still rest on the venue",
            style="bold yellow",
            markup=False,
        )
    if report.market_data:
        style = "" if report.market_data_fresh else "bold yellow"
        console.print(f"market data: {report.market_data}", style=style, markup=False)
    table = Table("position", "quantity")
    for symbol, quantity in sorted(report.positions.items()):
        table.add_row(symbol, f"{quantity:g}")
    console.print(table)
