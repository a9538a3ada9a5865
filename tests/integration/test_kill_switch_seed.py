"""The kill-switch seed custom resource: creates the parameter once, never overwrites it.

The events are CloudFormation's custom-resource requests; the pre-signed ``ResponseURL`` is a
loopback HTTP server standing in for S3, which records the PUT CloudFormation would read.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any, ClassVar

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.settings import AwsResources

PARAM = "/cst/kill-switch"


@dataclass
class Context:
    aws_request_id: str = "seed-request"
    function_name: str = "cst-kill-switch-seed"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:seed"
    timeout_s: float = 60.0
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.started + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _Recorder(BaseHTTPRequestHandler):
    answers: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).answers.append({"body": json.loads(body), "content_type": self.headers.get(
            "Content-Type"), "at": time.monotonic()})  # fmt: skip
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Recorder.answers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    # shutdown() waits for the serving loop's next poll: 0.5 s by default, at every teardown
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/cfn-response?sig=x", _Recorder.answers
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)  # fmt: skip
    with mock_aws():
        yield AwsClients.build(AwsResources())


@pytest.fixture
def seed() -> ModuleType:
    from cryptosmarttrader.handlers import kill_switch_seed

    return kill_switch_seed


def request(kind: str, url: str, description: str = "kill-switch") -> dict[str, Any]:
    event = {
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:seed",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/CryptoSmartTrader/1a2b",
        "RequestId": f"req-{kind}",
        "LogicalResourceId": "KillSwitchSeed",
        "ResourceType": "Custom::KillSwitchSeed",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:seed",
            "ParameterName": PARAM,
            "Description": description,
        },
    }
    if kind != "Create":
        event["PhysicalResourceId"] = PARAM
    return event


def _value(aws: AwsClients) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(aws.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    return value


def test_create_seeds_off_and_no_later_request_overwrites_a_live_switch(
    seed: ModuleType, aws: AwsClients, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, answers = response_url
    # Given a first deployment: the parameter is created off
    assert seed.handler(request("Create", url), Context())["outcome"] == "created"
    assert _value(aws)["on"] is False and _value(aws)["actor"] == "cdk"
    # and an operator turns trading off
    SsmKillSwitch(PARAM, aws.ssm, SystemClock()).set(True, "exchange incident", "alice")

    # When the construct changes (Update), the stack is re-created (Create) or deleted (Delete)
    outcomes = [
        seed.handler(request(kind, url, description="changed"), Context())["outcome"]
        for kind in ("Update", "Create", "Delete")
    ]

    # Then the switch is still the operator's ON, and it outlives the stack
    assert outcomes == ["kept", "kept", "retained"]
    assert (_value(aws)["on"], _value(aws)["reason"]) == (True, "exchange incident")
    # and CloudFormation was told SUCCESS each time, for the parameter as physical id
    assert [a["body"]["Status"] for a in answers] == ["SUCCESS"] * 4
    assert {a["body"]["PhysicalResourceId"] for a in answers} == {PARAM}
    assert answers[0]["body"]["RequestId"] == "req-Create"
    assert answers[1]["body"]["Data"] == {"Outcome": "kept"}


def test_a_failed_create_is_answered_failed_with_the_reason(
    seed: ModuleType,
    aws: AwsClients,
    response_url: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cst_devtools.faults import ExhaustedRetries

    url, answers = response_url
    faults = ExhaustedRetries(aws.ssm, code="AccessDeniedException", message="not allowed")
    faults.exhaust("PutParameter", 1)
    monkeypatch.setattr(seed, "ssm_client", lambda *_endpoint: aws.ssm)

    result = seed.handler(request("Create", url), Context())

    # CloudFormation hears FAILED at once (instead of waiting an hour for an answer)
    assert result["status"] == "FAILED"
    (answer,) = answers
    assert answer["body"]["Status"] == "FAILED"
    assert "AccessDeniedException" in answer["body"]["Reason"]


def test_a_response_url_that_is_not_https_or_loopback_is_refused(
    seed: ModuleType, aws: AwsClients
) -> None:
    with pytest.raises(ValueError, match="refusing to answer CloudFormation"):
        seed.handler(request("Delete", "http://169.254.169.254/latest"), Context())


def test_invalid_properties_and_request_types_are_answered_failed_never_left_waiting(
    seed: ModuleType, aws: AwsClients, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, answers = response_url
    bad_name = request("Create", url)
    bad_name["ResourceProperties"]["ParameterName"] = "no leading slash"
    bad_kind = {**request("Update", url), "RequestType": "Replace"}

    results = [seed.handler(event, Context()) for event in (bad_name, bad_kind)]

    # CloudFormation hears FAILED with the reason for each, and no parameter was written
    assert [r["status"] for r in results] == ["FAILED", "FAILED"]
    assert [a["body"]["Status"] for a in answers] == ["FAILED", "FAILED"]
    assert "ResourceProperties" not in answers[0]["body"]["Reason"]
    assert "ParameterName" in answers[0]["body"]["Reason"]
    assert answers[0]["body"]["PhysicalResourceId"] == "KillSwitchSeed"
    assert "'Replace'" in answers[1]["body"]["Reason"]
    assert answers[1]["body"]["PhysicalResourceId"] == PARAM
    assert aws.ssm.describe_parameters()["Parameters"] == []
    # while a Delete of a resource whose properties no longer validate still succeeds
    bad_delete = request("Delete", url)
    bad_delete["ResourceProperties"] = {}
    assert seed.handler(bad_delete, Context())["status"] == "SUCCESS"
    assert answers[2]["body"]["PhysicalResourceId"] == PARAM


def test_an_unexpected_error_still_reaches_cloudformation(
    seed: ModuleType,
    aws: AwsClients,
    response_url: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, answers = response_url

    def broken(*_endpoint: object) -> Any:
        raise KeyError("ssm client configuration")

    monkeypatch.setattr(seed, "ssm_client", broken)

    result = seed.handler(request("Create", url), Context())

    assert result["status"] == "FAILED"
    (answer,) = answers
    assert answer["body"]["Status"] == "FAILED"
    assert "KeyError" in answer["body"]["Reason"]


def test_an_event_without_an_answer_address_fails_the_invocation(
    seed: ModuleType, aws: AwsClients, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, answers = response_url
    event = request("Create", url)
    del event["ResponseURL"]

    with pytest.raises(seed.UnanswerableRequestError, match="1 error"):
        seed.handler(event, Context())

    assert answers == []
    assert aws.ssm.describe_parameters()["Parameters"] == []


# -- a slow SSM: answered FAILED inside the invocation's time --------------------------------


@pytest.fixture
def silent_ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An SSM endpoint on the loopback that takes connections and never answers."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sink.bind(("127.0.0.1", 0))
    sink.listen(16)  # connections complete in the backlog; nothing is ever read or sent
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{sink.getsockname()[1]}",
    }.items():
        monkeypatch.setenv(key, value)  # fmt: skip
    try:
        yield str(sink.getsockname())
    finally:
        sink.close()


def test_an_ssm_that_never_answers_is_answered_failed_before_the_function_times_out(
    seed: ModuleType, silent_ssm: str, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, answers = response_url
    # Given an invocation with 14 s left (the answer's reserve, and 4 s for SSM)
    context = Context(timeout_s=seed.ANSWER_RESERVE_S + 4)

    result = seed.handler(request("Create", url), context)

    # Then CloudFormation hears FAILED, saying SSM timed out, before the function's deadline
    assert result["status"] == "FAILED"
    (answer,) = answers
    assert answer["body"]["Status"] == "FAILED"
    assert "timeout" in answer["body"]["Reason"].lower(), answer["body"]["Reason"]
    assert "could not be created" in answer["body"]["Reason"]
    assert answer["at"] < context.deadline


def test_an_invocation_without_time_for_ssm_answers_failed_without_calling_it(
    seed: ModuleType, silent_ssm: str, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, answers = response_url
    context = Context(timeout_s=seed.ANSWER_RESERVE_S)

    result = seed.handler(request("Create", url), context)

    assert result["status"] == "FAILED"
    (answer,) = answers
    assert "no time left for SSM" in answer["body"]["Reason"]
    assert answer["at"] < context.deadline


@pytest.mark.parametrize("remaining_s", [11.0, 14.0, 19.9, 20.0, 39.0, 60.0, 900.0])
def test_every_ssm_attempt_and_backoff_fits_the_budget(
    seed: ModuleType, remaining_s: float
) -> None:
    budget = seed.ssm_budget(remaining_s)
    # the longest the client can take: each attempt's connect and read timeouts, and the
    # standard retry mode's backoff before each retry (at most 1 s, then 2 s)
    backoff = sum(2**i for i in range(budget.attempts - 1))
    longest = budget.attempts * (budget.connect_s + budget.read_s) + backoff
    assert longest <= remaining_s - seed.ANSWER_RESERVE_S + 1e-9
    assert budget.read_s > 0 and budget.connect_s > 0
    config = budget.config()
    assert (config.connect_timeout, config.read_timeout) == (budget.connect_s, budget.read_s)
    assert config.retries == {"total_max_attempts": budget.attempts, "mode": "standard"}
