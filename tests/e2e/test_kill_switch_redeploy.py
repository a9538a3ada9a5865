"""E2E: a live kill-switch survives a redeploy that changes its construct.

CloudFormation used to own the parameter's value: changing the construct (here its description,
``-c cst:kill-switch:description=...``) made the update write the template's OFF over a live ON. The
stack is deployed with cdklocal to a moto server (the kill-switch seed custom resource runs its
real handler in-process, which answers CloudFormation through the response URL), the switch is
turned on, the stack is redeployed with the construct changed, and the switch must still be on.

Needs npx (Node) for cdklocal: skips locally without it and FAILS in CI (CI=true). Two deploys,
each of the app synthesized once per test run for its context (``local_assembly``); the
environment is bootstrapped once, by the first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.adapters.system_clock import SystemClock
from cst_devtools.faults import free_port
from cst_devtools.local_deploy import deploy, moto_server, npx_path
from infra.constructs.kill_switch import DESCRIPTION_CONTEXT_KEY
from tests.e2e.conftest import local_assembly

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def _seed_description(cfn: Any) -> str:
    template = cfn.get_template(StackName="CryptoSmartTrader")["TemplateBody"]
    body = template if isinstance(template, dict) else json.loads(template)
    (seed,) = [r for r in body["Resources"].values() if r["Type"] == "Custom::KillSwitchSeed"]
    return str(seed["Properties"]["Description"])


def test_a_redeploy_with_a_changed_kill_switch_construct_keeps_a_live_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if npx_path() is None:
        message = "npx (Node.js) is needed to run cdklocal for the local deployment"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with moto_server(free_port()) as endpoint:
        # Given the stack deployed once: the seed created the switch, off
        first = deploy(endpoint, REPO_ROOT, tmp_path / "first" / "outputs.json",
                       assembly_dir=local_assembly(tmp_path / "first" / "assembly"))  # fmt: skip
        name = first.stack_outputs["CSTKILLSWITCHPARAM"]
        ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1")
        cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
        created = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        assert (created["on"], created["actor"]) == (False, "cdk")
        assert "(staging)" in _seed_description(cfn)

        # and an operator stopped trading
        SsmKillSwitch(name, ssm, SystemClock()).set(True, "exchange incident", "alice")

        # When the stack is redeployed with the kill-switch construct changed
        changed = "CryptoSmartTrader kill-switch, described anew by a later release"
        changed_app = local_assembly(
            tmp_path / "second" / "assembly", {DESCRIPTION_CONTEXT_KEY: changed}
        )
        deploy(endpoint, REPO_ROOT, tmp_path / "second" / "outputs.json",
               assembly_dir=changed_app, bootstrap=False)  # fmt: skip
        assert _seed_description(cfn) == changed

        # Then the switch is still the operator's ON
        after = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        assert (after["on"], after["reason"], after["actor"]) == (
            True,
            "exchange incident",
            "alice",
        )
