"""Kill-switch on moto SSM: fails closed, caches by the injected clock, writes with a reason."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.ssm_killswitch import FAIL_CLOSED_ACTOR, SsmKillSwitch
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.settings import AwsResources
from tests.support.aws import moto_stack

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
PARAM = "/cst/kill-switch"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch, now=T0) as clients:
        yield clients


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def _write_raw(aws: AwsClients, value: str) -> None:
    aws.ssm.put_parameter(Name=PARAM, Value=value, Type="String", Overwrite=True)


def test_default_parameter_is_off_with_its_reason(aws: AwsClients, clock: FixedClock) -> None:
    # Given the freshly created local parameter
    switch = SsmKillSwitch(PARAM, aws.ssm, clock)
    # When read, Then trading is allowed and the status explains why
    status = switch.status()
    assert switch.is_on() is False
    assert (status.on, status.reason, status.actor, status.at) == (
        False,
        "local default",
        "local",
        T0,
    )


def test_set_writes_json_and_is_seen_at_once(aws: AwsClients, clock: FixedClock) -> None:
    # Given a switch whose OFF state is cached
    switch = SsmKillSwitch(PARAM, aws.ssm, clock, cache_seconds=60)
    assert switch.is_on() is False
    # When an operator turns it on
    clock.advance(timedelta(seconds=1))
    switch.set(True, "  drawdown breach  ", "alice")
    # Then the cache is dropped, and the stored JSON has all four fields
    assert switch.is_on() is True
    stored = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert stored == {
        "on": True,
        "reason": "drawdown breach",
        "actor": "alice",
        "at": (T0 + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
    }


@pytest.mark.parametrize("reason", ["", "   "])
def test_set_requires_a_reason(aws: AwsClients, clock: FixedClock, reason: str) -> None:
    switch = SsmKillSwitch(PARAM, aws.ssm, clock)
    with pytest.raises(DomainError, match="reason must not be empty"):
        switch.set(True, reason, "alice")
    assert switch.is_on() is False  # nothing was written


@pytest.mark.parametrize(
    ("field", "reason", "actor", "shown"),
    [
        ("reason", "maintenance \x1b[1A\x1b[2Kkill-switch: ON", "alice", "U+001B"),
        ("reason", "done\rkill-switch: off", "alice", "U+000D"),
        ("reason", "line one\nkill-switch: off", "alice", "U+000A"),
        ("reason", "resume \u202eFFO\u202c", "alice", "U+202E"),
        ("reason", "zero\u200bwidth", "alice", "U+200B"),
        ("actor", "maintenance", "alice\x07", "U+0007"),
    ],
)
def test_set_refuses_control_and_formatting_characters(
    aws: AwsClients, clock: FixedClock, field: str, reason: str, actor: str, shown: str
) -> None:
    # Given trading is off
    switch = SsmKillSwitch(PARAM, aws.ssm, clock)
    before = aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Version"]

    # When a writer sends text with a terminal control or bidi formatting character
    with pytest.raises(DomainError, match=re.escape(f"{field} contains {shown}")):
        switch.set(True, reason, actor)

    # Then nothing was written
    assert aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Version"] == before


def test_set_caps_the_encoded_value_at_ssm_s_4_kb(aws: AwsClients, clock: FixedClock) -> None:
    switch = SsmKillSwitch(PARAM, aws.ssm, clock)
    # a 500-character reason and a 640-character actor, four bytes each: 4560 bytes encoded
    with pytest.raises(DomainError, match=r"would be \d+ bytes once encoded; SSM stores"):
        switch.set(True, "\U0001f680" * 500, "\U0001f680" * 640)
    with pytest.raises(DomainError, match="at most 500 allowed"):
        switch.set(True, "x" * 501, "alice")
    assert switch.is_on() is False

    # and the largest reason, with a normal actor, really is stored by SSM (as UTF-8)
    status = switch.set(True, "\U0001f680" * 500, "arn:aws:iam::123456789012:user/ops/alice")
    assert status.on is True and switch.is_on() is True
    assert switch.status().reason == "\U0001f680" * 500


def test_the_read_only_known_flag_is_not_stored(aws: AwsClients, clock: FixedClock) -> None:
    SsmKillSwitch(PARAM, aws.ssm, clock).set(True, "stop", "alice")
    stored = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert set(stored) == {"on", "reason", "actor", "at"}
    assert SsmKillSwitch(PARAM, aws.ssm, clock).status().known is True


def test_reads_are_cached_for_cache_seconds_of_the_injected_clock(
    aws: AwsClients, clock: FixedClock
) -> None:
    # Given a reader with a 5 s cache that has just seen OFF
    reader = SsmKillSwitch(PARAM, aws.ssm, clock, cache_seconds=5)
    assert reader.is_on() is False
    # When another process turns the switch on
    SsmKillSwitch(PARAM, aws.ssm, clock).set(True, "manual stop", "ops")
    # Then the reader sees it no later than 5 s after its last read
    clock.advance(timedelta(seconds=4.9))
    assert reader.is_on() is False
    clock.advance(timedelta(seconds=0.1))
    assert reader.is_on() is True


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not json", "malformed"),
        ('{"on": "false", "reason": "x", "actor": "a", "at": "2024-03-01T12:00:00Z"}', "on"),
        ('{"on": false, "reason": "", "actor": "a", "at": "2024-03-01T12:00:00Z"}', "reason"),
        ('{"on": false, "reason": "x", "actor": "a"}', "at"),
        ('{"on": false, "reason": "x", "actor": "a", "at": "2024-03-01T12:00:00"}', "at"),
        ('{"on": false, "reason": "x", "actor": "a", "at": "2024-03-01T12:00:00Z", "y": 1}', "y"),
        ("[]", "malformed"),
    ],
)
def test_malformed_value_fails_closed_with_the_reason(
    aws: AwsClients, clock: FixedClock, raw: str, why: str
) -> None:
    # Given a parameter whose value is not a valid kill-switch document
    _write_raw(aws, raw)
    # When read
    status = SsmKillSwitch(PARAM, aws.ssm, clock).status()
    # Then the switch is ON and says what was wrong
    assert status.on is True
    assert status.actor == FAIL_CLOSED_ACTOR
    assert "malformed" in status.reason
    assert why in status.reason


def test_missing_parameter_fails_closed(aws: AwsClients, clock: FixedClock) -> None:
    # Given the parameter was deleted
    aws.ssm.delete_parameter(Name=PARAM)
    # When read, Then the switch is ON because it cannot be read
    status = SsmKillSwitch(PARAM, aws.ssm, clock).status()
    assert status.on is True
    assert "unreadable" in status.reason
    assert PARAM in status.reason


def test_unreachable_ssm_fails_closed(clock: FixedClock) -> None:
    # Given an SSM endpoint nobody listens on
    ssm = boto3.client(
        "ssm",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    # When read, Then it counts as ON and says why
    status = SsmKillSwitch(PARAM, ssm, clock).status()
    assert status.on is True
    assert "unreadable" in status.reason


def test_recovers_once_the_parameter_is_fixed(aws: AwsClients, clock: FixedClock) -> None:
    # Given a malformed value that made the switch fail closed
    _write_raw(aws, "{")
    switch = SsmKillSwitch(PARAM, aws.ssm, clock, cache_seconds=5)
    assert switch.is_on() is True
    # When an operator writes a valid OFF value and the cache expires
    SsmKillSwitch(PARAM, aws.ssm, clock).set(False, "fixed", "ops")
    clock.advance(timedelta(seconds=5))
    # Then trading is allowed again
    assert switch.is_on() is False


def test_system_writers_never_fail_a_stop_on_their_own_wording(
    aws: AwsClients, clock: FixedClock
) -> None:
    from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
    from cryptosmarttrader.services.golive import Failure, GoLiveService

    # Given a go-live rollback whose Step Functions cause is long, multi-line, with a bidi
    # override and an emoji storm (what an exception's message and stack can look like)
    res = AwsResources()
    cause = "Traceback:\n  File x\r\n\u202eevil\u202c " + "\U0001f680" * 300 + "y" * 2000
    service = GoLiveService(
        store=DynamoStateStore(res.state_table, aws.dynamodb),
        orders=DynamoOrderStore(res.orders_table, aws.dynamodb),
        kill_switch=SsmKillSwitch(PARAM, aws.ssm, clock),
        clock=clock,
    )

    # When the rollback engages the kill-switch
    state = service.engage_kill_switch("run-1", Failure(Error="States.TaskFailed", Cause=cause))

    # Then the switch is on with a printable reason that fits (the text was cleaned, not refused)
    stored = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert state["on"] is True and stored["on"] is True
    assert stored["reason"].startswith("go-live run-1 rollback: States.TaskFailed: Traceback:")
    assert stored["reason"].isprintable() and len(stored["reason"]) <= 500


def test_a_failed_or_malformed_read_is_on_but_not_known(aws: AwsClients, clock: FixedClock) -> None:
    from botocore.exceptions import ClientError

    def throttled(**_kwargs: object) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetParameter"
        )

    # Given a readable switch: known
    switch = SsmKillSwitch(PARAM, aws.ssm, clock, cache_seconds=0)
    assert switch.status().known is True
    # When the read is throttled, Then it fails closed (on) and says it does not know
    aws.ssm.meta.events.register("before-call.ssm.GetParameter", throttled)
    try:
        status = switch.status()
    finally:
        aws.ssm.meta.events.unregister("before-call.ssm.GetParameter", throttled)
    assert (status.on, status.known) == (True, False)
    assert "ThrottlingException" in status.reason
    # and a malformed value is on and not known either
    _write_raw(aws, '{"on": "false"}')
    assert (switch.status().on, switch.status().known) == (True, False)
    # while a switch read as ON is known, and "known" is never stored
    written = switch.set(True, "drill", "ops")
    assert (switch.status().on, switch.status().known, written.known) == (True, True, True)
    stored = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert "known" not in stored


def test_the_go_live_rollback_marker_round_trips_and_is_stored_only_when_set(
    aws: AwsClients, clock: FixedClock
) -> None:
    # Given the rollback's write (the marker: its run id) and an operator's (none)
    switch = SsmKillSwitch(PARAM, aws.ssm, clock, cache_seconds=0)
    switch.set(True, "go-live run-7 rollback: CanarySloBreach", "system:golive",
               golive_rollback="run-7")  # fmt: skip
    stored = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    # Then the stored value carries the marker, and a fresh reader gets it back
    assert stored["golive_rollback"] == "run-7"
    read = SsmKillSwitch(PARAM, aws.ssm, clock).status()
    assert (read.on, read.known, read.golive_rollback) == (True, True, "run-7")
    # and an operator's write stores the four fields of every earlier version, no marker
    switch.set(True, "go-live run-7 rollback: typed by hand", "alice")
    stored = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert set(stored) == {"on", "reason", "actor", "at"}
    assert switch.status().golive_rollback is None


@pytest.mark.parametrize("marker", ['""', '"run 7"', '"go-live run-7 rollback"', "true", '["r"]'])
def test_a_marker_that_is_no_run_id_fails_closed(
    aws: AwsClients, clock: FixedClock, marker: str
) -> None:
    # Given a value written around the product's writers with a marker of the wrong shape
    _write_raw(aws, '{"on": true, "reason": "x", "actor": "a", "at": "2024-03-01T12:00:00Z", '
                    f'"golive_rollback": {marker}}}')  # fmt: skip
    # When read, Then it is malformed: ON, not known (nothing is cancelled on it)
    status = SsmKillSwitch(PARAM, aws.ssm, clock).status()
    assert (status.on, status.known, status.golive_rollback) == (True, False, None)
    assert "golive_rollback" in status.reason
