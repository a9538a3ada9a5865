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
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.adapters.local_aws import DUMMY_CREDENTIALS, serialize_moto_dynamodb

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
    """What ``cst local up --detach`` leaves under the state dir for ``status`` and ``down``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str
    pid: int | None = Field(default=None, ge=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    stack_outputs: dict[str, str] = Field(default_factory=dict)

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


def run_custom_resources_in_process(endpoint: str) -> None:
    """Teach moto's CloudFormation to run this package's custom resources (the kill-switch seed).

    moto answers a ``Custom::`` resource by invoking its function in a Docker container, and
    without Docker it never hears back: the stack would wait forever. Here a function whose
    handler is in ``cryptosmarttrader.handlers`` receives the custom-resource request in-process,
    with its deployed environment plus this server as its endpoint; the ``ResponseURL`` (moto
    builds it for ``host.docker.internal``) is pointed at this server. The handler's own PUT then
    completes the resource, as the real pre-signed S3 URL does. Other invocations are untouched.
    """
    from moto.awslambda.models import LambdaFunction

    if _PATCHED_INVOKE:
        _PATCHED_INVOKE[0] = endpoint
        return
    _PATCHED_INVOKE.append(endpoint)
    original = LambdaFunction.invoke

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        try:
            event = json.loads(body) if isinstance(body, str | bytes) and body else None
        except ValueError:
            event = None
        handler_path = str(getattr(self, "handler", ""))
        if not (
            isinstance(event, dict)
            and "ResponseURL" in event
            and handler_path.startswith("cryptosmarttrader.handlers.")
        ):
            return original(self, body, request_headers, response_headers)
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
            self.function_name, self.function_arn, str(event.get("RequestId", ""))
        )
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                handler = getattr(importlib.import_module(module_name), attribute)
                return json.dumps(handler(event, context)).encode()
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_server(port: int) -> Iterator[str]:
    """A moto server on 127.0.0.1:``port`` whose deployed state machines execute."""
    import logging

    import moto.stepfunctions.models as sfn_models
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    previous_port = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(port)  # deployed tasks call back into this server
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["lambda"] = {"use_docker": False}
    sfn_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
    register_cloudwatch_alarm_resource()
    run_custom_resources_in_process(local_endpoint(port))
    serialize_moto_dynamodb()  # the threaded server answers concurrent requests
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    try:
        yield local_endpoint(port)
    finally:
        server.stop()
        if previous_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = previous_port


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
) -> DeployResult:
    """``cdklocal bootstrap`` then ``cdklocal deploy --all`` against ``endpoint``; ``context``
    adds ``-c key=value`` pairs (e.g. ``{"cst:stage": "canary"}``) to the deploy."""
    if npx_path() is None:
        raise DeployError("npx (Node.js) is not on PATH: install Node 20+ to deploy locally")
    env = cdklocal_env(endpoint)
    seconds: dict[str, float] = {}
    outputs_file.parent.mkdir(parents=True, exist_ok=True)
    # an assembly dir of its own: the CLI locks its output dir, and another synth (the user's,
    # or a concurrent test) may hold the project's cdk.out
    assembly = ["--output", str(outputs_file.parent / "cdk.out")]
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


def wait_for_port(port: int, timeout_s: float = 30.0) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:``port`` (bounded wait)."""
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            return True
        time.sleep(0.2)
    return False


def serve_forever(port: int) -> None:
    """Run :func:`moto_server` until SIGTERM or SIGINT (the detached ``cst local up``)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with moto_server(port):
        while not stop.wait(1.0):
            pass


if __name__ == "__main__":
    import sys

    serve_forever(int(sys.argv[1]))
