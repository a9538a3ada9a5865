"""The CryptoSmartTrader stack: data (lake, tables, kill-switch) and the functions that use it.

One stack keeps the resource-name contract in one place: every function receives the names as
``CST_*`` environment variables (``cryptosmarttrader.settings.AwsResources``). Later concerns
(execution, go-live Step Functions, SageMaker, alarms, API) are further constructs that take the
attributes exposed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import jsii
from aws_cdk import CfnOutput, IStableStringProducer, Lazy, Stack
from constructs import Construct

from cryptosmarttrader.adapters.web_publish import (
    OUTPUT_API_URL,
    OUTPUT_BUCKET,
    OUTPUT_DISTRIBUTION,
    OUTPUT_URL,
)
from infra.config import DeploymentConfig
from infra.constructs.api import Api
from infra.constructs.bundling import LambdaCode, python_lambda_code
from infra.constructs.data_lake import DataLake
from infra.constructs.execution import Execution
from infra.constructs.golive import GoLive
from infra.constructs.health_probe import HealthProbe
from infra.constructs.ingestion import Ingestion
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.ml import MachineLearning
from infra.constructs.observability import Observability
from infra.constructs.python_function import PythonFunction
from infra.constructs.scan import Scan
from infra.constructs.state_tables import StateTables
from infra.constructs.web import WebDashboard

ENV_LAKE_BUCKET: Final = "CST_LAKE_BUCKET"
ENV_ORDERS_TABLE: Final = "CST_ORDERS_TABLE"
ENV_POSITIONS_TABLE: Final = "CST_POSITIONS_TABLE"
ENV_STATE_TABLE: Final = "CST_STATE_TABLE"
ENV_KILL_SWITCH_PARAM: Final = "CST_KILL_SWITCH_PARAM"
ENV_DATA_SOURCE: Final = "CST_DATA_SOURCE"
ENV_EXCHANGE: Final = "CST_EXCHANGE"
ENV_STAGE: Final = "CST_STAGE"
ENV_ALLOW_REPLAYS: Final = "CST_ALLOW_REPLAYS"


@jsii.implements(IStableStringProducer)
class _Later:
    """A value known once another construct exists (the API and the dashboard name each other:
    the API allows the dashboard's origin, the dashboard's CSP allows the API's origin)."""

    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self) -> str:
        return self._produce()


class CryptoSmartTraderStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        **stack_kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_kwargs)
        self.config = config

        self.lake = DataLake(self, "DataLake")
        self.tables = StateTables(self, "Tables")
        # one bundle for the API, the alarm handler and the kill-switch's seed and audit handlers
        self.api_code = python_lambda_code("api")
        self.kill_switch = KillSwitch(self, "KillSwitch", code=self.api_code, config=config)

        self.code: dict[str, LambdaCode] = {
            name: python_lambda_code(name) for name in ("ingest", "scan", "execute")
        }
        environment = self.function_environment()
        self.kill_switch.audit_writes(
            code=self.api_code,
            config=config,
            tables=self.tables,
            environment=self.resource_environment(),
        )

        self.ingestion = Ingestion(
            self,
            "Ingestion",
            code=self.code["ingest"],
            config=config,
            lake=self.lake,
            tables=self.tables,
            environment=environment,
        )
        self.scan = Scan(
            self,
            "Scanning",
            code=self.code["scan"],
            config=config,
            lake=self.lake,
            tables=self.tables,
            kill_switch=self.kill_switch,
            environment=environment,
        )
        self.execution = Execution(
            self,
            "Executing",
            # the scan's dependencies and ccxt (the testnet and live venues send orders with it)
            code=self.code["execute"],
            config=config,
            lake=self.lake,
            tables=self.tables,
            kill_switch=self.kill_switch,
            environment=environment,
        )
        self.golive = GoLive(
            self,
            "GoLive",
            code=python_lambda_code("golive"),
            config=config,
            tables=self.tables,
            kill_switch=self.kill_switch,
            environment=self.resource_environment(),
            # testnet / live: the rollback cancels at the venue through the execution function
            venue_orders=None if config.venue_mode == "paper" else self.execution.lambda_,
        )
        self.ml = MachineLearning(
            self,
            "MachineLearning",
            drift_code=python_lambda_code("drift"),
            canary_code=python_lambda_code("model"),
            config=config,
            lake=self.lake,
            tables=self.tables,
            environment=self.function_environment(),
        )
        self.probe = HealthProbe(
            self,
            "HealthProbe",
            code=python_lambda_code("health_probe"),
            config=config,
            lake=self.lake,
            tables=self.tables,
            kill_switch=self.kill_switch,
            environment=self.function_environment(),
        )
        self._observability_and_api()
        self._outputs()

    def _observability_and_api(self) -> None:
        """API and alarms come last: the alarms cover every function created before them."""
        self.api = Api(
            self,
            "Api",
            code=python_lambda_code("api"),
            lake_code=self.code["scan"],  # the lake routes: polars, the scan's bundle
            config=self.config,
            lake=self.lake,
            tables=self.tables,
            kill_switch=self.kill_switch,
            environment=self.function_environment(),
            cors_origin=Lazy.string(_Later(lambda: self.web.origin)),
        )
        self.web = WebDashboard(
            self,
            "Web",
            api_origin=f"https://{self.api.rest_api.rest_api_id}.execute-api.{self.region}."
            f"{self.url_suffix}",
            access_logs=self.lake.access_logs,
        )
        self.observability = Observability(
            self,
            "Observability",
            # the alarm → kill-switch function: its own lean bundle (no polars/numpy), the
            # fastest cold start of the stack
            code=python_lambda_code("killswitch"),
            config=self.config,
            tables=self.tables,
            kill_switch=self.kill_switch,
            environment=self.resource_environment(),
            functions=[c for c in self.node.find_all() if isinstance(c, PythonFunction)],
            rest_api=self.api.rest_api,
        )
        CfnOutput(self, OUTPUT_API_URL, value=self.api.url)
        CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)
        CfnOutput(self, "KillSwitchApiKeyId", value=self.api.killswitch_api_key.key_id)
        CfnOutput(self, OUTPUT_URL, value=self.web.origin, description="the web dashboard (HTTPS)")
        CfnOutput(
            self,
            OUTPUT_BUCKET,
            value=self.web.bucket.bucket_name,
            description="the dashboard's files: filled by cst web publish (make deploy)",
        )
        CfnOutput(
            self,
            OUTPUT_DISTRIBUTION,
            value=self.web.distribution.distribution_id,
            description="the dashboard's CloudFront distribution (cst web publish invalidates it)",
        )
        CfnOutput(self, "CriticalTopicArn", value=self.observability.topics["critical"].topic_arn)
        CfnOutput(
            self,
            "CSTMODELROLEARN",
            value=self.ml.sagemaker_role.role_arn,
            description="CST_MODEL_ROLE_ARN: the role SageMaker training jobs and models run as",
        )
        CfnOutput(
            self,
            "TrainingLauncherPolicyArn",
            value=self.ml.launcher_policy.managed_policy_arn,
            description="Attach to whoever runs cst model train --on sagemaker",
        )

    def resource_environment(self) -> dict[str, str]:
        """The resource-name contract, for every function of this stack."""
        return {
            ENV_LAKE_BUCKET: self.lake.bucket.bucket_name,
            ENV_ORDERS_TABLE: self.tables.orders.table_name,
            ENV_POSITIONS_TABLE: self.tables.positions.table_name,
            ENV_STATE_TABLE: self.tables.state.table_name,
            ENV_KILL_SWITCH_PARAM: self.kill_switch.parameter.parameter_name,
        }

    def function_environment(self) -> dict[str, str]:
        """Resource names, data source, exchange, and the go-live stage the SLIs are for."""
        return {
            **self.resource_environment(),
            ENV_DATA_SOURCE: self.config.data_source,
            ENV_EXCHANGE: self.config.default_exchange,
            ENV_STAGE: self.config.stage,
            ENV_ALLOW_REPLAYS: "true" if self.config.allow_replays else "false",
            # without a promoted model the scan orders nothing unless the deployment opts in
            "CST_ALLOW_TECHNICAL_ONLY_TRADING": (
                "true" if self.config.allow_technical_only_trading else "false"
            ),
            # the capital the ledger starts from (the account's balances are reconciled to it)
            **(
                {"CST_EQUITY_USD": repr(self.config.equity_usd)}
                if self.config.equity_usd is not None
                else {}
            ),
        }

    def _outputs(self) -> None:
        """Names a CLI or an e2e test needs after a deploy, exported under the env var names."""
        for env_name, value in self.resource_environment().items():
            CfnOutput(self, env_name.replace("_", ""), value=value, description=env_name)
        CfnOutput(self, "IngestFunctionName", value=self.ingestion.lambda_.function.function_name)
        CfnOutput(self, "ScanFunctionName", value=self.scan.lambda_.function.function_name)
        CfnOutput(self, "HealthProbeFunctionName", value=self.probe.lambda_.function.function_name)
        CfnOutput(
            self, "ExecutionFunctionName", value=self.execution.lambda_.function.function_name
        )
        CfnOutput(
            self,
            "GoLiveStateMachineArn",
            value=self.golive.state_machine.state_machine_arn,
            description="CST_GOLIVE_STATE_MACHINE_ARN",
        )
        CfnOutput(self, "GoLiveTopicArn", value=self.golive.topic.topic_arn)
