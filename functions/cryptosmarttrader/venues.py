"""Composition of the real-order venue (``testnet`` / ``live``) for the execution function.

The paper venue stays in :mod:`cryptosmarttrader.wiring`; this module builds the ccxt venue with
the account's keys from Secrets Manager (Powertools Parameters, cached per execution
environment) after checking that the deployment may use it: ``live`` only behind a go-live run
that passed staging and canary on this stack (its records in the state table), and on Binance
live only with a key that trades spot and can neither withdraw nor transfer (asked of the venue,
``adapters/key_permissions``, cached per key; the spot testnet has no endpoint for it: skipped
there with a logged note).
"""

from __future__ import annotations

import logging
from functools import cache

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, ccxt_client
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.key_permissions import (
    KeyPermissionChecks,
    KeyPurpose,
    KeyRefusedError,
    unchecked_note,
)
from cryptosmarttrader.adapters.secrets import SecretsManagerCredentials, secrets_client
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import ExchangeId
from cryptosmarttrader.domain.venue import LiveGate, VenueMode, live_gate
from cryptosmarttrader.settings import AwsResources, VenueSettings

__all__ = [
    "VenueKeysRefusedError",
    "VenueRefusedError",
    "check_live_gate",
    "execution_venue",
    "key_checks",
    "verify_trading_keys",
]

_log = logging.getLogger(__name__)

GOLIVE_PK = "golive"  # services.golive's partition (runs, transitions, the active stage)


class VenueRefusedError(RuntimeError):
    """The deployment may not trade on the venue it is configured for; the reason says why."""


class VenueKeysRefusedError(VenueRefusedError, KeyRefusedError):
    """The account's keys may withdraw or transfer, cannot trade spot, or their permissions
    could not be read: nothing is sent with them."""


@cache
def key_checks() -> KeyPermissionChecks:
    """One permission cache per execution environment (a rotated key is a new entry)."""
    return KeyPermissionChecks(SystemClock())


def verify_trading_keys(
    venue: CcxtVenue, exchange: str, checks: KeyPermissionChecks | None = None
) -> str | None:
    """Refuses (:class:`VenueKeysRefusedError`) a Binance live key that may withdraw or
    transfer or cannot trade spot; answers the note of a venue where it is not checked."""
    if venue.mode is not VenueMode.LIVE or exchange != ExchangeId.BINANCE.value:
        note = unchecked_note(exchange, testnet=venue.mode is VenueMode.TESTNET)
        _log.info(note)
        return note
    refusal = venue.key_refusal(checks or key_checks(), KeyPurpose.TRADING)
    if refusal is not None:
        raise VenueKeysRefusedError(f"{exchange} live: {refusal}")
    return None


@cache
def _credentials(region: str, endpoint: str | None, max_age: int) -> SecretsManagerCredentials:
    """One credentials reader per execution environment: its cache outlives an invocation."""
    resources = AwsResources(region=region, aws_endpoint_url=endpoint)
    return SecretsManagerCredentials(secrets_client(resources), max_age_seconds=max_age)


def check_live_gate(settings: VenueSettings, state: DynamoStateStore) -> LiveGate:
    run_id = settings.live_golive_run
    run = None if run_id is None else state.get(GOLIVE_PK, f"run#{run_id}")
    prefix = f"run#{run_id}#transition#"
    transitions = (
        []
        if run_id is None
        else [i for i in state.query(GOLIVE_PK) if str(i.get("sk", "")).startswith(prefix)]
    )
    return live_gate(run_id, run, transitions, state.get(GOLIVE_PK, "active"))


def execution_venue(
    settings: VenueSettings,
    exchange: str,
    clock: Clock,
    state: DynamoStateStore,
    resources: AwsResources,
    *,
    cancels_only: bool = False,
) -> CcxtVenue:
    """The ccxt venue for ``settings.venue_mode`` (testnet or live), or a refusal with why.

    ``cancels_only``: the venue of the go-live rollback's sweep, which only cancels and looks
    orders up. The live gate guards placing orders; a rollback (the run no longer production)
    must still cancel what rests on the account, so it is not asked."""
    mode = VenueMode(settings.venue_mode)
    if mode is VenueMode.PAPER:
        raise VenueRefusedError("paper mode trades on the paper venue, not through ccxt")
    if mode is VenueMode.LIVE and not cancels_only:
        gate = check_live_gate(settings, state)
        if not gate.allowed:
            raise VenueRefusedError(f"live trading refused: {gate.reason}")
    if settings.exchange_secret is None:
        raise VenueRefusedError(
            f"{mode} trading needs CST_EXCHANGE_SECRET: the name of the Secrets Manager secret "
            "holding the exchange account's keys"
        )
    reader = _credentials(
        resources.region, resources.aws_endpoint_url, settings.credentials_max_age
    )
    keys = reader.get(settings.exchange_secret)
    venue = CcxtVenue(ccxt_client(exchange, mode, keys.ccxt_config()), clock, mode)
    verify_trading_keys(venue, exchange)  # before any order: a key that could withdraw is refused
    return venue
