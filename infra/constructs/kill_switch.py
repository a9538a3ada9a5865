"""The kill-switch: one SSM String parameter every trading path reads before acting.

Its value belongs to the operators and the product's writers, never to CloudFormation. When the
stack owned an ``AWS::SSM::Parameter``, any change to it (description, tier, tags) made the
update write the template's value: a deploy turned a live ON back to OFF. Now:

* the stack holds a ``Custom::KillSwitchSeed`` resource whose function
  (``handlers/kill_switch_seed.py``) creates the parameter OFF on the first deployment with
  ``Overwrite=False`` and does nothing on every later Create / Update / Delete — the value
  survives every deploy, a changed construct, and even the stack's deletion;
* every function gets the parameter by name (``CST_KILL_SWITCH_PARAM``) and grants on its ARN;
* :meth:`KillSwitch.audit_writes` adds the audit function and the two EventBridge rules that
  record every write with its real principal (see ``handlers/kill_switch_audit.py``; the
  CloudTrail rule needs a trail in the account, docs/infrastructure.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.grants import grant_table
from infra.constructs.python_function import ASYNC_RETRY_ATTEMPTS, MAX_EVENT_AGE, PythonFunction
from infra.constructs.state_tables import StateTables

KILL_SWITCH_PARAMETER_NAME: Final = "/cst/kill-switch"
SEED_HANDLER: Final = "cryptosmarttrader.handlers.kill_switch_seed.handler"
AUDIT_HANDLER: Final = "cryptosmarttrader.handlers.kill_switch_audit.handler"
SEED_SERVICE: Final = "cst-kill-switch-seed"
AUDIT_SERVICE: Final = "cst-kill-switch-audit"
SEED_RESOURCE_TYPE: Final = "Custom::KillSwitchSeed"
# how long CloudFormation waits for the seed's answer: the function's 60 s timeout, and room
# for one asynchronous retry of an invocation that died without answering
SEED_SERVICE_TIMEOUT: Final = Duration.minutes(5)
# `-c cst:kill-switch:description=...`: the description the parameter is created with (changing
# it changes this construct, and must not change the switch)
DESCRIPTION_CONTEXT_KEY: Final = "cst:kill-switch:description"
# every SSM API that changes a parameter's value or a version's label
AUDITED_CALLS: Final = (
    "PutParameter",
    "DeleteParameter",
    "DeleteParameters",
    "LabelParameterVersion",
)


class KillSwitch(Construct):
    """``/cst/kill-switch`` holding ``{"on", "reason", "actor", "at"}`` as JSON, created once."""

    def __init__(
        self, scope: Construct, construct_id: str, *, code: LambdaCode, config: DeploymentConfig
    ) -> None:
        super().__init__(scope, construct_id)
        self.parameter = ssm.StringParameter.from_string_parameter_name(
            self, "Parameter", KILL_SWITCH_PARAMETER_NAME
        )
        self.seed_lambda = PythonFunction(
            self,
            "SeedFunction",
            code=code,
            handler=SEED_HANDLER,
            description="Creates the kill-switch parameter once (off); never overwrites it",
            service_name=SEED_SERVICE,
            environment={},
            memory_mb=256,
            timeout=Duration.seconds(60),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        self.seed_lambda.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:PutParameter"], resources=[self.parameter.parameter_arn]
            )
        )
        self.seed = CustomResource(
            self,
            "Seed",
            service_token=self.seed_lambda.function.function_arn,
            resource_type=SEED_RESOURCE_TYPE,
            properties={
                "ParameterName": KILL_SWITCH_PARAMETER_NAME,
                "Description": str(
                    self.node.try_get_context(DESCRIPTION_CONTEXT_KEY)
                    or f"CryptoSmartTrader kill-switch ({config.stage}): when on, no new order "
                    "is placed."
                ),
            },
            removal_policy=RemovalPolicy.RETAIN,
            # the function answers within its own 60 s (FAILED when SSM is slow); should no
            # answer come at all (a crash), the stack fails after this instead of an hour
            service_timeout=SEED_SERVICE_TIMEOUT,
        )
        self.audit_lambda: PythonFunction | None = None
        self.audit_rules: dict[str, events.Rule] = {}

    def audit_writes(
        self,
        *,
        code: LambdaCode,
        config: DeploymentConfig,
        tables: StateTables,
        environment: Mapping[str, str],
    ) -> PythonFunction:
        """The audit function and its rules: CloudTrail's record of each SSM write call (with
        the principal; needs a trail) and Parameter Store's own change event (no principal)."""
        function = PythonFunction(
            self,
            "AuditFunction",
            code=code,
            handler=AUDIT_HANDLER,
            description="Audits every write of the kill-switch parameter with its real principal",
            service_name=AUDIT_SERVICE,
            environment=environment,
            memory_mb=256,
            timeout=Duration.seconds(30),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"], resources=[self.parameter.parameter_arn]
            )
        )
        grant_table(function.role, tables.state, ["PutItem"])
        patterns = {
            "CloudTrailWrites": events.EventPattern(
                source=["aws.ssm"],
                detail_type=["AWS API Call via CloudTrail"],
                detail={
                    "eventSource": ["ssm.amazonaws.com"],
                    "eventName": list(AUDITED_CALLS),
                    "$or": [
                        {"requestParameters": {"name": [KILL_SWITCH_PARAMETER_NAME]}},
                        {"requestParameters": {"names": [KILL_SWITCH_PARAMETER_NAME]}},
                    ],
                },
            ),
            "ParameterStoreChanges": events.EventPattern(
                source=["aws.ssm"],
                detail_type=["Parameter Store Change"],
                detail={"name": [KILL_SWITCH_PARAMETER_NAME]},
            ),
        }
        for rule_id, pattern in patterns.items():
            rule = events.Rule(
                self,
                rule_id,
                description=f"Kill-switch writes ({rule_id}) to the audit function",
                event_pattern=pattern,
            )
            rule.add_target(
                targets.LambdaFunction(
                    function.function,
                    dead_letter_queue=function.dead_letter_queue,
                    retry_attempts=ASYNC_RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            )
            self.audit_rules[rule_id] = rule
        self.audit_lambda = function
        return function
