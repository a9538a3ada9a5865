"""moto shims shared by the tests that execute Step Functions for real.

* ``invoke_handler_in_process``: moto runs no Lambda code without Docker (``lambda:invoke`` only
  echoes), so its Lambda invoke is patched to import the function's real handler (from its
  ``Handler``) and call it in-process with the function's environment.
* ``statistic_with_percentiles``: moto's CloudWatch computes no ``pNN`` statistics.
* ``resolve``: CDK's intrinsic functions in a synthesized definition → concrete ARNs.
* ``update_endpoint``: moto's SageMaker has CreateEndpoint but no UpdateEndpoint; the shim
  points the endpoint at the new configuration (and its variants), as the real call does once
  the update completes (no InService/Updating transition is modelled).
* ``emf_records`` / ``publish_emf``: the EMF records a handler printed, and what CloudWatch Logs
  would extract from them (moto's Logs extracts no metrics) put into moto's CloudWatch.
"""

from __future__ import annotations

import importlib
import io
import json
import operator
import re
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudwatch.models import Statistics
from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse

from cryptosmarttrader.domain.slo import percentile
from cst_devtools.environ import patched_environ

REGION = "us-east-1"
ACCOUNT = "123456789012"


def resolve(value: Any, refs: Mapping[str, str]) -> Any:
    """Resolve the intrinsic functions CDK emits in a definition to concrete values."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(resolve(p, refs) for p in parts)
        if fn == "Ref":
            pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
            if arg in pseudo:
                return pseudo[arg]
            return refs[arg]
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg
            return refs[f"{logical_id}.{attribute}"]
    raise AssertionError(f"unexpected template value in the definition: {value!r}")


@dataclass
class _Context:
    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    aws_request_id: str = ""


def invoke_handler_in_process(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes:
    function = self.get_function(function_name, qualifier)
    handler_path = function.handler
    if not handler_path:
        raise ValueError(f"function {function_name} has no handler")
    module_name, attribute = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attribute)
    event = json.loads(body) if body else {}
    context = _Context(function.function_name, invoked_function_arn=function.function_arn)
    context.aws_request_id = str(uuid.uuid4())
    with patched_environ(function.environment_vars):
        try:
            return json.dumps(handler(event, context)).encode()
        except Exception as exc:  # noqa: BLE001 - this IS the Lambda runtime's error boundary
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()


_moto_statistic = Statistics.get_statistics_for_type


def statistic_with_percentiles(self: Statistics, stat: str) -> Any:
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
    if match:
        return percentile(self.metric_single_values_list, float(match.group(1)))
    return _moto_statistic(self, stat)


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# the shim runs the real handler in-process\n")
    return buffer.getvalue()


def update_endpoint(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("EndpointName")
    backend.describe_endpoint(name)  # ValidationException for an unknown endpoint
    config_name = self._get_param("EndpointConfigName")
    config = backend.describe_endpoint_config(config_name)
    endpoint = backend.endpoints[name]
    endpoint.endpoint_config_name = config_name
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"]
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def emf_records(stdout: str) -> list[dict[str, Any]]:
    """Every EMF record (one JSON object per line, with ``_aws``) in captured stdout."""
    records = []
    for line in stdout.splitlines():
        if line.startswith('{"_aws"'):
            records.append(json.loads(line))
    return records


def emf_points(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One point per metric value: namespace, name, unit, value and its dimension set."""
    points = []
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    raw = record[metric["Name"]]
                    for value in raw if isinstance(raw, list) else [raw]:
                        points.append({
                            "namespace": directive["Namespace"],
                            "name": metric["Name"],
                            "unit": metric.get("Unit", "None"),
                            "value": float(value),
                            "dimensions": {d: record[d] for d in dimension_set},
                            "timestamp": record["_aws"]["Timestamp"],
                        })  # fmt: skip
    return points


def publish_emf(cloudwatch: Any, records: Sequence[Mapping[str, Any]]) -> int:
    """PutMetricData of every EMF point, as CloudWatch Logs' EMF extraction would. Returns the
    number of points published."""
    points = emf_points(records)
    for point in points:
        cloudwatch.put_metric_data(
            Namespace=point["namespace"],
            MetricData=[{
                "MetricName": point["name"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in point["dimensions"].items()],
                "Timestamp": datetime.fromtimestamp(point["timestamp"] / 1000, tz=UTC),
                "Value": point["value"],
                "Unit": point["unit"],
            }],
        )  # fmt: skip
    return len(points)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def alarm_breaches(cloudwatch: Any, alarm_name: str, now: datetime) -> bool:
    """Whether a deployed single-metric alarm would be in ALARM at ``now``, judged as CloudWatch
    does from its own definition (metric, dimensions, statistic, period, threshold, comparison,
    evaluation periods, missing data) over the datapoints in moto's CloudWatch. moto stores
    alarms but never evaluates them."""
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    period, periods = int(alarm["Period"]), int(alarm["EvaluationPeriods"])
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - periods * timedelta(seconds=period)
    stat = alarm["Statistic"]
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm.get("Dimensions", []),
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=[stat],
    )["Datapoints"]
    compare = _COMPARE[alarm["ComparisonOperator"]]
    breaching = sum(compare(float(d[stat]), float(alarm["Threshold"])) for d in datapoints)
    if alarm.get("TreatMissingData") == "breaching":
        breaching += max(0, periods - len(datapoints))
    return breaching >= int(alarm.get("DatapointsToAlarm") or periods)
