"""`cst killswitch on|off|status` and `cst killswitch level`: the operator's brakes.

The switch is the SSM parameter of the resource contract, on the embedded local AWS (state in
``--state-dir``, CST_STATE_DIR or ``.cst``) or on the endpoint in AWS_ENDPOINT_URL. Every change
needs a printable reason (no control or formatting character, see ``domain.killswitch``) and is
written to the audit trail BEFORE the switch or the level moves (``killswitch.on`` /
``killswitch.off`` / ``risk.override``, with the OS user beside the ``--actor`` it names; a
failed write appends a ``...failed`` entry). ``level`` is the human action on the RiskGuard level
— the only way out of SHUTDOWN. ``status`` shows stored text with control characters escaped,
so a value written around these checks cannot rewrite the terminal.
"""

from __future__ import annotations

import getpass
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, state_dir
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.killswitch import (
    MAX_ACTOR_CHARS,
    SYSTEM_ACTOR_PREFIX,
    check_reason,
    check_text,
    escape_controls,
)
from cryptosmarttrader.domain.types import DomainError

if TYPE_CHECKING:
    from cryptosmarttrader.adapters.killswitch_value import KillSwitchStatus
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.domain.risk import RiskState
    from cryptosmarttrader.services.risk_state import RiskStateService
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import LocalAws

# boto3, moto and the risk services are imported inside the commands (fast `cst --help`).

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


def _os_user() -> str:
    try:
        return getpass.getuser()
    except OSError:  # no login name in the environment (some containers)
        return ""


def _actor(actor: str | None) -> str:
    name = (actor or _os_user() or "").strip()
    if not name:
        fail("--actor is required (no OS user name found)")
    if name.lower().startswith(SYSTEM_ACTOR_PREFIX):
        # the system's own writers (system:golive, system:riskguard...): an operator acting
        # under one could pass for it (e.g. a go-live rollback's switch, domain.golive)
        fail(f"--actor {name!r}: the {SYSTEM_ACTOR_PREFIX} prefix names the system's writers")
    try:
        return check_text("--actor", name, MAX_ACTOR_CHARS)
    except DomainError as exc:
        fail(str(exc))


def _reason(reason: str) -> str:
    try:
        return check_reason(reason, "--reason")
    except DomainError as exc:
        fail(str(exc))


def _audit(aws: LocalAws, actor: str, action: str, request_id: str, **details: object) -> None:
    from cryptosmarttrader.adapters.audit import DynamoAuditTrail
    from cryptosmarttrader.adapters.system_clock import SystemClock

    DynamoAuditTrail(aws.resources.state_table, aws.dynamodb).record(
        actor=actor,
        action=action,
        at=SystemClock().now(),
        request_id=request_id,
        details={"via": "cli", "os_user": _os_user() or None, **details},
    )


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
    return _payload(switch.status(), risk.load())


def _payload(status: KillSwitchStatus, state: RiskState) -> dict[str, dict[str, object]]:
    return {
        "kill_switch": {
            "on": status.on,
            "reason": status.reason,
            "actor": status.actor,
            "at": status.at.isoformat(),
            "golive_rollback": status.golive_rollback,
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
    reason, actor = escape_controls(str(ks["reason"])), escape_controls(str(ks["actor"]))
    typer.echo(f"kill-switch: {state} — {reason} (by {actor} at {ks['at']})")
    if ks.get("golive_rollback"):
        run = escape_controls(str(ks["golive_rollback"]))
        typer.echo(
            f"             go-live rollback of run {run}: held positions keep their protective sells"
        )
    typer.echo(
        f"risk level:  {lvl['level']} since {lvl['since']} — {escape_controls(str(lvl['reason']))}"
    )


def _set(on: bool, reason: str, actor: str | None, state: Path | None, as_json: bool) -> None:
    why = _reason(reason)
    who = _actor(actor)
    action = "killswitch.on" if on else "killswitch.off"
    request_id = f"cli-{uuid.uuid4().hex}"
    from botocore.exceptions import BotoCoreError, ClientError

    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    with embedded_aws(state_dir(state), AwsResources(), lake=False) as aws:
        switch, _ = _services(aws)
        before = switch.status()
        _audit(aws, who, action, request_id, reason=why, previous_on=before.on, on=on)
        try:
            switch.set(on, why, who)
        except (ClientError, BotoCoreError) as exc:
            _audit(aws, who, f"{action}.failed", f"{request_id}-failed", error=str(exc))
            fail(f"the kill-switch was not changed: {str(exc).splitlines()[0]}", code=1)
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
    from cryptosmarttrader.adapters.local_snapshot import SnapshotError, snapshot_is_current
    from cryptosmarttrader.settings import AwsResources

    resources = AwsResources()
    directory = state_dir(state)
    if not resources.aws_endpoint_url:
        # the embedded local AWS: the saved state answers without starting moto when it is the
        # state (nobody holds it, or `cst api serve` does, which saves after every write);
        # while another command runs it may have changed the switch: wait for it instead
        payload = None
        with snapshot_is_current(directory) as current:
            if current:
                try:
                    payload = _saved_status_payload(directory, resources)
                except SnapshotError as exc:
                    fail(str(exc))
        if payload is not None:
            _print(payload, as_json)
            return
        if not current:
            typer.echo(
                "another cst command holds the local state and may change the switch: "
                "waiting for it to finish",
                err=True,
            )
    from cst_devtools.local_aws import embedded_aws

    with embedded_aws(directory, resources, lake=False) as aws:
        payload = _status_payload(aws)
    _print(payload, as_json)


def _saved_status_payload(
    directory: Path, resources: AwsResources
) -> dict[str, dict[str, object]] | None:
    """The status from the saved local state; None when nothing was saved there yet, or the
    risk item must be rebuilt from its log (the full path does that)."""
    from datetime import UTC, datetime

    from cryptosmarttrader.adapters.killswitch_value import parse_switch_value
    from cryptosmarttrader.adapters.local_snapshot import SnapshotError
    from cryptosmarttrader.adapters.saved_state import SavedState, SavedStateStore
    from cryptosmarttrader.domain.risk import RiskState
    from cryptosmarttrader.services.risk_state import CURRENT_SK, RISK_PK

    saved = SavedState.load(directory)
    if saved is None:
        return None
    now = datetime.now(tz=UTC)
    name = resources.kill_switch_param
    value = saved.parameter(name)
    if value is None:  # a switch this state never held: the full path says what it is
        return None
    switch = parse_switch_value(value, name, now)
    store = SavedStateStore(saved, resources.state_table)
    raw = store.get(RISK_PK, CURRENT_SK)
    if raw is None and store.query(RISK_PK):
        return None  # rebuilt from the transition log: the full path does that
    try:
        risk = RiskState.initial(now) if raw is None else RiskState.from_dict(raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise SnapshotError(
            f"local AWS snapshot {directory / 'snapshot.json'}: the risk state is invalid: {exc}"
        ) from exc
    return _payload(switch, risk)


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
    from cryptosmarttrader.domain.risk import RiskLevel
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    try:
        target = RiskLevel[to.strip().upper()]
    except KeyError:
        fail(f"--to must be one of {', '.join(lv.name for lv in RiskLevel)}, got {to!r}")
    why = _reason(reason)
    who = _actor(actor)
    with embedded_aws(state_dir(state), AwsResources(), lake=False) as aws:
        _, risk = _services(aws)
        current = risk.load()
        if current.level is target:  # setting what holds changes nothing: not an error
            typer.echo(f"risk level is already {target.name}: nothing recorded", err=True)
        else:
            request_id = f"cli-{uuid.uuid4().hex}"
            _audit(
                aws,
                who,
                "risk.override",
                request_id,
                reason=why,
                from_level=current.level.name,
                to_level=target.name,
            )
            try:
                risk.override(target, who, why)
            except DomainError as exc:
                _audit(aws, who, "risk.override.failed", f"{request_id}-failed", error=str(exc))
                fail(str(exc))
        payload = _status_payload(aws)
    _print(payload, as_json)
