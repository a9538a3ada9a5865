"""The ``Notifier`` port over SNS ``Publish`` (JSON message, subject ≤ 100 characters)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from cryptosmarttrader.settings import AwsResources

__all__ = ["SnsNotifier", "sns_client"]

SUBJECT_MAX = 100


def sns_client(resources: AwsResources) -> Any:
    kwargs: dict[str, Any] = {"region_name": resources.region}
    if resources.aws_endpoint_url:
        kwargs["endpoint_url"] = resources.aws_endpoint_url
    return boto3.client("sns", **kwargs)


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any) -> None:
        if not topic_arn.startswith("arn:"):
            raise ValueError(f"an SNS topic ARN is required, got {topic_arn!r}")
        self._topic = topic_arn
        self._client = client

    def publish(self, subject: str, message: Mapping[str, Any]) -> str:
        clean = " ".join(subject.split())[:SUBJECT_MAX] or "CryptoSmartTrader"
        response = self._client.publish(
            TopicArn=self._topic,
            Subject=clean,
            Message=json.dumps(dict(message), sort_keys=True, default=str),
        )
        return str(response["MessageId"])
