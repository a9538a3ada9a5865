"""The go-live pipeline: a Step Functions machine over two Lambdas and an SNS topic.

``StartStaging`` (paper trading) → wait ``$.run.staging_seconds`` → staging SLO gate →
``StartCanary`` (≤ 1 % of the risk budget) → wait ``$.run.canary_seconds`` → canary SLO gate →
``Promote`` (production). A breach or ANY failed task goes to the rollback chain: kill-switch on,
open orders canceled, live version reverted, operators notified (SNS), rollback recorded, and
the execution ends ``Fail`` with the reason. Each compensation step is retried and, if it still
fails, recorded and skipped, so one failing step never blocks the others.

Every duration is an execution-input parameter (Wait ``SecondsPath``), so a test runs the whole
sequence in seconds. See docs/golive.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.grants import grant_table
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.nag import acknowledge
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_machines import EXECUTION_NAME, lambda_task, logged_state_machine
from infra.constructs.state_tables import StateTables

STEPS_HANDLER: Final = "cryptosmarttrader.handlers.golive_steps.handler"
SLO_HANDLER: Final = "cryptosmarttrader.handlers.golive_slo.handler"
STEPS_SERVICE: Final = "cst-golive"
SLO_SERVICE: Final = "cst-golive-slo"
METRICS_NAMESPACE: Final = "CryptoSmartTrader"
ROLLED_BACK_ERROR: Final = "GoLive.RolledBack"
ROLLBACK_NOT_RECORDED_ERROR: Final = "GoLive.RollbackNotRecorded"
# A compensation step is retried twice (1 s, then 2 s) before it is recorded as failed.
COMPENSATION_RETRY: Final = {"interval": 1, "max_attempts": 2, "backoff_rate": 2.0}
# The venue's order step is throttled while an execution cycle runs (reserved concurrency 1):
# retried after 10, 20, 40, 80, 160 and 320 s (over 10 minutes, longer than a cycle).
THROTTLED_RETRY: Final = {"interval": 10, "max_attempts": 6, "backoff_rate": 2.0}


class GoLive(Construct):
    """Go-live state machine, its step and SLO-gate functions, and the alert topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: LambdaCode,
        config: DeploymentConfig,
        tables: StateTables,
        kill_switch: KillSwitch,
        environment: Mapping[str, str],
        venue_orders: PythonFunction | None = None,
    ) -> None:
        """``venue_orders``: on a testnet / live deployment, the execution function: the
        rollback's ``CancelOpenOrders`` task invokes it, so the cancels reach the venue through
        the function that holds the account's keys and runs one at a time (never beside a
        cycle). None (paper): the steps function cancels in the order store."""
        super().__init__(scope, construct_id)
        self.venue_orders = venue_orders

        key = kms.Key(
            self,
            "TopicKey",
            description="CryptoSmartTrader go-live alerts (SNS server-side encryption)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self,
            "Alerts",
            display_name="CryptoSmartTrader go-live",
            master_key=key,
            enforce_ssl=True,
        )

        common: dict[str, Any] = {
            "code": code,
            "environment": {**environment, "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE},
            "memory_mb": 256,
            "timeout": Duration.seconds(60),
            "log_level": config.log_level,
            "log_retention_days": config.log_retention_days,
        }
        self.steps = PythonFunction(
            self,
            "Steps",
            handler=STEPS_HANDLER,
            description="Go-live steps: stage start, promotion, rollback compensation",
            service_name=STEPS_SERVICE,
            **common,
        )
        steps_role = self.steps.role
        kill_switch.parameter.grant_read(steps_role)
        kill_switch.parameter.grant_write(steps_role)
        grant_table(steps_role, tables.orders, ["Scan", "UpdateItem"])
        grant_table(steps_role, tables.state, ["GetItem", "PutItem", "Query"])

        self.slo = PythonFunction(
            self,
            "SloGate",
            handler=SLO_HANDLER,
            description="Go-live SLO gate: uptime, p95 latency, tracking error, burn rate",
            service_name=SLO_SERVICE,
            **common,
        )
        grant_table(self.slo.role, tables.state, ["PutItem", "Query"])
        self.slo.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        policy = self.slo.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            (
                "cloudwatch:GetMetricData supports no resource-level permissions; the grant is "
                "read-only and the SLO gate queries the CryptoSmartTrader namespace only."
            ),
        )

        self.state_machine, self.log_group = logged_state_machine(
            self,
            "StateMachine",
            "ExecutionLogs",
            self._definition(),
            "CryptoSmartTrader go-live: staging -> SLO gate -> canary -> SLO gate -> production",
            (
                "Step Functions X-Ray tracing and CloudWatch Logs delivery "
                "(logs:CreateLogDelivery, logs:DescribeResourcePolicies...) support no "
                "resource-level permissions, so AWS requires Resource '*'."
            ),
        )
        invoked = (self.steps, self.slo) + ((venue_orders,) if venue_orders else ())
        for function in invoked:
            acknowledge(
                self.state_machine.role,
                f"AwsSolutions-IAM5[Resource::<{self._logical_id(function)}.Arn>:*]",
                (
                    "lambda:InvokeFunction on the go-live function's versions and aliases "
                    "(ARN:*), granted by CDK's LambdaInvoke so a qualified ARN also works."
                ),
            )

    @staticmethod
    def _logical_id(function: PythonFunction) -> str:
        stack = Stack.of(function)
        child = function.function.node.default_child
        assert child is not None
        return str(stack.resolve(stack.get_logical_id(child)))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ definition

    def _invoke(
        self,
        state_id: str,
        function: PythonFunction,
        payload: Mapping[str, Any],
        result_path: str,
        comment: str | None = None,
    ) -> tasks.LambdaInvoke:
        return lambda_task(self, state_id, function.function, payload, result_path, comment)

    def _compensation(
        self,
        state_id: str,
        action: str,
        result_path: str,
        comment: str,
        function: PythonFunction | None = None,
    ) -> tasks.LambdaInvoke:
        task = self._invoke(
            state_id,
            function or self.steps,
            {
                "action": action,
                "run_id": sfn.JsonPath.string_at(EXECUTION_NAME),
                "failure": sfn.JsonPath.object_at("$.failure"),
            },
            result_path,
            comment,
        )
        if function is not None:
            # reserved concurrency 1 (the execution function): an invocation during a cycle is
            # throttled; waited out before the generic retry (States.ALL must come last)
            task.add_retry(
                errors=["Lambda.TooManyRequestsException"],
                interval=Duration.seconds(THROTTLED_RETRY["interval"]),
                max_attempts=int(THROTTLED_RETRY["max_attempts"]),
                backoff_rate=float(THROTTLED_RETRY["backoff_rate"]),
            )
        task.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(COMPENSATION_RETRY["interval"]),
            max_attempts=int(COMPENSATION_RETRY["max_attempts"]),
            backoff_rate=float(COMPENSATION_RETRY["backoff_rate"]),
        )
        return task

    def _rollback_chain(self) -> sfn.IChainable:
        kill = self._compensation(
            "EngageKillSwitch", "kill_switch", "$.rollback_kill_switch", "stop all trading"
        )
        if self.venue_orders is None:
            cancel = self._compensation(
                "CancelOpenOrders", "cancel_orders", "$.rollback_orders", "cancel open orders"
            )
        else:
            cancel = self._compensation(
                "CancelOpenOrders",
                "golive_cancel_orders",
                "$.rollback_orders",
                "cancel open orders at the venue (the execution function)",
                self.venue_orders,
            )
        revert = self._compensation(
            "RevertVersion", "revert_version", "$.rollback_version", "revert the live version"
        )
        notify = tasks.SnsPublish(
            self,
            "NotifyOperators",
            topic=self.topic,
            subject="CryptoSmartTrader go-live rolled back",
            message=sfn.TaskInput.from_object(
                {
                    "run_id": sfn.JsonPath.string_at(EXECUTION_NAME),
                    "error": sfn.JsonPath.string_at("$.failure.Error"),
                    "cause": sfn.JsonPath.string_at("$.failure.Cause"),
                    "kill_switch": sfn.JsonPath.object_at("$.rollback_kill_switch"),
                    "orders": sfn.JsonPath.object_at("$.rollback_orders"),
                    "version": sfn.JsonPath.object_at("$.rollback_version"),
                }
            ),
            result_selector={"message_id": sfn.JsonPath.string_at("$.MessageId")},
            result_path="$.rollback_notification",
        )
        notify.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(COMPENSATION_RETRY["interval"]),
            max_attempts=int(COMPENSATION_RETRY["max_attempts"]),
            backoff_rate=float(COMPENSATION_RETRY["backoff_rate"]),
        )
        record = self._invoke(
            "RecordRollback",
            self.steps,
            {
                "action": "record_rollback",
                "run_id": sfn.JsonPath.string_at(EXECUTION_NAME),
                "failure": sfn.JsonPath.object_at("$.failure"),
                "steps": {
                    "kill_switch": sfn.JsonPath.object_at("$.rollback_kill_switch"),
                    "orders": sfn.JsonPath.object_at("$.rollback_orders"),
                    "version": sfn.JsonPath.object_at("$.rollback_version"),
                    "notification": sfn.JsonPath.object_at("$.rollback_notification"),
                },
            },
            "$.rolled_back",
        )
        record.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(COMPENSATION_RETRY["interval"]),
            max_attempts=int(COMPENSATION_RETRY["max_attempts"]),
            backoff_rate=float(COMPENSATION_RETRY["backoff_rate"]),
        )
        rolled_back = sfn.Fail(
            self, "RolledBack", error=ROLLED_BACK_ERROR, cause_path="$.failure.Cause"
        )
        not_recorded = sfn.Fail(
            self,
            "RollbackNotRecorded",
            error=ROLLBACK_NOT_RECORDED_ERROR,
            cause="the rollback ran but its record could not be written: see the execution log",
        )
        # A compensation step that still fails is recorded in its own result slot and skipped.
        kill.add_catch(cancel, errors=[sfn.Errors.ALL], result_path="$.rollback_kill_switch")
        cancel.add_catch(revert, errors=[sfn.Errors.ALL], result_path="$.rollback_orders")
        revert.add_catch(notify, errors=[sfn.Errors.ALL], result_path="$.rollback_version")
        notify.add_catch(record, errors=[sfn.Errors.ALL], result_path="$.rollback_notification")
        record.add_catch(not_recorded, errors=[sfn.Errors.ALL], result_path="$.record_error")
        return kill.next(cancel).next(revert).next(notify).next(record).next(rolled_back)

    def _gate(self, stage: str, on_pass: sfn.IChainable, rollback: sfn.IChainable) -> sfn.Chain:
        title = stage.capitalize()
        evaluate = self._invoke(
            f"Evaluate{title}Slo",
            self.slo,
            {"stage": stage, "params": sfn.JsonPath.object_at("$.run")},
            "$.slo",
        )
        evaluate.add_catch(rollback, errors=[sfn.Errors.ALL], result_path="$.failure")
        breach = sfn.Pass(
            self,
            f"{title}SloBreach",
            parameters={
                "Error": f"{title}SloBreach",
                "Cause": sfn.JsonPath.string_at("$.slo.summary"),
            },
            result_path="$.failure",
        ).next(rollback)
        decide = (
            sfn.Choice(self, f"{title}SloMet")
            .when(sfn.Condition.boolean_equals("$.slo.passed", True), on_pass)
            .otherwise(breach)
        )
        return evaluate.next(decide)

    def _definition(self) -> sfn.IChainable:
        rollback = self._rollback_chain()
        start_staging = self._invoke(
            "StartStaging",
            self.steps,
            {
                "action": "start_stage",
                "stage": "staging",
                "run_id": sfn.JsonPath.string_at(EXECUTION_NAME),
                "params": sfn.JsonPath.entire_payload,
            },
            "$.run",
        )
        start_canary = self._invoke(
            "StartCanary",
            self.steps,
            {
                "action": "start_stage",
                "stage": "canary",
                "run_id": sfn.JsonPath.string_at(EXECUTION_NAME),
                "params": sfn.JsonPath.object_at("$.run"),
            },
            "$.canary",
        )
        promote = self._invoke(
            "Promote",
            self.steps,
            {"action": "promote", "params": sfn.JsonPath.object_at("$.run")},
            "$.production",
        )
        for task in (start_staging, start_canary, promote):
            task.add_catch(rollback, errors=[sfn.Errors.ALL], result_path="$.failure")

        wait_staging = sfn.Wait(
            self, "PaperTrading", time=sfn.WaitTime.seconds_path("$.run.staging_seconds")
        )
        wait_canary = sfn.Wait(
            self, "CanaryTrading", time=sfn.WaitTime.seconds_path("$.run.canary_seconds")
        )
        live = sfn.Succeed(self, "Live", comment="promoted to production")
        canary_path = start_canary.next(wait_canary).next(
            self._gate("canary", promote.next(live), rollback)
        )
        return start_staging.next(wait_staging).next(self._gate("staging", canary_path, rollback))
