"""The ``MetricReader`` port over CloudWatch ``GetMetricData`` (the only module that knows it).

One request carries every query of a gate; pages (``NextToken``) are followed. A query whose
status is not ``Complete`` after all pages, or a message CloudWatch attaches to it, raises
:class:`MetricReadError`: a gate must never decide on a partial answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.domain.slo import MetricQuery

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

    from cryptosmarttrader.settings import AwsResources

__all__ = ["CloudWatchMetricReader", "MetricReadError", "cloudwatch_client"]


class MetricReadError(RuntimeError):
    """CloudWatch could not answer every query completely."""


def cloudwatch_client(resources: AwsResources) -> CloudWatchClient:
    kwargs: dict[str, Any] = {"region_name": resources.region}
    if resources.aws_endpoint_url:
        kwargs["endpoint_url"] = resources.aws_endpoint_url
    client: CloudWatchClient = boto3.client("cloudwatch", **kwargs)
    return client


class CloudWatchMetricReader:
    def __init__(self, namespace: str, client: CloudWatchClient) -> None:
        if not namespace:
            raise ValueError("a CloudWatch namespace is required")
        self._namespace = namespace
        self._client = client

    def _query(self, query: MetricQuery) -> MetricDataQueryTypeDef:
        return {
            "Id": query.query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self._namespace,
                    "MetricName": query.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions],
                },
                "Period": query.period_seconds,
                "Stat": query.stat,
            },
            "ReturnData": True,
        }

    def read(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, float]]]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("metric windows must be timezone-aware UTC")
        if not queries:
            return {}
        out: dict[str, list[tuple[datetime, float]]] = {q.query_id: [] for q in queries}
        status: dict[str, str] = {}
        request: dict[str, Any] = {
            "MetricDataQueries": [self._query(q) for q in queries],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        try:
            while True:
                page = self._client.get_metric_data(**request)
                for result in page.get("MetricDataResults", []):
                    qid = result.get("Id", "")
                    if result.get("Messages"):
                        raise MetricReadError(f"CloudWatch query {qid}: {result['Messages']}")
                    status[qid] = result.get("StatusCode", "Complete")
                    for ts, value in zip(
                        result.get("Timestamps", []), result.get("Values", []), strict=True
                    ):
                        out.setdefault(qid, []).append((ts, float(value)))
                token = page.get("NextToken")
                if not token:
                    break
                request["NextToken"] = token
        except (ClientError, BotoCoreError) as exc:
            raise MetricReadError(f"GetMetricData failed: {exc}") from exc
        incomplete = sorted(qid for qid, code in status.items() if code != "Complete")
        if incomplete:
            raise MetricReadError(f"CloudWatch returned partial data for {', '.join(incomplete)}")
        for series in out.values():
            series.sort(key=lambda point: point[0])
        return out
