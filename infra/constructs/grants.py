"""Least-privilege grants written as explicit action lists (no ``s3:*`` / ``dynamodb:*``).

CDK's ``grant_read_write`` helpers grant action wildcards (``s3:GetObject*``, ``s3:List*``...);
each function here grants only the API calls the adapters make, on one named resource — and in
the lake bucket, only under the key prefixes the role's adapters use (:data:`LAKE_CANDLES`,
:data:`LAKE_MARKET_CAPS`, the model registry's prefixes in ``ml.py``): no role but the
registry's writers can write under ``models/``, where the serving code the endpoint runs lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from infra.constructs.nag import acknowledge

# Key patterns of the lake's datasets, as the adapters write them (tests check the adapters agree)
LAKE_CANDLES: Final = "exchange=*"  # adapters/s3_lake.partition_key
LAKE_MARKET_CAPS: Final = "dataset=market_cap/*"  # adapters/s3_market_caps.market_cap_key
LAKE_FUNDING: Final = "dataset=funding/*"  # adapters/s3_agent_inputs.funding_key
LAKE_SENTIMENT: Final = "dataset=sentiment/*"  # adapters/s3_agent_inputs.sentiment_key
LAKE_WITHDRAWALS: Final = "dataset=withdrawals/*"  # adapters/s3_agent_inputs.withdrawals_key
LAKE_MARKET_DATA: Final = (LAKE_CANDLES, LAKE_MARKET_CAPS)
# ingest writes, the scan reads
LAKE_AGENT_INPUTS: Final = (LAKE_FUNDING, LAKE_SENTIMENT, LAKE_WITHDRAWALS)


def _logical_id(resource: IConstruct) -> str:
    stack = Stack.of(resource)
    default_child = resource.node.default_child
    if not isinstance(default_child, dynamodb.CfnTable | s3.CfnBucket):
        raise TypeError(f"{resource.node.path} has no CloudFormation table or bucket")
    return str(stack.resolve(stack.get_logical_id(default_child)))


def grant_table(role: iam.IRole, table: dynamodb.Table, actions: Sequence[str]) -> None:
    """``dynamodb:<action>`` on this table's ARN only; a role that queries (``Query``) a table
    with indexes also gets them on its indexes (``<table>/index/*``, how CDK grants an index:
    the execution cycle and the scan query the open-orders index)."""
    if not actions or any(not a.isalpha() for a in actions):
        raise ValueError(f"expected plain DynamoDB action names, got {actions!r}")
    cfn = table.node.default_child
    indexed = isinstance(cfn, dynamodb.CfnTable) and bool(
        Stack.of(table).resolve(cfn.global_secondary_indexes)
    )
    if not indexed or "Query" not in actions:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"dynamodb:{action}" for action in actions],
                resources=[table.table_arn],
            )
        )
        return
    table.grant(role, *(f"dynamodb:{action}" for action in actions))
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{_logical_id(table)}.Arn>/index/*]",
        "The same DynamoDB calls on the orders table's own indexes: the hourly cycle and the "
        "scan Query the sparse open-orders index instead of scanning the order history; CDK "
        "grants an index as <table>/index/*, and no other table is covered.",
    )


def grant_lake_objects(
    role: iam.Role,
    bucket: s3.Bucket,
    actions: Sequence[str],
    *,
    prefixes: Sequence[str],
    reason: str,
) -> None:
    """Object actions on ``bucket/<prefix>`` for each key pattern in ``prefixes`` (never the whole
    bucket), plus ``s3:ListBucket`` on the bucket so a missing key reads as 404, not 403.

    Object ARNs need key wildcards; each acknowledgement names one prefix of this bucket.
    """
    if not prefixes or any(not p or p in {"*", "/*"} or p.startswith("/") for p in prefixes):
        raise ValueError(f"expected key prefixes like 'exchange=*', got {prefixes!r}")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions), resources=[bucket.arn_for_objects(p) for p in prefixes]
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
    )
    for prefix in prefixes:
        acknowledge(
            role, f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/{prefix}]", reason
        )
