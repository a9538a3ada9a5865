"""Embedded local AWS for the CLI and the demo: the same tables, bucket and parameter as the stack.

``embedded_aws(state_dir, resources)`` yields ready boto3 clients.

* With ``resources.aws_endpoint_url`` set (a moto server, LocalStack, or real AWS) the clients
  use it and the resources are only created where missing.
* Otherwise moto runs in-process. The resources are created, then the snapshot in
  ``state_dir/snapshot.json`` (all table items and SSM parameters) and the lake objects under
  ``state_dir/lake/`` are loaded; on exit both are saved back (snapshot atomically via a temp
  file and ``os.replace``, lake objects only where they changed). A long-running process (``cst
  api serve``) calls ``LocalAws.checkpoint()`` after each write, so a signal or a crash loses
  nothing it has acknowledged. Two ``cst`` processes run one
  after the other therefore see the same orders, positions, kill-switch and lake. A lock file
  serialises processes sharing one ``state_dir`` so neither loses the other's writes.

See docs/local-aws.md.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import OPEN_ORDERS_INDEX, OPEN_PK, OPEN_SK
from cryptosmarttrader.adapters.files import write_atomic
from cryptosmarttrader.adapters.local_snapshot import (
    LOCK_FILE,
    SNAPSHOT_FILE,
    SNAPSHOT_VERSION,
    SnapshotError,
    read_snapshot,
)
from cryptosmarttrader.settings import AwsResources
from cst_devtools.environ import patched_environ

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        KeySchemaElementTypeDef,
    )
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

__all__ = [
    "SNAPSHOT_FILE",
    "LocalAws",
    "SnapshotError",
    "embedded_aws",
    "ensure_resources",
    "patch_moto_dynamodb",
    "read_snapshot",
    "serialize_moto_dynamodb",
    "table_specs",
]

LAKE_DIR = "lake"
DUMMY_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_REAL_CREDENTIAL_HINTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index projecting every attribute (string keys)."""

    name: str
    keys: tuple[tuple[str, Literal["HASH", "RANGE"]], ...]


@dataclass(frozen=True)
class TableSpec:
    name: str
    keys: tuple[tuple[str, Literal["HASH", "RANGE"]], ...]
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = ()


def table_specs(resources: AwsResources) -> list[TableSpec]:
    """The three tables of the resource contract (same keys, TTL and indexes as the CDK data
    construct)."""
    open_orders = IndexSpec(OPEN_ORDERS_INDEX, ((OPEN_PK, "HASH"), (OPEN_SK, "RANGE")))
    return [
        TableSpec(resources.orders_table, (("client_order_id", "HASH"),), indexes=(open_orders,)),
        TableSpec(resources.positions_table, (("symbol", "HASH"),)),
        TableSpec(resources.state_table, (("pk", "HASH"), ("sk", "RANGE"))),
    ]


KILL_SWITCH_DEFAULT_REASON = "local default"


@dataclass
class LocalAws:
    """What :func:`embedded_aws` yields: the resources, their clients and where state lives."""

    resources: AwsResources
    clients: AwsClients
    mode: Literal["in-process", "endpoint"]
    state_dir: Path
    loaded: dict[str, int] = field(default_factory=dict)
    # Save the state now (in-process mode; an endpoint keeps its own state): what a server that
    # runs until a signal calls after each write. Thread-safe; the exit of the context saves too.
    checkpoint: Callable[[], None] = field(default=lambda: None)

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.clients.dynamodb

    @property
    def s3(self) -> S3Client:
        return self.clients.s3

    @property
    def ssm(self) -> SSMClient:
        return self.clients.ssm


# --------------------------------------------------------------------------- resources


def _create_table(client: DynamoDBClient, spec: TableSpec) -> None:
    key_schema: list[KeySchemaElementTypeDef] = [
        {"AttributeName": n, "KeyType": t} for n, t in spec.keys
    ]
    names = dict.fromkeys(n for n, _ in (*spec.keys, *(k for i in spec.indexes for k in i.keys)))
    attrs: list[AttributeDefinitionTypeDef] = [
        {"AttributeName": n, "AttributeType": "S"} for n in names
    ]
    extra: dict[str, Any] = {}
    if spec.indexes:
        extra["GlobalSecondaryIndexes"] = [_gsi(index) for index in spec.indexes]
    try:
        client.create_table(
            TableName=spec.name,
            KeySchema=key_schema,
            AttributeDefinitions=attrs,
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        _add_missing_indexes(client, spec, attrs)
        return
    client.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 1})
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=spec.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


def _gsi(index: IndexSpec) -> dict[str, Any]:
    return {
        "IndexName": index.name,
        "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in index.keys],
        "Projection": {"ProjectionType": "ALL"},
    }


def _add_missing_indexes(
    client: DynamoDBClient, spec: TableSpec, attrs: list[AttributeDefinitionTypeDef]
) -> None:
    """A table created by an older version (a running moto server, LocalStack) gets the
    indexes it lacks."""
    table = client.describe_table(TableName=spec.name)["Table"]
    present = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
    for index in spec.indexes:
        if index.name in present:
            continue
        client.update_table(
            TableName=spec.name,
            AttributeDefinitions=attrs,
            GlobalSecondaryIndexUpdates=[{"Create": _gsi(index)}],  # type: ignore[typeddict-item]
        )


def kill_switch_default(at: datetime) -> str:
    return json.dumps(
        {"on": False, "reason": KILL_SWITCH_DEFAULT_REASON, "actor": "local", "at": at.isoformat()}
    )


def ensure_resources(clients: AwsClients, now: datetime | None = None) -> None:
    """Create the bucket, the four tables and the kill-switch parameter where missing."""
    res = clients.resources
    for spec in table_specs(res):
        _create_table(clients.dynamodb, spec)
    try:
        clients.s3.head_bucket(Bucket=res.lake_bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        if res.region == "us-east-1":
            clients.s3.create_bucket(Bucket=res.lake_bucket)
        else:
            clients.s3.create_bucket(
                Bucket=res.lake_bucket,
                CreateBucketConfiguration={"LocationConstraint": res.region},  # type: ignore[typeddict-item]
            )
    with contextlib.suppress(clients.ssm.exceptions.ParameterAlreadyExists):
        clients.ssm.put_parameter(
            Name=res.kill_switch_param,
            Value=kill_switch_default(now or datetime.now(tz=UTC)),
            Type="String",
            Overwrite=False,
        )


# --------------------------------------------------------------------------- snapshot


def _encode_attr(value: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute value → JSON-safe form (binary as base64)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(bytes(inner)).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(bytes(b)).decode("ascii") for b in inner]}
    if kind == "L":
        return {"L": [_encode_attr(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _encode_attr(v) for k, v in inner.items()}}
    return {kind: inner}


def _decode_attr(value: Mapping[str, Any]) -> dict[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "L":
        return {"L": [_decode_attr(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _decode_attr(v) for k, v in inner.items()}}
    return {kind: inner}


def dump_state(clients: AwsClients) -> dict[str, Any]:
    """All table items and SSM parameters as a JSON-safe dict."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for spec in table_specs(clients.resources):
        items: list[dict[str, Any]] = []
        for page in clients.dynamodb.get_paginator("scan").paginate(TableName=spec.name):
            items.extend({k: _encode_attr(v) for k, v in it.items()} for it in page["Items"])
        items.sort(key=lambda it: json.dumps([it.get(k) for k, _ in spec.keys], sort_keys=True))
        tables[spec.name] = items
    params: list[dict[str, str]] = []
    for ssm_page in clients.ssm.get_paginator("describe_parameters").paginate():
        for meta in ssm_page["Parameters"]:
            got = clients.ssm.get_parameter(Name=meta["Name"], WithDecryption=True)["Parameter"]
            params.append({"name": got["Name"], "type": got["Type"], "value": got["Value"]})
    params.sort(key=lambda p: p["name"])
    return {"version": SNAPSHOT_VERSION, "tables": tables, "parameters": params}


def load_state(clients: AwsClients, data: Mapping[str, Any], path: Path) -> dict[str, int]:
    """Write a snapshot's items and parameters into the (fresh) local resources."""
    known = {spec.name for spec in table_specs(clients.resources)}
    counts: dict[str, int] = {}
    try:
        for table, items in data["tables"].items():
            if table not in known:
                continue  # a table renamed by settings: keep it out of the current contract
            for item in items:
                clients.dynamodb.put_item(
                    TableName=table, Item={k: _decode_attr(v) for k, v in item.items()}
                )
            counts[table] = len(items)
        for param in data["parameters"]:
            clients.ssm.put_parameter(
                Name=param["name"], Value=param["value"], Type=param["type"], Overwrite=True
            )
        counts["parameters"] = len(data["parameters"])
    except (ClientError, BotoCoreError, ValueError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"local AWS snapshot {path} has an invalid entry: {exc}") from exc
    return counts


# --------------------------------------------------------------------------- lake mirror


def _moto_bucket(bucket: str) -> Any:
    """The in-process moto bucket (fast path: no HTTP round trip per object)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket)


def _load_lake(lake_dir: Path, bucket: str) -> dict[str, str]:
    """Put every file under ``lake_dir`` into the moto bucket. Returns key → sha256."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    digests: dict[str, str] = {}
    if not lake_dir.is_dir():
        return digests
    for path in sorted(lake_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        key = path.relative_to(lake_dir).as_posix()
        backend.put_object(bucket, key, body)
        digests[key] = hashlib.sha256(body).hexdigest()
    return digests


def _save_lake(lake_dir: Path, bucket: str, loaded: Mapping[str, str]) -> dict[str, str]:
    """Mirror the moto bucket to ``lake_dir``: write changed objects, remove deleted ones.

    Returns key → sha256 of what ``lake_dir`` now holds (the baseline of the next save)."""
    current: dict[str, bytes] = {}
    for key, fake_key in _moto_bucket(bucket).keys.items():
        current[key] = fake_key.value
    saved: dict[str, str] = {}
    for key, body in current.items():
        digest = hashlib.sha256(body).hexdigest()
        if loaded.get(key) != digest:
            write_atomic(lake_dir / key, body, fsync=False)  # rebuildable by `cst ingest`
        saved[key] = digest
    for key in set(loaded) - set(current):
        (lake_dir / key).unlink(missing_ok=True)
    return saved


class _Persister:
    """Saves the in-process state (snapshot + lake mirror); one save at a time."""

    def __init__(
        self,
        clients: AwsClients,
        snapshot_path: Path,
        lake_dir: Path | None,
        lake: Mapping[str, str],
    ) -> None:
        self._clients = clients
        self._snapshot_path = snapshot_path
        self._lake_dir = lake_dir
        self._lake = dict(lake)
        self._lock = threading.Lock()

    def save(self) -> None:
        with self._lock:
            state = dump_state(self._clients)
            if self._lake_dir is not None:
                bucket = self._clients.resources.lake_bucket
                self._lake = _save_lake(self._lake_dir, bucket, self._lake)
            payload = json.dumps(state, indent=1, sort_keys=True).encode("utf-8")
            write_atomic(self._snapshot_path, payload)


# --------------------------------------------------------------------------- context


@contextlib.contextmanager
def _state_lock(state_dir: Path, timeout_s: float) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / LOCK_FILE
    with lock_path.open("a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another cst process holds {lock_path} for longer than {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


_MOTO_DYNAMODB_LOCK = threading.Lock()


def serialize_moto_dynamodb() -> None:
    """Make moto's in-process DynamoDB handle one request at a time (idempotent).

    DynamoDB applies each write atomically, conditions included; moto's in-memory backend does
    not lock, so two threads' conditional puts of one key can both succeed (or a scan can see a
    table change size mid-iteration). Serializing moto's request handling restores the
    guarantee the exactly-once logic relies on, for the embedded local AWS and its tests.
    """
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_cst_serialized", False):
        return
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with _MOTO_DYNAMODB_LOCK:
            return original(self)

    call_action._cst_serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


# DynamoDB's AttributeValue union, and the members whose JSON wire form is moto's own value
_ATTRIBUTE_VALUE_MEMBERS: Final = frozenset(
    {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}
)


def _in_wire_form(value: object) -> bool:
    """Whether ``value`` is one DynamoDB AttributeValue exactly as its JSON serializes it: one
    member, strings for S/N (and their sets), a boolean for NULL/BOOL, M and L of such values.
    Binary (B, BS) is not: the serializer base64-encodes it."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return type(inner) is str
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind in ("NULL", "BOOL"):
        return type(inner) is bool
    if kind == "M":
        return type(inner) is dict and all(
            type(k) is str and _in_wire_form(v) for k, v in inner.items()
        )
    if kind == "L":
        return type(inner) is list and all(_in_wire_form(v) for v in inner)
    return False


def fast_moto_attribute_values() -> None:
    """Let moto's JSON serializer pass DynamoDB item values through as they are (idempotent).

    moto answers every DynamoDB call through its generic response serializer, which looks up
    each of the ten AttributeValue members of every attribute of every item by several
    aliases: most of the CPU of a local table read. An attribute value already in its wire form
    (:func:`_in_wire_form`) serializes to itself, so it is written as it is; any other value
    (binary, or a shape moto did not produce before) takes moto's path unchanged.
    """
    from moto.core.serialize import BaseJSONSerializer

    if getattr(BaseJSONSerializer._serialize_type_structure, "_cst_fast", False):
        return
    original = BaseJSONSerializer._serialize_type_structure

    def _serialize_type_structure(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        if (
            key
            and shape.name == "AttributeValue"
            and shape.members.keys() == _ATTRIBUTE_VALUE_MEMBERS
            and _in_wire_form(value)
        ):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    _serialize_type_structure._cst_fast = True  # type: ignore[attr-defined]
    _serialize_type_structure._cst_original = original  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


def patch_moto_dynamodb() -> None:
    """moto's DynamoDB as the local AWS and the tests run it (idempotent): one request at a time
    per table (:func:`serialize_moto_dynamodb`), item values answered as moto holds them
    (:func:`fast_moto_attribute_values`)."""
    serialize_moto_dynamodb()
    fast_moto_attribute_values()


_MOTO_REGIONS = "moto.ec2.models.availability_zones_and_regions"


def import_moto_regions_once() -> None:
    """Import moto's EC2 region table (its SSM backend imports it) with one botocore session.

    The table asks three fresh boto3 sessions for EC2's regions (the aws, aws-us-gov and aws-cn
    partitions) while it is imported, and each fresh session parses botocore's whole EC2 service
    model again: about half a second of every local command that touches the kill-switch. The
    answers come from the same files either way; here the three questions share one session.
    """
    import sys

    if _MOTO_REGIONS in sys.modules:
        return
    import boto3.session
    import botocore.session

    shared = botocore.session.get_session()
    original = boto3.session.Session.get_available_regions

    def get_available_regions(
        _self: boto3.session.Session,
        service_name: str,
        partition_name: str = "aws",
        allow_non_regional: bool = False,
    ) -> list[str]:
        return shared.get_available_regions(service_name, partition_name, allow_non_regional)

    boto3.session.Session.get_available_regions = get_available_regions  # type: ignore[method-assign,assignment]
    try:
        importlib.import_module(_MOTO_REGIONS)
    finally:
        boto3.session.Session.get_available_regions = original  # type: ignore[method-assign]


class _Ec2BackendsOnFirstUse:
    """Stands for ``moto.ec2.ec2_backends`` in moto's SSM module: imports moto.ec2 when first
    indexed (only SSM maintenance-window targets read it) and answers from the real dict."""

    def __getitem__(self, account_id: str) -> Any:
        return importlib.import_module("moto.ec2").ec2_backends[account_id]


def import_moto_ssm_without_ec2() -> None:
    """Import moto's SSM backend without importing moto's EC2 backend at the same time.

    moto's SSM module imports ``moto.ec2`` at its top for one feature (maintenance-window
    targets that name instances), and importing moto.ec2 loads EC2's instance types and every
    region's offerings and asks botocore for EC2's regions: about 1 s of CPU in every local
    command, none of which uses EC2. The SSM module is imported here with a stand-in for
    ``moto.ec2`` whose ``ec2_backends`` imports the real module when first used; the stand-in
    is removed again at once, so any later ``import moto.ec2`` (a test, a request to EC2)
    imports the real module as before. Nothing changes where moto.ec2 or moto's SSM module is
    already imported.
    """
    import sys
    import types

    if _MOTO_SSM in sys.modules or "moto.ec2" in sys.modules:
        return
    stand_in = types.ModuleType("moto.ec2")
    stand_in.ec2_backends = _Ec2BackendsOnFirstUse()  # type: ignore[attr-defined]
    sys.modules["moto.ec2"] = stand_in
    try:
        importlib.import_module(_MOTO_SSM)
    finally:
        if sys.modules.get("moto.ec2") is stand_in:
            del sys.modules["moto.ec2"]


_MOTO_SSM = "moto.ssm.models"


def share_botocore_models() -> None:
    """Let moto read botocore's service models through as few loaders as the models allow
    (idempotent).

    Every botocore loader parses the JSON files it is asked for once, and lists botocore's
    data directories once per kind of file. In-process, three loaders read the same files:
    the clients' (boto3's default session), the one of the session moto asks for each
    service's regions when it creates the service's backend (a ``boto3.Session()`` of its own),
    and a fresh one each time moto's request handling needs a service's model with moto's
    extras: the endpoint table and each service's model were parsed two or three times per
    command. Here moto's region question goes to boto3's default session, whose loader the
    clients use (plain botocore models, the same files: the same answers), and moto's
    extra-laden models come from one loader of moto's own kind (moto's extras still applied
    once per model, never to the clients' models).
    """
    import functools

    import boto3
    from moto.core import utils as moto_utils
    from moto.core.base_backend import AccountSpecificBackend
    from moto.core.loaders import create_loader

    if getattr(moto_utils._load_service_model, "_cst_shared", False):
        return

    def get_session(_cls: type[AccountSpecificBackend[Any]]) -> boto3.Session:
        # moto's mock_aws() drops boto3's default session when it starts: make one then
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        return boto3.DEFAULT_SESSION

    loader = functools.cache(create_loader)

    def _load_service_model(service_name: str, model_name: str) -> dict[str, Any]:
        model: dict[str, Any] = loader().load_service_model(service_name, model_name)
        return model

    _load_service_model._cst_shared = True  # type: ignore[attr-defined]
    AccountSpecificBackend.get_session = classmethod(get_session)  # type: ignore[method-assign,assignment]
    moto_utils._load_service_model = _load_service_model


@contextlib.contextmanager
def embedded_aws(
    state_dir: Path,
    resources: AwsResources | None = None,
    *,
    lock_timeout_s: float = 120.0,
    lake: bool = True,
) -> Iterator[LocalAws]:
    """Yield ready clients for the project's resources; see the module docstring.

    ``lake=False`` is for commands that never touch S3 (the kill-switch, the risk level): the
    lake mirror under ``state_dir/lake/`` is neither loaded into the bucket nor saved back, so
    they start in the same time however large the local lake is."""
    resources = resources or AwsResources()
    if resources.aws_endpoint_url:
        has_creds = any(os.environ.get(k) for k in _REAL_CREDENTIAL_HINTS)
        with patched_environ({} if has_creds else DUMMY_CREDENTIALS):
            clients = AwsClients.build(resources)
            ensure_resources(clients)
            yield LocalAws(resources, clients, "endpoint", state_dir)
        return

    from moto import mock_aws  # only the local path needs moto

    import_moto_ssm_without_ec2()
    patch_moto_dynamodb()
    snapshot_path = state_dir / SNAPSHOT_FILE
    lake_dir = state_dir / LAKE_DIR
    with _state_lock(state_dir, lock_timeout_s):
        snapshot = read_snapshot(snapshot_path)  # corrupt → SnapshotError before any write
        with patched_environ(DUMMY_CREDENTIALS), mock_aws():
            share_botocore_models()
            clients = AwsClients.build(resources)
            ensure_resources(clients)
            loaded = load_state(clients, snapshot, snapshot_path) if snapshot else {}
            lake_digests = _load_lake(lake_dir, resources.lake_bucket) if lake else {}
            loaded["lake_objects"] = len(lake_digests)
            persister = _Persister(clients, snapshot_path, lake_dir if lake else None, lake_digests)
            try:
                yield LocalAws(resources, clients, "in-process", state_dir, loaded, persister.save)
            finally:
                persister.save()


@contextlib.contextmanager
def cloudwatch_percentiles(aws: LocalAws) -> Iterator[None]:
    """moto's CloudWatch computes no percentile statistics; add nearest-rank ``pNN`` in-process.

    Only for the in-process embedded AWS: a moto server, LocalStack or AWS answer on their own.
    """
    from moto.cloudwatch.models import Statistics

    from cryptosmarttrader.domain.slo import percentile

    if aws.mode != "in-process":
        yield
        return
    original = Statistics.get_statistics_for_type

    def with_percentiles(self: Statistics, stat: str) -> Any:
        match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
        if match:
            return percentile(self.metric_single_values_list, float(match.group(1)))
        return original(self, stat)

    Statistics.get_statistics_for_type = with_percentiles  # type: ignore[method-assign]
    try:
        yield
    finally:
        Statistics.get_statistics_for_type = original  # type: ignore[method-assign]
