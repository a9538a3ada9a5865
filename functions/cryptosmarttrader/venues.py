"""Composition of the real-order venue (``testnet`` / ``live``) for the execution function.

The paper venue stays in :mod:`cryptosmarttrader.wiring`; this module builds the ccxt venue with
the account's keys from Secrets Manager (Powertools Parameters, cached per execution
environment) after checking that the deployment may use it: ``live`` only behind a go-live run
that passed staging and canary on this stack (its records in the state table).
"""

from __future__ import annotations

from functools import cache

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, ccxt_client
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.secrets import SecretsManagerCredentials, secrets_client
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.venue import LiveGate, VenueMode, live_gate
from cryptosmarttrader.settings import AwsResources, VenueSettings

__all__ = ["VenueRefusedError", "check_live_gate", "execution_venue"]

GOLIVE_PK = "golive"  # services.golive's partition (runs, transitions, the active stage)


class VenueRefusedError(RuntimeError):
    """The deployment may not trade on the venue it is configured for; the reason says why."""


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
) -> CcxtVenue:
    """The ccxt venue for ``settings.venue_mode`` (testnet or live), or a refusal with why."""
    mode = VenueMode(settings.venue_mode)
    if mode is VenueMode.PAPER:
        raise VenueRefusedError("paper mode trades on the paper venue, not through ccxt")
    if mode is VenueMode.LIVE:
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
    return CcxtVenue(ccxt_client(exchange, mode, keys.ccxt_config()), clock, mode)
