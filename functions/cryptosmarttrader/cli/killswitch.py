"""`cst killswitch on|off|status` and `cst killswitch level`: the operator's brakes.

The switch is the SSM parameter of the resource contract, on the embedded local AWS (state in
``--state-dir``, CST_STATE_DIR or ``.cst``) or on the endpoint in AWS_ENDPOINT_URL. Every change
needs a reason and records who made it. ``level`` is the human action on the RiskGuard level —
the only way out of SHUTDOWN.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, state_dir
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cryptosmarttrader.adapters.local_aws import LocalAws
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.services.risk_state import RiskStateService

# boto3, moto and the risk domain are imported inside the commands (fast `cst --help`).

app = typer.Typer(
    name="killswitch",
    help="Kill-switch (stops every order, cancels open ones) and the RiskGuard level.",
    no_args_is_help=True,
    add_completion=False,
)

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required, recorded).")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who acts (default: the OS user name).")
]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _actor(actor: str | None) -> str:
    name = (actor or getpass.getuser() or "").strip()
    if not name:
        fail("--actor is required (no OS user name found)")
    return name


def _services(aws: LocalAws) -> tuple[SsmKillSwitch, RiskStateService]:
    from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.services.risk_state import RiskStateService

    clock = SystemClock()
    res = aws.resources
    switch = SsmKillSwitch(res.kill_switch_param, aws.ssm, clock, cache_seconds=0)
    risk = RiskStateService(DynamoStateStore(res.state_table, aws.dynamodb), switch, clock)
    return switch, risk


def _status_payload(aws: LocalAws) -> dict[str, dict[str, object]]:
    switch, risk = _services(aws)
    status = switch.status()
    state = risk.load()
    return {
        "kill_switch": {
            "on": status.on,
            "reason": status.reason,
            "actor": status.actor,
            "at": status.at.isoformat(),
        },
        "risk_level": {
            "level": state.level.name,
            "since": state.since.isoformat(),
            "reason": state.reason,
        },
    }


def _print(payload: dict[str, dict[str, object]], as_json: bool) -> None:
    if as_json:
        typer.echo(jsonout.dumps(payload, indent=1))
        return
    ks = payload["kill_switch"]
    lvl = payload["risk_level"]
    state = "ON  (no order leaves)" if ks["on"] else "off"
    typer.echo(f"kill-switch: {state} — {ks['reason']} (by {ks['actor']} at {ks['at']})")
    typer.echo(f"risk level:  {lvl['level']} since {lvl['since']} — {lvl['reason']}")


def _set(on: bool, reason: str, actor: str | None, state: Path | None, as_json: bool) -> None:
    if not reason.strip():
        fail("--reason must not be empty")
    who = _actor(actor)
    from cryptosmarttrader.adapters.local_aws import embedded_aws
    from cryptosmarttrader.settings import AwsResources

    with embedded_aws(state_dir(state), AwsResources(), lake=False) as aws:
        switch, _ = _services(aws)
        switch.set(on, reason, who)
        payload = _status_payload(aws)
    _print(payload, as_json)


@app.command("on")
def on(
    reason: ReasonOpt, actor: ActorOpt = None, state: StateOpt = None, as_json: JsonOpt = False
) -> None:
    """Turn the kill-switch ON: no order leaves; executions cancel open orders."""
    _set(True, reason, actor, state, as_json)


@app.command("off")
def off(
    reason: ReasonOpt, actor: ActorOpt = None, state: StateOpt = None, as_json: JsonOpt = False
) -> None:
    """Turn the kill-switch off (the RiskGuard level still applies)."""
    _set(False, reason, actor, state, as_json)


@app.command("status")
def status(state: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Show the kill-switch and the RiskGuard level, each with its reason."""
    from cryptosmarttrader.adapters.local_aws import embedded_aws
    from cryptosmarttrader.settings import AwsResources

    with embedded_aws(state_dir(state), AwsResources(), lake=False) as aws:
        payload = _status_payload(aws)
    _print(payload, as_json)


@app.command("level")
def level(
    to: Annotated[
        str, typer.Option("--to", help="NORMAL, CONSERVATIVE, DEFENSIVE, EMERGENCY or SHUTDOWN.")
    ],
    reason: ReasonOpt,
    actor: ActorOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the RiskGuard level by hand (recorded with actor and reason; leaves SHUTDOWN)."""
    from cryptosmarttrader.adapters.local_aws import embedded_aws
    from cryptosmarttrader.domain.risk import RiskLevel
    from cryptosmarttrader.domain.types import DomainError
    from cryptosmarttrader.settings import AwsResources

    try:
        target = RiskLevel[to.strip().upper()]
    except KeyError:
        fail(f"--to must be one of {', '.join(lv.name for lv in RiskLevel)}, got {to!r}")
    who = _actor(actor)
    with embedded_aws(state_dir(state), AwsResources(), lake=False) as aws:
        _, risk = _services(aws)
        if risk.load().level is target:  # setting what holds changes nothing: not an error
            typer.echo(f"risk level is already {target.name}: nothing recorded", err=True)
        else:
            try:
                risk.override(target, who, reason)
            except DomainError as exc:
                fail(str(exc))
        payload = _status_payload(aws)
    _print(payload, as_json)
