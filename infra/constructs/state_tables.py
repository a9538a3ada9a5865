"""DynamoDB tables: orders, positions, and state (watermarks, risk, audit).

No separate idempotency table: the orders table's conditional insert keyed on the client order
ID decides every duplicate (see ``services/execution.py``)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

# The orders that still need the execution cycle, as the DynamoDB adapter maintains them
# (``adapters/dynamodb_store.py``: OPEN_ORDERS_INDEX, OPEN_PK, OPEN_SK). Sparse: an order is in
# it while it is not terminal or its fill has not reached the positions yet.
OPEN_ORDERS_INDEX = "open-orders"
OPEN_ORDERS_KEYS = ("open_pk", "open_sk")


def _table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: str,
    sort_key: str | None = None,
    removal_policy: RemovalPolicy,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=(
            dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
            if sort_key
            else None
        ),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=removal_policy,
    )


class StateTables(Construct):
    """The three tables of the contract in ``cryptosmarttrader.settings.AwsResources``.

    Orders, positions and state are the system's record (RETAIN: deleting the stack never
    deletes them).
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.orders = _table(
            self, "Orders", partition_key="client_order_id", removal_policy=RemovalPolicy.RETAIN
        )
        # the hourly cycle queries open orders instead of scanning the whole history
        self.orders.add_global_secondary_index(
            index_name=OPEN_ORDERS_INDEX,
            partition_key=dynamodb.Attribute(
                name=OPEN_ORDERS_KEYS[0], type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=OPEN_ORDERS_KEYS[1], type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.positions = _table(
            self, "Positions", partition_key="symbol", removal_policy=RemovalPolicy.RETAIN
        )
        self.state = _table(
            self, "State", partition_key="pk", sort_key="sk", removal_policy=RemovalPolicy.RETAIN
        )
