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
    """``dynamodb:<action>`` on this table's ARN (and, for a table with indexes, its indexes' ARNs:
    CDK adds ``<table>/index/*``, which a Query on the open-orders index needs)."""
    if not actions or any(not a.isalpha() for a in actions):
        raise ValueError(f"expected plain DynamoDB action names, got {actions!r}")
    table.grant(role, *(f"dynamodb:{action}" for action in actions))
    cfn = table.node.default_child
    if isinstance(cfn, dynamodb.CfnTable) and Stack.of(table).resolve(cfn.global_secondary_indexes):
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(table)}.Arn>/index/*]",
            "the same calls on this table's own indexes (the open-orders index the execution "
            "cycle queries); CDK grants them as <table>/index/*, no other table",
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
