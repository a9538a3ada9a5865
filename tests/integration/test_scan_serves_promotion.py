"""A warm scan serves the version the registry promotes, as AWS runs it.

One process is one execution environment of each function: the scan handler and the
model-canary handler run in-process on moto, and nothing is reset between their invocations
(no cold start). The scan gets the schedule rule's exact event (``infra.config``); it is a
replay deployment (``CST_DATA_SOURCE=recorded``, the recorded real data as of the rule's
minute), scoring the promoted ranking model in process (no ``CST_RANKING_ENDPOINT``). The
models are real: the walk-forward evaluation fitted on the recorded data (the coins and period
of tests/integration/test_skill_evaluation.py), with 30 and 10 boosting rounds.

That evaluation does not clear the promotion's skill gate, so each version's card carries the
evidence of one that did (lower 95 % bound above the best trivial ranker; the gate itself is
tested in tests/unit/test_skill_gate.py): here the promotion is what is under test.

A failed read of the registry is a throttled DynamoDB ``GetItem`` of the ranking group's
production pointer (botocore's ``before-call`` hook on the scan's client answers it with the
error, as AWS would); the reads a scan makes are counted by botocore's
``before-parameter-build`` hook.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_embedded import POINTER_SK
from cryptosmarttrader.adapters.ranking_bundle import (
    bundle_artifact,
    bundle_evaluation,
    bundle_reference,
    load_ranking_bundle,
    save_ranking_bundle,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.model_canary import SkillEvidence
from cryptosmarttrader.handlers import _common, model_canary, scan
from cryptosmarttrader.services.skill_evaluation import (
    ranking_card,
    ranking_feature_hash,
)
from cryptosmarttrader.settings import AwsResources, MlSettings
from cryptosmarttrader.wiring import NO_PROMOTED_MODEL, RANKING_GROUP, registry_service
from cst_devtools.local_aws import ensure_resources
from infra.config import DeploymentConfig
from tests.support.skill import evaluation

pytestmark = pytest.mark.realdata

DAY = datetime(2021, 11, 12, tzinfo=UTC)
CONFIG = DeploymentConfig()
CLEARS_THE_GATE = SkillEvidence(
    period="2020-01-08..2020-04-30",
    metric="precision_at_20 (trade label, per date)",
    value=0.35,
    ci_low=0.31,
    ci_high=0.40,
    best_trivial="smallest_market_cap",
    best_trivial_value=0.30,
)


@pytest.fixture(scope="module")
def bundles(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for rounds in (30, 10):
        result = evaluation(data_dir, rounds=rounds)
        out[rounds] = tmp_path_factory.mktemp(f"rank-{rounds}")
        save_ranking_bundle(out[rounds], result)
    assert bundle_artifact(out[30]) != bundle_artifact(out[10])
    return out


@dataclass
class Context:
    function_name: str
    aws_request_id: str = "req-serve"
    memory_limit_in_mb: int = 1024

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"


def _cold() -> None:
    _common.reset_caches()
    scan._service.cache_clear()
    model_canary._ranking.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[AwsClients]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "CST_EXCHANGE": "binance", "CST_STAGE": "staging", "CST_DATA_SOURCE": "recorded",
        "CST_DATA_DIR": str(data_dir), "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    for key in (
        "AWS_ENDPOINT_URL", "CST_RANKING_ENDPOINT", "CST_MODEL_DIR", "CST_UNIVERSE",
        "CST_ALLOW_TECHNICAL_ONLY_TRADING", "CST_ALLOW_REPLAYS",
    ):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    _cold()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        yield clients
    _cold()


def _register(clients: AwsClients, folder: Path) -> int:
    """A new version of the ranking group in the registry the scan reads (what
    ``cst model register`` does with a saved evaluation)."""
    clock = FixedClock(DAY)
    signals = load_ranking_bundle(folder).signals
    card = ranking_card(
        bundle_evaluation(folder), signals=signals, group=RANKING_GROUP, created_at=DAY,
        feature_hash=ranking_feature_hash(signals), git_commit="0" * 40,
    )  # fmt: skip
    card = card.model_copy(update={"skill": CLEARS_THE_GATE})
    service = registry_service(MlSettings(), AwsResources(), clients, clock, group=RANKING_GROUP)
    version = service.register(card, bundle_artifact(folder), bundle_reference(folder))
    return version.version


def _promote(version: int) -> dict[str, Any]:
    """The model-canary function (warm too) promotes ``version`` of cst-rank."""
    event = {"action": "promote", "group": RANKING_GROUP, "version": version, "reason": "gate"}
    with redirect_stdout(io.StringIO()):
        answer = dict(model_canary.handler(event, Context("cst-model-canary")))  # type: ignore[arg-type]
    assert answer["stage"] == "production", answer
    return answer


def _scan() -> dict[str, Any]:
    """The scan rule's exact event reaching the warm scan function."""
    with redirect_stdout(io.StringIO()):
        result = scan.handler(CONFIG.scan.event(), Context("cst-scan"))
    assert result["status"] == "ok", result
    return dict(result["report"])


@dataclass
class Reads:
    """What one scan read of the ranking group's registry through the function's clients."""

    pointer: int = 0  # GetItem of the production pointer
    version: int = 0  # GetItem of a version item
    query: int = 0  # Query of the group's items
    artefact: int = 0  # S3 GetObject of a model.json


def _counted_scan() -> tuple[dict[str, Any], Reads]:
    """``_scan``, with the reads it made of the ranking group's registry."""
    clients = _common.aws_clients()
    seen = Reads()

    def get_item(params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", {})
        if key.get("pk", {}).get("S") != f"model#{RANKING_GROUP}":
            return
        if key.get("sk", {}).get("S") == POINTER_SK:
            seen.pointer += 1
        else:
            seen.version += 1

    def query(params: dict[str, Any], **_: Any) -> None:
        values = params.get("ExpressionAttributeValues", {})
        seen.query += values.get(":pk", {}).get("S") == f"model#{RANKING_GROUP}"

    def artefact(params: dict[str, Any], **_: Any) -> None:
        seen.artefact += str(params.get("Key", "")).endswith("/model.json")

    hooks = (
        (clients.dynamodb, "before-parameter-build.dynamodb.GetItem", get_item),
        (clients.dynamodb, "before-parameter-build.dynamodb.Query", query),
        (clients.s3, "before-parameter-build.s3.GetObject", artefact),
    )
    for client, event, hook in hooks:
        client.meta.events.register(event, hook)
    try:
        report = _scan()
    finally:
        for client, event, hook in hooks:
            client.meta.events.unregister(event, hook)
    return report, seen


def test_a_warm_scan_serves_each_version_the_model_canary_promotes(
    aws: AwsClients, bundles: dict[int, Path]
) -> None:
    with time_machine.travel(DAY + timedelta(minutes=15), tick=False):
        # Given a scan function started before any version was promoted
        first = _scan()
        assert first["model_version"] == "technical-agent"
        assert first["decision_basis"].startswith(NO_PROMOTED_MODEL)
        assert first["orders_created"] == 0
        # When the model-canary function promotes v1, Then the next scan serves v1
        v1 = _register(aws, bundles[30])
        _promote(v1)
        served, reads = _counted_scan()
        assert reads == Reads(pointer=1, version=1, query=0, artefact=1)
        assert served["model_version"] == f"{RANKING_GROUP}/v{v1}"
        for agent in ("ml", "ensemble"):  # the model's percentile and its calibration
            assert served["agents"][agent]["votes"] >= 1, served["agents"][agent]
        assert not any(NO_PROMOTED_MODEL in r for row in served["rows"] for r in row["reasons"])
        # and the same version is not loaded again: one GetItem of the pointer per scan, no
        # query of the group's versions, no artefact read
        again, reads = _counted_scan()
        assert again["model_version"] == f"{RANKING_GROUP}/v{v1}"
        assert reads == Reads(pointer=1, version=0, query=0, artefact=0)

        # When v2 is promoted, Then the same warm scan serves and reports v2 (v1 archived)
        v2 = _register(aws, bundles[10])
        _promote(v2)
        after, reads = _counted_scan()
        assert reads == Reads(pointer=1, version=1, query=0, artefact=1)
        assert after["model_version"] == f"{RANKING_GROUP}/v{v2}"
        assert after["agents"]["ml"]["votes"] >= 1, after["agents"]["ml"]
        service = registry_service(
            MlSettings(), AwsResources(), aws, FixedClock(DAY), group=RANKING_GROUP
        )
        assert str(service.get(v1).stage) == "archived"


def test_a_registry_that_cannot_be_read_makes_the_warm_scans_ranking_abstain(
    aws: AwsClients, bundles: dict[int, Path]
) -> None:
    with time_machine.travel(DAY + timedelta(minutes=15), tick=False):
        # Given a warm scan serving v1
        _promote(_register(aws, bundles[30]))
        assert _scan()["model_version"] == f"{RANKING_GROUP}/v1"

        # When the registry's production pointer cannot be read (throttled)
        def throttled(params: dict[str, Any], **_: Any) -> Any:
            if f'"model#{RANKING_GROUP}"' not in params["body"].decode():
                return None
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}
            return _Http(400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

        dynamodb = _common.aws_clients().dynamodb
        dynamodb.meta.events.register("before-call.dynamodb.GetItem", throttled)
        try:
            blind = _scan()
        finally:
            dynamodb.meta.events.unregister("before-call.dynamodb.GetItem", throttled)

        # Then the model's agents (ml, ensemble) abstain on every coin, saying why, and
        # nothing is ordered
        ranking = blind["agents"]["ml"]
        assert ranking["votes"] == 0 and ranking["abstentions"] >= 1, ranking
        assert blind["agents"]["ensemble"] == ranking
        (why,) = ranking["abstention_reasons"]
        assert why.startswith(f"model registry unreadable: the promoted {RANKING_GROUP} version")
        assert "ProvisionedThroughputExceededException" in why
        assert why.endswith("not scoring with the loaded v1")
        assert blind["model_version"] == f"{RANKING_GROUP}/unknown"
        assert blind["orders_created"] == 0
        assert not [row for row in blind["rows"] if row["action"] == "buy"]
        # and once the registry answers again the scan serves the promoted version
        assert _scan()["model_version"] == f"{RANKING_GROUP}/v1"


@dataclass
class _Http:
    status_code: int
    headers: dict[str, str] | None = None
    content: bytes = b""


def test_an_artefact_changed_after_registration_is_never_served(
    aws: AwsClients, bundles: dict[int, Path]
) -> None:
    from cryptosmarttrader.adapters.model_registry_embedded import RegistryStoreError
    from cryptosmarttrader.wiring import promoted_ranking

    # Given v1 promoted, its artefact's SHA-256 recorded at registration
    with time_machine.travel(DAY + timedelta(minutes=15), tick=False):
        _promote(_register(aws, bundles[30]))
    service = registry_service(
        MlSettings(), AwsResources(), aws, FixedClock(DAY), group=RANKING_GROUP
    )
    live = service.get(1)
    assert live.artifact_sha256 == hashlib.sha256(bundle_artifact(bundles[30])).hexdigest()
    # When the object in S3 is replaced by another model's
    bucket, _, key = live.artifact_uri.removeprefix("s3://").partition("/")
    aws.s3.put_object(Bucket=bucket, Key=key, Body=bundle_artifact(bundles[10]))

    # Then the scan's server refuses it, saying why
    with pytest.raises(RegistryStoreError, match=r"not the .* recorded at registration"):
        promoted_ranking(aws, AwsResources(), FixedClock(DAY)).current()
