"""Least-privilege grants written as explicit action lists (no ``s3:*`` / ``dynamodb:*``).

CDK's ``grant_read_write`` helpers grant action wildcards (``s3:GetObject*``, ``s3:List*``...);
each function here grants only the API calls the adapters make, on one named resource.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from infra.constructs.nag import acknowledge


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
    role: iam.Role, bucket: s3.Bucket, actions: Sequence[str], *, reason: str
) -> None:
    """Object actions on ``bucket/*`` plus ``s3:ListBucket`` (so a missing key reads as 404).

    Object ARNs need the key wildcard; the acknowledgement names this bucket's objects only.
    """
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects("*")])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
    )
    acknowledge(role, f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/*]", reason)
