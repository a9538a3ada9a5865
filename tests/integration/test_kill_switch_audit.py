"""The kill-switch audit function on moto, with the event shapes EventBridge really delivers.

Shapes: an "AWS API Call via CloudTrail" event for ``ssm:PutParameter`` (EventBridge envelope
around the CloudTrail record: ``userIdentity``, ``sourceIPAddress``, ``requestParameters`` —
the value itself is not logged — and ``responseElements.version``) and Parameter Store's own
"Parameter Store Change" event (``operation``, ``name``, ``type``: no principal). moto delivers
neither (no CloudTrail, no EventBridge rule matching of service events): the tests deliver them
to the handler directly, after making the write they describe on moto's SSM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from cryptosmarttrader.adapters.audit import DynamoAuditTrail
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.settings import AwsResources
from tests.support.aws import moto_stack

PARAM = AwsResources().kill_switch_param
ROLE = "arn:aws:iam::123456789012:role/Operators"
SESSION = "arn:aws:sts::123456789012:assumed-role/Operators/mallory"


@dataclass
class Context:
    aws_request_id: str = "0b1c2d3e-audit"
    function_name: str = "cst-kill-switch-audit"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:audit"


def cloudtrail_event(version: int, *, name: str = PARAM, event_id: str = "6f1d") -> dict[str, Any]:
    """EventBridge's envelope around CloudTrail's PutParameter record."""
    return {
        "version": "0",
        "id": f"{event_id}-1c4e-4b0e-9a4f-2b3c4d5e6f70",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "account": "123456789012",
        "time": "2024-08-04T12:40:02Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLEID:mallory",
                "arn": SESSION,
                "accountId": "123456789012",
                "accessKeyId": "ASIAEXAMPLEKEY12345",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                                      "arn": ROLE, "accountId": "123456789012",
                                      "userName": "Operators"},
                    "attributes": {"creationDate": "2024-08-04T12:00:00Z",
                                   "mfaAuthenticated": "false"},
                },
            },
            "eventTime": "2024-08-04T12:40:01Z",
            "eventSource": "ssm.amazonaws.com",
            "eventName": "PutParameter",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.10",
            "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64",
            "requestParameters": {"name": name, "type": "String", "overwrite": True},
            "responseElements": {"version": version, "tier": "Standard"},
            "requestID": "4b3a2c1d-0000-4000-8000-0123456789ab",
            "eventID": "9e8d7c6b-0000-4000-8000-0123456789ab",
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": "123456789012",
            "eventCategory": "Management",
        },
    }  # fmt: skip


def parameter_store_event(operation: str = "Update") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": "123456789012",
        "time": "2024-08-04T12:40:02Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ssm:us-east-1:123456789012:parameter{PARAM}"],
        "detail": {"operation": operation, "name": PARAM, "type": "String",
                   "description": "CryptoSmartTrader kill-switch"},
    }  # fmt: skip


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    env = {"POWERTOOLS_SERVICE_NAME": "cst-kill-switch-audit", "POWERTOOLS_TRACE_DISABLED": "true"}
    with moto_stack(monkeypatch, env=env) as clients:
        _common.reset_caches()
        yield clients
        _common.reset_caches()


@pytest.fixture
def handler(aws: AwsClients) -> Iterator[ModuleType]:
    from cryptosmarttrader.handlers import kill_switch_audit as module

    module._audit.cache_clear()
    yield module
    module._audit.cache_clear()


def _direct_write(aws: AwsClients, on: bool, reason: str, actor: str) -> int:
    """What someone with ssm:PutParameter can do around the product's own writers."""
    value = {"on": on, "reason": reason, "actor": actor, "at": "2024-08-04T12:40:01Z"}
    return int(
        aws.ssm.put_parameter(Name=PARAM, Value=json.dumps(value), Type="String",
                              Overwrite=True)["Version"]
    )  # fmt: skip


def _entries(aws: AwsClients) -> list[Any]:
    return DynamoAuditTrail(AwsResources().state_table, aws.dynamodb).recent()


def test_a_direct_write_is_audited_with_the_real_principal_not_the_claimed_actor(
    handler: ModuleType, aws: AwsClients
) -> None:
    # Given someone writes the switch off straight to SSM, claiming to be the alarm
    version = _direct_write(aws, False, "all clear", "alarm")

    # When CloudTrail's record of that call reaches the audit function
    result = handler.handler(cloudtrail_event(version), Context())

    # Then the audit trail names the assumed-role session that really wrote it, with the
    # value it wrote (at that version) and the actor that value claims
    assert result["status"] == "ok" and result["principal"] == SESSION
    (entry,) = _entries(aws)
    assert (entry.actor, entry.action) == (SESSION, "ssm.PutParameter")
    assert entry.at.isoformat() == "2024-08-04T12:40:01+00:00"
    assert entry.details["role"] == ROLE and entry.details["source_ip"] == "203.0.113.10"
    value = entry.details["value"]
    assert (value["on"], value["claimed_actor"], value["version"]) == (False, "alarm", version)
    assert "ASIAEXAMPLEKEY12345" not in str(entry.details)


def test_the_value_is_read_at_the_version_written_even_after_later_writes(
    handler: ModuleType, aws: AwsClients
) -> None:
    first = _direct_write(aws, False, "first", "x")
    _direct_write(aws, True, "second", "y")

    handler.handler(cloudtrail_event(first), Context())

    (entry,) = _entries(aws)
    assert (entry.details["value"]["reason"], entry.details["value"]["on"]) == ("first", False)


def test_the_go_live_rollback_marker_is_audited_with_the_value(
    handler: ModuleType, aws: AwsClients
) -> None:
    # Given a value carrying the go-live rollback's marker, then one without
    marked = {"on": True, "reason": "go-live r-1 rollback", "actor": "system:golive",
              "at": "2024-08-04T12:40:01Z", "golive_rollback": "r-1"}  # fmt: skip
    version = int(
        aws.ssm.put_parameter(Name=PARAM, Value=json.dumps(marked), Type="String",
                              Overwrite=True)["Version"]
    )  # fmt: skip
    plain = _direct_write(aws, True, "go-live r-1 rollback", "alice")
    # When both writes are audited
    handler.handler(cloudtrail_event(version), Context())
    handler.handler(cloudtrail_event(plain, event_id="7a2e"), Context())
    # Then each entry says whether the value carried the marker
    markers = sorted(
        (int(e.details["value"]["version"]), e.details["value"]["golive_rollback"])
        for e in _entries(aws)
    )
    assert markers == [(version, "r-1"), (plain, None)]


def test_a_redelivered_event_is_recorded_once(handler: ModuleType, aws: AwsClients) -> None:
    version = _direct_write(aws, True, "stop", "ops")
    assert handler.handler(cloudtrail_event(version), Context())["status"] == "ok"
    assert handler.handler(cloudtrail_event(version), Context())["status"] == "duplicate"
    assert len(_entries(aws)) == 1


def test_without_a_trail_the_parameter_store_change_is_audited_with_an_unknown_principal(
    handler: ModuleType, aws: AwsClients
) -> None:
    # Given an account without a CloudTrail trail: only Parameter Store's own event arrives
    _direct_write(aws, False, "quietly resumed", "jane")

    result = handler.handler(parameter_store_event(), Context())

    # Then the write is still in the audit trail, saying the principal is unknown and why
    assert result["status"] == "ok"
    (entry,) = _entries(aws)
    assert entry.action == "ssm.parameter.Update"
    assert entry.actor.startswith("unknown")
    assert "CloudTrail trail" in entry.details["note"]
    assert entry.details["value"]["reason"] == "quietly resumed"


def test_changes_of_other_parameters_and_foreign_events_change_nothing(
    handler: ModuleType, aws: AwsClients
) -> None:
    other = handler.handler(cloudtrail_event(1, name="/other/param"), Context())
    foreign = handler.handler({"detail-type": "Scheduled Event", "source": "aws.events"}, Context())

    assert other["status"] == "ignored" and foreign["status"] == "rejected"
    assert _entries(aws) == []
