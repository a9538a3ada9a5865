"""ML lifecycle on SageMaker: model registry, training role, drift checks, model canary, endpoint.

* ``ModelPackageGroup``: the SageMaker Model Registry group versions are registered in.
* ``SageMakerRole``: what training jobs (``ml/train.py`` in script mode) and the serverless
  endpoint run as: read ``ml/training/*`` (channels), ``models/code/*`` (source) and the
  registered versions ``models/cst-daily-ml/*``, write ``models/training-jobs/*`` only, pull the SageMaker XGBoost image (endpoint) and the Python 3.12 framework training
  image (training jobs), write their logs and metrics.
* ``Drift``: daily Lambda (PSI / KS / calibration decay, EMF) and the ``ModelDriftAlarm`` alarm.
* ``Canary``: Step Functions machine ``StartShadow → wait → EvaluateShadow → StartCanary (≤ 5 %
  of capital) → wait → EvaluateCanary → Promote``; a failed gate or ANY failed task rolls the
  candidate back and ends ``Fail``. Durations come from the execution input.
* Promotion serves the version: the canary function's ``Promote`` / ``Rollback`` create the
  SageMaker model from the approved package, a serverless endpoint configuration and create or
  update the endpoint ``cst-daily-ml`` (grants limited to names starting ``cst-daily-ml``, and
  ``iam:PassRole`` of the SageMaker role to SageMaker only).
* ``TrainingLauncherPolicy``: a managed policy for whoever runs ``cst model train --on
  sagemaker``: upload the source dir and the train channel, start and describe
  ``cst-daily-ml-*`` training jobs as the SageMaker role, read their output, register packages.
* The ranking model's endpoint (only when the deployment config names ``ranking_endpoint``):
  the canary function also promotes and deploys the ``cst-rank`` versions the scan serves
  (``{"action": "promote" | "deploy", "group": "cst-rank", "version": N}``): it packs the
  production version's booster as ``models/cst-rank/v<NNNN>/model.tar.gz`` for SageMaker's
  built-in XGBoost container (``sagemaker-xgboost:3.0-5``), then creates the model and the
  serverless configuration ``<ranking_endpoint>-v<N>-<sha8>`` and creates or updates the
  endpoint ``<ranking_endpoint>`` (grants on those names only; no other function may create
  or update it). The SageMaker role may read those tarballs.
* ``Endpoint`` (only with context ``cst:ml:modelDataUrl``, the ``model.tar.gz`` of the version
  to serve): model, serverless endpoint configuration and endpoint of a fixed artifact, outside
  the registry (promotion manages the ``cst-daily-ml`` endpoint instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aws_cdk import ArnFormat, Aws, CfnMapping, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from cryptosmarttrader.adapters.sagemaker_training import DLC_REGISTRY, TRAINING_REPOSITORY
from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.data_lake import DataLake
from infra.constructs.grants import LAKE_MARKET_DATA, grant_lake_objects, grant_table
from infra.constructs.nag import acknowledge
from infra.constructs.python_function import (
    PythonFunction,
)
from infra.constructs.state_machines import lambda_task, logged_state_machine
from infra.constructs.state_tables import StateTables

MODEL_GROUP: Final = "cst-daily-ml"
RANKING_GROUP: Final = "cst-rank"  # wiring.RANKING_GROUP: the ranking model the scan serves
ENDPOINT_NAME: Final = "cst-daily-ml"  # the endpoint promotions deploy to
DRIFT_HANDLER: Final = "cryptosmarttrader.handlers.drift.handler"
CANARY_HANDLER: Final = "cryptosmarttrader.handlers.model_canary.handler"
DRIFT_SERVICE: Final = "cst-model-drift"  # the producer named in domain/metric_names.py
CANARY_SERVICE: Final = "cst-model-canary"
METRICS_NAMESPACE: Final = "CryptoSmartTrader"
DRIFT_CRON: Final = "cron(30 2 * * ? *)"  # daily 02:30 UTC, after the 00:xx ingest and scan
MODEL_DATA_URL_CONTEXT: Final = "cst:ml:modelDataUrl"
ROLLED_BACK_ERROR: Final = "ModelCanary.RolledBack"
XGBOOST_IMAGE_TAG: Final = "sagemaker-xgboost:1.7-1"
# the ranking endpoint: SageMaker's built-in XGBoost container serving the booster itself
# (XGBoost 3.0.5 loads the xgboost 3.x JSON the ranking evaluation writes)
RANKING_IMAGE_TAG: Final = "sagemaker-xgboost:3.0-5"
# SageMaker's XGBoost image registry accounts (sagemaker-python-sdk image_uri_config).
XGBOOST_REGISTRIES: Final = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-central-1": "492215442770",
}
SERVERLESS_MEMORY_MB: Final = 2048
SERVERLESS_MAX_CONCURRENCY: Final = 5
# Lake key prefixes of the ML lifecycle (services/training_launcher.py, the SageMaker registry)
TRAINING_CHANNELS: Final = "ml/training/*"
TRAINING_CODE: Final = "models/code/*"
TRAINING_OUTPUT: Final = "models/training-jobs/*"
MODEL_VERSIONS: Final = f"models/{MODEL_GROUP}/*"  # registered versions: model, card, serving code
MODEL_STATE: Final = f"models/{MODEL_GROUP}/*/state.json"  # the only object drift/canary write
RANKING_VERSIONS: Final = f"models/{RANKING_GROUP}/*"  # the ranking registry's artefacts
RANKING_TARBALLS: Final = f"models/{RANKING_GROUP}/*/model.tar.gz"  # packed at promotion


class MachineLearning(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        drift_code: LambdaCode,
        canary_code: LambdaCode,
        config: DeploymentConfig,
        lake: DataLake,
        tables: StateTables,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        registries = CfnMapping(
            self,
            "XgboostRegistry",
            mapping={region: {"account": acct} for region, acct in XGBOOST_REGISTRIES.items()},
        )
        registry_account = registries.find_in_map(Aws.REGION, "account")
        self.image_uri = (
            f"{registry_account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{XGBOOST_IMAGE_TAG}"
        )
        self.ranking_image_uri = (
            f"{registry_account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{RANKING_IMAGE_TAG}"
        )
        self.ranking_endpoint = config.ranking_endpoint

        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=MODEL_GROUP,
            model_package_group_description="CryptoSmartTrader daily ML agent (XGBoost)",
        )
        group_arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=MODEL_GROUP
        )
        packages_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{MODEL_GROUP}/*"
        )

        self.sagemaker_role = self._sagemaker_role(stack, lake, registry_account)
        ranking_env = (
            {
                "CST_RANKING_ENDPOINT": self.ranking_endpoint,
                "CST_RANKING_IMAGE_URI": self.ranking_image_uri,
            }
            if self.ranking_endpoint
            else {}
        )

        function_env = {
            **environment,
            "CST_MODEL_GROUP": MODEL_GROUP,
            "CST_MODEL_REGISTRY": "sagemaker",
            "CST_MODEL_IMAGE_URI": self.image_uri,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        common: dict[str, Any] = {
            "environment": function_env,
            "memory_mb": 2048,
            "timeout": Duration.minutes(5),
            "log_level": config.log_level,
            "log_retention_days": config.log_retention_days,
        }
        self.drift = PythonFunction(
            self,
            "Drift",
            code=drift_code,
            handler=DRIFT_HANDLER,
            description="Daily drift check: PSI/KS of features and predictions, calibration decay",
            service_name=DRIFT_SERVICE,
            **common,
        )
        self.canary = PythonFunction(
            self,
            "CanarySteps",
            code=canary_code,
            handler=CANARY_HANDLER,
            description="Model canary steps: shadow, canary share, out-of-sample gate, promote",
            service_name=CANARY_SERVICE,
            **(
                common
                | {
                    "environment": function_env
                    | {
                        "CST_MODEL_ENDPOINT": ENDPOINT_NAME,
                        "CST_MODEL_ROLE_ARN": self.sagemaker_role.role_arn,
                    }
                    | ranking_env
                }
            ),
        )
        self._grant_deployment(self.canary.role)
        if self.ranking_endpoint:
            self._grant_ranking_deployment(self.canary.role, lake, self.ranking_endpoint)
        self.launcher_policy = self._launcher_policy(stack, lake, group_arn, packages_arn)
        for function in (self.drift, self.canary):
            role = function.role
            grant_lake_objects(
                role,
                lake.bucket,
                ["s3:GetObject"],
                prefixes=(*LAKE_MARKET_DATA, MODEL_VERSIONS),
                reason=(
                    "Reads candle and market-cap partitions and the registered versions' "
                    f"artifacts (read-only, those prefixes only; the canary's deployer hashes "
                    f"{MODEL_GROUP}'s model.tar.gz before serving it)."
                ),
            )
            grant_lake_objects(
                role,
                lake.bucket,
                ["s3:PutObject"],
                prefixes=(MODEL_STATE,),
                reason=(
                    "Writes only the registry's state.json beside each registered version "
                    "(models/<group>/<digest>/state.json): never a model, card or serving code."
                ),
            )
            grant_table(role, tables.state, ["GetItem", "PutItem", "Query"])
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"],
                    resources=[group_arn],
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                    resources=[packages_arn],
                )
            )
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:model-package/{MODEL_GROUP}/*]",
                (
                    "Model package ARNs end in the version number SageMaker assigns; the grant "
                    f"covers the versions of the {MODEL_GROUP} group only (describe, update)."
                ),
            )

        self.drift_rule = self.drift.schedule(
            self,
            "DailyDrift",
            schedule=events.Schedule.expression(DRIFT_CRON),
            description=f"Daily drift check of the production model, {DRIFT_CRON} UTC",
            event={},
        )
        # Named and described as the observability construct's alarms are ("<stack>-<severity>-
        # <id>", "[severity] ..."); severity info: no action until the stack wires a topic.
        self.drift_alarm = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=f"{stack.stack_name}-info-ModelDrift",
            alarm_description=(
                "[info] The production model's drift check raised an alarm (features, "
                "predictions or calibration); promotion is blocked until a clean check."
            ),
            metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="ModelDriftAlarm",
                dimensions_map={"ModelGroup": MODEL_GROUP, "service": DRIFT_SERVICE},
                statistic="Maximum",
                period=Duration.days(1),
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        self.state_machine, self.log_group = logged_state_machine(
            self,
            "CanaryStateMachine",
            "CanaryLogs",
            self._definition(),
            "Model canary: shadow -> gate -> canary share -> gate -> promote, else rollback",
            (
                "Step Functions X-Ray tracing and CloudWatch Logs delivery support no "
                "resource-level permissions, so AWS requires Resource '*'."
            ),
        )
        child = self.canary.function.node.default_child
        assert child is not None
        acknowledge(
            self.state_machine.role,
            f"AwsSolutions-IAM5[Resource::<{stack.resolve(stack.get_logical_id(child))}.Arn>:*]",  # type: ignore[arg-type]
            (
                "lambda:InvokeFunction on the canary function's versions and aliases (ARN:*), "
                "granted by CDK's LambdaInvoke so a qualified ARN also works."
            ),
        )

        url = self.node.try_get_context(MODEL_DATA_URL_CONTEXT)
        self.endpoint: sagemaker.CfnEndpoint | None = self._endpoint(str(url)) if url else None

    # ------------------------------------------------------------------ SageMaker role
    def _sagemaker_role(self, stack: Stack, lake: DataLake, registry_account: str) -> iam.Role:
        role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="CryptoSmartTrader training jobs and serverless endpoint",
        )
        readable = [TRAINING_CHANNELS, TRAINING_CODE, MODEL_VERSIONS]
        if self.ranking_endpoint:
            readable.append(RANKING_TARBALLS)  # the ranking endpoint's packed boosters
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[lake.bucket.arn_for_objects(key) for key in readable],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[lake.bucket.arn_for_objects(TRAINING_OUTPUT)]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.bucket.bucket_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{registry_account}:repository/"
                    "sagemaker-xgboost",
                    # training jobs: the Python 3.12 framework image (adapters/sagemaker_training)
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{DLC_REGISTRY}:repository/"
                    f"{TRAINING_REPOSITORY}",
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"],
                resources=["*"],
            )
        )
        log_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_arn, f"{log_arn}:*"],
            )
        )
        bucket_child = lake.bucket.node.default_child
        assert bucket_child is not None
        bucket_id = stack.resolve(stack.get_logical_id(bucket_child))  # type: ignore[arg-type]
        for rule, reason in (
            (
                f"Resource::<{bucket_id}.Arn>/{TRAINING_CHANNELS}",
                "Training jobs read their input channels: objects under ml/training/ only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{TRAINING_CODE}",
                "Training jobs read their uploaded source directory: models/code/ only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{MODEL_VERSIONS}",
                f"The endpoint reads the registered model.tar.gz: {MODEL_GROUP}'s versions only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{TRAINING_OUTPUT}",
                "Training jobs write their output model.tar.gz under models/training-jobs/ only "
                "(registered versions are written by the launcher, not by jobs).",
            ),
            *(
                [
                    (
                        f"Resource::<{bucket_id}.Arn>/{RANKING_TARBALLS}",
                        "The ranking endpoint reads the model.tar.gz promotion packs beside "
                        f"each {RANKING_GROUP} version (models/{RANKING_GROUP}/v<NNNN>/) only.",
                    )
                ]
                if self.ranking_endpoint
                else []
            ),
            (
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                "/aws/sagemaker/*",
                "SageMaker names its training-job and endpoint log groups /aws/sagemaker/<kind>; "
                "the grant is limited to that prefix.",
            ),
            (
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                "/aws/sagemaker/*:*",
                "Log streams of the /aws/sagemaker/* log groups (names are per job and instance).",
            ),
            (
                "Resource::*",
                "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                "permissions; image pulls themselves are limited to the sagemaker-xgboost (endpoint) "
                "and pytorch-training (training jobs) repositories.",
            ),
        ):
            acknowledge(role, f"AwsSolutions-IAM5[{rule}]", reason)
        return role

    # ------------------------------------------------------------------ deployment
    def _grant_endpoint(self, role: iam.IRole, model_pattern: str, endpoint: str) -> None:
        """The three statements a deployer of ``endpoint`` needs: create and describe models
        named ``model_pattern``, endpoint configurations named ``<endpoint>-v*`` (one per
        version, ``<endpoint>-v<N>-<sha8>``), and create, update and describe the endpoint
        itself (``CreateEndpoint``/``UpdateEndpoint`` are also authorized on the
        configuration they point it at)."""
        stack = Stack.of(self)

        def arn(kind: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=kind, resource_name=name)

        configs = arn("endpoint-config", f"{endpoint}-v*")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModel", "sagemaker:DescribeModel"],
                resources=[arn("model", model_pattern)],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig"],
                resources=[configs],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                ],
                resources=[arn("endpoint", endpoint), configs],
            )
        )

    def _grant_deployment(self, role: iam.Role) -> None:
        """What ``SageMakerEndpointDeployer`` calls, on ``cst-daily-ml*`` names only."""
        self._grant_endpoint(role, f"{MODEL_GROUP}-v*", ENDPOINT_NAME)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        for kind, name in (
            ("model", f"{MODEL_GROUP}-v*"),
            ("endpoint-config", f"{ENDPOINT_NAME}-v*"),
        ):
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:{kind}/{name}]",
                (
                    f"Promotion creates one SageMaker {kind} per model version, named "
                    f"{name[:-1]}<N>-<digest>; the grant covers those names only."
                ),
            )

    def _grant_ranking_deployment(self, role: iam.Role, lake: DataLake, endpoint: str) -> None:
        """What ``SageMakerRankingDeployer`` calls: the ranking registry's artefacts read, the
        packed tarball written beside each, and the SageMaker model, configuration and endpoint
        of ``endpoint`` only (its ``iam:PassRole`` of the SageMaker role is the classifier's)."""
        grant_lake_objects(
            role,
            lake.bucket,
            ["s3:GetObject"],
            prefixes=(RANKING_VERSIONS,),
            reason=(
                f"Promoting or deploying a {RANKING_GROUP} version reads its registry artefact "
                f"(models/{RANKING_GROUP}/v<NNNN>/): read-only, that model group only."
            ),
        )
        grant_lake_objects(
            role,
            lake.bucket,
            ["s3:PutObject"],
            prefixes=(RANKING_TARBALLS,),
            reason=(
                "Promotion packs the production ranking booster for the XGBoost container as "
                f"models/{RANKING_GROUP}/v<NNNN>/model.tar.gz: that object name only."
            ),
        )
        name = endpoint.lower()
        self._grant_endpoint(role, f"{name}-v*", name)
        for kind in ("model", "endpoint-config"):
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:{kind}/{name}-v*]",
                (
                    f"Promotion of a {RANKING_GROUP} version creates one SageMaker {kind} per "
                    f"version, named {name}-v<N>-<sha8>; the grant covers those names only."
                ),
            )

    def _launcher_policy(
        self, stack: Stack, lake: DataLake, group_arn: str, packages_arn: str
    ) -> iam.ManagedPolicy:
        """For the operator (or CI role) that runs ``cst model train --on sagemaker``."""
        jobs_arn = stack.format_arn(
            service="sagemaker", resource="training-job", resource_name=f"{MODEL_GROUP}-*"
        )
        policy = iam.ManagedPolicy(
            self,
            "TrainingLauncherPolicy",
            description="cst model train --on sagemaker: start cst-daily-ml training jobs",
            statements=[
                iam.PolicyStatement(
                    actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"],
                    resources=[jobs_arn],
                ),
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[self.sagemaker_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    actions=["s3:PutObject"],
                    resources=[
                        lake.bucket.arn_for_objects(TRAINING_CHANNELS),
                        lake.bucket.arn_for_objects(TRAINING_CODE),
                        lake.bucket.arn_for_objects(MODEL_VERSIONS),
                    ],
                ),
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[
                        lake.bucket.arn_for_objects(TRAINING_OUTPUT),
                        lake.bucket.arn_for_objects(MODEL_VERSIONS),
                    ],
                ),
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:ListModelPackages",
                        "sagemaker:CreateModelPackage",
                    ],
                    resources=[group_arn, packages_arn],
                ),
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                    resources=[packages_arn],
                ),
            ],
        )
        bucket_child = lake.bucket.node.default_child
        assert bucket_child is not None
        bucket_id = stack.resolve(stack.get_logical_id(bucket_child))  # type: ignore[arg-type]
        for rule, reason in (
            (
                "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                f"training-job/{MODEL_GROUP}-*",
                "Training job names carry a timestamp; the grant covers cst-daily-ml-* jobs only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{TRAINING_CHANNELS}",
                "The launcher uploads each job's train channel under ml/training/<job>/ only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{TRAINING_CODE}",
                "The launcher uploads each job's source tarball under models/code/<job>/ only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{TRAINING_OUTPUT}",
                "The launcher reads the job's output model under models/training-jobs/ only.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{MODEL_VERSIONS}",
                f"The launcher registers versions (artifacts and digest) under models/{MODEL_GROUP}/.",
            ),
            (
                "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                f"model-package/{MODEL_GROUP}/*",
                "Model package ARNs end in the version number SageMaker assigns; the grant "
                f"covers the versions of the {MODEL_GROUP} group only.",
            ),
        ):
            acknowledge(policy, f"AwsSolutions-IAM5[{rule}]", reason)
        return policy

    # ------------------------------------------------------------------ endpoint
    def _endpoint(self, model_data_url: str) -> sagemaker.CfnEndpoint:
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.sagemaker_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self.image_uri,
                model_data_url=model_data_url,
                environment={
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                },
            ),
        )
        config = sagemaker.CfnEndpointConfig(
            self,
            "ServerlessConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name="production",
                    model_name=model.attr_model_name,
                    serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=SERVERLESS_MEMORY_MB,
                        max_concurrency=SERVERLESS_MAX_CONCURRENCY,
                    ),
                )
            ],
        )
        return sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_config_name=config.attr_endpoint_config_name
        )

    # ------------------------------------------------------------------ definition
    def _invoke(
        self, state_id: str, payload: Mapping[str, Any], result_path: str
    ) -> tasks.LambdaInvoke:
        return lambda_task(self, state_id, self.canary.function, payload, result_path)

    def _definition(self) -> sfn.IChainable:
        version = sfn.JsonPath.number_at("$.version")
        rollback = self._invoke(
            "Rollback",
            {
                "action": "rollback",
                "version": version,
                "failure": sfn.JsonPath.object_at("$.failure"),
            },
            "$.rolled_back",
        )
        rollback.add_retry(errors=[sfn.Errors.ALL], interval=Duration.seconds(1), max_attempts=2)
        rollback.next(
            sfn.Fail(self, "RolledBack", error=ROLLED_BACK_ERROR, cause_path="$.failure.Cause")
        )

        def gate(stage: str, on_pass: sfn.IChainable) -> sfn.Chain:
            title = stage.capitalize()
            evaluate = self._invoke(
                f"Evaluate{title}",
                {
                    "action": "evaluate",
                    "version": version,
                    "asof": sfn.JsonPath.string_at("$.asof"),
                },
                f"$.{stage}_gate",
            )
            failed = sfn.Pass(
                self,
                f"{title}GateFailed",
                parameters={
                    "Error": f"ModelCanary.{title}GateFailed",
                    "Cause": sfn.JsonPath.string_at(f"$.{stage}_gate.summary"),
                },
                result_path="$.failure",
            ).next(rollback)
            choice = (
                sfn.Choice(self, f"{title}GatePassed")
                .when(sfn.Condition.string_equals(f"$.{stage}_gate.verdict", "advance"), on_pass)
                .otherwise(failed)
            )
            evaluate.add_catch(rollback, errors=[sfn.Errors.ALL], result_path="$.failure")
            return evaluate.next(choice)

        start_shadow = self._invoke(
            "StartShadow", {"action": "start_shadow", "version": version}, "$.shadow"
        )
        start_canary = self._invoke(
            "StartCanary", {"action": "start_canary", "version": version}, "$.canary"
        )
        promote = self._invoke("Promote", {"action": "promote", "version": version}, "$.promoted")
        for task in (start_shadow, start_canary, promote):
            task.add_catch(rollback, errors=[sfn.Errors.ALL], result_path="$.failure")
        shadow_wait = sfn.Wait(
            self, "ShadowPeriod", time=sfn.WaitTime.seconds_path("$.shadow_seconds")
        )
        canary_wait = sfn.Wait(
            self, "CanaryPeriod", time=sfn.WaitTime.seconds_path("$.canary_seconds")
        )
        promoted = sfn.Succeed(self, "Promoted", comment="the candidate is the production model")
        canary_path = start_canary.next(canary_wait).next(gate("canary", promote.next(promoted)))
        return start_shadow.next(shadow_wait).next(gate("shadow", canary_path))
