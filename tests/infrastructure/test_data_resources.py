"""The data layer: lake bucket, its access logs, the three tables, the kill-switch parameter."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from tests.infrastructure.conftest import Synthesized


def test_lake_bucket_is_encrypted_private_versioned_and_logged(synthesized: Synthesized) -> None:
    # Given the synthesized stack
    lake_id = synthesized.logical_id(synthesized.stack.lake.bucket)
    logs_id = synthesized.logical_id(synthesized.stack.lake.access_logs)

    # When the lake bucket's properties are read
    lake = synthesized.resources[lake_id]

    # Then it is encrypted, blocks every public path, keeps versions, logs to the log bucket
    props = lake["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    # and it outlives the stack
    assert lake["DeletionPolicy"] == "Retain"
    assert lake["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("which", ["bucket", "access_logs"])
def test_buckets_deny_requests_without_tls(synthesized: Synthesized, which: str) -> None:
    # Given a bucket of the lake construct
    bucket_id = synthesized.logical_id(getattr(synthesized.stack.lake, which))

    # When its bucket policy is looked up
    # Then a Deny on aws:SecureTransport=false covers the bucket and its objects
    synthesized.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_access_log_bucket_accepts_only_s3_log_delivery_from_this_account(
    synthesized: Synthesized,
) -> None:
    # Given the access-log bucket
    logs_id = synthesized.logical_id(synthesized.stack.lake.access_logs)

    # When its policy is read
    # Then logging.s3.amazonaws.com may put objects (bucket policy, not ACLs)
    synthesized.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": logs_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": "s3:PutObject",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                            }
                        )
                    ]
                )
            },
        },
    )


TABLE_KEYS = {
    "orders": ([("client_order_id", "HASH")], None),
    "positions": ([("symbol", "HASH")], None),
    "state": ([("pk", "HASH"), ("sk", "RANGE")], None),
}


@pytest.mark.parametrize("name", sorted(TABLE_KEYS))
def test_table_keys_billing_pitr_encryption_and_ttl(synthesized: Synthesized, name: str) -> None:
    # Given one of the three tables of the settings contract
    table_id = synthesized.logical_id(getattr(synthesized.stack.tables, name))
    expected_keys, ttl_attribute = TABLE_KEYS[name]

    # When its CloudFormation properties are read
    props = synthesized.resources[table_id]["Properties"]

    # Then the key schema is exactly the contract, all string keys (index keys included)
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == expected_keys
    index_keys = [
        (k["AttributeName"], k["KeyType"])
        for index in props.get("GlobalSecondaryIndexes", [])
        for k in index["KeySchema"]
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
        key: "S" for key, _ in [*expected_keys, *index_keys]
    }
    # and it is on-demand, continuously backed up and encrypted
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    # and no table expires items: orders, positions and state are the system's record
    assert ttl_attribute is None
    assert "TimeToLiveSpecification" not in props


def test_no_separate_idempotency_table_the_orders_insert_decides_duplicates(
    synthesized: Synthesized,
) -> None:
    # Given the synthesized stack
    tables = [r for r in synthesized.resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    keys = sorted(k["AttributeName"] for t in tables for k in t["Properties"]["KeySchema"])

    # Then no claim table sits beside the orders table, whose conditional insert keyed on the
    # client order ID decides every duplicate
    assert keys == ["client_order_id", "pk", "sk", "symbol"]
    assert not hasattr(synthesized.stack.tables, "idempotency")


def test_only_the_orders_table_has_an_index_the_sparse_open_orders_index(
    synthesized: Synthesized,
) -> None:
    # Given the tables of the contract
    from cryptosmarttrader.adapters.dynamodb_store import OPEN_ORDERS_INDEX, OPEN_PK, OPEN_SK
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import table_specs

    indexes = {
        name: synthesized.resources[
            synthesized.logical_id(getattr(synthesized.stack.tables, name))
        ]["Properties"].get("GlobalSecondaryIndexes", [])
        for name in TABLE_KEYS
    }
    # Then the orders table alone has one, keyed as the adapter writes it, projecting the
    # whole order (the cycle reads open orders from it without a read per order)
    assert {name: len(found) for name, found in indexes.items()} == {
        "orders": 1, "positions": 0, "state": 0,
    }  # fmt: skip
    (index,) = indexes["orders"]
    assert index["IndexName"] == OPEN_ORDERS_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
        (OPEN_PK, "HASH"), (OPEN_SK, "RANGE"),
    ]  # fmt: skip
    assert index["Projection"] == {"ProjectionType": "ALL"}
    # and the local tables (embedded moto, `cst local`) have the same index
    (local,) = [s for s in table_specs(AwsResources()) if s.indexes]
    assert local.name == AwsResources().orders_table
    assert [(i.name, i.keys) for i in local.indexes] == [
        (OPEN_ORDERS_INDEX, ((OPEN_PK, "HASH"), (OPEN_SK, "RANGE")))
    ]


@pytest.mark.parametrize("name", ["orders", "positions", "state"])
def test_data_tables_are_retained(synthesized: Synthesized, name: str) -> None:
    # Given a table holding the system's record
    table = synthesized.resources[synthesized.logical_id(getattr(synthesized.stack.tables, name))]

    # When the stack is deleted or the table replaced
    # Then CloudFormation keeps the table
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_exactly_three_tables(template: Template) -> None:
    # Given the stack / When counting tables / Then there is no table beyond the contract
    template.resource_count_is("AWS::DynamoDB::Table", 3)


def test_cloudformation_never_owns_the_kill_switch_value(synthesized: Synthesized) -> None:
    # Given the stack's resources
    seeds = synthesized.resources_of_type("Custom::KillSwitchSeed")

    # Then no AWS::SSM::Parameter resource holds the value (an update would rewrite it); a
    # create-once seed does, retained with the stack, named after the parameter
    assert synthesized.resources_of_type("AWS::SSM::Parameter") == {}
    (seed,) = seeds.values()
    assert seed["Properties"]["ParameterName"] == "/cst/kill-switch"
    assert (seed["DeletionPolicy"], seed["UpdateReplacePolicy"]) == ("Retain", "Retain")
    function = synthesized.logical_id(synthesized.stack.kill_switch.seed_lambda.function)
    assert seed["Properties"]["ServiceToken"] == {"Fn::GetAtt": [function, "Arn"]}
    props = synthesized.resources[function]["Properties"]
    assert props["Handler"] == "cryptosmarttrader.handlers.kill_switch_seed.handler"


def test_the_stack_waits_minutes_not_an_hour_for_the_kill_switch_seeds_answer(
    synthesized: Synthesized,
) -> None:
    # Given the seed custom resource and its function
    (seed,) = synthesized.resources_of_type("Custom::KillSwitchSeed").values()
    function = synthesized.logical_id(synthesized.stack.kill_switch.seed_lambda.function)
    timeout_s = synthesized.resources[function]["Properties"]["Timeout"]
    # Then CloudFormation gives up on an answer after 5 minutes (default: an hour), longer
    # than the function's own run (which answers FAILED in time when SSM is slow)
    assert int(seed["Properties"]["ServiceTimeout"]) == 300
    assert timeout_s == 60 < 300
