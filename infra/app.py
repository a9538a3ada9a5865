"""CDK entry point: ``npx --yes aws-cdk@2 synth`` (cdk.json runs ``python -m infra.app``).

cdk-nag's AwsSolutions pack validates every synth; an unacknowledged finding fails it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, DefaultStackSynthesizer, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import DeploymentConfig
from infra.stacks.service_stack import CryptoSmartTraderStack

STACK_NAME = "CryptoSmartTrader"
CONFIG_CONTEXT_KEY = "cst:config"
LOCAL_CONTEXT_KEY = "cst:local"  # `-c cst:local=true`: a local target (moto, LocalStack)
STAGE_CONTEXT_KEY = "cst:stage"  # `-c cst:stage=canary`: the go-live stage this stack serves
VENUE_CONTEXT_KEY = "cst:venue_mode"  # `-c cst:venue_mode=testnet`: paper | testnet | live
LIVE_RUN_CONTEXT_KEY = "cst:live_golive_run"  # the passed go-live run `live` needs
EQUITY_CONTEXT_KEY = "cst:equity_usd"  # `-c cst:equity_usd=2000`: the capital the stack trades


def deployment_config(app: App) -> DeploymentConfig:
    """Defaults, or the JSON object under context ``cst:config`` (``-c cst:config='{...}'``);
    ``cst:stage`` sets the stage alone and wins over the object's. Both are validated."""
    raw: Any = app.node.try_get_context(CONFIG_CONTEXT_KEY)
    if raw is None:
        raw = {}
    if isinstance(raw, str):
        raw = json.loads(raw)
    stage = app.node.try_get_context(STAGE_CONTEXT_KEY)
    if stage is not None:
        raw = {**raw, "stage": stage}
    for key, field in (
        (VENUE_CONTEXT_KEY, "venue_mode"),
        (LIVE_RUN_CONTEXT_KEY, "live_golive_run"),
        (EQUITY_CONTEXT_KEY, "equity_usd"),
    ):
        value = app.node.try_get_context(key)
        if value is not None:
            raw = {**raw, field: value}
    return DeploymentConfig.model_validate(raw)


def build(app: App) -> CryptoSmartTraderStack:
    """Add the stacks and the nag validation to ``app`` (shared by ``main`` and the tests)."""
    local = str(app.node.try_get_context(LOCAL_CONTEXT_KEY)).lower() == "true"
    config = deployment_config(app)
    if local:  # moto's CloudFormation creates no Secrets Manager secret (a policy on it fails);
        # a local stack has no exchange account: its withdrawals ingest states "no read-only keys"
        config = config.model_copy(update={"read_only_keys": ()})
    stack = CryptoSmartTraderStack(
        app,
        STACK_NAME,
        config=config,
        description="CryptoSmartTrader: market-data lake, scan and paper trading state",
        # Environment-agnostic: deploys into whatever account/region the CLI credentials name.
        env=Environment(account=None, region=None),
        # Local targets keep no bootstrap version parameter to check, so redeploys work there.
        synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False)
        if local
        else None,
    )
    if not local:  # moto's CloudFormation mis-reads some resources' Tags (SSM map, KMS list)
        Tags.of(stack).add("project", "cryptosmarttrader")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
