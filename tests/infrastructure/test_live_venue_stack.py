"""The venue mode as a deploy-time setting: the execution function's environment, its one
exchange-account secret (read by that function only), and ``live`` refused at synth without a
passed go-live run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from pydantic import ValidationError

from infra.app import deployment_config
from infra.constructs.execution import EXECUTION_HANDLER
from tests.infrastructure.conftest import SKIP_BUNDLING, cdk_json_context, synthesized_template


def _execution(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    [(logical_id, fn)] = [
        (k, r)
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == EXECUTION_HANDLER
    ]
    return logical_id, fn


def _read_only_keys(logical_id: str) -> bool:
    """The ingest function's read-only market-data keys (tests/infrastructure/test_iam.py),
    not an account's trading keys."""
    return logical_id.startswith("IngestionReadOnlyKeys")


def _trading_secrets(resources: dict[str, dict[str, Any]]) -> list[str]:
    return [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret" and not _read_only_keys(k)
    ]


def _secret_readers(resources: dict[str, dict[str, Any]]) -> list[Any]:
    """The roles of every policy allowing secretsmanager:GetSecretValue on trading keys."""
    roles: list[Any] = []
    for r in resources.values():
        if r["Type"] != "AWS::IAM::Policy":
            continue
        statements = [
            st
            for st in r["Properties"]["PolicyDocument"]["Statement"]
            if not _read_only_keys(json.dumps(st.get("Resource")).split('"Ref": "')[-1])
        ]
        actions = json.dumps([st.get("Action") for st in statements])
        if "secretsmanager:GetSecretValue" in actions:
            roles += r["Properties"]["Roles"]
    return roles


def test_live_venue_paper_is_the_default_and_creates_no_secret() -> None:
    resources = synthesized_template(SKIP_BUNDLING).resources
    _, fn = _execution(resources)
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["CST_VENUE_MODE"] == "paper"
    assert "CST_EXCHANGE_SECRET" not in env
    assert _trading_secrets(resources) == []
    assert _secret_readers(resources) == []


def test_testnet_stack_has_one_account_secret_read_only_by_the_execution_function() -> None:
    resources = synthesized_template(
        {**SKIP_BUNDLING, "cst:venue_mode": "testnet", "cst:equity_usd": "1000"}
    ).resources
    _, fn = _execution(resources)
    env = fn["Properties"]["Environment"]["Variables"]
    [secret_id] = _trading_secrets(resources)
    # the function is told the secret's ARN, never a key
    assert env["CST_VENUE_MODE"] == "testnet"
    assert env["CST_EXCHANGE_SECRET"] == {"Ref": secret_id}
    assert "CST_LIVE_GOLIVE_RUN" not in env
    # exactly one role may read it: the execution function's
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    assert _secret_readers(resources) == [{"Ref": role_id}]


def _config(**context: str) -> Any:
    return deployment_config(App(context={**cdk_json_context(), **context}))


def test_live_venue_live_is_refused_at_synth_without_a_passed_golive_run() -> None:
    with pytest.raises(ValidationError, match="live is refused"):
        _config(**{"cst:venue_mode": "live", "cst:equity_usd": "2000"})
    config = _config(
        **{
            "cst:venue_mode": "live",
            "cst:live_golive_run": "golive-2026-03-01",
            "cst:equity_usd": "2000",
        }
    )
    assert config.venue_mode == "live" and config.live_golive_run == "golive-2026-03-01"


def test_live_venue_live_is_refused_at_synth_without_the_capital_it_trades() -> None:
    with pytest.raises(ValidationError, match="live is refused without equity_usd"):
        _config(**{"cst:venue_mode": "live", "cst:live_golive_run": "golive-2026-03-01"})
    # a testnet account is reconciled with the ledger too: its capital is named
    with pytest.raises(ValidationError, match="testnet is refused without equity_usd"):
        _config(**{"cst:venue_mode": "testnet"})
    with pytest.raises(ValidationError, match="greater than 0"):
        _config(**{"cst:equity_usd": "-5"})


def test_the_capital_reaches_the_scan_and_execution_functions() -> None:
    resources = synthesized_template(
        {**SKIP_BUNDLING, "cst:venue_mode": "testnet", "cst:equity_usd": "2500"}
    ).resources
    _, fn = _execution(resources)
    assert fn["Properties"]["Environment"]["Variables"]["CST_EQUITY_USD"] == "2500.0"
    default = synthesized_template(SKIP_BUNDLING).resources
    assert "CST_EQUITY_USD" not in _execution(default)[1]["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize(("exchange", "why"), [("kraken", "no spot sandbox"),
                                               ("kucoin", "retired its sandbox")])  # fmt: skip
def test_testnet_is_refused_at_synth_where_the_exchange_has_no_sandbox(
    exchange: str, why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        _config(
            **{
                "cst:venue_mode": "testnet",
                "cst:equity_usd": "1000",
                "cst:config": json.dumps({"default_exchange": exchange}),
            }
        )


def _golive_states(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The go-live machine's states, each reference written ``<LogicalId>``."""
    [machine] = [
        r
        for k, r in resources.items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("GoLive")
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        ref = part.get("Ref") or part.get("Fn::GetAtt", ["?"])[0]
        return f"<{ref}>"

    states: dict[str, Any] = json.loads("".join(text(p) for p in parts))["States"]
    return states


def test_a_testnet_rollback_cancels_through_the_execution_function() -> None:
    resources = synthesized_template(
        {**SKIP_BUNDLING, "cst:venue_mode": "testnet", "cst:equity_usd": "1000"}
    ).resources
    execution_id, _ = _execution(resources)
    cancel = _golive_states(resources)["CancelOpenOrders"]
    # the task invokes the function holding the venue's keys, with the rollback's order step
    assert cancel["Resource"] == f"<{execution_id}>"
    assert cancel["Parameters"]["action"] == "golive_cancel_orders"
    # a throttled invocation (a cycle running: reserved concurrency 1) is waited out first,
    # and the generic retry stays last, as Step Functions requires
    errors = [r["ErrorEquals"] for r in cancel["Retry"]]
    assert errors.index(["Lambda.TooManyRequestsException"]) < errors.index(["States.ALL"])
    assert errors[-1] == ["States.ALL"]
    # and the keys are still read by the execution function only
    role_id = _execution(resources)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert _secret_readers(resources) == [{"Ref": role_id}]


def test_a_paper_rollback_cancels_in_the_order_store_through_the_steps_function() -> None:
    resources = synthesized_template(SKIP_BUNDLING).resources
    cancel = _golive_states(resources)["CancelOpenOrders"]
    assert cancel["Resource"].startswith("<GoLiveSteps")
    assert cancel["Parameters"]["action"] == "cancel_orders"
