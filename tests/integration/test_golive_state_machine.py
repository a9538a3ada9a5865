"""The go-live state machine, executed for real on moto FROM THE SYNTHESIZED DEFINITION.

The CDK app is synthesized once; the state machine's ``DefinitionString`` (an ``Fn::Join`` of
ASL text, ``Fn::GetAtt``/``Ref`` pieces) is resolved to the ARNs of resources created in moto,
so the ASL that runs here is byte for byte the ASL that deploys. moto's executing Step
Functions runs it; Wait states take their seconds from the execution input.

Two test shims add what moto does not model, nothing more:

* ``lambda:invoke`` without Docker only echoes its input, so moto's simple Lambda backend is
  patched to import the function's real handler (from the template's ``Handler``) and call it
  in-process with the function's environment; an exception becomes an ``Unhandled`` function
  error with ``errorType``, exactly what Step Functions' Catch sees from real Lambda;
* moto's CloudWatch computes no percentile statistics, so ``pNN`` is added (nearest rank over
  the raw ``PutMetricData`` values) for the SLO gate's p95 query.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudwatch.models import Statistics

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoStateStore,
    order_record,
)
from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.orders import Intent, OrderStatus
from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol
from cryptosmarttrader.handlers import _common, golive_slo, golive_steps
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from cst_devtools.moto_shims import (
    invoke_handler_in_process,
    lambda_zip,
    resolve,
    statistic_with_percentiles,
)
from tests.infrastructure.conftest import SKIP_BUNDLING, synthesized_template

REGION = "us-east-1"
ACCOUNT = "123456789012"
MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
RESOURCES = {
    "CST_ORDERS_TABLE": "golive-orders",
    "CST_POSITIONS_TABLE": "golive-positions",
    "CST_STATE_TABLE": "golive-state",
    "CST_LAKE_BUCKET": "golive-lake",
    "CST_KILL_SWITCH_PARAM": "/cst/kill-switch",
}


# --------------------------------------------------------------------------- synthesized ASL


@dataclass(frozen=True)
class GoLiveTemplate:
    definition: Any  # the DefinitionString (Fn::Join)
    functions: Mapping[str, Mapping[str, Any]]  # logical id → Lambda properties
    topic_id: str


@pytest.fixture(scope="module")
def golive_template() -> GoLiveTemplate:
    synthesized = synthesized_template(SKIP_BUNDLING)  # shared by the whole run
    machines = {
        lid: r
        for lid, r in synthesized.resources_of_type("AWS::StepFunctions::StateMachine").items()
        if lid.startswith("GoLive")
    }
    assert len(machines) == 1, machines
    (machine,) = machines.values()
    functions = {
        lid: r["Properties"]
        for lid, r in synthesized.resources_of_type("AWS::Lambda::Function").items()
        if str(r["Properties"].get("Handler", "")).startswith("cryptosmarttrader.handlers.golive")
    }
    (topic_id,) = [
        lid for lid in synthesized.resources_of_type("AWS::SNS::Topic") if lid.startswith("GoLive")
    ]
    return GoLiveTemplate(machine["Properties"]["DefinitionString"], functions, topic_id)


@dataclass
class Aws:
    clients: AwsClients
    sfn: Any
    cloudwatch: Any
    sqs: Any
    machine_arn: str
    queue_url: str

    @property
    def state(self) -> DynamoStateStore:
        return DynamoStateStore(RESOURCES["CST_STATE_TABLE"], self.clients.dynamodb)

    @property
    def orders(self) -> DynamoOrderStore:
        return DynamoOrderStore(RESOURCES["CST_ORDERS_TABLE"], self.clients.dynamodb)


@pytest.fixture
def aws(golive_template: GoLiveTemplate, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke_handler_in_process)
    monkeypatch.setattr(Statistics, "get_statistics_for_type", statistic_with_percentiles)
    for cached in (
        _common.reset_caches,
        golive_steps._service.cache_clear,
        golive_slo._service.cache_clear,
    ):
        cached()
    with mock_aws(config=MOTO_CONFIG):
        resources = AwsResources.model_validate(
            {k.removeprefix("CST_").lower(): v for k, v in RESOURCES.items()} | {"region": REGION}
        )
        clients = AwsClients.build(resources)
        ensure_resources(clients, datetime.now(tz=UTC))
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="golive-test", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
        lambda_client = boto3.client("lambda", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="golive-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="golive-alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        refs: dict[str, str] = {golive_template.topic_id: topic_arn}
        for logical_id, props in golive_template.functions.items():
            env = dict(props["Environment"]["Variables"])
            for key, value in env.items():
                if not isinstance(value, str):  # a Ref to a table or the parameter
                    env[key] = RESOURCES[key]
            arn = lambda_client.create_function(
                FunctionName=f"golive-{logical_id}"[:64],
                Runtime=props["Runtime"],
                Role=role,
                Handler=props["Handler"],
                Code={"ZipFile": lambda_zip()},
                Environment={"Variables": env | {"AWS_REGION": REGION}},
            )["FunctionArn"]
            refs[f"{logical_id}.Arn"] = arn
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine_arn = sfn.create_state_machine(
            name="golive",
            definition=resolve(golive_template.definition, refs),
            roleArn=role,
        )["stateMachineArn"]
        yield Aws(
            clients,
            sfn,
            boto3.client("cloudwatch", region_name=REGION),
            sqs,
            machine_arn,
            queue_url,
        )


# --------------------------------------------------------------------------- helpers

HEALTHY: dict[str, Any] = {
    "ProbeSuccess": [1000.0],
    "ProbeFailure": [1.0],
    "DecisionLatency": [float(ms) for ms in range(100, 900, 40)],
    "StrategyReturnBps": [10.0, -5.0, 7.0, 3.0],
    "ReferenceReturnBps": [9.0, -4.0, 8.0, 2.0],
    "Requests": [10_000.0],
    "Errors": [5.0],
}


def put_metrics(aws: Aws, stage: str, metrics: Mapping[str, list[float]]) -> None:
    """One datum per value, in consecutive past minutes (returns: one per period)."""
    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    for name, values in metrics.items():
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "Stage", "Value": stage}],
                "Timestamp": now - timedelta(minutes=2 + i),
                "Value": value,
            }
            for i, value in enumerate(values)
        ]
        aws.cloudwatch.put_metric_data(Namespace="CryptoSmartTrader", MetricData=data)


def seed_orders(aws: Aws) -> None:
    """Four orders in the one schema (``order_record``), in NEW, SUBMITTED, ACCEPTED, FILLED."""
    at = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    for coid, status in [
        ("a" * 32, "NEW"),
        ("b" * 32, "SUBMITTED"),
        ("c" * 32, "ACCEPTED"),
        ("d" * 32, "FILLED"),
    ]:
        order = Order(
            client_order_id=ClientOrderId(coid), symbol=Symbol("BTC/USDT"), side=Side.BUY,
            intent=Intent.OPEN, strategy="golive", signal_bar_ms=1_709_251_200_000,
            quantity=Quantity.of("0.1"), reference_price=Price.of("43000"), created_at=at,
            mode="paper", status=OrderStatus(status),
        )  # fmt: skip
        assert aws.orders.put_new(order_record(order))


def run(aws: Aws, **params: Any) -> tuple[str, dict[str, Any]]:
    name = f"golive-{uuid.uuid4().hex[:12]}"
    execution_input = {
        "version": "v2",
        "previous_version": "v1",
        "staging_seconds": 1,
        "canary_seconds": 0,
        "slo_window_seconds": 900,
        "requested_by": "tests",
    } | params
    arn = aws.sfn.start_execution(
        stateMachineArn=aws.machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = aws.sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return name, described
        time.sleep(0.1)
    raise AssertionError(f"execution {name} still RUNNING after 60 s")


def kill_switch(aws: Aws) -> dict[str, Any]:
    raw = aws.clients.ssm.get_parameter(Name=RESOURCES["CST_KILL_SWITCH_PARAM"])
    value: dict[str, Any] = json.loads(raw["Parameter"]["Value"])
    return value


def transitions(aws: Aws, run_id: str) -> list[tuple[str, str]]:
    prefix = f"run#{run_id}#transition#"
    return [
        (str(i["from_stage"]), str(i["to_stage"]))
        for i in aws.state.query("golive")
        if str(i["sk"]).startswith(prefix)
    ]


def notifications(aws: Aws) -> list[dict[str, Any]]:
    messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages.get("Messages", [])]


def assert_rolled_back(aws: Aws, run_id: str, described: Mapping[str, Any], stage: str) -> None:
    assert described["status"] == "FAILED"
    assert described.get("error") == "GoLive.RolledBack"
    # the kill-switch is on, saying which run and why
    switch = kill_switch(aws)
    assert switch["on"] is True
    assert run_id in switch["reason"]
    assert switch["actor"] == "system:golive"
    # every open order is canceled with the reason; the filled one is untouched
    orders = {o["client_order_id"]: o for o in aws.orders.list_orders()}
    assert {k: o["status"] for k, o in orders.items()} == {
        "a" * 32: "CANCELED",
        "b" * 32: "CANCELED",
        "c" * 32: "CANCELED",
        "d" * 32: "FILLED",
    }
    assert all(run_id in str(orders[c * 32]["cancel_reason"]) for c in "abc")
    # the run is recorded as rolled back from its stage, with the reason
    record = aws.state.get("golive", f"run#{run_id}")
    assert record is not None
    assert record["status"] == "ROLLED_BACK"
    assert record["failed_stage"] == stage
    assert run_id in record["reason"]
    assert transitions(aws, run_id)[-1] == (stage, "rolled_back")
    # operators were notified
    (message,) = notifications(aws)
    assert message["run_id"] == run_id


# --------------------------------------------------------------------------- scenarios


def test_healthy_run_goes_through_both_gates_to_production(aws: Aws) -> None:
    # Given healthy staging and canary metrics and open orders
    put_metrics(aws, "staging", HEALTHY)
    put_metrics(aws, "canary", HEALTHY)
    seed_orders(aws)

    # When the go-live machine runs with second-long stages
    run_id, described = run(aws)

    # Then it succeeds through staging → canary → production
    assert described["status"] == "SUCCEEDED", described
    assert transitions(aws, run_id) == [
        ("pending", "staging"),
        ("staging", "canary"),
        ("canary", "production"),
    ]
    # And both gates were evaluated, passed and stored
    evaluations = [e for e in aws.state.query("slo") if e["run_id"] == run_id]
    assert sorted(e["stage"] for e in evaluations) == ["canary", "staging"]
    assert all(e["passed"] for e in evaluations)
    # And the live version is the new one, trading live at the full budget
    alias = aws.state.get("golive", "alias#live")
    assert alias is not None
    assert (alias["version"], alias["replaced_version"]) == ("v2", "v1")
    active = aws.state.get("golive", "active")
    assert active is not None
    assert (active["stage"], active["trading_mode"]) == ("production", "live")
    # And nothing was compensated
    assert kill_switch(aws)["on"] is False
    assert {o["status"] for o in aws.orders.list_orders()} == {
        "NEW",
        "SUBMITTED",
        "ACCEPTED",
        "FILLED",
    }
    assert notifications(aws) == []


def test_staging_breach_rolls_back(aws: Aws) -> None:
    # Given staging uptime below 99.5 % (990 good probes, 10 failed) and open orders
    put_metrics(aws, "staging", HEALTHY | {"ProbeSuccess": [990.0], "ProbeFailure": [10.0]})
    put_metrics(aws, "canary", HEALTHY)
    seed_orders(aws)

    # When the machine runs
    run_id, described = run(aws)

    # Then the staging gate fails and the rollback ran in full
    assert_rolled_back(aws, run_id, described, "staging")
    assert "uptime" in described.get("cause", "")
    (evaluation,) = [e for e in aws.state.query("slo") if e["run_id"] == run_id]
    assert evaluation["passed"] is False
    assert any("uptime" in r for r in evaluation["reasons"])
    # And the canary never started
    assert ("staging", "canary") not in transitions(aws, run_id)
    alias = aws.state.get("golive", "alias#live")
    assert alias is not None
    assert (alias["version"], alias["reverted_version"]) == ("v1", "v2")


def test_canary_breach_rolls_back(aws: Aws) -> None:
    # Given a healthy staging but a canary whose p95 latency is 1.5 s
    put_metrics(aws, "staging", HEALTHY)
    put_metrics(aws, "canary", HEALTHY | {"DecisionLatency": [1500.0] * 20})
    seed_orders(aws)

    # When the machine runs
    run_id, described = run(aws)

    # Then the canary gate fails after staging passed, and everything is compensated
    assert_rolled_back(aws, run_id, described, "canary")
    assert "p95_latency_ms" in described.get("cause", "")
    assert transitions(aws, run_id)[:2] == [("pending", "staging"), ("staging", "canary")]
    verdicts = {e["stage"]: e["passed"] for e in aws.state.query("slo") if e["run_id"] == run_id}
    assert verdicts == {"staging": True, "canary": False}


def test_failing_task_is_caught_and_rolls_back(aws: Aws) -> None:
    # Given open orders, and an execution input asking for 5 % of the risk budget in canary
    seed_orders(aws)

    # When the machine runs, its first task refuses the input (a Lambda error)
    run_id, described = run(aws, canary_risk_fraction=0.05)

    # Then the Catch routes to the rollback, which still halts trading and cancels orders
    assert_rolled_back(aws, run_id, described, "pending")
    record = aws.state.get("golive", f"run#{run_id}")
    assert record is not None
    assert "GoLiveInputError" in record["reason"]
    assert "exceeds the canary's cap" in record["reason"]
    assert record["rollback_steps"]["version"]["reverted"] is False
    # And no SLO gate was evaluated
    assert [e for e in aws.state.query("slo") if e["run_id"] == run_id] == []


def test_definition_has_a_catch_on_every_forward_task(golive_template: GoLiveTemplate) -> None:
    # Given the synthesized definition with placeholder ARNs
    refs = {
        f"{lid}.Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{lid}"
        for lid in golive_template.functions
    }
    asl = json.loads(resolve(golive_template.definition, refs | {golive_template.topic_id: "t"}))
    # Then every Task has a Catch on States.ALL, and every Wait reads its seconds from the input
    for name, state in asl["States"].items():
        if state["Type"] == "Task":
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name
        if state["Type"] == "Wait":
            assert state["SecondsPath"].startswith("$.run."), name
