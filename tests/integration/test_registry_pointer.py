"""The embedded registry's production pointer and atomic stage changes, on moto.

The pointer (``pk = model#<group>``, ``sk = pointer#production``) names the production version
and its artefact's SHA-256; a promotion or a rollback writes the changed version items and the
pointer in one ``TransactWriteItems``. What is checked: a reader needs one ``GetItem``; a
failure of that transaction (throttled, or refused because another writer moved first) leaves
every item as it was; of two promotions from the same production version only one is written;
a registry written before the pointer existed is still read (one query, then the pointer); the
checked artefact read refuses a replaced or missing artefact with the reason.

The versions carry small cards and opaque artefact bytes: the registry stores and hashes them,
it never parses them (the served models are tested in test_scan_serves_promotion.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_embedded import (
    POINTER_SK,
    EmbeddedModelRegistry,
    RegistryConflictError,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.drift import DistributionProfile, DriftReference
from cryptosmarttrader.domain.model_canary import (
    FoldMetrics,
    ModelCard,
    ModelStage,
    ModelVersion,
    ProductionPointer,
    SkillEvidence,
    VersionChange,
)
from cryptosmarttrader.ports import RegistryStoreError
from cryptosmarttrader.services.model_registry import ModelRegistryError, ModelRegistryService
from cryptosmarttrader.settings import AwsResources
from tests.support.aws import moto_stack

REGION = "us-east-1"
BUCKET = "pointer-lake"
TABLE = "pointer-state"
GROUP = "cst-rank"
NOW = datetime(2024, 1, 2, tzinfo=UTC)
CLEARS = SkillEvidence(
    period="2020-01-08..2020-04-30", metric="precision_at_20", value=0.35, ci_low=0.31,
    ci_high=0.40, best_trivial="smallest_market_cap", best_trivial_value=0.30,
)  # fmt: skip


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    resources = AwsResources(lake_bucket=BUCKET, state_table=TABLE, region=REGION)
    with moto_stack(monkeypatch, resources, now=NOW) as built:
        yield built


def _registry(clients: AwsClients) -> EmbeddedModelRegistry:
    return EmbeddedModelRegistry(
        GROUP, bucket=BUCKET, table=TABLE, s3=clients.s3, dynamodb=clients.dynamodb
    )


def _card() -> ModelCard:
    fold = FoldMetrics(
        test_start=date(2021, 7, 5), test_end=date(2023, 6, 26), n_train=1, n_test=1,
        base_rate=None, auc=None, brier=None, ece=None, precision_at_k=None, lift=None,
    )  # fmt: skip
    return ModelCard(
        group=GROUP, created_at=NOW, data_start=date(2016, 1, 1), data_end=date(2023, 12, 27),
        train_end=date(2021, 6, 30), target="take profit", horizon_days=180, threshold=1.0,
        step_days=7, embargo_days=7, features=("vol_30d",), feature_hash="0" * 64, params={},
        folds=(fold,), oos=fold, git_commit="x", train_rows=1, skill=CLEARS,
    )  # fmt: skip


def _service(clients: AwsClients, count: int) -> ModelRegistryService:
    """A registry holding ``count`` registered versions (artefacts ``artefact-<n>``)."""
    service = ModelRegistryService(_registry(clients), FixedClock(NOW))
    profile = DistributionProfile(n=0, missing_rate=0.0, quantiles=(), edges=(), fractions=(1.0,))
    reference = DriftReference(
        features={}, prediction=profile, oos_ece=0.0, oos_brier=0.0,
        window=("2021-01-01", "2021-06-30"),
    )  # fmt: skip
    for n in range(1, count + 1):
        service.register(_card(), f"artefact-{n}".encode(), reference)
    return service


def _pointer_item(clients: AwsClients) -> dict[str, Any] | None:
    return clients.dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"model#{GROUP}"}, "sk": {"S": POINTER_SK}}
    ).get("Item")


def _stages(service: ModelRegistryService) -> dict[int, ModelStage]:
    return {v.version: v.stage for v in service.versions()}


@dataclass
class _Calls:
    """DynamoDB operations a client sent (botocore's ``before-parameter-build`` hook)."""

    names: list[str]

    def count(self, name: str) -> int:
        return self.names.count(name)


def _record(clients: AwsClients) -> _Calls:
    calls = _Calls([])

    def seen(event_name: str, **_: Any) -> None:
        calls.names.append(event_name.rsplit(".", 1)[-1])

    clients.dynamodb.meta.events.register("before-parameter-build.dynamodb", seen)
    return calls


def _digest(n: int) -> str:
    return hashlib.sha256(f"artefact-{n}".encode()).hexdigest()


def test_a_promotion_is_one_transaction_and_the_pointer_is_one_get(clients: AwsClients) -> None:
    # Given v1 in production and v2 registered
    service = _service(clients, 2)
    service.promote(1, "bootstrap", "ops")
    calls = _record(clients)
    sent: list[list[str]] = []

    def transaction(params: dict[str, Any], **_: Any) -> None:
        sent.append([op for item in params["TransactItems"] for op in item])

    clients.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", transaction
    )
    # When v2 is promoted
    service.promote(2, "better", "ops")
    # Then the versions and the pointer were written by one transaction, no single write
    assert calls.count("TransactWriteItems") == 1
    assert calls.count("PutItem") == calls.count("UpdateItem") == 0
    # of Puts only: the PutItem grant the promoting roles hold authorises it (infra/constructs)
    assert sent == [["Put", "Put", "Put"]]
    assert _stages(service) == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION}
    # and a reader learns the promoted version and its digest from one strongly consistent GetItem
    calls.names.clear()
    assert service.registry.production_pointer() == ProductionPointer(2, _digest(2))
    assert calls.names == ["GetItem"]


def test_a_rollback_is_one_transaction(clients: AwsClients) -> None:
    service = _service(clients, 2)
    service.promote(1, "bootstrap", "ops")
    service.promote(2, "better", "ops")
    calls = _record(clients)
    rejected, restored = service.rollback("live losses", "ops")
    assert calls.count("TransactWriteItems") == 1 and calls.count("PutItem") == 0
    assert (rejected.version, restored.version if restored else None) == (2, 1)
    assert service.registry.production_pointer() == ProductionPointer(1, _digest(1))
    assert _stages(service) == {1: ModelStage.PRODUCTION, 2: ModelStage.REJECTED}


def test_a_throttled_promotion_leaves_every_item_as_it_was(clients: AwsClients) -> None:
    # Given v1 in production and v2 registered
    service = _service(clients, 2)
    service.promote(1, "bootstrap", "ops")
    before = clients.dynamodb.scan(TableName=TABLE)["Items"]

    # When DynamoDB refuses the promotion's write (throttled, as AWS answers under load)
    def throttled(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        return _Http(400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    clients.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", throttled)
    try:
        with pytest.raises(ModelRegistryError, match=r"v2 not promoted: .*ThrottlingException"):
            service.promote(2, "better", "ops")
    finally:
        clients.dynamodb.meta.events.unregister(
            "before-call.dynamodb.TransactWriteItems", throttled
        )

    # Then neither version moved and the pointer still names v1: no half-done promotion
    assert clients.dynamodb.scan(TableName=TABLE)["Items"] == before
    assert _stages(service) == {1: ModelStage.PRODUCTION, 2: ModelStage.REGISTERED}
    assert service.registry.production_pointer() == ProductionPointer(1, _digest(1))


def test_a_promotion_whose_candidate_changed_since_it_was_read_writes_nothing(
    clients: AwsClients,
) -> None:
    # Given v1 in production and v2 read as registered
    service = _service(clients, 2)
    service.promote(1, "bootstrap", "ops")
    registry = service.registry
    incumbent, candidate = registry.get(1), registry.get(2)
    # and v2 rejected by someone else after that read
    service.reject(2, "bad data", "other operator")
    # When the promotion of the stale v2 (incumbent archived, v2 to production) is committed
    archived = incumbent.model_copy(update={"stage": ModelStage.ARCHIVED})
    promoted = candidate.model_copy(update={"stage": ModelStage.PRODUCTION})
    with pytest.raises(RegistryConflictError, match="nothing was written"):
        registry.commit([VersionChange(incumbent, archived), VersionChange(candidate, promoted)])
    # Then the step that could be written (archiving v1) was not written either
    assert _stages(service) == {1: ModelStage.PRODUCTION, 2: ModelStage.REJECTED}
    assert registry.production_pointer() == ProductionPointer(1, _digest(1))


class _ReadBefore:
    """A registry whose reads answer what they answered before ``freeze`` (another
    operator's promotion read the same production version, then commits after ours)."""

    def __init__(self, inner: EmbeddedModelRegistry) -> None:
        self._inner = inner
        self._pointer = inner.production_pointer()
        self._versions = {v.version: v for v in inner.versions()}
        self.group = inner.group

    def production_pointer(self) -> ProductionPointer | None:
        return self._pointer

    def get(self, version: int) -> ModelVersion:
        return self._versions[version]

    def commit(self, changes: list[VersionChange]) -> None:
        self._inner.commit(changes)


def test_of_two_concurrent_promotions_only_one_is_written(clients: AwsClients) -> None:
    # Given v1 in production, v2 and v3 registered, and two operators who both read v1 as
    # the production version
    service = _service(clients, 3)
    service.promote(1, "bootstrap", "ops")
    late = ModelRegistryService(_ReadBefore(service.registry), FixedClock(NOW))  # type: ignore[arg-type]
    # When the first promotes v2, then the second (reading before that) promotes v3
    service.promote(2, "first", "alice")
    with pytest.raises(ModelRegistryError, match=r"v3 not promoted: .*another promotion"):
        late.promote(3, "second", "bob")
    # Then only the first promotion is in the registry: one production version, v2
    assert _stages(service) == {
        1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION, 3: ModelStage.REGISTERED
    }  # fmt: skip
    assert service.registry.production_pointer() == ProductionPointer(2, _digest(2))


def test_a_promotion_that_loses_the_race_inside_the_transaction_writes_nothing(
    clients: AwsClients,
) -> None:
    # Given v1 in production, v2 and v3 registered
    service = _service(clients, 3)
    service.promote(1, "bootstrap", "ops")
    other = ModelRegistryService(
        _registry(AwsClients.build(AwsResources(lake_bucket=BUCKET, state_table=TABLE))),
        FixedClock(NOW),
    )
    raced: list[str] = []

    # When another operator's promotion of v3 is written after ours read v1 as production and
    # checked the pointer, just before our transaction reaches DynamoDB
    def promote_v3_first(**_: Any) -> None:
        if not raced:
            raced.append("v3")
            other.promote(3, "first", "bob")

    clients.dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", promote_v3_first
    )
    with pytest.raises(ModelRegistryError, match=r"v2 not promoted: .*another promotion"):
        service.promote(2, "second", "alice")

    # Then DynamoDB refused ours whole: v3 alone is in production, v2 untouched
    assert raced == ["v3"]
    assert _stages(service) == {
        1: ModelStage.ARCHIVED, 2: ModelStage.REGISTERED, 3: ModelStage.PRODUCTION
    }  # fmt: skip
    assert service.registry.production_pointer() == ProductionPointer(3, _digest(3))


def test_a_pointer_that_disagrees_with_the_version_item_is_refused(clients: AwsClients) -> None:
    # Given v1 in production, then its item changed by hand to archived, the pointer untouched
    service = _service(clients, 1)
    service.promote(1, "bootstrap", "ops")
    stored = service.get(1).model_copy(update={"stage": ModelStage.ARCHIVED})
    clients.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"model#{GROUP}"}, "sk": {"S": "version#000001"},
            "stage": {"S": "archived"}, "body": {"S": stored.model_dump_json()},
        },
    )  # fmt: skip
    # Then no reader takes v1 for the production version
    with pytest.raises(
        ModelRegistryError, match="pointer names cst-rank/v1, whose stage is archived"
    ):
        service.production()


def test_a_registry_written_before_the_pointer_is_read_once_by_query_then_by_get(
    clients: AwsClients, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a registry whose versions were written before the pointer existed: v1 archived, v2
    # in production, no pointer item
    service = _service(clients, 2)
    service.promote(1, "bootstrap", "ops")
    service.promote(2, "better", "ops")
    clients.dynamodb.delete_item(
        TableName=TABLE, Key={"pk": {"S": f"model#{GROUP}"}, "sk": {"S": POINTER_SK}}
    )
    reader = _registry(clients)
    calls = _record(clients)
    # When a server reads the production pointer
    with caplog.at_level("WARNING"):
        first = reader.production_pointer()
    # Then it finds v2 by querying the versions once, says so, and writes the pointer
    assert first == ProductionPointer(2, _digest(2))
    assert calls.count("Query") == 1
    assert "has no production pointer (written before it existed): cst-rank/v2" in caplog.text
    assert _pointer_item(clients) is not None
    # and every later read is one GetItem
    calls.names.clear()
    assert reader.production_pointer() == ProductionPointer(2, _digest(2))
    assert calls.names == ["GetItem"]
    # and a promotion over it moves the pointer in its transaction
    service.rollback("live losses", "ops")
    assert reader.production_pointer() == ProductionPointer(1, _digest(1))


def test_an_old_registry_with_nothing_in_production_reads_as_none(clients: AwsClients) -> None:
    service = _service(clients, 1)
    assert service.registry.production_pointer() is None
    assert service.production() is None
    assert _pointer_item(clients) is not None  # the next read is one GetItem


def test_taking_the_production_version_out_clears_the_pointer(clients: AwsClients) -> None:
    # Given v1 in production
    service = _service(clients, 1)
    service.promote(1, "bootstrap", "ops")
    # When it is saved archived (an operator's direct stage change)
    live = service.get(1)
    service.registry.save(live.model_copy(update={"stage": ModelStage.ARCHIVED}))
    # Then no version is in production for any reader
    assert service.registry.production_pointer() is None
    assert service.production() is None


def test_a_damaged_pointer_is_an_error_naming_it(clients: AwsClients) -> None:
    service = _service(clients, 1)
    service.promote(1, "bootstrap", "ops")
    clients.dynamodb.put_item(
        TableName=TABLE,
        Item={"pk": {"S": f"model#{GROUP}"}, "sk": {"S": POINTER_SK}, "version": {"S": "one"}},
    )
    with pytest.raises(
        RegistryStoreError, match=f"damaged registry item model#{GROUP}/{POINTER_SK}"
    ):
        service.registry.production_pointer()


def test_the_checked_artefact_read_refuses_a_replaced_or_missing_artefact(
    clients: AwsClients,
) -> None:
    # Given v1 registered (its SHA-256 recorded)
    service = _service(clients, 1)
    version = service.get(1)
    registry = service.registry
    assert registry.checked_artifact(version) == b"artefact-1"
    key = version.artifact_uri.removeprefix(f"s3://{BUCKET}/")
    # When its object is replaced, Then the read is refused, saying why
    clients.s3.put_object(Bucket=BUCKET, Key=key, Body=b"another model")
    with pytest.raises(RegistryStoreError, match=r"not the .* recorded at registration"):
        registry.checked_artifact(version)
    # When it is gone, Then the read is refused, naming the object
    clients.s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(RegistryStoreError, match=rf"cst-rank/v1: artefact unreadable: .*{key}"):
        registry.checked_artifact(version)


@dataclass
class _Http:
    status_code: int
    headers: dict[str, str] | None = None
    content: bytes = b""


class _LostAnswer:
    """A DynamoDB client whose ``TransactWriteItems`` is applied but its answer lost, so the
    SDK sends the same request again (botocore retries a read timeout): the caller sees the
    retry's answer."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transact_write_items(self, **request: Any) -> Any:
        self._inner.transact_write_items(**request)  # applied; its answer never arrives
        return self._inner.transact_write_items(**request)


@pytest.mark.parametrize("operation", ["promote", "rollback"])
def test_a_stage_change_applied_whose_answer_was_lost_is_not_reported_as_a_conflict(
    clients: AwsClients, operation: str
) -> None:
    # Given v1 archived under v2 in production, and DynamoDB's answer to the next change lost
    service = _service(clients, 3)
    service.promote(1, "bootstrap", "ops")
    service.promote(2, "better", "ops")
    registry = service.registry
    assert isinstance(registry, EmbeddedModelRegistry)
    registry._ddb = _LostAnswer(clients.dynamodb)
    # When v3 is promoted, or v2 rolled back (the SDK's retry of the applied transaction finds
    # its own writes: a request token makes DynamoDB answer it as done, moto ignores the token)
    if operation == "promote":
        service.promote(3, "best", "ops")
        expected = {1: ModelStage.ARCHIVED, 2: ModelStage.ARCHIVED, 3: ModelStage.PRODUCTION}
        live = 3
    else:
        service.rollback("broken", "ops")
        expected = {1: ModelStage.PRODUCTION, 2: ModelStage.REJECTED, 3: ModelStage.REGISTERED}
        live = 1
    # Then it succeeds as applied, instead of "another promotion or rollback won"
    assert _stages(service) == expected
    assert registry.production_pointer() == ProductionPointer(live, _digest(live))


def test_a_refused_change_is_still_a_conflict_when_another_writer_won(
    clients: AwsClients,
) -> None:
    # Given v1 in production, read as such by two operators
    service = _service(clients, 3)
    service.promote(1, "bootstrap", "ops")
    incumbent = service.get(1)
    # When one promotes v2, then the other's promotion of v3 (read before) is sent
    service.promote(2, "better", "ops")
    candidate = service.get(3)
    archived = incumbent.model_copy(update={"stage": ModelStage.ARCHIVED})
    promoted = candidate.model_copy(update={"stage": ModelStage.PRODUCTION})
    # Then it is refused as a conflict, nothing written
    with pytest.raises(RegistryConflictError):
        service.registry.commit(
            [VersionChange(incumbent, archived), VersionChange(candidate, promoted)]
        )
    assert _stages(service) == {
        1: ModelStage.ARCHIVED,
        2: ModelStage.PRODUCTION,
        3: ModelStage.REGISTERED,
    }


class _NoAnswer(_LostAnswer):
    """A DynamoDB client whose ``TransactWriteItems`` is applied and every answer lost (each
    of the SDK's attempts timed out): the caller gets the read timeout."""

    def transact_write_items(self, **request: Any) -> Any:
        self._inner.transact_write_items(**request)
        raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


def test_a_promotion_applied_without_any_answer_is_read_back_as_done(clients: AwsClients) -> None:
    # Given v1 in production and the promotion's transaction applied with no answer received
    service = _service(clients, 2)
    service.promote(1, "bootstrap", "ops")
    registry = service.registry
    assert isinstance(registry, EmbeddedModelRegistry)
    registry._ddb = _NoAnswer(clients.dynamodb)
    # When v2 is promoted, Then it is read back as done (its items hold its writes): the
    # service goes on (deploys it), instead of failing while the registry names v2
    assert service.promote(2, "better", "ops").stage is ModelStage.PRODUCTION
    assert registry.production_pointer() == ProductionPointer(2, _digest(2))
