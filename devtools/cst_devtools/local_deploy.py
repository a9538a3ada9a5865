"""Deploy the synthesized CDK app to a local AWS: a moto server on 127.0.0.1, or LocalStack.

* :func:`moto_server` starts ``ThreadedMotoServer`` on 127.0.0.1 with Step Functions executing
  (moto's parser backend swapped in before the server starts, ``MOTO_PORT`` set so deployed
  state machines call back into this server) and Lambda without Docker.
* :func:`deploy` runs ``cdklocal bootstrap`` then ``cdklocal deploy --require-approval never
  --method=direct`` (npx ``aws-cdk@2`` + ``aws-cdk-local``) against an endpoint, with the local
  synthesizer switch (``-c cst:local=true``), and returns the stack outputs.

The endpoint is whatever the user names: this module's own server, or a LocalStack at
``http://localhost.localstack.cloud:4566``. See docs/local-deployment.md.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from cst_devtools.environ import patched_environ
from cst_devtools.local_aws import (
    DUMMY_CREDENTIALS,
    patch_moto_dynamodb,
)

__all__ = [
    "CDKLOCAL",
    "DeployError",
    "DeployResult",
    "LocalStackState",
    "cdklocal_env",
    "deploy",
    "moto_server",
    "npx_path",
]

LOOPBACK: Final = "127.0.0.1"
REGION: Final = "us-east-1"
LOCAL_CONTEXT: Final = ("-c", "cst:local=true")
CDKLOCAL: Final = ("npx", "--yes", "-p", "aws-cdk@2", "-p", "aws-cdk-local", "cdklocal")
STATE_FILE: Final = "local-stack.json"
_DUMMY: Final = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


class DeployError(RuntimeError):
    """A cdklocal step failed; the message carries the tail of its output."""


class LocalStackState(BaseModel):
    """What ``cst local up`` (foreground or ``--detach``) leaves under the state dir for
    ``status`` and ``down``: the endpoint, the process serving it and the stack outputs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str
    pid: int | None = Field(default=None, ge=1)  # the process serving the endpoint (ours)
    port: int | None = Field(default=None, ge=1, le=65535)
    stack_outputs: dict[str, str] = Field(default_factory=dict)
    # detached: a background server; foreground: a `cst local up` in a terminal; external: an
    # endpoint someone else serves (LocalStack, a moto server started elsewhere)
    mode: Literal["detached", "foreground", "external"] = "detached"
    log_file: str | None = None  # the detached server's output

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> LocalStackState | None:
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DeployResult:
    endpoint: str
    stack_outputs: dict[str, str]
    seconds: dict[str, float]


def local_endpoint(port: int) -> str:
    """``http://localhost:<port>`` for a server bound to 127.0.0.1 (localhost is 127.0.0.1 in
    /etc/hosts). The name matters: moto's CloudFormation reads a ``TemplateURL`` path-style only
    when its host contains ``localhost``, and cdklocal builds that URL from the endpoint."""
    return f"http://localhost:{port}"


def npx_path() -> str | None:
    return shutil.which("npx")


_ALARM_MODEL: list[type[Any]] = []


def register_cloudwatch_alarm_resource() -> None:
    """Teach moto's CloudFormation ``AWS::CloudWatch::Alarm`` (moto 5.2 models the alarm API but
    not the resource type): alarms are created in moto's CloudWatch and expose ``Arn``, so
    stacks that reference them (alarm actions, permissions, dashboards) deploy locally. Alarm
    *actions* still never fire on moto."""
    if _ALARM_MODEL:
        return
    from moto.cloudformation import parsing
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    class CfnAlarm(CloudFormationModel):
        def __init__(self, alarm: Any) -> None:
            self.alarm = alarm

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @property
        def physical_resource_id(self) -> str:
            return str(self.alarm.name)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Arn":
                return str(self.alarm.alarm_arn)
            raise KeyError(attribute_name)

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> CfnAlarm:
            props = cloudformation_json["Properties"]
            backend = cloudwatch_backends[account_id][region_name]
            alarm = backend.put_metric_alarm(
                name=props.get("AlarmName") or resource_name,
                namespace=props.get("Namespace", ""),
                metric_name=props.get("MetricName", ""),
                comparison_operator=props["ComparisonOperator"],
                evaluation_periods=int(props["EvaluationPeriods"]),
                period=int(props.get("Period", 60)),
                threshold=float(props.get("Threshold", 0)),
                statistic=props.get("Statistic", "Average"),
                description=props.get("AlarmDescription", ""),
                dimensions=[
                    {"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions", [])
                ],
                alarm_actions=list(props.get("AlarmActions", [])),
                ok_actions=list(props.get("OKActions", [])),
                datapoints_to_alarm=props.get("DatapointsToAlarm"),
                extended_statistic=props.get("ExtendedStatistic"),
                treat_missing_data=props.get("TreatMissingData"),
                unit=props.get("Unit"),
            )
            return cls(alarm)

    _ALARM_MODEL.append(CfnAlarm)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


_PATCHED_INVOKE: list[Any] = []
_ENV_LOCK = threading.Lock()


@dataclass
class _CustomResourceContext:
    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    timeout_s: float = 60.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """What Lambda's context answers: the time left before the function's timeout."""
        return max(0, int((self.started + self.timeout_s - time.monotonic()) * 1000))


_STACK_LOOPS: dict[str, threading.Event] = {}  # stack id → its create / update loop returned
CUSTOM_RESOURCE_WAIT_S = 600.0
# CreateStack / UpdateStack wait this long at most for the in-process custom resources: well
# under an SDK's read timeout (boto3's is 60 s), which would retry CreateStack on a stack that
# exists. A slower handler completes the stack later, and the CLI's poll sees it then.
CREATE_STACK_ANSWER_WAIT_S = 20.0


class _InFlight:
    """The in-process custom-resource invocations each stack still waits for (stack id → count):
    counted when moto's create loop starts one, done when its handler has answered."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count: dict[str, int] = {}

    def started(self, stack_id: str) -> None:
        with self._changed:
            self._count[stack_id] = self._count.get(stack_id, 0) + 1

    def done(self, stack_id: str) -> None:
        with self._changed:
            self._count[stack_id] = max(0, self._count.get(stack_id, 0) - 1)
            self._changed.notify_all()

    def wait(self, stack_id: str, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._count.get(stack_id), timeout_s)


_IN_FLIGHT = _InFlight()


def _runs_in_process(handler: object) -> bool:
    return str(handler or "").startswith("cryptosmarttrader.handlers.")


def run_custom_resources_in_process(endpoint: str) -> None:
    """Teach moto's CloudFormation to run this package's custom resources (the kill-switch seed).

    moto answers a ``Custom::`` resource by invoking its function in a Docker container, and
    without Docker it never hears back: the stack would wait forever. Here a function whose
    handler is in ``cryptosmarttrader.handlers`` receives the custom-resource request in-process,
    with its deployed environment plus this server as its endpoint; the ``ResponseURL`` (moto
    builds it for ``host.docker.internal``) is pointed at this server. The handler's own PUT then
    completes the resource, as the real pre-signed S3 URL does. Other invocations are untouched.

    CreateStack, UpdateStack and ExecuteChangeSet answer once those handlers have answered (or
    after ``CREATE_STACK_ANSWER_WAIT_S``, for a slow one), so the stack is already complete when
    the CLI first asks (CloudFormation answers at once and the resource completes later; the
    CLI then polls every 5 s, which on a local server is only waiting: the outcome, the
    resources and the stack's events are the same).
    """
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.utils import get_backend as get_lambda_backend
    from moto.cloudformation.custom_model import CustomModel
    from moto.cloudformation.parsing import ResourceMap

    if _PATCHED_INVOKE:
        _PATCHED_INVOKE[0] = endpoint
        return
    _PATCHED_INVOKE.append(endpoint)
    original = LambdaFunction.invoke

    # moto invokes a custom resource's function on a thread while its create (or update) loop
    # goes on; a response arriving mid-loop makes moto check readiness, which creates every
    # resource not created yet a second time (two copies of each later function: rules target
    # one, outputs name the other). CloudFormation itself waits; so does this: the handler runs
    # once the stack's own create / update loop has returned.
    for name in ("create", "update"):
        method = getattr(ResourceMap, name)

        def looped(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            done = _STACK_LOOPS.setdefault(str(self.stack_id), threading.Event())
            done.clear()
            try:
                return _method(self, *args, **kwargs)
            finally:
                done.set()
                _IN_FLIGHT.wait(str(self.stack_id), CREATE_STACK_ANSWER_WAIT_S)

        setattr(ResourceMap, name, looped)

    create_custom = CustomModel.create_from_cloudformation_json

    def counted(
        cls: type[CustomModel],
        /,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CustomModel:
        token = cloudformation_json["Properties"]["ServiceToken"]
        function = get_lambda_backend(account_id, region_name).get_function(token)
        ours = _runs_in_process(getattr(function, "handler", ""))
        if ours:  # before moto starts the invocation's thread: the loop's end waits for it
            _IN_FLIGHT.started(str(kwargs["StackId"]))
        try:
            return create_custom(
                resource_name, cloudformation_json, account_id, region_name, **kwargs
            )
        except BaseException:
            if ours:
                _IN_FLIGHT.done(str(kwargs["StackId"]))
            raise

    CustomModel.create_from_cloudformation_json = classmethod(counted)  # type: ignore[method-assign,assignment]

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        try:
            event = json.loads(body) if isinstance(body, str | bytes) and body else None
        except ValueError:
            event = None
        handler_path = str(getattr(self, "handler", ""))
        if not (
            isinstance(event, dict) and "ResponseURL" in event and _runs_in_process(handler_path)
        ):
            return original(self, body, request_headers, response_headers)
        try:
            return _answer(self, event, handler_path)
        finally:
            _IN_FLIGHT.done(str(event.get("StackId", "")))

    def _answer(self: Any, event: dict[str, Any], handler_path: str) -> bytes:
        loop = _STACK_LOOPS.get(str(event.get("StackId", "")))
        if loop is not None and not loop.wait(timeout=CUSTOM_RESOURCE_WAIT_S):
            raise DeployError(
                f"the stack's create loop did not finish within {CUSTOM_RESOURCE_WAIT_S:.0f} s"
            )
        local = urlsplit(str(_PATCHED_INVOKE[0]))
        event["ResponseURL"] = urlunsplit(urlsplit(event["ResponseURL"])._replace(
            scheme=local.scheme, netloc=local.netloc
        ))  # fmt: skip
        module_name, _, attribute = handler_path.rpartition(".")
        env = {
            **DUMMY_CREDENTIALS,
            **{k: str(v) for k, v in (self.environment_vars or {}).items()},
            "AWS_ENDPOINT_URL": str(_PATCHED_INVOKE[0]),
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        context = _CustomResourceContext(
            self.function_name,
            self.function_arn,
            str(event.get("RequestId", "")),
            timeout_s=float(getattr(self, "timeout", None) or 60),
        )
        with _ENV_LOCK, patched_environ(env):
            handler = getattr(importlib.import_module(module_name), attribute)
            return json.dumps(handler(event, context)).encode()

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]


class PortInUseError(OSError):
    """The local server's port is taken by another process."""


def _check_port_free(port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            raise PortInUseError(f"cannot listen on {LOOPBACK}:{port}: {exc}") from exc


_CLOUDFRONT_MODELS: list[type[Any]] = []


def register_cloudfront_resources() -> None:
    """Teach moto's CloudFormation the dashboard's ``AWS::CloudFront::Distribution`` and
    ``AWS::CloudFront::OriginAccessControl`` (moto 5.2 models the CloudFront API but not these
    resource types, and a ``Fn::GetAtt`` on a skipped resource fails the whole stack: the API's
    CORS origin is the distribution's ``DomainName``). Each is created in moto's CloudFront
    (S3 origins only, what this stack uses) and exposes ``Id`` and ``DomainName``, so
    ``cst web publish`` works against the local stack too. Nothing is served by CloudFront
    locally; the response headers policy stays skipped (moto has no API for it)."""
    if _CLOUDFRONT_MODELS:
        return
    from moto.cloudformation import parsing
    from moto.cloudfront.models import cloudfront_backends
    from moto.core.common_models import CloudFormationModel
    from moto.utilities.utils import get_partition

    def backend(account_id: str, region_name: str) -> Any:
        return cloudfront_backends[account_id][get_partition(region_name)]

    class CfnOriginAccessControl(CloudFormationModel):
        def __init__(self, control: Any) -> None:
            self.control = control

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudFront::OriginAccessControl"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @property
        def physical_resource_id(self) -> str:
            return str(self.control.id)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Id"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Id":
                return str(self.control.id)
            raise KeyError(attribute_name)

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> CfnOriginAccessControl:
            config = cloudformation_json["Properties"]["OriginAccessControlConfig"]
            return cls(backend(account_id, region_name).create_origin_access_control(config))

    class CfnDistribution(CloudFormationModel):
        def __init__(self, distribution: Any) -> None:
            self.distribution = distribution

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudFront::Distribution"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @property
        def physical_resource_id(self) -> str:
            return str(self.distribution.distribution_id)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in {"Id", "DomainName"}

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Id":
                return str(self.distribution.distribution_id)
            if attribute_name == "DomainName":
                return str(self.distribution.domain_name)
            raise KeyError(attribute_name)

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> CfnDistribution:
            config = cloudformation_json["Properties"]["DistributionConfig"]
            origins = []
            for origin in config["Origins"]:
                if "S3OriginConfig" not in origin:
                    raise ValueError(f"local CloudFront model: S3 origins only, got {origin!r}")
                origins.append(
                    {
                        "Id": origin["Id"],
                        "DomainName": origin["DomainName"],
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                )
            behavior = config["DefaultCacheBehavior"]
            distribution, _, _ = backend(account_id, region_name).create_distribution(
                {
                    "CallerReference": f"{kwargs.get('StackId', '')}/{kwargs['LogicalId']}",
                    "Comment": config.get("Comment", ""),
                    "Enabled": bool(config.get("Enabled", True)),
                    "DefaultRootObject": config.get("DefaultRootObject", ""),
                    "Origins": {"Quantity": len(origins), "Items": origins},
                    "DefaultCacheBehavior": {
                        "TargetOriginId": behavior["TargetOriginId"],
                        "ViewerProtocolPolicy": behavior["ViewerProtocolPolicy"],
                    },
                },
                [],
            )
            return cls(distribution)

    _CLOUDFRONT_MODELS.extend([CfnOriginAccessControl, CfnDistribution])
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


_SECRET_MODEL: list[type[Any]] = []


def register_secret_resource() -> None:
    """Teach moto's CloudFormation ``AWS::SecretsManager::Secret`` (moto 5.2 models the
    Secrets Manager API but not the resource type, so a ``Ref`` to the secret resolves to
    nothing and the policy granting its read is refused as "statement must contain resources"):
    the secret is created in moto's Secrets Manager under the template's ``Name`` (else a name
    derived from the logical id, as CloudFormation does), with its ``SecretString`` or a
    generated value (``GenerateSecretString``, what a template without a value asks for); its
    ``Ref`` is the ARN, as on AWS. A testnet or live stack (the exchange keys' secret) then
    deploys locally, and ``put-secret-value`` writes the keys as the operator does."""
    if _SECRET_MODEL:
        return
    import json as _json

    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends

    class CfnSecret(CloudFormationModel):
        def __init__(self, arn: str, name: str) -> None:
            self.arn, self.name = arn, name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecretsManager::Secret"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in {"Id", "Arn"}

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name in {"Id", "Arn"}:
                return self.arn
            raise KeyError(attribute_name)

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> CfnSecret:
            props = cloudformation_json.get("Properties", {})
            backend = secretsmanager_backends[account_id][region_name]
            value = props.get("SecretString")
            if value is None:
                generate = props.get("GenerateSecretString", {})
                value = backend.get_random_password(
                    password_length=int(generate.get("PasswordLength", 32)),
                    exclude_characters=str(generate.get("ExcludeCharacters", "")),
                    exclude_numbers=False,
                    exclude_punctuation=bool(generate.get("ExcludePunctuation", False)),
                    exclude_uppercase=False,
                    exclude_lowercase=False,
                    include_space=False,
                    require_each_included_type=True,
                )
                value = _json.loads(value)["RandomPassword"] if value.startswith("{") else value
            name = str(props.get("Name") or resource_name)
            created = _json.loads(
                backend.create_secret(
                    name=name,
                    secret_string=str(value),
                    secret_binary=None,
                    description=props.get("Description"),
                    tags=props.get("Tags"),
                    kms_key_id=props.get("KmsKeyId"),
                    client_request_token=None,
                    replica_regions=[],
                    force_overwrite=False,
                )
            )
            return cls(str(created["ARN"]), name)

    _SECRET_MODEL.append(CfnSecret)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


_MOCK_METHODS: list[bool] = []


def allow_mock_integration_methods() -> None:
    """moto 5.2's ``AWS::ApiGateway::Method`` reads ``Integration.IntegrationHttpMethod`` and
    ``Integration.Uri`` unconditionally, and a MOCK integration (the API's CORS preflight
    OPTIONS methods) has neither, so CreateStack fails with a server error. A MOCK integration
    gets both as absent (``None``, what API Gateway holds for it) before moto reads them; every
    other integration is read unchanged."""
    if _MOCK_METHODS:
        return
    from moto.apigateway.models import Method

    original = Method.create_from_cloudformation_json

    def create(
        cls: type[Method],
        /,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Method:
        integration = cloudformation_json.get("Properties", {}).get("Integration", {})
        if integration.get("Type") == "MOCK":
            integration.setdefault("IntegrationHttpMethod", None)
            integration.setdefault("Uri", None)
        return original(resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Method.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]
    _MOCK_METHODS.append(True)


_JSON_TEMPLATES: list[bool] = []


def read_json_templates_as_json() -> None:
    """moto reads every stack template with PyYAML's pure-Python loader first (JSON is YAML):
    about 0.6 s of CPU for this stack's 330 kB template at each CreateStack, and twice at each
    UpdateStack. A template that is a JSON object (what CDK synthesizes) is read with ``json``, as
    CloudFormation reads a JSON template, into the same dict; any other text (YAML) goes to
    moto's parser as before."""
    if _JSON_TEMPLATES:
        return
    from moto.cloudformation.models import Stack

    original = Stack.parse_template

    def parse_template(template: str) -> dict[str, Any]:
        if template.lstrip().startswith("{"):
            try:
                parsed = json.loads(template)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                return parsed
        return original(template)

    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign]
    _JSON_TEMPLATES.append(True)


@contextlib.contextmanager
def moto_server(port: int) -> Iterator[str]:
    """A moto server on 127.0.0.1:``port`` whose deployed state machines execute."""
    _check_port_free(port)  # moto's server would wait forever for a socket it cannot bind
    import logging

    import moto.stepfunctions.models as sfn_models
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from cst_devtools.loopback_http import quick_moto_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    previous_port = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(port)  # deployed tasks call back into this server
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["lambda"] = {"use_docker": False}
    sfn_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
    register_cloudwatch_alarm_resource()
    run_custom_resources_in_process(local_endpoint(port))
    register_cloudfront_resources()
    register_secret_resource()
    allow_mock_integration_methods()
    read_json_templates_as_json()
    patch_moto_dynamodb()  # the threaded server answers concurrent requests
    _check_port_free(port)  # again: the imports above take seconds on a cold start
    # moto's threaded server answering without the Nagle stall (its answers are two writes)
    # and stopping within 0.05 s
    server = quick_moto_server(LOOPBACK, port)
    server.start()
    # moto's backends are process-global: a server started earlier in this process (or an
    # embedded moto) may have left a stack, a parameter or a table behind; a new server starts
    # empty, as a new account would, and leaves nothing behind for the next one
    reset_moto_backends(port)
    try:
        yield local_endpoint(port)
    finally:
        with contextlib.suppress(OSError):
            reset_moto_backends(port)
        server.stop()
        if previous_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = previous_port


def reset_moto_backends(port: int) -> None:
    """Empty every moto backend of this process through the server's reset API."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{local_endpoint(port)}/moto-api/reset", method="POST", data=b""
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        answer.read()


def cdklocal_env(endpoint: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for cdklocal: the endpoint for every service (S3 too), dummy credentials
    unless real ones for LocalStack are set, one region, and the allow-list cdklocal needs to
    pass our variables on."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_REGION": env.get("AWS_REGION", REGION),
            "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", env.get("AWS_REGION", REGION)),
            "AWS_ENVAR_ALLOWLIST": "AWS_REGION,AWS_DEFAULT_REGION,AWS_ENDPOINT_URL_S3",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20,22",
            "CDK_DISABLE_VERSION_CHECK": "1",
        }
    )
    for key, value in _DUMMY.items():
        env.setdefault(key, value)
    return env


def _run(argv: list[str], env: Mapping[str, str], cwd: Path, timeout_s: float) -> str:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed npx command line, no shell
            argv,
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DeployError(f"{' '.join(argv[7:9])} timed out after {timeout_s:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise DeployError(f"`{' '.join(argv[7:])}` failed ({proc.returncode}):\n{tail}")
    return proc.stdout + proc.stderr


def deploy(
    endpoint: str,
    project_dir: Path,
    outputs_file: Path,
    *,
    timeout_s: float = 600.0,
    context: Mapping[str, str] | None = None,
    assembly_dir: Path | None = None,
    bootstrap: bool = True,
) -> DeployResult:
    """``cdklocal bootstrap`` then ``cdklocal deploy --all`` against ``endpoint``; ``context``
    adds ``-c key=value`` pairs (e.g. ``{"cst:stage": "canary"}``) to the deploy.

    ``assembly_dir`` deploys a cloud assembly synthesized beforehand (``--app <dir>``, for the
    local target: ``cst:local=true``) instead of synthesizing the app twice; ``context`` must
    then be empty, since it was fixed at that synth. ``bootstrap=False`` skips the bootstrap,
    for a redeploy to an endpoint this process has bootstrapped already (one CLI run less)."""
    if npx_path() is None:
        raise DeployError("npx (Node.js) is not on PATH: install Node 20+ to deploy locally")
    if assembly_dir is not None and context:
        raise ValueError("context is fixed when the assembly is synthesized: pass one or the other")
    env = cdklocal_env(endpoint)
    seconds: dict[str, float] = {}
    outputs_file.parent.mkdir(parents=True, exist_ok=True)
    # an assembly dir of its own: the CLI locks its output dir, and another synth (the user's,
    # or a concurrent test) may hold the project's cdk.out
    assembly = (
        ["--output", str(outputs_file.parent / "cdk.out")]
        if assembly_dir is None
        else ["--app", str(assembly_dir)]
    )
    if bootstrap:
        started = time.monotonic()
        _run([*CDKLOCAL, "bootstrap", *assembly, *LOCAL_CONTEXT], env, project_dir, timeout_s)
        seconds["bootstrap"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    _run(
        [
            *CDKLOCAL,
            "deploy",
            "--all",
            "--require-approval",
            "never",
            "--method=direct",
            "--outputs-file",
            str(outputs_file),
            *assembly,
            *LOCAL_CONTEXT,
            *(arg for key, value in (context or {}).items() for arg in ("-c", f"{key}={value}")),
        ],
        env,
        project_dir,
        timeout_s,
    )
    seconds["deploy"] = round(time.monotonic() - started, 1)
    raw: dict[str, Any] = json.loads(outputs_file.read_text(encoding="utf-8"))
    outputs = {key: str(value) for stack in raw.values() for key, value in stack.items()}
    return DeployResult(endpoint, outputs, seconds)


SERVER_LOG: Final = "local-server.log"
SERVE_COMMAND: Final = (
    "import sys; from cst_devtools.local_deploy import serve_forever; "
    "serve_forever(int(sys.argv[1]))"
)


def wait_for_server(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 30.0
) -> bool:
    """True once a moto server answers on 127.0.0.1:``port`` (its ``/moto-api/data.json``);
    False at the deadline or as soon as ``proc`` (the server's process) has exited."""
    import urllib.error
    import urllib.request

    url = f"http://{LOOPBACK}:{port}/moto-api/data.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return True
        time.sleep(0.2)
    return False


def log_tail(path: Path, lines: int = 20) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:]) or f"(empty log {path})"


def start_detached_server(state_dir: Path, port: int, timeout_s: float = 30.0) -> LocalStackState:
    """Start :func:`serve_forever` in a background process that outlives this one, its output
    in ``state_dir/local-server.log``; return its state once it answers. On failure the process
    is stopped and :class:`DeployError` carries the log's tail."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / SERVER_LOG
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our interpreter, a fixed command
            [sys.executable, "-c", SERVE_COMMAND, str(port)],
            start_new_session=True,  # survives the CLI and its terminal's Ctrl-C
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if not wait_for_server(port, proc, timeout_s):
        code = proc.poll()
        if code is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        why = (
            f"exited with code {code}"
            if code is not None
            else f"did not answer in {timeout_s:.0f}s"
        )
        raise DeployError(
            f"the local moto server on {LOOPBACK}:{port} {why}; the end of {log_path}:\n"
            + log_tail(log_path)
        )
    return LocalStackState(
        endpoint=local_endpoint(port), pid=proc.pid, port=port, log_file=str(log_path)
    )


def is_our_server(pid: int) -> bool:
    """Whether ``pid`` is alive and runs this product (a recorded pid may have been reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # no procfs: trust the recorded pid
        return True
    args = cmdline.read_bytes().decode(errors="replace").split("\0")
    # the detached server runs `python -c "...cst_devtools.local_deploy..."`; servers recorded
    # by earlier versions ran it from the cryptosmarttrader package
    markers = ("cst_devtools", "cryptosmarttrader")
    return any(any(m in a for m in markers) or Path(a).name == "cst" for a in args)


def serve_forever(port: int) -> None:
    """Run :func:`moto_server` until SIGTERM or SIGINT (the detached ``cst local up``)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with moto_server(port) as endpoint:
        print(f"moto server listening on {endpoint}", flush=True)
        while not stop.wait(1.0):
            pass
    print("moto server stopped", flush=True)
