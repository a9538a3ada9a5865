"""`cst model pull-production` writes the promoted ranking version's registered bytes: an
artefact changed in S3 after registration (its SHA-256 no longer the one recorded then) or gone
is refused with the reason, through the registry's checked read the registry-serving scan uses,
never written where `cst scan --model` / ``CST_MODEL_DIR`` serve it from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cryptosmarttrader.adapters.ranking_bundle import (
    bundle_artifact,
    bundle_evaluation,
    bundle_reference,
    load_ranking_bundle,
)
from cryptosmarttrader.cli.model import _registry
from cryptosmarttrader.cli.model import app as model_app
from cryptosmarttrader.services.skill_evaluation import ranking_card, ranking_feature_hash
from cryptosmarttrader.wiring import RANKING_GROUP
from cst_devtools.local_aws import embedded_aws
from tests.integration.test_scan_serves_promotion import CLEARS_THE_GATE, bundles

pytestmark = pytest.mark.realdata

__all__ = ["bundles"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param("replaced", "recorded at registration", id="replaced"),
        pytest.param("deleted", "cst-rank/v1: artefact unreadable", id="deleted"),
    ],
)
def test_pull_production_refuses_an_artefact_changed_after_registration(
    bundles: dict[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
    reason: str,
) -> None:
    for key in ("CST_MODEL_REGISTRY", "CST_MODEL_BUCKET", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    state = tmp_path / "state"
    registered = bundles[30]
    # Given v1 of cst-rank registered (its SHA-256 recorded) and promoted in the local registry
    with embedded_aws(state) as aws:
        service = _registry(aws, RANKING_GROUP)
        signals = load_ranking_bundle(registered).signals
        card = ranking_card(
            bundle_evaluation(registered), signals=signals, group=RANKING_GROUP,
            created_at=datetime(2021, 11, 12, tzinfo=UTC),
            feature_hash=ranking_feature_hash(signals), git_commit="0" * 40,
        ).model_copy(update={"skill": CLEARS_THE_GATE})  # fmt: skip
        version = service.register(card, bundle_artifact(registered), bundle_reference(registered))
        service.promote(version.version, "clears its baselines", "operator")
        # When the artefact object is replaced by another model's after registration, or gone
        bucket, _, key = version.artifact_uri.removeprefix("s3://").partition("/")
        if damage == "replaced":
            aws.clients.s3.put_object(Bucket=bucket, Key=key, Body=bundle_artifact(bundles[10]))
        else:
            aws.clients.s3.delete_object(Bucket=bucket, Key=key)

    # Then pulling the production version refuses it, saying why, and writes nothing to serve
    root = typer.Typer()
    root.add_typer(model_app, name="model")
    served = tmp_path / "served"
    pulled = CliRunner().invoke(
        root, ["model", "pull-production", str(served), "--state-dir", str(state)]
    )
    assert pulled.exit_code == 2, pulled.output
    assert reason in pulled.output and "nothing written" in pulled.output, pulled.output
    assert not served.exists() or not any(served.iterdir())
