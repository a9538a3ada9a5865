"""The HTTP API: API Gateway (REST, Lambda proxy) in front of the API function.

Every method needs an API key of the usage plan (throttled and quota-limited) except the two
public ones: ``GET /health`` (liveness: ``{"status": "ok"}``, no dependency checked or named) and
``GET /openapi.json`` (the API's published document), both under the stage's throttling. ``POST
/api/v1/killswitch`` needs IAM (SigV4) as well, so only principals granted
``execute-api:Invoke`` on it (see ``operator_policy``) can flip the switch. The kill-switch has
its own usage plan and key (1 request/s, burst 2, 200 a day), and the read plan throttles that
one method to the same pace, so no key can flip the switch faster. API Gateway validates
query strings and bodies before the function runs, the function validates them again against
its pydantic models. Access logs are JSON, traced with X-Ray.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.data_lake import DataLake
from infra.constructs.grants import grant_table
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.nag import acknowledge
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_tables import StateTables

API_HANDLER: Final = "cryptosmarttrader.handlers.api.handler"
API_SERVICE: Final = "cst-api"
# The routes that read Parquet candles or the model registry (polars, numpy): served by the API's
# lake function, the same handler from a bundle with polars (the scan's); every other route by
# the API function, whose bundle holds neither.
API_LAKE_HANDLER: Final = "cryptosmarttrader.handlers.api.lake_views_handler"
API_LAKE_SERVICE: Final = "cst-api-lake"
API_LAKE_ROUTES: Final = ("/api/v1/coins/{symbol}", "/api/v1/portfolio", "/api/v1/models")
STAGE: Final = "prod"
RATE_LIMIT_RPS: Final = 20
BURST_LIMIT: Final = 40
DAILY_QUOTA: Final = 100_000
# POST /api/v1/killswitch: its own usage plan (and key), stricter than the reads
KILLSWITCH_RATE_LIMIT_RPS: Final = 1
KILLSWITCH_BURST_LIMIT: Final = 2
KILLSWITCH_DAILY_QUOTA: Final = 200
# No API key, no authorizer: what a load balancer, an uptime checker or an API client reads.
PUBLIC_ROUTES: Final = ("/health", "/openapi.json")
READ_ROUTES: Final = (
    "/api/v1/health",
    "/api/v1/market/overview",
    "/api/v1/signals",
    "/api/v1/positions",
    "/api/v1/risk",
    "/api/v1/coins/{symbol}",
    "/api/v1/portfolio",
    "/api/v1/audit",
    "/api/v1/breakers",
    "/api/v1/golive",
    "/api/v1/models",
)
KILLSWITCH_ROUTE: Final = "/api/v1/killswitch"
ENV_CORS_ORIGIN: Final = "CST_CORS_ORIGIN"
CORS_HEADERS: Final = ("Content-Type", "x-api-key", "Authorization", "X-Correlation-Id")
# Everything about the routes that a deployment must follow (method, path, authorization).
ROUTE_TABLE: Final = ";".join(
    [
        *(f"GET {r} public" for r in PUBLIC_ROUTES),
        *(f"GET {r} apikey" for r in READ_ROUTES),
        f"POST {KILLSWITCH_ROUTE} apikey+iam",
    ]
)


class Api(Construct):
    """REST API, its two functions, usage plan + API key, access logs and the operator policy.

    API function grants: state table read + conditional put (signals, risk, audit trail);
    positions and orders read; kill-switch parameter read and write; lake ``HeadBucket``
    (health). Lake function (``API_LAKE_ROUTES``): state table read, positions and orders read,
    the lake's candles (``GetObject`` under ``exchange=``) and the kill-switch read.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: LambdaCode,
        lake_code: LambdaCode,
        config: DeploymentConfig,
        lake: DataLake,
        tables: StateTables,
        kill_switch: KillSwitch,
        environment: Mapping[str, str],
        cors_origin: str | None = None,
    ) -> None:
        """``code``: a bundle without polars; ``lake_code``: one with polars and numpy (the lake
        routes). ``cors_origin``: the web dashboard's origin, the only one browsers may call
        from."""
        super().__init__(scope, construct_id)
        if cors_origin is not None:
            environment = {**environment, ENV_CORS_ORIGIN: cors_origin}
        # the API reports where orders go (deep health, risk): the same mode as the execution
        environment = {**environment, "CST_VENUE_MODE": config.venue_mode}
        self.lambda_ = PythonFunction(
            self,
            "Api",
            code=code,
            handler=API_HANDLER,
            description="HTTP API: health, OpenAPI, market overview, signals, positions, risk, "
            "kill-switch",
            service_name=API_SERVICE,
            environment=environment,
            memory_mb=1024,
            timeout=Duration.seconds(15),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        role = self.lambda_.role
        grant_table(role, tables.state, ["GetItem", "PutItem", "Query"])
        grant_table(role, tables.positions, ["Scan"])
        grant_table(role, tables.orders, ["Scan"])
        kill_switch.parameter.grant_read(role)
        kill_switch.parameter.grant_write(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.bucket.bucket_arn])
        )

        self.lake_lambda = PythonFunction(
            self,
            "ApiLake",
            code=lake_code,
            handler=API_LAKE_HANDLER,
            description="HTTP API's lake views: coin view, portfolio marks, model registry",
            service_name=API_LAKE_SERVICE,
            environment=environment,
            memory_mb=1024,
            timeout=Duration.seconds(15),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        lake_role = self.lake_lambda.role
        grant_table(lake_role, tables.state, ["GetItem", "Query"])
        grant_table(lake_role, tables.positions, ["Scan"])
        grant_table(lake_role, tables.orders, ["Scan"])
        kill_switch.parameter.grant_read(lake_role)
        # the coin view's candles: objects under the candle prefix only, and the listing of that
        # prefix (the lake finds a coin's month and date objects with ListObjectsV2)
        lake_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[lake.bucket.arn_for_objects("exchange=*")]
            )
        )
        lake_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[lake.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["exchange=*"]}},
            )
        )
        lake_id = Stack.of(self).resolve(
            Stack.of(self).get_logical_id(lake.bucket.node.default_child)  # type: ignore[arg-type]
        )
        acknowledge(
            lake_role,
            f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/exchange=*]",
            "The coin view reads one coin's candles from the lake; the candles are keyed "
            "exchange=/timeframe=/symbol=/(date= or month=), so the read is scoped to that prefix "
            "(GetObject only; the model artifacts and other prefixes stay out of reach).",
        )

        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="CryptoSmartTrader API (OpenAPI: docs/openapi.json)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            deploy=False,  # deployment below, with a logical id that follows the routes only
            default_method_options=apigw.MethodOptions(api_key_required=True),
            cloud_watch_role=False,
            # browsers may call it from the dashboard's origin only (preflight without a key)
            default_cors_preflight_options=None
            if cors_origin is None
            else apigw.CorsOptions(
                allow_origins=[cors_origin],
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=list(CORS_HEADERS),
                max_age=Duration.hours(1),
            ),
        )
        if cors_origin is not None:
            # API Gateway's own refusals (a wrong key: 403) carry the origin too, so the
            # dashboard can tell "wrong key" from "unreachable"
            for name, kind in (
                ("Cors4xx", apigw.ResponseType.DEFAULT_4_XX),
                ("Cors5xx", apigw.ResponseType.DEFAULT_5_XX),
            ):
                self.rest_api.add_gateway_response(
                    name,
                    type=kind,
                    response_headers={
                        "Access-Control-Allow-Origin": f"'{cors_origin}'",
                        "Vary": "'Origin'",
                    },
                )
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(self.lambda_.function, proxy=True)
        lake_integration = apigw.LambdaIntegration(self.lake_lambda.function, proxy=True)

        self.public_methods: list[apigw.Method] = [
            self.rest_api.root.resource_for_path(route).add_method(
                "GET",
                integration,
                api_key_required=False,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
            )
            for route in PUBLIC_ROUTES
        ]
        self.read_methods: list[apigw.Method] = []
        for route in READ_ROUTES:
            resource = self.rest_api.root.resource_for_path(route)
            target = lake_integration if route in API_LAKE_ROUTES else integration
            self.read_methods.append(
                resource.add_method("GET", target, request_validator=validator)
            )
        self.killswitch_method = self.rest_api.root.resource_for_path(KILLSWITCH_ROUTE).add_method(
            "POST",
            integration,
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=True,
            request_validator=validator,
        )

        # CDK names a deployment after a hash that includes the RestApi's CloudFormation
        # metadata, which differs between `cdk synth` (path metadata on) and an in-process
        # synth. This one is named after the route table: a changed route or authorization
        # still forces a new deployment, and both synths agree.
        routes = ROUTE_TABLE + ("" if cors_origin is None else ";OPTIONS * cors")
        self.deployment = apigw.Deployment(
            self, "Deployment", api=self.rest_api, description="routes: " + routes
        )
        digest = hashlib.sha256(routes.encode()).hexdigest()[:16]
        cfn_deployment = self.deployment.node.default_child
        assert isinstance(cfn_deployment, apigw.CfnDeployment)
        cfn_deployment.override_logical_id(f"ApiDeployment{digest}")
        stage = apigw.Stage(
            self,
            "Stage",
            deployment=self.deployment,
            stage_name=STAGE,
            tracing_enabled=True,
            metrics_enabled=True,
            throttling_rate_limit=RATE_LIMIT_RPS,
            throttling_burst_limit=BURST_LIMIT,
            access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
            access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                caller=True,
                http_method=True,
                ip=True,
                protocol=True,
                request_time=True,
                resource_path=True,
                response_length=True,
                status=True,
                user=True,
            ),
        )
        self.rest_api.deployment_stage = stage

        self.api_key = self.rest_api.add_api_key(
            "OperatorKey", description="CryptoSmartTrader operators"
        )
        plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="Throttled, quota-limited access for API-key holders",
            throttle=apigw.ThrottleSettings(rate_limit=RATE_LIMIT_RPS, burst_limit=BURST_LIMIT),
            quota=apigw.QuotaSettings(limit=DAILY_QUOTA, period=apigw.Period.DAY),
        )
        plan.add_api_key(self.api_key)
        killswitch_throttle = [
            apigw.ThrottlingPerMethod(
                method=self.killswitch_method,
                throttle=apigw.ThrottleSettings(
                    rate_limit=KILLSWITCH_RATE_LIMIT_RPS, burst_limit=KILLSWITCH_BURST_LIMIT
                ),
            )
        ]
        # the read key may still POST the kill-switch, but only at the kill-switch's pace
        plan.add_api_stage(stage=self.rest_api.deployment_stage, throttle=killswitch_throttle)
        # the kill-switch's own usage plan and key: stricter throttling and a small daily quota
        self.killswitch_api_key = self.rest_api.add_api_key(
            "KillSwitchOperatorKey", description="CryptoSmartTrader kill-switch operators"
        )
        self.killswitch_plan = self.rest_api.add_usage_plan(
            "KillSwitchUsagePlan",
            description="Kill-switch operators: strict throttling, small daily quota",
            throttle=apigw.ThrottleSettings(
                rate_limit=KILLSWITCH_RATE_LIMIT_RPS, burst_limit=KILLSWITCH_BURST_LIMIT
            ),
            quota=apigw.QuotaSettings(limit=KILLSWITCH_DAILY_QUOTA, period=apigw.Period.DAY),
        )
        self.killswitch_plan.add_api_key(self.killswitch_api_key)
        self.killswitch_plan.add_api_stage(
            stage=self.rest_api.deployment_stage, throttle=killswitch_throttle
        )

        self.operator_policy = iam.ManagedPolicy(
            self,
            "KillSwitchOperatorPolicy",
            description="Attach to the people/roles allowed to flip the kill-switch through the API",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[self.rest_api.arn_for_execute_api("POST", KILLSWITCH_ROUTE, STAGE)],
                )
            ],
        )
        self._acknowledge()

    @property
    def url(self) -> str:
        return self.rest_api.url

    def _acknowledge(self) -> None:
        stage = self.rest_api.deployment_stage
        acknowledge(
            stage,
            "AwsSolutions-APIG3",
            (
                "No WAF web ACL: the API serves a handful of operators, every method but the "
                "public liveness and OpenAPI document needs an API key of a throttled, "
                "quota-limited usage plan, the stage throttles all of them, and a web ACL would "
                "cost more than the whole stack; attach one per deployment where the API is "
                "exposed wider."
            ),
        )
        acknowledge(
            stage,
            "AwsSolutions-APIG6",
            (
                "Execution logging needs the account-wide API Gateway CloudWatch role "
                "(AWS::ApiGateway::Account), a singleton this stack must not own; every request is "
                "in the stage's JSON access log and the function logs each one with its "
                "correlation id."
            ),
        )
        for method in self.read_methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                (
                    "Read-only GET method protected by an API key of a throttled usage plan; the "
                    "only state-changing method (POST /api/v1/killswitch) uses IAM authorization."
                ),
            )
        for method in self.public_methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                (
                    'Public on purpose: GET /health answers only {"status": "ok"} (no '
                    "dependency is checked or named; the deep check is GET /api/v1/health behind "
                    "the key) and GET /openapi.json serves the API's published document. Both are "
                    "read-only, touch no data and are throttled by the stage."
                ),
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                (
                    "Public on purpose (liveness and the OpenAPI document, read-only, no data): "
                    "uptime checkers and API clients call them without credentials."
                ),
            )
        for method in [*self.read_methods, self.killswitch_method]:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                (
                    "Operators are IAM principals, not end users: there is no Cognito user pool; "
                    "reads need an API key, the kill-switch needs IAM SigV4 and an API key."
                ),
            )
